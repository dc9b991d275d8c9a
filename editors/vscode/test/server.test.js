const test = require("node:test");
const assert = require("node:assert/strict");
const { configuration } = require("./vscode-stub");
const { serverCommand, ServerNotFound } = require("../out/src/server");

/** A made-up machine: which files are executables, what PATH says, which Pythons have localcode. */
function world({ executables = [], pathEnv = "/usr/bin", withLocalcode = [], folder = "/ws", interpreter } = {}) {
  return {
    workspaceFolder: folder,
    pythonInterpreter: interpreter,
    pathEnv,
    platform: "linux",
    isExecutable: (file) => executables.includes(file),
    hasLocalcode: (python) => withLocalcode.includes(python),
  };
}

test("an explicit command wins, gets serve, log level and extra args", () => {
  const config = configuration({
    "server.command": { globalValue: ["/opt/lc/localcode"] },
    "server.pythonPath": { globalValue: "/venv/bin/python" },
    "server.logLevel": { defaultValue: "INFO", globalValue: "DEBUG" },
    "server.extraArgs": { globalValue: ["--foo"] },
  });
  assert.deepEqual(serverCommand(config, true, world({ executables: ["/ws/.venv/bin/localcode"] })), {
    command: "/opt/lc/localcode", args: ["serve", "--log-level", "DEBUG", "--foo"], source: "setting",
  });
});

test("pythonPath: python -m localcode_lsp serve", () => {
  const config = configuration({ "server.pythonPath": { globalValue: "/venv/bin/python" } });
  assert.deepEqual(serverCommand(config, true, world()), {
    command: "/venv/bin/python", args: ["-m", "localcode_lsp", "serve"], source: "setting",
  });
});

test("discovery order: workspace .venv, then the Python extension's interpreter, then PATH", () => {
  const everything = world({
    executables: ["/ws/.venv/bin/localcode", "/usr/bin/localcode"],
    interpreter: "/home/me/envs/py/bin/python", withLocalcode: ["/home/me/envs/py/bin/python"],
  });
  assert.deepEqual(serverCommand(configuration({}), true, everything),
    { command: "/ws/.venv/bin/localcode", args: ["serve"], source: "workspace .venv" });
  const noVenv = { ...everything, isExecutable: (file) => file === "/usr/bin/localcode" };
  assert.deepEqual(serverCommand(configuration({}), true, noVenv), {
    command: "/home/me/envs/py/bin/python", args: ["-m", "localcode_lsp", "serve"], source: "Python extension",
  });
  // an interpreter without localcode_lsp is passed over
  const without = { ...noVenv, hasLocalcode: () => false };
  assert.deepEqual(serverCommand(configuration({}), true, without),
    { command: "/usr/bin/localcode", args: ["serve"], source: "PATH" });
});

test("untrusted workspace: no workspace .venv or interpreter, --untrusted before serve", () => {
  const config = configuration({
    "server.command": { workspaceValue: ["./run-me.sh"], globalValue: ["/usr/bin/localcode", "serve"] },
  });
  assert.deepEqual(serverCommand(config, false, world()), {
    command: "/usr/bin/localcode", args: ["--untrusted", "serve"], source: "setting",
  });
  assert.deepEqual(serverCommand(config, true, world()), { command: "./run-me.sh", args: ["serve"], source: "setting" });
  // the project's own .venv is project code: not run before the workspace is trusted
  const venvOnly = world({ executables: ["/ws/.venv/bin/localcode", "/usr/bin/localcode"] });
  assert.deepEqual(serverCommand(configuration({}), false, venvOnly),
    { command: "/usr/bin/localcode", args: ["--untrusted", "serve"], source: "PATH" });
});

test("nothing found: an error that says where it looked and what to do", () => {
  assert.throws(() => serverCommand(configuration({}), true, world({ interpreter: "/usr/bin/python3" })), (error) => {
    assert.ok(error instanceof ServerNotFound);
    assert.match(error.message, /looked at \/ws\/\.venv\/bin\/localcode/);
    assert.match(error.message, /\/usr\/bin\/python3 \(no localcode_lsp there\)/);
    assert.match(error.message, /make demo/);
    assert.match(error.message, /pipx install/);
    assert.match(error.message, /localcode\.server\.command/);
    assert.doesNotMatch(error.message, /pip install localcode-lsp/);
    return true;
  });
});
