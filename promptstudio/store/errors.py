"""The store's errors, in plain words for the user: what went wrong and what to do."""

from __future__ import annotations


class ProjectError(RuntimeError):
    """A project cannot be opened or changed as asked; the message says why."""


class SchemaError(ProjectError):
    """The file is not a PromptStudio project this version can open."""
