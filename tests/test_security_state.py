"""`.localcode/` shared by several processes, or planted by the repository: one writer at a time
(fcntl.flock), no delete of the shared table on a reader's error, never followed when it is a
link, and "no cache" (with a message) rather than a crash when it cannot be used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from localcode_lsp.index.chunks import Chunk
from localcode_lsp.index.store import VectorStore
from localcode_lsp.knowledge.storage import JsonCache
from localcode_lsp.workspace import UnsafeStateDir, Workspace, ensure_state_dir

REPO = Path(__file__).resolve().parents[1]


def _chunk(path: str, name: str) -> Chunk:
    import dataclasses

    fields = {f.name for f in dataclasses.fields(Chunk)}
    values = {"id": f"{path}::{name}", "path": path, "start_line": 1, "end_line": 2,
              "symbol": name, "kind": "function", "text": f"def {name}(): pass",
              "content_hash": f"hash-{path}-{name}"}
    return Chunk(**{k: v for k, v in values.items() if k in fields})


def _vectors(chunks: list[Chunk]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {c.content_hash: rng.random(8, dtype=np.float32) for c in chunks}


WRITER = """
import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_security_state import _chunk, _vectors
from localcode_lsp.index.store import VectorStore
store = VectorStore(Path(sys.argv[1]))
store.open()
chunks = [_chunk("b.py", "g%d" % i) for i in range(3)]
store.write({{"b.py": chunks}}, _vectors(chunks))
print(store.count_rows())
"""

HOLDER = """
import sys, time
from pathlib import Path
from localcode_lsp.workspace import state_lock
with state_lock(Path(sys.argv[1]), exclusive=True) as locked:
    print("held" if locked else "not held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess | subprocess.Popen:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, **kwargs)


def test_a_readers_error_never_deletes_what_another_process_wrote(tmp_path):
    directory = tmp_path / ".localcode" / "index" / "lancedb"
    reader = VectorStore(directory)
    reader.open()
    mine = [_chunk("a.py", "f")]
    reader.write({"a.py": mine}, _vectors(mine))
    # another process (a CLI run beside the server) adds its rows
    written = _python(WRITER.format(tests=str(REPO / "tests")), str(directory))
    assert written.returncode == 0, written.stderr
    # the reader's next search hits an error (an old version compacted away, say)

    class Failing:
        def search(self, *_args, **_kwargs):
            raise OSError("version 3 not found")

    reader._table = Failing()
    reader.search(np.zeros(8, dtype=np.float32), 5)
    fresh = VectorStore(directory)
    fresh.open()
    assert fresh.paths() == {"a.py", "b.py"}  # nothing was deleted
    assert not fresh.rebuilt


def test_one_writer_at_a_time_across_processes(tmp_path):
    directory = tmp_path / ".localcode" / "index" / "lancedb"
    store = VectorStore(directory)
    store.open()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory.parent), "2"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        chunks = [_chunk("a.py", "f")]
        store.write({"a.py": chunks}, _vectors(chunks))
        waited = time.monotonic() - started
    finally:
        holder.wait(30)
    assert waited >= 1.0, f"wrote after {waited:.2f}s while another process held the lock"
    assert store.paths() == {"a.py"}


def test_a_committed_localcode_link_is_never_followed(tmp_path):
    root = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine\n")
    os.symlink(elsewhere, root / ".localcode")
    workspace = Workspace(root)
    assert not str(workspace.state_dir).startswith(str(root))  # a private stand-in
    with pytest.raises(UnsafeStateDir, match="symbolic link"):
        ensure_state_dir(root)
    store = VectorStore(root / ".localcode" / "index" / "lancedb")
    store.open()
    chunks = [_chunk("a.py", "f")]
    store.write({"a.py": chunks}, _vectors(chunks))
    assert store.disabled and "symbolic link" in store.disabled
    cache = JsonCache(root / ".localcode" / "knowledge" / "errors.json", kind="errors",
                      max_bytes=4096)
    cache.set("k", "v", flush=True)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_a_broken_store_runs_without_cache_instead_of_crashing(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".localcode").write_text("not a directory\n")
    workspace = Workspace(root)
    assert workspace.state_dir != root / ".localcode"
    store = VectorStore(root / ".localcode" / "index" / "lancedb")
    store.open()  # must not raise
    chunks = [_chunk("a.py", "f")]
    store.write({"a.py": chunks}, _vectors(chunks))
    assert store.search(np.zeros(8, dtype=np.float32), 3) == []
    assert store.disabled
    assert (root / ".localcode").read_text() == "not a directory\n"


def test_the_terminal_session_never_writes_its_log_or_history_through_a_localcode_link(
        tmp_path, isolated_home):
    """A repository that commits `.localcode -> ~/somewhere`: the session (piped input, so it
    reads to the end and leaves) writes neither its log nor its history there."""
    import subprocess
    import sys

    root = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "m.py").write_text("def f():\n    return 1\n")
    os.symlink(elsewhere, root / ".localcode")
    proc = subprocess.run([sys.executable, "-m", "localcode_lsp", "--project", str(root)],
                          input="", capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, LOCALCODE_CONFIG_HOME=str(isolated_home)))
    assert proc.returncode == 0, proc.stderr
    assert list(elsewhere.iterdir()) == []
