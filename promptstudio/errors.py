"""What went wrong, in words a user can act on: one place for the CLI and the window.

The engine's own errors (bad data, a missing model, a server that will not answer) carry
their remedy in their message already. Everything else is a bug or the machine's trouble
(a full disk, a locked file); for those the user gets a short explanation and where the
details were logged, never a traceback.
"""

from __future__ import annotations

import sqlite3

from promptstudio.dataio import DataError
from promptstudio.llm.base import BackendError
from promptstudio.store.errors import is_damaged, is_disk_full
from promptstudio.store.project import ProjectError
from promptstudio.store.schema import SchemaError
from promptstudio.templates import TemplateError

USER_ERRORS = (ProjectError, DataError, BackendError, SchemaError, TemplateError, ValueError)
"""Errors whose message is written for the user."""


def user_message(exc: BaseException, log_file: str | None = None) -> str:
    """One or two sentences: what happened and what to do."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    if is_disk_full(exc):
        return ("The disk is full, so the project could not be saved. Finished work is "
                "kept; free some space and try again.")
    if is_damaged(exc):
        return (f"The project file is damaged (SQLite says: {exc}). PromptStudio has not "
                "changed it. If you have a copy of it (a backup, or the file you moved it "
                "from), put the copy in its place.")
    if isinstance(exc, PermissionError):
        return (f"PromptStudio is not allowed to use {exc.filename or 'a file'}. Choose "
                "another place, or check the file's permissions.")
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or 'A file'} does not exist (any more). Choose another file."
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return ("The project file is busy in another program. Close it there and try "
                "again.")
    where = f" Details are in the log file {log_file}." if log_file else ""
    return (f"Something unexpected went wrong ({type(exc).__name__}: {exc}). Finished work "
            f"is kept.{where}")
