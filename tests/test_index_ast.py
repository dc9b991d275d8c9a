"""AST index on the real fixture project: discovery, symbols, enclosing function, JS/TS."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from localcode_lsp.config import Config, IndexConfig
from localcode_lsp.index import CodeIndex, language_for_path
from localcode_lsp.index.discovery import discover
from localcode_lsp.workspace import Workspace


@pytest.fixture
def shop(copy_fixture) -> Path:
    return copy_fixture("index_shop")


@pytest.fixture
def index(shop: Path) -> CodeIndex:
    idx = CodeIndex(Workspace(shop), Config(), background_embeddings=False)
    yield idx
    idx.close()


def test_discovery_respects_ignores_and_skips_binary_and_large(shop: Path) -> None:
    (shop / ".localcode").mkdir()
    (shop / ".localcode" / "ignore").write_text("web/types.ts\n")
    (shop / "huge.py").write_text("x = 1\n" * 2000)
    (shop / "node_modules" / "lib").mkdir(parents=True)
    (shop / "node_modules" / "lib" / "index.js").write_text("function f() {}\n")
    found = discover(shop, max_file_bytes=5000)
    paths = [f.path for f in found.files]
    assert "shop/cart.py" in paths and "web/app.js" in paths
    assert "generated/generated.py" not in paths  # .gitignore: generated/
    assert "debug.log" not in paths  # .gitignore: *.log
    assert "web/types.ts" not in paths  # .localcode/ignore
    assert not any(p.startswith("node_modules") for p in paths)
    assert "logo.png" not in paths and found.skipped_binary == 1
    assert "huge.py" not in paths and found.skipped_large == 1


def test_build_counts(index: CodeIndex) -> None:
    stats = index.build(embeddings=False)
    assert stats.files == 13
    assert stats.skipped_binary == 1
    assert stats.symbols == sum(len(index.symbols(p)) for p in index._files)
    assert stats.parsed_now == 13


def test_python_symbols(index: CodeIndex) -> None:
    symbols = {s.qualified_name: s for s in index.symbols("shop/cart.py")}
    assert list(symbols) == ["LineItem", "Cart", "Cart.add_item", "Cart.remove_item",
                             "Cart.subtotal", "Cart.total", "Cart.describe",
                             "Cart.estimate_shipping", "merge_carts"]
    add_item = symbols["Cart.add_item"]
    assert add_item.kind == "method" and add_item.parent == "Cart"
    assert add_item.signature == "def add_item(self, sku: str, quantity: int, price: str) -> None:"
    assert add_item.docstring.startswith("Add `quantity` units")
    assert add_item.indent == "    "
    text = (index.workspace.root / "shop/cart.py").read_text()
    lines = text.splitlines()
    assert lines[add_item.start_line].strip().startswith("def add_item")
    assert lines[add_item.body_start_line].strip().startswith('"""Add')
    assert text.encode()[add_item.start_byte:add_item.end_byte].decode().startswith("def add_item")
    assert symbols["Cart"].decorated_start_line == symbols["Cart"].start_line - 1
    assert symbols["Cart.estimate_shipping"].is_stub
    assert not symbols["Cart.total"].is_stub
    assert symbols["merge_carts"].kind == "function" and symbols["merge_carts"].parent is None
    util = {s.qualified_name: s for s in index.symbols("shop/util.py")}
    assert util["retry.decorate.wrapper"].parent == "retry.decorate"
    assert util["retry.decorate.wrapper"].kind == "function"
    assert util["flaky_fetch"].is_stub  # body is `...`


