"""The context manager: token budgets per prompt section, retrieval, digestion, session summary."""

from .budget import Budget, CachedCounter, Prompt, Section, fit_text
from .compress import SessionSummary, digest_feedback, digest_tool_output
from .rag import ContextProvider, ContextQuery, IndexContextProvider, Snippet, gather, select

__all__ = [
    "Budget", "CachedCounter", "ContextProvider", "ContextQuery", "IndexContextProvider", "Prompt",
    "Section", "SessionSummary", "Snippet", "digest_feedback", "digest_tool_output", "fit_text",
    "gather", "select",
]
