"""The workspace around the documents, through the real server process (scripted engine with
the real AST index) under pytest-lsp: file watchers registered dynamically, localcode.toml edits
reconfiguring the engine, files changed on disk reindexed, settings reaching the engine, trust
that the client must grant, and explain as a document."""

from __future__ import annotations

import asyncio
from fnmatch import fnmatch

import pytest
from lsprotocol import types
from server_helpers import FAKE_SERVER, start_client

pytestmark = pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning")


async def health(client) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="localcode.health", arguments=[]))


async def until(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
async def vscode(copy_fixture, isolated_home):
    root = copy_fixture("server_project")
    client, _ = await start_client(FAKE_SERVER, "visual-studio-code", root,
                                   initialization_options={"trusted": True})
    client.root = root  # type: ignore[attr-defined]

    async def indexed() -> bool:  # the first index ran (it reads the files on disk)
        return any(values[0].title == "localcode: indexing" and values[-1].kind == "end"
                   for values in client.progress_reports.values())

    await until(indexed)
    yield client
    await client.shutdown_session()


def changed(client, *paths: str, kind=types.FileChangeType.Changed) -> None:
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(client.root / path).as_uri(), type=kind) for path in paths]))


async def test_watchers_are_registered_for_config_and_sources(vscode):
    await until(lambda: _true(vscode.registrations))
    (registration,) = vscode.registrations
    assert registration.method == "workspace/didChangeWatchedFiles"
    globs = [w["globPattern"] for w in registration.register_options["watchers"]]
    assert "**/localcode.toml" in globs
    source = [g for g in globs if g != "**/localcode.toml"]
    expanded = [f"**/*.{ext}" for g in source
                for ext in g[g.index("{") + 1:g.index("}")].split(",")]
    assert any(fnmatch("pkg/calc.py", g) for g in expanded)
    assert any(fnmatch("web/app.tsx", g) for g in expanded)


async def _true(value) -> bool:
    return bool(value)


async def test_editing_localcode_toml_reconfigures_the_engine(vscode):
    assert (await health(vscode))["candidates"] == 3  # the fixture's localcode.toml
    (vscode.root / "localcode.toml").write_text("[generation]\ncandidates = 7\n")
    changed(vscode, "localcode.toml")

    async def seven() -> bool:
        return (await health(vscode))["candidates"] == 7

    await until(seven)
    assert (await health(vscode))["reconfigured"][-1] == {"candidates": 7, "trusted": True}


async def test_a_file_changed_on_disk_is_reindexed(vscode):
    assert (await health(vscode))["symbols"]["pkg/calc.py"] == ["add", "square"]
    calc = vscode.root / "pkg" / "calc.py"
    calc.write_text(calc.read_text() + "\n\ndef cube(x: int) -> int:\n    return x ** 3\n")
    assert (await health(vscode))["symbols"]["pkg/calc.py"] == ["add", "square"]  # not yet
    changed(vscode, "pkg/calc.py")

    async def reindexed() -> bool:
        return (await health(vscode))["symbols"]["pkg/calc.py"] == ["add", "square", "cube"]

    await until(reindexed)


async def test_a_settings_change_reaches_the_engine_and_cannot_raise_trust(
        copy_fixture, isolated_home):
    root = copy_fixture("server_project")
    client, _ = await start_client(FAKE_SERVER, "visual-studio-code", root)
    try:
        assert (await health(client))["trusted"] is False  # nobody said it was trusted
        # workspace settings can come from the repository (.vscode/settings.json)
        client.set_configuration({"generation": {"candidates": 4}, "trusted": True},
                                 section="localcode")
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings=None))

        async def four() -> bool:
            return (await health(client))["candidates"] == 4

        await until(four)
        assert (await health(client))["trusted"] is False
    finally:
        await client.shutdown_session()


async def test_the_client_grants_trust_and_can_take_it_back(vscode):
    assert (await health(vscode))["trusted"] is True
    vscode.set_configuration({"trusted": False}, section="localcode")
    vscode.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))

    async def untrusted() -> bool:
        return (await health(vscode))["trusted"] is False

    await until(untrusted)


@pytest.mark.parametrize("document", [True, False])
async def test_explain_is_a_markdown_document(copy_fixture, isolated_home, document):
    root = copy_fixture("server_project")
    options = {"explanation_document": True} if document else None
    client, _ = await start_client(FAKE_SERVER, "neovim", root, initialization_options=options)
    try:
        uri = (root / "pkg" / "calc.py").as_uri()
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="localcode.explain",
            arguments=[{"uri": uri, "position": {"line": 4, "character": 4}}]))
        assert result["kind"] == "explanation"
        assert result["title"] == "localcode: explain add"
        assert result["markdown"].startswith("# add\n") and "adds two numbers" in \
            result["markdown"]
        await asyncio.sleep(0.1)
        popups = [m.message for m in client.messages]
        # a client that opens the document gets no popup; one that cannot gets a short one
        assert popups == ([] if document else ["add adds two numbers."])
    finally:
        await client.shutdown_session()
