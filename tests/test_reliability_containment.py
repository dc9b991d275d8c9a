"""Containment as a property: thousands of generated paths and URIs (`..`, absolute, symlinks out
of the root, percent-escapes, other schemes, case variants, nested `.git`) never resolve, apply
or become a WorkspaceEdit outside the workspace root or inside any `.git/`.

CI: ~3,000 generated inputs; LOCALCODE_STRESS=1 runs 10x more.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localcode_lsp.cli.apply import ApplyRefused, apply_patches
from localcode_lsp.data import Patch, Result
from localcode_lsp.workspace import OutsideWorkspace, Workspace, uri_to_path

STRESS = os.environ.get("LOCALCODE_STRESS") == "1"
EXAMPLES = 10000 if STRESS else 1000

COMPONENTS = ["..", ".", "pkg", "mod.py", "new.py", ".git", ".GIT", ".Git", "HEAD", "config",
              "link_out", "link_in", "evil.py", "dangling.py", "sub", "%2e%2e", "%2E%2e", "%2f",
              "..%2f..", "%00", "~", "a b", "😀", "", "...", ".localcode", "x\\..\\..\\y"]
PREFIXES = ["", "/", "{root}/", "{outside}/", "/etc/", "file://", "file://{root}/",
            "file://{outside}/", "FILE://{root}/", "file://localhost{root}/",
            "file://evil.example{root}/", "file:{root}/", "http://example.com/",
            "untitled:", "vscode-remote://ssh/{root}/", "C:\\\\", "\\\\\\\\server\\\\share\\\\",
            "file:///{root_escaped}/", "file:%2F%2F{root}/", "{root_upper}/"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict[str, Path]:
    """root/ with a repo, a nested repo and symlinks in and out; outside/ beside it."""
    base = tmp_path_factory.mktemp("containment")
    root = base / "root"
    outside = base / "outside"
    (root / "pkg").mkdir(parents=True)
    (root / "sub" / ".git").mkdir(parents=True)
    (root / ".git").mkdir()
    outside.mkdir()
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "config").write_text("[core]\n")
    (root / "sub" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (outside / "secret.py").write_text("secret = 1\n")
    os.symlink(outside, root / "link_out")
    os.symlink(root / "pkg", root / "link_in")
    os.symlink(outside / "secret.py", root / "pkg" / "evil.py")
    os.symlink(outside / "missing.py", root / "pkg" / "dangling.py")
    return {"base": base, "root": root.resolve(), "outside": outside.resolve()}


def _fill(template: str, layout: dict[str, Path]) -> str:
    root = str(layout["root"])
    return (template.replace("{root_escaped}", quote(root.lstrip("/"), safe=""))
            .replace("{root_upper}", root.upper())
            .replace("{root}", root).replace("{outside}", str(layout["outside"])))


@st.composite
def hostile_paths(draw) -> str:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=0, max_size=6))
    separator = draw(st.sampled_from(["/", "/", "/", "//", "\\", "/./"]))
    body = separator.join(parts)
    if draw(st.integers(0, 5)) == 0:
        body = quote(body, safe=draw(st.sampled_from(["/", "", "/%"])))
    return draw(st.sampled_from(PREFIXES)) + body


def _inside_and_not_git(path: Path, root: Path) -> bool:
    real = Path(os.path.realpath(path))
    try:
        relative = real.relative_to(root)
    except ValueError:
        return False
    return not any(part.lower() == ".git" for part in relative.parts)


def _tree_digest(*directories: Path) -> dict[str, str]:
    """Content hash of every regular file (symlinks not followed) under the directories."""
    digest = {}
    for directory in directories:
        for dirpath, _dirs, files in os.walk(directory):
            for name in files:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    digest[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def _protected(layout: dict[str, Path]) -> dict[str, str]:
    root = layout["root"]
    return _tree_digest(layout["outside"], root / ".git", root / "sub" / ".git")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          print_blob=True)
@given(template=hostile_paths())
@example(template="file://{root}/~/.git/%2e%2e")
def test_resolve_never_leaves_the_root_or_enters_git(layout, template):
    workspace = Workspace(layout["root"])
    candidate = _fill(template, layout)
    try:
        resolved = workspace.resolve(candidate)
    except OutsideWorkspace:
        return
    assert _inside_and_not_git(resolved, layout["root"]), (candidate, resolved)
    assert Path(os.path.realpath(resolved)) == resolved  # symlinks already resolved


@pytest.mark.parametrize("known_bad", [
    "../outside/secret.py", "link_out/secret.py", "pkg/evil.py", "pkg/dangling.py",
    "link_in/../../outside/secret.py", "sub/.git/HEAD", ".git/HEAD", ".GIT/config",
    "file://{root}/pkg/%2e%2e/%2e%2e/outside/secret.py", "file://{root}/sub/.git/HEAD",
    "file://{root}/%2e%2e%2foutside/secret.py", "file://evil.example{root}/pkg/mod.py",
    "http://example.com{root}/pkg/mod.py", "untitled:{root}/pkg/mod.py", "{outside}/secret.py",
    "file://{root}/pkg/mod.py%00.txt",
])
def test_known_escapes_are_refused(layout, known_bad):
    with pytest.raises(OutsideWorkspace):
        Workspace(layout["root"]).resolve(_fill(known_bad, layout))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          print_blob=True)
@given(templates=st.lists(hostile_paths(), min_size=1, max_size=3))
@example(templates=["file://{root}/~/.git/%2e%2e"])
def test_applying_patches_never_writes_outside_or_into_git(layout, templates):
    """Creates (before == ""), edits and overwrites through the CLI's apply path."""
    root = layout["root"]
    workspace = Workspace(root)
    before = _protected(layout)
    patches = []
    for template in templates:
        path = _fill(template, layout)
        target = None
        try:
            target = workspace.resolve(path)
            current = target.read_text() if target.is_file() else ""
        except (OutsideWorkspace, OSError):
            current = ""
        patches.append((Patch(path, current, current + "# pwned\n"), target))
    try:
        written = apply_patches(workspace, [patch for patch, _ in patches])
    except (ApplyRefused, OSError):
        written = []
    for plan in written:
        assert _inside_and_not_git(plan.target, root), plan
    assert _protected(layout) == before
    for plan in written:  # leave the tree as it was for the next example
        if plan.old_bytes is None:
            plan.target.unlink(missing_ok=True)
        else:
            plan.target.write_bytes(plan.old_bytes)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          print_blob=True)
