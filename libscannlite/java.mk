# The Java binding (docs/android.md), included by libscannlite/Makefile.
#
#   make -C libscannlite java           classes + libscannlite_jni.so for this JVM
#   make -C libscannlite java-aarch64   libscannlite_jni.so for ARM64 Linux (link check)
#
# libscannlite_jni.so holds the library itself (a PIC static build, its symbols hidden) and the
# JNI glue: one .so per ABI, as an Android app ships it, linked with 16 KB page alignment.
SL_JAVA_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SL_BUILD_ROOT ?= $(or $(BUILD),$(SL_JAVA_DIR)/build)
JAVAC ?= javac
JAVA_HOME_DIR ?= $(patsubst %/bin/javac,%,$(realpath $(shell command -v $(JAVAC) 2>/dev/null)))
JNI_INCLUDE ?= $(JAVA_HOME_DIR)/include
JAVA_BUILD ?= $(SL_BUILD_ROOT)/java
JAVA_AARCH64_BUILD ?= $(SL_BUILD_ROOT)/java-aarch64
JAVA_SRCS := $(wildcard $(SL_JAVA_DIR)/java/src/dev/scannlite/*.java) $(wildcard $(SL_JAVA_DIR)/java/test/dev/scannlite/*.java)
JNI_SRC := $(SL_JAVA_DIR)/java/jni/scannlite_jni.c
JNI_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -ffp-contract=off \
  -I$(SL_JAVA_DIR)/include -I$(JNI_INCLUDE) -I$(JNI_INCLUDE)/linux
JNI_LDFLAGS := -shared -Wl,-z,max-page-size=16384 -Wl,--no-undefined -Wl,--exclude-libs,ALL
AARCH64_CC ?= aarch64-linux-gnu-gcc

.PHONY: java java-aarch64 FORCE_SL_JAVA

java: $(JAVA_BUILD)/libscannlite_jni.so $(JAVA_BUILD)/classes/.built

$(JAVA_BUILD)/classes/.built: $(JAVA_SRCS)
	@[ -d "$(JNI_INCLUDE)" ] || { echo "error: no JDK found ($(JAVAC)): install Debian's openjdk-17-jdk-headless (make native-deps)" >&2; exit 1; }
	@rm -rf $(JAVA_BUILD)/classes && mkdir -p $(JAVA_BUILD)/classes
	$(JAVAC) -Xlint:all,-try -Werror --release 11 -d $(JAVA_BUILD)/classes $(JAVA_SRCS)
	@touch $@

# The library's own rules build the PIC static archive (FORCE: its own make decides if it is stale).
$(JAVA_BUILD)/lib/libscannlite.a: FORCE_SL_JAVA
	@$(MAKE) --no-print-directory -f $(SL_JAVA_DIR)/Makefile BUILD=$(JAVA_BUILD)/lib \
	  CFLAGS_EXTRA='-fPIC -fvisibility=hidden -ffp-contract=off $(CFLAGS_EXTRA)' $@

$(JAVA_BUILD)/libscannlite_jni.so: $(JNI_SRC) $(SL_JAVA_DIR)/include/scannlite.h $(JAVA_BUILD)/lib/libscannlite.a
	@[ -d "$(JNI_INCLUDE)" ] || { echo "error: no JDK headers in $(JNI_INCLUDE): install Debian's openjdk-17-jdk-headless (make native-deps)" >&2; exit 1; }
	$(CC) $(JNI_CFLAGS) $(JNI_SRC) $(JAVA_BUILD)/lib/libscannlite.a -lm $(JNI_LDFLAGS) -o $@

java-aarch64: $(JAVA_AARCH64_BUILD)/libscannlite_jni.so

$(JAVA_AARCH64_BUILD)/lib/libscannlite.a: FORCE_SL_JAVA
	@$(MAKE) --no-print-directory -f $(SL_JAVA_DIR)/Makefile CC=$(AARCH64_CC) BUILD=$(JAVA_AARCH64_BUILD)/lib \
	  CFLAGS_EXTRA='-fPIC -fvisibility=hidden -ffp-contract=off $(CFLAGS_EXTRA)' $@

$(JAVA_AARCH64_BUILD)/libscannlite_jni.so: $(JNI_SRC) $(SL_JAVA_DIR)/include/scannlite.h $(JAVA_AARCH64_BUILD)/lib/libscannlite.a
	$(AARCH64_CC) $(JNI_CFLAGS) $(JNI_SRC) $(JAVA_AARCH64_BUILD)/lib/libscannlite.a -lm $(JNI_LDFLAGS) -o $@

FORCE_SL_JAVA:
