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
	@echo "make loadtest (locust against gunicorn + rq workers) is not built yet: see issue 5." >&2
	@echo "make bench measures ingestion through HTTP today." >&2
	@exit 1

clean:
	rm -rf $(VENV) var
