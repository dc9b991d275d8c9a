"""`localcode` with no subcommand: the interactive terminal session of the original design.

    you: add input validation to the parse_config function
    localcode: [LOCATE] Found parse_config at src/config.py:34-58
    localcode: [GENERATE] Producing 1 candidate for parse_config (greedy; up to 5 in all)...
    localcode: [VERIFY] Candidate 1 passes (parse ✓, lint ✓, tests ✓)
    localcode: Here's the diff:
    ...
    Apply? [y/n]

The task runs on a worker thread; the main thread prints its trace events as they arrive and
turns Ctrl-C into a cancel of that task (the session stays). Ctrl-D (or end of input) leaves.
Without a terminal the session reads one task per stdin line and needs an explicit `y` to
apply; end of input answers `n`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from ..cancel import Cancelled, CancelToken
from ..context.compress import SessionSummary
from ..data import Result, Task, TraceEvent
from ..logs import get_logger, setup_logging
from . import ui
from .apply import ApplyRefused, apply_patches

log = get_logger("cli.session")

# Tests only: "module:callable" returning an engine-like object for (root, trusted=...), so the
# terminal behaviour can be driven without the model. The real-model tests do not set it.
ENGINE_FACTORY_ENV = "LOCALCODE_TEST_ENGINE_FACTORY"

HISTORY_FILE = "history"
HELP = """\
Type a task in plain words, e.g. "add input validation to the parse_config function".
  /help        this text
  /summary     what this session has done so far (carried into later tasks)
  /index       update the codebase index now
  /quit        leave (Ctrl-D works too)
Ctrl-C cancels a running task and returns here."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The session has no options of its own; it uses the global --project/--untrusted."""


def run(args: argparse.Namespace) -> int:
    root = Path(getattr(args, "project", None) or os.getcwd())
    if not root.is_dir():
        print(f"localcode: project directory does not exist: {root}", file=sys.stderr)
        return 2
    trusted = not getattr(args, "untrusted", False)
    # Ctrl-C must cancel the running task even when we were started with SIGINT ignored (a
    # background job of a non-interactive shell, some IDE terminals): Python then leaves it
    # ignored and no KeyboardInterrupt would ever arrive.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # The terminal is the conversation: libraries' own progress bars and Rust warnings stay out.
    os.environ.setdefault("LANCE_LOG", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")
    engine = _make_engine(root, trusted)
    # the workspace's own choice: a private temporary folder when .localcode is a link or
    # unwritable (the history and the log are never written through a link)
    workspace = getattr(engine, "workspace", None)
    state_dir = workspace.state_dir if workspace is not None else Path(engine.root) / ".localcode"
    setup_logging(state_dir, getattr(args, "log_level", "INFO"), stderr=True)
    _warnings_to_log_file()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    console = ui.make_console()
    reader: LineReader = (_prompt_toolkit_reader(state_dir) if interactive else None) \
        or PlainReader(echo=not interactive)
    session = Session(engine, console=console, reader=reader)
    try:
        return session.loop()
    finally:
        close = getattr(engine, "close", None)
        if callable(close):
            close()


def _warnings_to_log_file() -> None:
    """Python warnings from libraries go to the log file, not into the conversation."""
    import logging

    logging.captureWarnings(True)
    target = logging.getLogger("py.warnings")
    target.propagate = False
    for handler in logging.getLogger("localcode").handlers:
        if isinstance(handler, logging.FileHandler):
            target.addHandler(handler)


def _make_engine(root: Path, trusted: bool) -> Any:
    factory_spec = os.environ.get(ENGINE_FACTORY_ENV)
    if factory_spec:
        module_name, _, attr = factory_spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr or "create")
        return factory(root, trusted=trusted)
    from ..engine import Engine
    from .models import ensure_model_assembled

    engine = Engine(root, trusted=trusted)
    ensure_model_assembled(engine.config, engine.root)  # once, with a progress bar
    return engine


# --- input ------------------------------------------------------------------------------------


class LineReader(Protocol):
    def read_task(self) -> str:
        """The next task line; EOFError to leave, KeyboardInterrupt to drop the line."""

    def ask(self, question: str) -> str:
        """One answer line; EOFError at end of input."""


