"""Placeholder: look and feel (being written)."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication


def apply(app: QApplication, settings: QSettings) -> None: ...
