"""Settings from the client: `workspace/didChangeConfiguration`, and `workspace/configuration`
pulled for the `localcode` section from clients that support it. A change reaches every part of
each engine through `Engine.reconfigure` (the gate, the index, the knowledge store, the trust).

Settings are a nested table in the shape of localcode.toml, e.g. `{"generation":
{"candidates": 3}}`, optionally wrapped as `{"localcode": {...}}`. Invalid settings give one
window/logMessage and the defaults, never a crash.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..logs import get_logger
from .client import Client
from .session import Session

log = get_logger("server.configuration")


class Configuration:
    """Client settings into the session and its engines."""

    def __init__(self, session: Session, client: Client) -> None:
        self._session = session
        self._client = client

    def apply(self, settings: Any) -> None:
        """New settings: validate, then reconfigure every engine."""
        self._session.take_settings(settings)
        self._session.reconfigure()

    async def pull(self) -> None:
        """workspace/configuration for the `localcode` section."""
        if not self._session.roots:
            return
        items = [types.ConfigurationItem(section="localcode",
                                         scope_uri=self._session.roots[0].as_uri())]
        try:
            result = await self._client.request(types.WORKSPACE_CONFIGURATION,
                                                types.ConfigurationParams(items=items), 5.0)
        except Exception as exc:
            log.info("workspace/configuration failed: %r", exc)
            return
        if isinstance(result, (list, tuple)) and result:
            self.apply(result[0] if result[0] is not None else {})

    async def did_change(self, params: types.DidChangeConfigurationParams) -> None:
        if self._session.client.pull_configuration:
            await self.pull()
        else:
            self.apply(params.settings)
