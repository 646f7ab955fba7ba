"""The page kit: word-wrapped messages in the colour of their tone, indented details
and scrolling page content, shared by the Models page and the re-tune dialog."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from promptstudio.gui import theme

DETAILS_INDENT = 26
CONTENT_MAX_WIDTH = 880


class Message(QLabel):
    """Word-wrapped text whose colour says good news, a warning or a problem, or recedes
    (muted); it keeps reading well when the colours switch between light and dark."""

    def __init__(self, text: str = "", tone: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.plain, self.tone = "", None
        self.say(text, tone)

    def say(self, text: str, tone: str | None = None) -> None:
        self.plain, self.tone = text, tone
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText if tone == "muted"
                               else QPalette.ColorRole.WindowText)
        self._render()

    def _render(self) -> None:
        if self.tone in ("good", "bad", "warn"):
            self.setTextFormat(Qt.TextFormat.RichText)
            escaped = html.escape(self.plain, quote=False).replace("\n", "<br>")
            self.setText(f'<span style="color: {theme.colour(self.tone, self)}">'
                         f"{escaped}</span>")
        else:
            self.setTextFormat(Qt.TextFormat.PlainText)
            self.setText(self.plain)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._render()


def paint(label: Message, text: str, tone: str | None = None) -> None:
    """Show `text` in `label` in the colour of its tone; hide the label when empty."""
    label.say(text, tone)
    label.setVisible(bool(text))


def hint(text: str = "") -> Message:
    return Message(text)


def muted(text: str) -> Message:
    return Message(text, "muted")


def indented(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(DETAILS_INDENT, 0, 0, 6)
    layout.setSpacing(6)
    for widget in widgets:
        layout.addWidget(widget)
    return box


class ScrollContent(QWidget):
    """A scroll area's content that asks for no more height than its wrapped text needs at
    the width it is given (QScrollArea then sizes it by height-for-width), so the page does
    not scroll for nothing."""

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), 0)


def scrolling(content: QWidget) -> QScrollArea:
    """`content` in a frameless scroll area, at most `CONTENT_MAX_WIDTH` wide."""
    content.setMaximumWidth(CONTENT_MAX_WIDTH)
    holder = ScrollContent()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(content, 1)
    row.addStretch(0)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(holder)
    return scroll
