# VIRGO build.  `make` builds virgod, libvirgo (.so/.a), the virgo CLI and the
# tests into $(BUILD); `make test` runs the suite; `make test-asan` runs it
# built with ASan+UBSan in build-asan/; `make demo` installs what is missing,
# builds and walks a local 3-node cluster through every service.

BUILD   ?= build
CC      ?= cc
PREFIX  ?= /usr/local
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  ?=
# snprintf truncation is deliberate everywhere (bounded buffers); gcc only
NO_TRUNC := $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes $(NO_TRUNC) -fPIC \
           -D_GNU_SOURCE -Iinclude $(OPT)
LDLIBS_EV := $(shell pkg-config --libs libevent_pthreads 2>/dev/null || echo -levent_pthreads -levent)
LDLIBS_INI := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
# libmemcached: the real client some tests and benches drive (empty without it)
LDLIBS_MC := $(shell pkg-config --libs libmemcached 2>/dev/null)
# OpenSSL 3: TLS in virgod, libvirgo and the CLI (virgo certs)
LDLIBS_SSL := $(shell pkg-config --libs libssl libcrypto 2>/dev/null || echo -lssl -lcrypto)
# ZooKeeper's C client: cloudsync's zookeeper lock backend (libzookeeper-mt-dev)
LDLIBS_ZK := -lzookeeper_mt
# liburing: the analytics watcher fan-out's batched sends (liburing-dev)
LDLIBS_URING := $(shell pkg-config --libs liburing 2>/dev/null || echo -luring)

ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
  CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
endif

