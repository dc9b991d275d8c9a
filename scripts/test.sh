#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up (idempotent), lint, then every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k config).
#
# Offline proof: where the machine allows it, pytest runs inside a fresh network namespace whose
# only interface is loopback, so any code path that tries to download fails loudly. Elsewhere the
# suite's socket guard (tests/conftest.py) blocks non-loopback connections.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -f scripts/editors-setup.sh ]; then
  bash scripts/editors-setup.sh
fi
.venv/bin/ruff check localcode_lsp tests bench
.venv/bin/python -m mypy  # the package ships py.typed: its annotations must hold ([tool.mypy])

pytest_cmd=(.venv/bin/python -m pytest "$@")
if [ "${LOCALCODE_NETNS:-1}" = 1 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then flags=(-n); else flags=(-r -n); fi
  if unshare "${flags[@]}" true 2>/dev/null; then
    echo "test.sh: running pytest in a network namespace with loopback only"
    exec unshare "${flags[@]}" -- sh -c 'ip link set lo up && exec "$@"' sh "${pytest_cmd[@]}"
  fi
fi
echo "test.sh: no network namespace available; the socket guard blocks non-loopback traffic"
exec "${pytest_cmd[@]}"
