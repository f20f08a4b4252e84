# Thin wrappers around uv; `make help` lists them. Works on a fresh machine with python3 and pip.
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo serve test lint format typecheck check bench bench-quick screenshots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install uv if missing, then the workspace from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

demo: install ## create the demo database, print credentials and curl lines, serve on :8000
	$(UV) run phonewagon-server demo

serve: install ## serve the API (configure with PHONEWAGON_* variables)
	$(UV) run phonewagon-server serve

test: install ## run every test, on SQLite and on the local PostgreSQL
	$(UV) run pytest -n 2 $(PYTEST_ARGS)

lint: install ## formatting and lint checks
	$(UV) run ruff format --check .
	$(UV) run ruff check .

format: install ## format the code and apply safe lint fixes
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck: install ## mypy strict on both packages
	$(UV) run mypy

check: lint typecheck test ## ready to push? format, lint, types and tests

bench: install ## run every benchmark (about 30 min) and write docs/benchmarks.md
	$(UV) run python bench/pages.py --write
	$(UV) run python bench/import_calls.py --write
	$(UV) run python bench/feed_pages.py --write
	$(UV) run python bench/webhooks.py --write
	$(UV) run python bench/dni_visits.py --write
	$(UV) run python bench/request_path.py --write
	$(UV) run python bench/app_pages.py --write
	$(UV) run python bench/load_test.py --write
	$(UV) run python bench/rate_limit_soak.py --write

bench-quick: install ## every figure of the pages benchmark on smaller data, in under 2 min
	$(UV) run python bench/pages.py --quick

screenshots: install ## the web app's pages at desktop and phone widths, in docs/screenshots/ (needs /usr/bin/chromium)
	$(UV) run python docs/screenshots.py

clean: ## remove local databases and caches
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis phonewagon.db* phonewagon-demo.db* phonewagon*.queue.db* phonewagon-demo-recordings
