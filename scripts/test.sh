#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up (idempotent), lint, then every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -f scripts/editors-setup.sh ]; then
  bash scripts/editors-setup.sh
fi
.venv/bin/ruff check localcode_lsp tests bench
exec .venv/bin/python -m pytest "$@"
