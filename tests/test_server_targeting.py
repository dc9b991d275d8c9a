"""Targeting by position: the edit lands on the function under the cursor, never on another of
the same name, and line numbers are counted one way (at "\\n" only) from the editor to LOCATE.

Through the real server and the real engine (AST index, pipeline) with a scripted model and a
gate that passes every candidate (tests/fixtures/server_scripted)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from server_helpers import REPO_ROOT, apply_text_edits, code_actions, command_params, start_client

from localcode_lsp.data import Patch, apply_edits, split_lines
from localcode_lsp.targeting import task_at_position

SCRIPTED_SERVER = [sys.executable, str(REPO_ROOT / "tests/fixtures/server_scripted/scripted_server.py")]

SHAPES = '''"""Two classes with the same method name, and a method named like a function."""


class A:
    def __init__(self):
        self.x = 1


class B:
    def __init__(self):
        self.y = 2


def run():
    return "top"


class Worker:
    def run(self):
        return "worker"
'''

# Form feeds (PEP 8 page breaks), a line separator and NEL inside comments, before the target:
# str.splitlines counts each as a line break, tree-sitter and the editor do not.
PAGED = ('"""Paged module."""\n\x0c\n\ndef first():\n    # a \u2028 separator and a \x85 NEL\n'
         '    return 1\n\x0c\n\ndef second():\n    return 2\n\x0c\n\ndef third():\n'
         '    return 3\n')

REWRITTEN = '"rewritten"'


def line_of(text: str, needle: str) -> int:
    return text.split("\n").index(next(line for line in text.split("\n") if needle in line))


@pytest.fixture
def project(tmp_path: Path, isolated_home) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "shapes.py").write_text(SHAPES, newline="")
    (root / "pkg" / "paged.py").write_text(PAGED, newline="")
    (root / "localcode.toml").write_text("[generation]\ncandidates = 1\nmax_retries = 0\n")
    return root


async def edit_at(root: Path, name: str, line: int, character: int, client_name: str,
                  env: dict | None = None) -> tuple[str, str]:
    """Open the file, take the implement code action at (line, character), run it; return the
    text before and after the editor applied the server's edit."""
    client, result = await start_client(SCRIPTED_SERVER, client_name, root,
                                        env={**os.environ, **(env or {})})
    try:
        path = root / "pkg" / name
        text = path.read_bytes().decode("utf-8")
        uri = path.as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                 text=text)))
        actions = await code_actions(client, uri, line, character)
        implement = next(a for a in actions if a["command"]["command"] == "localcode.implement")
        outcome = await client.workspace_execute_command_async(command_params(implement))
        assert outcome["applied"] is True, outcome
        (params,) = client.applied_edits
        edit = params.edit
        edits = (edit.document_changes[0].edits if edit.document_changes is not None
                 else edit.changes[uri])
        return text, apply_text_edits(text, edits, result.capabilities.position_encoding)
    finally:
        await client.shutdown_session()


def changed_lines(before: str, after: str) -> list[int]:
    """0-based lines of `before` that the edit replaced (by a line diff at "\\n" only)."""
    import difflib

    matcher = difflib.SequenceMatcher(a=before.split("\n"), b=after.split("\n"), autojunk=False)
    return [i for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal"
            for i in range(i1, i2)]


@pytest.mark.parametrize("client_name", ["visual-studio-code", "neovim"])
async def test_cursor_in_b_init_rewrites_b_init_not_a_init(project, client_name):
    line = line_of(SHAPES, "self.y = 2")
    before, after = await edit_at(project, "shapes.py", line, 8, client_name)
    assert changed_lines(before, after) == [line], after
    assert "self.x = 1" in after and f"return {REWRITTEN}" in after


async def test_method_named_like_a_function_is_the_one_rewritten(project):
    line = line_of(SHAPES, 'return "worker"')
    before, after = await edit_at(project, "shapes.py", line, 8, "visual-studio-code")
    assert changed_lines(before, after) == [line], after
    assert 'return "top"' in after


async def test_form_feeds_before_the_target_do_not_shift_the_edit(project):
    line = line_of(PAGED, "return 2")
    before, after = await edit_at(project, "paged.py", line, 4, "neovim")
    assert changed_lines(before, after) == [line], repr(after)
    assert "return 1" in after and "return 3" in after
    assert after.count("\x0c") == 3 and "\u2028" in after and "\x85" in after


async def test_editor_and_cli_build_the_same_task(project, tmp_path, monkeypatch):
    """The server (explain at a position) and `localcode run --file --line` (same line, column
    0) hand the engine the same Task."""
    log = tmp_path / "tasks.jsonl"
    line = line_of(SHAPES, "self.y = 2")
    client, _ = await start_client(SCRIPTED_SERVER, "visual-studio-code", project,
                                   env={**os.environ, "SCRIPTED_TASK_LOG": str(log)})
    try:
        uri = (project / "pkg" / "shapes.py").as_uri()
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="localcode.explain",
            arguments=[{"uri": uri, "position": {"line": line, "character": 0}}]))
    finally:
        await client.shutdown_session()
    (server_task,) = [json.loads(row) for row in log.read_text().splitlines()]

    from localcode_lsp.cli.main import main
    from localcode_lsp.data import Result
    from localcode_lsp.engine import Engine

    seen = []

    def capture(self, task, **kwargs):
        seen.append(task)
        return Result(status="explained", explanation="captured")

    monkeypatch.setattr(Engine, "implement", capture)
    code = main(["run", "--project", str(project), "--file", "pkg/shapes.py", "--line",
                 str(line + 1), "--intent", "explain", "--json"])
    assert code == 0
    (cli_task,) = seen
    assert json.loads(json.dumps(dataclasses.asdict(cli_task))) == server_task
    assert server_task["qualified_name"] == "B.__init__"
    start = line_of(SHAPES, "class B") + 1
    assert server_task["symbol_range"] == [start, start + 2]


def test_task_at_position_names_the_enclosing_function_by_qualified_name(project):
    from localcode_lsp.config import Config
    from localcode_lsp.index import CodeIndex
    from localcode_lsp.workspace import Workspace

    index = CodeIndex(Workspace(project), Config(), background_embeddings=False)
    try:
        worker = task_at_position(index, "pkg/shapes.py", line_of(SHAPES, 'return "worker"'), 4)
        assert (worker.symbol, worker.qualified_name) == ("Worker.run", "Worker.run")
        outside = task_at_position(index, "pkg/shapes.py", 0, 0, intent="generate")
        assert outside.qualified_name is None and outside.symbol_range is None
        assert outside.intent == "generate"
        paged = task_at_position(index, "pkg/paged.py", line_of(PAGED, "return 2"), 4)
        start = line_of(PAGED, "def second")
        assert paged.qualified_name == "second" and paged.symbol_range == (start, start + 2)
    finally:
        index.close()


def test_patch_edits_count_lines_at_newline_only():
    before = PAGED
    after = PAGED.replace("    return 2\n", "    return 22\n")
    patch = Patch("pkg/paged.py", before, after)
    (edit,) = patch.edits()
    assert edit.start.line == line_of(PAGED, "return 2")
    assert apply_edits(before, patch.edits()) == after
    assert "".join(split_lines(PAGED)) == PAGED
    assert len(split_lines("a\rb\x0cc\u2028d\n")) == 1
