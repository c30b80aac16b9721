# Two commands do all the set-up on a fresh machine with Python 3.11 and make:
#   make demo   - virtual environment, install, generate protobuf code, run the demo
#   make test   - the same set-up, then the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup gen lint bench clean

setup: $(STAMP) gen

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# The one command that generates Python code from protos/ (both targets run it).
gen: $(STAMP)
	$(BIN)/python protos/generate.py

demo: setup
	$(BIN)/zhol demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/zhol bench --json

clean:
	rm -rf $(VENV) zhol *.egg-info
