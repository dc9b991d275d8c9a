"""End-to-end protocol tests: the real server process (scripted engine) under pytest-lsp,
with the VS Code and the Neovim captured client capabilities."""

from __future__ import annotations

import asyncio
import time

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from server_helpers import (
    CLIENTS,
    FAKE_SERVER,
    apply_text_edits,
    code_actions,
    command_params,
    start_client,
)

pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")


@pytest.fixture(params=CLIENTS)
async def session(request, copy_fixture, isolated_home):
    root = copy_fixture("server_project")
    client, result = await start_client(FAKE_SERVER, request.param, root)
    client.root = root  # type: ignore[attr-defined]
    client.init_result = result  # type: ignore[attr-defined]
    yield client
    await client.shutdown_session()


def open_calc(client) -> tuple[str, str]:
    path = client.root / "pkg" / "calc.py"
    text = path.read_text()
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                             text=text)))
    return uri, text


def command(name: str, uri: str, line: int, character: int, **extra) -> types.ExecuteCommandParams:
    argument = {"uri": uri, "position": {"line": line, "character": character}, **extra}
    return types.ExecuteCommandParams(command=name, arguments=[argument])


def titled(client, title: str) -> dict:
    """The work-done progress the server reported under `title`, by token."""
    return {token: values for token, values in client.progress_reports.items()
            if values and getattr(values[0], "title", None) == title}


async def test_first_index_reports_progress(session):
    if not session.capabilities.window or not session.capabilities.window.work_done_progress:
        pytest.skip("this client does not show progress")
    for _ in range(100):
        indexing = titled(session, "localcode: indexing")
        if indexing and list(indexing.values())[0][-1].kind == "end":
            break
        await asyncio.sleep(0.05)
    ((_, values),) = indexing.items()
    assert [v.kind for v in values][0] == "begin" and values[-1].kind == "end"
    assert any(v.kind == "report" and v.message.endswith("files") for v in values)
    assert values[0].cancellable is False


async def test_model_load_reports_progress(session):
    if not session.capabilities.window or not session.capabilities.window.work_done_progress:
        pytest.skip("this client does not show progress")
    uri, _ = open_calc(session)
    # the first command loads the model inside its own progress
    await session.workspace_execute_command_async(command("localcode.explain", uri, 4, 4))
    ((_, values),) = titled(session, "localcode: explain").items()
    messages = [v.message for v in values if v.kind == "report"]
    assert messages[0].startswith("loading the model") and values[-1].kind == "end"
    assert messages[1:4] == ["assembling the model 0%", "assembling the model 50%",
                             "assembling the model 100%"]
    assert not titled(session, "localcode: loading the model")


async def test_first_completion_loads_the_model_under_progress(session):
    if not session.capabilities.window or not session.capabilities.window.work_done_progress:
        pytest.skip("this client does not show progress")
    uri, _ = open_calc(session)
    await session.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=4, character=4),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    ((_, values),) = titled(session, "localcode: loading the model").items()
    assert values[0].kind == "begin" and values[-1].kind == "end"
    assert values[-2].message == "assembling the model 100%"
    assert values[0].cancellable is False


async def test_capabilities_advertised(session):
    caps = session.init_result.capabilities
    assert caps.inline_completion_provider is not None  # even for Neovim, which does not ask
    assert caps.completion_provider is not None
    assert caps.code_action_provider is not None
    assert set(caps.execute_command_provider.commands) >= {
        "localcode.implement", "localcode.fix", "localcode.explain", "localcode.health"}
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    offered = (session.capabilities.general.position_encodings
               if session.capabilities.general else None) or ["utf-16"]
    assert caps.position_encoding == offered[0]


async def test_incremental_sync_feeds_the_engine_overlay(session):
    uri, text = open_calc(session)
    # insert a body into `add` (line 5 is the docstring line) and an emoji (2 UTF-16 units)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=3),
                              end=types.Position(line=0, character=3)),
            text="😀"),
            types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=5),
                              end=types.Position(line=0, character=10)),
            text="")]))
    # an out-of-range change is refused, not appended
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=500, character=0),
                              end=types.Position(line=500, character=0)),
            text="junk")]))
    actions = await code_actions(session, uri, 4, 4)
    assert actions and "add" in actions[0]["title"]
    await asyncio.sleep(0.1)
    assert any("rejected" in m.message for m in session.log_messages)
    result = await session.workspace_execute_command_async(command(
        "localcode.explain", uri, 4, 4))
    assert result["kind"] == "explanation" and result["status"] == "explained"
    # the engine saw the edited text: its explanation names the symbol at the cursor
    assert "add" in result["markdown"] and "add" in result["title"]
    assert not [m for m in session.messages if m.type == types.MessageType.Error]


