"""Suite-wide fixtures: a network guard (loopback only), the embedded model, fixture projects."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).parent.parent

# Fixture projects carry their own tests (some fail on purpose); they are data, not suite tests.
collect_ignore_glob = ["fixtures/*"]

# Nothing in the suite may reach past this machine; tests run offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


class NetworkBlocked(OSError):
    """Raised when a test tries to connect anywhere but loopback."""


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = address[0]
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: refuse


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlocked(f"network access blocked in tests: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkBlocked(f"network access blocked in tests: {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback((host,)):
        raise NetworkBlocked(f"DNS lookup blocked in tests: {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The embedded gemma-3-270m GGUF, assembled into the user cache once."""
    from localcode_lsp.inference.model_files import tiny_model_path

    return tiny_model_path()


@pytest.fixture
def copy_fixture(tmp_path: Path):
    """Copy `tests/fixtures/<name>` (or `examples/<name>` with examples=True) into tmp_path."""

    def copy(name: str, *, examples: bool = False) -> Path:
        source = (REPO_ROOT / "examples" / name) if examples else (FIXTURES / name)
        target = tmp_path / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".localcode", "__pycache__",
                                                                       ".pytest_cache"))
        return target

    return copy


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user config dir with no localcode.toml, so the developer's own file never leaks in."""
    home = tmp_path / "config-home"
    home.mkdir()
    monkeypatch.setenv("LOCALCODE_CONFIG_HOME", str(home))
    return home


# --- in CI a skip of a test the README says runs is a failure -----------------------------------

def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Tests marked `required_in_ci` (the editors end to end, the real model's FIM and chat, the
    loopback-only namespace) may skip on a developer's machine that lacks a tool, with the
    reason; in CI (CI=true) that skip fails the run, since CI must install what they need."""
    report = yield
    if report.skipped and _in_ci() and item.get_closest_marker("required_in_ci") is not None:
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where it must run: {reason}"
    return report
