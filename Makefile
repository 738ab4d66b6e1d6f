# SessionWatch developer entry points. `make lab` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-deps peers test lint fmt bench serve lab synth dashboard clean

setup: $(STAMP) system-deps peers

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

system-deps:
	@bash scripts/install-system-deps.sh

# Real third-party MCP peers for tests/peers (TypeScript SDK via npm, mcp 1.x in .venv-peers/).
peers:
	@bash scripts/install-peers.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

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