def _ast_functions(text: str) -> list[ast.AST]:
    return [n for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _expected_enclosing(functions: list, line: int, column: int) -> str | None:
    """Oracle from the standard library's ast: innermost def whose span holds the position."""
    best = None
    for node in functions:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        first_col = node.col_offset if not node.decorator_list else \
            min(d.col_offset for d in node.decorator_list) - 1
        last = node.end_lineno - 1
        if (line, column) < (first, first_col) or (line, column) > (last, node.end_col_offset):
            continue
        if best is None or node.lineno >= best.lineno:
            best = node
    return best.name if best is not None else None


@pytest.mark.parametrize("path", ["shop/cart.py", "shop/util.py", "shop/inventory.py",
                                  "shop/money.py", "tests/test_cart.py"])
def test_enclosing_function_everywhere(index: CodeIndex, path: str) -> None:
    text = (index.workspace.root / path).read_text()
    functions = _ast_functions(text)
    checked = 0
    for line_number, line in enumerate(text.splitlines()):
        for column in sorted({0, len(line) // 2, len(line)}):
            found = index.enclosing_function(path, line_number, column)
            expected = _expected_enclosing(functions, line_number, column)
            assert (found.name if found else None) == expected, (path, line_number, column)
            checked += 1
    assert checked > 40


def test_enclosing_function_unicode_columns(shop: Path, index: CodeIndex) -> None:
    (shop / "uni.py").write_text('x = "é"\ndef f():\n    s = "ü✓"; return s\n')
    assert index.enclosing_function("uni.py", 2, 12).name == "f"
    assert index.enclosing_function("uni.py", 0, 5) is None
    assert index.enclosing_function("uni.py", 99, 0) is None


def test_find_symbol_forms(index: CodeIndex) -> None:
    assert [s.path for s in index.find_symbol("parse_price")] == ["shop/money.py"]
    assert index.find_symbol("Cart.total")[0].qualified_name == "Cart.total"
    assert index.find_symbol("shop.cart.Cart.total")[0].path == "shop/cart.py"
    assert index.find_symbol("shop/cart.py:merge_carts")[0].name == "merge_carts"
    assert index.find_symbol("no_such_thing") == []


def test_imports(index: CodeIndex) -> None:
    imports = index.imports("shop/cart.py")
    assert ("money", "parse_price", 1) in [(i.module, i.name, i.level) for i in imports]
    assert any(i.module == "" and i.name == "money" and i.level == 1 for i in imports)


def test_javascript_symbols_and_imports(index: CodeIndex) -> None:
    symbols = {s.qualified_name: s for s in index.symbols("web/app.js")}
    assert set(symbols) == {"loadCart", "renderCart", "totalCents", "CartView",
                            "CartView.constructor", "CartView.render"}
    assert symbols["loadCart"].docstring == "Fetch the cart from the server and render it."
    assert symbols["CartView.render"].kind == "method"
    assert symbols["totalCents"].kind == "function"
    imports = {(i.module, i.name, i.bound) for i in index.imports("web/app.js")}
    assert imports == {("./format.js", "formatPrice", "formatPrice"), ("./api.js", "*", "api"),
                       ("lodash", None, "lodash")}


def test_typescript_symbols(index: CodeIndex) -> None:
    symbols = {s.qualified_name: s for s in index.symbols("web/types.ts")}
    assert set(symbols) == {"sumPrices", "Repository", "Repository.find", "Repository.count",
                            "isEmpty"}
    assert symbols["sumPrices"].docstring == "Sum the prices of all items."
    assert symbols["Repository"].kind == "class"
    assert symbols["sumPrices"].signature.startswith("function sumPrices(items: Priced[])")


@pytest.mark.parametrize("name,source", [
    ("a.rs", "fn main() { let x = 1; }"), ("a.go", "package main\nfunc main() {}\n"),
    ("a.lua", "local function f() return 1 end"), ("A.java", "class A { void f() {} }"),
    ("a.c", "int main(void) { return 0; }"), ("a.cpp", "int f() { return 1; }"),
])
def test_other_languages_parse(shop: Path, index: CodeIndex, name: str, source: str) -> None:
    (shop / name).write_text(source)
    assert language_for_path(name) is not None
    assert index.symbols(name) == []  # parsed, no symbols derived
    record = index._record(name)
    assert record.language is not None


def test_oversized_cap_from_config(shop: Path) -> None:
    config = Config(index=IndexConfig(max_file_bytes=300))
    idx = CodeIndex(Workspace(shop), config, background_embeddings=False)
    stats = idx.build(embeddings=False)
    assert stats.skipped_large >= 5
    assert stats.files + stats.skipped_large == 13


def test_ast_cache_survives_restart_and_corruption(shop: Path, index: CodeIndex) -> None:
    first = index.build(embeddings=False)
    assert first.parsed_now == 13
    second = CodeIndex(Workspace(shop), Config(), background_embeddings=False)
    stats = second.build(embeddings=False)
    assert stats.parsed_now == 0 and stats.parsed_cached == 13
    assert second.symbols("shop/cart.py") == index.symbols("shop/cart.py")
    (shop / ".localcode" / "index" / "ast_cache.json").write_text("{not json")
    third = CodeIndex(Workspace(shop), Config(), background_embeddings=False)
    assert third.build(embeddings=False).parsed_now == 13


def test_schema_mismatch_rebuilds(shop: Path, index: CodeIndex, caplog) -> None:
    index.build(embeddings=False)
    (shop / ".localcode" / "index" / "schema.json").write_text('{"version": -1}')
    again = CodeIndex(Workspace(shop), Config(), background_embeddings=False)
    with caplog.at_level("WARNING", logger="localcode.index"):
        stats = again.build(embeddings=False)
    assert stats.rebuilt and stats.parsed_now == 13
    assert any("schema changed" in r.message for r in caplog.records)


def test_deleted_file_leaves_the_index(shop: Path, index: CodeIndex) -> None:
    index.build(embeddings=False)
    (shop / "shop" / "emails.py").unlink()
    stats = index.build(embeddings=False)
    assert stats.deleted_files == 1
    assert index.find_symbol("render_receipt") == []


def test_keyword_search_without_embeddings(index: CodeIndex) -> None:
    index.build(embeddings=False)
    hits = index.search("load inventory csv", 3)
    assert hits[0].symbol == "load_inventory_csv"
    assert hits[0].vector_score is None and hits[0].keyword_score > 0
