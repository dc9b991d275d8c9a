// The palette/keyboard commands. Code actions offered by the server run the server's own
// `localcode.*` commands, which vscode-languageclient registers; ours are `localcode.editor.*`.
// Long work (implement, fix, explain) runs in a cancellable notification: its Cancel button (or
// "localcode: Cancel the running task") cancels the request, so `$/cancelRequest` reaches the
// server, which stops the model.
import * as vscode from "vscode";
import { ExecuteCommandParams, ExecuteCommandRequest, ProgressType, WorkDoneProgress } from "vscode-languageserver-protocol";
import { healthMarkdown } from "./health";

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
  sendRequest<R>(type: typeof ExecuteCommandRequest.type, params: ExecuteCommandParams, token?: vscode.CancellationToken): Promise<R>;
  onProgress?<P>(type: ProgressType<P>, token: string | number, handler: (params: P) => void): vscode.Disposable;
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
    for (const key of ["markdown", "explanation", "text", "message", "summary"]) {
      if (typeof record[key] === "string" && record[key] !== "") {
        return record[key] as string;
      }
    }
  }
  return JSON.stringify(result, null, 2);
}

/** `{kind: "explanation", title, markdown}` (the server's explain result) as a document's text. */
export function explanationDocument(result: unknown): string | undefined {
  if (typeof result !== "object" || result === null) {
    return undefined;
  }
  const record = result as Record<string, unknown>;
  if (record.kind !== "explanation" || typeof record.markdown !== "string") {
    return undefined;
  }
  const title = typeof record.title === "string" && record.title !== "" ? `# ${record.title}\n\n` : "";
  return title + record.markdown;
}

/** The cancellation sources of the requests now running, so one command can cancel them all. */
export class RunningTasks {
  private readonly sources = new Set<vscode.CancellationTokenSource>();

  /** A token cancelled by `outer` (the notification's Cancel) or by `cancelAll()`. */
  start(outer: vscode.CancellationToken): { token: vscode.CancellationToken; done(): void } {
    const source = new vscode.CancellationTokenSource();
    const listener = outer.onCancellationRequested(() => source.cancel());
    if (outer.isCancellationRequested) {
      source.cancel();
    }
    this.sources.add(source);
    return {
      token: source.token,
      done: () => {
        listener.dispose();
        this.sources.delete(source);
        source.dispose();
      },
    };
  }

  get count(): number {
    return this.sources.size;
  }

  cancelAll(): number {
    const count = this.sources.size;
    for (const source of this.sources) {
      source.cancel();
    }
    return count;
  }
}

export interface CommandHost {
  client(): CommandClient | undefined;
  restart(): Promise<void>;
  showLog(): void;
  busy<T>(label: string, work: Promise<T>): Promise<T>;
  readonly running: RunningTasks;
  log: { info(message: string): void; error(message: string): void };
}

let tokenCounter = 0;

/** Thrown (as a result) when the user cancelled: callers show nothing more. */
export const CANCELLED = Symbol("cancelled");

/**
 * Send one `workspace/executeCommand` inside a cancellable notification. The notification's
 * Cancel cancels the request's token, which the languageclient turns into `$/cancelRequest`;
 * the server's progress (sent to our workDoneToken) shows as the notification's message.
 */
export async function executeWithProgress(host: CommandHost, client: CommandClient, params: ExecuteCommandParams,
  title: string): Promise<unknown> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, outer) => {
      const task = host.running.start(outer);
      const workDoneToken = `localcode-${process.pid}-${++tokenCounter}`;
      const request: ExecuteCommandParams = { ...params, workDoneToken };
      const listener = client.onProgress?.(WorkDoneProgress.type, workDoneToken, (value) => {
        const message = value.message ?? (value.kind === "begin" ? value.title : undefined);
        if (message) {
          progress.report({ message });
        }
      });
      try {
        const result = await host.busy(params.command.replace(/^localcode\./, ""),
          client.sendRequest<unknown>(ExecuteCommandRequest.type, request, task.token));
        return task.token.isCancellationRequested ? CANCELLED : result;
      } catch (error) {
        if (task.token.isCancellationRequested) {
          return CANCELLED;
        }
        throw error;
      } finally {
        listener?.dispose();
        task.done();
      }
    });
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

/** Open markdown beside the editor (an untitled document: nothing is written to disk). */
export async function showMarkdown(content: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument({ content, language: "markdown" });
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

const TITLES: Record<ServerAction, string> = {
  implement: "localcode: implementing",
  fix: "localcode: fixing",
  explain: "localcode: explaining",
  health: "localcode: health",
};

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
    const result = action === "health"
      ? await host.busy(action, client.sendRequest<unknown>(ExecuteCommandRequest.type, params))
      : await executeWithProgress(host, client, params, TITLES[action]);
    if (result === CANCELLED) {
      host.log.info(`${action}: cancelled`);
      void vscode.window.showInformationMessage(`localcode: ${action} cancelled; nothing was changed.`);
      return undefined;
    }
    await showResult(host, action, result);
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    host.log.error(`${action} failed: ${message}`);
    void vscode.window.showErrorMessage(`localcode: ${action} failed: ${message}`);
    return undefined;
  }
}

/** Show a command's answer: explain and health as a markdown page, the rest in the log. */
export async function showResult(host: CommandHost, action: string, result: unknown): Promise<void> {
  const document = explanationDocument(result);
  if (document !== undefined) {
    await showMarkdown(document);
  } else if (action === "health") {
    await showMarkdown(healthMarkdown(result));
  } else if (action === "explain") {
    await showMarkdown(resultText(result) ?? "(no answer)");
  } else {
    const text = resultText(result);
    if (text) {
      host.log.info(`${action}: ${text}`);
    }
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
    vscode.commands.registerCommand("localcode.editor.cancel", () => {
      const cancelled = host.running.cancelAll();
      if (cancelled === 0) {
        void vscode.window.showInformationMessage("localcode: nothing is running.");
      }
      return cancelled;
    }),
    vscode.commands.registerCommand("localcode.editor.restart", () => host.restart()),
    vscode.commands.registerCommand("localcode.editor.showLog", () => host.showLog()),
  ];
}
