"""The store's errors, in plain words for the user: what went wrong and what to do."""

from __future__ import annotations

import errno
import sqlite3


class ProjectError(RuntimeError):
    """A project cannot be opened or changed as asked; the message says why."""


class SchemaError(ProjectError):
    """The file is not a PromptStudio project this version can open."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether writing failed for want of space (or a limit on file size)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and "disk is full" in str(exc).lower()


def is_write_failure(exc: BaseException) -> bool:
    """Whether saving failed because of the disk, not of the data: it is full, or refuses
    the write (SQLite reports a file grown past a size limit as a disk I/O error)."""
    if is_disk_full(exc):
        return True
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "disk i/o error" in str(exc).lower()


def is_damaged(exc: BaseException) -> bool:
    """Whether SQLite found the file damaged while reading it: damage the checks on opening
    (`project.file_problem`) did not reach, such as the model-call cache's."""
    return isinstance(exc, sqlite3.DatabaseError) and any(
        words in str(exc).lower() for words in ("malformed", "not a database"))
