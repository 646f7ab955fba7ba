"""Projects in SQLite: one file per project, in a workspace folder."""

from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import (
    Candidate,
    Evaluation,
    Example,
    ProjectSettings,
    Run,
)
from promptstudio.store.schema import SchemaError
from promptstudio.store.workspace import ProjectSummary, Workspace

__all__ = [
    "Candidate",
    "Evaluation",
    "Example",
    "Project",
    "ProjectError",
    "ProjectSettings",
    "ProjectSummary",
    "Run",
    "SchemaError",
    "Workspace",
]
