"""Placeholder: the Models page (being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from promptstudio.gui.state import AppState


class ModelPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        QVBoxLayout(self).addWidget(QLabel("Models"))
