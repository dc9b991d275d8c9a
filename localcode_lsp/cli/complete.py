"""`localcode complete`: one completion at FILE:LINE:COLUMN, printed (or as JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the completion the model proposes at one position of a file (the document on "
        "disk). LINE and COLUMN are 1-based, as editors show them; COLUMN counts characters "
        "(code points), and column 1 is before the first character of the line."
    )
    parser.add_argument("--file", required=True, metavar="F",
                        help="file to complete in (relative to --project, or absolute inside it)")
    parser.add_argument("--line", required=True, type=int, metavar="L", help="1-based line")
    parser.add_argument("--column", required=True, type=int, metavar="C",
                        help="1-based column (characters); the cursor is before character C")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: text, prompt_tokens, evaluated_tokens, ms, multiline, "
                             "finish_reason, truncated, dropped")


def run(args: argparse.Namespace) -> int:
    from ..engine import Engine
    from ..inference.backend import BackendError
    from ..workspace import OutsideWorkspace

    if args.line < 1 or args.column < 1:
        print("localcode complete: --line and --column are 1-based (>= 1)", file=sys.stderr)
        return 2
    project = Path(args.project or ".")
    engine = Engine(project)
    try:
        file_path = Path(args.file)
        if not file_path.is_absolute():
            file_path = engine.root / file_path
        if not engine.workspace.resolve(file_path).is_file():
            print(f"localcode complete: no such file: {file_path}", file=sys.stderr)
            return 2
        result = engine.complete(file_path, args.line - 1, args.column - 1)
    except (OutsideWorkspace, ValueError) as exc:
        print(f"localcode complete: {exc}", file=sys.stderr)
        return 2
    except BackendError as exc:
        print(f"localcode complete: model error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(result.text)
        print(f"[{result.prompt_tokens} prompt tokens, {result.evaluated_tokens} evaluated, "
              f"{result.milliseconds:.0f} ms{', dropped: ' + result.dropped if result.dropped else ''}]",
              file=sys.stderr)
    return 0
