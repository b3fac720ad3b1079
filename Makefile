# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install what is missing: uv, the virtual environment (locked by uv.lock),
# and Debian's libusb-1.0-0, which tflite-support's native modules link against.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# Registries may sit behind a TLS proxy whose certificate only the system store trusts.
ifeq ($(SSL_CERT_FILE),)
  ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
    export SSL_CERT_FILE := /etc/ssl/certs/ca-certificates.crt
  endif
endif
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: setup demo test bench clean system-deps browser-deps

setup: system-deps $(STAMP)

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

.tools/bin/uv:
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras
	@touch $(STAMP)

demo: setup
	$(UV) run --frozen --no-sync scannlite demo

test: setup browser-deps
	$(UV) run --frozen --no-sync pytest -q

bench: setup
	$(UV) run --frozen --no-sync python -m bench.run_all

clean:
	rm -rf $(VENV) .tools .pytest_cache
