# Two commands: `make demo` (set up + implement a function of the bundled example) and
# `make test` (the whole suite, as CI runs it).
.PHONY: setup demo test lint bench stress

setup:
	bash scripts/bootstrap.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint: setup
	.venv/bin/ruff check localcode_lsp tests bench
	.venv/bin/python -m mypy

bench: setup
	.venv/bin/python -m bench

# The reliability suite with full counts (10,000 fuzz frames, 10x containment examples, the
# longer sync property), inside the same loopback-only namespace as `make test`.
stress: setup
	LOCALCODE_STRESS=1 bash scripts/test.sh tests/test_reliability_*.py
