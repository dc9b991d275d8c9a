"""`localcode`: the terminal front end. Subcommands live in sibling modules, imported lazily so
`--help` and `serve` start fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

# name -> (module, one-line help). Each module has add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the language server (LSP over stdio, or --tcp HOST:PORT)"),
    "run": ("run", "run the pipeline on one task without prompts (for scripts; --json)"),
    "index": ("index", "build or update the codebase index (AST, dependency graph, embeddings)"),
    "search": ("search", "hybrid (vector + keyword) search over the index"),
    "complete": ("complete", "one fill-in-the-middle completion at FILE:LINE:COLUMN"),
    "doctor": ("doctor", "check the model, llama.cpp build, grammars, embedder, tools and config"),
    "models": ("models", "the model catalogue: installed or not, where, size, how to install"),
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand shares."""
    parser.add_argument("--project", metavar="DIR", default=None,
                        help="project root (default: the current directory)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="level for .localcode/logs/localcode.log (default INFO)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="localcode",
        description=(
            "A coding assistant for small local models. Without a subcommand, starts the "
            "interactive session in the project: type a task, see the stage lines and a diff, "
            "answer Apply? [y/n]."
        ),
    )
    parser.add_argument("--version", action="version", version=f"localcode {__version__}")
    add_common(parser)
    parser.add_argument("--untrusted", action="store_true",
                        help="do not run any project code: parse-only verification")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        add_common(sub)
        module = importlib.import_module(f"{__package__}.{module_name}")
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `localcode` console script."""
    from ..config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    module_name = SUBCOMMANDS[args.command][0] if args.command else "session"
    module = importlib.import_module(f"{__package__}.{module_name}")
    _setup_logging(args)
    try:
        return int(module.run(args) or 0)
    except ConfigError as exc:
        print(f"localcode: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"localcode: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("localcode: interrupted", file=sys.stderr)
        return 130


def _setup_logging(args: argparse.Namespace) -> None:
    """Log to <project>/.localcode/logs (doctor stays read-only and logs to stderr only)."""
    from pathlib import Path

    from ..logs import setup_logging
    from ..workspace import ensure_state_dir

    root = Path(args.project or ".")
    state_dir = None
    if args.command not in ("doctor", "models") and root.is_dir():
        try:
            state_dir = ensure_state_dir(root.resolve())
        except OSError:
            state_dir = None
    setup_logging(state_dir, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
