"""What the gate is asked to judge: `VerifyRequest`, all it knows of a target but the candidate.

The target file and its text as the editor has it, the symbol and the task, the tests and
docstring to check against, the other files a candidate or earlier steps of the same task
change, and the flags that change what is judged (protected edits the user asked for, the code
as it is). Its `fingerprint` keys the gate's per-request cache of the original's results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VerifyRequest:
    """What the gate needs to know about the target besides the candidate."""

    path: str  # workspace-relative target file
    original_text: str  # the target as the editor has it (overlay), before any candidate
    symbol: str | None = None
    task: str = ""  # what the change should do (for the diff review)
    test_refs: tuple[str, ...] = ()  # pytest node ids or test files; () = naming convention
    doctest_source: str | None = None  # the target's docstring; None = read from the original
    language: str | None = None  # None = from the file extension
    extra_files: Mapping[str, str] = field(default_factory=dict)  # other files a candidate edits
    # other files as earlier verified steps of the same task left them: the tests and the type
    # check see them, the gates do not judge them (they passed their own verification)
    base_files: Mapping[str, str] = field(default_factory=dict)
    allow_protected_edits: bool = False  # the user asked to change a test/config file itself
    # names the target's docstring calls that the project defines in other files (the index
    # knows them): an example of one of those is about that function, not the target renamed
    defined_elsewhere: frozenset[str] = frozenset()
    # the diff review's prompt form, as the run's prompt family chose it ("text" or "chat")
    review_form: str = "text"
    # diagnosing the code as it is (a fix without diagnostics): the unchanged file is what is
    # judged, not a candidate that forgot to change anything
    as_is: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_refs", tuple(self.test_refs))
        object.__setattr__(self, "defined_elsewhere", frozenset(self.defined_elsewhere))

    def fingerprint(self) -> str:
        parts = [self.path, self.original_text, self.symbol or "", "\0".join(self.test_refs),
                 self.doctest_source or "", "\0".join(sorted(self.defined_elsewhere)),
                 *(f"{path}\0{text}" for path, text in sorted(self.base_files.items()))]
        return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
