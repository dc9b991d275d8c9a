// localcode for VS Code: starts `localcode serve`, wires commands, settings, status and trust.
import { execFileSync } from "child_process";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { CANCELLED, CommandHost, RunningTasks, executeWithProgress, registerCommands, showMarkdown, showResult } from "./commands";
import { HealthSummary, healthMarkdown, statusText, summarizeHealth } from "./health";
import { INSTALL_HINT, ServerNotFound, serverCommand } from "./server";
import { needsRestart, serverEnvironment, serverSettings } from "./settings";

/** Catalogue models offered by the status menu when the server does not list its own. */
export const CATALOGUE_MODELS = ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"];
const API_KEY_SECRET = "localcode.apiKey";
const LONG_COMMANDS = new Set(["localcode.implement", "localcode.fix", "localcode.explain"]);

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
  readonly running = new RunningTasks();
  lastHealth: unknown = undefined;
  private summary: HealthSummary = { model: "?", index: "?", problems: 0 };

  constructor(readonly context: vscode.ExtensionContext, readonly log: vscode.LogOutputChannel) {
    this.status = vscode.window.createStatusBarItem("localcode.status", vscode.StatusBarAlignment.Right, 100);
    this.status.name = "localcode";
    this.status.command = "localcode.editor.menu";
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

  /** The interpreter the Python extension selected for this workspace (if it is installed). */
  private async pythonInterpreter(folder: vscode.WorkspaceFolder | undefined): Promise<string | undefined> {
    const python = vscode.extensions.getExtension("ms-python.python");
    if (!python) {
      return undefined;
    }
    try {
      const api = python.isActive ? python.exports : await python.activate();
      const environment = api?.environments?.getActiveEnvironmentPath?.(folder?.uri);
      return typeof environment?.path === "string" ? environment.path : undefined;
    } catch (error) {
      this.log.warn(`Python extension: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  }

  private async startNow() {
    const trusted = this.trusted();
    const folder = vscode.workspace.workspaceFolders?.[0];
    let command: string;
    let args: string[];
    try {
      const found = serverCommand(this.settings(), trusted, {
        workspaceFolder: folder?.uri.fsPath,
        pythonInterpreter: trusted ? await this.pythonInterpreter(folder) : undefined,
        hasLocalcode: (python) => {
          try {
            execFileSync(python, ["-c", "import localcode_lsp"], { timeout: 15000, stdio: "ignore" });
            return true;
          } catch {
            return false;
          }
        },
      });
      ({ command, args } = found);
      this.log.info(`server from ${found.source}`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(message);
      this.setStatus("$(error) localcode: no server", message);
      if (error instanceof ServerNotFound) {
        void vscode.window.showErrorMessage(message, "Open Settings", "Show log").then((choice) => {
          if (choice === "Open Settings") {
            void vscode.commands.executeCommand("workbench.action.openSettings", "localcode.server");
          } else if (choice === "Show log") {
            this.showLog();
          }
        });
      }
      return;
    }
    const apiKey = await this.context.secrets.get(API_KEY_SECRET);
    const { env, apiKeyEnv } = serverEnvironment(process.env, this.settings(), trusted, apiKey);
    this.apiKeyEnv = apiKeyEnv;
    const serverOptions: ServerOptions = {
      command,
      args,
      options: { cwd: folder?.uri.fsPath, env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
      outputChannel: this.log,
      traceOutputChannel: this.log,
      revealOutputChannelOn: 4, // RevealOutputChannelOn.Never
      initializationOptions: serverSettings(this.settings(), trusted, apiKeyEnv),
      middleware: {
        workspace: {
          // The server asks for section "localcode": answer in localcode.toml's shape.
          configuration: (params, token, next) => {
            const asked = params.items.map((item) => item.section);
            if (asked.every((section) => section === "localcode")) {
              return asked.map(() => serverSettings(this.settings(), this.trusted(), this.apiKeyEnv));
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
        // implement/fix/explain from a code action: the same cancellable notification as ours
        executeCommand: async (name, args, next) => {
          const client = this.client();
          if (!LONG_COMMANDS.has(name) || !client) {
            return this.busy(name.replace(/^localcode\./, ""), Promise.resolve(next(name, args)));
          }
          const action = name.replace(/^localcode\./, "");
          const result = await executeWithProgress(this, client, { command: name, arguments: args },
            `localcode: ${action}`);
          if (result === CANCELLED) {
            void vscode.window.showInformationMessage(`localcode: ${action} cancelled; nothing was changed.`);
            return undefined;
          }
          await showResult(this, action, result);
          return result;
        },
      },
    };
    this.log.info(`starting ${command} ${args.join(" ")} (workspace ${trusted ? "trusted" : "untrusted: no project code runs"})`
      + (apiKeyEnv ? `; API key from secret storage in $${apiKeyEnv}` : ""));
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
        `localcode: could not start \`${command}\` (${message}). ${INSTALL_HINT}`,
        "Open Settings",
      ).then((choice) => choice && vscode.commands.executeCommand("workbench.action.openSettings", "localcode.server"));
      return;
    }
    void vscode.commands.executeCommand("setContext", "localcode.running", true);
    this.setStatus("$(hubot) localcode", "localcode is running");
    void this.refreshStatus();
  }

  apiKeyEnv: string | undefined;

  async refreshStatus() {
    const client = this.client();
    if (!client) {
      return;
    }
    try {
      const result = await client.sendRequest("workspace/executeCommand", { command: "localcode.health", arguments: [] });
      const summary = summarizeHealth(result);
      this.lastHealth = result;
      this.summary = summary;
      this.setStatus(statusText(summary), `localcode: model ${summary.model}, index ${summary.index}. Click for the menu.`);
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
    this.setStatus(`$(sync~spin) ${this.summary.model} · ${label}`, "localcode is working; click to cancel or for the menu");
    try {
      return await work;
    } finally {
      this.busyCount -= 1;
      if (this.busyCount === 0) {
        void this.refreshStatus();
      }
    }
  }

  /** The catalogue names the server reports (health), else the fixed list. */
  catalogue(): string[] {
    const report = this.lastHealth as Record<string, unknown> | undefined;
    const listed = report && Array.isArray(report.catalogue) ? report.catalogue : undefined;
    const names = (listed ?? []).map((entry: unknown) =>
      typeof entry === "string" ? entry : (entry as Record<string, unknown>)?.name).filter((n): n is string => typeof n === "string");
    return names.length > 0 ? names : CATALOGUE_MODELS;
  }

  /** The status bar's quick pick: inline completion on/off, model, health, API key, cancel. */
  async menu(): Promise<void> {
    const inline = this.settings().get<boolean>("inlineCompletion.enabled", true);
    const current = this.settings().get<string>("model.name", "") || this.summary.model;
    type Item = vscode.QuickPickItem & { run: () => unknown };
    const items: Item[] = [];
    if (this.running.count > 0) {
      items.push({ label: "$(debug-stop) Cancel the running task", run: () => this.running.cancelAll() });
    }
    items.push(
      { label: `$(${inline ? "eye-closed" : "eye"}) ${inline ? "Disable" : "Enable"} inline completion`,
        description: `now ${inline ? "on" : "off"}`,
        run: () => this.settings().update("inlineCompletion.enabled", !inline, vscode.ConfigurationTarget.Global) },
      { label: "$(symbol-class) Pick a model…", description: `now ${current}`, run: () => this.pickModel() },
      { label: "$(pulse) Show health", description: "what `localcode doctor` reports", run: () => this.showHealth() },
      { label: "$(key) Set the API key of a remote model server…", run: () => this.setApiKey() },
      { label: "$(debug-restart) Restart the language server", run: () => this.restart() },
      { label: "$(output) Show log", run: () => this.showLog() },
    );
    const picked = await vscode.window.showQuickPick(items, { title: `localcode · ${current}`, placeHolder: "localcode" });
    await picked?.run();
  }

  async pickModel(): Promise<void> {
    const items = this.catalogue().map((name) => ({ label: name }));
    const picked = await vscode.window.showQuickPick(items, { title: "localcode: model ([model] name)" });
    if (picked) {
      // a changed model name restarts the server (needsRestart)
      await this.settings().update("model.name", picked.label, vscode.ConfigurationTarget.Global);
    }
  }

  async showHealth(): Promise<unknown> {
    const client = this.client();
    if (!client) {
      await showMarkdown(`# localcode health\n\nThe language server is not running. ${INSTALL_HINT}\n`);
      return undefined;
    }
    const result = await client.sendRequest("workspace/executeCommand", { command: "localcode.health", arguments: [] });
    this.lastHealth = result;
    await showMarkdown(healthMarkdown(result));
    return result;
  }

  /** Store the key in VS Code's secret storage (the OS keychain); the server gets it in its
   * environment, under the variable `localcode.model.apiKeyEnv` names, never in settings. */
  async setApiKey(): Promise<void> {
    const key = await vscode.window.showInputBox({
      title: "localcode: API key of the remote model server",
      prompt: "Kept in VS Code's secret storage; passed to the server as an environment variable. Empty removes it.",
      password: true,
      ignoreFocusOut: true,
    });
    if (key === undefined) {
      return;
    }
    if (key.trim() === "") {
      await this.context.secrets.delete(API_KEY_SECRET);
    } else {
      await this.context.secrets.store(API_KEY_SECRET, key.trim());
    }
    await this.restart();
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
        settings: { localcode: serverSettings(this.settings(), this.trusted(), this.apiKeyEnv) },
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
    vscode.commands.registerCommand("localcode.editor.menu", () => current.menu()),
    vscode.commands.registerCommand("localcode.editor.setApiKey", () => current.setApiKey()),
    vscode.commands.registerCommand("localcode.editor.pickModel", () => current.pickModel()),
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
