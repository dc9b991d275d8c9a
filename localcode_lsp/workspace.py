"""One workspace: its root, the documents overlay (open buffers win over disk), containment, trust.

Every path that reaches an edit goes through `Workspace.resolve`, which refuses anything outside
the root (after `..`, symlinks and URL escapes are resolved), anything under a `.git/` (the
root's or a nested repository's), and any URI that is not `file:`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlparse

STATE_DIR = ".localcode"
# A URI scheme ("file:", "untitled:", "http:"); two letters at least, so "C:" stays a path.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")


class OutsideWorkspace(ValueError):
    """A path or URI that is not an editable file inside the workspace root."""


@dataclass(frozen=True)
class Document:
    """An immutable snapshot of one open document."""

    path: str  # workspace-relative, "/" separated
    text: str
    version: int | None = None
    language_id: str = ""


def ensure_state_dir(root: Path) -> Path:
    """Create `<root>/.localcode/` (git-ignored by its own `.gitignore`) and return it."""
    state = Path(root) / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# localcode caches: safe to delete\n*\n")
    return state


def uri_to_path(uri: str) -> Path:
    """`file:///a/b%20c.py` -> Path('/a/b c.py'); other schemes are refused."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise OutsideWorkspace(f"not a file URI: {uri!r}")
    if parsed.netloc not in ("", "localhost"):
        raise OutsideWorkspace(f"file URI with a remote host: {uri!r}")
    path = unquote(parsed.path)
    if "\x00" in path:
        raise OutsideWorkspace(f"NUL byte in URI: {uri!r}")
    if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
        path = path[1:]
    return Path(path)


def path_to_uri(path: Path | str) -> str:
    """Absolute path -> `file://` URI with percent escapes."""
    return "file://" + quote(str(Path(path).absolute()).replace(os.sep, "/"), safe="/:@")


class Workspace:
    """The root directory, the overlay of open documents and the trust decision."""

    def __init__(self, root: Path | str, *, trusted: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"project directory does not exist: {root}")
        self.trusted = trusted
        self._documents: dict[str, Document] = {}
        self._lock = threading.Lock()

    # --- paths -----------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """`.localcode/` under the root (created on demand by whoever writes there)."""
        return self.root / STATE_DIR

    def ensure_state_dir(self) -> Path:
        """Create `.localcode/` with a `.gitignore` of `*`, so git never sees the caches."""
        return ensure_state_dir(self.root)

    def resolve(self, path_or_uri: str | Path) -> Path:
        """An absolute, symlink-resolved path inside the root, or OutsideWorkspace."""
        if isinstance(path_or_uri, str) and _URI_SCHEME.match(path_or_uri):
            candidate = uri_to_path(path_or_uri)
        else:
            candidate = Path(path_or_uri)
            if "\x00" in str(candidate):
                raise OutsideWorkspace(f"NUL byte in path: {path_or_uri!r}")
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = Path(os.path.realpath(candidate))
        try:
            relative = resolved.relative_to(self.root)
        except ValueError:
            raise OutsideWorkspace(f"{path_or_uri} is outside the workspace {self.root}") from None
        # any .git, not only the root's: submodules and nested repositories have their own
        if any(part.lower() == ".git" for part in relative.parts):
            raise OutsideWorkspace(f"{path_or_uri} is inside .git/")
        return resolved

    def relative(self, path_or_uri: str | Path) -> str:
        """Workspace-relative "/" path of a contained file (OutsideWorkspace otherwise)."""
        return PurePosixPath(*self.resolve(path_or_uri).relative_to(self.root).parts).as_posix()

    def uri(self, relative_path: str) -> str:
        return path_to_uri(self.root / relative_path)

    # --- overlay ---------------------------------------------------------------------------

    def open_document(self, path_or_uri: str | Path, text: str, version: int | None = None,
                      language_id: str = "") -> Document:
        rel = self.relative(path_or_uri)
        document = Document(rel, text, version, language_id)
        with self._lock:
            self._documents[rel] = document
        return document

    def update_document(self, path_or_uri: str | Path, text: str,
                        version: int | None = None) -> Document:
        rel = self.relative(path_or_uri)
        with self._lock:
            previous = self._documents.get(rel)
            document = Document(rel, text, version, previous.language_id if previous else "")
            self._documents[rel] = document
        return document

    def close_document(self, path_or_uri: str | Path) -> None:
        rel = self.relative(path_or_uri)
        with self._lock:
            self._documents.pop(rel, None)

    def document(self, path_or_uri: str | Path) -> Document | None:
        """The open document (overlay), or None when the editor does not have it open."""
        rel = self.relative(path_or_uri)
        with self._lock:
            return self._documents.get(rel)

    def open_documents(self) -> dict[str, Document]:
        with self._lock:
            return dict(self._documents)

    def snapshot(self, path_or_uri: str | Path) -> Document:
        """The text as the user sees it: the open buffer, else the file on disk."""
        rel = self.relative(path_or_uri)
        with self._lock:
            document = self._documents.get(rel)
        if document is not None:
            return document
        path = self.root / rel
        return Document(rel, path.read_text(encoding="utf-8", errors="surrogateescape"), None)

    def read_text(self, path_or_uri: str | Path) -> str:
        return self.snapshot(path_or_uri).text
