"""Dependency graph on the fixture project: module resolution, callers/callees, tests_of."""

from __future__ import annotations

import pytest

from localcode_lsp.config import Config
from localcode_lsp.index import CodeIndex
from localcode_lsp.workspace import Workspace


@pytest.fixture
def index(copy_fixture) -> CodeIndex:
    idx = CodeIndex(Workspace(copy_fixture("index_shop")), Config(), background_embeddings=False)
    idx.build(embeddings=False)
    yield idx
    idx.close()


def _one(index: CodeIndex, name: str):
    found = index.find_symbol(name)
    assert found, name
    return found[0]


def _node_ids(index: CodeIndex, name: str) -> list[str]:
    return [t.node_id for t in index.tests_of(_one(index, name))]


def test_module_resolution(index: CodeIndex) -> None:
    assert index.resolve_module("shop.money") == "shop/money.py"
    assert index.resolve_module("shop") == "shop/__init__.py"
    assert index.resolve_module("os.path") is None


def test_callees_and_callers(index: CodeIndex) -> None:
    total = _one(index, "Cart.total")
    assert [s.qualified_name for s in index.callees(total)] == ["Cart.subtotal"]
    callers = {(s.path, s.qualified_name) for s in index.callers(total)}
    assert ("shop/cart.py", "Cart.describe") in callers  # self.total()
    assert ("shop/emails.py", "render_receipt") in callers  # cart.total() across modules
    describe = _one(index, "Cart.describe")
    # `money.format_price(...)` through `from . import money`
    assert ("shop/money.py", "format_price") in {(s.path, s.qualified_name)
                                                 for s in index.callees(describe)}
    receipt = _one(index, "send_receipt_email")
    assert [s.qualified_name for s in index.callees(receipt)] == ["render_receipt"]
    # `from .money import parse_price` (relative import)
    add_item = _one(index, "Cart.add_item")
    assert ("shop/money.py", "parse_price") in {(s.path, s.name) for s in index.callees(add_item)}


def test_tests_of_functions(index: CodeIndex) -> None:
    assert _node_ids(index, "parse_price") == [
        "tests/test_money.py::test_parse_price_dollars_and_cents",
        "tests/test_money.py::test_parse_price_rejects_words",
    ]
    assert _node_ids(index, "format_price")[0] == "tests/test_money.py::test_format_price"
    # `from shop import util` then `util.slugify(...)`
    assert _node_ids(index, "slugify") == ["tests/test_util.py::test_slugify"]
    # a test method in a Test class
    assert _node_ids(index, "merge_carts") == ["tests/test_cart.py::TestMerge::test_merge_keeps_items"]


def test_tests_of_methods_and_classes(index: CodeIndex) -> None:
    assert _node_ids(index, "Cart.total") == ["tests/test_cart.py::test_total_with_discount"]
    assert "tests/test_money.py::test_money_add" in _node_ids(index, "Money.add")
    cart_tests = _node_ids(index, "Cart")
    assert "tests/test_cart.py::test_remove_item" in cart_tests
    assert all(node.startswith("tests/test_cart.py") for node in cart_tests)


def test_tests_of_untested_symbol_is_empty(index: CodeIndex) -> None:
    assert index.tests_of(_one(index, "Inventory.reserve")) == []
    assert index.tests_of(_one(index, "load_inventory_csv")) == []


def test_filename_convention(index: CodeIndex) -> None:
    root = index.workspace.root
    (root / "tests" / "test_inventory.py").write_text(
        "def test_release_adds_units():\n    assert True\n\n"
        "def test_something_else():\n    assert True\n")
    index.build(embeddings=False)
    refs = index.tests_of(_one(index, "Inventory.release"))
    assert [(t.node_id, t.reason) for t in refs] == [
        ("tests/test_inventory.py::test_release_adds_units", "name")]
    refs = index.tests_of(_one(index, "load_inventory_csv"))  # nothing by name: the whole file
    assert {t.reason for t in refs} == {"module"} and len(refs) == 2


def test_graph_follows_edits(index: CodeIndex) -> None:
    text = (index.workspace.root / "tests/test_util.py").read_text()
    index.update_document("tests/test_util.py", text.replace("util.slugify", "str"))
    # no call any more: only the naming convention (test_util.py::test_slugify) links them
    assert [t.reason for t in index.tests_of(_one(index, "slugify"))] == ["name"]
    index.update_document("tests/test_util.py", text)
    assert [t.reason for t in index.tests_of(_one(index, "slugify"))] == ["calls"]
