"""Trouble from the machine reaches the user as a message, and the project stays whole."""

from __future__ import annotations

import sqlite3

from PySide6.QtWidgets import QMessageBox

from promptstudio.errors import user_message
from promptstudio.store.project import Project


def shown(widget) -> list[str]:
    return [box.text() for box in widget.window().findChildren(QMessageBox)]


def test_a_full_disk_is_said_plainly_and_the_settings_stay_as_they_were(
        window, state, sample_project, monkeypatch):
    before = state.project.settings

    def full(self, **changes):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Project, "update_settings", full)
    page = window.task_page
    page.instruction_edit.setPlainText("A new instruction.")
    page.instruction_edit.editingFinished.emit()
    texts = shown(page)
    assert texts and "disk is full" in texts[-1] and "Traceback" not in texts[-1]
    monkeypatch.undo()
    assert state.project.settings == before
    assert state.project.integrity_check() == "ok"


def test_unexpected_errors_name_the_log_file_instead_of_a_traceback():
    text = user_message(KeyError("oops"), "/tmp/promptstudio.log")
    assert "KeyError" in text and "/tmp/promptstudio.log" in text
    assert "Traceback" not in text
    assert "not allowed to use /x" in user_message(PermissionError(13, "denied", "/x"))
