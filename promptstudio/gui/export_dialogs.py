"""Saving prompts and run reports as files, asking before anything is replaced.

The file dialog is told not to ask about overwriting (`DontConfirmOverwrite`); the
question goes through `messages.ask` instead, so that it reads the same on every system
and tests can answer it. Suggested names come from the project's name, made safe for any
file system.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from promptstudio import reports, workflows
from promptstudio.best_prompt import best_prompt
from promptstudio.gui import messages
from promptstudio.gui.trajectory_plot import TrajectoryPlot
from promptstudio.reports import RunResults
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate

PROMPT_FORMATS = (
    ("md", "Prompt card, with scores (*.md)"),
    ("txt", "The prompt alone, as plain text (*.txt)"),
    ("json", "Prompt card as JSON (*.json)"),
    ("yaml", "Prompt card as YAML (*.yaml *.yml)"),
    ("messages", "Chat messages for an OpenAI-style API (*.json)"),
    ("system", "The system prompt alone, with its examples (*.txt)"),
    ("modelfile", "Ollama Modelfile (Modelfile)"),
)
CHOSEN_BY_FILTER = {"messages": ".json", "system": ".txt", "modelfile": ""}
"""Formats whose files share a suffix with another's (or have none): the filter chosen
says which, and gives the suffix a name lacks."""
REPORT_FORMATS = (
    ("csv", "Spreadsheet of every prompt tried (*.csv)"),
    ("png", "Picture of the score plot (*.png)"),
)
SUFFIX_ALIASES = {"yml": "yaml"}

_last_folder: Path | None = None


def ask_save_path(parent: QWidget, title: str, suggested_name: str,
                  formats: Sequence[tuple[str, str]]) -> tuple[Path, str] | None:
    """Where to save and in which format, or None if the user cancelled. A name without
    a known suffix gets the chosen filter's; an existing file is replaced only if the user
    says so."""
    folder = _last_folder or Path.home()
    suffix = Path(suggested_name).suffix.lstrip(".")
    selected = next((label for key, label in formats if key == suffix), formats[0][1])
    chosen, chosen_filter = QFileDialog.getSaveFileName(
        parent, title, str(folder / suggested_name), ";;".join(label for _, label in formats),
        selected, QFileDialog.Option.DontConfirmOverwrite)
    if not chosen:
        return None
    path = Path(chosen)
    picked = next((key for key, label in formats if label == chosen_filter), None)
    if picked in CHOSEN_BY_FILTER:
        suffix = CHOSEN_BY_FILTER[picked]
        if suffix and path.suffix.lower() != suffix:
            path = path.with_name(path.name + suffix)
        return _confirmed(parent, path, picked)
    known = {key for key, _ in formats} | {k for k, v in SUFFIX_ALIASES.items()
                                          if v in {key for key, _ in formats}}
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in known:
        fmt = next((key for key, label in formats if label == chosen_filter), formats[0][0])
        path = path.with_name(f"{path.name}.{fmt}")
    return _confirmed(parent, path, SUFFIX_ALIASES.get(fmt, fmt))


def _confirmed(parent: QWidget, path: Path, fmt: str) -> tuple[Path, str] | None:
    """`path` and `fmt`, once the user has said an existing file may be replaced."""
    global _last_folder
    if path.exists() and not messages.ask(
            parent, "Replace the file?",
            f"“{path.name}” already exists in {path.parent}.\n\nReplace it?",
            yes="Replace", no="Cancel"):
        return None
    _last_folder = path.parent
    return path, fmt


def export_prompt(parent: QWidget, project: Project,
                  candidate: Candidate | None = None) -> Path | None:
    """Save a prompt (by default the project's best prompt, `best_prompt`)."""
    chosen = best_prompt(project)
    best = chosen.candidate if chosen else None
    candidate = candidate or best
    if candidate is None:
        messages.inform(parent, "Nothing to export yet",
                        "No prompt has been scored yet. Run an optimization on the Run page; "
                        "its best prompt can then be exported from here.")
        return None
    is_best = best is not None and candidate.id == best.id
    what = "best-prompt" if is_best else f"prompt-{candidate.id}"
    title = "Export the best prompt" if is_best else f"Export prompt #{candidate.id}"
    target = ask_save_path(parent, title, reports.export_name(project.name, what, "md"),
                           PROMPT_FORMATS)
    if target is None:
        return None
    path, fmt = target
    try:
        return workflows.export_best(project, path, fmt, candidate)
    except Exception as exc:
        messages.show_error(parent, exc)
        return None


def export_report(parent: QWidget, project: Project, runs: Sequence[RunResults],
                  plot: TrajectoryPlot) -> Path | None:
    """Save the shown runs' candidates as a spreadsheet, or the score plot as a picture."""
    if not runs:
        messages.inform(parent, "No run to report on",
                        "Tick at least one run in the list of runs; the report covers the "
                        "runs shown in the plot.")
        return None
    target = ask_save_path(parent, "Export the run report",
                           reports.export_name(project.name, "candidates", "csv"),
                           REPORT_FORMATS)
    if target is None:
        return None
    path, fmt = target
    try:
        if fmt == "png":
            return plot.save_png(path)
        chosen = project.chosen_candidate()
        rows = reports.candidate_rows(runs, chosen.id if chosen else None)
        return reports.write_csv(rows, path)
    except Exception as exc:
        messages.show_error(parent, exc)
        return None


def export_plot(parent: QWidget, project: Project, plot: TrajectoryPlot) -> Path | None:
    """Save the score plot as a PNG picture."""
    target = ask_save_path(parent, "Save the score plot as a picture",
                           reports.export_name(project.name, "scores", "png"),
                           REPORT_FORMATS[1:])
    if target is None:
        return None
    try:
        return plot.save_png(target[0])
    except Exception as exc:
        messages.show_error(parent, exc)
        return None
