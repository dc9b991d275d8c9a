"""textDocument/codeAction: "implement/fix this" and "explain this" for the function under the
cursor, named as the AST index sees it (`B.__init__`, `Worker.run`). The actions carry only the
position: the command builds the Task from it."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..logs import get_logger
from .commands import CMD_EXPLAIN, CMD_FIX, CMD_IMPLEMENT
from .documents import RangeError, engine_position, offset_of
from .requests import Request
from .session import Session

log = get_logger("server.actions")

# Languages where "outside every function" means nothing to implement (the index knows their
# functions); elsewhere the actions are offered anywhere in the file.
_FUNCTION_AWARE = ("python", "")


class CodeActions:
    """Offers the localcode actions at a position."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def function_at(self, uri: str, line: int, character: int) -> tuple[bool, str | None]:
        """(position exists, qualified name of the function there or None)."""
        session = self._session
        document = session.documents.get(uri)
        engine = session.engine_for(uri) if document else None
        if document is None or engine is None:
            return False, None
        try:
            where = engine_position(document.text, offset_of(document.text, line, character,
                                                             session.encoding))
            relative = engine.workspace.relative(uri)
            symbol = engine.index.enclosing_function(relative, where.line, where.column)
        except RangeError:
            return False, None
        except Exception as exc:  # an index that cannot parse this file: offer no name
            log.info("no symbol at %s:%d: %s", uri, line, exc)
            return True, None
        return True, symbol.qualified_name if symbol is not None else None

    def code_action(self, params: types.CodeActionParams, request: Request
                    ) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        document = self._session.documents.get(uri)
        if document is None or self._session.root_for(uri) is None:
            return None
        position = params.range.start
        exists, name = self.function_at(uri, position.line, position.character)
        if not exists or (name is None and document.language_id in _FUNCTION_AWARE):
            return None
        argument: dict[str, Any] = {"uri": uri, "position": {"line": position.line,
                                                            "character": position.character}}
        diagnostics = [d.message for d in params.context.diagnostics or []]
        where = f" `{name}`" if name else ""
        actions = []
        if diagnostics:
            actions.append(types.CodeAction(
                title=f"localcode: implement/fix this{where}",
                kind=types.CodeActionKind.QuickFix,
                command=types.Command(title="localcode: fix", command=CMD_FIX,
                                      arguments=[dict(argument, diagnostics=diagnostics)])))
        else:
            actions.append(types.CodeAction(
                title=f"localcode: implement/fix this{where}",
                kind=types.CodeActionKind.RefactorRewrite,
                command=types.Command(title="localcode: implement", command=CMD_IMPLEMENT,
                                      arguments=[argument])))
        actions.append(types.CodeAction(
            title=f"localcode: explain this{where}",
            kind=types.CodeActionKind.Empty,
            command=types.Command(title="localcode: explain", command=CMD_EXPLAIN,
                                  arguments=[argument])))
        only = params.context.only
        if only:
            actions = [a for a in actions if a.kind is not None and any(
                str(a.kind).startswith(str(kind)) for kind in only)]
        return actions
