"""index.languages owns two rules every package asks: a file's language and whether it is
test code. Each former copy (completion, retrieval, the pattern library, the graph, the gate)
now answers from here, so they cannot disagree again."""

from __future__ import annotations

import pytest

from localcode_lsp.index.languages import (
    conventional_test_names,
    is_pytest_file,
    is_test_path,
    language_for_path,
)
from localcode_lsp.inference.stops import stop_rule_for
from localcode_lsp.pipeline.completion import language_of, starts_block_body
from localcode_lsp.verify import is_protected_path


@pytest.mark.parametrize("path, language", [
    ("a/b.py", "python"), ("x.PYI", "python"), ("c.tsx", "tsx"), ("c.ts", "typescript"),
    ("c.jsx", "javascript"), ("main.dart", "dart"), ("notes.txt", None), ("Makefile", None),
])
def test_one_extension_table(path: str, language: str | None) -> None:
    assert language_for_path(path) == language
    assert language_of(path) == (language or "")  # inline completion asks the same table


def test_tsx_completion_stops_at_the_closing_brace() -> None:
    # completion's own table called .tsx "typescript"; the shared one says "tsx", which must
    # still get the brace-block stop rule and multi-line completion of a block body
    prefix = "function f() {\n  "
    assert starts_block_body(prefix, "\n}\n", "tsx")
    rule = stop_rule_for("tsx", prefix)
    assert rule.trim("return 1;\n}\nfunction g() {}") == "return 1;\n"


@pytest.mark.parametrize("path", [
    "tests/helpers.py", "test/x.py", "pkg/tests/deep/util.py", "web/__tests__/a.js",
    "test_cart.py", "pkg/cart_test.py", "conftest.py", "src/a.test.ts", "src/a.spec.js",
    "cmd/main_test.go",
])
def test_test_code(path: str) -> None:
    assert is_test_path(path)
    assert is_protected_path(path)  # the gate refuses a candidate that edits test code


@pytest.mark.parametrize("path", [
    "shop/cart.py", "testing.py", "contest.py", "latest/x.py", "src/attest.ts", "tests.py",
])
def test_not_test_code(path: str) -> None:
    assert not is_test_path(path)


def test_pytest_files_are_the_test_modules_pytest_collects() -> None:
    assert is_pytest_file("tests/test_cart.py") and is_pytest_file("cart_test.py")
    assert not is_pytest_file("tests/helpers.py") and not is_pytest_file("conftest.py")
    assert not is_pytest_file("a.test.js")


def test_conventional_test_names_of_a_module_and_a_package() -> None:
    assert conventional_test_names("shop/cart.py") == {"test_cart.py", "cart_test.py"}
    assert conventional_test_names("shop/__init__.py") == {"test_shop.py", "shop_test.py"}
