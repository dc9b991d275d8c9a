const test = require("node:test");
const assert = require("node:assert/strict");
const stub = require("./vscode-stub");
const commands = require("../out/src/commands");

function fakeHost(answer) {
  const requests = [];
  const logs = [];
  const progressHandlers = new Map();
  let restarted = 0;
  let shownLog = 0;
  const client = {
    code2ProtocolConverter: { asUri: (uri) => uri.toString() },
    sendRequest(type, params, token) {
      // the languageclient takes a RequestType; its method is what goes on the wire
      requests.push({ method: typeof type === "string" ? type : type.method, params, token });
      return typeof answer === "function" ? answer(params, token, progressHandlers) : Promise.resolve(answer);
    },
    onProgress(_type, token, handler) {
      progressHandlers.set(token, handler);
      return { dispose: () => progressHandlers.delete(token) };
    },
  };
  const host = {
    client: () => client,
    restart: async () => { restarted += 1; },
    showLog: () => { shownLog += 1; },
    busy: (_label, work) => work,
    running: new commands.RunningTasks(),
    log: { info: (m) => logs.push(["info", m]), error: (m) => logs.push(["error", m]) },
  };
  return { host, requests, logs, progressHandlers, counts: () => ({ restarted, shownLog }) };
}

/** Strip what only the wire carries (token, workDoneToken) to compare the command itself. */
function sent(requests) {
  return requests.map(({ method, params }) => {
    const { workDoneToken: _ignored, ...rest } = params;
    return { method, params: rest };
  });
}

test.beforeEach(() => stub.reset());

test("every command is registered once, with the localcode.editor prefix (server commands stay free)", () => {
  const { host } = fakeHost(null);
  const disposables = commands.registerCommands(host);
  const names = [...stub.state.commands.keys()].sort();
  assert.deepEqual(names, [
    "localcode.editor.cancel", "localcode.editor.explain", "localcode.editor.health", "localcode.editor.implement",
    "localcode.editor.implementWithInstruction", "localcode.editor.restart", "localcode.editor.showLog",
  ]);
  for (const serverCommand of Object.values(commands.SERVER_COMMANDS)) {
    assert.ok(!stub.state.commands.has(serverCommand), serverCommand);
  }
  // every command is declared; the extension registers the menu, model and key ones itself
  const declared = require("../package.json").contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(declared, [...names, "localcode.editor.menu", "localcode.editor.pickModel",
    "localcode.editor.setApiKey"].sort());
  disposables.forEach((d) => d.dispose());
  assert.equal(stub.state.commands.size, 0);
});

test("implement sends workspace/executeCommand with {uri, position} at the cursor", async () => {
  const { host, requests } = fakeHost({ message: "applied 1 edit" });
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 4, 8);
  await stub.vscode.commands.executeCommand("localcode.editor.implement");
  assert.deepEqual(sent(requests), [{
    method: "workspace/executeCommand",
    params: { command: "localcode.implement", arguments: [{ uri: "file:///ws/m.py", position: { line: 4, character: 8 } }] },
  }]);
});

test("implement runs in a cancellable notification whose token reaches sendRequest", async () => {
  let release;
  const { host, requests, progressHandlers } = fakeHost((params, token) => new Promise((resolve, reject) => {
    // the server reports its stages to our workDoneToken; the notification shows them
    progressHandlers.get(params.workDoneToken)({ kind: "report", message: "GENERATE 2/5" });
    token.onCancellationRequested(() => reject(Object.assign(new Error("Request got cancelled"), { code: -32800 })));
    release = resolve;
  }));
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 4, 8);
  const running = stub.vscode.commands.executeCommand("localcode.editor.implement");
  await new Promise((resolve) => setImmediate(resolve));
  const [progress] = stub.state.progress;
  assert.equal(progress.options.location, stub.vscode.ProgressLocation.Notification);
  assert.equal(progress.options.cancellable, true);
  assert.deepEqual(progress.reports, [{ message: "GENERATE 2/5" }]);
  assert.equal(requests[0].token.isCancellationRequested, false);
  assert.equal(host.running.count, 1);
  progress.cancel(); // the notification's Cancel button
  assert.equal(requests[0].token.isCancellationRequested, true); // -> $/cancelRequest
  assert.equal(await running, undefined);
  assert.match(stub.state.messages.at(-1)[1], /implement cancelled; nothing was changed/);
  assert.equal(host.running.count, 0);
  assert.equal(progressHandlers.size, 0);
  void release;
});

test("'localcode: Cancel the running task' cancels the same request", async () => {
  const { host, requests } = fakeHost((_params, token) => new Promise((_resolve, reject) => {
    token.onCancellationRequested(() => reject(new Error("cancelled")));
  }));
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 0, 0);
  const running = stub.vscode.commands.executeCommand("localcode.editor.implement");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(await stub.vscode.commands.executeCommand("localcode.editor.cancel"), 1);
  assert.equal(requests[0].token.isCancellationRequested, true);
  assert.equal(await running, undefined);
  assert.equal(await stub.vscode.commands.executeCommand("localcode.editor.cancel"), 0);
  assert.match(stub.state.messages.at(-1)[1], /nothing is running/);
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

test("explain opens the answer as markdown beside the editor (the old message shape too)", async () => {
  const { host } = fakeHost({ explanation: "Adds two numbers." });
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 1, 0);
  await stub.vscode.commands.executeCommand("localcode.editor.explain");
  assert.deepEqual(stub.state.opened, [{ content: "Adds two numbers.", language: "markdown" }]);
  assert.equal(stub.state.shown[0].options.viewColumn, stub.vscode.ViewColumn.Beside);
});

test("an explanation result {kind, title, markdown} becomes an untitled markdown document", async () => {
  const { host } = fakeHost({ kind: "explanation", title: "add(a, b)", markdown: "Adds **two** numbers.\n" });
  commands.registerCommands(host);
  stub.state.activeTextEditor = stub.editorAt("/ws/m.py", 1, 0);
  await stub.vscode.commands.executeCommand("localcode.editor.explain");
  assert.deepEqual(stub.state.opened, [{ content: "# add(a, b)\n\nAdds **two** numbers.\n", language: "markdown" }]);
  assert.equal(stub.state.shown[0].options.viewColumn, stub.vscode.ViewColumn.Beside);
  assert.equal(commands.explanationDocument({ kind: "other", markdown: "x" }), undefined);
});

test("health needs no editor and shows the report as a readable markdown page", async () => {
  const { host, requests } = fakeHost({
    ok: false, model: { name: "Qwen2.5-Coder-1.5B-Instruct" },
    checks: [{ name: "ruff", ok: false, required: true, detail: "not found", hint: "pip install ruff" }],
  });
  commands.registerCommands(host);
  await stub.vscode.commands.executeCommand("localcode.editor.health");
  assert.deepEqual(requests[0].params, { command: "localcode.health", arguments: [] });
  assert.equal(stub.state.progress.length, 0); // quick: no notification
  const page = stub.state.opened[0];
  assert.equal(page.language, "markdown");
  assert.match(page.content, /^# localcode health/);
  assert.match(page.content, /model: Qwen2.5-Coder-1.5B-Instruct/);
  assert.match(page.content, /\| ruff \| ✗ \| not found<br>\*hint:\* pip install ruff \|/);
  assert.doesNotMatch(page.content, /^\{/m); // not JSON
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
