"""localcode.toml: defaults, layers, provenance and every class of error."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from localcode_lsp.config import DEFAULT_TOML, ConfigError, load_config


def write(root: Path, text: str) -> Path:
    path = root / "localcode.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_original_design(isolated_home, tmp_path):
    config = load_config(tmp_path)
    assert (config.model.path, config.model.context_length, config.model.n_gpu_layers) == ("", 8192, -1)
    g = config.generation
    assert (g.candidates, g.max_retries, g.temperature, g.temperature_classify) == (5, 3, 0.6, 0.1)
    c = config.context
    assert (c.system_budget, c.code_budget, c.task_budget, c.few_shot_examples) == (256, 1536, 512, 3)
    v = config.verification
    assert (v.parse_check, v.lint, v.type_check, v.test, v.diff_review) == (True, True, False, True, False)
    assert config.index.update_on_save is True
    assert config.generation_budget == 8192 - 256 - 1536 - 512


def test_documented_default_file_is_valid_and_equal_to_defaults(isolated_home, tmp_path):
    write(tmp_path, DEFAULT_TOML)
    assert load_config(tmp_path).as_dict() == load_config(None, user_file=None).as_dict()


def test_layers_and_sources(isolated_home, tmp_path):
    (isolated_home / "localcode.toml").write_text("[generation]\ncandidates = 2\nmax_retries = 1\n")
    write(tmp_path, "[generation]\ncandidates = 4\n")
    config = load_config(tmp_path, overrides={"generation": {"temperature": 0.2}})
    assert config.generation.candidates == 4
    assert config.generation.max_retries == 1
    assert config.generation.temperature == 0.2
    assert config.source_of("generation.candidates") == str(tmp_path / "localcode.toml")
    assert config.source_of("generation.max_retries") == str(isolated_home / "localcode.toml")
    assert config.source_of("generation.temperature") == "initializationOptions"
    assert config.source_of("context.code_budget") == "default"


def test_config_is_frozen(isolated_home, tmp_path):
    config = load_config(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.generation.candidates = 9  # type: ignore[misc]


def test_unknown_key_names_file_line_and_nearest_key(isolated_home, tmp_path):
    path = write(tmp_path, "[model]\ncontext_length = 4096\n\n[generation]\ncandidate = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    error = info.value
    assert error.source == str(path) and error.line == 5
    assert error.key == "generation.candidate"
    assert error.suggestion == "candidates"
    assert "did you mean candidates?" in str(error)
    assert f"{path}:5" in str(error)


def test_unknown_section_suggests(isolated_home, tmp_path):
    write(tmp_path, "[generaton]\ncandidates = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.line == 1 and "did you mean [generation]?" in str(info.value)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[generation]\ncandidates = 0\n", "generation.candidates", "between 1 and 64"),
        ("[generation]\ncandidates = \"five\"\n", "generation.candidates", "an integer"),
        ("[generation]\ntemperature = true\n", "generation.temperature", "a number"),
        ("[verification]\nlint = 1\n", "verification.lint", "a boolean"),
        ("[context]\ncode_budget = -5\n", "context.code_budget", ">= 0"),
        ("[model]\nbackend = \"vllm\"\n", "model.backend", "one of"),
    ],
)
def test_wrong_types_and_ranges(isolated_home, tmp_path, text, key, expected):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.key == key
    assert info.value.line == 2
    assert expected in str(info.value)


def test_budgets_larger_than_context_are_an_error(isolated_home, tmp_path):
    write(tmp_path, "[model]\ncontext_length = 2048\n[context]\ncode_budget = 4000\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.key == "context.code_budget"
    assert info.value.line == 4
    assert "leaves nothing for generation" in str(info.value)


def test_invalid_toml_reports_the_line(isolated_home, tmp_path):
    write(tmp_path, "[generation]\ncandidates = 3\ntemperature = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.line == 3 and "invalid TOML" in str(info.value)


def test_initialization_options_are_validated(isolated_home, tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, overrides={"generation": {"candidatez": 2}})
    assert info.value.source == "initializationOptions"
    assert info.value.suggestion == "candidates"


def test_openai_backend_needs_url(isolated_home, tmp_path):
    write(tmp_path, "[model]\nbackend = \"openai\"\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.key == "model.url"


def test_cli_reports_config_error_with_exit_2(isolated_home, tmp_path):
    write(tmp_path, "[generation]\ncandidate = 3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "localcode_lsp", "run", "--project", str(tmp_path), "--dry-run",
         "--file", "x.py", "--line", "1", "do it"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "did you mean candidates?" in proc.stderr
    assert "localcode.toml:2" in proc.stderr


def test_help_describes_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "localcode_lsp", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for name in ("serve", "run", "index", "search", "complete", "doctor"):
        assert name in proc.stdout
    for name in ("serve", "run", "index", "search", "complete", "doctor"):
        sub = subprocess.run([sys.executable, "-m", "localcode_lsp", name, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0 and "--project" in sub.stdout, name
