"""Placeholder: the Results page (being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from promptstudio.gui.state import AppState


class ResultsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        QVBoxLayout(self).addWidget(QLabel("Results"))

    def export_prompt(self) -> None: ...

    def export_report(self) -> None: ...
