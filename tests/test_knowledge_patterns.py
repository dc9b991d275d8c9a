"""Pattern library on a fixture project: similar functions, exclusions, budget, incremental."""

from __future__ import annotations

from localcode_lsp.knowledge import KnowledgeStore
from localcode_lsp.knowledge.patterns import name_tokens
from localcode_lsp.workspace import Workspace


def store_for(root):
    return KnowledgeStore(Workspace(root))


def names(examples):
    return [e.qualified_name for e in examples]


def test_name_tokens():
    assert name_tokens("parseConfigFile") == ["parse", "config", "file"]
    assert name_tokens("apply_tax_2") == ["apply", "tax"]


def test_similar_functions_are_the_examples(copy_fixture):
    store = store_for(copy_fixture("knowledge_shop"))
    examples = store.few_shot_for(
        {"name": "parse_customer", "path": "shop/parsing.py", "kind": "function",
         "signature": "def parse_customer(line: str) -> Customer"}, k=2)
    assert set(names(examples)) == {"parse_product", "parse_order"}
    assert all(e.path == "shop/parsing.py" for e in examples)
    assert "def parse_product(line: str) -> Product:" in examples[0].text + examples[1].text

    pricing = store.few_shot_for({"name": "apply_shipping", "path": "shop/pricing.py",
                                  "signature": "def apply_shipping(price: float, fee: float)"},
                                 k=2)
    assert set(names(pricing)) == {"apply_tax", "apply_discount"}


def test_never_the_target_nor_its_tests_nor_stubs(copy_fixture):
    store = store_for(copy_fixture("knowledge_shop"))
    examples = store.few_shot_for({"name": "parse_customer", "path": "shop/parsing.py"}, k=10,
                                  budget_tokens=100_000)
    chosen = names(examples)
    assert "parse_customer" not in chosen
    assert not any(name.startswith("test_") for name in chosen)
    assert all("ada@example.org" not in e.text for e in examples)  # its test's expected values
    assert "apply_shipping" not in names(store.few_shot_for("apply_tax", path="shop/pricing.py",
                                                            k=10))  # a stub teaches nothing


def test_a_test_target_gets_sibling_tests_and_the_project_style(copy_fixture):
    store = store_for(copy_fixture("knowledge_shop"))
    examples = store.few_shot_for({"name": "test_parse_customer", "path": "tests/test_parsing.py"},
                                  k=2)
    assert set(names(examples)) <= {"test_parse_product", "test_parse_order",
                                     "test_parse_product_rejects_garbage"}
    assert len(examples) == 2
    conventions = store.patterns.test_conventions()
    assert "plain assert" in conventions and "pytest.raises" in conventions


def test_categories_models_and_handlers(copy_fixture):
    store = store_for(copy_fixture("knowledge_shop"))
    store.patterns.refresh(force=True)
    categories = {p["qualified_name"]: p["category"] for _, p in store.patterns.patterns()}
    assert categories["Product"] == "model" and categories["Order"] == "model"
    assert categories["handle_create_product"] == "handler"
    assert categories["test_parse_order"] == "test"
    examples = store.few_shot_for({"name": "handle_delete_product", "path": "shop/handlers.py",
                                   "signature": "def handle_delete_product(request: dict)"}, k=2)
    assert set(names(examples)) == {"handle_create_product", "handle_get_product"}


def test_budget_is_respected(copy_fixture):
    store = store_for(copy_fixture("knowledge_shop"))

    def count(text):
        return len(text.split())

    full = store.few_shot_for("parse_customer", path="shop/parsing.py", k=3,
                              budget_tokens=10_000, count_tokens=count)
    smallest = min(count(e.render()) for e in full)
    tight = store.few_shot_for("parse_customer", path="shop/parsing.py", k=3,
                               budget_tokens=smallest, count_tokens=count)
    assert len(tight) == 1 and sum(e.tokens for e in tight) <= smallest
    assert store.few_shot_for("parse_customer", path="shop/parsing.py", budget_tokens=0) == []


