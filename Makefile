# audiotag: the two commands every user starts with.
#   make run    install what is missing, build, serve models/ on 127.0.0.1:50051
#   make test   install what is missing, build, run every test
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= 2
PORT ?= 50051
MODELS ?= models
CMAKE_FLAGS ?=

.PHONY: all deps configure build server run test bench format check-format clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only the server and the CLI: the first `make run` need not build the tests.
server: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target audiotag-server audiotag

run: server
	$(BUILD_DIR)/bin/audiotag-server --port=$(PORT) --model_repository=$(MODELS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

bench: build
	scripts/run-benchmarks.sh $(BUILD_DIR)

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

check-format:
	git ls-files '*.h' '*.cc' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD_DIR)
