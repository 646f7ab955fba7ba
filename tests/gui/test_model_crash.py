"""When llama.cpp crashes on a model file, the window says so and stays up.

The model check's child process really dies (os.abort()); what is tested is that the window,
in the parent, tells the user which model failed, whose fault it is and what to try.
"""

from __future__ import annotations

import sys

import pytest

from promptstudio.gui.model_page import ModelPage
from promptstudio.llm import loadcheck

LOAD_SECONDS = 120


@pytest.fixture
def crashing_llama(monkeypatch, unchecked_home) -> None:
    """Every model check's child process aborts, as llama.cpp does on a bad kernel."""
    monkeypatch.setattr(loadcheck, "child_command",
                        lambda trial, report: [sys.executable, "-c", "import os; os.abort()"])


def test_a_model_that_crashes_llama_cpp_is_reported_on_the_models_page(
        qtbot, state, sample_project, crashing_llama):
    page = ModelPage(state)
    qtbot.addWidget(page)
    page.show()
    choice = page.task_choice
    choice.load_button.click()
    qtbot.waitUntil(lambda: choice.load_button.isEnabled(), timeout=LOAD_SECONDS * 1000)
    said = choice.load_status.plain
    assert said.startswith("Could not load it: llama.cpp")
    assert "gemma-3-270m-q4_k_m.gguf" in said and "crashed" in said
    assert "not in your project" in said and "Choose another model file" in said
    assert choice.load_status.tone == "bad"
    assert state.project is sample_project and sample_project.examples(), "project intact"


def test_a_run_on_a_model_that_crashes_llama_cpp_fails_with_the_reason(
        qtbot, window, state, sample_project, crashing_llama, monkeypatch):
    from promptstudio.gui import messages

    shown: list[str] = []
    monkeypatch.setattr(messages, "show_error",
                        lambda parent, error, title="": shown.append(str(error)))
    window.run_page.start_run()
    qtbot.waitUntil(lambda: bool(shown), timeout=LOAD_SECONDS * 1000)
    assert "llama.cpp" in shown[0] and "crashed" in shown[0]
    assert not state.runs.running
    assert window.isVisible()
