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

function cell(text: unknown): string {
  return String(text ?? "").replace(/\|/g, "\\|").replace(/\r?\n/g, "<br>");
}

/** The doctor report as a page a person reads: a verdict, a table of checks with hints, and
 * where the model and the configuration come from. Unknown shapes still render. */
export function healthMarkdown(result: unknown): string {
  if (typeof result !== "object" || result === null) {
    return `# localcode health\n\nThe server answered: \`${cell(JSON.stringify(result))}\`\n`;
  }
  const report = result as Record<string, unknown>;
  const lines: string[] = ["# localcode health", ""];
  const summary = summarizeHealth(report);
  const verdict = report.ok === false ? "**Something required is missing** (see the checks marked ✗)."
    : "**Ready.**";
  lines.push(verdict, "", `- model: ${summary.model}`, `- index: ${summary.index}`);
  for (const key of ["localcode", "python", "project", "trusted"]) {
    if (report[key] !== undefined && report[key] !== null) {
      lines.push(`- ${key}: ${cell(report[key])}`);
    }
  }
  const checks = Array.isArray(report.checks) ? report.checks : [];
  if (checks.length > 0) {
    lines.push("", "## Checks", "", "| check | | detail |", "|---|---|---|");
    for (const check of checks) {
      if (typeof check !== "object" || check === null) {
        continue;
      }
      const c = check as Record<string, unknown>;
      const mark = c.ok === false ? (c.required ? "✗" : "⚠") : "✓";
      const hint = c.hint ? `<br>*hint:* ${cell(c.hint)}` : "";
      lines.push(`| ${cell(c.name)} | ${mark} | ${cell(c.detail)}${hint} |`);
    }
  }
  const config = report.config;
  if (typeof config === "object" && config !== null) {
    lines.push("", "## Configuration", "", "| key | value | from |", "|---|---|---|");
    for (const [section, table] of Object.entries(config as Record<string, unknown>)) {
      if (typeof table !== "object" || table === null) {
        continue;
      }
      for (const [key, entry] of Object.entries(table as Record<string, unknown>)) {
        const e = (typeof entry === "object" && entry !== null ? entry : { value: entry }) as Record<string, unknown>;
        lines.push(`| ${section}.${key} | \`${cell(JSON.stringify(e.value))}\` | ${cell(e.source ?? "")} |`);
      }
    }
  }
  return lines.join("\n") + "\n";
}
