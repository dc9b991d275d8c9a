// The palette/keyboard commands. Code actions offered by the server run the server's own
// `localcode.*` commands, which vscode-languageclient registers; ours are `localcode.editor.*`.
import * as vscode from "vscode";

/** The server's executeCommand names. */
export const SERVER_COMMANDS = {
  implement: "localcode.implement",
  fix: "localcode.fix",
  explain: "localcode.explain",
  health: "localcode.health",
} as const;

export type ServerAction = keyof typeof SERVER_COMMANDS;

/** The client surface the commands use (a vscode-languageclient LanguageClient satisfies it). */
export interface CommandClient {
  sendRequest<R>(method: string, params: unknown, token?: vscode.CancellationToken): Promise<R>;
  code2ProtocolConverter: { asUri(uri: vscode.Uri): string };
}

export interface PositionArgument {
  uri: string;
  position: { line: number; character: number };
  instruction?: string;
}

/** `workspace/executeCommand` params for an action at a position. */
export function executeCommandParams(action: ServerAction, target?: PositionArgument): {
  command: string;
  arguments: unknown[];
} {
  if (action === "health" || !target) {
    return { command: SERVER_COMMANDS[action], arguments: [] };
  }
  const argument: PositionArgument = { uri: target.uri, position: target.position };
  if (target.instruction && target.instruction.trim() !== "") {
    argument.instruction = target.instruction.trim();
  }
  return { command: SERVER_COMMANDS[action], arguments: [argument] };
}

/** The text to show for a command result (a string or an object with a message-like field). */
export function resultText(result: unknown): string | undefined {
  if (result === undefined || result === null) {
    return undefined;
  }
  if (typeof result === "string") {
    return result;
  }
  if (typeof result === "object") {
    const record = result as Record<string, unknown>;
    for (const key of ["explanation", "text", "message", "summary"]) {
      if (typeof record[key] === "string" && record[key] !== "") {
        return record[key] as string;
      }
    }
  }
  return JSON.stringify(result, null, 2);
}

export interface CommandHost {
  client(): CommandClient | undefined;
  restart(): Promise<void>;
  showLog(): void;
  busy<T>(label: string, work: Promise<T>): Promise<T>;
  log: { info(message: string): void; error(message: string): void };
}

function target(client: CommandClient, instruction?: string): PositionArgument | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    return undefined;
  }
  const active = editor.selection.active;
  return {
    uri: client.code2ProtocolConverter.asUri(editor.document.uri),
    position: { line: active.line, character: active.character },
    instruction,
  };
}

/** Run one server action at the cursor of the active editor and show its answer. */
export async function runAction(host: CommandHost, action: ServerAction, instruction?: string): Promise<unknown> {
  const client = host.client();
  if (!client) {
    void vscode.window.showErrorMessage("localcode: the language server is not running.", "Show log")
      .then((choice) => choice && host.showLog());
    return undefined;
  }
  const at = action === "health" ? undefined : target(client, instruction);
  if (action !== "health" && !at) {
    void vscode.window.showWarningMessage("localcode: open a file and place the cursor in a function first.");
    return undefined;
  }
  const params = executeCommandParams(action, at);
  try {
    const result = await host.busy(action, client.sendRequest<unknown>("workspace/executeCommand", params));
    const text = resultText(result);
    if (action === "explain" || action === "health") {
      const language = action === "health" ? "json" : "markdown";
      const content = action === "health" ? JSON.stringify(result, null, 2) : (text ?? "(no answer)");
      const document = await vscode.workspace.openTextDocument({ content, language });
      await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    } else if (text) {
      host.log.info(`${action}: ${text}`);
    }
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    host.log.error(`${action} failed: ${message}`);
    void vscode.window.showErrorMessage(`localcode: ${action} failed: ${message}`);
    return undefined;
  }
}

/** Register the extension's commands; returns their disposables. */
export function registerCommands(host: CommandHost): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand("localcode.editor.implement", () => runAction(host, "implement")),
    vscode.commands.registerCommand("localcode.editor.implementWithInstruction", async () => {
      const instruction = await vscode.window.showInputBox({
        prompt: "What should localcode do here?",
        placeHolder: "e.g. handle the empty list",
      });
      if (instruction === undefined) {
        return undefined;
      }
      return runAction(host, "implement", instruction);
    }),
    vscode.commands.registerCommand("localcode.editor.explain", () => runAction(host, "explain")),
    vscode.commands.registerCommand("localcode.editor.health", () => runAction(host, "health")),
    vscode.commands.registerCommand("localcode.editor.restart", () => host.restart()),
    vscode.commands.registerCommand("localcode.editor.showLog", () => host.showLog()),
  ];
}
