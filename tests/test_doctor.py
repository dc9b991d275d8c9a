"""`localcode doctor` on a real project with the real embedded model file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def doctor(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localcode_lsp", "doctor", "--project",
                           str(project), *extra], capture_output=True, text=True, timeout=180)


def example_project() -> Path:
    examples = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
    assert examples, "examples/ must hold the bundled example project"
    return examples[0]


def test_doctor_json_on_the_example(isolated_home, model_path):
    proc = doctor(example_project(), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    assert report["model"]["architecture"] == "gemma3"
    assert report["model"]["path"] == str(model_path)
    assert "prefix completion" in report["model"]["fim"]
    assert "portable" in checks["llama.cpp"]["detail"] or checks["llama.cpp"]["hint"]
    assert "python" in report["tree_sitter_languages"]
    assert checks["embeddings"]["ok"] and checks["ruff"]["ok"] and checks["pytest"]["ok"]
    assert report["config"]["generation"]["candidates"]["source"] in ("default",
                                                                       str(example_project() / "localcode.toml"))


def test_doctor_human_output(isolated_home, model_path):
    proc = doctor(example_project())
    assert proc.returncode == 0, proc.stderr
    assert "Gemma 3 270m" in proc.stdout and "tree-sitter" in proc.stdout


def test_doctor_names_a_missing_model_and_fails(isolated_home, tmp_path):
    (tmp_path / "localcode.toml").write_text('[model]\npath = "models/nope.gguf"\n')
    proc = doctor(tmp_path, "--json")
    assert proc.returncode == 1
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert not checks["model"]["ok"]
    assert str(tmp_path / "models" / "nope.gguf") in checks["model"]["detail"]


def test_doctor_rejects_a_file_that_is_not_gguf(isolated_home, tmp_path):
    (tmp_path / "fake.gguf").write_bytes(b"not a model at all")
    (tmp_path / "localcode.toml").write_text('[model]\npath = "fake.gguf"\n')
    proc = doctor(tmp_path, "--json")
    assert proc.returncode == 1
    detail = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["model"]["detail"]
    assert "not a GGUF" in detail and "fake.gguf" in detail


def test_doctor_reports_a_config_error(isolated_home, tmp_path):
    (tmp_path / "localcode.toml").write_text("[generation]\ncandidate = 2\n")
    proc = doctor(tmp_path, "--json")
    assert proc.returncode == 1
    detail = json.loads(proc.stdout)["checks"][0]["detail"]
    assert "did you mean candidates?" in detail and "localcode.toml:2" in detail


@pytest.mark.parametrize("tool_flag", ["type_check"])
def test_doctor_fails_when_the_config_asks_for_a_missing_tool(isolated_home, tmp_path,
                                                             monkeypatch, tool_flag):
    from localcode_lsp import doctor as doctor_module

    (tmp_path / "localcode.toml").write_text(f"[verification]\n{tool_flag} = true\n")
    monkeypatch.setattr(doctor_module, "_tool_path", lambda name: None)
    report = doctor_module.build_report(tmp_path)
    checks = {c.name: c for c in report.checks}
    assert not checks["type checker"].ok and checks["type checker"].required
    assert not report.ok


@pytest.mark.parametrize(("template", "ok", "detail"), [
    ("none", True, "FIM disabled by configuration"),
    # gemma-3-270m has no qwen FIM tokens: the backend would refuse to load with this setting
    ("qwen", False, "qwen"),
])
def test_doctor_reports_fim_as_the_config_sets_it(isolated_home, tmp_path, model_path,
                                                  template, ok, detail):
    (tmp_path / "localcode.toml").write_text(f'[model]\nfim_template = "{template}"\n')
    proc = doctor(tmp_path, "--json")
    check = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["fill-in-the-middle"]
    assert (check["ok"], proc.returncode) == (ok, 0 if ok else 1), proc.stdout
    assert detail in check["detail"]
    assert ok or "fim_template" in check["hint"]
