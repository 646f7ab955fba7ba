"""Where PromptStudio keeps things: the workspace, the models, the shipped resources."""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

import platformdirs

APP_NAME = "PromptStudio"
HOME_VARIABLE = "PROMPTSTUDIO_HOME"


def app_home() -> Path:
    """The data folder: `$PROMPTSTUDIO_HOME` if set (tests always set it), else the platform's."""
    override = os.environ.get(HOME_VARIABLE)
    if override:
        home = Path(override)
    else:
        home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def workspace_dir() -> Path:
    """The folder holding one SQLite file per project."""
    folder = app_home() / "projects"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def models_dir() -> Path:
    """The data folder's `models/`: where the bundled model is assembled in a source install."""
    folder = app_home() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_frozen() -> bool:
    """True in the built app (PyInstaller), False when run from a Python environment."""
    return bool(getattr(sys, "frozen", False))


def app_dir() -> Path | None:
    """The folder holding the built app's executable; None when not running as a built app."""
    if not is_frozen():
        return None
    return Path(sys.executable).resolve().parent


def shipped_models_dirs() -> list[Path]:
    """Where a built app carries its model: `models/` beside the executable (Windows, Linux);
    in a macOS .app the executable is in Contents/MacOS, the model in Contents/Resources."""
    folder = app_dir()
    if folder is None:
        return []
    candidates = [folder / "models"]
    if folder.name == "MacOS" and folder.parent.name == "Contents":
        candidates.append(folder.parent / "Resources" / "models")
    return candidates


def model_search_dirs() -> list[Path]:
    """Every folder looked in for the bundled model, in order: beside the executable, then
    the data folder."""
    return [*shipped_models_dirs(), models_dir()]


def resources_dir() -> Path:
    """The shipped `resources/` folder, in a source checkout and in an installed copy alike."""
    return Path(str(files("promptstudio.resources")))


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
