"""End to end with the real engine and the real default model (Qwen2.5-Coder-1.5B-Instruct):
`localcode serve` under pytest-lsp (VS Code and Neovim capabilities). Run under the model lock."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import time

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from server_helpers import (
    CLIENTS,
    REAL_SERVER,
    apply_text_edits,
    code_actions,
    command_params,
    start_client,
)

pytestmark = [pytest.mark.model,
              pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")]


@pytest.fixture(params=CLIENTS)
async def real_session(request, copy_fixture, isolated_home, model_path):
    root = copy_fixture("server_project")
    client, result = await start_client(REAL_SERVER, request.param, root,
                                        initialization_options={"trusted": True})
    client.root = root  # type: ignore[attr-defined]
    client.encoding = result.capabilities.position_encoding  # type: ignore[attr-defined]
    yield client
    await client.shutdown_session()


def open_calc(client) -> tuple[str, str]:
    path = client.root / "pkg" / "calc.py"
    text = path.read_text()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=path.as_uri(), language_id="python",
                                             version=1, text=text)))
    return path.as_uri(), text


async def test_implement_code_action_applies_an_edit_that_passes_the_tests(real_session):
    client = real_session
    uri, text = open_calc(client)
    actions = await code_actions(client, uri, 4, 4)
    assert actions[0]["command"]["command"] == "localcode.implement"
    result = await asyncio.wait_for(
        client.workspace_execute_command_async(command_params(actions[0])), 240)
    assert result["applied"] is True, result
    (params,) = client.applied_edits
    if params.edit.document_changes is not None:
        (document_edit,) = params.edit.document_changes
        assert document_edit.text_document.version == 1
        edits = document_edit.edits
    else:
        edits = params.edit.changes[uri]
    new_text = apply_text_edits(text, edits, client.encoding)
    (client.root / "pkg" / "calc.py").write_text(new_text)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_calc.py"], cwd=client.root, capture_output=True,
                           text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout[-2000:]


async def test_inline_completion_with_the_real_model(real_session):
    client = real_session
    uri, text = open_calc(client)
    lines = text.split("\n")
    line = next(i for i, value in enumerate(lines) if value.startswith("    return x"))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=line, character=0),
                              end=types.Position(line=line, character=len(lines[line]))),
            text="    return ")]))
    position = types.Position(line=line, character=len("    return "))
    inline = await asyncio.wait_for(client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked))), 120)
    assert inline.items, "the default model offered no suggestion after `return `"
    for item in inline.items:
        assert item.insert_text.strip()
        assert item.range.start == position
        typed = lines[:line] + ["    return " + item.insert_text] + lines[line + 1:]
        ast.parse("\n".join(typed))  # the suggestion parses in place
    completion = await asyncio.wait_for(client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                               position=position)), 120)
    if not client.capabilities.text_document.inline_completion:
        # the fallback carries the same suggestion as the inline request
        assert [i.text_edit.new_text for i in completion.items] == \
            [i.insert_text for i in inline.items]


async def test_cancelling_a_real_pipeline_run_answers_within_200ms(real_session):
    client = real_session
    uri, _ = open_calc(client)
    params = types.ExecuteCommandParams(command="localcode.implement", arguments=[{
        "uri": uri, "position": {"line": 4, "character": 4}}])
    future = client.protocol.send_request("workspace/executeCommand", params)
    await asyncio.sleep(1.5)  # the model is loading or generating
    assert not future.done()
    (msg_id,) = [k for k, f in client.protocol._request_futures.items() if f is future]
    started = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wait_for(asyncio.wrap_future(future), 10)
    assert caught.value.code == -32800
    assert time.monotonic() - started < 0.2
    for values in client.progress_reports.values():
        assert [v.kind for v in values].count("begin") == 1 and values[-1].kind == "end"
    # the server is free again at once
    health = await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="localcode.health", arguments=[])), 60)
    assert isinstance(health, dict)
    # how long the engine itself took to stop (reported, not asserted: it is the engine's loop)
    log_file = client.root / ".localcode" / "logs" / "localcode.log"
    stops = [line for line in log_file.read_text().splitlines() if "stopped after" in line]
    print("engine stop after cancel:", stops[-1] if stops else "within the cancel grace")