COMMON_SRC := $(wildcard src/common/*.c)
DAEMON_SRC := $(wildcard src/daemon/*.c) $(wildcard src/services/*.c) $(wildcard src/services/*/*.c)
LIB_SRC    := $(wildcard src/lib/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_OBJ := $(call obj,$(COMMON_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))
LIB_OBJ    := $(call obj,$(LIB_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
# daemon objects minus main, for unit tests of daemon parts
DAEMON_LIB_OBJ := $(filter-out $(BUILD)/obj/src/daemon/main.o,$(DAEMON_OBJ))

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
INTEG_BIN := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(INTEG_SRC))
HARNESS_OBJ := $(call obj,tests/harness.c)
# a cpupool plugin for the tests, built fast and slow (learned policy)
TEST_PLUGINS := $(BUILD)/tests/libvtp_fast.so $(BUILD)/tests/libvtp_slow.so \
                $(BUILD)/tests/libvtp_notable.so

BINS := $(BUILD)/virgod $(BUILD)/virgo $(BUILD)/libvirgo.so $(BUILD)/libvirgo.a
# virgofs, the FUSE client of the cloud file system: built where libfuse3 is
CFLAGS_FUSE := $(shell pkg-config --cflags fuse3 2>/dev/null)
LDLIBS_FUSE := $(shell pkg-config --libs fuse3 2>/dev/null)
ifneq ($(LDLIBS_FUSE),)
BINS += $(BUILD)/virgofs
endif

.SECONDARY:
.PHONY: all test test-run test-cluster test-cloudsync-zk test-asan test-tsan unit integration demo bench bench-bins install uninstall check-docs clean deps fuzz
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/virgod: $(DAEMON_OBJ) $(COMMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_EV) $(LDLIBS_INI) $(LDLIBS_SSL) $(LDLIBS_ZK) $(LDLIBS_URING) -ldl -lm -lpthread

$(BUILD)/obj/src/fuse/%.o: src/fuse/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CFLAGS_FUSE) -MMD -MP -c $< -o $@

$(BUILD)/virgofs: $(call obj,$(wildcard src/fuse/*.c)) $(BUILD)/libvirgo.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_FUSE) $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread

$(BUILD)/libvirgo.a: $(LIB_OBJ) $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvirgo.so: $(LIB_OBJ) $(COMMON_OBJ) src/lib/libvirgo.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libvirgo.so.0 -Wl,--version-script=src/lib/libvirgo.map \
	    -o $@ $(filter %.o,$^) $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread

$(BUILD)/virgo: $(CLI_OBJ) $(BUILD)/libvirgo.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(HARNESS_OBJ) $(DAEMON_LIB_OBJ) $(LIB_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS_EV) $(LDLIBS_INI) $(LDLIBS_MC) $(LDLIBS_SSL) $(LDLIBS_ZK) $(LDLIBS_URING) -ldl -lm -lpthread
# virgofs's path cache, tested on its own (no FUSE in it)
$(BUILD)/tests/test_vfs_cache: $(BUILD)/obj/src/fuse/vfs_cache.o

$(INTEG_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(HARNESS_OBJ) $(BUILD)/libvirgo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS_INI) $(LDLIBS_MC) $(LDLIBS_SSL) -lm -lpthread

# the TLS, TLS-services and ownership tests make their certificates with
# the code behind `virgo certs`
$(BUILD)/tests/test_tls $(BUILD)/tests/test_tls_services $(BUILD)/tests/test_ownership: $(BUILD)/obj/src/cli/certgen.o

$(BUILD)/tests/libvtp_fast.so: tests/plugin/testplugin.c include/virgo.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -DTP_DELAY_MS=5 -o $@ $<

$(BUILD)/tests/libvtp_slow.so: tests/plugin/testplugin.c include/virgo.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -DTP_DELAY_MS=150 -o $@ $<

$(BUILD)/tests/libvtp_notable.so: tests/plugin/testplugin.c include/virgo.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -DTP_NO_TABLE -o $@ $<

# vlazyfs: the power-loss FUSE file system of the queue's crash test
# (tests/lazyfs); without libfuse3 the test that needs it skips
FUSE3_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE3_LIBS := $(shell pkg-config --libs fuse3 2>/dev/null)
ifneq ($(FUSE3_LIBS),)
TEST_PLUGINS += $(BUILD)/tests/vlazyfs
endif
$(BUILD)/tests/vlazyfs: tests/lazyfs/vlazyfs.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUSE3_CFLAGS) $(LDFLAGS) -o $@ $< $(FUSE3_LIBS)

# the README's test command: missing packages first (a no-op when all are
# there), then build and run everything
test: deps
	@$(MAKE) --no-print-directory test-run

test-run: $(BINS) $(UNIT_BIN) $(INTEG_BIN) $(TEST_PLUGINS)
	@BUILD=$(BUILD) tests/run.sh $(UNIT_BIN) $(INTEG_BIN)

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" test

# the threaded parts under ThreadSanitizer: the in-process server test
# (feeds and deferred replies racing closes), connection hand-off between
# workers (cpu_affinity), the limits, and analytics changes written to
# watchers from the publisher's loop (plain and io_uring sends), the queue's
# two writers and zero-fill thread, and the whole queue service with its
# KingCobra handler (plugin calls and their deadline watcher), and cloudfs
# (its pool threads send replies past the loop, vconn_ticket_send; the
# client's pipelined closes), against a TSan-built virgod.
# (The cpupool cluster tests time their policies: too slow under TSan.)
TSAN_TESTS := test_server_feed test_workpool test_lib_lifecycle test_affinity test_limits test_daemon \
	test_analytics test_analytics_watchers test_analytics_uring test_queue_log test_queue_commit \
	test_queue test_cloudfs test_cloudfs_client
test-tsan: deps
	$(MAKE) BUILD=build-tsan SAN=thread OPT="-O1 -g" all $(addprefix build-tsan/tests/,$(TSAN_TESTS)) \
	    build-tsan/tests/libvtp_fast.so build-tsan/tests/libvtp_slow.so
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" BUILD=build-tsan \
	    tests/run.sh $(addprefix build-tsan/tests/,$(TSAN_TESTS))

# three hosts in network namespaces with TLS, a client in a fourth (root)
$(BUILD)/tests/cluster_lb: $(BUILD)/obj/tests/cluster/cluster_lb.o $(BUILD)/libvirgo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread
test-cluster: all $(BUILD)/tests/cluster_lb
	tests/cluster/netns_cluster.sh $(BUILD)
# cloudsync's zookeeper backend against a real ZooKeeper the test starts
# (Debian's zookeeper + a JRE; a few seconds of JVM start): not in `make test`
ZK_TEST := $(BUILD)/tests/test_cloudsync_zk
$(ZK_TEST): $(BUILD)/obj/tests/zk/test_cloudsync_zk.o $(HARNESS_OBJ) $(BUILD)/libvirgo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread
test-cloudsync-zk: $(BINS) $(ZK_TEST)
	scripts/deps.sh --zk
	@BUILD=$(BUILD) tests/run.sh $(ZK_TEST)

deps:
	scripts/deps.sh

demo: deps
	$(MAKE) all
	scripts/demo.sh $(BUILD)

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libvirgo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_MC) $(LDLIBS_INI) $(LDLIBS_SSL) $(LDLIBS_ZK) -lm -lpthread
bench-bins: $(BENCH_BIN)
# the trivial plugin function bench/suite_cpupool.sh times
bench-bins: $(BUILD)/bench/libvbench_plugin.so $(BUILD)/bench/libvbench_plugin_slow.so
$(BUILD)/bench/libvbench_plugin.so: bench/plugin/vbench_plugin.c include/virgo.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<
$(BUILD)/bench/libvbench_plugin_slow.so: bench/plugin/vbench_plugin.c include/virgo.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -DVB_WORK_MS=40 -o $@ $<

bench:
	scripts/deps.sh --bench
	$(MAKE) BUILD=build-bench OPT="-O2 -DNDEBUG" all bench-bins
	bench/run.sh build-bench

# libFuzzer targets (clang): make -j2 fuzz FUZZ_SECONDS=60
# The sources every target needs are compiled once into build-fuzz/libfuzz.a
# (instrumented for coverage, not linked with libFuzzer's main), and each
# target links only what its parser pulls from it: twelve targets used to
# recompile every source each, four of CI's minutes. The runs are separate
# rules so -j2 fuzzes two targets at a time; each prints its own last lines.
FUZZ_SECONDS ?= 20
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_LIB_SRC := $(COMMON_SRC) $(LIB_SRC) $(wildcard src/services/*_proto.c src/services/*/*_proto.c)
FUZZ_LIB_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_SANS := address,undefined
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iinclude -MMD -MP
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SANS) -c -o $@ $<
build-fuzz/libfuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libfuzz.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SANS) -o $@ $< build-fuzz/libfuzz.a \
	    $(LDLIBS_INI) $(LDLIBS_SSL) -lm -lpthread
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)
FUZZ_RUNS := $(addprefix fuzz-run-,$(notdir $(FUZZ_BIN)))
.PHONY: $(FUZZ_RUNS)
fuzz: $(FUZZ_RUNS)
$(FUZZ_RUNS): fuzz-run-%: build-fuzz/%
	@mkdir -p build-fuzz/corpus-$*
	@out=$$($< -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-$* 2>&1); rc=$$?; \
	    printf '== %s (%ss)\n%s\n' "$<" "$(FUZZ_SECONDS)" "$$(printf '%s\n' "$$out" | tail -n 3)"; \
	    if [ $$rc -ne 0 ]; then printf '%s\n' "$$out" | tail -n 60; exit 1; fi

