"""Atomic apply (cli/apply.py): rename over the file, keep permissions, refuse stale patches."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localcode_lsp.cli.apply import ApplyRefused, apply_patches, plan_patch, write_atomic
from localcode_lsp.data import Patch
from localcode_lsp.workspace import Workspace

BEFORE = "def f(x):\n    return x\n"
AFTER = "def f(x):\n    if x is None:\n        raise ValueError('x')\n    return x\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "m.py").write_text(BEFORE)
    return root


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".localcode-tmp")]


def test_apply_replaces_file_atomically_and_keeps_mode(project: Path) -> None:
    target = project / "src" / "m.py"
    os.chmod(target, 0o640)
    inode_before = target.stat().st_ino
    written = apply_patches(Workspace(project), [Patch("src/m.py", BEFORE, AFTER)])
    assert [w.path for w in written] == ["src/m.py"]
    assert target.read_text() == AFTER
    assert target.stat().st_ino != inode_before  # a new file renamed into place
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(target.parent) == []


def test_stale_patch_is_refused_and_file_is_byte_identical(project: Path) -> None:
    target = project / "src" / "m.py"
    target.write_text(BEFORE + "\n# edited by the user\n")
    original = target.read_bytes()
    with pytest.raises(ApplyRefused) as info:
        apply_patches(Workspace(project), [Patch("src/m.py", BEFORE, AFTER)])
    assert "changed on disk" in info.value.reason
    assert "nothing was written" in info.value.reason
    assert target.read_bytes() == original
    assert leftovers(target.parent) == []


def test_one_stale_file_blocks_every_write(project: Path) -> None:
    (project / "src" / "other.py").write_text("x = 1\n")
    (project / "src" / "m.py").write_text("changed\n")
    patches = [Patch("src/other.py", "x = 1\n", "x = 2\n"), Patch("src/m.py", BEFORE, AFTER)]
    with pytest.raises(ApplyRefused):
        apply_patches(Workspace(project), patches)
    assert (project / "src" / "other.py").read_text() == "x = 1\n"


def test_crlf_file_keeps_its_line_endings(project: Path) -> None:
    target = project / "src" / "m.py"
    target.write_bytes(BEFORE.replace("\n", "\r\n").encode())
    # the pipeline reads with universal newlines, so its `before` has plain \n
    apply_patches(Workspace(project), [Patch("src/m.py", BEFORE, AFTER)])
    assert target.read_bytes() == AFTER.replace("\n", "\r\n").encode()


def test_deleted_file_is_refused(project: Path) -> None:
    (project / "src" / "m.py").unlink()
    with pytest.raises(ApplyRefused, match="deleted"):
        apply_patches(Workspace(project), [Patch("src/m.py", BEFORE, AFTER)])
    assert not (project / "src" / "m.py").exists()


def test_new_file_is_created(project: Path) -> None:
    apply_patches(Workspace(project), [Patch("src/new.py", "", "y = 3\n")])
    assert (project / "src" / "new.py").read_text() == "y = 3\n"


@pytest.mark.parametrize("path", ["../escape.py", ".git/config", "/etc/passwd"])
def test_paths_outside_the_project_are_refused(project: Path, path: str) -> None:
    with pytest.raises(ApplyRefused, match="outside the project"):
        plan_patch(Workspace(project), Patch(path, "", "boom\n"))
    assert not (project.parent / "escape.py").exists()


def test_symlinked_file_is_written_through_the_link(project: Path) -> None:
    link = project / "link.py"
    link.symlink_to(project / "src" / "m.py")
    apply_patches(Workspace(project), [Patch("link.py", BEFORE, AFTER)])
    assert link.is_symlink()
    assert (project / "src" / "m.py").read_text() == AFTER


def test_non_utf8_bytes_round_trip(project: Path) -> None:
    target = project / "src" / "m.py"
    raw = b"s = '\xff'\n"
    target.write_bytes(raw)
    text = raw.decode("utf-8", "surrogateescape")
    apply_patches(Workspace(project), [Patch("src/m.py", text, text + "t = 1\n")])
    assert target.read_bytes() == raw + b"t = 1\n"


def test_write_atomic_rechecks_just_before_the_rename(project: Path) -> None:
    target = project / "src" / "m.py"
    with pytest.raises(ApplyRefused, match="while it was being written"):
        write_atomic(target, b"new\n", expected=b"something else\n")
    assert target.read_text() == BEFORE
    assert leftovers(target.parent) == []
