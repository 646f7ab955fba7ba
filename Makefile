# PromptStudio: `make run` starts the app, `make test` runs every test.
# Both set up everything a fresh machine lacks: the virtualenv (llama-cpp-python compiles
# once, about 8 minutes on 2 cores; pip's wheel cache makes later venvs instant), the bundled
# model, and on Debian/Ubuntu the system libraries Qt needs to draw offscreen.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint demo system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes; an installed llama-cpp-python of the
# pinned version is kept as it is (pip does not rebuild a satisfied requirement).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

system-deps:
	@bash packaging/system-deps.sh

run: $(STAMP) system-deps
	$(BIN)/promptstudio gui

# What the engine does on a bundled sample, in the terminal.
demo: $(STAMP)
	$(BIN)/promptstudio demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check promptstudio tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
