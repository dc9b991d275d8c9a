#!/usr/bin/env bash
# Quickstart: set up, then let localcode implement the empty function of the bundled example
# with the embedded model. Shows the stage lines and the verified diff; writes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
example=examples/inventory
exec .venv/bin/localcode run --project "$example" --file inventory.py --symbol total_value --dry-run
