"""Embedding index with the real all-MiniLM-L6-v2 and a real lancedb table."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from localcode_lsp.config import Config, IndexConfig
from localcode_lsp.index import CodeIndex, EmbeddingModelError, resolve_embedding_model
from localcode_lsp.index.store import Embedder
from localcode_lsp.workspace import Workspace

pytestmark = pytest.mark.embeddings


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """One loaded model for the module (loading takes seconds)."""
    model = Embedder(resolve_embedding_model("all-MiniLM-L6-v2", Path(".")))
    model.encode(["warm up"])
    return model


@pytest.fixture
def shop(copy_fixture) -> Path:
    return copy_fixture("index_shop")


def _index(root: Path, embedder: Embedder, **kwargs) -> CodeIndex:
    index = CodeIndex(Workspace(root), Config(), **kwargs)
    index._embedder = embedder  # share the loaded model between indexes
    return index


@pytest.mark.parametrize("query,expected", [
    ("send the receipt to the customer by email", "send_receipt_email"),
    ("convert a price string like $3.50 into cents", "parse_price"),
    ("read stock quantities from a csv file", "load_inventory_csv"),
    ("combine two shopping carts into one", "merge_carts"),
    ("call a function again when it raises an exception", "retry"),
])
def test_search_finds_the_obvious_function(shop: Path, embedder: Embedder, query: str,
                                           expected: str) -> None:
    index = _index(shop, embedder, background_embeddings=False)
    index.build()
    hits = index.search(query, 5)
    top = [h.symbol.split(".")[-1] for h in hits[:2]]
    assert expected in top, [(h.symbol, h.score) for h in hits]
    best = next(h for h in hits if h.symbol.split(".")[-1] == expected)
    assert best.vector_score is not None and best.vector_score > 0.3
    assert best.path.startswith("shop/")
    source = (shop / best.path).read_text().splitlines()
    assert f"def {expected}" in source[best.start_line] or "@" in source[best.start_line]
    index.close()


def test_restart_embeds_nothing_and_deleted_files_leave_no_rows(shop: Path,
                                                                embedder: Embedder) -> None:
    first = _index(shop, embedder, background_embeddings=False)
    stats = first.build()
    assert stats.embedded_now == stats.chunks > 40 and stats.table_rows == stats.chunks
    first.close()
    second = _index(shop, embedder, background_embeddings=False)
    again = second.build()
    assert again.embedded_now == 0 and again.embedded_reused == again.chunks
    # editing one function re-embeds only that chunk
    cart = shop / "shop" / "cart.py"
    cart.write_text(cart.read_text().replace("A new cart holding", "A fresh cart holding"))
    edited = second.build()
    assert edited.embedded_now == 1
    (shop / "shop" / "emails.py").unlink()
    after = second.build()
    assert after.deleted_files == 1 and after.embedded_now == 0
    assert "shop/emails.py" not in second._vector_store().paths()
    assert after.table_rows == after.chunks
    assert all(h.path != "shop/emails.py" for h in second.search("send receipt email", 8))
    assert second._vector_store().fragments() <= 8  # writes are batched and compacted
    second.close()


def test_corrupt_table_is_rebuilt(shop: Path, embedder: Embedder, caplog) -> None:
    index = _index(shop, embedder, background_embeddings=False)
    index.build()
    index.close()
    table_dir = shop / ".localcode" / "index" / "lancedb" / "chunks.lance"
    for path in table_dir.rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    fresh = _index(shop, embedder, background_embeddings=False)
    with caplog.at_level("WARNING", logger="localcode.index"):
        stats = fresh.build()
    assert stats.rebuilt
    assert stats.embedded_now == stats.chunks and stats.table_rows == stats.chunks
    assert any("rebuilding" in r.message for r in caplog.records)
    assert fresh.search("parse a price", 3)


def test_background_worker_embeds_edits_without_blocking(shop: Path, embedder: Embedder,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index(shop, embedder, debounce_seconds=0.2)
    index.build()
    text = (shop / "shop" / "util.py").read_text()
    text += ('\n\ndef celsius_to_fahrenheit(degrees):\n'
             '    """Convert a temperature from Celsius to Fahrenheit."""\n'
             '    return degrees * 9 / 5 + 32\n')
    encoding_threads: list[threading.Thread] = []
    encode = embedder.encode

    def recording_encode(*args, **kwargs):
        encoding_threads.append(threading.current_thread())
        return encode(*args, **kwargs)

    monkeypatch.setattr(embedder, "encode", recording_encode)
    index.update_document("shop/util.py", text)
    assert index.wait_idle(60)
    # the edit itself embedded nothing: the worker did, on its own thread
    assert encoding_threads and threading.main_thread() not in encoding_threads
    hits = index.search("convert temperature units", 3)
    assert hits[0].symbol == "celsius_to_fahrenheit"
    assert hits[0].vector_score is not None
    index.close()


def test_idle_worker_ends_and_embeds_on_the_threads_it_is_given(shop: Path,
                                                                embedder: Embedder) -> None:
    """An idle worker thread must not outlive its work (its OpenMP pool slows llama.cpp), and
    while a model shares the process the engine asks for one torch thread."""
    import threading

    import torch

    asked: list[int] = []

    def one_thread() -> int:
        asked.append(1)
        return 1

    index = _index(shop, embedder, debounce_seconds=0.1, embed_threads=one_thread)
    index.build(embeddings=False)
    for round_number in range(2):  # a second edit after the worker ended starts a new one
        text = (shop / "shop" / "util.py").read_text() + f"\n\ndef added_{round_number}():\n" \
            f"    return {round_number}\n"
        (shop / "shop" / "util.py").write_text(text)
        index.update_document("shop/util.py", text)
        assert index.wait_idle(60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                t.name == "localcode-index-embed" for t in threading.enumerate()):
            time.sleep(0.05)
        assert not any(t.name == "localcode-index-embed" for t in threading.enumerate())
        assert any(h.symbol == f"added_{round_number}" for h in index.search(
            f"added_{round_number}", 5))
    assert asked and torch.get_num_threads() == 1
    index.close()
    embedder.encode(["back to the default"])
    assert torch.get_num_threads() == embedder._default_threads


def test_unknown_embedding_model_is_a_clear_error(shop: Path) -> None:
    config = Config(index=IndexConfig(embedding_model="nomic-embed-text"))
    index = CodeIndex(Workspace(shop), config, background_embeddings=False)
    with pytest.raises(EmbeddingModelError, match="nomic-embed-text.*never downloaded"):
        index.build()
    assert index.build(embeddings=False).files == 13  # the AST index still works
