"""The VS Code extension (editors/vscode): unit tests, lint, bundle and .vsix packaging, and an
end-to-end run in a real extension host (code-server from npm, opened by headless Chromium)
against the real `localcode serve` with the embedded model.

Everything here is installed by scripts/editors-setup.sh (npm ci, node@24, code-server, Debian
chromium); without it the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

# a skip here (a missing Neovim, node or code-server) fails CI: CI installs them
pytestmark = pytest.mark.required_in_ci

REPO = Path(__file__).resolve().parent.parent
EXTENSION = REPO / "editors" / "vscode"
E2E = Path(__file__).parent / "fixtures" / "editor_vscode_e2e"
TOOLS_ENV = REPO / ".tools" / "editors.env"
SETUP_HINT = "run scripts/editors-setup.sh first"


def tools() -> dict[str, str]:
    if not TOOLS_ENV.is_file():
        pytest.skip(f"editor tools are not installed: {SETUP_HINT}")
    values = {}
    for line in TOOLS_ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def npm(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    if not (EXTENSION / "node_modules").is_dir():
        pytest.skip(f"editors/vscode/node_modules is missing: {SETUP_HINT}")
    return subprocess.run(["npm", "--silent", *args], cwd=EXTENSION, capture_output=True,
                          text=True, timeout=timeout)


def test_extension_unit_tests_with_node_test() -> None:
    completed = npm("test")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "# fail 0" in output
    passed = int(output.split("# pass ")[1].split()[0])
    assert passed >= 20


def test_extension_typechecks() -> None:
    completed = npm("run", "lint")
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_extension_packages_to_vsix(tmp_path: Path) -> None:
    """`vsce package` runs the esbuild bundle (vscode:prepublish) and ships only the bundle."""
    completed = npm("run", "package")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    vsix = EXTENSION / "localcode-0.1.0.vsix"
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
    assert {"extension/dist/extension.js", "extension/package.json",
            "extension.vsixmanifest"} <= names
    assert not any(n.startswith("extension/node_modules/") or n.startswith("extension/src/")
                   for n in names)
    assert manifest["main"] == "./dist/extension.js"
    assert manifest["capabilities"]["untrustedWorkspaces"]["supported"] == "limited"
    assert manifest["engines"]["vscode"] == "^1.91.0"
    # the bundle carries the languageclient (no node_modules in the package)
    bundle = (EXTENSION / "dist" / "extension.js").read_text()
    assert "textDocument/inlineCompletion" in bundle


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def localcode_command() -> list[str]:
    script = Path(sys.executable).parent / "localcode"
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-m", "localcode_lsp", "serve"]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


STUB_SERVER = Path(__file__).parent / "fixtures" / "editor_stub_server" / "stub_server.py"


def run_in_code_server(tmp_path: Path, server_command: list[str], *, wait_s: float = 200,
                       **extra_config: object) -> tuple[dict, Path]:
    """Install the .vsix and the test-only extension into a fresh code-server, open the fixture
    workspace in headless Chromium, and return what the test extension saw in the host."""
    paths = tools()
    if not paths.get("CODE_SERVER") or not paths.get("CHROMIUM") or not paths.get("NODE24"):
        pytest.skip(f"code-server/chromium not installed (--no-e2e?): {SETUP_HINT}")
    vsix = Path(paths["VSIX"])
    assert vsix.is_file(), f"{vsix} is missing: {SETUP_HINT}"
    env = dict(os.environ)
    env["PATH"] = str(Path(paths["NODE24"]).parent) + os.pathsep + env["PATH"]
    # code-server's own config in the test dir (the user's ~/.config/code-server stays untouched)
    (tmp_path / "code-server.yaml").write_text("auth: none\ncert: false\n")
    extensions = tmp_path / "extensions"
    data = tmp_path / "data"
    settings = json.dumps({
        "localcode.server.command": server_command,
        "security.workspace.trust.enabled": False,
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "telemetry.telemetryLevel": "off",
        "workbench.startupEditor": "none",
        # VS Code for the web (code-server) saves after a delay by default: the inline step's
        # scratch insertion must not reach the file the test compares with the document
        "files.autoSave": "off",
    })
    # machine-scoped settings of a remote window are read from Machine/, the rest from User/
    for scope in ("User", "Machine"):
        (data / scope).mkdir(parents=True)
        (data / scope / "settings.json").write_text(settings)
    code_server = [paths["CODE_SERVER"], "--config", str(tmp_path / "code-server.yaml"),
                   "--extensions-dir", str(extensions),
                   "--user-data-dir", str(data)]

    # the test-only extension, packaged with the extension's own vsce
    e2e_ext = tmp_path / "e2e-extension"
    shutil.copytree(E2E / "extension", e2e_ext)
    vsce = EXTENSION / "node_modules" / ".bin" / "vsce"
    packaged = subprocess.run([str(vsce), "package", "--allow-missing-repository", "--out",
                               str(tmp_path / "e2e.vsix")], cwd=e2e_ext, capture_output=True,
                              text=True, timeout=120)
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    for package in (vsix, tmp_path / "e2e.vsix"):
        installed = subprocess.run([*code_server, "--install-extension", str(package)], env=env,
                                   capture_output=True, text=True, timeout=180)
        assert installed.returncode == 0, installed.stdout + installed.stderr

    workspace = tmp_path / "ws"
    shutil.copytree(E2E / "project", workspace)
    result_file = tmp_path / "result.json"
    config = {"file": str(workspace / "pkg" / "calc.py"), "line": 4, "character": 4,
              "inlineLine": 9, "inlineText": "    result = ", "attempts": 3,
              "result": str(result_file), **extra_config}
    (tmp_path / "e2e-config.json").write_text(json.dumps(config))
    env["LOCALCODE_E2E_CONFIG"] = str(tmp_path / "e2e-config.json")

    port = free_port()
    log = open(tmp_path / "code-server.log", "w")
    server = subprocess.Popen([*code_server, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}",
                               "--disable-workspace-trust", "--disable-telemetry",
                               "--disable-update-check", str(workspace)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    browser = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("code-server did not listen:\n" + (tmp_path / "code-server.log").read_text())
        browser = subprocess.Popen(
            [paths["CHROMIUM"], "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
             f"http://127.0.0.1:{port}/?folder={workspace}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + wait_s  # within the test's timeout
        while time.monotonic() < deadline and not result_file.exists():
            time.sleep(0.5)
        assert result_file.exists(), "no result from the extension host:\n" + \
            (tmp_path / "code-server.log").read_text()[-4000:]
    finally:
        if browser is not None:
            stop(browser)
        stop(server)
        log.close()

    return json.loads(result_file.read_text()), workspace


def check_common(result: dict, workspace: Path) -> None:
    assert result["errors"] == [], result["errors"]
    assert result["steps"] == ["activated", "client running", "implemented", "explained", "cancelled",
                               "keys", "inline", "health"]
    assert result["installed"] is True
    # our commands and the server's (registered by the languageclient) are both there
    for command in ("localcode.editor.implement", "localcode.editor.health", "localcode.implement",
                    "localcode.explain"):
        assert command in result["commands"]
    assert any(t.startswith("localcode: implement/fix this") for t in result["actionTitles"])
    assert any(a and a.get("applied") for a in result["attempts"]), result["attempts"]
    text = result["text"]
    assert text == (workspace / "pkg" / "calc.py").read_text()
    compile(text, "calc.py", "exec")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_calc.py"], cwd=workspace, capture_output=True, text=True,
                           timeout=120)
    assert tests.returncode == 0, text + tests.stdout + tests.stderr
    # the languageclient registered an inline completion provider from the server's capability
    assert result["inlineProvider"] is True
    assert isinstance(result["inlineItems"], list)
    # the status bar's source: the server's doctor report through our health command
    assert result["health"] and result["health"]["model"]
    # the cancel reached the running request and nothing was changed
    assert result["cancel"]["count"] == 1, result["cancel"]
    assert result["cancel"]["answer"] is None and result["cancel"]["textUnchanged"] is True
    # the keybinding is ours alone among every default keybinding of this VS Code
    keys = result["keybindings"]
    assert keys["total"] > 300, keys
    assert keys["ours"] == ["ctrl+alt+j"] and keys["listed"] == ["ctrl+alt+j"]
    assert keys["conflicts"] == [], keys["conflicts"]
    # the check sees what the old key collided with (VS Code's Open Chat)
    assert "workbench.action.chat.open" in keys["ctrlAltI"]
    # the LogOutputChannel got the start-up line (the host writes log channels to files)
    logs = list((workspace.parent / "data" / "logs").glob("*/exthost*/localcode.localcode/localcode.log"))
    assert logs, "no localcode log channel file"
    assert "starting " in logs[0].read_text()


def test_code_server_with_stub_server(tmp_path: Path) -> None:
    """The extension's wiring in the real host, fast and deterministic (a stand-in server)."""
    result, workspace = run_in_code_server(tmp_path, [sys.executable, str(STUB_SERVER)],
                                           dumpKeys=str(tmp_path / "default-keybindings.json"))
    check_common(result, workspace)
    assert result["inlineItems"] == [{"insertText": "turn a * b", "range": [9, 13, 9, 13]}]
    assert result["health"]["model"]["path"] == "/models/stub.gguf"
    # explain's {kind: "explanation"} answer became a markdown document, not a popup
    assert result["explanation"] == "# calc.py line 5\n\nstub explanation at line 4"
    # $/cancelRequest reached the stand-in server: its running "model" stopped at once
    assert result["cancel"]["secondsAfterCancel"] < 3, result["cancel"]
    seen = json.loads(result["health"]["seen"])
    assert any(entry["command"] == "$/cancelRequest" for entry in seen), seen
    assert {"command": "slow", "state": "cancelled"} in seen, seen
    # our implement carried a workDoneToken: the server's stages show in our notification
    implement = next(entry for entry in seen if entry["command"] == "implement")
    assert str(implement["workDoneToken"]).startswith("localcode-")


