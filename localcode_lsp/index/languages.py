"""What a path says about a file: its language (one extension table for the index, the gate,
the pipeline and completion) and whether it is test code (one rule for retrieval, the pattern
library, the dependency graph and the gate's protected files); and a per-object parser cache.

tree-sitter-language-pack 0.13 bundles its grammars (1.x would download them at first use and
fail offline), so every parser here is created from local files only.
"""

from __future__ import annotations

import threading
from fnmatch import fnmatch
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: tree_sitter loads on first parse
    from tree_sitter import Language, Parser, Tree

# File extension -> language name in tree-sitter-language-pack.
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".rs": "rust",
    ".go": "go",
    ".lua": "lua",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".rb": "ruby",
    ".sh": "bash",
    ".bash": "bash",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".swift": "swift",
    ".php": "php",
    ".scala": "scala",
    ".dart": "dart",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".html": "html",
    ".css": "css",
}

# Languages whose symbols and imports the index derives (the rest only parse).
SYMBOL_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx"})


def language_for_path(path: str) -> str | None:
    """The tree-sitter language name for a file path, or None when no grammar applies."""
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


# Test code by file name (pytest's python_files, conftest, JS/TS test and spec files, Go tests).
TEST_FILE_PATTERNS = ("test_*.py", "*_test.py", "conftest.py", "*.test.*", "*.spec.*",
                      "*_test.go")
# Test code by place: every file under one of these directories.
TEST_DIRECTORIES = frozenset({"tests", "test", "__tests__"})
# The files pytest collects by default (`python_files`): where test functions get node ids.
PYTEST_FILE_PATTERNS = ("test_*.py", "*_test.py")


def is_test_path(path: str) -> bool:
    """True for test code: a file named as a test or any file under a tests directory."""
    posix = PurePosixPath(path)
    if any(fnmatch(posix.name, pattern) for pattern in TEST_FILE_PATTERNS):
        return True
    return any(part in TEST_DIRECTORIES for part in posix.parts[:-1])


def conventional_test_names(path: str) -> frozenset[str]:
    """The file names of a module's tests by convention: `test_<stem>.py`, `<stem>_test.py`
    (a package's `__init__.py` goes by the package's name)."""
    posix = PurePosixPath(path)
    stem = posix.parent.name if posix.stem == "__init__" else posix.stem
    return frozenset({f"test_{stem}.py", f"{stem}_test.py"}) if stem else frozenset()


def is_pytest_file(path: str) -> bool:
    """True for a file pytest collects test functions from (test_x.py, x_test.py)."""
    name = PurePosixPath(path).name
    return any(fnmatch(name, pattern) for pattern in PYTEST_FILE_PATTERNS)


class ParserCache:
    """One tree-sitter parser per language, created on first use.

    Parsers are not thread-safe, so each thread gets its own set.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._languages: dict[str, Language] = {}
        self._lock = threading.Lock()

    def parser(self, language: str) -> Parser:
        """A tree-sitter Parser for `language` (ValueError when the pack has no such grammar)."""
        parsers = getattr(self._local, "parsers", None)
        if parsers is None:
            parsers = self._local.parsers = {}
        parser = parsers.get(language)
        if parser is None:
            from tree_sitter_language_pack import get_parser

            try:
                parser = get_parser(language)  # type: ignore[arg-type]
            except Exception as exc:  # LookupError / ValueError depending on the pack version
                raise ValueError(f"no tree-sitter grammar for {language!r}: {exc}") from exc
            parsers[language] = parser
        return parser

    def language(self, language: str) -> Language:
        """The tree-sitter Language object (for queries)."""
        with self._lock:
            found = self._languages.get(language)
            if found is None:
                from tree_sitter_language_pack import get_language

                found = self._languages[language] = get_language(language)  # type: ignore[arg-type]
            return found

    def parse(self, language: str, source: bytes, old_tree: Tree | None = None) -> Tree:
        """Parse `source` (incrementally when `old_tree` was edited to match it)."""
        parser = self.parser(language)
        return parser.parse(source, old_tree) if old_tree is not None else parser.parse(source)
