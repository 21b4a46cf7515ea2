# Tally build. `make help` lists the targets.
#
# One static library (crypto, consensus, node, cli command code) is linked by
# the binaries, the tests, the benchmarks and the fuzzers; only main.c differs.

CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
PKGS     := libsodium lmdb libuv msgpack jansson libmicrohttpd libcurl
TEST_PKGS := cmocka

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wimplicit-fallthrough -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif

OPT      ?= -O2 -g
SAN      ?=
CPPFLAGS += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -I.
CFLAGS   += -std=c11 $(OPT) $(WARN) $(SAN) -pthread
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS  = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
LDLIBS   += $(DEP_LIBS) -pthread $(SAN)

LIB_SRC  := $(filter-out %/main.c,$(wildcard crypto/*.c consensus/*.c node/*.c cli/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libtally.a
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HARNESS  := $(BUILD)/tests/harness.o $(BUILD)/tests/nodes.o
BENCH_SRC := $(wildcard bench/*.c)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

.PHONY: all check asan bench fuzz install format format-check clean demo deps help
# Keep intermediate objects (harness.o, bench objects) between runs.
.SECONDARY:

all: $(BUILD)/tally $(BUILD)/tallyd

help:
	@echo "make deps          install missing Debian packages (apt-get, as root)"
	@echo "make               build build/tally and build/libtally.a"
	@echo "make check         build and run every test (unit, end-to-end, crash)"
	@echo "make asan          the whole suite under ASan + UBSan"
	@echo "make bench         benchmarks, with the machine noted"
	@echo "make fuzz          libFuzzer targets, FUZZ_SECONDS each (default 20)"
	@echo "make demo          install deps, build, run the walk-through"
	@echo "make install       PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"
	@echo "make format-check  clang-format conformance"

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DEP_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tally: $(BUILD)/cli/main.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tallyd: $(BUILD)/node/main.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(HARNESS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

check: deps
	@$(MAKE) --no-print-directory all tests
	@TALLY_BIN=$(abspath $(BUILD))/tally TALLYD_BIN=$(abspath $(BUILD))/tallyd tests/run.sh $(BUILD)/tests

.PHONY: tests
tests: $(TEST_BIN)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		TALLY_BIN=$(abspath build-asan)/tally TALLYD_BIN=$(abspath build-asan)/tallyd \
		TALLY_ASAN=1 tests/run.sh build-asan/tests

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
	@bench/run.sh $(BUILD)

FUZZ_SECONDS ?= 20
FUZZ_CC ?= clang
fuzz: deps
	@scripts/fuzz.sh "$(FUZZ_CC)" "$(FUZZ_SECONDS)" "$(PKGS)" $(FUZZ_SRC)

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)/tally

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include/tally/crypto $(DESTDIR)$(PREFIX)/include/tally/consensus \
		$(DESTDIR)$(PREFIX)/include/tally/node
	install -m 0755 $(BUILD)/tally $(DESTDIR)$(PREFIX)/bin/tally
	install -m 0755 $(BUILD)/tallyd $(DESTDIR)$(PREFIX)/bin/tallyd
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libtally.a
	install -m 0644 crypto/tl_base.h crypto/tl_crypto.h $(DESTDIR)$(PREFIX)/include/tally/crypto/
	install -m 0644 consensus/tl_consensus.h $(DESTDIR)$(PREFIX)/include/tally/consensus/
	install -m 0644 node/tl_node.h node/tl_daemon.h $(DESTDIR)$(PREFIX)/include/tally/node/

FORMAT_SRC = $(wildcard crypto/*.[ch] consensus/*.[ch] node/*.[ch] cli/*.[ch] tests/*.[ch] bench/*.[ch] fuzz/*.[ch])
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan build-fuzz build-ci

-include $(LIB_OBJ:.o=.d) $(BUILD)/cli/main.d $(BUILD)/node/main.d $(TEST_BIN:=.d) $(HARNESS:.o=.d) \
         $(BENCH_SRC:%.c=$(BUILD)/%.d)