async def test_code_action_applies_a_versioned_minimal_edit(session):
    uri, text = open_calc(session)
    actions = await code_actions(session, uri, 4, 0)
    titles = [a["title"] for a in actions]
    assert "localcode: implement/fix this `add`" in titles
    assert "localcode: explain this `add`" in titles
    assert actions[0]["command"]["command"] == "localcode.implement"
    result = await session.workspace_execute_command_async(command_params(actions[0]))
    assert result["applied"] is True, result
    (edit_params,) = session.applied_edits
    if edit_params.edit.document_changes is not None:  # VS Code: versioned edits
        (document_edit,) = edit_params.edit.document_changes
        assert document_edit.text_document.version == 1
        edits = document_edit.edits
    else:  # Neovim 0.11 does not announce documentChanges: plain changes
        edits = edit_params.edit.changes[uri]
    assert len(edits) == 1 and edits[0].new_text.strip() == "return a + b"
    new_text = apply_text_edits(text, edits,
                                session.init_result.capabilities.position_encoding)
    namespace: dict = {}
    exec(compile(new_text, "calc.py", "exec"), namespace)
    assert namespace["add"](2, 3) == 5


async def test_no_code_action_outside_functions(session):
    uri, _ = open_calc(session)
    actions = await code_actions(session, uri, 0, 0)
    assert not actions


async def test_stale_result_is_not_applied(session):
    uri, _ = open_calc(session)
    pending = asyncio.ensure_future(session.workspace_execute_command_async(command(
        "localcode.implement", uri, 4, 4, instruction="sleep")))
    await asyncio.sleep(0.3)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=0),
                              end=types.Position(line=0, character=0)), text="# hi\n")]))
    with pytest.raises(JsonRpcException) as caught:
        await pending
    assert caught.value.code == -32801
    assert not session.applied_edits


async def test_no_verified_candidate_gives_a_message_and_no_edit(session):
    uri, _ = open_calc(session)
    result = await session.workspace_execute_command_async(command(
        "localcode.implement", uri, 4, 4, instruction="fail"))
    assert result["applied"] is False
    assert "tests ✗" in result["message"] and "assert 6 == 5" in result["message"]
    assert not session.applied_edits
    assert any("assert 6 == 5" in m.message for m in session.messages)


async def test_edit_outside_the_workspace_is_refused(session):
    uri, _ = open_calc(session)
    with pytest.raises(JsonRpcException) as caught:
        await session.workspace_execute_command_async(command(
            "localcode.implement", uri, 4, 4, instruction="outside"))
    assert caught.value.code == -32602 and "outside" in caught.value.message
    assert not session.applied_edits


async def test_handler_exception_is_internal_error_without_traceback(session):
    uri, _ = open_calc(session)
    with pytest.raises(JsonRpcException) as caught:
        await session.workspace_execute_command_async(command(
            "localcode.implement", uri, 4, 4, instruction="crash"))
    assert caught.value.code == -32603
    assert "scripted failure" in caught.value.message
    assert not caught.value.data


async def test_bad_command_arguments_are_invalid_params(session):
    for arguments in ([], [{"uri": 3}], [{"uri": "file:///x", "position": {"line": -1,
                                                                         "character": 0}}]):
        with pytest.raises(JsonRpcException) as caught:
            await session.workspace_execute_command_async(types.ExecuteCommandParams(
                command="localcode.implement", arguments=arguments))
        assert caught.value.code == -32602


async def test_progress_begin_and_end_are_paired(session):
    uri, _ = open_calc(session)
    await session.workspace_execute_command_async(command("localcode.implement", uri, 4, 4))
    with pytest.raises(JsonRpcException):
        await session.workspace_execute_command_async(command(
            "localcode.implement", uri, 4, 4, instruction="crash"))
    if not session.capabilities.window or not session.capabilities.window.work_done_progress:
        assert not session.progress_reports
        return
    reports = titled(session, "localcode: implement/fix")
    assert len(reports) == 2
    for values in reports.values():
        kinds = [v.kind for v in values]
        assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("end") == 1
    messages = [v.message for values in reports.values() for v in values
                if v.kind == "report"]
    assert any(m.startswith("GENERATE") and "candidates 3" in m for m in messages)


