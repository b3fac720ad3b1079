# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install what is missing: uv, the virtual environment (locked by uv.lock),
# and Debian's libusb-1.0-0, which tflite-support's native modules link against.
SHELL := /bin/bash
# Python 3.11 (the only version tflite-support 0.4.4 has wheels for): the machine's own comes
# first, and then uv must never download one (these machines cannot reach uv's Python host).
# PYTHON311 is its real path (python3.11, or python3 if that is 3.11), not a pyenv shim: uv
# compares interpreter paths and would call the .venv "incompatible" and rebuild it.
# Without one (a laptop with 3.12 or 3.13 only) uv installs a managed 3.11 instead;
# `make PYTHON311= ...` takes that path.
PYTHON311 ?= $(shell for p in python3.11 python3; do \
  $$p -c 'import sys; assert sys.version_info[:2] == (3, 11); print(sys.executable)' 2>/dev/null && break; done)
ifneq ($(PYTHON311),)
  UV_PYTHON_REQUEST := $(PYTHON311)
  UV_DOWNLOADS := never
else
  UV_PYTHON_REQUEST := 3.11
  UV_DOWNLOADS := automatic
endif
# Python 3.13 for `make test-py313` (and PYTHON312 likewise for `make test-py312`): the machine's own
# (python3.13 on PATH, else pyenv's), else a uv-managed one where uv may download it.
# Those environments have no tflite-support (it has no wheels past cp311): they embed and write
# bundles with MediaPipe and verify with libscannlite (docs/python-versions.md).
find_python = $(shell for p in python$(1) $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -V | tail -1); do \
  $$p -c 'import sys; assert sys.version_info[:2] == ($(subst .,$(comma) ,$(1))); print(sys.executable)' 2>/dev/null && break; done)
comma := ,
PYTHON313 ?= $(call find_python,3.13)
PYTHON312 ?= $(call find_python,3.12)
# Any Python 3 can bootstrap uv itself.
PYTHON ?= $(or $(PYTHON311),$(shell command -v python3))
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# `uv run` uses the project's .venv; an unrelated activated environment only makes it warn.
unexport VIRTUAL_ENV
# Registries may sit behind a TLS proxy whose certificate only the system store trusts.
ifeq ($(SSL_CERT_FILE),)
  ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
    export SSL_CERT_FILE := /etc/ssl/certs/ca-certificates.crt
  endif
endif
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: setup demo test test-quick test-py313 test-py312 setup-py313 setup-py312 lint bench bench-queries bench-emoji-styles clean system-deps browser-deps native native-deps wasm-deps wasm web

setup: system-deps $(STAMP) native

# libscannlite, the C searcher (libscannlite/Makefile; docs/native.md).
native:
	$(MAKE) -C libscannlite

# apt_install PACKAGE WHY: install a Debian package as root, or stop with a clear message.
define apt_install
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's $(1) ($(2))"; \
	  (apt-get install -y -q $(1) || (apt-get update -q && apt-get install -y -q $(1))) >/dev/null; \
	else \
	  echo "error: $(2): install Debian's $(1) (sudo apt-get install $(1))" >&2; exit 1; \
	fi
endef

system-deps:
	@/sbin/ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || { $(call apt_install,libusb-1.0-0,tflite-support needs libusb-1.0.so.0); }

# The browser test drives Debian's headless Chromium (never a downloaded browser).
browser-deps:
	@test -x /usr/bin/chromium || { $(call apt_install,chromium,the browser test needs /usr/bin/chromium); }

