# The README's commands, plus the checks. Everything goes through scripts/dev.sh.
.PHONY: serve test bench check
serve:
	scripts/dev.sh serve
test:
	scripts/dev.sh test
bench:
	scripts/dev.sh bench
check:
	.venv/bin/ruff check wildduck tests bench examples
	.venv/bin/mypy --strict wildduck
	.venv/bin/python -m pytest -q tests/test_architecture.py
