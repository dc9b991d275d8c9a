"""`localcode doctor`: report the model, llama.cpp build, grammars, embedder, tools, index and
where each config value came from. Exits 1 when something the config asks for is missing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from ..doctor import build_report

    root = Path(args.project or ".")
    if not root.is_dir():
        print(f"localcode doctor: project directory does not exist: {root}", file=sys.stderr)
        return 2
    report = build_report(root)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return 0 if report.ok else 1
    _print_human(report)
    return 0 if report.ok else 1


def _print_human(report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"localcode {report.info.get('localcode')}  python {report.info.get('python')}")
    console.print(f"project: {report.info.get('project')}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        mark = "[green]ok[/]" if check.ok else ("[red]MISSING[/]" if check.required
                                                else "[yellow]warn[/]")
        detail = check.detail + (f"\n[dim]hint: {check.hint}[/]" if check.hint else "")
        table.add_row(check.name, mark, detail)
    console.print(table)
    config = report.info.get("config")
    if config:
        cfg = Table(show_header=True, header_style="bold", title="configuration")
        cfg.add_column("key")
        cfg.add_column("value")
        cfg.add_column("from", overflow="fold")
        for section, table_values in config.items():
            for key, entry in table_values.items():
                cfg.add_row(f"{section}.{key}", repr(entry["value"]), entry["source"])
        console.print(cfg)
    if not report.ok:
        console.print("[red]some required parts are missing (see above)[/]")
