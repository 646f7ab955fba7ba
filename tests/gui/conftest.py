"""Fixtures for the window's tests: a fresh workspace, settings file and window per test.

Qt draws offscreen (set in the top-level conftest before any Qt import). Questions the
window asks (`messages.ask`) are answered by the `answers` fixture, never by a person:
modules must call `messages.ask(...)` through the module, not import `ask` by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from promptstudio import workflows
from promptstudio.gui import messages
from promptstudio.gui.state import AppState
from promptstudio.store.workspace import Workspace


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def state(qtbot, tmp_path: Path) -> Iterator[AppState]:
    app_state = AppState(Workspace(tmp_path / "projects"))
    yield app_state
    app_state.shutdown()


@pytest.fixture
def sample_project(state: AppState):
    """The bundled product-reviews sample, open in `state`."""
    project, _ = workflows.create_sample_project(state.workspace, "product_reviews", "reviews")
    project.close()
    return state.open_project("reviews")


class Answers:
    """Stands in for the user at `messages.ask`: records each question and answers from
    `replies` in order (True is yes), then yes once they run out."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.replies: list[bool] = []

    def __call__(self, parent, title: str, question: str, **_) -> bool:
        self.asked.append(question)
        return self.replies.pop(0) if self.replies else True


@pytest.fixture
def answers(monkeypatch) -> Answers:
    stand_in = Answers()
    monkeypatch.setattr(messages, "ask", stand_in)
    return stand_in


@pytest.fixture
def window(qtbot, state: AppState, settings: QSettings, answers):
    from promptstudio.gui.main_window import MainWindow

    win = MainWindow(state, settings)
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def run_in_window(qtbot, window, state: AppState):
    """Starts a run from the Run page (as F5 does), waits for it to finish, and opens the
    Results page on it; gives the run's id."""
    def run(method: str, preset: str = "quick", timeout: int = 600_000,
            settings: dict | None = None) -> int:
        """`settings`: values typed into the Run page's advanced settings."""
        window.pages.setCurrentWidget(window.run_page)
        window.run_page.choose(method, preset)
        for name, value in (settings or {}).items():
            window.run_page.params.set_value(name, value)
        with qtbot.waitSignal(state.runs.ended, timeout=timeout) as ended:
            window.run_action.trigger()
        assert ended.args[1] == "finished"
        window.pages.setCurrentWidget(window.results_page)
        window.results_page.flush()
        return ended.args[0]

    return run
