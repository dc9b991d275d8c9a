"""The knowledge store inside the real pipeline: real index, real gate (ruff + pytest in the
sandbox), scripted model outputs. A retry the model needed for a missing import is repaired from
the cache on the next run, with one model call fewer."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.scripted_backend import ScriptedBackend

from localcode_lsp.config import load_config
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine

NEEDS_IMPORT = "    return money.round_cents(price + fee)\n"
WITH_IMPORT = "    from shop import money\n\n    return money.round_cents(price + fee)\n"


def engine_for(root, outputs, **knowledge):
    config = load_config(root, user_file=None, overrides={
        "generation": {"candidates": 1, "max_retries": 2},
        "verification": {"diff_review": False},
        **({"knowledge": knowledge} if knowledge else {}),
    })
    backend = ScriptedBackend(outputs=list(outputs))
    return Engine(root, config=config, backend=backend), backend


def implement_shipping(root, outputs, **knowledge):
    engine, backend = engine_for(root, outputs, **knowledge)
    try:
        result = engine.implement(Task(path="shop/pricing.py", symbol="apply_shipping",
                                       intent="edit"))
        stats = engine.knowledge.stats() if engine.knowledge is not None else None
    finally:
        engine.close()
    return result, backend, stats


@pytest.mark.slow
def test_second_run_is_fixed_from_the_cache_with_one_model_call_fewer(copy_fixture):
    root = copy_fixture("knowledge_shop")
    original = (root / "shop" / "pricing.py").read_text()

    first, backend, stats = implement_shipping(root, [NEEDS_IMPORT, WITH_IMPORT])
    assert first.status == "verified", first.message
    assert len(first.model_calls) == 2 and len(backend.calls) == 2
    assert any("F821" in line and "money" in line for v in first.verdicts for line in v.feedback)
    assert stats["session"]["fixes_recorded"] == 1 and stats["session"]["misses"] == 1

    (root / "shop" / "pricing.py").write_text(original)  # the same task again, after a restart
    second, backend, stats = implement_shipping(root, [NEEDS_IMPORT, WITH_IMPORT])
    assert second.status == "verified", second.message
    assert len(second.model_calls) == len(first.model_calls) - 1 == 1
    assert len(backend.calls) == 1
    assert second.stats["model_calls_saved"] == 1
    assert second.stats["knowledge"]["session"]["model_calls_saved"] == 1  # what run --json shows
    assert stats["session"]["model_calls_saved"] == 1 and stats["session"]["hits"] == 1
    assert stats["totals"]["model_calls_saved"] == 1 and stats["totals"]["fixes_recorded"] == 2
    [patch] = second.patches
    assert patch.after.startswith('"""Prices: discounts, taxes and totals."""\n\n'
                                  "from shop import money\n")
    assert "    return money.round_cents(price + fee)\n" in patch.after
    assert any(e.data.get("source") == "repair" and e.data.get("passed") for e in second.trace)
    assert [c.source for c in second.candidates] == ["model", "repair"]

    # knowledge off: the same run needs the model again
    (root / "shop" / "pricing.py").write_text(original)
    off, backend, stats = implement_shipping(root, [NEEDS_IMPORT, WITH_IMPORT], enabled=False)
    assert off.status == "verified" and len(off.model_calls) == 2 and stats is None


CUSTOMERS = ('"""Customer import."""\n\nimport json\n\nfrom shop.models import Customer\n\n\n'
             "def load_customers(text: str) -> list[Customer]:\n"
             '    """Customers from a JSON list of objects (json.loads)."""\n')
CUSTOMERS_TEST = ("from shop.customers import load_customers\nfrom shop.models import Customer\n\n\n"
                  "def test_load_customers():\n"
                  "    text = '[{\"customer_id\": 1, \"name\": \"Ada\", \"email\": \"a@x\"}]'\n"
                  "    assert load_customers(text) == [Customer(1, 'Ada', 'a@x')]\n")


def with_customers(root, test_body: str = CUSTOMERS_TEST):
    (root / "shop" / "customers.py").write_text(CUSTOMERS)
    (root / "tests" / "test_customers.py").write_text(test_body)


@pytest.mark.slow
def test_prompt_gets_few_shot_and_docs_sections(copy_fixture):
    root = copy_fixture("knowledge_shop")
    with_customers(root)
    engine, backend = engine_for(root, ["    return [Customer(**c) for c in json.loads(text)]\n"])
    try:
        result = engine.implement(Task(path="shop/customers.py", symbol="load_customers",
                                       intent="edit"))
    finally:
        engine.close()
    assert result.status == "verified", result.message
    sections = {s["name"]: s for s in result.model_calls[0]["sections"]}
    assert sections["docs"]["tokens"] > 0 and sections["few_shot"]["tokens"] > 0
    prompt = backend.calls[0].prompt
    assert "def loads(s, *, cls=None" in prompt
    assert "def load_catalog(text: str) -> list[Product]:" in prompt  # the similar function
    assert "test_parse" not in prompt
    # the verified body ran the project's test of it, and passes it once applied
    tests = next(g for g in result.verdicts[-1].gates if g.gate == "test")
    assert tests.passed and not tests.skipped and tests.details["passed"] >= 1
    [patch] = result.patches
    (root / "shop" / "customers.py").write_text(patch.after)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_customers.py"], cwd=root, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.model
def test_real_model_sees_knowledge_sections_and_never_returns_an_unverified_edit(
        copy_fixture, model_path):
    """The tiny embedded model, end to end: few_shot and docs reach its prompt, the store's
    counters are reported, and with a test no body can pass the run ends with no edit (the
    outcome does not depend on how well the model codes)."""
    root = copy_fixture("knowledge_shop")
    with_customers(root, CUSTOMERS_TEST.replace("[Customer(1, 'Ada', 'a@x')]",
                                                "'the sha256 of a random file'"))
    config = load_config(root, user_file=None, overrides={
        "model": {"path": str(model_path)},
        "generation": {"candidates": 1, "max_retries": 0, "max_tokens": 64},
        "verification": {"diff_review": False}})
    engine = Engine(root, config=config)
    try:
        result = engine.implement(Task(path="shop/customers.py", symbol="load_customers",
                                       intent="edit"))
    finally:
        engine.close()
    assert result.status == "no_candidate", result.message
    assert result.patches == [] and (root / "shop" / "customers.py").read_text() == CUSTOMERS
    assert result.message.startswith("No verified candidate")
    sections = {s["name"]: s["tokens"] for s in result.model_calls[0]["sections"]}
    assert sections["docs"] > 0 and sections["few_shot"] > 0
    assert result.stats["knowledge"]["session"]["docs_served"] >= 1
