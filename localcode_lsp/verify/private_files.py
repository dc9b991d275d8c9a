"""Files and directories the server itself touches next to sandboxed code, never through a link.

A sandboxed run may leave anything in the directories it could write: links to the user's
files, fifos, read-only trees. This module owns how the server still uses those places safely:
`plain_directory` refuses a path with a link in it (`UnsafePath`), `private_file` creates a new
file without following links, `private_dir`/`write_private`/`read_private` hand a run its
inputs and read back its reports through a directory descriptor, and `remove_tree` cleans up a
tree a test made read-only without ever changing anything through a link.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any


class UnsafePath(OSError):
    """A path the server was about to use turned out to be (or pass through) a link."""


def plain_directory(path: Path) -> Path:
    """`path` as an absolute real directory; UnsafePath when any component is a link."""
    absolute = Path(os.path.abspath(path))
    if os.path.realpath(absolute) != str(absolute) or not absolute.is_dir():
        raise UnsafePath(f"refusing to use {path}: not a plain directory (a link in the path?)")
    return absolute


def private_file(path: Path, mode: str) -> IO[Any]:
    """Create and open `path`, never through a link and never an existing file."""
    flags = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_RDWR if "+" in mode else os.O_WRONLY
    return os.fdopen(os.open(path, flags, 0o600), mode)


def private_dir(parent: Path, prefix: str = "in-") -> tuple[Path, int]:
    """A fresh directory in `parent` and a descriptor of it (write there with `write_private`
    even if the sandboxed code renames or replaces the directory afterwards)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=plain_directory(parent)))
    return path, os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def write_private(dir_fd: int, name: str, text: str) -> None:
    """Write a new file `name` in the directory `dir_fd`, never through a link."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(text)


def read_private(dir_fd: int, name: str, limit: int = 10_000_000) -> str | None:
    """The text of the regular file `name` in `dir_fd`; None when it is missing, a link or
    anything but a regular file (a sandboxed run may have left anything there)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit).decode("utf-8", "replace")


def remove_tree(path: Path) -> None:
    """Remove a directory tree even when a test made parts of it read-only.

    Never changes anything through a link: only real directories are made writable again
    (a link is removed itself, whatever it points to).
    """

    def make_writable_and_retry(function, failed_path, _exc_info) -> None:
        try:
            for directory in (os.path.dirname(failed_path), failed_path):
                _chmod_directory(directory)
            function(failed_path)
        except OSError:
            pass

    if os.path.islink(path):
        os.unlink(path)
    elif path.exists():
        shutil.rmtree(path, onerror=make_writable_and_retry)


def _chmod_directory(path: str) -> None:
    """`chmod 700` a real directory; a link (or anything else) is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        # unreadable (mode 000) directories cannot be opened: chmod by name, but only after
        # lstat says it is a directory and not a link
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            os.chmod(path, 0o700)
        return
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
