"""`Engine.reconfigure`: a new configuration (and trust) reaches the gate, the index, the
knowledge store, the workspace and the model, also for parts built before the change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import localcode_lsp.inference as inference
from localcode_lsp.config import Config, load_config
from localcode_lsp.data import Candidate
from localcode_lsp.engine import Engine
from localcode_lsp.verify import VerifyRequest
from localcode_lsp.verify.gate import NOT_TRUSTED

ORIGINAL = "def add(a, b):\n    return a + b\n"
BROKEN = "def add(a, b):\n    return a +\n"  # does not parse


def _config(root: Path, **verification: Any) -> Config:
    quiet = {"lint": False, "test": False, "type_check": False, "diff_review": False}
    return load_config(root, user_file=False,
                       overrides={"verification": {**quiet, **verification}})


@pytest.fixture
def engine(tmp_path: Path):
    (tmp_path / "m.py").write_text(ORIGINAL)
    engine = Engine(tmp_path, config=_config(tmp_path))
    yield engine
    engine.close()


def _parse_gate(gate: Any, text: str = BROKEN):
    verdict = gate.verify(VerifyRequest("m.py", ORIGINAL), Candidate(1, text, text))
    return verdict, next(g for g in verdict.gates if g.gate == "parse")


def test_a_setting_change_reaches_the_gate_already_built(engine: Engine) -> None:
    gate = engine.gate  # built now, as a running pipeline would hold it
    verdict, parse = _parse_gate(gate)
    assert not verdict.passed and not parse.passed and parse.feedback

    engine.reconfigure(_config(engine.root, parse_check=False))

    verdict, parse = _parse_gate(gate)
    assert parse.passed and parse.skipped == "off in [verification]"
    assert engine.gate is gate  # the same gate, now reading the new settings


def test_assigning_engine_config_still_reaches_the_gate(engine: Engine) -> None:
    gate = engine.gate
    engine.config = _config(engine.root, parse_check=False)  # how front ends did it before
    assert _parse_gate(gate)[1].skipped == "off in [verification]"
    assert engine.config.verification.parse_check is False


def test_lowered_trust_reaches_the_workspace_the_gate_and_the_knowledge_store(
        engine: Engine) -> None:
    store = engine.knowledge
    assert store is not None and store.errors.ruff_fix is not None  # may run ruff --fix
    engine.reconfigure(_config(engine.root, lint=True), trusted=False)
    assert engine.workspace.trusted is False
    changed = "def add(a, b):\n    return b + a\n"
    verdict = engine.gate.verify(VerifyRequest("m.py", ORIGINAL), Candidate(1, changed, changed))
    lint = next(g for g in verdict.gates if g.gate == "lint")
    assert lint.skipped == NOT_TRUSTED  # no project tool runs any more
    # the store decided at start whether ruff may fix imports: rebuilt for the new trust
    rebuilt = engine.knowledge
    assert rebuilt is not None and rebuilt is not store and rebuilt.errors.ruff_fix is None


def test_knowledge_switched_off_and_on(engine: Engine) -> None:
    assert engine.knowledge is not None
    off = load_config(engine.root, user_file=False, overrides={"knowledge": {"enabled": False}})
    engine.reconfigure(off)
    assert engine.knowledge is None
    engine.reconfigure(_config(engine.root))
    assert engine.knowledge is not None


def test_index_keeps_its_work_unless_what_it_was_built_from_changed(engine: Engine) -> None:
    index = engine.index
    assert [s.name for s in index.symbols("m.py")] == ["add"]
    budget = load_config(engine.root, user_file=False, overrides={"context": {"code_budget": 999}})
    assert engine.reconfigure(budget) == []
    assert engine.index is index and index.config.context.code_budget == 999

    smaller = load_config(engine.root, user_file=False,
                          overrides={"index": {"max_file_bytes": 10}})
    assert "index" in engine.reconfigure(smaller)
    assert engine.index is not index
    assert engine.index.config.index.max_file_bytes == 10


class _FakeBackend:
    in_process = False

    def __init__(self, name: str) -> None:
        self.name = name


def test_a_model_change_loads_the_new_model_on_the_next_call(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def create_backend(config: Config, root: Path | None, progress: Any = None) -> Any:
        made.append(config.model.name)
        return _FakeBackend(config.model.name)

    monkeypatch.setattr(inference, "create_backend", create_backend)
    assert getattr(engine.backend, "name", None) == engine.config.model.name
    other = load_config(engine.root, user_file=False, overrides={"model": {"name": "other"}})
    assert "model" in engine.reconfigure(other)
    assert not engine.backend_loaded()  # nothing loads until a call needs the model
    assert getattr(engine.backend, "name", None) == "other"
    assert made == [made[0], "other"]
    # a setting outside [model] keeps the loaded model
    engine.reconfigure(load_config(engine.root, user_file=False, overrides={
        "model": {"name": "other"}, "generation": {"candidates": 2}}))
    assert engine.backend_loaded() and made[-1] == "other" and len(made) == 2


def test_a_backend_handed_in_survives_a_model_change(tmp_path: Path) -> None:
    given = _FakeBackend("given")
    engine = Engine(tmp_path, config=Config(), backend=given)  # type: ignore[arg-type]
    try:
        engine.reconfigure(load_config(tmp_path, user_file=False,
                                       overrides={"model": {"name": "other"}}))
        assert engine.backend is given
    finally:
        engine.close()
