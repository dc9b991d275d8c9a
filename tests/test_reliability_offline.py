"""Offline proof: no code path downloads anything.

- a static scan of localcode_lsp/ for network clients and hub downloads (only the OpenAI-
  compatible backend talks HTTP, to a server the user configured);
- a pipeline run in a subprocess with HF_HUB_OFFLINE and friends unset and the socket layer
  recording every non-loopback connect or DNS lookup: zero;
- `localcode run` on the bundled example inside a network namespace with only loopback (the
  real model and embeddings: marked model/embeddings).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).parent.parent
PACKAGE = REPO_ROOT / "localcode_lsp"
HTTP_ALLOWED = {"inference/openai_backend.py"}
NETWORK_CALLS = re.compile(
    r"\burlopen\s*\(|\bimport requests\b|\brequests\.(get|post|put|request|Session)\b|"
    r"\bimport httpx\b|\bhttpx\.|\bhf_hub_download\b|\bsnapshot_download\b|"
    r"\bimport huggingface_hub\b|\bfrom huggingface_hub\b|\burllib\.request\b|"
    r"\bhttp\.client\b|\bsocket\.create_connection\b|\baiohttp\b|\bwget\b|\bcurl\b|"
    r"\bpip\.main\b|\"pip\",\s*\"install\"|\bdownload=True\b")


def test_no_code_path_downloads_statically():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in HTTP_ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if NETWORK_CALLS.search(code) and "pip install" not in code:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


RECORDER = r'''
import ipaddress, json, socket, sys
attempts = []

def loopback(address):
    if not isinstance(address, tuple) or not address:
        return True
    host = str(address[0]).split("%")[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

real_connect, real_connect_ex, real_getaddrinfo = (
    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address):
        attempts.append(repr(address))
        raise OSError(101, "recorded and refused")
    return real_connect(self, address)

def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(address):
        attempts.append(repr(address))
        return 101
    return real_connect_ex(self, address)

def getaddrinfo(host, *args, **kwargs):
    if host is not None and not loopback((host,)):
        attempts.append(f"dns {host!r}")
        raise socket.gaierror(-2, "recorded and refused")
    return real_getaddrinfo(host, *args, **kwargs)

socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
    connect, connect_ex, getaddrinfo)

import dataclasses
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from support.scripted_backend import ScriptedBackend
from localcode_lsp.config import Config, GenerationConfig, VerificationConfig
from localcode_lsp.data import Task
from localcode_lsp.engine import Engine

root = Path(sys.argv[1])
config = dataclasses.replace(Config(), generation=GenerationConfig(candidates=1, max_retries=0),
                             verification=VerificationConfig(diff_review=False))
engine = Engine(root, config=config, backend=ScriptedBackend(default="    return x * 2\n"))
stats = engine.index.build()  # AST, graph and real embeddings (MiniLM) into lancedb
hits = engine.index.search("twice a number", 3)
result = engine.implement(Task(path="calc.py", symbol="double", intent="generate"))
engine.close()
print(json.dumps({"attempts": attempts, "status": result.status,
                  "embedded": stats.embedded_now, "hits": len(hits)}))
'''


@pytest.mark.embeddings
def test_pipeline_run_never_tries_the_network(tmp_path):
    """HF_HUB_OFFLINE and friends unset, so a library that would download tries: recorded."""
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text('def double(x):\n    """Twice x."""\n    return None\n')
    (root / "tests" / "test_calc.py").write_text(
        "from calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n")
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_OFFLINE") and k not in ("HF_HUB_DISABLE_TELEMETRY",)}
    env["LOCALCODE_CONFIG_HOME"] = str(tmp_path / "config-home")
    completed = subprocess.run([sys.executable, "-c", RECORDER, str(root),
                                str(REPO_ROOT / "tests")], capture_output=True, text=True,
                               env=env, timeout=240, cwd=str(REPO_ROOT))
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], report["attempts"]
    assert report["status"] == "verified"
    assert report["embedded"] > 0 and report["hits"] > 0  # the embedder really ran


def _netns_prefix() -> list[str] | None:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return None
    flags = ["-n"] if os.geteuid() == 0 else ["-r", "-n"]
    try:
        probe = subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return ["unshare", *flags, "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] \
        if probe.returncode == 0 else None


@pytest.mark.model
@pytest.mark.embeddings
def test_localcode_run_on_the_example_in_a_loopback_only_namespace(copy_fixture, tmp_path):
    prefix = _netns_prefix()
    if prefix is None:
        pytest.skip("unshare -n is not available here (the suite's socket guard covers it)")
    project = copy_fixture("inventory", examples=True)
    env = dict(os.environ, LOCALCODE_CONFIG_HOME=str(tmp_path / "config-home"))
    for name in [k for k in env if k.endswith("_OFFLINE")]:
        del env[name]  # no crutch: nothing may try to reach the hub
    command = [*prefix, sys.executable, "-m", "localcode_lsp", "run", "--project", str(project),
               "--file", "inventory.py", "--symbol", "total_value", "--dry-run", "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280)
    assert completed.returncode in (0, 1), completed.stderr[-3000:]  # 1 = no verified candidate
    report = json.loads(completed.stdout)
    assert report["status"] in ("verified", "no_candidate"), report
    for word in ("Network is unreachable", "DownloadError", "ConnectionError",
                 "Temporary failure in name resolution", "MaxRetryError"):
        assert word not in completed.stderr, completed.stderr[-3000:]
