"""Workspace containment, the documents overlay, and the Patch/edit primitives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localcode_lsp.cancel import Cancelled, CancelToken
from localcode_lsp.data import Patch, apply_edits, minimal_edits
from localcode_lsp.workspace import OutsideWorkspace, Workspace, path_to_uri, uri_to_path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / ".git").mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    return Workspace(root)


def test_resolves_paths_and_uris_inside(workspace):
    assert workspace.relative("pkg/mod.py") == "pkg/mod.py"
    assert workspace.relative(workspace.root / "pkg" / "mod.py") == "pkg/mod.py"
    uri = path_to_uri(workspace.root / "pkg" / "mod.py")
    assert workspace.relative(uri) == "pkg/mod.py"
    assert uri_to_path(path_to_uri(workspace.root / "a b%.py")) == workspace.root / "a b%.py"


@pytest.mark.parametrize("bad", [
    "../secret.txt", "pkg/../../secret.txt", "/etc/passwd", ".git/config", ".GIT/HEAD",
    "http://example.com/x.py", "untitled:Untitled-1", "file://remotehost/etc/passwd",
    "file:///etc/passwd", "pkg/%2e%2e/%2e%2e/secret.txt", "pkg/mod.py\x00.txt",
])
def test_refuses_everything_outside(workspace, bad):
    if bad.startswith("pkg/%2e"):
        bad = "file://" + str(workspace.root) + "/" + bad
    with pytest.raises(OutsideWorkspace):
        workspace.resolve(bad)


@pytest.mark.parametrize("template", [
    "file://{root}/~/.git/%2e%2e",  # found by the containment property test: `.git/..`
    "{root}/sub/.git/../mod.py", ".git/../pkg/mod.py", "pkg/.Git/../mod.py",
    "file://{root}/pkg/.git/%2E%2E/mod.py",
])
def test_git_is_refused_in_every_component_not_only_after_resolving(workspace, template):
    bad = template.replace("{root}", str(workspace.root))
    with pytest.raises(OutsideWorkspace, match=".git"):
        workspace.resolve(bad)
    with pytest.raises(OutsideWorkspace):
        workspace.uri(bad)


def test_a_uri_is_never_joined_to_the_root_as_a_relative_path(workspace):
    uri = f"file://{workspace.root}/pkg/mod.py"
    # pathlib collapses `file://` to `file:/`: still a URI, not a relative path `file:/...`
    assert workspace.resolve(Path(uri)) == workspace.root / "pkg" / "mod.py"
    assert workspace.uri(uri) == path_to_uri(workspace.root / "pkg" / "mod.py")
    assert "file:" not in workspace.uri(uri)[len("file://"):]


def test_refuses_symlinks_that_leave_the_root(workspace, tmp_path):
    os.symlink(tmp_path / "secret.txt", workspace.root / "link.txt")
    with pytest.raises(OutsideWorkspace):
        workspace.resolve("link.txt")


def test_overlay_wins_over_disk(workspace):
    assert workspace.read_text("pkg/mod.py") == "x = 1\n"
    workspace.open_document("pkg/mod.py", "x = 2\n", version=3)
    snapshot = workspace.snapshot("pkg/mod.py")
    assert (snapshot.text, snapshot.version) == ("x = 2\n", 3)
    workspace.close_document("pkg/mod.py")
    assert workspace.read_text("pkg/mod.py") == "x = 1\n"


lines = st.lists(st.sampled_from(["a\n", "b\n", "def f():\n", "    pass\n", "", "z", "\n"]),
                 max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(before=lines, after=lines)
def test_minimal_edits_reproduce_the_new_text(before, after):
    assert apply_edits(before, minimal_edits(before, after)) == after


def test_patch_diff_and_edits_are_minimal():
    before = "a\nb\nc\nd\n"
    patch = Patch("m.py", before, "a\nB\nc\nd\n")
    edits = patch.edits()
    assert len(edits) == 1 and edits[0].start.line == 1 and edits[0].new_text == "B\n"
    assert "-b\n+B\n" in patch.unified_diff()


def test_cancel_token_runs_callbacks_once():
    token = CancelToken()
    calls = []
    token.on_cancel(lambda: calls.append(1))
    child = token.child()
    token.cancel("stop")
    token.cancel("again")
    assert calls == [1] and child.cancelled and token.reason == "stop"
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()
