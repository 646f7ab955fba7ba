"""Placeholder: the Run page (being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from promptstudio.gui.state import AppState


class RunPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        QVBoxLayout(self).addWidget(QLabel("Run"))

    def start_run(self) -> None: ...

    def pause_run(self) -> None: ...

    def stop_run(self) -> None: ...
