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


def test_doctor_json_on_the_example(isolated_home):
    """With no [model] section the default is Qwen2.5-Coder-1.5B-Instruct: doctor names it, its
    kind, its FIM template and its chat template."""
    from localcode_lsp.inference.catalogue import find_model, model_cache_path

    proc = doctor(example_project(), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    model = report["model"]
    assert (model["catalogue_name"], model["architecture"], model["kind"]) == (
        "qwen2.5-coder-1.5b-instruct", "qwen2", "instruct")
    assert model["path"] == str(model_cache_path(find_model("qwen2.5-coder-1.5b-instruct")))
    assert (model["chat_template"], model["prompt_family"]) == ("ChatML", "instruct")
    assert "qwen" in model["fim"]
    assert "ChatML" in checks["chat template"]["detail"]
    assert "model size" not in checks
    assert "portable" in checks["llama.cpp"]["detail"] or checks["llama.cpp"]["hint"]
    assert "python" in report["tree_sitter_languages"]
    assert checks["embeddings"]["ok"] and checks["ruff"]["ok"] and checks["pytest"]["ok"]
    assert report["config"]["generation"]["candidates"]["source"] in ("default",
                                                                       str(example_project() / "localcode.toml"))


def test_doctor_human_output(isolated_home):
    proc = doctor(example_project())
    assert proc.returncode == 0, proc.stderr
    assert "Qwen2.5-Coder-1.5B-Instruct" in proc.stdout and "tree-sitter" in proc.stdout
    assert "instruct" in proc.stdout and "ChatML" in proc.stdout


def test_doctor_warns_when_the_tiny_base_model_is_in_use(isolated_home, tmp_path, model_path):
    (tmp_path / "localcode.toml").write_text('[model]\nname = "gemma-3-270m"\n')
    proc = doctor(tmp_path, "--json")
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["model"]["kind"] == "base" and report["model"]["path"] == str(model_path)
    assert "prefix completion" in report["model"]["fim"]
    assert not checks["model size"]["ok"] and "tiny base model" in checks["model size"]["detail"]
    assert "qwen2.5-coder-1.5b-instruct" in checks["model size"]["hint"]
    assert proc.returncode == 0  # a warning, not a failure


def test_doctor_names_an_unknown_model_name(isolated_home, tmp_path):
    (tmp_path / "localcode.toml").write_text('[model]\nname = "qwen2.5-coder-1.5b"\n')
    proc = doctor(tmp_path, "--json")
    assert proc.returncode == 1
    check = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["model"]
    assert "did you mean 'qwen2.5-coder-1.5b-instruct'" in check["detail"]


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
    (tmp_path / "localcode.toml").write_text(
        f'[model]\nname = "gemma-3-270m"\nfim_template = "{template}"\n')
    proc = doctor(tmp_path, "--json")
    check = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}["fill-in-the-middle"]
    assert (check["ok"], proc.returncode) == (ok, 0 if ok else 1), proc.stdout
    assert detail in check["detail"]
    assert ok or "fim_template" in check["hint"]
