const test = require("node:test");
const assert = require("node:assert/strict");
const { configuration } = require("./vscode-stub");
const settings = require("../out/src/settings");
const packageJson = require("../package.json");

test("camelCase setting names map to localcode.toml keys", () => {
  assert.equal(settings.toSnakeCase("contextLength"), "context_length");
  assert.equal(settings.toSnakeCase("memoryLimitMb"), "memory_limit_mb");
  assert.equal(settings.toSnakeCase("nGpuLayers"), "n_gpu_layers");
  assert.equal(settings.toSnakeCase("candidates"), "candidates");
});

test("only explicitly set values reach initializationOptions, nested like localcode.toml", () => {
  const config = configuration({
    "generation.candidates": { defaultValue: 5, globalValue: 3 },
    "generation.temperature": { defaultValue: 0.6 },
    "model.contextLength": { defaultValue: 8192, workspaceValue: 4096 },
    "verification.typeCheck": { defaultValue: false, workspaceFolderValue: true, workspaceValue: false },
    "model.path": { defaultValue: "", globalValue: "" },
  });
  assert.deepEqual(settings.tomlTables(config, true), {
    generation: { candidates: 3 },
    model: { context_length: 4096 },
    verification: { type_check: true },
  });
});

test("an untrusted workspace cannot point the server at a model file or URL", () => {
  const config = configuration({
    "model.path": { defaultValue: "", globalValue: "/models/user.gguf", workspaceValue: "./evil.gguf" },
    "model.url": { defaultValue: "", workspaceValue: "http://10.0.0.1" },
    "generation.candidates": { defaultValue: 5, workspaceValue: 2 },
  });
  assert.deepEqual(settings.tomlTables(config, false), {
    model: { path: "/models/user.gguf" },
    generation: { candidates: 2 },
  });
  assert.deepEqual(settings.tomlTables(config, true), {
    model: { path: "./evil.gguf", url: "http://10.0.0.1" },
    generation: { candidates: 2 },
  });
});

test("every mirrored setting is declared in package.json with a description and the default of localcode.toml", () => {
  const properties = packageJson.contributes.configuration.properties;
  const tomlDefaults = {
    "model.context_length": 8192, "generation.candidates": 5, "generation.max_retries": 3,
    "generation.temperature": 0.6, "context.code_budget": 1536, "verification.type_check": false,
    "index.update_on_save": true,
  };
  for (const [section, keys] of Object.entries(settings.TOML_SETTINGS)) {
    for (const key of keys) {
      const declared = properties[`localcode.${section}.${key}`];
      assert.ok(declared, `localcode.${section}.${key} is not declared`);
      assert.ok(declared.description || declared.markdownDescription, `${section}.${key} has no description`);
      const toml = `${section}.${settings.toSnakeCase(key)}`;
      if (toml in tomlDefaults) {
        assert.equal(declared.default, tomlDefaults[toml], toml);
      }
    }
  }
});

test("settings that name executables are restricted in untrusted workspaces", () => {
  const restricted = packageJson.capabilities.untrustedWorkspaces.restrictedConfigurations;
  assert.equal(packageJson.capabilities.untrustedWorkspaces.supported, "limited");
  for (const key of settings.RESTRICTED_SETTINGS) {
    assert.ok(restricted.includes(`localcode.${key}`), key);
    assert.ok(packageJson.contributes.configuration.properties[`localcode.${key}`], key);
  }
});

test("server and model-location changes need a restart, sampling changes do not", () => {
  const affects = (changed) => (section) => changed.some((c) => c === section || c.startsWith(section + "."));
  assert.equal(settings.needsRestart(affects(["localcode.server.command"])), true);
  assert.equal(settings.needsRestart(affects(["localcode.model.path"])), true);
  assert.equal(settings.needsRestart(affects(["localcode.generation.candidates"])), false);
});

test("the server is told whether the workspace is trusted (it trusts none by default)", () => {
  const config = configuration({ "generation.candidates": { defaultValue: 5, globalValue: 2 } });
  assert.deepEqual(settings.serverSettings(config, false),
    { generation: { candidates: 2 }, trusted: false, explanation_document: true });
  assert.deepEqual(settings.serverSettings(config, true),
    { generation: { candidates: 2 }, trusted: true, explanation_document: true });
});

test("the API key travels only in the server's environment, named by apiKeyEnv", () => {
  const base = { PATH: "/usr/bin" };
  const none = settings.serverEnvironment(base, configuration({}), true, undefined);
  assert.deepEqual(none, { env: { PATH: "/usr/bin" } });
  // a stored key, no variable named: LOCALCODE_API_KEY, and the server is told to read it
  const stored = settings.serverEnvironment(base, configuration({}), true, "sk-secret");
  assert.equal(stored.env.LOCALCODE_API_KEY, "sk-secret");
  assert.equal(stored.apiKeyEnv, "LOCALCODE_API_KEY");
  assert.equal(base.LOCALCODE_API_KEY, undefined); // the extension host's own env is untouched
  const tables = settings.serverSettings(configuration({}), true, stored.apiKeyEnv);
  assert.deepEqual(tables.model, { api_key_env: "LOCALCODE_API_KEY" });
  assert.doesNotMatch(JSON.stringify(tables), /sk-secret/);
  // the user's own variable name wins
  const named = configuration({ "model.apiKeyEnv": { defaultValue: "", globalValue: "TEAM_VLLM_KEY" } });
  const mine = settings.serverEnvironment(base, named, true, "sk-secret");
  assert.equal(mine.env.TEAM_VLLM_KEY, "sk-secret");
  assert.deepEqual(settings.serverSettings(named, true, mine.apiKeyEnv).model, { api_key_env: "TEAM_VLLM_KEY" });
  // an untrusted workspace cannot pick the variable the key lands in
  const evil = configuration({ "model.apiKeyEnv": { defaultValue: "", workspaceValue: "LD_PRELOAD" } });
  assert.equal(settings.serverEnvironment(base, evil, false, "sk").apiKeyEnv, "LOCALCODE_API_KEY");
});

test("remote model name, catalogue name and FIM template reach the server in localcode.toml's shape", () => {
  const config = configuration({
    "model.name": { defaultValue: "qwen2.5-coder-1.5b-instruct", globalValue: "qwen2.5-coder-0.5b-instruct" },
    "model.backend": { defaultValue: "llama.cpp", globalValue: "openai" },
    "model.model": { defaultValue: "", globalValue: "qwen2.5-coder:1.5b" },
    "model.fimTemplate": { defaultValue: "", globalValue: "qwen" },
    "knowledge.maxMb": { defaultValue: 32, globalValue: 8 },
  });
  assert.deepEqual(settings.tomlTables(config, true), {
    model: { name: "qwen2.5-coder-0.5b-instruct", backend: "openai", model: "qwen2.5-coder:1.5b", fim_template: "qwen" },
    knowledge: { max_mb: 8 },
  });
  const affects = (changed) => (section) => changed.some((c) => c === section || c.startsWith(section + "."));
  assert.equal(settings.needsRestart(affects(["localcode.model.name"])), true);
});
