"""The session's pieces in process: rendering, the worker thread, results without a diff."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from localcode_lsp.cancel import CancelToken
from localcode_lsp.cli import ui
from localcode_lsp.cli.session import PlainReader, Session
from localcode_lsp.data import Patch, Result, Task, TraceEvent
from localcode_lsp.workspace import Workspace


def recording_console():
    from rich.console import Console

    return Console(record=True, width=120, force_terminal=False, color_system=None)


class StubEngine:
    """Returns what `behave` returns; records the tasks it saw."""

    def __init__(self, root: Path, behave) -> None:
        self.workspace = Workspace(root)
        self.root = self.workspace.root
        self.tasks: list[Task] = []
        self.behave = behave
        self.index = self

    def build(self, progress=None):
        if progress:
            progress(1, 1, "a.py")
        return {"files": 1, "seconds": 0.25}

    def implement(self, task: Task, *, cancel: CancelToken, on_event=None) -> Result:
        self.tasks.append(task)
        return self.behave(task, cancel, on_event or (lambda e: None))


def make_session(tmp_path: Path, behave, stdin: str = "") -> tuple[Session, StubEngine, object]:
    console = recording_console()
    out = io.StringIO()
    engine = StubEngine(tmp_path, behave)
    reader = PlainReader(echo=True, stream=io.StringIO(stdin), out=out)
    return Session(engine, console=console, reader=reader), engine, out


def test_markup_in_model_text_is_printed_verbatim(tmp_path: Path) -> None:
    def behave(task, cancel, emit):
        emit(TraceEvent("LOCATE", "Found [bold]x[/bold] at a.py:1-2"))
        return Result(status="explained", explanation="uses list[int] and [red]literal[/red]")

    session, _, _ = make_session(tmp_path, behave)
    session.handle_task("explain x")
    text = session.console.export_text()
    assert "localcode: [LOCATE] Found [bold]x[/bold] at a.py:1-2" in text
    assert "uses list[int] and [red]literal[/red]" in text
    assert "model calls: 0" in text


def test_events_from_the_worker_arrive_in_order_on_the_main_thread(tmp_path: Path) -> None:
    seen_threads: list[str] = []

    def behave(task, cancel, emit):
        seen_threads.append(threading.current_thread().name)
        for n in range(20):
            emit(TraceEvent("GENERATE", f"candidate {n}"))
        return Result(status="no_candidate", message="none passed")

    session, _, _ = make_session(tmp_path, behave)
    session.handle_task("do it")
    text = session.console.export_text()
    positions = [text.index(f"candidate {n}\n") for n in range(20)]
    assert positions == sorted(positions)
    assert seen_threads == ["localcode-task"]
    assert "none passed" in text


def test_cancel_requested_after_the_last_step_drops_the_result(tmp_path: Path) -> None:
    patch = Patch("a.py", "x = 1\n", "x = 2\n")
    (tmp_path / "a.py").write_text("x = 1\n")

    def behave(task, cancel, emit):
        cancel.cancel("cancelled by Ctrl-C")  # as if Ctrl-C came while VERIFY finished
        return Result(status="verified", patches=[patch])

    session, _, _ = make_session(tmp_path, behave, stdin="y\n")
    session.handle_task("edit")
    assert "[CANCELLED]" in session.console.export_text()
    assert (tmp_path / "a.py").read_text() == "x = 1\n"


def test_summary_is_carried_into_the_next_task(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")

    def behave(task, cancel, emit):
        return Result(status="verified", patches=[Patch("a.py", "x = 1\n", "x = 2\n")],
                      stats={"target": "a.py:1"})

    session, engine, _ = make_session(tmp_path, behave, stdin="y\nn\n")
    session.handle_task("make x two")
    session.handle_task("again")
    assert engine.tasks[0].session_summary == ""
    assert "make x two (a.py:1): applied [a.py]" in engine.tasks[1].session_summary
    assert (tmp_path / "a.py").read_text() == "x = 2\n"


def test_loop_indexes_then_exits_zero_at_end_of_input(tmp_path: Path) -> None:
    session, engine, out = make_session(tmp_path, lambda *a: Result(status="explained"),
                                        stdin="/nonsense\n\n")
    assert session.loop() == 0
    text = session.console.export_text()
    assert "files: 1, seconds: 0.2" in text  # the index's stats, described
    assert "unknown command /nonsense" in text
    assert engine.tasks == []
    assert out.getvalue().count("you: ") == 3


def test_diff_lines_are_styled_by_kind() -> None:
    patch = Patch("m.py", "a\nb\n", "a\nc\n")
    styled = list(ui.diff_lines(patch))
    assert ("-b", "red") in styled and ("+c", "green") in styled
    assert styled[0][1] == "cyan" and styled[0][0].startswith("@@")
    assert not any(text.startswith(("---", "+++")) for text, _ in styled)
