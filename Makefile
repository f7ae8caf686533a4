# lakedeck: `make run` starts the console on the built-in default; `make test` installs everything and tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := tmux prometheus prometheus-node-exporter prometheus-alertmanager postgresql

.PHONY: run test bench check-python system-deps snapshots clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
		{ echo "lakedeck needs Python 3.10 or newer ($(PYTHON) is $$($(PYTHON) --version 2>&1)); set PYTHON=python3.X"; exit 2; }

$(VENV)/.installed: pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The real components the tests run: tmux for the end-to-end tests; Prometheus, node_exporter, Alertmanager;
# PostgreSQL for the backup tests.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends --no-upgrade $$missing; \
	fi

run: $(VENV)/.installed
	$(VENV)/bin/lakedeck

test: $(VENV)/.dev-installed system-deps
	$(PY) -m pytest -q

bench: $(VENV)/.dev-installed system-deps
	$(PY) bench/run.py

snapshots: $(VENV)/.dev-installed
	$(PY) -m pytest -q tests/test_snapshots.py --snapshot-update

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
