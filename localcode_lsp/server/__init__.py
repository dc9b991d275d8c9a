"""The language server: LSP over stdio or TCP in front of the Engine (protocol only)."""

from __future__ import annotations

from .server import COMMANDS, LocalcodeServer

__all__ = ["COMMANDS", "LocalcodeServer"]
