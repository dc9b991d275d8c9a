"""Index retrieval for the `code` budget: the target's callees and callers (never test code,
by the one test-path rule), each once."""

from __future__ import annotations

from pathlib import Path

from localcode_lsp.config import Config
from localcode_lsp.context.rag import ContextQuery, IndexContextProvider
from localcode_lsp.index import CodeIndex
from localcode_lsp.workspace import Workspace


def test_callees_and_callers_but_no_test_code(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "cart.py").write_text(
        "def price(item):\n    return item * 2\n\n\n"
        "def total(items):\n    return sum(price(i) for i in items)\n")
    (tmp_path / "shop" / "checkout.py").write_text(
        "from shop.cart import total\n\n\ndef pay(items):\n    return total(items)\n")
    (tmp_path / "test").mkdir()  # a `test/` directory: test code, though not named test_*.py
    (tmp_path / "test" / "helpers.py").write_text(
        "from shop.cart import total\n\n\ndef check(items):\n    return total(items)\n")
    workspace = Workspace(tmp_path)
    index = CodeIndex(workspace, Config())
    try:
        index.build(embeddings=False)
        target = index.find_symbol("total")[0]
        provider = IndexContextProvider(index, workspace, similar=0, tests=False, callers=5)
        query = ContextQuery("", "shop/cart.py", target,
                             (tmp_path / "shop" / "cart.py").read_text())
        found = [(s.source, s.path, s.name) for s in provider.provide(query)
                 if s.source in ("callee", "caller")]
        assert found == [("callee", "shop/cart.py", "price"),
                         ("caller", "shop/checkout.py", "pay")]
    finally:
        index.close()
