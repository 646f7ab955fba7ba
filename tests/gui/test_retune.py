"""Re-tuning the best prompt for another model: compare, then switch and start a run."""

from __future__ import annotations

import threading

import pytest
from named_models import NamedModel, first_letter, knows_nothing, letters_project
from PySide6.QtWidgets import QFileDialog, QLabel

from promptstudio.dataio import Row
from promptstudio.gui.retune import RetuneDialog
from promptstudio.llm.config import ModelConfig
from promptstudio.store.records import ProjectSettings

NEW_SERVER = "http://new-model:8080/v1"
NEW_MODEL = ModelConfig(kind="server", base_url=NEW_SERVER)


@pytest.fixture
def letters(state):
    letters_project(state.workspace).close()
    return state.open_project("letters")


@pytest.fixture
def models(state, letters):
    """The current model knows the task; the new one answers '?' to everything."""
    old, new = NamedModel("old", first_letter), NamedModel("new", knows_nothing)
    state.use_backend(letters.settings.task_model, old)
    state.use_backend(NEW_MODEL, new)
    return old, new


def open_dialog(qtbot, state) -> RetuneDialog:
    dialog = RetuneDialog(state)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def choose_server(dialog: RetuneDialog, address: str = NEW_SERVER) -> None:
    dialog.choice.server_option.click()
    dialog.choice.url_field.setText(address)
    dialog.choice.url_field.editingFinished.emit()


def cell(dialog: RetuneDialog, split: str, row: int) -> str:
    """A score in the table: row 1 is the current model, 2 the new one, 3 the change."""
    return dialog.scores_box.findChild(QLabel, f"score_{split}_{row}").text()


def test_the_starting_instruction_is_carried_when_nothing_was_scored(qtbot, state, letters):
    dialog = open_dialog(qtbot, state)
    assert dialog.prompt_text.toPlainText() == "Give the first letter."
    assert "starting instruction" in dialog.prompt_source.plain
    assert dialog.method.currentData() == "demos"
    assert "This is the model in use now" in dialog.switch_note.plain
    assert not dialog.score_button.isEnabled()
    assert not dialog.switch_button.isEnabled()


def test_scores_of_both_models_are_shown_side_by_side(qtbot, state, models):
    dialog = open_dialog(qtbot, state)
    choose_server(dialog)
    assert dialog.score_button.isEnabled()
    dialog.score_button.click()
    assert not dialog.score_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=30_000)
    assert [cell(dialog, "dev", row) for row in (1, 2, 3)] == ["100%", "0%", "-100 points"]
    assert [cell(dialog, "test", row) for row in (1, 2, 3)] == ["100%", "0%", "-100 points"]
    texts = [label.text() for label in dialog.scores_box.findChildren(QLabel)]
    assert {"Dev (6 rows)", "Test (4 rows)", "Change"} <= set(texts)
    assert "scores 100 points lower" in dialog.verdict.plain
    assert dialog.verdict.tone == "warn"
    assert dialog.score_button.isEnabled()


def test_switching_sets_the_model_and_prompt_and_starts_a_run(qtbot, state, models, answers):
    dialog = open_dialog(qtbot, state)
    choose_server(dialog)
    dialog.method.setCurrentIndex(dialog.method.findData("ape"))
    with qtbot.waitSignal(state.runs.ended, timeout=60_000):
        run_id = dialog.switch_and_run()
    assert run_id is not None
    settings = state.project.settings
    assert settings.task_model == NEW_MODEL
    assert settings.optimizer_model == NEW_MODEL  # it was the same as the task model
    assert settings.instruction == "Give the first letter."
    run = state.project.run(run_id)
    assert (run.method, run.preset) == ("ape", "quick")
    assert answers.asked == []  # the starting instruction stayed the same: nothing lost
    assert not dialog.isVisible()


def test_replacing_the_starting_instruction_asks_first(qtbot, state, letters, models, answers):
    from promptstudio.evaluation import Evaluator

    best = letters.add_candidate("Reply with the word's first letter.")
    Evaluator(letters, models[0]).evaluate(best, letters.examples("dev"))
    dialog = open_dialog(qtbot, state)
    assert dialog.prompt_text.toPlainText() == "Reply with the word's first letter."
    assert "the project's best prompt" in dialog.prompt_source.plain
    choose_server(dialog)
    answers.replies = [False]
    assert dialog.switch_and_run() is None
    assert "starting instruction is replaced" in answers.asked[0]
    assert state.project.settings.task_model.is_bundled
    assert state.project.settings.instruction == "Give the first letter."


def test_stop_keeps_what_was_scored(qtbot, state, letters, models):
    release = threading.Event()

    def slow(prompt: str) -> str:
        release.wait(5)
        return "?"

    models[1].reply = slow
    dialog = open_dialog(qtbot, state)
    choose_server(dialog)
    dialog.score_button.click()
    qtbot.waitUntil(lambda: dialog.stop_button.isVisible())
    dialog.stop_button.click()
    release.set()
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=30_000)
    assert dialog.comparison.cancelled
    assert dialog.verdict.plain.startswith("Scoring was stopped")


def test_a_project_without_a_prompt_explains_what_to_do(qtbot, state):
    state.workspace.create(ProjectSettings(name="blank")).close()
    state.open_project("blank")
    dialog = open_dialog(qtbot, state)
    assert "no prompt yet" in dialog.prompt_source.plain
    choose_server(dialog)
    assert not dialog.score_button.isEnabled()
    assert not dialog.switch_button.isEnabled()


def test_no_switch_while_a_run_is_going(qtbot, state, models, monkeypatch):
    monkeypatch.setattr(type(state.runs), "running", property(lambda self: True))
    dialog = open_dialog(qtbot, state)
    choose_server(dialog)
    assert not dialog.switch_button.isEnabled()
    assert "A run is going" in dialog.switch_note.plain


@pytest.mark.model
def test_a_real_model_rescores_a_tiny_project(qtbot, state, bundled_model, monkeypatch):
    """The bundled model given as a file is another model choice: same weights, so the
    same scores; the point is that both really run and the table fills in."""
    project = state.workspace.create(ProjectSettings(
        name="tiny", instruction="Answer with the plural of the word.", metric="contains"))
    project.add_examples([Row("cat", "cats", ("cats",), "train"),
                          Row("dog", "dogs", ("dogs",), "dev"),
                          Row("car", "cars", ("cars",), "dev"),
                          Row("pen", "pens", ("pens",), "test")])
    project.close()
    state.open_project("tiny")
    dialog = open_dialog(qtbot, state)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(bundled_model), "")))
    dialog.choice.choose_button.click()
    qtbot.waitUntil(dialog.score_button.isEnabled, timeout=30_000)
    assert dialog.new_model() == ModelConfig(path=str(bundled_model))
    dialog.score_button.click()
    qtbot.waitUntil(lambda: dialog.comparison is not None, timeout=300_000)
    dev = dialog.comparison.splits[0]
    assert (dev.examples, dev.old_count, dev.new_count) == (2, 2, 2)
    assert dev.old_score == dev.new_score
    assert cell(dialog, "dev", 1) == cell(dialog, "dev", 2)
    assert cell(dialog, "dev", 3) == "+0 points"
    assert "about as well" in dialog.verdict.plain
