// Turning the server's `localcode.health` answer (what `localcode doctor` reports) into a status line.

export interface HealthSummary {
  model: string;
  index: string;
  problems: number;
}

function pick(record: Record<string, unknown>, names: string[]): unknown {
  for (const name of names) {
    if (record[name] !== undefined && record[name] !== null) {
      return record[name];
    }
  }
  return undefined;
}

function basename(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts[parts.length - 1] || file;
}

function describe(value: unknown, names: string[]): string {
  if (value === undefined) {
    return "?";
  }
  if (typeof value === "string") {
    return value.includes("/") || value.includes("\\") ? basename(value) : value;
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (typeof value === "object" && value !== null) {
    const inner = pick(value as Record<string, unknown>, names);
    if (inner !== undefined && typeof inner !== "object") {
      return describe(inner, names);
    }
  }
  return "?";
}

/** A short summary of a health result; unknown shapes give "?" rather than an error. */
export function summarizeHealth(result: unknown): HealthSummary {
  if (typeof result !== "object" || result === null) {
    return { model: "?", index: "?", problems: 0 };
  }
  const record = result as Record<string, unknown>;
  const model = describe(pick(record, ["model", "model_path", "backend"]), ["name", "path", "file", "status", "state"]);
  const indexInfo = pick(record, ["index", "index_state"]);
  let index = describe(indexInfo, ["state", "status"]);
  if (index === "?" && typeof indexInfo === "object" && indexInfo !== null) {
    const files = (indexInfo as Record<string, unknown>).files;
    if (typeof files === "number") {
      index = `${files} files`;
    }
  }
  let problems = 0;
  const checks = pick(record, ["checks", "problems", "errors"]);
  if (Array.isArray(checks)) {
    // doctor's checks: {name, ok, detail, required, hint}
    for (const check of checks) {
      if (typeof check === "string") {
        problems += 1;
        continue;
      }
      if (typeof check !== "object" || check === null) {
        continue;
      }
      const c = check as Record<string, unknown>;
      if (c.ok === false || ["error", "fail", "failed"].includes(String(c.status))) {
        problems += 1;
      }
      if (index === "?" && c.name === "index" && typeof c.detail === "string") {
        index = c.detail.startsWith("not built") ? "not built" : "ready";
      }
    }
  }
  return { model, index, problems };
}

/** The status bar text for a summary. */
export function statusText(summary: HealthSummary): string {
  const problems = summary.problems > 0 ? ` $(warning) ${summary.problems}` : "";
  return `$(hubot) ${summary.model} · index ${summary.index}${problems}`;
}
