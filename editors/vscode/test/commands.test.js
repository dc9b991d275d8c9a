const test = require("node:test");
const assert = require("node:assert/strict");
const stub = require("./vscode-stub");
const commands = require("../out/src/commands");

function fakeHost(answer) {
  const requests = [];
  const logs = [];
  let restarted = 0;
  let shownLog = 0;
  const client = {
    code2ProtocolConverter: { asUri: (uri) => uri.toString() },
    sendRequest(method, params) {
      requests.push({ method, params });
      return typeof answer === "function" ? answer(method, params) : Promise.resolve(answer);
    },
  };
  const host = {
    client: () => client,
    restart: async () => { restarted += 1; },
    showLog: () => { shownLog += 1; },
    busy: (_label, work) => work,
    log: { info: (m) => logs.push(["info", m]), error: (m) => logs.push(["error", m]) },
  };
  return { host, requests, logs, counts: () => ({ restarted, shownLog }) };
}

test.beforeEach(() => stub.reset());

test("every command is registered once, with the localcode.editor prefix (server commands stay free)", () => {
  const { host } = fakeHost(null);
  const disposables = commands.registerCommands(host);
  const names = [...stub.state.commands.keys()].sort();
  assert.deepEqual(names, [
    "localcode.editor.explain", "localcode.editor.health", "localcode.editor.implement",
    "localcode.editor.implementWithInstruction", "localcode.editor.restart", "localcode.editor.showLog",
  ]);
  for (const serverCommand of Object.values(commands.SERVER_COMMANDS)) {
    assert.ok(!stub.state.commands.has(serverCommand), serverCommand);
  }
  const declared = require("../package.json").contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(declared, names);
  disposables.forEach((d) => d.dispose());
  assert.equal(stub.state.commands.size, 0);
});

test("implement sends workspace/executeCommand with {uri, position} at the cursor", async () => {
  const { host, requests } = fakeHost({ message: "applied 1 edit" });
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 4, 8);
  await stub.vscode.commands.executeCommand("localcode.editor.implement");
  assert.deepEqual(requests, [{
    method: "workspace/executeCommand",
    params: { command: "localcode.implement", arguments: [{ uri: "file:///ws/m.py", position: { line: 4, character: 8 } }] },
  }]);
});

test("implement with an instruction passes it along; cancelling the input box sends nothing", async () => {
  const { host, requests } = fakeHost(null);
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 0, 0);
  stub.state.inputBoxAnswer = undefined;
  await stub.vscode.commands.executeCommand("localcode.editor.implementWithInstruction");
  assert.equal(requests.length, 0);
  stub.state.inputBoxAnswer = "  handle the empty list ";
  await stub.vscode.commands.executeCommand("localcode.editor.implementWithInstruction");
  assert.equal(requests[0].params.arguments[0].instruction, "handle the empty list");
});

test("explain opens the answer as markdown beside the editor", async () => {
  const { host } = fakeHost({ explanation: "Adds two numbers." });
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 1, 0);
  await stub.vscode.commands.executeCommand("localcode.editor.explain");
  assert.deepEqual(stub.state.opened, [{ content: "Adds two numbers.", language: "markdown" }]);
  assert.equal(stub.state.shown[0].options.viewColumn, stub.vscode.ViewColumn.Beside);
});

test("health needs no editor and shows the report as JSON", async () => {
  const { host, requests } = fakeHost({ model: "gemma" });
  commands.registerCommands(host);
  await stub.vscode.commands.executeCommand("localcode.editor.health");
  assert.deepEqual(requests[0].params, { command: "localcode.health", arguments: [] });
  assert.equal(stub.state.opened[0].language, "json");
  assert.deepEqual(JSON.parse(stub.state.opened[0].content), { model: "gemma" });
});

test("no editor, no server, or a failing server: a clear message, no exception", async () => {
  const failing = fakeHost(() => Promise.reject(new Error("no verified candidate: tests failed")));
  commands.registerCommands(failing.host);
  await stub.vscode.commands.executeCommand("localcode.editor.implement");
  assert.match(stub.state.messages.at(-1)[1], /open a file/);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 0, 0);
  await stub.vscode.commands.executeCommand("localcode.editor.implement");
  assert.match(stub.state.messages.at(-1)[1], /implement failed: no verified candidate/);
  assert.deepEqual(failing.logs.at(-1), ["error", "implement failed: no verified candidate: tests failed"]);

  stub.reset();
  const stopped = fakeHost(null);
  stopped.host.client = () => undefined;
  commands.registerCommands(stopped.host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 0, 0);
  await stub.vscode.commands.executeCommand("localcode.editor.implement");
  assert.match(stub.state.messages.at(-1)[1], /not running/);
});

test("restart and show log reach the host", async () => {
  const { host, counts } = fakeHost(null);
  commands.registerCommands(host);
  await stub.vscode.commands.executeCommand("localcode.editor.restart");
  await stub.vscode.commands.executeCommand("localcode.editor.showLog");
  assert.deepEqual(counts(), { restarted: 1, shownLog: 1 });
});

test("resultText reads strings and message-like fields", () => {
  assert.equal(commands.resultText("x"), "x");
  assert.equal(commands.resultText({ message: "m" }), "m");
  assert.equal(commands.resultText(null), undefined);
  assert.equal(commands.resultText({ a: 1 }), '{\n  "a": 1\n}');
});
