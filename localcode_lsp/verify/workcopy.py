"""Throwaway copies of the workspace, built from the overlay, for checks that need files.

The user's tree is only read: files are copied (never hard-linked, so a test writing into a file
in place cannot reach the original inode), open documents replace their disk text, then the
candidate's files are written. The copy is removed on exit, also on cancel or an exception.
A file that cannot be copied fails the copy (`IncompleteCopy`): a verdict computed on a partial
project would be a verdict about another project. Files left out on purpose (over
`MAX_COPIED_FILE_BYTES`, sockets and other non-regular files, links out of the project) are not
errors.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..index.discovery import NEVER_WALKED_DIRS
from ..workspace import Workspace
from .private_files import remove_tree

# The copy also leaves out what no check reads but the index still walks: editor settings
# (.idea, .vscode: project files a user opens and edits) and setuptools' cache of downloaded
# build requirements (.eggs: the index leaves it to .gitignore, where such projects list it).
COPY_ONLY_SKIPPED_DIRS = frozenset({".eggs", ".idea", ".vscode"})
# Never copied: the dirs nothing walks into (the index's rule) and the copy's own above.
SKIPPED_DIRS = NEVER_WALKED_DIRS | COPY_ONLY_SKIPPED_DIRS
MAX_COPIED_FILE_BYTES = 50 * 1024 * 1024


class IncompleteCopy(OSError):
    """A project file could not be copied into the throwaway copy."""


@contextmanager
def workspace_copy(workspace: Workspace, files: Mapping[str, str] | None = None,
                   *, prefix: str = "localcode-verify-") -> Iterator[Path]:
    """Yield the root of a fresh copy of `workspace` with `files` (relative path -> text) written.

    The copy lives in the system temp dir and contains `root/` (the project) next to a
    `scratch/` dir for HOME, TMPDIR and reports; yields the project root inside it.
    """
    # the real path: the sandbox refuses to bind anything reached through a link
    base = Path(os.path.realpath(tempfile.mkdtemp(prefix=prefix)))
    try:
        root = base / "root"
        _copy_tree(workspace.root, root)
        for relative, document in workspace.open_documents().items():
            _write(root, relative, document.text)
        for relative, text in (files or {}).items():
            _write(root, relative, text)
        (base / "scratch").mkdir()
        yield root
    finally:
        remove_tree(base)


def scratch_dir(copy_root: Path) -> Path:
    """The scratch directory that belongs to a copy made by `workspace_copy`."""
    return copy_root.parent / "scratch"


def _write(root: Path, relative: str, text: str) -> None:
    target = root / relative
    # Refuse anything that would land outside the copy (a hostile relative path).
    if not os.path.realpath(target).startswith(os.path.realpath(root) + os.sep):
        raise ValueError(f"refusing to write outside the copy: {relative}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()  # never write through a link
    target.write_text(text, encoding="utf-8", errors="surrogateescape")


def _copy_tree(source: Path, target: Path) -> None:
    source_real = os.path.realpath(source)
    target.mkdir(parents=True)
    def unreadable(error: OSError) -> None:
        relative = os.path.relpath(error.filename or str(source), source)
        raise IncompleteCopy(f"cannot read {relative} for the verification copy "
                             f"({error.strerror or error}); not verifying on a partial project")

    for directory, dirnames, filenames in os.walk(source, onerror=unreadable):
        rel_dir = os.path.relpath(directory, source)
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
        out_dir = target if rel_dir == "." else target / rel_dir
        for name in list(dirnames):
            path = os.path.join(directory, name)
            if os.path.islink(path):
                dirnames.remove(name)
                _copy_link(path, out_dir / name, source_real)
            else:
                (out_dir / name).mkdir()
        for name in filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                _copy_link(path, out_dir / name, source_real)
                continue
            try:
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_COPIED_FILE_BYTES:
                    continue  # a socket, fifo or device; or too large to matter for a check
                shutil.copyfile(path, out_dir / name)
                shutil.copymode(path, out_dir / name)
            except OSError as exc:
                relative = os.path.relpath(path, source)
                raise IncompleteCopy(
                    f"cannot copy {relative} into the verification copy "
                    f"({exc.strerror or exc}); not verifying on a partial project") from exc


def _copy_link(path: str, destination: Path, source_real: str) -> None:
    """Keep links that stay inside the project (as relative links); drop the others."""
    resolved = os.path.realpath(path)
    if not (resolved == source_real or resolved.startswith(source_real + os.sep)):
        return
    relative_target = os.path.relpath(resolved, os.path.realpath(os.path.dirname(path)))
    try:
        os.symlink(relative_target, destination)
    except OSError:
        pass
