"""Completion at the cursor: textDocument/inlineCompletion (ghost text), and
textDocument/completion as a fallback for clients without it. A newer request for the same
document cancels the older one (answered with nothing, not an error)."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Executor

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from .documents import OpenDocument, RangeError, engine_position, offset_of, position_of
from .progress import Progress
from .requests import Request, RequestRegistry, await_engine
from .session import Session

SUPERSEDED = "superseded by a newer completion request"


def useful_suggestion(suggestion: str, text_after_cursor: str) -> bool:
    """False for empty suggestions and for ones that only repeat what follows the cursor."""
    if not suggestion.strip():
        return False
    if text_after_cursor.startswith(suggestion):
        return False
    rest_of_line = text_after_cursor.split("\n", 1)[0]
    return not (rest_of_line.strip() and suggestion.strip() == rest_of_line.strip())


class Completion:
    """One engine completion per request, on its own single worker."""

    def __init__(self, session: Session, requests: RequestRegistry, progress: Progress,
                 pool: Executor) -> None:
        self._session = session
        self._requests = requests
        self._progress = progress
        self._pool = pool

    async def _complete(self, uri: str, position: types.Position, request: Request, kind: str
                        ) -> tuple[str, OpenDocument, int] | None:
        """One engine completion for the cursor; None when there is nothing to offer. A newer
        request of the same `kind` for the same document supersedes this one; ghost text and
        the completion menu are separate kinds, so they never cancel each other."""
        document = self._session.documents.get(uri)
        engine = self._session.engine_for(uri) if document else None
        if document is None or engine is None:
            return None
        try:
            offset = offset_of(document.text, position.line, position.character,
                               self._session.encoding)
        except RangeError as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {exc}") from None
        where = engine_position(document.text, offset)
        self._requests.link((kind, uri), request, supersede=SUPERSEDED)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._pool,
            lambda: engine.complete(uri, where.line, where.column, cancel=request.cancel))
        try:
            result = await self._progress.around_model_load(engine,
                                                            await_engine(request, future))
        except JsonRpcRequestCancelled:
            if request.cancel.reason == SUPERSEDED:
                return None
            raise
        text = getattr(result, "text", None) or ""
        current = self._session.documents.get(uri)
        if current is None or current.version != document.version:
            return None  # the user kept typing: this suggestion is for old text
        if not useful_suggestion(text, document.text[offset:]):
            return None
        return text, document, offset

    async def inline(self, params: types.InlineCompletionParams, request: Request
                     ) -> types.InlineCompletionList:
        completed = await self._complete(params.text_document.uri, params.position, request,
                                         "inline")
        if completed is None:
            return types.InlineCompletionList(items=[])
        text, _, _ = completed
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=text, range=types.Range(start=params.position, end=params.position))])

    async def completion(self, params: types.CompletionParams, request: Request
                         ) -> types.CompletionList:
        empty = types.CompletionList(is_incomplete=True, items=[])
        if self._session.client.inline_completion:
            return empty  # the client asks textDocument/inlineCompletion: do not run twice
        completed = await self._complete(params.text_document.uri, params.position, request,
                                         "completion")
        if completed is None:
            return empty
        text, document, offset = completed
        word = re.search(r"[A-Za-z0-9_]*$", document.text[max(0, offset - 200):offset])
        prefix = word.group(0) if word else ""
        encoding = self._session.encoding
        start_line, start_character = position_of(document.text, offset - len(prefix), encoding)
        label = (prefix + text).splitlines()[0].strip() if (prefix + text).strip() else text
        return types.CompletionList(is_incomplete=True, items=[types.CompletionItem(
            label=label[:80] or "localcode",
            kind=types.CompletionItemKind.Snippet,
            detail="localcode",
            filter_text=prefix + text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(
                start=types.Position(line=start_line, character=start_character),
                end=params.position), new_text=prefix + text))])
