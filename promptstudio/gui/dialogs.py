"""Placeholder: About, keyboard shortcuts and preferences (being written)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def show_about(parent: QWidget) -> None: ...


def show_shortcuts(parent: QWidget) -> None: ...


def show_preferences(parent: QWidget) -> None: ...
