"""Messages to the user: errors in plain words, questions before anything is lost.

Errors open a window-modal box without blocking (`open`, not `exec`), so a worker's
failure never stalls the event loop; questions block, since the answer decides what
happens next. Tests find the boxes among the window's children, or answer questions
by replacing `ask`.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from promptstudio import applog
from promptstudio.errors import USER_ERRORS, user_message

log = logging.getLogger(__name__)


def show_error(parent: QWidget, error: BaseException | str, title: str = "PromptStudio"
               ) -> QMessageBox:
    """Say what went wrong and what to do; log the details of anything unexpected."""
    if isinstance(error, BaseException):
        if not isinstance(error, USER_ERRORS):
            log.error("Unexpected error shown to the user", exc_info=error)
        text = user_message(error, str(applog.log_file()))
    else:
        text = error
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("errorMessage")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def ask(parent: QWidget, title: str, question: str, *, yes: str = "Yes", no: str = "Cancel"
        ) -> bool:
    """A yes/no question; True when the user chose `yes`."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question,
                      QMessageBox.StandardButton.NoButton, parent)
    accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(accept)
    box.exec()
    return box.clickedButton() is accept


def inform(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, text,
                      QMessageBox.StandardButton.Ok, parent)
    box.open()
    return box
