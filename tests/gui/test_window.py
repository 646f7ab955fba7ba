"""The main window's frame: it opens, lists its shortcuts, and closes cleanly."""

from __future__ import annotations


def test_window_opens_with_pages_disabled_until_a_project_is_open(window, state,
                                                                   sample_project):
    assert window.pages.count() == 4
    assert window.pages.isEnabled()
    assert "reviews" in window.windowTitle()


def test_shortcuts_cover_run_controls(window):
    keys = dict(window.shortcuts())
    assert keys["Start run"] == "F5"
    assert keys["Stop"] == "Esc"


def test_geometry_is_remembered(window, settings):
    window.resize(900, 700)
    window.close()
    assert settings.value("geometry") is not None
