const test = require("node:test");
const assert = require("node:assert/strict");
const { summarizeHealth, statusText } = require("../out/src/health");

test("a model path is shown by its file name, an index by its state", () => {
  const summary = summarizeHealth({ model: { path: "/cache/gemma-3-270m-q4_k_m.gguf" }, index: { state: "ready" } });
  assert.deepEqual(summary, { model: "gemma-3-270m-q4_k_m.gguf", index: "ready", problems: 0 });
  assert.equal(statusText(summary), "$(hubot) gemma-3-270m-q4_k_m.gguf · index ready");
});

test("failed checks are counted", () => {
  const summary = summarizeHealth({
    model: "embedded", checks: [{ name: "ruff", status: "ok" }, { name: "llama", status: "error" }],
  });
  assert.equal(summary.problems, 1);
  assert.match(statusText(summary), /warning\) 1$/);
});

test("unknown shapes degrade to '?' instead of throwing", () => {
  assert.deepEqual(summarizeHealth(null), { model: "?", index: "?", problems: 0 });
  assert.deepEqual(summarizeHealth({ model: [1, 2] }), { model: "?", index: "?", problems: 0 });
});

test("the shape localcode doctor reports: model name, index check, failed checks", () => {
  const report = {
    ok: false,
    checks: [
      { name: "config", ok: true, detail: "built-in defaults", required: true, hint: "" },
      { name: "model", ok: true, detail: "gemma", required: true, hint: "" },
      { name: "ruff", ok: false, detail: "not found", required: false, hint: "pip install ruff" },
      { name: "index", ok: true, detail: "not built yet (`localcode index` ...)", required: false, hint: "" },
    ],
    model: { path: "/c/gemma-3-270m-q4_k_m.gguf", name: "Gemma 3 270m", origin: "embedded default" },
  };
  assert.deepEqual(summarizeHealth(report), { model: "Gemma 3 270m", index: "not built", problems: 1 });
});

test("index statistics from a running server show as a file count", () => {
  const summary = summarizeHealth({ model: { name: "Gemma 3 270m" }, index: { files: 4, symbols: 4 }, checks: [] });
  assert.equal(statusText(summary), "$(hubot) Gemma 3 270m · index 4 files");
});
