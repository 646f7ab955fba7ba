"""The main window's frame: it opens, lists its shortcuts, and closes cleanly."""

from __future__ import annotations

from PySide6.QtCore import QSize

from promptstudio import workflows
from promptstudio.gui.main_window import MainWindow
from promptstudio.gui.state import AppState
from promptstudio.store.workspace import Workspace


def test_window_opens_with_pages_disabled_until_a_project_is_open(window, state):
    assert window.pages.count() == 4
    assert state.project is None
    assert not window.pages.isEnabled()
    assert window.windowTitle() == "PromptStudio"

    workflows.create_sample_project(state.workspace, "product_reviews", "reviews")[0].close()
    state.open_project("reviews")
    assert window.pages.isEnabled()
    assert window.windowTitle() == "reviews — PromptStudio"


def test_shortcuts_cover_run_controls(window):
    keys = dict(window.shortcuts())
    assert keys["Start run"] == "F5"
    assert keys["Stop"] == "Esc"


def test_geometry_is_remembered(qtbot, window, state, settings):
    """Restoring fits a window onto its screen (the offscreen one is 800 pixels wide), so
    the window is left at its narrowest width, which it keeps on any screen."""
    narrowest = window.minimumSizeHint()
    left_at = QSize(narrowest.width(), narrowest.height() + 60)
    assert left_at != window.size(), "a new window would not open at this size by itself"
    window.resize(left_at)
    assert window.size() == left_at
    window.close()

    again_state = AppState(Workspace(state.workspace.folder))
    try:
        again = MainWindow(again_state, settings)
        qtbot.addWidget(again)
        again.show()
        assert again.size() == left_at
    finally:
        again_state.shutdown()
