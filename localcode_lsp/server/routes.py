"""The routes table: every LSP method the server handles, which feature handles it, and how.

INLINE handlers run on the event loop before the next message is read (cheap work: sync,
code actions, cancel). BACKGROUND handlers are coroutines scheduled as tasks; the engine work
they await runs on worker threads, and a request's cancel token reaches it. LIFECYCLE methods
(initialize, shutdown) run through pygls' own lifecycle first (capabilities, the shutdown flag),
which then calls the handler. Request handlers get `(params, request)`, notifications
`(params)`. The same table registers each method with pygls so `initialize` advertises it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

INLINE, BACKGROUND, LIFECYCLE = "inline", "background", "lifecycle"


@dataclass(frozen=True)
class Route:
    method: str
    handler: Callable[..., Any]
    mode: str
    options: Any = None  # the capability options pygls advertises for the method


def routes_table(server: Any) -> dict[str, Route]:
    """The one table: method -> Route, over the features of `server` (a LocalcodeServer)."""
    lifecycle, sync, actions = server.lifecycle, server.sync, server.actions
    commands, completion, progress = server.commands, server.completion, server.work_progress
    configuration, watched = server.configuration, server.watched
    table = [
        Route(types.INITIALIZE, lifecycle.initialize, LIFECYCLE),
        Route(types.INITIALIZED, lifecycle.initialized, BACKGROUND),
        Route(types.SHUTDOWN, lifecycle.shutdown, LIFECYCLE),
        Route(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS, lifecycle.folders_changed, INLINE),
        Route(types.TEXT_DOCUMENT_DID_OPEN, sync.did_open, INLINE),
        Route(types.TEXT_DOCUMENT_DID_CHANGE, sync.did_change, INLINE),
        Route(types.TEXT_DOCUMENT_DID_SAVE, sync.did_save, INLINE,
              types.SaveOptions(include_text=False)),
        Route(types.TEXT_DOCUMENT_DID_CLOSE, sync.did_close, INLINE),
        Route(types.TEXT_DOCUMENT_CODE_ACTION, actions.code_action, INLINE,
              types.CodeActionOptions(code_action_kinds=[
                  types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite])),
        Route(types.WORKSPACE_EXECUTE_COMMAND, commands.execute, BACKGROUND),
        Route(types.TEXT_DOCUMENT_INLINE_COMPLETION, completion.inline, BACKGROUND,
              types.InlineCompletionOptions()),
        Route(types.TEXT_DOCUMENT_COMPLETION, completion.completion, BACKGROUND,
              types.CompletionOptions(trigger_characters=[])),
        Route(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, progress.cancel, INLINE),
        Route(types.WORKSPACE_DID_CHANGE_CONFIGURATION, configuration.did_change, BACKGROUND),
        Route(types.WORKSPACE_DID_CHANGE_WATCHED_FILES, watched.did_change, BACKGROUND),
    ]
    return {route.method: route for route in table}


def register(server: Any, routes: dict[str, Route], commands: tuple[str, ...]) -> None:
    """Declare every route (and command) to pygls, which builds the capabilities from them."""
    for route in routes.values():
        if route.options is not None:
            server.feature(route.method, route.options)(_plain(route.handler))
        else:
            server.feature(route.method)(_plain(route.handler))
    for name in commands:
        server.command(name)(_advertised_only)


def _plain(method: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function around a bound method (pygls sets attributes on handlers)."""
    def handler(*args: Any) -> Any:
        return method(*args)

    return handler


def _advertised_only(*args: Any) -> None:
    """Placeholder so pygls advertises the command; the executeCommand route runs it."""
    from pygls.exceptions import JsonRpcInvalidParams

    raise JsonRpcInvalidParams("Invalid params: command handled elsewhere")
