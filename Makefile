# One entry point for build, test, lint and bench. `make help` lists the targets.
.DEFAULT_GOAL := help
export CARGO_TERM_COLOR ?= never

.PHONY: help setup demo test test-rust check-generated schema test-python test-node test-server test-c test-ray lint bench bench-peers bench-kernel bench-threads gpu-check fuzz soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install system packages (cmake, libclang ...) and fetch the test models
	scripts/setup

demo: setup ## deploy the default model and print a chat completion
	cargo run --release --example chat

test: setup check-generated test-rust test-python test-node test-server test-c ## run every test suite

test-rust: ## Rust unit and integration tests (core engine, real models; includes the wire-schema check)
	cargo test --release -p modelservice -p modelservice-build-support

check-generated: ## fail if the generated Python/TypeScript wire types differ from core/schema/wire.schema.json
	scripts/gen-wire-types --check

schema: ## regenerate core/schema/wire.schema.json from core/src/api, then the Python and TypeScript wire types
	UPDATE_WIRE_SCHEMA=1 cargo test --release -p modelservice --lib committed_schema_is_current
	scripts/gen-wire-types

test-python: ## the Python package's pytest suite
	$(MAKE) -C bindings-python test

test-node: ## the Node package's test suite
	$(MAKE) -C bindings-node test

test-server: ## the HTTP server example's tests
	$(MAKE) -C examples/server test

test-c: ## the C ABI: header check, C example, valgrind
	$(MAKE) -C bindings-c test

test-ray: setup ## modelservice.serve on a local Ray cluster (own venv with ray[serve]; CI runs it after `make test`)
	$(MAKE) -C bindings-python test-ray

lint: ## rustfmt and clippy on the whole workspace, ruff on the Python package (tsc runs in test-node)
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	$(MAKE) -C bindings-python lint

fuzz: setup ## long fuzzing runs: every hostile model file, thousands of mutated requests and specs (make test runs short ones)
	MODELSERVICE_FUZZ=long cargo test --release -p modelservice --test hostile_models --test fuzz_requests -- --nocapture
	$(MAKE) -C bindings-c fuzz FUZZ_CASES=5000 FUZZ_VALGRIND_CASES=400

soak: setup ## 1,000 requests with faults through the HTTP server (127.0.0.1), then the Python in-process soak
	cargo bench -p modelservice-server --bench soak
	$(MAKE) -C bindings-python soak

bench: setup ## throughput, latency and embedding benchmarks against raw llama.cpp loops
	cargo bench -p modelservice --bench throughput
	cargo bench -p modelservice --bench embeddings

bench-peers: setup ## our server and Node client beside llama-server, llama-batched-bench and node-llama-cpp (builds them once into target/peers/)
	benches/peers/run

bench-kernel: setup ## our Q4_1 kernel against llama.cpp's own in llama-batched-bench (two AVX2 builds of the peers' llama.cpp, alternating)
	benches/peers/kernel

bench-threads: setup ## OpenMP against ggml's own thread pool (llama-bench, two builds), idle and beside a busy neighbour
	benches/peers/threads

gpu-check: setup ## prepares the GPU check in target/gpu-check (checked here on the CPU) and prints the command for the machine with the GPU
	scripts/gpu-check
