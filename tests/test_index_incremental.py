"""Incremental tree-sitter updates give exactly the symbols of a full parse (property test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localcode_lsp.config import Config
from localcode_lsp.index import CodeIndex
from localcode_lsp.index.definitions import derive_symbols
from localcode_lsp.index.languages import ParserCache
from localcode_lsp.index.parsed import ParsedFile, diff_edit
from localcode_lsp.index.queries import Queries
from localcode_lsp.workspace import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "index_shop"

SNIPPETS = [
    "def added(x):\n    return x\n",
    "    def extra(self):\n        \"\"\"Doc.\"\"\"\n        pass\n",
    "class New:\n    pass\n",
    "\n\n",
    "x",
    "(",
    ")",
    ":",
    "\"\"\"",
    "    ",
    "@decorator\n",
    "# comment\n",
    "async def co():\n    await z\n",
    "é✓",
    "\n        def inner():\n            ...\n",
]

_PARSERS = ParserCache()
_QUERIES = Queries(_PARSERS)


def _full(path: str, language: str, source: bytes) -> list:
    return ParsedFile(path, language, source, _PARSERS, _QUERIES).symbols


edit_strategy = st.tuples(
    st.floats(0, 1), st.integers(0, 40), st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=6))
)


@pytest.mark.parametrize("path,language", [("shop/cart.py", "python"),
                                           ("shop/util.py", "python"),
                                           ("web/app.js", "javascript"),
                                           ("web/types.ts", "typescript")])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(edit_strategy, min_size=1, max_size=8))
def test_random_edit_sequences_match_full_parse(path: str, language: str, edits) -> None:
    """After every edit, the incrementally maintained symbols equal a from-scratch derivation
    over the same tree, and equal a fresh full parse whenever the text is valid (on broken
    text tree-sitter's error recovery may legitimately build a different tree incrementally)."""
    text = (FIXTURE / path).read_text()
    parsed = ParsedFile(path, language, text.encode(), _PARSERS, _QUERIES)
    changes = 0
    for where, delete, insert in edits:
        start = int(where * len(text))
        end = min(len(text), start + delete)
        text = text[:start] + insert + text[end:]
        source = text.encode("utf-8", "surrogatepass")
        changes += parsed.replace_text(source)
        rederived = [s for _, s in derive_symbols(parsed.tree, source, language, path, _QUERIES)]
        assert parsed.symbols == sorted(rederived, key=lambda s: (s.start_byte, -s.end_byte))
        fresh = ParsedFile(path, language, source, _PARSERS, _QUERIES)
        if not fresh.has_error:
            assert parsed.symbols == fresh.symbols
    assert parsed.incremental_updates == changes


def test_valid_edits_match_full_parse_exactly() -> None:
    text = (FIXTURE / "shop/cart.py").read_text()
    parsed = ParsedFile("cart.py", "python", text.encode(), _PARSERS, _QUERIES)
    steps = [("    def subtotal", "    def helper(self):\n        return 1\n\n    def subtotal"),
             ("def merge_carts(", "def merge_all("),
             ('"""A shopping cart', '"""A shopping basket'),
             ("class Cart:", "class Basket(object):"),
             ("@dataclass\nclass LineItem", "class LineItem")]
    for old, new in steps:
        text = text.replace(old, new, 1)
        parsed.replace_text(text.encode())
        assert parsed.symbols == _full("cart.py", "python", text.encode())
    assert parsed.incremental_updates == len(steps)


def test_diff_edit_is_minimal() -> None:
    old = b"abc\ndef\nghi\n"
    new = b"abc\ndXYef\nghi\n"
    edit = diff_edit(old, new)
    assert (edit.start_byte, edit.old_end_byte, edit.new_end_byte) == (5, 5, 7)
    assert edit.start_point == (1, 1) and edit.new_end_point == (1, 3)
    assert diff_edit(old, old) is None
    assert diff_edit(b"aaa", b"aa").old_end_byte - diff_edit(b"aaa", b"aa").start_byte == 1


@pytest.fixture
def index(copy_fixture) -> CodeIndex:
    idx = CodeIndex(Workspace(copy_fixture("index_shop")), Config(), background_embeddings=False)
    yield idx
    idx.close()


def test_update_document_is_incremental_and_keeps_symbols_current(index: CodeIndex) -> None:
    index.build(embeddings=False)
    text = (index.workspace.root / "shop/cart.py").read_text()
    index.update_document("shop/cart.py", text)  # open: parses and keeps the tree
    record = index._files["shop/cart.py"]
    tree_before = record.parsed.tree
    edited = text.replace("def merge_carts(", "def combine_carts(")
    index.update_document("shop/cart.py", edited)
    assert record.parsed.incremental_updates == 1
    assert record.parsed.tree is not tree_before
    names = [s.name for s in index.symbols("shop/cart.py")]
    assert "combine_carts" in names and "merge_carts" not in names
    assert index.find_symbol("combine_carts")[0].path == "shop/cart.py"
    # the dependency graph follows the edit: the test's call no longer resolves
    total = index.find_symbol("Cart.total")[0]
    assert index.callers(total)


def test_apply_edit_with_known_range(index: CodeIndex) -> None:
    source = (index.workspace.root / "shop/money.py").read_bytes()
    index.update_document("shop/money.py", source.decode())
    start = source.index(b"def format_price")
    old_end = start + len(b"def format_price")
    index.apply_edit("shop/money.py", start, old_end, start + len(b"def render_price"),
                     "def render_price")
    names = [s.name for s in index.symbols("shop/money.py")]
    assert "render_price" in names and "format_price" not in names
    with pytest.raises(ValueError):
        index.apply_edit("shop/money.py", 0, 0, 5, "ab")


def test_many_edits_to_a_2000_line_file_keep_every_symbol_in_place(index: CodeIndex) -> None:
    # (how fast this is is measured by bench/bench_index.py, not asserted here)
    body = "".join(f"def function_{i}(x):\n    y = x + {i}\n    return y * 2\n\n"
                   for i in range(500))
    index.update_document("big.py", body)
    assert len(index.symbols("big.py")) == 500
    text = body
    for i in range(50):
        position = text.index(f"    y = x + {i * 10}\n")
        text = text[:position] + "    z = 1\n" + text[position:]
        index.update_document("big.py", text)
    lines = text.splitlines()
    symbols = index.symbols("big.py")
    assert len(symbols) == 500
    for symbol in symbols:
        assert lines[symbol.start_line].startswith(f"def {symbol.name}(")
        assert lines[symbol.end_line].strip() == "return y * 2"


@pytest.mark.parametrize("path,edits", [
    # a comment typed at a function's last byte extends the function
    ("shop/util.py", [(0.9999999999999999, 1, "# comment\n")]),
    # lines joined: a symbol after the edit now starts on the edited line
    ("shop/util.py", [(0.4375, 18, "'"), (0.0, 20, ""), (0.4375, 23, "x")]),
    # `class Cart:` deleted: methods it never touched now belong to LineItem
    ("shop/cart.py", [(0.5, 27, "class New:\n    pass\n"), (0.5, 28, "class New:\n    pass\n"),
                      (0.25, 35, ""), (0.14453125, 38, "")]),
    ("shop/cart.py", [(0.375, 0, "(")]),
])
def test_edit_sequences_found_by_fuzzing(path: str, edits) -> None:
    test_random_edit_sequences_match_full_parse.hypothesis.inner_test(path, "python", edits)


def test_typing_in_one_method_rederives_that_method_and_its_class_only() -> None:
    """Only changed symbols are derived again: a keystroke inside one of 40 methods derives the
    method and its enclosing class, also while an unclosed bracket has turned the rest of the
    file into an ERROR node."""
    methods = "".join(f"    def m{i}(self, x):\n        \"\"\"Doc {i}.\"\"\"\n        return x + {i}\n\n"
                      for i in range(40))
    text = "import os\n\n\nclass Big:\n" + methods + "\ndef tail():\n    return 1\n"
    parsed = ParsedFile("big.py", "python", text.encode(), _PARSERS, _QUERIES)
    anchor = text.index("        return x + 17")
    statement = "        value = compute(item, limit=3)\n"
    derived = []
    for typed in range(9, len(statement) + 1):
        partial = statement[:typed] if typed == len(statement) else statement[:typed] + "\n"
        current = text[:anchor] + partial + text[anchor:]
        parsed.replace_text(current.encode())
        assert parsed.symbols == _full("big.py", "python", current.encode()) or \
            ParsedFile("big.py", "python", current.encode(), _PARSERS, _QUERIES).has_error
        derived.append(parsed.derived_last_edit)
    assert len(parsed.symbols) == 42
    # Big and Big.m17, never the other 40 -- except where the tree changes shape: the `(` that
    # turns the methods below into an ERROR node, and the `)` and newline that undo it
    reshaped = [count for count in derived if count > 2]
    assert len(derived) == 31 and len(reshaped) <= 3, str(derived)
