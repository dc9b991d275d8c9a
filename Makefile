# Two commands: `make demo` (set up + implement a function of the bundled example) and
# `make test` (the whole suite, as CI runs it).
.PHONY: setup demo test lint bench

setup:
	bash scripts/bootstrap.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint: setup
	.venv/bin/ruff check localcode_lsp tests bench

bench: setup
	.venv/bin/python -m bench
