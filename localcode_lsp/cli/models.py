"""`localcode models`: the model catalogue (installed or not, where, size, how to install), and
`--assemble NAME` to put an installed model into the user cache now, with a progress bar."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--assemble", metavar="NAME", default=None,
                        help="assemble an installed catalogue model into the user cache now "
                             "(sha-checked; otherwise it happens on first use)")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..inference.backend import BackendError
    from ..inference.catalogue import CATALOGUE, find_model, model_status

    if args.assemble:
        try:
            path = assemble_with_progress(find_model(args.assemble))
        except BackendError as exc:
            print(f"localcode models: {exc}", file=sys.stderr)
            return 1
        print(f"{args.assemble}: {path}")
        return 0
    try:
        selected = load_config(args.project or ".").model
        in_use = "" if selected.path or selected.backend != "llama.cpp" else selected.name
    except Exception:  # a broken localcode.toml must not hide the catalogue
        in_use = ""
    rows = []
    for model in CATALOGUE:
        status = model_status(model)
        rows.append({
            "name": model.name, "title": model.title, "kind": model.kind,
            "parameters": model.parameters, "quantisation": model.quantisation,
            "size_bytes": model.size_bytes, "installed": status.installed,
            "assembled_path": str(status.assembled) if status.assembled else None,
            "missing_packages": list(status.missing), "install": model.install_command,
            "install_from_checkout": model.checkout_install_command,
            "fim_template": model.fim_template or None,
            "chat_template": model.chat_template or None, "licence": model.licence,
            "generation_tokens_per_second": model.generation_tokens_per_second,
            "load_seconds": model.load_seconds, "in_use": model.name == in_use,
            "note": model.note,
        })
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    _print_table(rows)
    return 0


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # piped (a log, `| less`): rich would fit 80 columns and cut the names to "qwen2.5-…"
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("name", no_wrap=True)
    for column in ("kind", "size", "FIM", "chat", "tok/s here", "status"):
        table.add_column(column, no_wrap=True)
    notes = []
    for row in rows:
        if row["assembled_path"]:
            status = "ready"
            notes.append(f"{row['name']}: {row['assembled_path']}")
        elif row["installed"]:
            status = "installed"
            notes.append(f"{row['name']}: installed; assembles into the cache on first use")
        else:
            status = "not installed"
            notes.append(f"{row['name']}: install with {row['install']} "
                         f"(from a checkout: {row['install_from_checkout']})")
        table.add_row("*" if row["in_use"] else "", row["name"],
                      f"{row['kind']} {row['parameters']}",
                      f"{row['size_bytes'] / 1e6:.0f} MB", row["fim_template"] or "-",
                      row["chat_template"] or "-", f"{row['generation_tokens_per_second']:.0f}",
                      status)
    console.print(table)
    for note in notes:
        console.print(escape(note), soft_wrap=True)
    console.print(escape("* = selected by [model] name. Any other GGUF: [model] path = \"...\" "
                         "in localcode.toml. Speeds: 2 cores, portable llama.cpp build."),
                  soft_wrap=True)


def assemble_with_progress(model) -> object:
    """Assemble `model` into the cache with a rich progress bar on stderr; returns the path."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from ..inference.catalogue import model_file, model_status

    if model_status(model).assembled is not None:
        return model_file(model)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  transient=False, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"assembling {model.name}", total=model.size_bytes)

        def report(_message: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return model_file(model, report)


def ensure_model_assembled(config, project_root) -> None:
    """Before a terminal run: assemble the configured catalogue model now, with a progress bar,
    instead of silently on the first model call. Problems are left to the backend to report."""
    from ..config import resolve_model_path
    from ..inference.backend import BackendError
    from ..inference.catalogue import find_model, model_status

    if config.model.backend != "llama.cpp" or resolve_model_path(config, project_root):
        return
    try:
        model = find_model(config.model.name)
        status = model_status(model)
    except BackendError:
        return
    if status.installed and status.assembled is None:
        assemble_with_progress(model)
