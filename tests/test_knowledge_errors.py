"""Error -> fix cache: signatures, model-free repairs (checked with real ruff), learning, stats."""

from __future__ import annotations

import subprocess
import sys

from localcode_lsp.knowledge import KnowledgeStore, error_signature, parse_feedback
from localcode_lsp.verify.lint import Diagnostic
from localcode_lsp.workspace import Workspace

BROKEN = '''"""Catalog helpers."""
from shop.models import Product


def load(text):
    result = 3
    data = json.loads(text)
    unused = compute(data)
    return [Product(**item) for item in data]


def compute(data):
    return len(data)
'''


def ruff_codes(text: str, root) -> set[str]:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
                           "--select", "F", "--output-format", "concise", "--stdin-filename",
                           "x.py", "-"], input=text, capture_output=True, text=True, cwd=root)
    return {word for line in proc.stdout.splitlines() for word in line.split()
            if word[:1] == "F" and word[1:].isdigit()}


def lint(code: str, message: str, line: int) -> str:
    return Diagnostic(code, message, line).lint_line()  # the gate's own feedback format


def test_signature_abstracts_names():
    line = lint("F821", "Undefined name `json`", 7)
    fact = parse_feedback(line)
    assert (fact.code, fact.names, fact.line) == ("F821", ("json",), 7)
    assert error_signature(fact, BROKEN) == "F821 undefined-name | <NAME> = <NAME>.<ATTR>(...)"
    other = "def f(s):\n    value = yaml.safe_load(s, 3)\n"
    assert error_signature(parse_feedback("LINT: F821 undefined name 'yaml' (line 2)"), other) \
        == error_signature(fact, BROKEN)
    test = parse_feedback("TEST FAIL: test_load — AttributeError: 'NoneType' object has no "
                          "attribute 'sku'")
    assert test.code == "AttributeError" and test.kind == "test"


def test_repairs_without_a_model_pass_real_ruff(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    feedback = [lint("F821", "Undefined name `json`", 7),
                lint("F841", "Local variable `result` is assigned to but never used", 6),
                lint("F841", "Local variable `unused` is assigned to but never used", 8)]
    assert {"F821", "F841"} <= ruff_codes(BROKEN, root)
    repair = store.try_repair(BROKEN, feedback, path="shop/catalog.py")
    assert repair is not None
    header = repair.text.split("def load")[0]
    assert "import json\n" in header and "from shop.models import Product\n" in header
    assert repair.actions[-1] == "applied ruff safe fixes"  # import order, via the sandbox
    assert "    compute(data)\n" in repair.text and "result = 3" not in repair.text
    assert ruff_codes(repair.text, root) == set()
    compile(repair.text, "x.py", "exec")


def test_workspace_symbol_and_stdlib_member_imports(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    text = "def total(price):\n    return round_cents(apply_tax(price, 0.2)) + Decimal(0)\n"
    feedback = ["LINT: F821 undefined name 'apply_tax' (line 2)",
                "LINT: F821 undefined name 'round_cents' (line 2)",
                "TEST FAIL: test_total — NameError: name 'Decimal' is not defined"]
    repair = store.try_repair(text, feedback)
    assert "from shop.pricing import apply_tax\n" in repair.text
    assert "from shop.money import round_cents\n" in repair.text
    assert "from decimal import Decimal\n" in repair.text
    assert ruff_codes(repair.text, root) == set()


def test_ruff_safe_fixes_run_through_the_sandbox(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    text = "from os import (\n    path,\n    sep,\n)\n\nprint(sep)\n"
    repair = store.try_repair(text, [lint("F401", "`os.path` imported but unused", 2)],
                              path="shop/x.py")
    assert repair is not None and "applied ruff safe fixes" in repair.actions
    assert "path" not in repair.text.replace("print", "") and "sep" in repair.text
    untrusted = KnowledgeStore(Workspace(root, trusted=False))
    assert untrusted.errors.ruff_fix is None  # zero subprocesses in an untrusted workspace


def test_learned_import_and_past_fix_feedback_survive_restart(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    failing = "def ship(price, fee):\n    return money.round_cents(price + fee)\n"
    feedback = ["LINT: F821 undefined name 'money' (line 2)"]
    assert store.try_repair(failing, feedback) is None  # not resolvable statically
    assert store.feedback_for(feedback, failing) == []
    fixed = ("def ship(price, fee):\n    from shop import money\n\n"
             "    return money.round_cents(price + fee)\n")
    assert store.record_fix(failing, feedback, fixed)
    store.close()

    restarted = KnowledgeStore(Workspace(root))
    repair = restarted.try_repair(failing, feedback)
    assert repair is not None and repair.text.startswith("from shop import money\n")
    assert "learned" in repair.actions[0]
    restarted.repair_outcome(True)
    past = restarted.feedback_for(
        ["TEST FAIL: test_x — AttributeError: 'NoneType' object has no attribute 'name'"],
        "x = 1\n")
    assert past == []  # a different error does not pull an unrelated fix
    similar = restarted.feedback_for(
        ["LINT: F821 undefined name 'money' (line 2)"],
        "def ship(price, fee):\n    return money.round_cents(price) + fee\n", repaired=True)
    assert similar[0].startswith("PAST FIX for F821 undefined-name")
    assert any("from shop import money" in line for line in similar)
    totals = restarted.stats()["totals"]
    assert totals["fixes_recorded"] == 1 and totals["model_calls_saved"] == 1
    assert totals["repairs_passed"] == 1 and totals["misses"] == 2 and totals["hits"] == 1
    assert restarted.stats()["entries"]["learned_imports"] == 1


def test_unrepairable_feedback_returns_none(copy_fixture):
    store = KnowledgeStore(Workspace(copy_fixture("knowledge_shop")))
    text = "def f(x):\n    return x + 1\n"
    assert store.try_repair(text, ["TEST FAIL: test_f — AssertionError: expected 4, got 3"]) is None
    assert store.try_repair(text, ["LINT: F821 undefined name 'no_such_thing_xyz' (line 2)"]) is None
    assert store.try_repair(text, []) is None
