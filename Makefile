# Thin wrapper over CMake presets (see CMakePresets.json). Every target
# installs missing dependencies first, so a fresh Debian 12 machine needs
# nothing else.

PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

.PHONY: all build deps test test-unit fuzz-build fuzz bench bench-cluster demo install clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build build -j $(JOBS)

# Debug build with ASan+UBSan, every CTest test, then each fuzz target for a
# bounded time under the sanitizers.
test: deps
	@cmake --preset dev >/dev/null
	@cmake --build build/dev -j $(JOBS)
	@cd build/dev && ctest --output-on-failure -j $(JOBS) --timeout 600
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

fuzz-build: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

fuzz: fuzz-build
	@cd build/fuzz && MOAT_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz --timeout 900

bench: build
	@BENCH_BUILD=$(CURDIR)/build bash bench/run.sh

# One moatd against two cluster nodes on one nats-server -js, and mosquitto (bench/cluster.sh).
bench-cluster: build
	@BENCH_BUILD=$(CURDIR)/build bash bench/cluster.sh

demo: build
	@bash scripts/demo.sh

install: build
	@DESTDIR=$(DESTDIR) cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build
