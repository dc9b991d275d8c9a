"""Which sandbox modes a test needs, and failing loudly in CI when one is missing.

A sandbox test skipped because its mode is not available here proves nothing; on a developer
machine that is a skip with the reason, in CI (env CI=true) a failure: CI must install what the
tests need (scripts/bootstrap.sh installs bubblewrap where it can).
"""

from __future__ import annotations

import functools
import os

import pytest

from localcode_lsp.verify import Sandbox

ISOLATED_MODES = ("bubblewrap", "unshare")


@functools.cache
def mode_available(mode: str) -> bool:
    """Whether `mode` works on this machine (probed once per test session)."""
    return Sandbox().mode_available(mode)


def require_mode(mode: str) -> None:
    """Skip (fail in CI) unless the sandbox mode `mode` works here."""
    if mode_available(mode):
        return
    message = (f"sandbox mode {mode!r} is not available on this machine "
               f"({'install bubblewrap' if mode == 'bubblewrap' else 'util-linux unshare and setpriv with user namespaces'})")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}: CI must run every sandbox test")
    pytest.skip(message)
