"""Placeholder: the projects sidebar (being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMenu, QVBoxLayout, QWidget

from promptstudio.gui.state import AppState


class ProjectsSidebar(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        QVBoxLayout(self).addWidget(QLabel("Projects"))

    def new_project(self) -> None: ...

    def open_project_file(self) -> None: ...

    def export_project(self) -> None: ...

    def fill_recent_menu(self, menu: QMenu) -> None: ...

    def restore_last_project(self) -> None: ...
