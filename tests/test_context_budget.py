"""Context manager: sections measured and cut to their pool budgets, retrieval fitting,
feedback digestion, the rolling session summary."""

from __future__ import annotations

from support.scripted_backend import ScriptedBackend

from localcode_lsp.context import (
    Budget,
    CachedCounter,
    Section,
    SessionSummary,
    Snippet,
    digest_feedback,
    digest_tool_output,
    fit_text,
    select,
)

count = ScriptedBackend().count_tokens  # ~4 characters per token


def lines(n: int, prefix: str = "line") -> str:
    return "".join(f"{prefix} {i:03d} xxxxxxxxxxxx\n" for i in range(n))


def test_fit_text_keeps_whole_lines_from_the_chosen_end():
    text = lines(50)
    head, tokens = fit_text(text, 40, count, keep="head")
    assert tokens <= 40 and count(head) == tokens
    assert head.startswith("line 000") and head.endswith("\n")
    tail, tokens = fit_text(text, 40, count, keep="tail")
    assert tokens <= 40 and tail.endswith("line 049 xxxxxxxxxxxx\n")
    assert text == fit_text(text, 10_000, count)[0]
    assert fit_text(text, 0, count) == ("", 0)


def test_fit_text_cuts_a_single_long_line_by_characters():
    piece, tokens = fit_text("y" * 400, 10, count)
    assert tokens == 10 and piece == "y" * 40


def test_budget_cuts_each_section_to_its_pool_and_reports_counts():
    budget = Budget(system=8, code=100, task=30, context_length=1000)
    sections = [
        Section("system", lines(5), priority=0),
        Section("code", lines(40, "ctx"), priority=4),
        Section("target", lines(10, "tgt"), priority=1, keep="tail"),
        Section("task", lines(3, "task"), priority=2),
        Section("feedback", lines(10, "fb"), priority=3),
    ]
    prompt = budget.fit(sections, count)
    by = {s.name: s for s in prompt.sections}
    assert [s.name for s in prompt.sections] == ["system", "code", "target", "task", "feedback"]
    assert by["system"].tokens <= 8 and by["system"].truncated
    assert not by["target"].truncated  # the target is filled before retrieved code
    assert by["target"].tokens + by["code"].tokens <= 100 and by["code"].truncated
    assert by["task"].tokens + by["feedback"].tokens <= 30
    assert not by["task"].truncated and by["feedback"].truncated
    assert prompt.tokens == sum(count(s.text) for s in prompt.sections)
    described = prompt.describe()
    assert {"name", "tokens", "budget", "truncated", "original_tokens"} <= set(described[0])
    assert by["code"].original_tokens == count(lines(40, "ctx"))


def test_budget_defaults_come_from_config():
    from localcode_lsp.config import Config

    budget = Budget.from_config(Config())
    assert budget.pools == {"system": 256, "code": 1536, "task": 512}
    assert budget.generation == 8192 - 256 - 1536 - 512


def test_select_takes_the_best_snippets_that_fit():
    snippets = [
        Snippet(lines(5, "callee"), "callee", "a.py", "helper", 1.0),
        Snippet(lines(30, "similar"), "similar", "b.py", "big", 0.4),
        Snippet(lines(3, "test"), "test", "tests/test_a.py", "test_x", 0.9),
        Snippet("doc text\n", "docs", "README", "", 0.9, section="docs"),
    ]
    text, chosen = select(snippets, "code", 70, count)
    assert [s.name for s in chosen] == ["helper", "test_x"]
    assert count(text) <= 70 and "# callee: a.py (helper)" in text
    text, chosen = select(snippets, "code", 1000, count, exclude_text=lines(5, "callee"))
    assert "helper" not in [s.name for s in chosen]


def test_cached_counter_counts_once():
    seen = []

    def counting(text: str) -> int:
        seen.append(text)
        return len(text)

    cached = CachedCounter(counting)
    assert cached("abc") == 3 and cached("abc") == 3 and cached("") == 0
    assert seen == ["abc"]


def test_feedback_is_digested_to_short_unique_lines():
    raw = ["TEST FAIL: test_a — AssertionError:   expected 3,\n got None"] * 3 + [
        "LINT: F841 local variable 'x' is assigned but never used", "x" * 500]
    out = digest_feedback(raw, limit=5)
    assert out[0] == "TEST FAIL: test_a — AssertionError: expected 3, got None"
    assert len(out) == 3 and len(out[2]) <= 200 and out[2].endswith("…")
    pytest_output = "collected 2 items\n\ntest_a.py F.\nE       assert 3 == 4\nFAILED test_a.py::t\n"
    assert digest_tool_output(pytest_output) == ["E assert 3 == 4", "FAILED test_a.py::t"]


def test_session_summary_rolls_and_renders_structure():
    summary = SessionSummary(max_entries=2)
    assert summary.render() == ""
    summary.record("implement total_value", "total_value", "applied", ["inventory.py"])
    summary.record("explain load", "load", "explained")
    summary.record("fix parse", "parse", "no_candidate")
    text = summary.render()
    assert text.startswith("# Session so far:\n")
    assert "earlier tasks: 1" in text and "total_value" not in text
    assert "# - fix parse (parse): no_candidate" in text