# Where `make install` puts things.  The daemon and the library read
# /etc/virgo whatever the prefix, so /etc is the default config directory
# for the system prefixes; any other prefix (a home directory) gets
# $(PREFIX)/etc.  Example configs go to the doc directory always and to
# $(SYSCONFDIR)/virgo only where no config is there yet (never overwritten).
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
SYSCONFDIR ?= /etc
else
SYSCONFDIR ?= $(PREFIX)/etc
endif
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/virgo
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MAN_PAGES := $(wildcard docs/man/*.[1-8])

# The virgo command links libvirgo statically: it needs no library path.
# Programs linked with -lvirgo need $(LIBDIR) in the dynamic linker's
# path: install runs ldconfig when it installs into the live system as
# root, and says what to do otherwise (README, libvirgo(3)).
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/virgo $(addprefix $(DESTDIR)$(MANDIR)/man,1 3 5 8)
	install -m 755 $(BUILD)/virgod $(BUILD)/virgo $(DESTDIR)$(BINDIR)/
	[ ! -x $(BUILD)/virgofs ] || install -m 755 $(BUILD)/virgofs $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/libvirgo.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/libvirgo.so $(DESTDIR)$(LIBDIR)/libvirgo.so.0
	ln -sf libvirgo.so.0 $(DESTDIR)$(LIBDIR)/libvirgo.so
	install -m 644 include/virgo.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(shell sed -n 's/.*VIRGO_VERSION "\(.*\)"/\1/p' include/virgo.h)|' \
	    libvirgo.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libvirgo.pc
	for m in $(MAN_PAGES); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done
	install -m 644 LICENSE README.md docs/PROTOCOL.md docs/ARCHITECTURE.md docs/SECURITY.md $(DESTDIR)$(DOCDIR)/
	install -m 644 packaging/virgo_cloud.conf packaging/virgo_client.conf $(DESTDIR)$(DOCDIR)/examples/
	for f in virgo_cloud.conf virgo_client.conf; do \
	    [ -e $(DESTDIR)$(SYSCONFDIR)/virgo/$$f ] || install -m 644 packaging/$$f $(DESTDIR)$(SYSCONFDIR)/virgo/; done
	install -m 644 packaging/virgo.bash-completion $(DESTDIR)$(BASHCOMPDIR)/virgo
	ln -sf virgo $(DESTDIR)$(BASHCOMPDIR)/virgod
	sed -e 's|/usr/local/bin/virgod|$(BINDIR)/virgod|' -e 's|/etc/virgo/|$(SYSCONFDIR)/virgo/|' \
	    packaging/virgod.service > $(DESTDIR)$(SYSTEMDUNITDIR)/virgod.service
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	    ldconfig; \
	else \
	    echo "note: programs linked with -lvirgo find $(LIBDIR)/libvirgo.so.0 once you run 'ldconfig' as root"; \
	    echo "      (if $(LIBDIR) is in /etc/ld.so.conf.d), or link with -Wl,-rpath,$(LIBDIR)"; \
	fi

# the docs still match the code: man pages, example configs, the README's
# C examples (compiled with the cc lines they give, run under ASan)
check-docs: all
	scripts/check-docs.sh $(BUILD)

# Removes what install put there, except config files under $(SYSCONFDIR).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/virgod $(DESTDIR)$(BINDIR)/virgo $(DESTDIR)$(BINDIR)/virgofs \
	    $(DESTDIR)$(LIBDIR)/libvirgo.a \
	    $(DESTDIR)$(LIBDIR)/libvirgo.so.0 $(DESTDIR)$(LIBDIR)/libvirgo.so \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/libvirgo.pc $(DESTDIR)$(INCLUDEDIR)/virgo.h \
	    $(DESTDIR)$(BASHCOMPDIR)/virgo $(DESTDIR)$(BASHCOMPDIR)/virgod \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/virgod.service
	for m in $(MAN_PAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	rm -rf $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-asan build-tsan build-bench build-clang build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
