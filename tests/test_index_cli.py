"""`localcode index` and `localcode search` through the real CLI entry point."""

from __future__ import annotations

import json

from localcode_lsp.cli.main import main


def test_index_json_and_restart(copy_fixture, isolated_home, capsys) -> None:
    root = copy_fixture("index_shop")
    assert main(["index", "--project", str(root), "--json", "--no-embeddings"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["files"] == 13 and stats["symbols"] > 40 and stats["skipped_binary"] == 1
    assert stats["parsed_now"] == 13
    assert main(["index", "--project", str(root), "--json", "--no-embeddings"]) == 0
    assert json.loads(capsys.readouterr().out)["parsed_cached"] == 13


def test_index_plain_output(copy_fixture, isolated_home, capsys) -> None:
    root = copy_fixture("index_shop")
    assert main(["index", "--project", str(root), "--no-embeddings"]) == 0
    out = capsys.readouterr().out
    assert "symbols" in out and "embedded now / reused" in out and "off" in out


def test_search_keyword_json(copy_fixture, isolated_home, capsys) -> None:
    root = copy_fixture("index_shop")
    code = main(["search", "--project", str(root), "--no-embeddings", "--json", "-k", "2",
                 "load inventory csv"])
    assert code == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and hits[0]["symbol"] == "load_inventory_csv"
    assert hits[0]["path"] == "shop/inventory.py" and hits[0]["keyword_score"] > 0


def test_usage_errors_exit_2(tmp_path, isolated_home, capsys) -> None:
    missing = str(tmp_path / "missing")
    assert main(["index", "--project", missing]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", "--project", missing, "x"]) == 2
    assert main(["search", "--project", str(tmp_path), "-k", "0", "x"]) == 2
    assert main(["search", "--project", str(tmp_path), "  "]) == 2


def test_embedding_threads_leave_the_cores_to_an_in_process_model(tmp_path, isolated_home) -> None:
    """torch and llama.cpp share one OpenMP runtime on two cores: while the model runs in this
    process the embedder gets one thread; index-only commands and remote models get them all."""
    from localcode_lsp.cli.index import open_engine
    from localcode_lsp.config import Config, ModelConfig
    from localcode_lsp.engine import Engine

    class RemoteModel:
        in_process = False

    (tmp_path / "m.py").write_text("x = 1\n")
    cases = [
        (Engine(tmp_path), 1),  # default config: llama.cpp in this process
        (Engine(tmp_path, backend=RemoteModel()), 0),
        (Engine(tmp_path, config=Config(model=ModelConfig(backend="openai",
                                                          url="http://127.0.0.1:9")),), 0),
        (open_engine(type("Args", (), {"project": str(tmp_path)})(), "index"), 0),
    ]
    for engine, threads in cases:
        assert engine.index._embed_threads() == threads
        engine.close()
