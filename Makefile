# Two commands from a fresh clone: `make demo` (set up + run) and `make test` (set up + test).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,postgres]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edoc-gateway demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2

bench: $(STAMP)
	$(PY) bench/bench_edxml.py
	$(PY) bench/bench_intake.py
	$(PY) bench/bench_delivery.py --channel soap
	$(PY) bench/bench_delivery.py --channel rest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
