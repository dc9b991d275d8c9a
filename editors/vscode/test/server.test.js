const test = require("node:test");
const assert = require("node:assert/strict");
const { configuration } = require("./vscode-stub");
const { serverCommand } = require("../out/src/server");

test("default: localcode serve from PATH", () => {
  assert.deepEqual(serverCommand(configuration({}), true), { command: "localcode", args: ["serve"] });
});

test("pythonPath: python -m localcode_lsp serve", () => {
  const config = configuration({ "server.pythonPath": { globalValue: "/venv/bin/python" } });
  assert.deepEqual(serverCommand(config, true), {
    command: "/venv/bin/python", args: ["-m", "localcode_lsp", "serve"],
  });
});

test("an explicit command wins, gets serve, log level and extra args", () => {
  const config = configuration({
    "server.command": { globalValue: ["/opt/lc/localcode"] },
    "server.pythonPath": { globalValue: "/venv/bin/python" },
    "server.logLevel": { defaultValue: "INFO", globalValue: "DEBUG" },
    "server.extraArgs": { globalValue: ["--foo"] },
  });
  assert.deepEqual(serverCommand(config, true), {
    command: "/opt/lc/localcode", args: ["serve", "--log-level", "DEBUG", "--foo"],
  });
});

test("untrusted workspace: --untrusted before serve and no workspace-chosen executable", () => {
  const config = configuration({
    "server.command": { workspaceValue: ["./run-me.sh"], globalValue: ["/usr/bin/localcode", "serve"] },
  });
  assert.deepEqual(serverCommand(config, false), {
    command: "/usr/bin/localcode", args: ["--untrusted", "serve"],
  });
  assert.deepEqual(serverCommand(config, true), { command: "./run-me.sh", args: ["serve"] });
});
