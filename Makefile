# SessionWatch developer entry points. `make lab` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
UV := $(VENV)/bin/uv

# The suite runs on parallel pytest-xdist workers (docs/architecture.md, "How the tests run"),
# one more than the CPUs: its tests wait on processes (servers, moto, the lab's time-scaled
# periods) about half the time, so one worker per CPU left the cores 48% idle; with two per CPU
# the lab's scenarios lost their timing to the contention. TEST_WORKERS=0 runs it in this process.
# Python caches each module's bytecode on first import unless PYTHONDONTWRITEBYTECODE is set (CI
# images often set it). Set, every process compiles what it imports again: 2.4 s instead of 1.3 s
# to import mcp, moto, boto3 and the server, in each of the suite's hundreds of processes.
unexport PYTHONDONTWRITEBYTECODE

NPROC := $(shell nproc 2>/dev/null || echo 1)
TEST_WORKERS ?= $(shell echo $$(( $(NPROC) + 1 )))
XDIST := -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
# `make test-clocks` runs its two suites side by side, each on one worker per CPU: they wait on
# server processes and moto about half the time (one worker: 286 s wall for 145 CPU-s).
CLOCK_WORKERS ?= $(NPROC)
CLOCK_XDIST := -n $(CLOCK_WORKERS) --dist loadgroup --no-loadscope-reorder

.PHONY: setup system-deps peers test test-clocks lint fmt bench serve lab synth dashboard clean

# The venv, HAProxy and the peers install side by side (each mostly waits on a registry).
setup:
	@$(MAKE) --no-print-directory -j3 $(STAMP) system-deps peers

# uv installs the venv (about 4x faster than pip from a cold cache, measured in README
# "Developing"); pip only bootstraps uv into the venv. Modules are byte-compiled when first imported.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'uv>=0.5,<1'
	$(UV) pip install -q --python $(PY) -e '.[dev]'
	touch $@

system-deps:
	@bash scripts/install-system-deps.sh

# Real third-party MCP peers for tests/peers (TypeScript SDK via npm, mcp 1.x in .venv-peers/,
# installed with the venv's uv).
peers: $(STAMP)
	@UV=$(UV) bash scripts/install-peers.sh

test: setup
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The server, detector and ops suites again as a machine booted 60 s ago and one up 400 days
# (time namespaces; needs root, says so and skips elsewhere, fails under CI=true).
test-clocks: setup
	@PY=$(PY) PYTEST_ARGS="$(CLOCK_XDIST) $(PYTEST_ARGS)" bash scripts/test-clocks.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Every benchmark (server overhead, detector core, accuracy on ACCURACY_TIMELINES generated
# timelines, default 12, ledger cost at 1k/10k/100k tasks); `make bench BENCH=accuracy` runs one.
bench: setup
	$(PY) -m benchmarks $(BENCH)

serve: $(STAMP)
	$(PY) -m sessionwatch.server --port $(or $(PORT),8000)

lab: setup
	$(PY) -m lab $(LAB_ARGS)

synth: $(STAMP)
	$(PY) -m sessionwatch.infra

dashboard: $(STAMP)
	$(PY) -m sessionwatch.dashboards

clean:
	rm -rf cdk.out lab-report .pytest_cache .mypy_cache .ruff_cache .venv-peers tests/peers/node_modules
