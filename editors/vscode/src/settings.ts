// Settings mirroring localcode.toml: VS Code's camelCase keys <-> the server's snake_case tables.
// Only values the user set explicitly are sent, so the project's localcode.toml keeps its say
// for everything else (initializationOptions is the highest configuration layer).

/** The localcode.toml sections and keys the extension mirrors (camelCase as in package.json). */
export const TOML_SETTINGS: Readonly<Record<string, readonly string[]>> = {
  model: ["name", "path", "promptFamily", "contextLength", "nGpuLayers", "nThreads", "backend", "url",
    "requestTimeout", "fimTemplate", "model", "apiKeyEnv"],
  generation: ["candidates", "maxRetries", "temperature", "temperatureClassify", "maxTokens"],
  context: ["systemBudget", "codeBudget", "taskBudget", "fewShotExamples"],
  verification: ["parseCheck", "lint", "typeCheck", "test", "diffReview", "agreement", "testTimeout", "memoryLimitMb",
    "allowUnisolated"],
  index: ["embeddingModel", "updateOnSave", "maxFileBytes"],
  knowledge: ["enabled", "maxMb"],
};

/** The environment variable the extension fills from VS Code's secret storage when the user set
 * an API key but named no variable of their own (`localcode.model.apiKeyEnv`). */
export const DEFAULT_API_KEY_ENV = "LOCALCODE_API_KEY";

/** Settings that name an executable, a model file or a URL: never taken from an untrusted workspace. */
export const RESTRICTED_SETTINGS: readonly string[] = [
  "server.command",
  "server.pythonPath",
  "server.extraArgs",
  "model.path",
  "model.url",
  "model.apiKeyEnv",
  "verification.allowUnisolated",
  "index.embeddingModel",
];

/** What `WorkspaceConfiguration.inspect` returns (the part we use). */
export interface InspectResult<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/** The slice of `vscode.WorkspaceConfiguration` (section "localcode") the mapping needs. */
export interface ConfigurationLike {
  inspect<T>(key: string): InspectResult<T> | undefined;
}

export type TomlTables = Record<string, Record<string, unknown>>;

/** "contextLength" -> "context_length", "memoryLimitMb" -> "memory_limit_mb". */
export function toSnakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => "_" + letter.toLowerCase());
}

/** The value the user set for `key`, honouring workspace trust; undefined when only the default applies. */
export function explicitValue<T>(config: ConfigurationLike, key: string, trusted: boolean): T | undefined {
  const inspected = config.inspect<T>(key);
  if (!inspected) {
    return undefined;
  }
  const fromWorkspace = trusted || !RESTRICTED_SETTINGS.includes(key);
  if (fromWorkspace && inspected.workspaceFolderValue !== undefined) {
    return inspected.workspaceFolderValue;
  }
  if (fromWorkspace && inspected.workspaceValue !== undefined) {
    return inspected.workspaceValue;
  }
  return inspected.globalValue;
}

/** localcode.toml-shaped tables of the explicitly set settings: `{generation: {candidates: 3}}`. */
export function tomlTables(config: ConfigurationLike, trusted: boolean): TomlTables {
  const tables: TomlTables = {};
  for (const [section, keys] of Object.entries(TOML_SETTINGS)) {
    for (const key of keys) {
      const value = explicitValue<unknown>(config, `${section}.${key}`, trusted);
      if (value === undefined || value === null) {
        continue;
      }
      if (typeof value === "string" && value === "") {
        continue; // "" is the default meaning "none": do not override the project file with it
      }
      (tables[section] ??= {})[toSnakeCase(key)] = value;
    }
  }
  return tables;
}

/**
 * What the server receives as initializationOptions and as the "localcode" configuration section:
 * the localcode.toml tables, plus `trusted: false` in an untrusted workspace (the server then runs
 * no project code, even when a wrapper command drops the `--untrusted` flag).
 */
export function serverSettings(config: ConfigurationLike, trusted: boolean, apiKeyEnv?: string): Record<string, unknown> {
  const tables = tomlTables(config, trusted);
  if (apiKeyEnv && tables.model?.api_key_env === undefined) {
    // the key itself travels only in the server's environment, never in settings
    (tables.model ??= {}).api_key_env = apiKeyEnv;
  }
  const settings: Record<string, unknown> = tables;
  // the server trusts a workspace only when told so; explain results open as a document here
  settings.trusted = trusted;
  settings.explanation_document = true;
  return settings;
}

/** The server process environment: the API key from secret storage under the variable the
 * settings name (`localcode.model.apiKeyEnv`, else LOCALCODE_API_KEY). */
export function serverEnvironment(base: NodeJS.ProcessEnv, config: ConfigurationLike, trusted: boolean,
  apiKey: string | undefined): { env: NodeJS.ProcessEnv; apiKeyEnv?: string } {
  const env = { ...base };
  if (!apiKey) {
    return { env };
  }
  const named = explicitValue<string>(config, "model.apiKeyEnv", trusted);
  const apiKeyEnv = named && /^[A-Za-z_][A-Za-z0-9_]*$/.test(named) ? named : DEFAULT_API_KEY_ENV;
  env[apiKeyEnv] = apiKey;
  return { env, apiKeyEnv };
}

/** Does a configuration change event touch settings that need a server restart? */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return ["localcode.server", "localcode.model.name", "localcode.model.path", "localcode.model.backend",
    "localcode.model.url", "localcode.model.model", "localcode.model.apiKeyEnv"]
    .some((section) => affects(section));
}
