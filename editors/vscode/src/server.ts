// How the language server process is started, and where the `localcode` command is found.
import * as fs from "fs";
import * as path from "path";
import { ConfigurationLike, explicitValue } from "./settings";

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from (shown in the log and in the status tooltip). */
  source: "setting" | "workspace .venv" | "Python extension" | "PATH";
}

/** What discovery may look at; the extension passes the real world, tests a made-up one. */
export interface Discovery {
  /** The first workspace folder's path, if any. */
  workspaceFolder?: string;
  /** The interpreter the Python extension selected for this workspace, if it is installed. */
  pythonInterpreter?: string;
  /** Does this Python have the localcode_lsp package? (a cheap `python -c "import ..."`) */
  hasLocalcode?: (python: string) => boolean;
  /** Is `file` an executable file? */
  isExecutable?: (file: string) => boolean;
  /** The PATH to search. */
  pathEnv?: string;
  platform?: NodeJS.Platform;
}

/** Raised when no server can be found: the message says what to do. */
export class ServerNotFound extends Error {}

export const INSTALL_HINT =
  "Install the server into this project's .venv (from a localcode checkout: `make demo`, or " +
  "`pipx install '.[qwen-1.5b]'` / `uv tool install '.[qwen-1.5b]'` for a `localcode` command on PATH), " +
  "or set \"localcode.server.command\" (e.g. [\"/path/to/localcode\", \"serve\"]) or \"localcode.server.pythonPath\".";

function defaultIsExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** `localcode` inside a virtual environment directory, per platform. */
export function venvCommand(venv: string, platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? path.join(venv, "Scripts", "localcode.exe") : path.join(venv, "bin", "localcode");
}

function onPath(name: string, discovery: Discovery): string | undefined {
  const pathEnv = discovery.pathEnv ?? process.env.PATH ?? "";
  const platform = discovery.platform ?? process.platform;
  const isExecutable = discovery.isExecutable ?? defaultIsExecutable;
  const names = platform === "win32" ? [`${name}.exe`, `${name}.cmd`, name] : [name];
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) {
      continue;
    }
    for (const candidate of names) {
      const file = path.join(dir, candidate);
      if (isExecutable(file)) {
        return file;
      }
    }
  }
  return undefined;
}

/**
 * The command line that starts `localcode serve` for these settings. Where the server comes from,
 * first match wins:
 *   1. `localcode.server.command`, else `localcode.server.pythonPath -m localcode_lsp serve`;
 *   2. the workspace's own `.venv/bin/localcode` (trusted workspaces only: it is project code);
 *   3. the Python extension's selected interpreter, when it has localcode_lsp (trusted only);
 *   4. `localcode` on PATH.
 * Throws ServerNotFound with an actionable message when none applies.
 * Untrusted workspaces get `--untrusted` (a global CLI option, before `serve`): the server then
 * runs no project code (no tests, no linters: parse-only verification).
 */
export function serverCommand(config: ConfigurationLike, trusted: boolean, discovery: Discovery = {}): ServerCommand {
  const command = explicitValue<string[]>(config, "server.command", trusted) ?? [];
  const python = explicitValue<string>(config, "server.pythonPath", trusted) ?? "";
  const extra = explicitValue<string[]>(config, "server.extraArgs", trusted) ?? [];
  const logLevel = explicitValue<string>(config, "server.logLevel", trusted);
  const isExecutable = discovery.isExecutable ?? defaultIsExecutable;
  let argv: string[];
  let source: ServerCommand["source"];
  if (Array.isArray(command) && command.length > 0) {
    argv = [...command];
    if (!argv.includes("serve")) {
      argv.push("serve");
    }
    source = "setting";
  } else if (python) {
    argv = [python, "-m", "localcode_lsp", "serve"];
    source = "setting";
  } else {
    const venv = discovery.workspaceFolder ? venvCommand(path.join(discovery.workspaceFolder, ".venv"), discovery.platform) : undefined;
    const interpreter = discovery.pythonInterpreter;
    const found = onPath("localcode", discovery);
    if (trusted && venv && isExecutable(venv)) {
      argv = [venv, "serve"];
      source = "workspace .venv";
    } else if (trusted && interpreter && (discovery.hasLocalcode?.(interpreter) ?? false)) {
      argv = [interpreter, "-m", "localcode_lsp", "serve"];
      source = "Python extension";
    } else if (found) {
      argv = [found, "serve"];
      source = "PATH";
    } else {
      const looked = [
        venv ? `${venv}${trusted ? "" : " (skipped: the workspace is not trusted)"}` : undefined,
        interpreter ? `the Python extension's interpreter ${interpreter}${trusted ? " (no localcode_lsp there)" : " (skipped: not trusted)"}` : undefined,
        "`localcode` on PATH",
      ].filter(Boolean).join(", ");
      throw new ServerNotFound(`localcode: the language server was not found (looked at ${looked}). ${INSTALL_HINT}`);
    }
  }
  const serveAt = argv.indexOf("serve");
  if (!trusted) {
    argv.splice(serveAt, 0, "--untrusted");
  }
  if (logLevel) {
    argv.push("--log-level", logLevel);
  }
  argv.push(...extra);
  return { command: expandHome(argv[0]), args: argv.slice(1), source };
}

function expandHome(file: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  if (home && (file === "~" || file.startsWith("~/"))) {
    return path.join(home, file.slice(1));
  }
  return file;
}
