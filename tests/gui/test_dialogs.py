"""About, keyboard shortcuts and Preferences; the theme that Preferences change."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QTableWidget

from promptstudio import applog
from promptstudio.gui import dialogs, theme
from promptstudio.llm.bundled import BUNDLED_MODEL_LICENCE, BUNDLED_MODEL_NAME


@pytest.fixture
def app(qapp):
    """The application, with its style, colours and font put back after the test."""
    style, palette, font = qapp.style().name(), QPalette(qapp.palette()), QFont(qapp.font())
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setFont(font)


def window_colour() -> int:
    return QApplication.palette().color(QPalette.ColorRole.Window).lightness()


def test_about_names_the_app_version_model_licence_and_log(window):
    dialog = dialogs.show_about(window)
    assert dialog.isVisible()
    text = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "PromptStudio" in text
    assert f"Version {dialogs.app_version()}" in text
    assert dialogs.app_version() not in ("", "None")
    assert BUNDLED_MODEL_NAME in text
    assert BUNDLED_MODEL_LICENCE.split("(")[0].strip() in text
    assert str(applog.log_file()) in text
    dialog.close()


def test_shortcuts_lists_every_shortcut_of_the_window(window):
    dialog = dialogs.show_shortcuts(window.pages)
    table = dialog.findChild(QTableWidget, "shortcutsTable")
    rows = [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
    assert rows == [(text, keys) for text, keys in window.shortcuts() if text]
    assert ("Start run", "F5") in rows
    dialog.close()


def test_preferences_change_the_font_at_once_and_remember_it(window, settings, app):
    dialog = dialogs.show_preferences(window)
    assert dialog.isVisible()
    start = app.font().pointSize()
    dialog.font_size.setValue(start + 4)
    assert app.font().pointSize() == start + 4
    QApplication.processEvents()
    assert window.font().pointSize() == start + 4
    assert int(settings.value("fontSize")) == start + 4
    dialog.default_size.click()
    assert app.font().pointSize() == theme.default_font_size(app)
    dialog.close()


def test_preferences_switch_between_light_and_dark(window, settings, app):
    dialog = dialogs.show_preferences(window)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    assert settings.value("theme") == "dark"
    assert window_colour() < 128
    QApplication.processEvents()
    assert theme.is_dark(window)
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    assert window_colour() > 128
    assert app.style().name().lower() == "fusion"
    dialog.close()


def test_the_theme_follows_the_system_by_default(settings, app, monkeypatch):
    monkeypatch.setattr(theme, "system_is_dark", lambda _: True)
    theme.apply(app, settings)
    assert window_colour() < 128
    monkeypatch.setattr(theme, "system_is_dark", lambda _: False)
    theme.apply(app, settings)
    assert window_colour() > 128


def test_a_saved_font_size_applies_and_nonsense_is_ignored(settings, app):
    settings.setValue("fontSize", 15)
    theme.apply(app, settings)
    assert app.font().pointSize() == 15
    settings.setValue("fontSize", "huge")
    settings.setValue("theme", "purple")
    theme.apply(app, settings)
    assert app.font().pointSize() == theme.default_font_size(app)
    assert theme.saved_theme(settings) == "system"


def test_message_colours_read_on_either_background(app, settings):
    settings.setValue("theme", "dark")
    theme.apply(app, settings)
    dark_red = theme.colour("bad")
    settings.setValue("theme", "light")
    theme.apply(app, settings)
    assert theme.colour("bad") != dark_red
    assert theme.colour("muted").startswith("#")


def test_coloured_messages_follow_a_change_of_theme(qtbot, app, settings):
    from promptstudio.gui.labels import Message

    settings.setValue("theme", "light")
    theme.apply(app, settings)
    message = Message("No server answers.", "bad")
    qtbot.addWidget(message)
    message.show()
    assert theme.colour("bad", message) in message.text()
    settings.setValue("theme", "dark")
    theme.apply(app, settings)
    QApplication.processEvents()
    assert theme.colour("bad", message) in message.text()
    assert message.plain == "No server answers."
