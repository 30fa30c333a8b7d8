# ringkv top-level Makefile.  `make run` and `make test` are all a user
# needs on a fresh Debian 12 machine: both install missing packages first.
#
#   make            build release binaries into build/
#   make run        start one node with the defaults (RESP 127.0.0.1:7379, ./data)
#   make cluster    start a local 3-node cluster (RESP 7379/7389/7399, ./data/node1..3)
#   make cluster-stop  stop it by PID
#   make test       every test CI runs (ASan+UBSan build, unit, integration, fuzz smoke)
#   make bench      side-by-side benchmarks (prints tables)
#   make fuzz       run every fuzz target longer (FUZZ_SECONDS, default 300)
#   make sim        the deterministic cluster simulator's PR tier
#   make sim-long   its long tier (SEEDS=1:100000 STEPS=100000)
#   make format     clang-format the sources
#   make install    ringkvd, ringkv, libringkv and libringkv_event (.so.0 +
#                   .a each), ringkv.h, ringkv_async.h, ringkv.pc and
#                   ringkv_event.pc under $(DESTDIR)$(PREFIX) (default
#                   /usr/local)

BUILD      ?= build
SAN_BUILD  ?= build-san
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON     ?= /usr/bin/python3
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
RUN_ARGS   ?=
PREFIX     ?= /usr/local

.PHONY: all build deps deps-test deps-bench run test unit integration \
        fuzz fuzz-smoke fuzz-build san-build tsan bench format clean \
        cluster cluster-stop sim sim-long install

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh test

deps-bench:
	@bash scripts/deps.sh bench

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/ringkvd $(RUN_ARGS)

cluster: build
	@bash scripts/cluster.sh start $(BUILD)

cluster-stop:
	@bash scripts/cluster.sh stop $(BUILD)

san-build: deps-test
	@cmake -S . -B $(SAN_BUILD) -DRK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS)

unit: san-build
	cd $(SAN_BUILD) && ctest --output-on-failure -j $(JOBS)

integration: san-build
	RINGKV_BUILD=$(abspath $(SAN_BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider -n $(JOBS) tests/integration

# ThreadSanitizer run of the threaded code (bitcask sync and merge threads);
# the kill -9 loops run 40 iterations each here (races, not counts: the
# ASan run does the full 120 / 200).
tsan: deps-test
	@cmake -S . -B $(TSAN_BUILD) -DRK_TSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target test_bitcask test_engine test_crash crash_writer test_bitcask_executor test_bitcask_vfs
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1 RK_CRASH_ITERATIONS=40 ctest --output-on-failure -j $(JOBS) -R 'test_(bitcask|engine|crash|bitcask_executor|bitcask_vfs)$$'

sim: san-build
	bash scripts/sim.sh $(SAN_BUILD)

SEEDS ?= 1:100000
STEPS ?= 100000
sim-long: build
	bash scripts/sim.sh $(BUILD) long $(SEEDS) $(STEPS)

fuzz-build: deps-test
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DRK_FUZZ=ON -DRK_SANITIZE=ON -DRK_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz-smoke: fuzz-build
	FUZZ_ARGS="-seed=20261125 $(FUZZ_ARGS)" bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

test: san-build
	bash scripts/test.sh

bench: deps-bench build
	@cmake -S . -B $(BUILD) -DRK_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	bash bench/run.sh $(BUILD)

# The prefix is written into the .pc files, so configure with it first;
# DESTDIR (staged installs, packaging) is passed through the environment.
install: build
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

format:
	find src tests bench include examples -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)
