# Hostile-input builds of libscannlite (docs/native-port.md), included by libscannlite/Makefile.
#
#   make -C libscannlite fuzz        scannlite-fuzz: the driver the test suite runs
#                                             (tests/test_native_fuzz.py), ASan + UBSan, clang
#   make -C libscannlite libfuzzer   scannlite-libfuzzer: a coverage-guided libFuzzer
#                                             target for long runs (not in the test suite)
#   make -C libscannlite fuzz-long FUZZ_SECONDS=600   run it, seeded with Google's fixtures
#   make -C libscannlite threads     scannlite-threads: concurrent searches, ThreadSanitizer
#
# Sanitizer reports stop the run (-fno-sanitize-recover=all). Needs Debian's clang, lld and
# libclang-rt-14-dev (make native-deps).
SL_FUZZ_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SL_BUILD_ROOT ?= $(or $(BUILD),$(SL_FUZZ_DIR)/build)
FUZZ_CC ?= clang
FUZZ_BUILD ?= $(SL_BUILD_ROOT)/fuzz
FUZZ_SECONDS ?= 300
FUZZ_SEEDS ?= $(SL_FUZZ_DIR)/../../shared/fixtures/tflite-support
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
FUZZ_DRIVER := $(SL_FUZZ_DIR)/fuzz/scannlite_fuzz.c

.PHONY: fuzz libfuzzer fuzz-long threads FORCE_SL_FUZZ

fuzz: $(FUZZ_BUILD)/scannlite-fuzz

$(FUZZ_BUILD)/lib/libscannlite.a: FORCE_SL_FUZZ
	@command -v $(FUZZ_CC) >/dev/null || { echo "error: $(FUZZ_CC) not found: install Debian's clang, lld and libclang-rt-14-dev (make native-deps)" >&2; exit 1; }
	@$(MAKE) --no-print-directory -f $(SL_FUZZ_DIR)/Makefile CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD)/lib \
	  CFLAGS_EXTRA='$(SANITIZE) $(CFLAGS_EXTRA)' LDFLAGS_EXTRA='$(SANITIZE) $(LDFLAGS_EXTRA)' $@

$(FUZZ_BUILD)/scannlite-fuzz: $(FUZZ_DRIVER) $(SL_FUZZ_DIR)/include/scannlite.h $(FUZZ_BUILD)/lib/libscannlite.a
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror $(SANITIZE) -I$(SL_FUZZ_DIR)/include $(FUZZ_DRIVER) \
	  $(FUZZ_BUILD)/lib/libscannlite.a -lm -o $@

libfuzzer: $(FUZZ_BUILD)/scannlite-libfuzzer

$(FUZZ_BUILD)/libfuzzer-lib/libscannlite.a: FORCE_SL_FUZZ
	@$(MAKE) --no-print-directory -f $(SL_FUZZ_DIR)/Makefile CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD)/libfuzzer-lib \
	  CFLAGS_EXTRA='-fsanitize=fuzzer-no-link $(SANITIZE) $(CFLAGS_EXTRA)' LDFLAGS_EXTRA='$(SANITIZE) $(LDFLAGS_EXTRA)' $@

$(FUZZ_BUILD)/scannlite-libfuzzer: $(FUZZ_DRIVER) $(SL_FUZZ_DIR)/include/scannlite.h $(FUZZ_BUILD)/libfuzzer-lib/libscannlite.a
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror -DSCANNLITE_LIBFUZZER -fsanitize=fuzzer $(SANITIZE) \
	  -I$(SL_FUZZ_DIR)/include $(FUZZ_DRIVER) $(FUZZ_BUILD)/libfuzzer-lib/libscannlite.a -lm -o $@

# A corpus seeded with Google's indexes and bundle; findings land in $(FUZZ_BUILD)/findings.
fuzz-long: $(FUZZ_BUILD)/scannlite-libfuzzer
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/findings
	@cp -n $(FUZZ_SEEDS)/*.ldb $(FUZZ_SEEDS)/regex_searcher.tflite $(FUZZ_BUILD)/corpus/ 2>/dev/null || true
	$(FUZZ_BUILD)/scannlite-libfuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=1048576 -rss_limit_mb=2048 \
	  -artifact_prefix=$(FUZZ_BUILD)/findings/ $(FUZZ_BUILD)/corpus

FORCE_SL_FUZZ:

# Concurrent searches under ThreadSanitizer: scannlite-threads (tests/test_native_fuzz.py).
TSAN := -fsanitize=thread -fno-omit-frame-pointer -g -O1
threads: $(FUZZ_BUILD)/scannlite-threads

$(FUZZ_BUILD)/tsan-lib/libscannlite.a: FORCE_SL_FUZZ
	@$(MAKE) --no-print-directory -f $(SL_FUZZ_DIR)/Makefile CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD)/tsan-lib \
	  CFLAGS_EXTRA='$(TSAN) $(CFLAGS_EXTRA)' LDFLAGS_EXTRA='$(TSAN) $(LDFLAGS_EXTRA)' $@

$(FUZZ_BUILD)/scannlite-threads: $(SL_FUZZ_DIR)/fuzz/scannlite_threads.c $(SL_FUZZ_DIR)/include/scannlite.h $(FUZZ_BUILD)/tsan-lib/libscannlite.a
	$(FUZZ_CC) -std=c11 -Wall -Wextra -Werror $(TSAN) -I$(SL_FUZZ_DIR)/include $(SL_FUZZ_DIR)/fuzz/scannlite_threads.c \
	  $(FUZZ_BUILD)/tsan-lib/libscannlite.a -lm -lpthread -o $@
