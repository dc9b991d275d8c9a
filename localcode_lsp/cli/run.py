"""`localcode run`: the pipeline on one task, without prompts (for scripts and benchmarks).

    localcode run --project DIR [--file F (--symbol NAME | --line N)] [--yes | --dry-run] [--json]
                  "instruction"

Exit status: 0 applied (--yes) or verified (--dry-run) or explained, 1 no verified candidate (or
cancelled, or the apply was refused), 2 usage or configuration error. Without a terminal, one of
--yes / --dry-run is required: a script never blocks on a question.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from typing import Any

from ..data import INTENTS, Result, Task, TraceEvent
from ..targeting import task_at_position
from .main import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instruction", nargs="?", default="",
                        help="what to do, in plain words (optional with --symbol/--line: "
                             "implement or fix that function as its docstring and tests say)")
    parser.add_argument("--file", metavar="F", help="target file, relative to the project")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--symbol", metavar="NAME", help="target function (name or Class.method)")
    where.add_argument("--line", metavar="N", type=int,
                       help="target line in --file (1-based): the function around it")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--yes", action="store_true",
                      help="apply the verified patch (atomically; refused if the file changed)")
    mode.add_argument("--dry-run", action="store_true", help="show the verified patch, write nothing")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: status, patches, verdicts, trace, model calls "
                             "(implies --dry-run unless --yes)")
    parser.add_argument("--intent", choices=INTENTS, default=None,
                        help="skip intent classification (edit, explain, fix, generate)")
    parser.add_argument("--untrusted", dest="run_untrusted", action="store_true",
                        help="do not run project code: parse-only verification")


def _usage(message: str) -> int:
    print(f"localcode run: {message}", file=sys.stderr)
    return EXIT_USAGE


def result_to_json(result: Result, *, applied: bool = False) -> dict[str, Any]:
    """The documented `run --json` object."""
    verdicts = {v.candidate_id: v for v in result.verdicts}
    return {
        "status": "applied" if applied else result.status,
        "message": result.message,
        "explanation": result.explanation,
        "patches": [{"path": p.path, "version": p.version, "diff": p.unified_diff()}
                    for p in result.patches],
        "candidates": [{
            "id": c.id,
            "attempt": c.attempt,
            "source": c.source,
            "text": c.text,
            "verdict": None if c.id not in verdicts else {
                "passed": verdicts[c.id].passed,
                "summary": verdicts[c.id].summary(),
                "feedback": verdicts[c.id].feedback,
                "gates": [{"gate": g.gate, "passed": g.passed, "skipped": g.skipped,
                           "feedback": g.feedback, "seconds": round(g.seconds, 3)}
                          for g in verdicts[c.id].gates],
            },
        } for c in result.candidates],
        "trace": [{"state": e.state, "message": e.message, "data": e.data} for e in result.trace],
        "model_calls": result.model_calls,
        "timings": result.timings,
        "stats": result.stats,
    }


def _exit_code(status: str) -> int:
    if status in ("verified", "applied", "explained"):
        return EXIT_OK
    if status == "error":
        return EXIT_USAGE
    return EXIT_FAILED


# Errors of the machine, not of localcode: said in one line, never as a traceback.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)


def run(args: argparse.Namespace) -> int:
    """`localcode run`: a full disk or a permission error ends with one clear line."""
    try:
        return _run(args)
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        hint = ("free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else "check the permissions of the project and of .localcode/")
        print(f"localcode run: {exc.strerror or exc}{where}; {hint}, then run it again. "
              f"Nothing was applied unless it says so above.", file=sys.stderr)
        return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..workspace import OutsideWorkspace
    from . import ui
    from .apply import ApplyRefused, apply_patches
    from .models import ensure_model_assembled

    if args.line is not None and not args.file:
        return _usage("--line needs --file")
    if args.line is not None and args.line < 1:
        return _usage("--line is 1-based and must be >= 1")
    if not (args.instruction.strip() or args.symbol or args.line):
        return _usage("give an instruction, or a target with --symbol / --file F --line N")
    if args.json and not args.yes:
        args.dry_run = True  # a JSON report is for scripts: it never asks, it writes only on --yes
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not (args.yes or args.dry_run or interactive):
        return _usage("no terminal to ask 'Apply?': pass --yes to apply or --dry-run to only "
                      "show the verified patch")
    root = args.project or os.getcwd()
    trusted = not (getattr(args, "untrusted", False) or args.run_untrusted)
    engine = Engine(root, trusted=trusted)
    ensure_model_assembled(engine.config, engine.root)  # once, with a progress bar
    try:
        path = engine.workspace.relative(args.file) if args.file else None
    except OutsideWorkspace as exc:
        return _usage(str(exc))
    if path is not None and not (engine.root / path).is_file() and \
            engine.workspace.document(path) is None:
        return _usage(f"file not found: {args.file}")
    if args.line and path is not None:  # the same Task the editor builds for this position
        task = task_at_position(engine.index, path, args.line - 1, 0,
                                instruction=args.instruction, intent=args.intent)
    else:
        task = Task(path=path, symbol=args.symbol, instruction=args.instruction,
                    intent=args.intent)
    console = ui.make_console()

    def show(event: TraceEvent) -> None:
        ui.stage_line(console, event)

    started = time.monotonic()
    try:
        result = engine.implement(task, on_event=None if args.json else show)
    finally:
        engine.close()
    applied = False
    refused = ""
    if result.status == "verified" and result.patches:
        answer_yes = args.yes
        if not (args.yes or args.dry_run):
            if not args.json:
                ui.print_diff(console, result.patches)
            reply = input("Apply? [y/n] ").strip().lower()
            answer_yes = reply in ("y", "yes")
        if answer_yes:
            try:
                apply_patches(engine.workspace, result.patches)
                applied = True
            except ApplyRefused as exc:
                refused = str(exc)
    status = "applied" if applied else result.status
    code = _exit_code(status)
    if refused:
        code = EXIT_FAILED
    if args.json:
        payload = result_to_json(result, applied=applied)
        payload["timings"] = {**payload["timings"], "wall": round(time.monotonic() - started, 3)}
        if refused:
            payload["message"] = f"not applied: {refused}"
        print(json.dumps(payload, indent=2, default=str, ensure_ascii=False))
        return code
    if result.status == "explained":
        ui.print_explanation(console, result.explanation)
    elif result.patches and (args.yes or args.dry_run):
        ui.say(console, "Here's the diff:")
        ui.print_diff(console, result.patches)
    note = result.untested_note()
    if note and result.patches and not refused:
        ui.say(console, f"Note: {note}", "yellow")
    if refused:
        ui.say(console, f"Not applied: {refused}", "bold red")
    elif applied:
        ui.say(console, f"Applied to {', '.join(p.path for p in result.patches)}", "bold green")
    elif result.status == "verified":
        ui.say(console, "Verified (dry run: nothing written)")
    elif result.message:
        ui.say(console, result.message, "bold red" if code else "")
    return code