@given(template=hostile_paths())
@example(template="file://{root}/~/.git/%2e%2e")  # a fresh clone's `make test` once drew it
def test_server_workspace_edits_stay_inside(layout, template):
    """The server turns engine patches into WorkspaceEdits: only versioned TextDocumentEdits
    (never create/rename/delete operations) and only for files inside the root."""
    from lsprotocol import types
    from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

    from localcode_lsp.engine import Engine
    from localcode_lsp.server.server import LocalcodeServer

    server, engine = _server_and_engine(layout, LocalcodeServer, Engine)
    path = _fill(template, layout)
    try:
        current = engine.workspace.read_text(path)
    except (OutsideWorkspace, OSError, UnicodeDecodeError):
        current = ""
    result = Result(status="verified", patches=[Patch(path, current, current + "# x\n", None)])
    uri = (layout["root"] / "pkg" / "mod.py").as_uri()
    try:
        edit = server._workspace_edit(uri, "pkg/mod.py", engine, result)
    except (JsonRpcInvalidParams, JsonRpcContentModified, OutsideWorkspace, OSError):
        return
    assert edit.changes is None
    for change in edit.document_changes or []:
        assert isinstance(change, types.TextDocumentEdit), change  # no Create/Rename/DeleteFile
        assert _inside_and_not_git(uri_to_path(change.text_document.uri), layout["root"]), change


_CACHE: dict[str, object] = {}


def _server_and_engine(layout, server_class, engine_class):
    key = str(layout["root"])
    if key not in _CACHE:
        server = server_class()
        engine = engine_class(layout["root"])
        server.roots = [layout["root"]]
        server.engines[layout["root"]] = engine
        _CACHE[key] = (server, engine)
    return _CACHE[key]


def test_editor_supplied_file_operations_are_never_echoed(layout):
    """A patch for a path that does not exist yet is refused by the server (it never emits a
    CreateFile), and the CLI apply path creates it only inside the root."""
    from pygls.exceptions import JsonRpcInvalidParams

    from localcode_lsp.engine import Engine
    from localcode_lsp.server.server import LocalcodeServer

    server, engine = _server_and_engine(layout, LocalcodeServer, Engine)
    uri = (layout["root"] / "pkg" / "mod.py").as_uri()
    for path in ("../outside/new.py", "link_out/new.py", "sub/.git/hooks/post-checkout"):
        with pytest.raises((JsonRpcInvalidParams, OutsideWorkspace, OSError)):
            server._workspace_edit(uri, "pkg/mod.py", engine,
                                   Result(status="verified", patches=[Patch(path, "", "x\n")]))
        with pytest.raises(ApplyRefused):
            apply_patches(engine.workspace, [Patch(path, "", "x\n")])
    assert not (layout["outside"] / "new.py").exists()
    assert not (layout["root"] / "sub" / ".git" / "hooks").exists()
