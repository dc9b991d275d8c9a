"""Text document sync: didOpen / didChange (incremental) / didSave / didClose feed the session's
documents and the engine's overlay and AST index, synchronously (both are cheap)."""

from __future__ import annotations

from lsprotocol import types

from ..logs import get_logger
from ..workspace import OutsideWorkspace
from .client import Client
from .documents import RangeError
from .session import Session

log = get_logger("server.sync")


class DocumentSync:
    """The open documents, as the editor sees them, kept in the session and the engines."""

    def __init__(self, session: Session, client: Client) -> None:
        self._session = session
        self._client = client

    def did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        self._session.documents.open(item.uri, item.text, item.version, item.language_id)
        self.feed_engine(item.uri, item.text, item.version, item.language_id, opened=True)

    def did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        try:
            document = self._session.documents.change(uri, params.text_document.version,
                                                      list(params.content_changes),
                                                      self._session.encoding)
        except KeyError:
            log.warning("didChange for a document that is not open: %s", uri)
            return
        except RangeError as exc:
            log.warning("rejected didChange for %s: %s", uri, exc)
            self._client.log(f"localcode: rejected an edit outside {uri}: {exc}; "
                             "the document may be out of sync until it is reopened",
                             types.MessageType.Warning, once_key=f"range:{uri}")
            return
        self.feed_engine(uri, document.text, document.version, "", opened=False)

    def did_save(self, params: types.DidSaveTextDocumentParams) -> None:
        """With `[index] update_on_save`, hand the saved text to the index again: it refreshes
        the AST now and the embeddings on its own debounced background worker."""
        uri = params.text_document.uri
        engine = self._session.engine_for(uri)
        document = self._session.documents.get(uri)
        if engine is None or document is None or not engine.config.index.update_on_save:
            return
        self.feed_engine(uri, document.text, document.version, "", opened=False)

    def did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        self._session.documents.close(uri)
        engine = self._session.engine_for(uri)
        if engine is not None:
            try:
                engine.close_document(uri)
            except OutsideWorkspace:
                pass

    def feed_engine(self, uri: str, text: str, version: int, language_id: str,
                    opened: bool) -> None:
        """Overlay + AST index; errors are logged once, and the overlay keeps the text."""
        engine = self._session.engine_for(uri)
        if engine is None:
            return
        try:
            if opened:
                engine.open_document(uri, text, version, language_id)
            else:
                engine.update_document(uri, text, version)
        except OutsideWorkspace:
            return
        except Exception as exc:
            log.warning("indexing %s failed: %s", uri, exc, exc_info=True)
            self._client.log(f"localcode: indexing failed ({type(exc).__name__}: {exc})",
                             types.MessageType.Warning, once_key=f"index:{type(exc).__name__}")
            try:
                if opened:
                    engine.workspace.open_document(uri, text, version, language_id)
                else:
                    engine.workspace.update_document(uri, text, version)
            except Exception:
                pass
