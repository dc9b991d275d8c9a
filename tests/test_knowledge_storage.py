"""Knowledge caches: restart, corruption, LRU cap, and the store's stats across restarts."""

from __future__ import annotations

import json
import logging

from localcode_lsp.knowledge import KnowledgeStore
from localcode_lsp.knowledge.storage import JsonCache
from localcode_lsp.workspace import Workspace


def test_entries_survive_a_restart(tmp_path):
    cache = JsonCache(tmp_path / "k" / "c.json", kind="errors", max_bytes=100_000)
    cache.set("a", {"x": 1})
    cache.set("b", [1, 2, 3], flush=True)
    reopened = JsonCache(tmp_path / "k" / "c.json", kind="errors", max_bytes=100_000)
    assert reopened.get("a") == {"x": 1}
    assert reopened.get("b") == [1, 2, 3]
    assert not reopened.rebuilt


def test_corrupt_file_is_rebuilt_with_one_log_line(tmp_path, caplog):
    path = tmp_path / "c.json"
    path.write_text('{"schema": 1, "kind": "errors", "entries": {"a": {"value": 1, "us')
    cache = JsonCache(path, kind="errors", max_bytes=100_000)
    with caplog.at_level(logging.WARNING, logger="localcode"):
        assert cache.get("a") is None
        assert len(cache) == 0
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    assert cache.rebuilt
    cache.set("fresh", 2, flush=True)
    assert json.loads(path.read_text())["entries"]["fresh"]["value"] == 2


def test_foreign_or_wrong_version_file_is_rebuilt(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"schema": 99, "kind": "errors", "entries": {}}))
    assert JsonCache(path, kind="errors", max_bytes=10_000).keys() == []
    path.write_text(json.dumps([1, 2]))
    cache = JsonCache(path, kind="errors", max_bytes=10_000)
    assert len(cache) == 0 and cache.rebuilt
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert len(JsonCache(path, kind="errors", max_bytes=10_000)) == 0


def test_lru_cap_evicts_least_recently_used_first(tmp_path):
    path = tmp_path / "c.json"
    cache = JsonCache(path, kind="docs", max_bytes=4096)
    payload = "x" * 500
    for i in range(5):
        cache.set(f"k{i}", payload)
    cache.flush()
    assert len(cache) == 5
    cache.get("k0")  # k0 becomes the most recently used
    for i in range(5, 9):
        cache.set(f"k{i}", payload)
    cache.flush()
    assert path.stat().st_size <= 4096
    keys = set(JsonCache(path, kind="docs", max_bytes=4096).keys())
    assert "k0" in keys and "k8" in keys
    assert "k1" not in keys and "k2" not in keys
    assert cache.evictions >= 2


def test_store_counters_persist_and_corrupt_pattern_file_rebuilds(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    assert store.few_shot_for({"name": "apply_shipping", "path": "shop/pricing.py"}, k=2)
    store.close()
    first = store.stats()["totals"]["few_shot_served"]
    assert first == 2
    patterns = root / ".localcode" / "knowledge" / "patterns.json"
    assert patterns.is_file()
    patterns.write_text("not json at all {")
    again = KnowledgeStore(Workspace(root))
    examples = again.few_shot_for({"name": "apply_shipping", "path": "shop/pricing.py"}, k=2)
    assert {e.qualified_name for e in examples} == {"apply_tax", "apply_discount"}
    stats = again.stats()
    assert "patterns" in stats["rebuilt"]
    assert stats["totals"]["few_shot_served"] == first + 2  # counters survived the restart
    again.close()
    assert json.loads(patterns.read_text())["kind"] == "patterns"


def test_deleting_the_directory_only_loses_speed(copy_fixture):
    import shutil

    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root))
    before = [e.qualified_name for e in store.few_shot_for("parse_customer", path="shop/parsing.py")]
    store.close()
    shutil.rmtree(root / ".localcode")
    after = KnowledgeStore(Workspace(root))
    assert [e.qualified_name for e in after.few_shot_for("parse_customer",
                                                         path="shop/parsing.py")] == before
    assert after.patterns.files_mined > 0


def test_disabled_store_serves_nothing(copy_fixture):
    root = copy_fixture("knowledge_shop")
    store = KnowledgeStore(Workspace(root), enabled=False)
    assert store.few_shot_for("apply_shipping", path="shop/pricing.py") == []
    assert store.try_repair("x = json.loads('1')\n", ["LINT: F821 undefined name 'json'"]) is None
    assert not (root / ".localcode" / "knowledge").exists()
