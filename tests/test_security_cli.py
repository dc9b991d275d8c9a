"""The CLI when the machine says no: a multi-file apply that fails half-way puts every file back,
and a full disk or a permission error in `localcode run` is one clear line, not a traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from localcode_lsp.cli import apply as apply_module
from localcode_lsp.cli.apply import ApplyRefused, apply_patches
from localcode_lsp.data import Patch
from localcode_lsp.workspace import Workspace

A_BEFORE = "def a():\n    return 1\n"
B_BEFORE = "def b():\n    return 2\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text(A_BEFORE)
    (root / "pkg" / "b.py").write_text(B_BEFORE)
    return root


def _patches() -> list[Patch]:
    return [Patch("pkg/a.py", A_BEFORE, "def a():\n    return 10\n"),
            Patch("pkg/new.py", "", "NEW = 1\n"),
            Patch("pkg/b.py", B_BEFORE, "def b():\n    return 20\n")]


def test_multi_file_apply_rolls_back_when_a_later_file_cannot_be_written(project, monkeypatch):
    real = apply_module.write_atomic
    calls = {"n": 0}

    def disk_full_on_the_third_file(target, data, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, data, **kwargs)

    monkeypatch.setattr(apply_module, "write_atomic", disk_full_on_the_third_file)
    with pytest.raises(ApplyRefused) as refused:
        apply_patches(Workspace(project), _patches())
    assert "No space left on device" in refused.value.reason
    assert "restored" in refused.value.reason
    assert (project / "pkg" / "a.py").read_text() == A_BEFORE
    assert (project / "pkg" / "b.py").read_text() == B_BEFORE
    assert not (project / "pkg" / "new.py").exists()
    assert sorted(p.name for p in (project / "pkg").iterdir()) == ["a.py", "b.py"]


def test_multi_file_apply_into_a_missing_directory_changes_nothing(project):
    patches = [Patch("pkg/a.py", A_BEFORE, "def a():\n    return 10\n"),
               Patch("missing/dir/c.py", "", "C = 1\n")]
    with pytest.raises(ApplyRefused, match="cannot write the file"):
        apply_patches(Workspace(project), patches)
    assert (project / "pkg" / "a.py").read_text() == A_BEFORE


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "free some disk space"),
                                         (errno.EACCES, "check the permissions")])
def test_run_reports_a_full_disk_or_a_permission_error_in_one_line(project, monkeypatch, capsys,
                                                                   code, words):
    from localcode_lsp.cli.main import EXIT_FAILED, main
    from localcode_lsp.engine import Engine

    def failing_init(self, *args, **kwargs):
        raise OSError(code, "the machine said no", str(project / ".localcode" / "index"))

    monkeypatch.setattr(Engine, "__init__", failing_init)
    status = main(["run", "--project", str(project), "--dry-run", "make a return 10"])
    captured = capsys.readouterr()
    assert status == EXIT_FAILED
    assert "Traceback" not in captured.err
    assert "the machine said no" in captured.err and words in captured.err
    assert str(project / ".localcode" / "index") in captured.err
