# The two commands of the README: `make demo` and `make test`. Both create the
# environment from uv.lock first (uv itself is installed from PyPI when missing).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export UV_LINK_MODE ?= copy

.PHONY: demo test dev mlflow lint bench env

env:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet

demo: env
	$(UV) run stock-assets demo

test: env
	$(UV) run pytest

dev: env
	$(UV) run stock-assets dev

mlflow: env
	$(UV) run stock-assets mlflow

lint: env
	$(UV) run ruff check . && $(UV) run ruff format --check .

bench: env
	$(UV) sync --frozen --quiet --group bench
	for script in benchmarks/bench_*.py; do $(UV) run python $$script || exit 1; done
