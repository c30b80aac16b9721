# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make demo   - virtual environment, install, generate protobuf code, run the demo
#   make test   - the same set-up, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

NODE_EXAMPLE := examples/node/node_modules/.installed

.PHONY: demo test setup gen lint bench faults clean node-example wheel-check browser

setup: $(STAMP) gen

$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The one command that generates Python code from protos/ (both targets run it; a
# wheel or sdist build runs it through setup.py).
gen: $(STAMP)
	$(BIN)/python protos/generate.py

demo: setup
	$(BIN)/zhol demo

# The Node.js example client's packages (pinned in package-lock.json), so the test that
# calls the bus from another language runs; without npm that one test is skipped.
node-example: $(NODE_EXAMPLE)

$(NODE_EXAMPLE): examples/node/package.json examples/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd examples/node && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
		echo "npm not found: tests/integration/test_node_client.py will be skipped"; \
	fi

# Debian's Chromium for the portal's browser tests (tests/browser/, Playwright drives it;
# Playwright's own browser download cannot work here). Installed when running as root
# with apt (as CI does); elsewhere those tests are skipped, and this says so in one line.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	else \
		echo "no Chromium and no root apt-get: tests/browser/ will be skipped"; \
	fi

test: setup node-example browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy -p zhol
	$(BIN)/python -m pytest -q
	$(BIN)/python tests/packaging/check_wheel.py

# Build the sdist and wheel from the tracked files alone, install the wheel into a new
# virtual environment and run `zhol demo --check` from an empty folder.
wheel-check: setup
	$(BIN)/python tests/packaging/check_wheel.py

bench: setup
	$(BIN)/zhol bench --json

# Every fault scenario against a local federation of real processes (docs/faults.md);
# `make test` runs the quick part (tests/integration/test_faults.py).
faults: setup
	$(BIN)/zhol faults

clean:
	rm -rf $(VENV) *.egg-info dist build examples/node/node_modules registry/v1
	find zhol -mindepth 1 -maxdepth 1 -type d ! -type l -exec rm -rf {} +
