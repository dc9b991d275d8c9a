"""Shared helpers for the language-server tests: start the real server process under pytest-lsp."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO_ROOT = Path(__file__).parent.parent
FAKE_SERVER = [sys.executable, str(REPO_ROOT / "tests/fixtures/server_fake/fake_server.py")]
REAL_SERVER = [sys.executable, "-m", "localcode_lsp", "serve"]
CLIENTS = ["visual-studio-code", "neovim"]


async def start_client(command: list[str], client_name: str, root: Path,
                       initialization_options: dict | None = None,
                       env: dict[str, str] | None = None,
                       capabilities: types.ClientCapabilities | None = None
                       ) -> tuple[LanguageClient, types.InitializeResult]:
    """Start the server process, register an applyEdit handler, and initialize a session."""
    client = await ClientServerConfig(server_command=command, server_env=env).start()
    client.applied_edits = []  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        client.applied_edits.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    client.registrations = []  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    caps = capabilities or client_capabilities(client_name)
    result = await client.initialize_session(types.InitializeParams(
        capabilities=caps,
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=initialization_options,
    ))
    return client, result


def apply_text_edits(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    """Apply LSP TextEdits (positions in the negotiated encoding) to text."""
    from localcode_lsp.server.documents import offset_of

    resolved = []
    for edit in edits:
        start = offset_of(text, edit.range.start.line, edit.range.start.character, encoding)
        end = offset_of(text, edit.range.end.line, edit.range.end.character, encoding)
        resolved.append((start, end, edit.new_text))
    for start, end, new_text in sorted(resolved, reverse=True):
        text = text[:start] + new_text + text[end:]
    return text


async def code_actions(client: LanguageClient, uri: str, line: int, character: int,
                       diagnostics: list | None = None) -> list:
    """textDocument/codeAction with the result left unstructured: lsprotocol's client-side hook
    parses every CodeAction that carries a command as a bare Command."""
    import asyncio
    import uuid

    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=line, character=character),
                          end=types.Position(line=line, character=character)),
        context=types.CodeActionContext(diagnostics=diagnostics or []))
    msg_id = str(uuid.uuid4())
    future = client.protocol.send_request(types.TEXT_DOCUMENT_CODE_ACTION, params, msg_id=msg_id)
    client.protocol._result_types[msg_id] = None
    return list(await asyncio.wait_for(asyncio.wrap_future(future), 30) or [])


def command_params(action) -> types.ExecuteCommandParams:
    """The executeCommand a client would send for an (unstructured) code action."""
    return types.ExecuteCommandParams(command=action["command"]["command"],
                                      arguments=action["command"]["arguments"])


def read_message(stream) -> dict | None:
    """One Content-Length framed JSON-RPC message from `stream`; None at end of stream."""
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        byte = stream.read(1)
        if not byte:
            return None
        header += byte
    length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
    return json.loads(stream.read(length))


def wait_for_steady_rss(pid: int, *, quiet_for: float = 3.0, limit: float = 90.0) -> int:
    """Wait until the server's memory stops moving (the index loads its embedder in the
    background after didOpen), so the bursts are measured against a settled baseline."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + limit
    last, since = process.memory_info().rss, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = process.memory_info().rss
        if abs(now - last) > 2 * 1024 * 1024:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return now
    return last
