"""Documentation fragments read from real installed sources, without importing them."""

from __future__ import annotations

import inspect
import json
import sys
import time

from localcode_lsp.context.rag import ContextQuery
from localcode_lsp.knowledge import KnowledgeStore
from localcode_lsp.knowledge.docs import DocsLibrary
from localcode_lsp.knowledge.providers import DocsProvider
from localcode_lsp.knowledge.storage import JsonCache
from localcode_lsp.workspace import Workspace

CODE = '''import json
import os.path
from pathspec import PathSpec


def load(text, folder):
    data = json.loads(text)
    spec = PathSpec.from_lines("gitwildmatch", data["ignore"])
    return os.path.join(folder, "x"), spec
'''


def library(tmp_path, root=None):
    return DocsLibrary(JsonCache(tmp_path / "docs.json", kind="docs", max_bytes=1_000_000),
                       workspace_root=root)


def test_stdlib_call_gets_its_real_signature(tmp_path):
    fragments = {f.qualified_name: f for f in library(tmp_path).fragments_for(CODE, CODE)}
    loads = fragments["json.loads"]
    assert f"def loads{inspect.signature(json.loads)}:" in loads.text
    assert "Deserialize" in loads.text and loads.origin.startswith("stdlib")
    assert "def join(a, *p):" in fragments["os.path.join"].text


def test_third_party_reexport_is_followed(tmp_path):
    fragments = {f.qualified_name: f for f in library(tmp_path).fragments_for(CODE, CODE)}
    from_lines = fragments["PathSpec.from_lines"]
    assert "def from_lines(" in from_lines.text and "pattern_factory" in from_lines.text
    assert from_lines.origin.startswith("pathspec ")


def test_sources_are_read_never_imported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    package = site / "boomlib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise RuntimeError("importing boomlib runs code")\n'
        "from .core import fetch\n")
    (package / "core.py").write_text(
        "def fetch(url: str, *, timeout: float = 5.0) -> bytes:\n"
        '    """Fetch `url` and return the body.\n\n    Raises on errors."""\n'
        "    raise RuntimeError\n")
    monkeypatch.syspath_prepend(str(site))
    docs = library(tmp_path)
    code = "import boomlib\n\ndef get(u):\n    return boomlib.fetch(u, timeout=1)\n"
    [fragment] = docs.fragments_for(code, code)
    assert "def fetch(url: str, *, timeout: float = 5.0) -> bytes:" in fragment.text
    assert "Fetch `url`" in fragment.text
    assert "boomlib" not in sys.modules

    # refreshed when the installed source changes (mtime)
    time.sleep(0.01)
    (package / "core.py").write_text("def fetch(url: str, retries: int = 3) -> bytes:\n"
                                     "    return b''\n")
    fresh = library(tmp_path)
    [again] = fresh.fragments_for(code, code)
    assert "retries: int = 3" in again.text


def test_workspace_modules_are_not_library_docs(copy_fixture, tmp_path):
    root = copy_fixture("knowledge_shop")
    code = "from shop import money\n\ndef f(x):\n    return money.round_cents(x)\n"
    assert library(tmp_path, root).fragments_for(code, code) == []


def test_docs_cached_and_budgeted(tmp_path):
    docs = library(tmp_path)
    chosen = docs.docs_for(CODE, CODE, budget_tokens=10_000)
    assert len(chosen) == 3
    reopened = library(tmp_path)
    assert set(reopened.cache.keys()) >= {"json", "posixpath"}
    small = reopened.docs_for(CODE, CODE, budget_tokens=min(f.tokens for f in chosen))
    assert len(small) == 1


def test_docs_section_through_the_provider(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    text = (root / "shop" / "parsing.py").read_text()

    class Symbol:
        name = qualified_name = "load_catalog"
        path = "shop/parsing.py"
        docstring = "Products from a JSON list of objects."
        start_line = 20

    snippets = DocsProvider(store).provide(ContextQuery("", "shop/parsing.py", Symbol(), text))
    assert [s.section for s in snippets] == ["docs"]
    assert snippets[0].name == "json.loads" and "def loads(s, *, cls=None" in snippets[0].text
    # a stub that only names the API in its instruction gets it too
    mention = DocsProvider(store).provide(ContextQuery(
        "parse it with json.loads", "shop/parsing.py", None, text))
    assert mention and mention[0].name == "json.loads"
    assert store.stats()["totals"]["docs_served"] == 2
