"""What localcode learns about a workspace: a pattern library of the project's own code, an
error -> fix cache with model-free repairs, and documentation fragments of the libraries it
calls. Persisted under `.localcode/knowledge/`; everything there is a rebuildable cache."""

from .docs import DocsLibrary, Fragment
from .errors import ErrorFixCache, Repair, error_signature, parse_feedback
from .patterns import Example, PatternLibrary, Target
from .providers import DocsProvider, FewShotProvider
from .store import KnowledgeStore

__all__ = [
    "DocsLibrary", "DocsProvider", "ErrorFixCache", "Example", "FewShotProvider", "Fragment",
    "KnowledgeStore", "PatternLibrary", "Repair", "Target", "error_signature", "parse_feedback",
]
