"""The workspace: a folder of project files, one `<name>.sqlite` per project."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from promptstudio.paths import workspace_dir
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import ProjectSettings

PROJECT_SUFFIX = ".sqlite"
_UNSAFE = re.compile(r"[^\w\- .]+", re.UNICODE)


def file_stem(name: str) -> str:
    """A file-system-safe stem for a project name (the name itself is stored inside)."""
    stem = _UNSAFE.sub("_", name.strip()).strip(" .")
    if not any(ch.isalnum() for ch in stem):
        raise ProjectError("A project needs a name with at least one letter or digit.")
    return stem[:100]


@dataclass(frozen=True)
class ProjectSummary:
    name: str
    path: Path
    examples: int


@dataclass(frozen=True)
class Unreadable:
    """A file in the workspace that could not be opened as a project, and why."""

    path: Path
    reason: str


def summary(project: Project) -> ProjectSummary:
    """A project's name, file and size, as `list` shows them."""
    return ProjectSummary(project.name, project.path, sum(project.split_counts().values()))


T = TypeVar("T")


class Workspace:
    """Lists, creates, opens, renames, copies and deletes projects in one folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else workspace_dir()
        self.folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, name: str) -> Path:
        return self.folder / (file_stem(name) + PROJECT_SUFFIX)

    def exists(self, name: str) -> bool:
        return self.path_for(name).exists()

    def list(self) -> list[ProjectSummary]:
        """The projects that open; `scan` also names the files that do not."""
        return self.scan()[0]

    def scan(self, summarize: Callable[[Project], T] = summary
             ) -> tuple[list[T], list[Unreadable]]:
        """Every project file of the folder, each opened once: `summarize` of those that
        open, and those that do not (or cannot be summarized), each with the reason. One
        damaged file never hides the others."""
        found, unreadable = [], []
        for path in sorted(self.folder.glob("*" + PROJECT_SUFFIX)):
            try:
                project = Project.open(path)
            except Exception as exc:  # whatever is wrong, it is this file's alone
                unreadable.append(Unreadable(path, _reason(exc)))
                continue
            try:
                found.append(summarize(project))
            except Exception as exc:
                unreadable.append(Unreadable(path, _reason(exc)))
            finally:
                project.close()
        return found, unreadable

    def create(self, settings: ProjectSettings) -> Project:
        path = self.path_for(settings.name)
        if path.exists():
            raise ProjectError(
                f"A project named {settings.name!r} already exists. Choose another name."
            )
        return Project.create(path, settings)

    def open(self, name_or_path: str | Path) -> Project:
        """Open by project name, or by the path of a project file anywhere."""
        candidate = Path(name_or_path)
        if candidate.suffix == PROJECT_SUFFIX and candidate.exists():
            return Project.open(candidate)
        path = self.path_for(str(name_or_path))
        if not path.exists():
            known = ", ".join(p.name for p in self.list()) or "none yet"
            raise ProjectError(
                f"There is no project named {str(name_or_path)!r}. Projects: {known}."
            )
        return Project.open(path)

    def rename(self, name: str, new_name: str) -> Path:
        target = self.path_for(new_name)
        if target.exists():
            raise ProjectError(f"A project named {new_name!r} already exists.")
        project = self.open(name)
        try:
            project.update_settings(name=new_name)
            project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            project.close()
        source = self.path_for(name)
        source.rename(target)
        return target

    def duplicate(self, name: str, new_name: str) -> Path:
        target = self.path_for(new_name)
        if target.exists():
            raise ProjectError(f"A project named {new_name!r} already exists.")
        project = self.open(name)
        try:
            _backup(project, target)
        finally:
            project.close()
        duplicate = Project.open(target)
        try:
            duplicate.update_settings(name=new_name)
        finally:
            duplicate.close()
        return target

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        if not path.exists():
            raise ProjectError(f"There is no project named {name!r}.")
        for extra in ("-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
        path.unlink()

    def export_file(self, name: str, destination: str | Path) -> Path:
        """Copy a whole project to one self-contained file (for moving it elsewhere)."""
        destination = Path(destination)
        project = self.open(name)
        try:
            _backup(project, destination)
        finally:
            project.close()
        return destination


def _reason(error: Exception) -> str:
    """Why a file could not be listed, in words (the store's own errors say it already)."""
    if isinstance(error, ProjectError):
        return str(error)
    return f"it could not be read ({type(error).__name__}: {error})"


def _backup(project: Project, target: Path) -> None:
    """Copy a consistent snapshot of a project, WAL contents included, to `target`."""
    copy = sqlite3.connect(str(target))
    try:
        with copy:
            project.conn.backup(copy)
    finally:
        copy.close()
