# Two commands from a fresh clone: `make demo` (set up + run) and `make test` (set up + test).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Every PyPI package pinned (README "Dependencies"); `make lock` refreshes it. `--build-constraint` pins the build
# backend (setuptools) that pip installs in its isolated build environment, which `-c` does not reach.
CONSTRAINTS := constraints.txt
LOCKED      := -c $(CONSTRAINTS) --build-constraint $(CONSTRAINTS)

.PHONY: demo test wheel-check lock lint bench fuzz clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip
	$(PY) -m pip install --quiet $(LOCKED) -e '.[test,postgres]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edoc-gateway demo

# --dist loadfile: a test file's tests stay on one xdist worker, so a module-scoped served gateway (the console's
# rig, the admin API's) is built once, not once per worker.
# The whole suite includes tests/test_wheel_install.py: the wheel, installed in a fresh venv outside the checkout,
# runs the demo traffic (`make wheel-check` runs that test alone).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --dist loadfile

wheel-check: $(STAMP)
	$(PY) -m pytest -q tests/test_wheel_install.py

# Re-resolve every dependency to the newest release pyproject.toml allows, in a throwaway venv, and write the pins
# to constraints.txt (with pip and setuptools). Review `git diff constraints.txt`, run `make test`, commit both.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip setuptools; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[test,postgres,fuzz]'; \
	{ sed -n '/^#/p' $(CONSTRAINTS); "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable; } \
		> "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" $(CONSTRAINTS)
	@echo "$(CONSTRAINTS) refreshed: review 'git diff $(CONSTRAINTS)', run 'make test', commit both"

# Benchmarks print figures and ratios to a baseline measured in the same run (never asserted in tests). bench_intake
# prints issue 14's figures: the primitive floor, intake in-process and served at 10 KB–20 MB, the worker's peak RSS
# per size and p50/p99 at a fixed 50 req/s (open loop). `make bench QUICK=1`: a short run of each (does it work, not
# how fast). `make bench BENCH_DATABASE_URL=postgresql+psycopg://…/postgres`: intake on that PostgreSQL server (the
# bench creates its databases there); delivery starts a throwaway PostgreSQL server of its own.
bench: $(STAMP)
	$(PY) bench/bench_edxml.py $(if $(QUICK),--quick)
	$(PY) bench/bench_intake.py $(if $(QUICK),--quick) $(if $(BENCH_DATABASE_URL),--database-url=$(BENCH_DATABASE_URL))
	$(PY) bench/bench_delivery.py $(if $(QUICK),--quick)

# Long, coverage-guided fuzzing of one surface with atheris (fuzz/run.py; CI runs the same targets with hypothesis
# in tests/test_fuzz.py): make fuzz SURFACE=soap RUNS=1000000. Surfaces: package signature certificate soap json vdxp.
SURFACE ?= soap
RUNS    ?= 100000
fuzz: $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) atheris
	$(PY) -m fuzz.run $(SURFACE) --runs $(RUNS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
