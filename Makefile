# The README's two commands: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help setup demo test lint bench bench-pinned instructions sample openapi

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## install missing system packages (libpq-dev, pkg-config, python3-venv, ...)
	@bash scripts/setup.sh

demo: setup ## a local Synapse and the daemon on SQLite: registration, check, a bot invited, transactions arriving
	$(CARGO) build
	@python="$$(bash tests/support/testenv.sh | tail -n 1)" && "$$python" scripts/demo.py

test: setup ## every test: unit, HTTP on SQLite and PostgreSQL, end-to-end against a real Synapse
	$(CARGO) test --lib --bins --tests

lint: ## formatting and clippy, as CI runs them
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# `make bench BENCHES=transactions` runs one of them.
BENCHES ?= transactions rooms cutover antispam

bench: setup ## transaction, declared-room, cutover and antispam-callback benchmarks (release build), reports in target/bench/
	@set -e; for bench in $(BENCHES); do $(CARGO) bench --bench $$bench; done

bench-pinned: setup ## the transaction benchmark pinned (issue 24): servers on CPU 0, load on CPU 1; target/bench/transactions-pinned.md
	BENCH_PINNED=1 $(CARGO) bench --bench transactions

instructions: setup ## instructions per event on the transaction path, by callgrind (needs valgrind)
	$(CARGO) build --release --bin openmeet-appservice
	python3 scripts/count_instructions.py "$${CARGO_TARGET_DIR:-target}/release/openmeet-appservice" target/bench/callgrind

sample: ## regenerate config.sample.yaml and registration/example.yaml
	$(CARGO) run -q -- generate-config --blank-tokens > config.sample.yaml
	mkdir -p target && sed -E 's/^( *)(as|hs|api|admin)_token: ""/\1\2_token: YOUR-\2-TOKEN-FROM-CONFIG/' config.sample.yaml > target/example-config.yaml
	$(CARGO) run -q -- registration -c target/example-config.yaml > registration/example.yaml

openapi: ## regenerate docs/platform-api.openapi.json, the platform API's OpenAPI document
	$(CARGO) run -q -- openapi > docs/platform-api.openapi.json
