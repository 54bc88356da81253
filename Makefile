# The README's two commands are `make demo` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CF := $(BIN)/changefeed
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install demo test test-unit test-integration faults bench bench-codec bench-bus lint up down status clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

NATIVE := streams/codecs/native

# Reinstall only when the dependency list or the native codec changes. The native codec
# (changefeed_avro, Rust) needs cargo; without it the worker decodes and encodes in Python, at
# about twice the CPU per event, and the codec's tests fail (install Rust: https://rustup.rs).
$(VENV)/.installed: pyproject.toml $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(NATIVE)/src/lib.rs | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@if command -v cargo >/dev/null; then \
	  echo "building the native Avro codec ($(NATIVE), ~1 min the first time)"; \
	  $(BIN)/pip install --quiet ./$(NATIVE); \
	else \
	  echo "warning: cargo not found: the native Avro codec is not built (see $(NATIVE)/README.md)"; \
	fi
	touch $@

install: $(VENV)/.installed

up: install
	$(CF) up

down:
	$(CF) down

status:
	$(CF) status

# up -> migrate -> schemas -> connectors -> two workers -> 30 s of load -> verify --wait -> summary.
# Narrow with  make demo DEMO_ARGS='--duration 10 --rate 20'
demo: install
	$(CF) demo $(DEMO_ARGS)

# Everything: unit, integration (starts the stack itself), faults. Narrow with
#   make test PYTEST_ARGS='-m "not slow"'     or     make test-unit
test: install
	$(BIN)/pytest --durations=40 $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

# Every fault scenario (tests/faults/README.md) on a private stack (ports +200);
# writes reports/faults.{md,json}.
# Narrow with  make faults PYTEST_ARGS='-k k5'
faults: install
	$(BIN)/pytest -m scenario $(PYTEST_ARGS); status=$$?; \
	echo "fault report: $(CURDIR)/reports/faults.md (JSON: $(CURDIR)/reports/faults.json)"; exit $$status

# Performance against the peers on a private stack (ports +400, or +$CHANGEFEED_BENCH_PORT_SHIFT):
# bench/results/<date>.{json,md,png}. Full ≤ ~50 min on 2 cores; quick (≤ 12 min): BENCH_ARGS=--quick
# Touches nothing else: it does not bring up the shared stack (bench-codec does; run it separately).
BENCH_ARGS ?=
bench: install
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench $(BENCH_ARGS)

# Our fastavro codec vs confluent-kafka's AvroDeserializer on the same Debezium-shaped bytes
# (and the registry's register/lookup latency); needs the local (shared) stack's Kafka, so it is
# not part of `make bench`, whose whole point is a private stack beside other engineers' runs.
bench-codec: up
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/codec_bench.py

# The event bus's bridges (Kafka → JetStream, Kafka → Redis), events/s, on the local (shared)
# stack with nats-server and redis-server started: not part of `make bench`'s private stack.
bench-bus: up
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/bus_bench.py

lint: install
	$(BIN)/ruff check streams tests bench
	$(BIN)/ruff format --check streams tests bench
	$(BIN)/mypy
	@if command -v cargo >/dev/null; then echo "cargo fmt --check ($(NATIVE))"; cd $(NATIVE) && cargo fmt --check; fi

clean: down
	rm -rf $(VENV) .state $(NATIVE)/target
