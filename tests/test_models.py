"""The model catalogue: pyproject's extras agree with it, assembly is sha-checked and atomic,
a missing part or a wrong release is a clear error, and `localcode models` / `doctor` report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

import pytest

from localcode_lsp.inference.backend import BackendError
from localcode_lsp.inference.catalogue import (
    CATALOGUE,
    DEFAULT_MODEL,
    CatalogueModel,
    ModelPart,
    find_model,
    model_cache_path,
    model_file,
    model_kind,
    model_status,
)

REPO = Path(__file__).parent.parent


def _normalise(extra: str) -> str:
    return extra.replace(".", "-").replace("_", "-").lower()


def test_pyproject_extras_carry_exactly_the_catalogue_packages():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for model in CATALOGUE:
        declared = extras[_normalise(model.extra)]
        if model.parts:
            assert declared == [part.requirement for part in model.parts], model.name
        else:
            assert declared[0].startswith(model.package_module.replace("_", "-")), model.name


def test_the_default_is_the_qwen_1_5b_instruct_model_and_names_are_checked():
    assert DEFAULT_MODEL == "qwen2.5-coder-1.5b-instruct"
    assert find_model(DEFAULT_MODEL).kind == "instruct"
    with pytest.raises(BackendError, match="did you mean 'qwen2.5-coder-1.5b-instruct'"):
        find_model("qwen2.5-coder-1.5b-instrct")


def test_kind_comes_from_the_catalogue_or_a_template_and_an_instruct_name():
    assert model_kind(find_model("gemma-3-270m"), "gemma", "{% chat %}") == "base"
    assert model_kind(None, "Some-Coder-7B-Instruct", "{{ messages }}") == "instruct"
    assert model_kind(None, "Some-Coder-7B-Instruct", "") == "base"
    assert model_kind(None, "starcoder2-3b", "{{ messages }}") == "base"


# --- assembly, on small fake part packages -----------------------------------------------------

def _fake_model(tmp_path: Path, monkeypatch, chunks: list[bytes], *, sha: str | None = None,
                name: str = "fake") -> CatalogueModel:
    site = tmp_path / "site"
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        module = f"fake_{name}_part{number}"
        (site / module / "data").mkdir(parents=True)
        (site / module / "__init__.py").write_text("")
        (site / module / "data" / f"part{number:02d}.bin").write_bytes(chunk)
        parts.append(ModelPart(f"fake-{name}-part{number}", "1.0", module,
                               f"data/part{number:02d}.bin"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LOCALCODE_CACHE_DIR", str(tmp_path / "cache"))
    whole = b"".join(chunks)
    return CatalogueModel(
        name=f"fake-{name}", title="Fake", family="qwen2", parameters="1B", quantisation="Q4",
        kind="instruct", file_name=f"fake-{name}.gguf", size_bytes=len(whole),
        sha256=sha if sha is not None else sha256(whole).hexdigest(), extra=f"fake-{name}",
        licence="MIT", fim_template="qwen", chat_template="chatml", parts=tuple(parts))


def test_assembly_concatenates_in_numeric_order_checks_sha_and_reports_progress(
        tmp_path, monkeypatch):
    chunks = [bytes([n]) * (1000 + n) for n in range(1, 12)]  # 11 parts: 1, 2, ..., 10, 11
    model = _fake_model(tmp_path, monkeypatch, chunks)
    seen: list[tuple[int, int]] = []
    path = model_file(model, lambda _m, done, total: seen.append((done, total)))
    assert path.read_bytes() == b"".join(chunks)
    assert seen[-1] == (model.size_bytes, model.size_bytes)
    assert model_status(model).assembled == path
    # the second call trusts the stamp and does not rewrite the file
    mtime = path.stat().st_mtime_ns
    assert model_file(model) == path and path.stat().st_mtime_ns == mtime


def test_a_wrong_sha_is_refused_and_leaves_no_file(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, monkeypatch, [b"a" * 100, b"b" * 50], sha="0" * 64)
    with pytest.raises(BackendError, match="sha256 is .* expected 0000.*not the pinned release"):
        model_file(model)
    target = model_cache_path(model)
    assert not target.exists()
    assert not list(target.parent.glob("*.partial"))
    good = replace(model, sha256=sha256(b"a" * 100 + b"b" * 50).hexdigest())
    assert model_file(good).read_bytes() == b"a" * 100 + b"b" * 50  # a clean retry


def test_a_missing_part_names_the_package_and_the_install_command(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, monkeypatch, [b"a" * 10, b"b" * 10, b"c" * 10])
    broken = replace(model, parts=model.parts[:1] + (
        ModelPart("fake-fake-part2-gone", "1.0", "fake_not_installed", "data/part02.bin"),)
        + model.parts[2:])
    with pytest.raises(BackendError) as caught:
        model_file(broken)
    message = str(caught.value)
    assert "fake-fake-part2-gone" in message
    assert "pip install 'localcode-lsp[fake-fake]'" in message
    assert not model_cache_path(model).exists()


def test_parts_of_another_release_are_refused_before_hashing(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, monkeypatch, [b"a" * 10, b"b" * 10])
    with pytest.raises(BackendError, match="hold 20 bytes, expected 21"):
        model_file(replace(model, size_bytes=21))


def test_a_killed_assembly_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    chunks = [os.urandom(1 << 20) for _ in range(6)]
    model = _fake_model(tmp_path, monkeypatch, chunks)
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(tmp_path / 'site')!r})
        from localcode_lsp.inference import catalogue
        from localcode_lsp.inference.catalogue import CatalogueModel, ModelPart
        catalogue.CHUNK = 1 << 18
        model = eval({repr(model)!r})
        def slow(message, done, total):
            if done:
                print("progress", done, flush=True)
                time.sleep(0.5)
        catalogue.model_file(model, slow)
    """)
    env = dict(os.environ, LOCALCODE_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("progress")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    target = model_cache_path(model)
    assert not target.exists()  # only a .partial was left, never the real name
    assert model_status(model).assembled is None
    assert model_file(model).read_bytes() == b"".join(chunks)  # the next try starts clean


# --- the CLI -----------------------------------------------------------------------------------

def test_localcode_models_lists_the_three_models_with_install_commands(tmp_path):
    result = subprocess.run([sys.executable, "-m", "localcode_lsp.cli.main", "models", "--json",
                             "--project", str(tmp_path)], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    assert set(rows) == {"qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct",
                         "gemma-3-270m"}
    assert rows["qwen2.5-coder-1.5b-instruct"]["in_use"] is True
    assert rows["qwen2.5-coder-0.5b-instruct"]["install"] == \
        "pip install 'localcode-lsp[qwen-0.5b]'"
    assert rows["qwen2.5-coder-1.5b-instruct"]["kind"] == "instruct"
    assert rows["gemma-3-270m"]["kind"] == "base"