# libscannlite's portability, Java and hostile-input tests (docs/native-port.md): the ARM64 cross
# compiler and C library, qemu-user to run ARM64 programs, clang + lld + compiler-rt for the
# sanitizer build, and a JDK. All from Debian's registry.
native-deps:
	@command -v aarch64-linux-gnu-gcc >/dev/null || { $(call apt_install,gcc-aarch64-linux-gnu,the ARM64 build needs aarch64-linux-gnu-gcc); }
	@test -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 || { $(call apt_install,libc6-dev-arm64-cross,the ARM64 build needs an ARM64 C library); }
	@command -v qemu-aarch64 >/dev/null || { $(call apt_install,qemu-user,the ARM64 tests run under qemu-aarch64); }
	@command -v clang >/dev/null || { $(call apt_install,clang,the sanitizer build needs clang); }
	@command -v ld.lld >/dev/null || { $(call apt_install,lld,the sanitizer build needs lld); }
	@ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-*.a >/dev/null 2>&1 || { $(call apt_install,libclang-rt-14-dev,the sanitizer build needs compiler-rt); }
	@command -v javac >/dev/null || { $(call apt_install,openjdk-17-jdk-headless,the Java binding test needs javac); }

# The WebAssembly build of libscannlite (libscannlite/wasm/Makefile, docs/web.md): Debian's clang,
# lld (wasm-ld) and wasi-libc, never a downloaded toolchain; Node runs its tests.
wasm-deps:
	@command -v clang >/dev/null || { $(call apt_install,clang,the wasm build needs clang); }
	@command -v wasm-ld >/dev/null || { $(call apt_install,lld,the wasm build needs wasm-ld); }
	@test -f /usr/lib/wasm32-wasi/libc.a || { $(call apt_install,wasi-libc,the wasm build needs wasi-libc); }
	@command -v node >/dev/null || { $(call apt_install,nodejs,the wasm tests run in node); }

wasm: wasm-deps
	$(MAKE) -f libscannlite/wasm/Makefile

# The offline search page's parts (docs/web.md): scannlite.wasm, and MediaPipe's TextEmbedder
# installed by `npm ci` from the npm registry as libscannlite/wasm/page/package-lock.json pins it
# (never a CDN); `make demo` copies them beside its bundle as demo-output/search.html.
WEB_PAGE := libscannlite/wasm/page
WEB_STAMP := $(WEB_PAGE)/node_modules/.ci-done
$(WEB_STAMP): $(WEB_PAGE)/package.json $(WEB_PAGE)/package-lock.json
	@command -v npm >/dev/null || { $(call apt_install,npm,the search page installs MediaPipe with npm); }
	cd $(WEB_PAGE) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

web: wasm $(WEB_STAMP)

# The emoji images in four more art styles of docs/queries.md's table (c) (bench/emoji_images.py): four
# emoji-datasource packages from the npm registry, pinned by bench/emoji_styles/package-lock.json (about 370 MB
# unpacked), read locally by the benchmark, never committed or shipped.
EMOJI_STYLES := bench/emoji_styles
EMOJI_STYLES_STAMP := $(EMOJI_STYLES)/node_modules/.ci-done
$(EMOJI_STYLES_STAMP): $(EMOJI_STYLES)/package.json $(EMOJI_STYLES)/package-lock.json
	@command -v npm >/dev/null || { $(call apt_install,npm,the emoji styles install with npm); }
	cd $(EMOJI_STYLES) && npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

bench-emoji-styles: $(EMOJI_STYLES_STAMP)

.tools/bin/uv:
	@[ -n "$(PYTHON)" ] || { echo "error: installing uv needs a python3 (with its venv module), or install uv itself" >&2; exit 1; }
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	@[ -n "$(PYTHON311)" ] || echo "no Python 3.11 on this machine: uv installs a managed Python 3.11"
	# --compile-bytecode: these machines set PYTHONDONTWRITEBYTECODE, so without .pyc files
	# made at install every process compiles its imports from source (pandas alone: 1.8 s
	# instead of 0.4 s), and the tests and workers start hundreds of processes.
	UV_PYTHON_DOWNLOADS=$(UV_DOWNLOADS) $(UV) sync --frozen --all-extras --compile-bytecode --python $(UV_PYTHON_REQUEST)
	@touch $(STAMP)

demo: setup web
	$(UV) run --frozen --no-sync scannlite demo

test: setup browser-deps native-deps wasm-deps web lint
	$(UV) run --frozen --no-sync pytest -q

