// A stand-in for the `vscode` module: just enough of the API for the extension's own logic.
// Loaded by requiring this file before any module that imports "vscode".
const Module = require("node:module");

const state = {
  commands: new Map(),
  messages: [],
  opened: [],
  shown: [],
  activeTextEditor: undefined,
  inputBoxAnswer: undefined,
  configuration: {},
  progress: [], // {options, reports, cancel()} per window.withProgress call
};

class EventEmitter {
  constructor() { this.listeners = new Set(); this.event = (fn) => { this.listeners.add(fn); return new Disposable(() => this.listeners.delete(fn)); }; }
  fire(value) { for (const fn of [...this.listeners]) fn(value); }
  dispose() { this.listeners.clear(); }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this.emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire(undefined);
    }
  }
  dispose() { this.emitter.dispose(); }
}

class Disposable {
  constructor(fn) { this.fn = fn; }
  dispose() { if (this.fn) this.fn(); }
}

class Uri {
  constructor(fsPath) { this.fsPath = fsPath; this.scheme = "file"; }
  static file(fsPath) { return new Uri(fsPath); }
  toString() { return "file://" + encodeURI(this.fsPath); }
}

/** A WorkspaceConfiguration over { key: {globalValue, workspaceValue, workspaceFolderValue, defaultValue} }. */
function configuration(values) {
  return {
    inspect(key) { return values[key]; },
    get(key, fallback) {
      const v = values[key];
      if (!v) return fallback;
      return v.workspaceFolderValue ?? v.workspaceValue ?? v.globalValue ?? v.defaultValue ?? fallback;
    },
  };
}

const vscode = {
  Disposable,
  Uri,
  EventEmitter,
  CancellationTokenSource,
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  ViewColumn: { Beside: -2, Active: -1 },
  commands: {
    registerCommand(name, fn) {
      if (state.commands.has(name)) throw new Error(`command '${name}' already exists`);
      state.commands.set(name, fn);
      return new Disposable(() => state.commands.delete(name));
    },
    executeCommand(name, ...args) {
      const fn = state.commands.get(name);
      return Promise.resolve(fn ? fn(...args) : undefined);
    },
  },
  window: {
    get activeTextEditor() { return state.activeTextEditor; },
    showErrorMessage(message) { state.messages.push(["error", message]); return Promise.resolve(undefined); },
    showWarningMessage(message) { state.messages.push(["warning", message]); return Promise.resolve(undefined); },
    showInformationMessage(message) { state.messages.push(["info", message]); return Promise.resolve(undefined); },
    showInputBox() { return Promise.resolve(state.inputBoxAnswer); },
    showTextDocument(document, options) { state.shown.push({ document, options }); return Promise.resolve({}); },
    withProgress(options, task) {
      const source = new CancellationTokenSource();
      const entry = { options, reports: [], cancel: () => source.cancel() };
      state.progress.push(entry);
      return Promise.resolve(task({ report: (value) => entry.reports.push(value) }, source.token));
    },
  },
  workspace: {
    isTrusted: true,
    getConfiguration() { return configuration(state.configuration); },
    openTextDocument(options) { state.opened.push(options); return Promise.resolve({ options }); },
  },
};

const originalLoad = Module._load;
Module._load = function load(request, parent, isMain) {
  if (request === "vscode") return vscode;
  return originalLoad.call(this, request, parent, isMain);
};

function reset() {
  state.commands.clear();
  state.messages.length = 0;
  state.opened.length = 0;
  state.shown.length = 0;
  state.activeTextEditor = undefined;
  state.inputBoxAnswer = undefined;
  state.configuration = {};
  state.progress.length = 0;
}

/** An editor whose cursor is at (line, character) in the file `fsPath`. */
function editorAt(fsPath, line, character) {
  return { document: { uri: Uri.file(fsPath) }, selection: { active: { line, character } } };
}

module.exports = { vscode, state, reset, configuration, editorAt };
