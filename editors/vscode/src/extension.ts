// localcode for VS Code: starts `localcode serve`, wires commands, settings, status and trust.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { CommandHost, registerCommands } from "./commands";
import { statusText, summarizeHealth } from "./health";
import { serverCommand } from "./server";
import { needsRestart, serverSettings } from "./settings";

export const LANGUAGES = ["python", "javascript", "typescript", "rust", "go", "lua", "java", "c", "cpp"];

/** What the extension returns from activate(): used by tests and other extensions. */
export interface LocalcodeApi {
  client(): LanguageClient | undefined;
  ready(): Promise<void>;
  provideInlineCompletions(
    document: vscode.TextDocument,
    position: vscode.Position,
  ): Promise<vscode.InlineCompletionItem[] | undefined>;
}

class Controller implements CommandHost {
  private languageClient: LanguageClient | undefined;
  private starting: Promise<void> = Promise.resolve();
  private readonly status: vscode.StatusBarItem;
  private busyCount = 0;

  constructor(readonly context: vscode.ExtensionContext, readonly log: vscode.LogOutputChannel) {
    this.status = vscode.window.createStatusBarItem("localcode.status", vscode.StatusBarAlignment.Right, 100);
    this.status.name = "localcode";
    this.status.command = "localcode.editor.health";
    this.setStatus("$(loading~spin) localcode", "starting the language server");
    this.status.show();
    context.subscriptions.push(this.status);
  }

  client() {
    return this.languageClient?.state === State.Running ? this.languageClient : undefined;
  }

  private settings() {
    return vscode.workspace.getConfiguration("localcode");
  }

  private trusted() {
    return vscode.workspace.isTrusted;
  }

  setStatus(text: string, tooltip: string) {
    this.status.text = text;
    this.status.tooltip = tooltip;
  }

  start(): Promise<void> {
    this.starting = this.starting.then(() => this.startNow());
    return this.starting;
  }

  private async startNow() {
    const trusted = this.trusted();
    const { command, args } = serverCommand(this.settings(), trusted);
    const folder = vscode.workspace.workspaceFolders?.[0];
    const serverOptions: ServerOptions = {
      command,
      args,
      options: { cwd: folder?.uri.fsPath, env: { ...process.env } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      revealOutputChannelOn: 4, // RevealOutputChannelOn.Never
      initializationOptions: serverSettings(this.settings(), trusted),
      middleware: {
        workspace: {
          // The server asks for section "localcode": answer in localcode.toml's shape.
          configuration: (params, token, next) => {
            const asked = params.items.map((item) => item.section);
            if (asked.every((section) => section === "localcode")) {
              return asked.map(() => serverSettings(this.settings(), this.trusted()));
            }
            return next(params, token);
          },
        },
        provideInlineCompletionItems: (document, position, context, token, next) => {
          if (!this.settings().get<boolean>("inlineCompletion.enabled", true)) {
            return undefined;
          }
          return next(document, position, context, token);
        },
        executeCommand: (name, args, next) => this.busy(name.replace(/^localcode\./, ""), next(name, args)),
      },
    };
    this.log.info(`starting ${command} ${args.join(" ")} (workspace ${trusted ? "trusted" : "untrusted: no project code runs"})`);
    const client = new LanguageClient("localcode", "localcode", serverOptions, clientOptions);
    this.languageClient = client;
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        this.setStatus("$(error) localcode", "the language server stopped; click for health, or run 'localcode: Restart'");
        void vscode.commands.executeCommand("setContext", "localcode.running", false);
      }
    });
    try {
      await client.start();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(`could not start the language server: ${message}`);
      this.setStatus("$(error) localcode", `could not start ${command}: ${message}`);
      void vscode.window.showErrorMessage(
        `localcode: could not start \`${command}\` (${message}). Set "localcode.server.command" or "localcode.server.pythonPath".`,
        "Open Settings",
      ).then((choice) => choice && vscode.commands.executeCommand("workbench.action.openSettings", "localcode.server"));
      return;
    }
    void vscode.commands.executeCommand("setContext", "localcode.running", true);
    this.setStatus("$(hubot) localcode", "localcode is running");
    void this.refreshStatus();
  }

  async refreshStatus() {
    const client = this.client();
    if (!client) {
      return;
    }
    try {
      const result = await client.sendRequest("workspace/executeCommand", { command: "localcode.health", arguments: [] });
      const summary = summarizeHealth(result);
      this.setStatus(statusText(summary), `localcode: model ${summary.model}, index ${summary.index}. Click for the full health report.`);
    } catch (error) {
      this.log.warn(`health: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async stop() {
    const client = this.languageClient;
    this.languageClient = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.log.warn(`stop: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  showLog() {
    this.log.show(true);
  }

  async busy<T>(label: string, work: Promise<T>): Promise<T> {
    this.busyCount += 1;
    this.setStatus(`$(sync~spin) localcode: ${label}`, "localcode is working");
    try {
      return await work;
    } finally {
      this.busyCount -= 1;
      if (this.busyCount === 0) {
        void this.refreshStatus();
      }
    }
  }

  onConfigurationChanged(event: vscode.ConfigurationChangeEvent) {
    if (!event.affectsConfiguration("localcode")) {
      return;
    }
    if (needsRestart((section) => event.affectsConfiguration(section))) {
      this.log.info("server settings changed: restarting the language server");
      void this.restart();
      return;
    }
    const client = this.client();
    if (client) {
      void client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { localcode: serverSettings(this.settings(), this.trusted()) },
      });
    }
  }
}

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<LocalcodeApi> {
  const log = vscode.window.createOutputChannel("localcode", { log: true });
  context.subscriptions.push(log);
  const current = new Controller(context, log);
  controller = current;
  context.subscriptions.push(
    ...registerCommands(current),
    vscode.workspace.onDidChangeConfiguration((event) => current.onConfigurationChanged(event)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      log.info("workspace trusted: restarting the server with project verification enabled");
      void current.restart();
    }),
  );
  const started = current.start();
  return {
    client: () => current.client(),
    ready: () => started,
    provideInlineCompletions: async (document, position) => {
      const client = current.client();
      const feature = client?.getFeature("textDocument/inlineCompletion");
      const provider = feature?.getProvider(document);
      if (!provider) {
        return undefined;
      }
      const source = new vscode.CancellationTokenSource();
      const context: vscode.InlineCompletionContext = {
        triggerKind: vscode.InlineCompletionTriggerKind.Invoke,
        selectedCompletionInfo: undefined,
      };
      const result = await provider.provideInlineCompletionItems(document, position, context, source.token);
      if (!result) {
        return undefined;
      }
      return Array.isArray(result) ? result : result.items;
    },
  };
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