# ruff (lint and format) and mypy, configured in pyproject.toml. mypy reads the package as it is
# installed (scannlite -> plugin/api/, scannlite.{store,plugin,cli} -> the three folders), which
# the package-dir mapping hides from it, so it runs on a tree of links in .typecheck/.
lint: setup
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .
	@rm -rf .typecheck && mkdir -p .typecheck/scannlite && \
	  ln -s ../../plugin/api/__init__.py .typecheck/scannlite/__init__.py && \
	  for d in store plugin cli; do ln -s ../../$$d .typecheck/scannlite/$$d; done
	cd .typecheck && ../$(VENV)/bin/mypy --config-file ../pyproject.toml --python-executable ../$(VENV)/bin/python scannlite

# The inner loop, under 2 minutes: no TensorFlow processes, no browser, no test over ~4 s (markers registered
# in pyproject.toml; device processes stay in). `make test` (and CI) still runs everything.
test-quick: setup wasm-deps
	$(UV) run --frozen --no-sync pytest -q -m "not slow and not tensorflow and not browser"

# The suite on another Python, in its own environment (.venv-py3XX), beside the 3.11 one: everything but
# the tests that need the Task Library (they skip, naming why). CI runs `make test` and `make test-py313`.
# $(1): the version, $(2): the interpreter found (empty: uv's managed one, downloads allowed).
define other_python
setup-py$(subst .,,$(1)): system-deps native | $$(UV)
	@[ -n "$(2)" ] || echo "no Python $(1) on this machine: uv installs a managed Python $(1)"
	UV_PROJECT_ENVIRONMENT=.venv-py$(subst .,,$(1)) UV_PYTHON_DOWNLOADS=$(if $(2),never,automatic) \
	  $$(UV) sync --frozen --all-extras --compile-bytecode --python $(or $(2),$(1))

test-py$(subst .,,$(1)): setup-py$(subst .,,$(1)) browser-deps native-deps wasm-deps web
	UV_PROJECT_ENVIRONMENT=.venv-py$(subst .,,$(1)) $$(UV) run --frozen --no-sync pytest -q -p no:cacheprovider
endef
$(eval $(call other_python,3.13,$(PYTHON313)))
$(eval $(call other_python,3.12,$(PYTHON312)))

# Every benchmark: bench.run_all (docs/benchmarks.md; it makes the demo's outputs when they are missing), then the
# studies of recall for the queries people send (docs/queries.md).
bench: setup
	$(UV) run --frozen --no-sync python -m bench.run_all
	$(MAKE) bench-queries

# Recall for short typed and cross-modal queries with a query sample (docs/queries.md): the full real text set
# (about 20 minutes of MiniLM the first time) and the device p50 at the leaves it chose, the demo's captions against
# its images (`make demo`'s outputs, made first when missing) and against the demo's emoji in five styles (table (c);
# the npm packages of bench-emoji-styles), the partitions' knobs on the 12,000-sentence set (about 15 minutes), on the
# full set (about 60, then 20 for the device p50 of its leaves factors) and on the captions, then docs/queries.md's tables written from them.
bench-queries: setup $(EMOJI_STYLES_STAMP)
	@test -d demo-output/emoji.catalog || $(MAKE) demo
	$(UV) run --frozen --no-sync python -m bench.query_recall --spec full
	$(UV) run --frozen --no-sync python -m bench.query_device_p50
	$(UV) run --frozen --no-sync python -m bench.query_recall --cross demo-output
	$(UV) run --frozen --no-sync python -m bench.query_recall --cross demo-output --images all-styles
	$(UV) run --frozen --no-sync python -m bench.query_knobs
	$(UV) run --frozen --no-sync python -m bench.query_knobs --spec full
	$(UV) run --frozen --no-sync python -m bench.query_knob_device
	$(UV) run --frozen --no-sync python -m bench.query_knobs --cross demo-output
	$(UV) run --frozen --no-sync python -m bench.query_knobs --cross demo-output --images all-styles
	$(UV) run --frozen --no-sync python -m bench.query_synthetic
	$(UV) run --frozen --no-sync python -m bench.query_recall --markdown --write

clean:
	rm -rf $(VENV) .venv-py312 .venv-py313 .tools .pytest_cache .typecheck .mypy_cache .ruff_cache