@pytest.mark.model
@pytest.mark.timeout(900)
def test_code_server_end_to_end(tmp_path: Path, isolated_home: Path) -> None:
    """The packaged .vsix in code-server: starts the real server, the code action implements the
    empty function (document text checked, fixture tests pass), inline completion items come back
    through the host's provider."""
    result, workspace = run_in_code_server(tmp_path, localcode_command(), wait_s=780,
                                           cancelInstruction="handle negative numbers too",
                                           cancelAfterMs=4000, explainTimeoutMs=180000)
    check_common(result, workspace)
    # the real model stopped soon after the cancel (a running generation is not waited for)
    assert result["cancel"]["secondsAfterCancel"] < 15, result["cancel"]
    assert any(t.startswith("localcode: explain this") for t in result["actionTitles"])
    assert "model" in result["health"]["checks"]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_settings_mirror_every_localcode_toml_key() -> None:
    """Every key of every localcode.toml table is a VS Code setting with the same default (the
    API key itself is not: it lives in VS Code's secret storage)."""
    from localcode_lsp.config import Config

    manifest = json.loads((EXTENSION / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    missing, wrong_default = [], []
    for section, table in Config().as_dict().items():
        for key, default in table.items():
            name = f"localcode.{section}.{camel(key)}"
            if name not in properties:
                missing.append(name)
            elif properties[name].get("default") != default:
                wrong_default.append((name, properties[name].get("default"), default))
    assert missing == [] and wrong_default == []
    assert not any("apiKey" in name and not name.endswith("apiKeyEnv") for name in properties)


def test_keybinding_avoids_the_common_ones() -> None:
    """Not VS Code's Open Chat (ctrl+alt+i), its agent mode (ctrl+shift+alt+i) nor macOS developer
    tools (cmd+alt+i); the check against every default binding runs in the code-server test."""
    manifest = json.loads((EXTENSION / "package.json").read_text())
    keys = {(binding.get("key"), binding.get("mac")) for binding in manifest["contributes"]["keybindings"]}
    assert keys == {("ctrl+alt+j", "ctrl+alt+j")}
