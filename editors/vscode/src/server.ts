// How the language server process is started.
import * as path from "path";
import { ConfigurationLike, explicitValue } from "./settings";

export interface ServerCommand {
  command: string;
  args: string[];
}

/**
 * The command line that starts `localcode serve` for these settings.
 * Order: `server.command` as given; else `<pythonPath> -m localcode_lsp serve`; else `localcode serve`.
 * Untrusted workspaces get `--untrusted` (a global CLI option, before `serve`): the server then runs
 * no project code (no tests, no linters: parse-only verification).
 */
export function serverCommand(config: ConfigurationLike, trusted: boolean): ServerCommand {
  const command = explicitValue<string[]>(config, "server.command", trusted) ?? [];
  const python = explicitValue<string>(config, "server.pythonPath", trusted) ?? "";
  const extra = explicitValue<string[]>(config, "server.extraArgs", trusted) ?? [];
  const logLevel = explicitValue<string>(config, "server.logLevel", trusted);
  let argv: string[];
  if (Array.isArray(command) && command.length > 0) {
    argv = [...command];
    if (!argv.includes("serve")) {
      argv.push("serve");
    }
  } else if (python) {
    argv = [python, "-m", "localcode_lsp", "serve"];
  } else {
    argv = ["localcode", "serve"];
  }
  const serveAt = argv.indexOf("serve");
  if (!trusted) {
    argv.splice(serveAt, 0, "--untrusted");
  }
  if (logLevel) {
    argv.push("--log-level", logLevel);
  }
  argv.push(...extra);
  return { command: expandHome(argv[0]), args: argv.slice(1) };
}

function expandHome(file: string): string {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  if (home && (file === "~" || file.startsWith("~/"))) {
    return path.join(home, file.slice(1));
  }
  return file;
}
