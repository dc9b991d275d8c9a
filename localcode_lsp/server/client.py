"""Messages from the server to the client: log lines, popups, edits, registrations."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from ..logs import get_logger

log = get_logger("server.client")


class Client:
    """The client as the features see it (over the protocol, from the event loop)."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self._reported: set[str] = set()

    def log(self, message: str, level: types.MessageType = types.MessageType.Info,
            once_key: str | None = None) -> None:
        """window/logMessage (the editor's log, not a popup); `once_key` reports a problem once."""
        if once_key is not None:
            if once_key in self._reported or len(self._reported) >= 1000:
                return  # reported already (or a flood of distinct problems: the log has them)
            self._reported.add(once_key)
        self.protocol.notify(types.WINDOW_LOG_MESSAGE,
                             types.LogMessageParams(type=level, message=message))

    def show(self, message: str, level: types.MessageType) -> None:
        """A popup: only for the outcome of something the user asked for."""
        self.protocol.notify(types.WINDOW_SHOW_MESSAGE,
                             types.ShowMessageParams(type=level, message=message))

    async def request(self, method: str, params: Any, timeout: float) -> Any:
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), timeout)

    async def apply_edit(self, edit: types.WorkspaceEdit, timeout: float = 60.0
                         ) -> types.ApplyWorkspaceEditResult:
        return await self.request(types.WORKSPACE_APPLY_EDIT,
                                  types.ApplyWorkspaceEditParams(edit=edit, label="localcode"),
                                  timeout)
