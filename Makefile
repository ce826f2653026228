# Every target sets itself up: a virtual environment in .venv with the pinned packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERF_STAMP := $(VENV)/.perf-installed

.PHONY: demo test faults bench loadtest clean console browsers screens

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[sandbox,test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf var/demo && mkdir -p var/demo
	cd var/demo && SETTLE_DATABASE_URL=sqlite:///demo.sqlite3 ../../$(BIN)/settle demo run --fixtures ../../fixtures

# The console on the demo's database (made first if missing), for a person: it prints its
# URL and keys to sign in with, and runs until Ctrl-C.
CONSOLE_PORT ?= 8000
console: $(STAMP)
	@test -f var/demo/demo.sqlite3 || $(MAKE) demo
	cd var/demo && SETTLE_DATABASE_URL=sqlite:///demo.sqlite3 ../../$(BIN)/settle demo console --port $(CONSOLE_PORT)

# Headless Chromium and its driver for the console's browser tests (Debian packages).
browsers:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	else apt-get update && apt-get install -y chromium chromium-driver; fi

# The README's screenshots of the console, taken by its browser test.
screens: $(STAMP) browsers
	CONSOLE_SCREENS_DIR=docs/screens $(BIN)/pytest -q tests/console/test_browser.py -k plan_refuse

test: $(STAMP)
	$(BIN)/pytest -q

# The payday fault cases at 20,000 PayPal members (two PayPal batches), nobody acting after
# approval; each case's time lands in var/faults/payday.jsonl (make test runs them at 40).
FAULTS_MEMBERS ?= 20000
faults: $(STAMP)
	rm -f var/faults/payday.jsonl
	FAULTS_MEMBERS=$(FAULTS_MEMBERS) $(BIN)/pytest -q tests/faults/test_payday_faults.py
	@cat var/faults/payday.jsonl

$(PERF_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[sandbox,test,perf]'
	touch $(PERF_STAMP)

# Ingestion and settlement at 10k and 100k (BENCH_ARGS="--full" adds 1M; --sizes, --profile,
# --out): bench/results/bench.json and PNGs. See docs/PERFORMANCE.md.
bench: $(PERF_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# gunicorn + rq workers + PayPal sandbox on PostgreSQL and Redis, locust for 60 s with
# 50,000 members (LOADTEST_ARGS="--members 1000000 --duration 300 --opening sql"):
# var/loadtest/. See docs/PERFORMANCE.md.
loadtest: $(PERF_STAMP)
	$(BIN)/python -m loadtests $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) var