def test_incremental_refresh_and_restart(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = store_for(root)
    assert store.patterns.refresh(force=True) == 8  # every .py file of the fixture
    assert store.patterns.refresh(force=True) == 0
    parsing = root / "shop" / "parsing.py"
    parsing.write_text(parsing.read_text() + "\n\ndef parse_invoice(line: str) -> str:\n"
                       "    return line.strip()\n")
    assert store.patterns.refresh(force=True) == 1
    assert "parse_invoice" in names(store.few_shot_for("parse_receipt", path="shop/other.py",
                                                       k=5, budget_tokens=10_000))
    store.close()
    restarted = store_for(root)
    assert restarted.patterns.refresh(force=True) == 0  # content hashes survived the restart
    assert restarted.patterns.files_mined == 0
    (root / "shop" / "handlers.py").unlink()
    restarted.patterns.refresh(force=True)
    assert all(rel != "shop/handlers.py" for rel, _ in restarted.patterns.patterns())


def test_open_buffer_wins_over_disk(copy_fixture):
    root = copy_fixture("knowledge_shop")
    workspace = Workspace(root)
    store = KnowledgeStore(workspace)
    workspace.open_document("shop/money.py", "def round_dollars(amount: float) -> float:\n"
                                             "    return float(round(amount))\n")
    assert "round_dollars" in names(store.few_shot_for("round_euros", path="shop/eur.py", k=5))


def test_mined_definitions_come_from_the_index_finder():
    """knowledge.syntax reads definitions through index.symbols: the same names, kinds and
    stubs as the index, plus what only the pattern library asks (params, decorators, calls)."""
    from localcode_lsp.index.definitions import parse_symbols
    from localcode_lsp.knowledge.syntax import module_facts

    source = (
        "import json\n"
        "try:\n"
        "    from fast import loads\n"
        "except ImportError:\n"
        "    def loads(s, *, strict: bool = True):  # the fallback\n"
        "        return json.loads(s, strict=strict)\n"
        "\n"
        "\n"
        "class Store:\n"
        "    @staticmethod\n"
        "    async def get(key: str, *args) -> bytes:\n"
        "        def inner():\n"
        "            pass\n"
        "        return helper(key).encode()\n"
        "\n"
        "    def todo(self):\n"
        '        """Later."""\n'
        "        ...\n"
    )
    facts = module_facts(source)
    by_name = {d.qualified_name: d for d in facts.definitions}
    # a function inside a function is not the module's; one inside `except` is
    assert list(by_name) == ["loads", "Store", "Store.get", "Store.todo"]
    index_names = [s.qualified_name for s in parse_symbols(source, "python")]
    assert set(by_name) <= set(index_names) and "Store.get.inner" in index_names
    loads = by_name["loads"]
    assert loads.signature == "def loads(s, *, strict: bool = True)"  # no trailing comment
    assert loads.params == ("s", "strict") and loads.annotated == 1
    assert loads.calls == ("json.loads",)
    get = by_name["Store.get"]
    assert (get.kind, get.decorators, get.is_async, get.returns) == (
        "method", ("staticmethod",), True, "bytes")
    assert get.start_line == 9 and get.end_line == 13  # decorator line .. last body line
    assert get.text.splitlines()[0].strip() == "@staticmethod"
    assert get.calls == ("helper",)  # `helper(key).encode()` calls no name of its own
    assert by_name["Store.todo"].is_stub and by_name["Store.todo"].docstring == "Later."
    assert [(i.module, i.name, i.alias) for i in facts.imports] == [
        ("json", "", "json"), ("fast", "loads", "loads")]


def test_mined_files_are_the_files_the_index_covers(tmp_path):
    """The pattern library walks the workspace the index's way: `.localcode/ignore` and a
    nested .gitignore keep files out of the examples too; build output stays out as before."""
    body = "def parse_line(line: str) -> list[str]:\n    return line.split(',')\n"
    for rel in ("app/parse.py", "vendored/parse_copy.py", "app/gen/parse_gen.py",
                "build/lib/app/parse.py", "app/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    (tmp_path / ".localcode").mkdir()
    (tmp_path / ".localcode" / "ignore").write_text("vendored/\n")
    (tmp_path / "app" / ".gitignore").write_text("gen/\n")
    store = store_for(tmp_path)
    assert store.patterns._python_files() == ["app/parse.py"]
