"""The shared pieces of the outcome benchmarks: the tune/report split, one chat turn, code
extraction, the totals, the table and plot, resumable runs with a time budget."""

from __future__ import annotations

import json

import pytest

outcome = pytest.importorskip("bench.outcome")
from support.scripted_backend import ScriptedBackend  # noqa: E402


def test_the_split_halves_are_fixed_disjoint_and_cover_every_problem():
    tune = [n for n in range(164) if outcome.in_half(n, "tune")]
    report = [n for n in range(164) if outcome.in_half(n, "report")]
    assert len(tune) == len(report) == 82
    assert not set(tune) & set(report)
    assert sorted(tune + report) == list(range(164))
    assert tune[:3] == [0, 2, 4] and report[:3] == [1, 3, 5]
    assert all(outcome.in_half(n, "all") for n in range(164))
    with pytest.raises(ValueError, match="half must be one of all, tune, report"):
        outcome.in_half(1, "train")


def test_chat_uses_the_backends_own_chat_turn_with_the_prefill():
    backend = ScriptedBackend(outputs=["def f():\n    return 1\n```\nmore"], kind="instruct")
    answer = outcome.chat(backend, [{"role": "user", "content": "write f"}], prefill="```python\n")
    [call] = backend.calls
    assert call.messages == ({"role": "user", "content": "write f"},)
    assert call.prompt.endswith("<|assistant|>\n```python\n")
    assert outcome.code_block(answer.text, prefilled=True) == "def f():\n    return 1\n"


class _CompletionOnly:
    """A backend from before `chat` existed: only `complete`."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.stops: list[tuple[str, ...]] = []

    def complete(self, prompt, *, max_tokens, temperature, seed, stop):
        from localcode_lsp.inference.backend import Completion

        self.prompts.append(prompt)
        self.stops.append(tuple(stop))
        return Completion("x = 1\n")


def test_chat_without_a_chat_call_renders_qwen_chatml_with_its_system_turn():
    backend = _CompletionOnly()
    outcome.chat(backend, [{"role": "user", "content": "hi"}], prefill="Sure:\n")
    assert backend.prompts == [
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nSure:\n"]
    assert "<|im_end|>" in backend.stops[0]
    # a system turn given by the caller replaces the default one
    assert outcome.render_chatml([{"role": "system", "content": "S"},
                                  {"role": "user", "content": "U"}]).startswith(
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU")


def test_code_block_takes_the_first_fenced_block_or_the_whole_answer():
    assert outcome.code_block("Here:\n```python\nx = 1\n```\nand\n```\ny\n```") == "x = 1\n"
    assert outcome.code_block("```\nx = 2\n") == "x = 2\n"  # unclosed: up to the end
    assert outcome.code_block("x = 3\n") == "x = 3\n"
    assert outcome.code_block("x = 4\n    ```\nprose", prefilled=True) == "x = 4\n"


def test_totals_count_solved_calls_median_seconds_and_wrong_edits():
    rows = [{"task_id": "a", "raw": outcome.outcome(True, 1, 2.0, returned=True),
             "lc": outcome.outcome(True, 4, 10.0, returned=True)},
            {"task_id": "b", "raw": outcome.outcome(False, 1, 4.0, returned=True),
             "lc": outcome.outcome(False, 6, 30.0, returned=False)},
            {"task_id": "c", "raw": outcome.outcome(False, 1, 3.0, returned=False)}]
    assert rows[1]["raw"]["edit_wrong"] and not rows[1]["lc"]["edit_wrong"]
    totals = outcome.totals(rows, ("raw", "lc"))
    assert totals["raw"] == {"problems": 3, "passed": 1, "model_calls": 3, "seconds": 9.0,
                             "median_seconds": 3.0, "calls_per_solved": 3.0, "edits": 2,
                             "wrong_edits": 1}
    assert totals["lc"]["problems"] == 2 and totals["lc"]["median_seconds"] == 20.0
    assert totals["lc"]["calls_per_solved"] == 10.0 and totals["lc"]["wrong_edits"] == 0
    lines = outcome.table("t", totals).splitlines()
    assert lines[2].split() == ["raw", "1/3", "33.3%", "3", "3.0", "3.0", "9", "2", "1"]
    assert lines[3].split()[:2] == ["lc", "1/2"]


def test_a_run_saves_each_problem_resumes_where_it_stopped_and_keeps_to_its_budget(tmp_path):
    problems = [{"task_id": f"p{i}"} for i in range(4)]
    ran: list[str] = []

    def run_arm(problem, arm):
        ran.append(problem["task_id"])
        return outcome.outcome(problem["task_id"] != "p1", 1, 0.5, returned=True)

    out = tmp_path / "r.json"
    # a budget already spent: the first problem runs, then the run stops between problems
    report = outcome.run_problems(problems[:2], ("a",), run_arm, out, {"model": "m"},
                                  minutes=1e-9)
    assert ran == ["p0"] and report["problems"] == 1
    report = outcome.run_problems(problems, ("a",), run_arm, out, {"model": "m"}, resume=True)
    assert ran == ["p0", "p1", "p2", "p3"]
    saved = json.loads(out.read_text())
    assert [row["task_id"] for row in saved["rows"]] == ["p0", "p1", "p2", "p3"]
    assert saved["totals"]["a"]["passed"] == 3 and saved["model"] == "m"
    outcome.plot("t", saved["totals"], tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_a_saved_report_is_shown_again_with_its_totals_recounted(tmp_path, capsys):
    rows = [{"task_id": "p0", "a": outcome.outcome(True, 2, 1.0, returned=True)},
            {"task_id": "p1", "a": outcome.outcome(False, 3, 2.0, returned=True)}]
    report = {"model": "m", "half": "report", "rows": rows, "totals": {"a": {"passed": 0}}}
    out = tmp_path / "r.json"
    out.write_text(json.dumps(report))  # written before a counting change: stale totals
    outcome.show_saved("bench", out)
    title, _header, row = capsys.readouterr().out.splitlines()
    assert title == "bench, m, half report"
    assert row.split() == ["a", "1/2", "50.0%", "5", "5.0", "1.5", "3", "2", "1"]
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert json.loads(out.read_text()) == report  # the file itself is left as it was


def test_a_model_path_must_exist(tmp_path):
    config = outcome.Config()
    with pytest.raises(SystemExit, match="--model: no such file"):
        outcome.with_model(config, str(tmp_path / "missing.gguf"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert outcome.with_model(config, str(model)).model.path == str(model)
    assert outcome.with_model(config, name="qwen2.5-coder-0.5b-instruct").model.name == \
        "qwen2.5-coder-0.5b-instruct"


def test_sanitize_keeps_definitions_and_drops_the_models_own_checks():
    code = ("import math\n\nLIMIT = 3\n\n@decorate\ndef f(x):\n    return math.floor(x)\n\n"
            "assert f(1.5) == 2  # the model's own wrong check\nprint(f(2))\n\n"
            "if __name__ == '__main__':\n    f(0)\n\nclass A:\n    pass\n")
    assert outcome.sanitize(code) == ("import math\n\nLIMIT = 3\n\n@decorate\ndef f(x):\n"
                                      "    return math.floor(x)\n\nclass A:\n    pass\n")
    assert outcome.sanitize("def f(:\n") == "def f(:\n"  # unparseable: left for the tests to fail
    assert outcome.sanitize("print(1)\n") == ""
