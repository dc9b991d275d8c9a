"""`localcode serve`: the language server over stdio (default) or TCP."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true",
                        help="talk LSP over stdin/stdout (the default; accepted for editors "
                             "that always pass it)")
    parser.add_argument("--tcp", metavar="HOST:PORT", default=None,
                        help="listen on HOST:PORT instead of stdio (serves one client)")
    parser.add_argument("--max-message-mb", type=int, default=64,
                        help="refuse LSP messages larger than this (default 64 MiB)")


def run(args: argparse.Namespace) -> int:
    import logging

    from ..logs import setup_logging
    from ..server.run import serve_stdio, serve_tcp
    from ..server.server import LocalcodeServer

    # until initialize names the workspace, warnings go to stderr (never stdout)
    setup_logging(None, getattr(args, "log_level", "INFO"), stderr=True)
    logging.getLogger("pygls").setLevel(logging.WARNING)  # pygls logs message bodies at INFO
    # untrusted unless `--untrusted` is absent and the client says so (initializationOptions)
    server = LocalcodeServer(trusted=False if getattr(args, "untrusted", False) else None,
                             log_level=getattr(args, "log_level", "INFO"))
    max_body = max(1, args.max_message_mb) * 1024 * 1024
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit():
            print(f"localcode serve: --tcp wants HOST:PORT, got {args.tcp!r}", file=sys.stderr)
            return 2
        return serve_tcp(server, host, int(port), max_body=max_body)
    return serve_stdio(server, max_body=max_body)
