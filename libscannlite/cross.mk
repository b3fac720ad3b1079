# Portability builds of libscannlite (docs/native-port.md), included by libscannlite/Makefile.
#
#   make -C libscannlite host16k   host build, LOAD segments aligned to 16 KB
#   make -C libscannlite aarch64   ARM64 Linux build (Debian's aarch64-linux-gnu-gcc), 16 KB
#   make -C libscannlite aarch64-check FILE=x.tflite QUERIES=q.f32 K=5
#                                            the ARM64 CLI under qemu-user next to the host CLI
#
# Both reuse the library's own Makefile (its CC, BUILD, CFLAGS_EXTRA, LDFLAGS_EXTRA), so the
# sources and warnings are the same as the default build's. -ffp-contract=off: gcc contracts
# a*b+c into fused multiply-adds on ARM64 by default (GNU C modes), which changes float
# results; the library must give the Task Library's bits on every CPU.
SL_PORT_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SL_BUILD_ROOT ?= $(or $(BUILD),$(SL_PORT_DIR)/build)
PAGE_16K := -Wl,-z,max-page-size=16384
NO_FMA := -ffp-contract=off
SL_OUTPUTS = $(1)/libscannlite.so $(1)/libscannlite.a $(1)/scannlite-cli

AARCH64_CC ?= aarch64-linux-gnu-gcc
AARCH64_SYSROOT ?= /usr/aarch64-linux-gnu
QEMU_AARCH64 ?= qemu-aarch64
HOST16K_BUILD ?= $(SL_BUILD_ROOT)/host16k
AARCH64_BUILD ?= $(SL_BUILD_ROOT)/aarch64

.PHONY: host16k aarch64 aarch64-check

host16k:
	@$(MAKE) --no-print-directory -f $(SL_PORT_DIR)/Makefile BUILD=$(HOST16K_BUILD) \
	  CFLAGS_EXTRA='$(NO_FMA) $(CFLAGS_EXTRA)' LDFLAGS_EXTRA='$(PAGE_16K) $(LDFLAGS_EXTRA)' \
	  $(call SL_OUTPUTS,$(HOST16K_BUILD))

aarch64:
	@command -v $(AARCH64_CC) >/dev/null || { echo "error: $(AARCH64_CC) not found: install Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (make native-deps)" >&2; exit 1; }
	@$(MAKE) --no-print-directory -f $(SL_PORT_DIR)/Makefile CC=$(AARCH64_CC) BUILD=$(AARCH64_BUILD) \
	  CFLAGS_EXTRA='$(NO_FMA) $(CFLAGS_EXTRA)' LDFLAGS_EXTRA='$(PAGE_16K) $(LDFLAGS_EXTRA)' \
	  $(call SL_OUTPUTS,$(AARCH64_BUILD))

# Compare one search on both CPUs (the test suite does this for every test vector).
aarch64-check: host16k aarch64
	@[ -n "$(FILE)" ] && [ -n "$(QUERIES)" ] || { echo "error: aarch64-check needs FILE=... QUERIES=... [K=5]" >&2; exit 1; }
	@$(HOST16K_BUILD)/scannlite-cli search $(FILE) $(QUERIES) $(or $(K),5) > $(AARCH64_BUILD)/check-host.txt
	@$(QEMU_AARCH64) -L $(AARCH64_SYSROOT) -E LD_LIBRARY_PATH=$(AARCH64_BUILD) $(AARCH64_BUILD)/scannlite-cli \
	  search $(FILE) $(QUERIES) $(or $(K),5) > $(AARCH64_BUILD)/check-arm64.txt
	@cmp $(AARCH64_BUILD)/check-host.txt $(AARCH64_BUILD)/check-arm64.txt && \
	  echo "ARM64 (qemu) and host: $$(wc -l < $(AARCH64_BUILD)/check-host.txt) result lines, byte for byte equal"
