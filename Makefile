# trends-gql: `make run` serves, `make test` tests. `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Python keeps its bytecode caches (and pytest its rewritten test modules) even where the
# environment turns them off: the tests start dozens of processes that import the package.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help install run migrate serve test test-lowest lint format schema vendor bench bench-instructions bench-attacks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' -v host='$(HOST)' -v port='$(PORT)' \
		'{gsub(/\$$\(HOST\)/, host, $$2); gsub(/\$$\(PORT\)/, port, $$2); printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt tests/http_audit/package-lock.json
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,run]'
	command -v npm >/dev/null || (echo "Node.js 18+ (npm) is needed for the GraphQL-over-HTTP audit test" >&2; exit 1)
	npm ci --prefix tests/http_audit --silent --no-audit --no-fund
	touch $@

install: $(BIN)/.installed ## create .venv and install the project with its dev tools

migrate: install ## apply database migrations (DATABASE_URL, default SQLite under var/)
	$(BIN)/trends migrate

run: migrate ## install, migrate, run web (http://$(HOST):$(PORT)/graphql), worker and scheduler
	$(BIN)/trends up --host $(HOST) --port $(PORT)

serve: migrate ## the web process alone
	$(BIN)/trends serve --host $(HOST) --port $(PORT)

test: install ## run the tests on SQLite and PostgreSQL (TEST_DATABASE_URL), three at a time
	$(BIN)/pytest -n 3 --dist loadgroup

LOWEST := .venv-lowest
test-lowest: install ## the tests again, in .venv-lowest, on the lowest versions pyproject.toml allows
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python .ci/lowest.py pyproject.toml > $(LOWEST)/lowest.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/lowest.txt -e '.[dev,run]'
	$(LOWEST)/bin/python -m pip check
	$(LOWEST)/bin/pytest -n 3 --dist loadgroup

lint: install ## ruff check and format check, mypy (strict) on trends_gql and jobs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy trends_gql jobs

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: install ## regenerate schema.graphql from the code
	$(BIN)/strawberry export-schema trends_gql.schema:schema --output schema.graphql

vendor: install ## fetch the pages' pinned third-party code from npm into trends_gql/web/static/vendor/
	$(BIN)/python -m trends_gql.web.vendoring

bench: install ## benchmark HTTP (wrk) and imports on PostgreSQL; writes bench/results.json (PEERS=1: with the GraphQL peers; SCALE=1: and every query on 1,000,000 rows)
	command -v wrk >/dev/null && test -x /usr/bin/time || (apt-get update && apt-get install -y wrk time)
	PEERS=$(PEERS) SCALE=$(SCALE) $(BIN)/python bench/run.py

bench-instructions: install ## count an uncached request's instructions (callgrind), BENCH_BASE (default HEAD) next to this tree
	test -x /usr/bin/valgrind || (apt-get update && apt-get install -y valgrind)
	$(BIN)/python bench/instructions.py

bench-attacks: install ## time the refusal of each known attack next to a normal query (PostgreSQL)
	$(BIN)/python bench/attacks.py

clean: ## remove .venv and caches (keeps var/ and media/)
	rm -rf $(VENV) $(LOWEST) .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find trends_gql jobs migrations tests bench -name __pycache__ -prune -exec rm -rf {} +
