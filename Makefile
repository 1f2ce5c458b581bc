# The tasks a person runs. CI runs `make test` through .ci/run.
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: up test e2e reliability bench bench-figures bench-parts bench-agent crds lint build deps unit

## up: install what is missing, build, and run Berth here with a local containerd, registry and a demo job
up: deps build
	bash e2e/scripts/up.sh

## test: lint, then every test (unit, integration, end-to-end with containerd and kubectl)
test: deps lint build
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log; rc=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log; \
	exit $$rc

## e2e: only the end-to-end tests
e2e: deps build
	$(CARGO) test -p berth-e2e --no-fail-fast

## reliability: the kill -9 durability test of the embedded store, 20 rounds (make test runs 2)
reliability: deps build
	BERTH_DURABILITY_ROUNDS=20 $(CARGO) test -p berth-e2e --test durability -- acknowledged_writes_survive_kill_9_under_load

## bench: Berth's headline figures beside baselines from the same run, as a table and bench/results.json (under 15 minutes)
bench: bench-figures

## bench-figures: launch overhead, placements/s at 100-10,000 simulated agents, memory, apply-to-Running (release build)
bench-figures: deps
	$(CARGO) build --release --bin berth
	BERTH_BIN=$(CURDIR)/target/release/berth $(CARGO) run -q -p berth-e2e --bin berth-bench -- --out bench/results.json

## bench-parts: the store (embedded vs a local etcd), the API, admitting accepts, the allocator, the agent
bench-parts: deps
	$(CARGO) bench -p berth-apiserver --bench store --bench api --bench accept
	$(CARGO) bench -p berth-controllers --bench allocator
	$(MAKE) bench-agent

## bench-agent: the agent's RSS idle and with 100 containers (beside `sleep` and containerd), and failover after kill -9 against the agent TTL
bench-agent: deps
	$(CARGO) build --release --bin berth
	BERTH_BIN=$(CURDIR)/target/release/berth $(CARGO) test -p berth-e2e --test agent_bench -- --ignored --nocapture

## unit: tests that need no containerd or kubectl
unit:
	$(CARGO) test -p berth-api -p berth-controllers --lib

## crds: regenerate manifests/crds from the types in api/
crds:
	$(CARGO) run -q --bin berth -- crds --dir manifests/crds

## lint: formatting and clippy, warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## build: the berth binary (target/debug/berth); the e2e tests run it
build:
	$(CARGO) build --bin berth

deps:
	bash e2e/scripts/install-deps.sh
