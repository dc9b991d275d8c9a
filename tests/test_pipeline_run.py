"""`localcode run` end to end: usage errors (no model), and with the REAL default model
(Qwen2.5-Coder-1.5B-Instruct), the real index and the real gate (ruff + pytest in the sandbox) on
a copy of examples/inventory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from localcode_lsp.cli.main import main


def run_cli(args: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "localcode_lsp", *args], capture_output=True,
                          text=True, timeout=280, stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout, proc.stderr


def test_usage_errors_exit_2(tmp_path, capsys, isolated_home):
    (tmp_path / "m.py").write_text("def f():\n    pass\n")
    assert main(["run", "--project", str(tmp_path), "--file", "m.py", "--symbol", "f"]) == 2
    assert "--yes" in capsys.readouterr().err  # no terminal: never blocks on a question
    assert main(["run", "--project", str(tmp_path), "--dry-run"]) == 2
    assert main(["run", "--project", str(tmp_path), "--line", "3", "--dry-run", "x"]) == 2
    assert main(["run", "--project", str(tmp_path), "--file", "../x.py", "--symbol", "f",
                 "--dry-run"]) == 2
    assert main(["run", "--project", str(tmp_path), "--file", "nope.py", "--symbol", "f",
                 "--dry-run"]) == 2
    (tmp_path / "localcode.toml").write_text("[generation]\ncandidatez = 3\n")
    assert main(["run", "--project", str(tmp_path), "--file", "m.py", "--symbol", "f",
                 "--dry-run"]) == 2
    assert "candidates" in capsys.readouterr().err


@pytest.mark.model
def test_real_model_implements_the_example_stub(copy_fixture, isolated_home):
    project = copy_fixture("inventory", examples=True)
    before = (project / "inventory.py").read_text()
    code, out, err = run_cli(["run", "--project", str(project), "--file", "inventory.py",
                              "--symbol", "total_value", "--json"])
    report = json.loads(out)
    assert code == 0, report["message"]
    assert report["status"] == "verified"
    [patch] = report["patches"]
    assert patch["path"] == "inventory.py" and "+    return" in patch["diff"]
    winners = [c for c in report["candidates"] if c["verdict"] and c["verdict"]["passed"]]
    assert len(winners) == 1
    gates = {g["gate"]: g for g in winners[0]["verdict"]["gates"]}
    assert gates["test"]["passed"] and not gates["test"]["skipped"]  # the tests really ran
    states = [e["state"] for e in report["trace"]]
    transitions = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    assert transitions[:5] == ["UNDERSTAND", "LOCATE", "PLAN", "GENERATE", "VERIFY"]
    assert any(e["message"].startswith("Producing 1 candidate for") for e in report["trace"])
    assert any("Found total_value at inventory.py:23-28" in e["message"] for e in report["trace"])
    call = next(c for c in report["model_calls"] if c["state"] == "GENERATE")
    assert call["prompt_tokens"] > 0 and any(s["name"] == "target" for s in call["sections"])
    assert (project / "inventory.py").read_text() == before  # --json without --yes: dry run

    # the verified body really passes the project's tests once applied
    code, out, err = run_cli(["run", "--project", str(project), "--file", "inventory.py",
                              "--symbol", "total_value", "--yes"])
    assert code == 0, out + err
    ns: dict = {}
    exec((project / "inventory.py").read_text(), ns)
    assert ns["total_value"]([ns["make_item"]("a", 2.0, 3)]) == 6.0
    # and the project's own tests pass on the applied file
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=project, capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr


@pytest.mark.model
def test_real_model_reports_no_candidate_and_no_edit(copy_fixture, isolated_home):
    project = copy_fixture("inventory", examples=True)
    (project / "localcode.toml").write_text(  # the tiny model: what is tested is the refusal
        '[model]\nname = "gemma-3-270m"\n'
        "[generation]\ncandidates = 2\nmax_retries = 1\nmax_tokens = 64\n")
    # a test no body can pass: the function must return a value it can never know
    (project / "tests" / "test_impossible.py").write_text(
        "from inventory import total_value\n\n\n"
        "def test_total_value_knows_a_secret():\n"
        "    assert total_value([]) == 'the sha256 of a random file'\n")
    before = (project / "inventory.py").read_text()
    code, out, err = run_cli(["run", "--project", str(project), "--file", "inventory.py",
                              "--symbol", "total_value", "--json"])
    report = json.loads(out)
    assert code == 1
    assert report["status"] == "no_candidate" and report["patches"] == []
    assert report["message"].startswith("No verified candidate")
    assert report["trace"][-1]["state"] == "FAILED"
    assert (project / "inventory.py").read_text() == before