async def test_cancel_request_stops_the_engine_quickly(session):
    uri, _ = open_calc(session)
    params = command("localcode.implement", uri, 4, 4, instruction="slow")
    future = session.protocol.send_request("workspace/executeCommand", params)
    await asyncio.sleep(0.3)
    assert not future.done()
    (msg_id,) = [k for k, f in session.protocol._request_futures.items() if f is future]
    started = time.monotonic()
    session.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcException) as caught:
        await asyncio.wrap_future(future)
    elapsed = time.monotonic() - started
    assert caught.value.code == -32800
    # the fake engine waits until cancelled: returning at all proves the cancel reached it;
    # the bound only catches a cancel that waits for some timeout (latency is benchmarked in
    # bench_server, not asserted on a loaded machine)
    assert elapsed < 5.0, elapsed
    reports = session.progress_reports
    for values in reports.values():
        assert values[-1].kind == "end"


async def test_progress_cancel_stops_the_engine(session):
    if not session.capabilities.window or not session.capabilities.window.work_done_progress:
        pytest.skip("this client does not show progress")
    uri, _ = open_calc(session)
    pending = asyncio.ensure_future(session.workspace_execute_command_async(command(
        "localcode.implement", uri, 4, 4, instruction="slow")))
    for _ in range(50):
        await asyncio.sleep(0.05)
        if titled(session, "localcode: implement/fix"):
            break
    (token,) = titled(session, "localcode: implement/fix")
    started = time.monotonic()
    session.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    with pytest.raises(JsonRpcException) as caught:
        await pending
    assert caught.value.code == -32800
    assert time.monotonic() - started < 5.0  # see test_cancel_request_stops_the_engine_quickly
    assert session.progress_reports[token][-1].kind == "end"


async def test_inline_completion_and_fallback(session):
    uri, text = open_calc(session)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=4, character=35),
                              end=types.Position(line=4, character=35)), text="\n    ")]))
    position = types.Position(line=5, character=4)
    inline = await session.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert [item.insert_text for item in inline.items] == ["return a + b"]
    completion = await session.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    client_has_inline = bool(session.capabilities.text_document.inline_completion)
    if client_has_inline:
        assert list(completion.items) == []  # no double model run for clients with ghost text
    else:
        assert completion.items[0].text_edit.new_text == "return a + b"


async def test_completion_equal_to_text_after_cursor_is_dropped(session):
    uri, text = open_calc(session)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=4, character=35),
                              end=types.Position(line=4, character=35)),
            text="\n    return a + b")]))
    inline = await session.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=5, character=4),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert list(inline.items) == []


async def test_new_completion_cancels_the_stale_one(session):
    uri, text = open_calc(session)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=0),
                              end=types.Position(line=0, character=0)),
            text="# slow_completion\n")]))
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=0, character=2),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic))
    first = asyncio.ensure_future(session.text_document_inline_completion_async(params))
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(session.text_document_inline_completion_async(params))
    started = time.monotonic()
    stale = await first
    assert time.monotonic() - started < 5.0  # the stale request waits until superseded
    assert list(stale.items) == []
    msg_ids = [k for k, f in session.protocol._request_futures.items()]
    for msg_id in msg_ids:
        session.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    with pytest.raises(JsonRpcException):
        await second


async def test_ghost_text_and_the_completion_menu_do_not_cancel_each_other(session):
    """Neovim 0.11 asks both for one document (ghost text and the completion menu): a newer
    request of one kind supersedes only an older one of the same kind."""
    uri, text = open_calc(session)
    session.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=0),
                              end=types.Position(line=0, character=0)),
            text="# slow_completion\n")]))
    position = types.Position(line=0, character=2)
    ghost = asyncio.ensure_future(session.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position,
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic))))
    await asyncio.sleep(0.2)
    menu = asyncio.ensure_future(session.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position)))
    await asyncio.sleep(0.5)
    assert not ghost.done()  # the menu request did not supersede the ghost text
    for msg_id in list(session.protocol._request_futures):
        session.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    for pending in (ghost, menu):
        try:
            await pending
        except JsonRpcException:
            pass


async def test_configuration_change_and_invalid_settings(session):
    uri, _ = open_calc(session)
    session.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"localcode": {"generation": {"candidates": "many"}}}))
    session.set_configuration({"generation": {"candidates": "many"}}, section="localcode")
    await asyncio.sleep(0.5)
    warnings = [m for m in session.log_messages if "invalid settings" in m.message]
    assert len(warnings) == 1, [m.message for m in session.log_messages]
    assert not session.messages  # a log line, no popup
    health = await session.workspace_execute_command_async(types.ExecuteCommandParams(
        command="localcode.health", arguments=[]))
    assert health["ok"] is True
