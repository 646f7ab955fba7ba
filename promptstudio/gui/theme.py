"""Look and feel: the Fusion style on every system, light or dark, at the user's font size.

Fusion looks the same on Windows, macOS and Linux, so what the help and screenshots show is
what the user sees. By default the window follows the system's light or dark setting
(Qt 6.5 and later report it) and changes with it; Preferences can fix either. Widgets that
colour a message (good news, a problem) ask `colour` for a shade that reads on the
current background.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = {"system": "Same as the system", "light": "Light", "dark": "Dark"}
"""Saved value → what Preferences shows."""
THEME_KEY, FONT_SIZE_KEY = "theme", "fontSize"
MIN_FONT_SIZE, MAX_FONT_SIZE = 7, 28

_DEFAULT_SIZE_PROPERTY = "promptstudioDefaultFontSize"
_FOLLOWING_PROPERTY = "promptstudioFollowsColorScheme"

_DARK = {
    QPalette.ColorRole.Window: "#2b2b2e",
    QPalette.ColorRole.WindowText: "#e8e8e8",
    QPalette.ColorRole.Base: "#1f1f22",
    QPalette.ColorRole.AlternateBase: "#29292d",
    QPalette.ColorRole.ToolTipBase: "#3a3a3e",
    QPalette.ColorRole.ToolTipText: "#f0f0f0",
    QPalette.ColorRole.PlaceholderText: "#8e8e93",
    QPalette.ColorRole.Text: "#e8e8e8",
    QPalette.ColorRole.Button: "#38383c",
    QPalette.ColorRole.ButtonText: "#e8e8e8",
    QPalette.ColorRole.BrightText: "#ff7b72",
    QPalette.ColorRole.Light: "#4d4d52",
    QPalette.ColorRole.Midlight: "#404044",
    QPalette.ColorRole.Mid: "#303034",
    QPalette.ColorRole.Dark: "#1a1a1d",
    QPalette.ColorRole.Shadow: "#0b0b0c",
    QPalette.ColorRole.Highlight: "#3d6fd1",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#79b8ff",
    QPalette.ColorRole.LinkVisited: "#c29bff",
}
_DARK_DISABLED = {
    QPalette.ColorRole.WindowText: "#7c7c82",
    QPalette.ColorRole.Text: "#7c7c82",
    QPalette.ColorRole.ButtonText: "#7c7c82",
    QPalette.ColorRole.Base: "#262629",
    QPalette.ColorRole.Button: "#303034",
    QPalette.ColorRole.Highlight: "#4a4a50",
}

_SHADES = {
    # name: (on a light background, on a dark background)
    "good": ("#1b7a35", "#7fd494"),
    "bad": ("#b3261e", "#ff8a80"),
    "warn": ("#8a5a00", "#f2c35b"),
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in _DARK.items():
        palette.setColor(role, QColor(colour))
    for role, colour in _DARK_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return palette


def saved_theme(settings: QSettings) -> str:
    value = str(settings.value(THEME_KEY, "system") or "system")
    return value if value in THEMES else "system"


def saved_font_size(settings: QSettings) -> int | None:
    """The font size chosen in Preferences; None means the system's own."""
    try:
        size = int(settings.value(FONT_SIZE_KEY, 0) or 0)
    except (TypeError, ValueError):
        return None
    return size if MIN_FONT_SIZE <= size <= MAX_FONT_SIZE else None


def system_is_dark(app: QGuiApplication) -> bool:
    hints = app.styleHints()
    if hasattr(hints, "colorScheme"):  # Qt 6.5
        return hints.colorScheme() == Qt.ColorScheme.Dark
    return False


def default_font_size(app: QApplication) -> int:
    """The font size the app started with, before any Preferences were applied."""
    size = app.property(_DEFAULT_SIZE_PROPERTY)
    if not size:
        size = app.font().pointSize()
        app.setProperty(_DEFAULT_SIZE_PROPERTY, size)
    return int(size)


def apply(app: QApplication, settings: QSettings) -> None:
    """Style, colours and font size from the saved preferences; call again after a change."""
    default_size = default_font_size(app)
    app.setStyle("Fusion")
    choice = saved_theme(settings)
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8: native title bars follow as well
        hints.setColorScheme({"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
                             .get(choice, Qt.ColorScheme.Unknown))
    dark = system_is_dark(app) if choice == "system" else choice == "dark"
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    font = QFont(app.font())
    font.setPointSize(saved_font_size(settings) or default_size)
    app.setFont(font)
    _followed["settings"] = settings
    if hasattr(hints, "colorSchemeChanged") and not app.property(_FOLLOWING_PROPERTY):
        app.setProperty(_FOLLOWING_PROPERTY, True)
        hints.colorSchemeChanged.connect(lambda _: _follow_system(app))


_followed: dict[str, QSettings] = {}
"""The settings last applied, which say whether a change of the system's scheme matters."""


def _follow_system(app: QApplication) -> None:
    settings = _followed.get("settings")
    if settings is not None and saved_theme(settings) == "system":
        apply(app, settings)


def is_dark(widget: QWidget | None = None) -> bool:
    palette = widget.palette() if widget is not None else QApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def colour(name: str, widget: QWidget | None = None) -> str:
    """A message colour ('good', 'bad', 'warn', 'muted') that reads on the background."""
    if name == "muted":
        palette = widget.palette() if widget is not None else QApplication.palette()
        return palette.color(QPalette.ColorRole.PlaceholderText).name()
    light, dark = _SHADES[name]
    return dark if is_dark(widget) else light
