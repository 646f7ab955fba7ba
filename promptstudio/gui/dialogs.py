"""The small windows of the Help and File menus: About, keyboard shortcuts, Preferences.

Each opens without blocking (`open`, not `exec`) and is returned, so tests and callers can
reach it; it deletes itself when closed. Preferences take effect as they are changed and
are saved in the app's settings at once: there is nothing to confirm.
"""

from __future__ import annotations

import html
from importlib import metadata

from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import promptstudio
from promptstudio import applog
from promptstudio.gui import theme
from promptstudio.llm.bundled import BUNDLED_MODEL_LICENCE, BUNDLED_MODEL_NAME
from promptstudio.optimize.method import method_named, methods

APP_TITLE = "PromptStudio"


def app_version() -> str:
    version = getattr(promptstudio, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version("promptstudio")
    except metadata.PackageNotFoundError:
        return "development version"


def _dialog(parent: QWidget, title: str, name: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setObjectName(name)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return dialog


def _close_buttons(dialog: QDialog) -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    return buttons


def show_about(parent: QWidget) -> QDialog:
    """What this is, which version, the bundled model's licence, and where the log is."""
    dialog = _dialog(parent, f"About {APP_TITLE}", "aboutDialog")
    log_path = applog.log_file()
    heading = QLabel(f"<h2>{APP_TITLE}</h2><p>Version {html.escape(app_version())}</p>")
    titles = [method_named(name).short_title for name in methods()]
    text = QLabel(
        "<p>Tunes prompts automatically for a language model running on your own "
        f"computer or server, with the methods {html.escape(', '.join(titles[:-1]))} and "
        f"{html.escape(titles[-1])}.</p>"
        f"<p><b>Bundled model:</b> {html.escape(BUNDLED_MODEL_NAME)}. "
        f"{html.escape(BUNDLED_MODEL_LICENCE)}</p>"
        "<p><b>Log file</b> (attach it when reporting a problem):<br>"
        f"{html.escape(str(log_path))}</p>")
    for label in (heading, text):
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    text.setObjectName("aboutText")
    open_folder = QPushButton("Open the log folder")
    open_folder.clicked.connect(
        lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_path.parent))))
    buttons = _close_buttons(dialog)
    buttons.addButton(open_folder, QDialogButtonBox.ButtonRole.ActionRole)
    layout = QVBoxLayout(dialog)
    layout.addWidget(heading)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.setMinimumWidth(460)
    dialog.open()
    return dialog


def show_shortcuts(parent: QWidget) -> QDialog:
    """Every keyboard shortcut of the main window, in a table."""
    dialog = _dialog(parent, "Keyboard shortcuts", "shortcutsDialog")
    window = parent.window()
    listed = window.shortcuts() if hasattr(window, "shortcuts") else []
    shortcuts = [(text, keys) for text, keys in listed if text.strip()]
    table = QTableWidget(len(shortcuts), 2)
    table.setObjectName("shortcutsTable")
    table.setHorizontalHeaderLabels(["Action", "Keys"])
    for row, (text, keys) in enumerate(shortcuts):
        table.setItem(row, 0, QTableWidgetItem(text))
        table.setItem(row, 1, QTableWidgetItem(keys))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    layout = QVBoxLayout(dialog)
    layout.addWidget(table)
    layout.addWidget(_close_buttons(dialog))
    rows_height = sum(table.rowHeight(row) for row in range(table.rowCount()))
    dialog.resize(420, min(560, rows_height + header.height() + 90))
    dialog.open()
    return dialog


class PreferencesDialog(QDialog):
    """Font size and light or dark colours, applied as they change."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Preferences")
        self.setObjectName("preferencesDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        app = QApplication.instance()
        default_size = theme.default_font_size(app)

        self.font_size = QSpinBox()
        self.font_size.setRange(theme.MIN_FONT_SIZE, theme.MAX_FONT_SIZE)
        self.font_size.setSuffix(" pt")
        self.font_size.setValue(theme.saved_font_size(settings) or default_size)
        self.font_size.setKeyboardTracking(False)
        self.font_size.setMinimumWidth(90)
        self.default_size = QPushButton(f"Default ({default_size} pt)")
        self.default_size.clicked.connect(lambda: self.font_size.setValue(default_size))
        font_row = QHBoxLayout()
        font_row.addWidget(self.font_size)
        font_row.addWidget(self.default_size)
        font_row.addStretch(1)

        self.theme = QComboBox()
        for value, title in theme.THEMES.items():
            self.theme.addItem(title, value)
        self.theme.setCurrentIndex(self.theme.findData(theme.saved_theme(settings)))

        form = QFormLayout()
        form.addRow("Text size:", font_row)
        form.addRow("Colours:", self.theme)
        note = QLabel("Changes apply at once and are remembered.")
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(_close_buttons(self))
        self.setMinimumWidth(360)

        self.font_size.valueChanged.connect(self._font_size_changed)
        self.theme.currentIndexChanged.connect(self._theme_changed)

    def _font_size_changed(self, size: int) -> None:
        self.settings.setValue(theme.FONT_SIZE_KEY, size)
        self._apply()

    def _theme_changed(self) -> None:
        self.settings.setValue(theme.THEME_KEY, self.theme.currentData())
        self._apply()

    def _apply(self) -> None:
        theme.apply(QApplication.instance(), self.settings)
        self.settings.sync()


def show_preferences(parent: QWidget) -> QDialog:
    settings = getattr(parent.window(), "settings", None)
    dialog = PreferencesDialog(settings if isinstance(settings, QSettings) else QSettings(),
                               parent)
    dialog.open()
    return dialog
