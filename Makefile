# Every target sets itself up: a virtual environment in .venv with the pinned packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench loadtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf var/demo && mkdir -p var/demo
	cd var/demo && SETTLE_DATABASE_URL=sqlite:///demo.sqlite3 ../../$(BIN)/settle demo run --fixtures ../../fixtures

test: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

loadtest: $(STAMP)
	$(BIN)/python -m bench.ingest --lines 100000 --sizes 100000

clean:
	rm -rf $(VENV) var