class PromptToolkitReader:
    """A terminal prompt with history in `.localcode/history`."""

    def __init__(self, history_path: Path | None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history: Any = InMemoryHistory()
        if history_path is not None:
            try:
                history_path.parent.mkdir(parents=True, exist_ok=True)
                history = FileHistory(str(history_path))
            except OSError as exc:
                log.warning("no session history: %s", exc)
        self._tasks: PromptSession[str] = PromptSession(history=history)
        self._answers: PromptSession[str] = PromptSession()

    def read_task(self) -> str:
        from prompt_toolkit.formatted_text import FormattedText

        return self._tasks.prompt(FormattedText([("bold", "you: ")]))

    def discard_typeahead(self) -> bool:
        """Drop keys typed before a question is on screen (the terminal's input queue and
        prompt_toolkit's own typeahead). True when there were any."""
        from prompt_toolkit.input.typeahead import clear_typeahead, get_typeahead

        keys = self._answers.input
        pending = bool(get_typeahead(keys))
        clear_typeahead(keys)
        return _flush_terminal_input(keys) or pending

    def ask(self, question: str) -> str:
        try:
            return self._answers.prompt(question)
        except KeyboardInterrupt:
            return "n"


def _flush_terminal_input(keys: Any) -> bool:
    """Discard what waits unread on a terminal's input; True when something did."""
    try:
        import select
        import termios

        fd = keys.fileno()
        if not os.isatty(fd):
            return False
        waiting = bool(select.select([fd], [], [], 0)[0])
        termios.tcflush(fd, termios.TCIFLUSH)
        return waiting
    except (ImportError, OSError, ValueError, AttributeError):  # not a POSIX terminal
        return False


def _prompt_toolkit_reader(state_dir: Path) -> PromptToolkitReader | None:
    try:
        return PromptToolkitReader(state_dir / HISTORY_FILE)
    except Exception as exc:  # an odd terminal: fall back to plain lines
        log.warning("prompt_toolkit unavailable, using plain input: %s", exc)
        return None


class PlainReader:
    """Plain stdin lines (pipes, scripts); echoes what it read so a transcript reads well."""

    def __init__(self, *, echo: bool, stream: Any = None, out: Any = None) -> None:
        self.echo = echo
        self._stream = stream or sys.stdin
        self._out = out or sys.stdout

    def _line(self, prompt: str) -> str:
        self._out.write(prompt)
        self._out.flush()
        line = self._stream.readline()
        if not line:
            if self.echo:
                self._out.write("\n")
            raise EOFError
        line = line.rstrip("\r\n")
        if self.echo:
            self._out.write(line + "\n")
        self._out.flush()
        return line

    def read_task(self) -> str:
        return self._line("you: ")

    def ask(self, question: str) -> str:
        return self._line(question)


# --- the session ------------------------------------------------------------------------------

_DONE = object()


class Session:
    """One interactive session over one engine."""

    def __init__(self, engine: Any, *, console: Console, reader: LineReader,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.console = console
        self.reader = reader
        self.summary = SessionSummary()
        self.clock = clock

    # the loop

    def loop(self) -> int:
        """Index, then read tasks until Ctrl-D / end of input / /quit. Returns the exit status."""
        ui.say(self.console, f"project {self.engine.root}  (type /help for commands, "
                             "Ctrl-D to leave)")
        if not getattr(self.engine.workspace, "trusted", True):
            ui.say(self.console, "untrusted project: no project code runs; verification is "
                                 "parse-only", "yellow")
        self.update_index()
        while True:
            try:
                line = self.reader.read_task()
            except KeyboardInterrupt:
                continue  # like a shell: Ctrl-C at the prompt drops the line
            except EOFError:
                ui.say(self.console, "bye")
                return 0
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if self.command(text) == "quit":
                    ui.say(self.console, "bye")
                    return 0
                continue
            self.handle_task(text)

    def command(self, text: str) -> str:
        name = text.split()[0].lower()
        if name in ("/quit", "/exit", "/q"):
            return "quit"
        if name in ("/help", "/?"):
            ui.print_explanation(self.console, HELP)
        elif name == "/summary":
            rendered = self.summary.render()
            lines = [line.removeprefix("# ") for line in rendered.splitlines()]
            ui.print_explanation(self.console, "\n".join(lines) or "nothing done yet")
        elif name == "/index":
            self.update_index()
        else:
            ui.say(self.console, f"unknown command {name}; /help lists the commands", "yellow")
        return ""

    def update_index(self) -> None:
        """Build or incrementally update the index, with a progress bar on a terminal."""
        started = self.clock()
        try:
            index = self.engine.index
            with ui.IndexProgress(self.console) as progress:
                stats = index.build(progress=progress.update)
        except KeyboardInterrupt:
            ui.say(self.console, "indexing interrupted; search may miss files until "
                                 "the next /index", "yellow")
            return
        except Exception as exc:  # the session still works without a fresh index
            log.info("index build failed", exc_info=True)  # traceback: log file only
            ui.say(self.console, f"could not update the index: {exc}", "yellow")
            return
        ui.say(self.console, f"{ui.describe_stats(stats)} ({self.clock() - started:.1f} s)")

    # one task

    def make_task(self, text: str) -> Task:
        """The pipeline task for one line, carrying the rolling summary of earlier turns."""
        return Task(instruction=text, session_summary=self.summary.render())

    def handle_task(self, text: str) -> Result | None:
        started = self.clock()
        result, error = self.run_on_worker(self.make_task(text))
        seconds = self.clock() - started
        if error is not None:
            ui.say(self.console, f"[ERROR] {error}", "red")
            self.summary.record(text, "", "failed with an error")
            ui.status_line(self.console, None, seconds, "error")
            return None
        assert result is not None
        outcome = self.present(result)
        target = result.stats.get("target", "") if isinstance(result.stats, dict) else ""
        self.summary.record(text, str(target or ""), outcome,
                            [p.path for p in result.patches])
        ui.status_line(self.console, result, seconds, outcome)
        return result

    def run_on_worker(self, task: Task) -> tuple[Result | None, BaseException | None]:
        """Run the pipeline on a thread; print its events here; Ctrl-C cancels it."""
        token = CancelToken()
        events: queue.Queue[Any] = queue.Queue()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = self.engine.implement(task, cancel=token, on_event=events.put)
            except Cancelled as exc:
                box["result"] = Result(status="cancelled", message=str(exc) or "cancelled")
            except BaseException as exc:  # reported by the main thread
                log.info("task failed", exc_info=True)  # traceback: log file only
                box["error"] = exc
            finally:
                events.put(_DONE)

        worker = threading.Thread(target=work, name="localcode-task", daemon=True)
        worker.start()
        interrupts = 0
        while True:
            try:
                item = events.get(timeout=0.2)
                if item is _DONE:
                    break
                if isinstance(item, TraceEvent):
                    ui.stage_line(self.console, item)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                interrupts += 1
                token.cancel("cancelled by Ctrl-C")
                if interrupts == 1:
                    ui.say(self.console, "cancelling...", "yellow")
                elif interrupts == 2:
                    ui.say(self.console, "still stopping the running step; Ctrl-C once more "
                                         "leaves localcode", "yellow")
                else:
                    raise  # the step does not stop: leave the session (exit status 130)
        worker.join()
        if token.cancelled and "result" in box and box["result"].status != "cancelled":
            # the pipeline finished its last step anyway; the user asked to drop it
            box["result"] = Result(status="cancelled", message="cancelled by Ctrl-C")
        return box.get("result"), box.get("error")

    def present(self, result: Result) -> str:
        """Show a result and, for verified patches, ask before writing. Returns the outcome."""
        if result.status == "cancelled":
            ui.say(self.console, "[CANCELLED] task cancelled; nothing was changed", "yellow")
            return "cancelled"
        if result.status == "explained" or (result.explanation and not result.patches):
            ui.print_explanation(self.console, result.explanation or result.message)
            return "explained"
        if result.status in ("verified", "applied") and result.patches:
            if result.message:
                ui.say(self.console, result.message)
            ui.say(self.console, "Here's the diff:")
            self.console.print()
            ui.print_diff(self.console, result.patches)
            if result.status == "applied":
                return "applied"
            return self.ask_apply(result)
        reason = result.message or "no candidate passed verification"
        ui.say(self.console, reason, "yellow")
        return "no verified candidate" if result.status == "no_candidate" else result.status

    def ask_apply(self, result: Result) -> str:
        # A "y" typed while the task ran (before the diff was on screen) must neither apply
        # the diff unseen nor turn into a "no": it is dropped and the question waits.
        discard = getattr(self.reader, "discard_typeahead", None)
        if callable(discard) and discard():
            ui.say(self.console, "ignored keys typed before the diff was shown; answer now",
                   "yellow")
        while True:
            try:
                answer = self.reader.ask("Apply? [y/n] ").strip().lower()
            except (EOFError, KeyboardInterrupt):
                answer = "n"
                self.console.print()
            if answer in ("y", "yes"):
                return self.apply(result)
            if answer in ("n", "no"):
                ui.say(self.console, "not applied; the files are unchanged")
                return "not applied"
            ui.say(self.console, "please answer y or n")

    def apply(self, result: Result) -> str:
        try:
            written = apply_patches(self.engine.workspace, result.patches)
        except ApplyRefused as exc:
            ui.say(self.console, f"not applied: {exc}", "red")
            return "refused (file changed on disk)"
        except OSError as exc:
            ui.say(self.console, f"not applied: could not write {exc.filename}: "
                                 f"{exc.strerror or exc}", "red")
            return "write failed"
        for plan in written:
            ui.say(self.console, f"applied {plan.path}", "green")
            self._reindex(plan.path, plan.new_bytes)
        return "applied"

    def _reindex(self, path: str, data: bytes) -> None:
        try:
            update = getattr(self.engine.index, "update_document", None)
            if callable(update):
                update(path, data.decode("utf-8", "surrogateescape"))
        except Exception:  # the next start-up's incremental build catches up
            log.info("could not re-index %s", path, exc_info=True)
