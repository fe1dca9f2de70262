# The two commands of the README:
#   make run   installs what is needed, builds, fetches the model and serves on embedded defaults
#   make test  installs what is needed, builds and runs every test
# Other targets: build, unit, e2e, bench, asan, tsan, format, clean.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./modulo-data
CMAKE_FLAGS ?=

MODEL_DIR ?= models/all-MiniLM-L6-v2

.PHONY: run test deps test-deps llm-deps venv model build unit e2e e2e-long e2e-cluster bench asan tsan format clean

deps:
	@scripts/install-deps.sh

# The services the integration tests start on their own ports (PostgreSQL, Redis, nginx), and the
# S3-compatible server (SeaweedFS, built once per machine with a Go toolchain that
# scripts/go-toolchain.sh fetches through the Go module proxy when Debian's Go 1.19 is all there is).
test-deps:
	@scripts/install-deps.sh --test
	@tests/services/s3.sh build

# The long tier's local language model server (llama-cpp-python with SmolLM2-135M-Instruct, in
# .venv; llama.cpp is compiled once per machine).
llm-deps: venv
	@tests/services/llama.sh build

venv: deps
	@scripts/setup-venv.sh

model: deps
	@scripts/fetch-model.sh $(MODEL_DIR)

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# On loopback, `make run` serves without authentication (AUTH=required turns it on; then create a
# user and key with `./build/modulo admin create-user --name me --admin --data-dir $(DATA_DIR)`).
AUTH ?= none
run: build model
	@echo "Starting Modulo on http://$(HOST):$(PORT) (data in $(DATA_DIR), authentication: $(AUTH)); Ctrl-C stops it."
	./$(BUILD_DIR)/modulo serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --model-dir $(MODEL_DIR) --auth $(AUTH)

unit: build model
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

E2E_ENV = MODULO_BIN=$(abspath $(BUILD_DIR))/modulo MODULO_MODEL_DIR=$(abspath $(MODEL_DIR))

# The end-to-end tests without the long tier (whole-dataset quality checks) and the cluster test.
e2e: build venv model test-deps
	$(E2E_ENV) .venv/bin/python -m pytest -q -m "not long and not cluster" tests/e2e

# The scale-out stack: PostgreSQL primary + replica, Redis, Milvus, 3 servers, 2 workers, nginx.
e2e-cluster: build venv model test-deps
	$(E2E_ENV) .venv/bin/python -m pytest -q -m cluster tests/e2e

e2e-long: build venv model test-deps llm-deps
	$(E2E_ENV) .venv/bin/python -m pytest -q -m long tests/e2e

# Everything, the long tier included (PYTEST_ARGS narrows it, e.g. for sanitizer builds).
# scripts/test.sh builds the test tools (SeaweedFS, llama.cpp) in the background while Modulo
# compiles and the first tests run.
PYTEST_ARGS ?=
test:
	@BUILD_DIR='$(BUILD_DIR)' BUILD_TYPE='$(BUILD_TYPE)' JOBS='$(JOBS)' CMAKE_FLAGS='$(CMAKE_FLAGS)' \
	  MODEL_DIR='$(MODEL_DIR)' PYTEST_ARGS='$(PYTEST_ARGS)' scripts/test.sh

bench: deps
	@scripts/install-deps.sh --bench
	cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODULO_BUILD_BENCHMARKS=ON -DMODULO_BUILD_TESTS=OFF
	cmake --build build-bench -j $(JOBS)
	bench/http_health.sh build-bench

asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS=-DMODULO_SANITIZE=address PYTEST_ARGS='-m "not long and not cluster"'

tsan:
	$(MAKE) test BUILD_DIR=build-tsan BUILD_TYPE=Debug CMAKE_FLAGS=-DMODULO_SANITIZE=thread PYTEST_ARGS='-m "not long and not cluster"'

format:
	find src apps bench -name '*.cpp' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf build build-bench build-asan build-tsan
