# WMS Enterprise. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed
# Parallel test workers; each starts its own embedded PostgreSQL.
TEST_WORKERS ?= 2
# Each run gets its own temporary root, removed afterwards: pytest's shared
# /tmp/pytest-of-<user> keeps only the last three runs and would delete the data of a
# run still going (its embedded PostgreSQL) when several run on one machine at once.
PYTEST = d=$$(mktemp -d /tmp/wms-pytest-XXXXXX); $(BIN)/pytest --basetemp=$$d
PYTEST_END = ; rc=$$?; rm -rf $$d; exit $$rc

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-integration test-pg15 test-deploy drills fuzz scan scan-code scan-deps bench bench-cpu bench-ab lint format lock clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

install: $(STAMP) ## Create ./.venv with the locked runtime and test dependencies

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(UV) pip sync --python $(BIN)/python --quiet requirements.lock
	$(UV) pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

run: install ## Run the server on the embedded PostgreSQL (no other service needed)
	$(BIN)/wms-server serve

test: install ## Run the whole test suite
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile $(PYTEST_END)

test-unit: install ## Unit tests only (no database)
	$(BIN)/pytest tests/unit

test-pg15: install ## The database tests against the machine's PostgreSQL 15 (WMS_TEST_DATABASE_URL)
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile tests/integration tests/e2e/test_server_process.py $(PYTEST_END)

test-deploy: install ## Deployment checks: hadolint, helm, compose, terraform, workflow, scripts
	$(PYTEST) -q -s tests/deploy $(PYTEST_END)

drills: install ## Failover, PITR and rolling-restart drills at full length; print their figures
	$(BIN)/python -m drills.failover
	$(BIN)/python -m drills.pitr
	$(BIN)/python -m drills.rolling_restart

fuzz: install ## Contract fuzzing: schemathesis against a live server; prints the summary
	$(PYTEST) -s -p no:cacheprovider tests/fuzz $(PYTEST_END)

scan: scan-code scan-deps ## Security checks: bandit on src and pip-audit of requirements.lock

scan-code: install ## bandit on src (policy and exceptions in pyproject.toml [tool.bandit])
	$(BIN)/bandit -c pyproject.toml -r src -q

# --strict: a dependency pip-audit could not look up fails the scan instead of passing it
# silently (PyPI's per-version JSON, which carries the vulnerability data, must answer).
scan-deps: install ## pip-audit of requirements.lock (needs PyPI's vulnerability API)
	$(BIN)/pip-audit --strict --disable-pip --require-hashes -r requirements.lock \
		--progress-spinner off $$(awk '!/^#/ && NF {print "--ignore-vuln", $$1}' \
		security/pip-audit-exceptions.txt) \
	|| { echo "make scan-deps: FAILED: a vulnerability, or a dependency pip-audit could not" \
		"audit (is https://pypi.org/pypi/<name>/<version>/json reachable?)" >&2; exit 1; }

bench: install ## Benchmarks against same-run ceilings, growth with data (~25 min; BENCH_QUICK=1: shorter runs and scales; BENCH_GROWTH=0 skips growth); writes bench/RESULTS.md
	$(BIN)/python -m bench.run

bench-cpu: install ## CPU per request of the server and of PostgreSQL (BENCH_CPU_FLOWS=lookup,intake,allocation; ~2 min): for A/B of a change
	$(BIN)/python -m bench.cpu_per_request

bench-ab: install ## A/B of CPU per request in one run: BENCH_AB_BASE (default HEAD) against the working tree, alternated bursts (BENCH_AB_FLOWS, BENCH_AB_ROUNDS; ~10 min)
	$(BIN)/python -m bench.ab

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests bench drills
	$(BIN)/ruff format --check src tests bench drills
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench drills
	$(BIN)/ruff format src tests bench drills

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile --quiet --python-version 3.11 --extra test --generate-hashes \
		--output-file requirements.lock pyproject.toml

clean: ## Remove the venv and caches (not the embedded data in .wms)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
