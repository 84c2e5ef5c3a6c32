# Development entry points; see README.md. Every target creates the virtualenv first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
KAFKA := deploy/kafka-local/kafka.sh

.PHONY: help venv constraints run test lint unit integration chaos bench faust-check faust-kill-test ops-tools browser-tools kcat-tools kafka-start kafka-stop kafka-status kafka-fetch clean

help:
	@echo "make run          local Kafka broker, worker, demo segments and a live stream (Ctrl-C stops all)"
	@echo "make test         lint (ruff, mypy, import contracts) and the whole pytest suite"
	@echo "make lint         ruff check, ruff format --check, mypy, lint-imports"
	@echo "make unit         tests that need no broker"
	@echo "make integration  tests marked kafka (the fixture starts a broker)"
	@echo "make kafka-start | kafka-stop | kafka-status   the local broker on 127.0.0.1:9092"
	@echo "make bench        end-to-end Kafka benchmark at full size (~20 min; BENCH_ARGS to scale down)"
	@echo "make faust-check  native vs Faust runtime in one run (docs/runtimes.md; ~8 min reduced)"
	@echo "make faust-kill-test  the Faust runtime's kill -9 test FAUST_KILL_RUNS times (default 5)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,faust]'
	@touch $@

venv: $(STAMP)

# After a change of pyproject.toml's dependencies: resolve afresh, then pin what installed.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,faust]'
	{ sed -n '1,3p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable | sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

run: $(STAMP)
	deploy/kafka-local/run-worker.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's prometheus package: promtool checks and unit-tests the alert rules and the scrape
# config; its server runs in tests/integration/test_ops_prometheus.py (marked kafka).
ops-tools:
	deploy/tools/ensure-promtool.sh

# Debian's Chromium for the browser tests (tests/browser/, Playwright; marked kafka).
browser-tools:
	deploy/tools/ensure-chromium.sh

# Debian's kcat (librdkafka) for the tests that write input with a client not ours
# (tests/integration/test_foreign_clients.py: CRC32 partitioning, every compression codec).
kcat-tools:
	deploy/tools/ensure-kcat.sh

unit: $(STAMP) ops-tools
	$(BIN)/pytest -m "not kafka"

integration: $(STAMP) browser-tools kcat-tools
	$(BIN)/pytest -m kafka

test: lint ops-tools browser-tools kcat-tools
	$(BIN)/pytest

# Chaos rounds on a broker of their own; SEGSTREAM_CHAOS_DURATION seconds (default 600),
# SEGSTREAM_CHAOS_SEED to repeat a run.
chaos: $(STAMP)
	$(BIN)/python tests/chaos/chaos.py $${SEGSTREAM_CHAOS_SEED:+--seed "$$SEGSTREAM_CHAOS_SEED"}

# End-to-end benchmark on a broker of its own (docs/performance.md); BENCH_ARGS passes flags,
# e.g. BENCH_ARGS="--profiles 20000 --events 200000 --backfill-profiles 200000 --backfill-events 400000".
bench: $(STAMP)
	$(BIN)/python bench/e2e.py $(BENCH_ARGS)

# Native runtime vs Faust runtime on a broker of its own (docs/runtimes.md): bulk throughput,
# latency at 1,250 events/s, restore, kill -9 twice; RUNTIMES_ARGS passes flags (sizes).
faust-check: $(STAMP)
	$(BIN)/python bench/runtimes.py $(RUNTIMES_ARGS)

# The Faust runtime's kill -9 test (also in `make test`, ~1 min) FAUST_KILL_RUNS times in a row
# (default 5), stopping at the first failure; each run prints its repeats (docs/faust.md) and
# keeps its worker logs in a base temp dir of its own (named when it fails).
FAUST_KILL_RUNS ?= 5
faust-kill-test: $(STAMP)
	@for i in $$(seq $(FAUST_KILL_RUNS)); do \
		dir=$$(mktemp -d /tmp/faust-kill-XXXXXX); \
		echo "kill -9 run $$i of $(FAUST_KILL_RUNS) ($$dir)"; \
		$(BIN)/pytest -q -s -p no:cacheprovider --basetemp=$$dir \
			tests/integration/test_faust_runtime.py -k kill_9 || { echo "failed: $$dir"; exit 1; }; \
	done

kafka-start:
	$(KAFKA) start

kafka-stop:
	$(KAFKA) stop

kafka-status:
	$(KAFKA) status

kafka-fetch:
	$(KAFKA) fetch

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
