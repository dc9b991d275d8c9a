"""One rule for the directories nothing walks into (`index.discovery.NEVER_WALKED_DIRS`): the
index's walk, the verification copy and the test finder all skip them, and every place where
the index and the copy differ is a named exception. Fails when a list drifts apart again."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcode_lsp.index.discovery import (
    INDEX_ONLY_SKIPPED_DIRS,
    NEVER_WALKED_DIRS,
    discover,
)
from localcode_lsp.verify.testrun import discover_tests
from localcode_lsp.verify.workcopy import COPY_ONLY_SKIPPED_DIRS, SKIPPED_DIRS, workspace_copy
from localcode_lsp.workspace import Workspace

# Every name either side skips, plus one egg-info dir (the index skips it by suffix) and a
# plain dir both keep.
NAMES = sorted(NEVER_WALKED_DIRS | INDEX_ONLY_SKIPPED_DIRS | SKIPPED_DIRS
               | {"pkg.egg-info", "plain"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name in NAMES:
        (root / name / "nested").mkdir(parents=True)
        (root / name / "nested" / "mod.py").write_text("x = 1\n")
        (root / name / "nested" / "test_mod.py").write_text("def test_x():\n    pass\n")
    (root / "mod.py").write_text("x = 1\n")
    return root


def _walked_by_index(root: Path) -> set[str]:
    return {entry.path.split("/", 1)[0] for entry in discover(root, 1_000_000).files} - {"mod.py"}


def _copied(root: Path) -> set[str]:
    with workspace_copy(Workspace(root)) as copy:
        return {name for name in NAMES if (copy / name / "nested" / "mod.py").is_file()}


def test_index_and_work_copy_skip_the_same_dirs_but_the_named_exceptions(project: Path) -> None:
    indexed, copied = _walked_by_index(project), _copied(project)
    assert not NEVER_WALKED_DIRS & indexed and not NEVER_WALKED_DIRS & copied
    assert "plain" in indexed and "plain" in copied
    # where they differ, each difference is named in one of the two exception lists
    assert copied - indexed == INDEX_ONLY_SKIPPED_DIRS | {"pkg.egg-info"}
    assert indexed - copied == COPY_ONLY_SKIPPED_DIRS
    assert SKIPPED_DIRS == NEVER_WALKED_DIRS | COPY_ONLY_SKIPPED_DIRS


def test_test_finder_never_walks_into_a_dir_the_index_never_walks(project: Path) -> None:
    found = {path.split("/", 1)[0] for path in discover_tests(project, "nested/mod.py")}
    assert found and not found & NEVER_WALKED_DIRS
    assert "plain" in found
