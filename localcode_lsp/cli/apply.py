"""Writing verified patches to disk: atomically, with the file's permissions, and only when the
file on disk is still what the pipeline read (otherwise refuse and say why).

Used by the interactive session (`Apply? [y/n]`) and by `localcode run --yes`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import Patch
from ..workspace import OutsideWorkspace, Workspace

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # round-trips bytes that are not valid UTF-8


class ApplyRefused(Exception):
    """A patch was not written; `reason` says why in words a user can act on."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class PlannedWrite:
    """One checked patch: where it goes and the exact bytes before and after."""

    path: str  # workspace-relative
    target: Path  # absolute, symlinks resolved
    old_bytes: bytes | None  # None = the file does not exist yet
    new_bytes: bytes


def plan_patch(workspace: Workspace, patch: Patch) -> PlannedWrite:
    """Check one patch against the disk; ApplyRefused when it is stale, outside or unreadable.

    The pipeline reads text with universal newlines, so a CRLF file whose text matches after
    newline translation is accepted and the new text is written back with CRLF endings.
    """
    try:
        target = workspace.resolve(patch.path)
    except OutsideWorkspace as exc:
        raise ApplyRefused(patch.path, f"refusing to write outside the project: {exc}") from None
    if target.is_dir():
        raise ApplyRefused(patch.path, "is a directory")
    try:
        old_bytes: bytes | None = target.read_bytes()
    except FileNotFoundError:
        old_bytes = None
    except OSError as exc:
        raise ApplyRefused(patch.path, f"cannot read the file: {exc.strerror or exc}") from None

    if old_bytes is None:
        if patch.before:
            raise ApplyRefused(patch.path, "the file was deleted since localcode read it; "
                                           "nothing was written")
        return PlannedWrite(patch.path, target, None, patch.after.encode(_ENCODING, _ERRORS))

    disk_text = old_bytes.decode(_ENCODING, _ERRORS)
    if disk_text == patch.before:
        new_text = patch.after
    elif "\r\n" in disk_text and disk_text.replace("\r\n", "\n") == patch.before:
        new_text = patch.after.replace("\r\n", "\n").replace("\n", "\r\n")
    else:
        raise ApplyRefused(patch.path, _describe_change(patch.before, disk_text))
    return PlannedWrite(patch.path, target, old_bytes, new_text.encode(_ENCODING, _ERRORS))


def _describe_change(before: str, now: str) -> str:
    was, is_now = before.count("\n"), now.count("\n")
    detail = (f"it had {was} lines then and has {is_now} now" if was != is_now
              else "its content differs from what was read")
    return (f"the file changed on disk since localcode read it ({detail}); nothing was written. "
            "Run the task again to get a patch against the current file.")


def apply_patches(workspace: Workspace, patches: Sequence[Patch]) -> list[PlannedWrite]:
    """Check every patch first, then write each file atomically. Returns what was written.

    Raises ApplyRefused before writing anything when any file is stale; a file that changes in
    the short window between the check and the rename is caught by a second check. All or
    nothing: when one file cannot be written (disk full, permission, a change on disk), the
    files already written are put back as they were, and ApplyRefused says so.
    """
    plans = [plan_patch(workspace, patch) for patch in patches]
    written: list[PlannedWrite] = []
    for plan in plans:
        try:
            write_atomic(plan.target, plan.new_bytes, expected=plan.old_bytes, label=plan.path)
        except (ApplyRefused, OSError) as exc:
            reason = exc.reason if isinstance(exc, ApplyRefused) else \
                f"cannot write the file: {exc.strerror or exc}"
            raise ApplyRefused(plan.path, reason + _roll_back(written)) from None
        written.append(plan)
    return plans


def _roll_back(written: Sequence[PlannedWrite]) -> str:
    """Put the files of `written` back as they were; a sentence saying what happened."""
    if not written:
        return ""
    failed: list[str] = []
    for plan in reversed(written):
        try:
            if plan.old_bytes is None:
                if plan.target.read_bytes() == plan.new_bytes:
                    plan.target.unlink()
            else:
                write_atomic(plan.target, plan.old_bytes, expected=plan.new_bytes,
                             label=plan.path)
        except (ApplyRefused, OSError):
            failed.append(plan.path)
    restored = [plan.path for plan in written if plan.path not in failed]
    text = ""
    if restored:
        text += f"; {', '.join(restored)} restored as before, so nothing was changed"
    if failed:
        text += (f"; could NOT restore {', '.join(failed)} (it holds the new version: check "
                 f"it by hand)")
    return text


def write_atomic(target: Path, data: bytes, *, expected: bytes | None = None,
                 label: str = "") -> None:
    """Write `data` to a temporary file beside `target` and rename it over `target`.

    The new file gets the old file's permission bits (or the umask default for a new file).
    `expected` (when given) is compared with the current content right before the rename.
    """
    label = label or str(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=".localcode-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp_name, mode)
        if expected is not None:
            try:
                current = target.read_bytes()
            except OSError:
                current = None
            if current != expected:
                raise ApplyRefused(label, "the file changed on disk while it was being written; "
                                          "nothing was written")
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
