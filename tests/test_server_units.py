"""Unit tests of the server's pure parts: encodings, incremental sync, edit conversion,
function detection, suggestion filtering, argument validation, framing limits."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from localcode_lsp.data import GateResult, Patch, Result, TraceEvent, Verdict, apply_edits
from localcode_lsp.server.commands import parse_target
from localcode_lsp.server.completion import useful_suggestion
from localcode_lsp.server.documents import (
    UTF8,
    UTF16,
    UTF32,
    DocumentStore,
    RangeError,
    code_point_column,
    offset_of,
    position_of,
)
from localcode_lsp.server.edits import failure_message, lsp_edits
from localcode_lsp.server.progress import progress_message
from localcode_lsp.server.transport import read_frames

TEXT = "a😀b = 'é'\r\nsecond\rthird\n"


@pytest.mark.parametrize("encoding, column, expected", [
    (UTF16, 3, 2), (UTF16, 1, 1), (UTF8, 5, 2), (UTF32, 2, 2), (UTF16, 99, 9),
])
def test_columns_convert_per_encoding(encoding, column, expected):
    assert code_point_column(TEXT, 0, column, encoding) == expected


def test_lines_break_only_at_lsp_line_ends():
    text = "x\x0cy\u2028z\nnext"
    assert offset_of(text, 1, 0, UTF16) == text.index("next")
    assert position_of(TEXT, TEXT.index("third"), UTF16) == (2, 0)
    with pytest.raises(RangeError):
        offset_of(TEXT, 10, 0, UTF16)


def change(start, end, text):
    return types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=start[0], character=start[1]),
                          end=types.Position(line=end[0], character=end[1])), text=text)


def test_incremental_changes_apply_in_order_and_refuse_bad_ranges():
    store = DocumentStore()
    store.open("u", TEXT, 1)
    document = store.change("u", 2, [change((0, 3), (0, 4), "B"), change((1, 0), (1, 6), "2")],
                            UTF16)
    assert document.text == "a😀B = 'é'\r\n2\rthird\n" and document.version == 2
    for bad in (change((9, 0), (9, 0), "x"), change((0, 3), (0, 1), "x")):
        with pytest.raises(RangeError):
            store.change("u", 3, [change((0, 0), (0, 0), "ok"), bad], UTF16)
        assert store.get("u").text == document.text  # all or nothing
    full = types.TextDocumentContentChangeWholeDocument(text="new")
    assert store.change("u", 4, [full], UTF16).text == "new"


@pytest.mark.parametrize("encoding", [UTF8, UTF16, UTF32])
def test_patch_edits_round_trip_through_lsp_positions(encoding):
    before = "def f():\n    '😀 é'\n    pass\n\nx = 1"
    after = "def f():\n    '😀 é'\n    return 1\n\nx = 2\n"
    patch = Patch("f.py", before, after, 1)
    assert apply_edits(before, patch.edits()) == after
    edits = lsp_edits(before, patch.edits(), encoding)
    resolved = []
    for edit in edits:
        start = offset_of(before, edit.range.start.line, edit.range.start.character, encoding)
        end = offset_of(before, edit.range.end.line, edit.range.end.character, encoding)
        resolved.append((start, end, edit.new_text))
    text = before
    for start, end, new_text in sorted(resolved, reverse=True):
        text = text[:start] + new_text + text[end:]
    assert text == after
    assert len(edits) == 2  # minimal: the unchanged lines are not rewritten


def test_useful_suggestion_drops_repeats_and_blanks():
    assert useful_suggestion("return a + b", "\n")
    assert not useful_suggestion("return a + b", "return a + b\n")
    assert not useful_suggestion("   ", "")
    assert not useful_suggestion("x)  ", "x)\n")


def test_command_arguments_are_validated():
    uri, line, character, instruction, diagnostics = parse_target(
        [{"uri": "file:///w/a.py", "position": {"line": 3, "character": 1},
          "instruction": "faster", "diagnostics": ["E1"]}])
    assert (uri, line, character, instruction, diagnostics) == (
        "file:///w/a.py", 3, 1, "faster", ["E1"])
    for bad in (None, [], [1], [{"uri": "x"}],
                [{"uri": "x", "position": {"line": True, "character": 0}}],
                [{"uri": "x", "position": {"line": 0, "character": 0}, "instruction": 5}]):
        with pytest.raises(JsonRpcInvalidParams):
            parse_target(bad)


def test_messages_for_progress_and_failures():
    assert progress_message(TraceEvent("GENERATE", "sampling", {"candidates": 4})) == \
        "GENERATE: sampling · candidates 4"
    verdicts = [Verdict(0, [GateResult("parse", False, ["SyntaxError line 2"])]),
                Verdict(1, [GateResult("parse", True), GateResult("test", False,
                                                                  ["test_x: assert 1 == 2"])])]
    message = failure_message(Result(status="no_candidate", verdicts=verdicts,
                                     message="no candidate passed"))
    assert "parse ✓, tests ✗" in message and "assert 1 == 2" in message
    assert "SyntaxError" not in message  # the best candidate's feedback, not the worst


def test_framing_limits():
    data = (b"Content-Length: 2\r\n\r\n{}"
            + b"X-Long: " + b"a" * 20000 + b"\r\n\r\n"
            + b"Content-Length: 999999999\r\n\r\n" + b"z" * 100
            )
    bodies: list[bytes] = []
    oversized: list[int] = []
    position = 0

    async def readline(limit: int) -> bytes:
        nonlocal position
        end = data.find(b"\n", position, position + limit)
        end = position + limit if end < 0 else end + 1
        chunk, position = data[position:end], min(end, len(data))
        return chunk

    async def read(n: int) -> bytes:
        nonlocal position
        chunk, position = data[position:position + n], min(position + n, len(data))
        return chunk

    asyncio.run(read_frames(readline, read, bodies.append, oversized.append, max_body=1000))
    assert bodies == [b"{}"]
    assert oversized == []  # the input ended while draining: nothing is allocated or handled


def test_server_import_pulls_in_no_model_torch_or_index_libraries():
    import subprocess
    import sys

    code = ("import sys, localcode_lsp.server.run, localcode_lsp.cli.serve\n"
            "heavy = [m for m in ('torch', 'llama_cpp', 'tree_sitter', 'lancedb', "
            "'sentence_transformers') if m in sys.modules]\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_settings_change_reaches_the_real_engines_gate_and_trust(tmp_path, isolated_home):
    """workspace/didChangeConfiguration -> Configuration.apply -> Engine.reconfigure: the gate
    the engine already built uses the new settings; trust can be taken back, not granted."""
    from localcode_lsp.server.server import LocalcodeServer

    server = LocalcodeServer()
    server.session.take_settings({"trusted": True}, may_trust=True)  # initializationOptions
    server.session.add_root(tmp_path.as_uri())
    engine = server.session.engine_for((tmp_path / "x.py").as_uri())
    try:
        gate = engine.gate
        assert gate.config.verification.test is True and engine.workspace.trusted
        server.configuration.apply({"localcode": {"verification": {"test": False}}})
        assert engine.gate is gate and gate.config.verification.test is False
        server.configuration.apply({"trusted": False})
        assert engine.workspace.trusted is False
        server.configuration.apply({"trusted": True})
        assert engine.workspace.trusted is False
    finally:
        server.close()


def test_request_registry_owns_every_cancel_token():
    """Cancel by id, by a linked key (a progress token), supersede by document; a request id
    the client reuses does not unregister the newer request when the older one ends."""
    from localcode_lsp.server.requests import RequestRegistry

    registry = RequestRegistry()
    first = registry.begin(7, "workspace/executeCommand")
    again = registry.begin(7, "workspace/executeCommand")  # the same id while 7 is in flight
    registry.end(first)
    assert registry.get(7) is again
    registry.link(("progress", "tok"), again)
    assert registry.cancel_linked(("progress", "tok"), "cancelled from the progress UI")
    assert again.cancel.cancelled and again.cancel.reason == "cancelled from the progress UI"
    older = registry.begin("a", "textDocument/inlineCompletion")
    newer = registry.begin("b", "textDocument/inlineCompletion")
    registry.link(("completion", "file:///x.py"), older, supersede="superseded")
    registry.link(("completion", "file:///x.py"), newer, supersede="superseded")
    assert older.cancel.reason == "superseded" and not newer.cancel.cancelled
    assert not registry.cancel("never-sent")
    registry.cancel_all("server exiting")
    assert newer.cancel.reason == "server exiting"


def test_trust_is_granted_only_by_the_client_and_never_over_serve_untrusted():
    from localcode_lsp.server.session import Session

    def quiet(*args, **kwargs):
        pass

    def session(trusted):
        return Session(lambda *a, **k: None, trusted=trusted, log_to_client=quiet)

    silent = session(None)
    silent.take_settings({"generation": {"candidates": 2}}, may_trust=True)
    assert silent.trusted is False  # nobody said so
    granted = session(None)
    granted.take_settings({"localcode": {"trusted": True}}, may_trust=True)
    assert granted.trusted is True and granted.overrides == {}
    forced = session(False)  # localcode serve --untrusted
    forced.take_settings({"trusted": True}, may_trust=True)
    assert forced.trusted is False
    settings_only = session(None)
    settings_only.take_settings({"trusted": True})  # workspace settings (may be the repo's)
    assert settings_only.trusted is False
