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
};

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
}

/** An editor whose cursor is at (line, character) in the file `fsPath`. */
function editorAt(fsPath, line, character) {
  return { document: { uri: Uri.file(fsPath) }, selection: { active: { line, character } } };
}

module.exports = { vscode, state, reset, configuration, editorAt };
