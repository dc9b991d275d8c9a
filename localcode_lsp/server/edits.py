"""Engine patches as LSP edits: versioned TextDocumentEdits of minimal diffs, for files inside
the workspace only, refused (ContentModified) when the document moved on since the snapshot."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

from ..data import Result
from ..workspace import OutsideWorkspace
from .documents import DocumentStore, engine_edit_offsets, line_starts, position_of


def lsp_edits(before: str, edits: list, encoding: str) -> list[types.TextEdit]:
    """Engine TextEdits (code points, engine line model) -> LSP TextEdits in `encoding`."""
    starts = line_starts(before)
    result = []
    for edit in edits:
        start, end = engine_edit_offsets(before, edit)
        start_line, start_character = position_of(before, start, encoding, starts)
        end_line, end_character = position_of(before, end, encoding, starts)
        result.append(types.TextEdit(
            range=types.Range(start=types.Position(line=start_line, character=start_character),
                              end=types.Position(line=end_line, character=end_character)),
            new_text=edit.new_text))
    return result


def workspace_edit(documents: DocumentStore, encoding: str, document_changes: bool,
                   uri: str, relative: str, engine: Any, result: Result) -> types.WorkspaceEdit:
    """The WorkspaceEdit for `result`'s patches (`uri`/`relative`: the document the command
    ran on). Refuses any path outside the workspace (-32602) and stale text (-32801)."""
    document_edits: list[types.TextDocumentEdit] = []
    changes: dict[str, list[types.TextEdit]] = {}
    for patch in result.patches:
        try:
            engine.workspace.resolve(patch.path)
        except OutsideWorkspace as exc:
            raise JsonRpcInvalidParams(f"refusing an edit outside the workspace: {exc}"
                                       ) from None
        patch_uri = uri if patch.path == relative else engine.workspace.uri(patch.path)
        current = documents.get(patch_uri)
        if current is not None:
            if current.version != patch.version or current.text != patch.before:
                raise JsonRpcContentModified(
                    f"Content modified: {patch.path} changed (version {current.version}) "
                    f"since localcode read it (version {patch.version}); not applied")
        else:
            disk = engine.workspace.snapshot(patch.path).text
            if disk != patch.before:
                raise JsonRpcContentModified(
                    f"Content modified: {patch.path} changed on disk; not applied")
        edits = lsp_edits(patch.before, patch.edits(), encoding)
        document_edits.append(types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=patch_uri, version=current.version if current else None),
            edits=edits))
        changes[patch_uri] = list(edits)
    if document_changes:
        return types.WorkspaceEdit(document_changes=document_edits)
    return types.WorkspaceEdit(changes=changes)


def failure_message(result: Result) -> str:
    """Why nothing was applied, with the best candidate's gate summary and first feedback."""
    lines = [result.message or f"localcode: no verified candidate ({result.status})"]
    if result.verdicts:
        best = max(result.verdicts, key=lambda verdict: verdict.rank_key())
        lines.append(f"best candidate: {best.summary()}")
        lines.extend(best.feedback[:3])
    return "\n".join(line for line in lines if line)[:1500]
