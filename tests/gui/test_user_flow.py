"""The whole path a user takes, on the real bundled model: from a CSV file to an exported,
better prompt, without a terminal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from promptstudio.paths import resource

LABELS = "billing, shipping, technical, account"


def tickets_csv(folder: Path) -> Path:
    """The support-tickets sample as a spreadsheet export, with its own column names."""
    rows = [json.loads(line) for line in
            resource("samples", "support_tickets.jsonl").read_text().splitlines()]
    path = folder / "customer messages.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["message", "team", "set"])
        writer.writerows([row["input"], row["output"], row["split"]] for row in rows)
    return path


def save_as(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda parent, title, suggested, filters, selected, options:
                        (str(path), selected))


@pytest.mark.model
def test_from_a_csv_file_to_an_exported_better_prompt(qtbot, window, state, tmp_path,
                                                      monkeypatch, run_in_window):
    # 1. A new project from a CSV file, mapping its columns.
    dialog = window.sidebar.new_project()
    dialog.source.load_file(tickets_csv(tmp_path))
    qtbot.waitUntil(lambda: dialog.source.table is not None, timeout=10_000)
    dialog.source.input_combo.setCurrentText("message")
    dialog.source.output_combo.setCurrentText("team")
    dialog.source.split_combo.setCurrentText("set")
    assert "32 train, 32 dev, 12 test" in dialog.source.report_label.text()
    # Four teams, each many times: the dialog offers to score by choosing among them.
    assert dialog.scoring.chosen_metric() == "label"
    assert set(dialog.scoring.chosen_labels()) == set(LABELS.split(", "))
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: state.project is not None, timeout=10_000)
    assert state.project.split_counts() == {"train": 32, "dev": 32, "test": 12}

    # 2. The task: an instruction; answers are chosen among the four teams.
    page = window.task_page
    page.instruction_edit.setPlainText("Which team should handle this message?")
    page.instruction_edit.editingFinished.emit()
    assert page.scoring.chosen_metric() == "label"
    settings = state.project.settings
    assert settings.metric == "label" and len(settings.labels) == 4
    assert settings.instruction == "Which team should handle this message?"

    # 3. A quick demonstration search on the bundled model, started with F5, with fewer
    # picks typed into its advanced settings to keep the suite's time: the path is what is
    # under test here, the search's gain in test_samples.
    run_id = run_in_window("demos", timeout=900_000,
                           settings={"random_sets": 2, "bootstrapped_sets": 1,
                                     "layouts": 1, "orders": 1})

    # 4. The results: points in the plot, rows in the table, a diff in the detail pane.
    results = window.results_page
    assert len(results.plot.scatters[run_id].data) >= 2
    assert results.model.rowCount() == len(state.project.candidates(run_id))
    child = next(c for c in results.model.candidates() if c.operation != "start")
    results.select_candidate(child.id)
    assert results.detail.diff_view.toPlainText().strip()
    outcome = state.project.run(run_id)
    best_test = state.project.mean_score(outcome.best_candidate_id, "test")[0]
    start = next(c for c in state.project.candidates(run_id) if c.operation == "start")
    assert best_test >= state.project.mean_score(start.id, "test")[0]

    # 5. Export the best prompt as a prompt card and as JSON.
    save_as(monkeypatch, tmp_path / "best.md")
    results.export_prompt()
    card = (tmp_path / "best.md").read_text()
    assert "Which team should handle this message?" in card and "| test |" in card
    save_as(monkeypatch, tmp_path / "best.json")
    results.export_prompt()
    exported = json.loads((tmp_path / "best.json").read_text())
    assert exported["metric"] == "label"
    assert exported["instruction"] == "Which team should handle this message?"
    best = state.project.candidate(outcome.best_candidate_id)
    assert len(exported["demos"]) == len(best.demo_ids) and "test" in exported["scores"]
