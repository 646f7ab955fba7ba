"""The Task and data page: task settings saved when left, rows edited with undo."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QHeaderView, QPlainTextEdit, QTableView

from promptstudio.dataio import Row
from promptstudio.gui.data_page import TaskDataPage
from promptstudio.gui.examples_model import ExamplesModel
from promptstudio.gui.import_dialog import PreviewModel
from promptstudio.gui.scoring import parse_labels
from promptstudio.gui.template_editor import PROBLEM_RED
from promptstudio.store import Project, ProjectSettings


@pytest.fixture
def page(qtbot, state, sample_project, answers) -> TaskDataPage:
    widget = TaskDataPage(state)
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    return widget


def finish_editing(edit) -> None:
    """What leaving a text box does: it tells the page the edit is finished."""
    edit.document().setModified(True)
    edit.editingFinished.emit()


def cell(page: TaskDataPage, row: int, column: int) -> str:
    return page.model.data(page.model.index(row, column), Qt.ItemDataRole.EditRole)


def select_rows(page: TaskDataPage, rows: list[int]) -> None:
    selection = page.table.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(page.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select
                         | QItemSelectionModel.SelectionFlag.Rows)


# -- the task -------------------------------------------------------------------------------


def test_the_page_shows_the_projects_task(page, state):
    settings = state.project.settings
    assert page.instruction_edit.toPlainText() == settings.instruction
    assert page.template_editor.template().text == settings.template
    assert page.scoring.chosen_metric() == "normalized_exact"
    assert page.scoring.metric_help.text().startswith("The answer must be an accepted answer")
    assert not page.template_editor.problems_label.isVisible()


def test_a_template_without_input_is_flagged_and_not_saved(qtbot, page, state):
    saved = state.project.settings.template
    page.template_editor.template_edit.setPlainText("Instruction: {instruction}\nAnswer:")
    problems = page.template_editor.problems_label
    assert problems.isVisible()
    assert "no {input} slot" in problems.text()
    assert PROBLEM_RED in problems.text()

    finish_editing(page.template_editor.template_edit)
    assert state.project.settings.template == saved
    assert "Not saved yet" in problems.text()

    page.template_editor.template_edit.setPlainText("Instruction: {instruction}\n"
                                                    "{demos}Review: {input}\nAnswer:")
    finish_editing(page.template_editor.template_edit)
    assert state.project.settings.template.endswith("Review: {input}\nAnswer:")
    assert not problems.isVisible()


def test_unknown_slots_are_advice_not_errors(page, state):
    page.template_editor.template_edit.setPlainText("{instruction}\n{imput} {input}")
    text = page.template_editor.problems_label.text()
    assert "Did you mean {input}?" in text
    assert PROBLEM_RED not in text
    finish_editing(page.template_editor.template_edit)
    assert state.project.settings.template == "{instruction}\n{imput} {input}"


def test_text_is_saved_when_the_user_leaves_the_box_not_on_each_key(qtbot, page, state):
    edit = page.instruction_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "Answer positive or negative.")
    assert state.project.settings.instruction != "Answer positive or negative."
    with qtbot.waitSignal(state.settings_changed):
        page.description_edit.setFocus()
        edit.clearFocus()
    assert state.project.settings.instruction == "Answer positive or negative."


def test_choosing_the_label_metric_asks_for_labels(qtbot, page, state):
    scoring = page.scoring
    index = scoring.metric_combo.findData("label")
    scoring.metric_combo.setCurrentIndex(index)
    scoring.metric_combo.activated.emit(index)
    assert state.project.settings.metric == "label"
    assert scoring.labels_row.isVisible()
    scoring.labels_edit.setText("positive, negative, positive, ")
    scoring.labels_edit.editingFinished.emit()
    assert state.project.settings.labels == ("positive", "negative")
    assert scoring.labels_edit.text() == "positive, negative"
    assert "choose" in scoring.labels_row.findChildren(type(scoring.metric_help))[0].text().lower()


def test_labels_are_read_as_typed():
    assert parse_labels(" yes ,no,, yes") == ("yes", "no")


def test_settings_changed_elsewhere_show_up(page, state):
    state.update_settings(instruction="Classify the review.")
    assert page.instruction_edit.toPlainText() == "Classify the review."


# -- the rows -------------------------------------------------------------------------------


def test_the_table_shows_every_row_and_filters_by_split(page, state):
    assert page.model.rowCount() == 40
    assert page.counts_label.text() == "40 examples: 20 train · 10 dev · 10 test"
    page.split_filter.setCurrentIndex(page.split_filter.findData("dev"))
    assert page.model.rowCount() == 10
    assert {cell(page, row, 2) for row in range(10)} == {"dev"}
    assert page.split_filter.currentText() == "Dev (10)"


def test_edit_a_cell_then_undo_and_redo(qtbot, page, state):
    first = state.project.examples()[0]
    with qtbot.waitSignal(state.examples_changed):
        assert page.model.setData(page.model.index(0, 1), "negative")
    assert state.project.examples(ids=[first.id])[0].output == "negative"
    assert cell(page, 0, 1) == "negative"

    page.undo_action.trigger()
    assert state.project.examples(ids=[first.id])[0] == first
    assert cell(page, 0, 1) == first.output
    page.redo_action.trigger()
    assert cell(page, 0, 1) == "negative"


def test_edit_a_cell_through_its_editor(qtbot, page, state):
    index = page.model.index(2, 0)
    page.table.setCurrentIndex(index)
    page.table.edit(index)
    editor = page.table.findChild(QPlainTextEdit)
    assert editor is not None
    editor.setPlainText("Typed again.")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert cell(page, 2, 0) == "Typed again."
    assert page.undo_action.text() == "Undo Edit input of row 3"


def test_keys_in_the_window_delete_rows_undo_and_cancel_edits(qtbot, window, state,
                                                             sample_project):
    page = window.task_page
    table = page.table
    first = state.project.examples()[0]
    table.setFocus()
    table.selectRow(0)
    qtbot.keyClick(table, Qt.Key.Key_Delete)
    assert page.model.rowCount() == 39
    qtbot.keyClick(table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert page.model.rowCount() == 40

    index = page.model.index(0, 0)
    table.setCurrentIndex(index)
    table.edit(index)
    editor = table.findChild(QPlainTextEdit)
    editor.setFocus()
    editor.moveCursor(editor.textCursor().MoveOperation.Start)
    qtbot.keyClick(editor, Qt.Key.Key_Delete)  # a letter, not the row
    assert editor.toPlainText() == first.input[1:]
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert not editor.isVisible() or table.state() != table.State.EditingState
    assert page.model.rowCount() == 40
    assert cell(page, 0, 0) == first.input


def test_a_refused_edit_tells_why_and_changes_nothing(qtbot, page, state, monkeypatch):
    shown = []
    monkeypatch.setattr("promptstudio.gui.messages.show_error",
                        lambda parent, error, *a: shown.append(str(error)))
    assert not page.model.setData(page.model.index(0, 0), "   ")
    assert "needs an input" in shown[0]
    assert not page.model.undo_stack.canUndo()


def test_delete_rows_then_undo_restores_the_same_rows(qtbot, page, state):
    before = state.project.examples()
    select_rows(page, [1, 2, 5])
    with qtbot.waitSignal(state.examples_changed):
        page.delete_selected()
    assert page.model.rowCount() == 37
    assert [e.id for e in state.project.examples()] == [
        e.id for i, e in enumerate(before) if i not in (1, 2, 5)]

    page.undo_action.trigger()
    assert state.project.examples() == before
    assert page.model.rowCount() == 40
    assert cell(page, 2, 0) == before[2].input


def test_deleting_a_demonstration_says_so_first(qtbot, page, state, answers):
    project = state.project
    shown = project.examples()[1]
    project.add_candidate("Say the sentiment.", [shown.id])
    select_rows(page, [0])
    with qtbot.waitSignal(state.examples_changed):
        page.delete_selected()
    assert answers.asked == [], "no prompt shows that row"
    answers.replies = [False]
    select_rows(page, [0])  # the shown row is now first
    page.delete_selected()
    assert "shown as a demonstration in 1 prompt" in answers.asked[0]
    assert shown.id in project.example_ids(), "kept: the user said no"


def test_inputs_in_two_splits_are_pointed_out(page, state):
    from promptstudio.dataio import Row

    assert not page.overlap_note.isVisible()
    row = state.project.examples("train")[0]
    state.project.add_examples([Row(row.input, row.output, row.answers, "test")])
    state.examples_changed.emit()
    assert page.overlap_note.isVisible()
    assert "1 input is in more than one split (train and test)" in page.overlap_note.text()


def test_add_a_row_then_undo(qtbot, page, state):
    dialog = page.add_row()
    dialog.input_edit.setPlainText("The lid squeaks.")
    dialog.output_edit.setText("negative")
    dialog.answers_edit.setText("neg | bad")
    dialog.add()
    added = state.project.examples()[-1]
    assert (added.input, added.answers, added.split) == ("The lid squeaks.",
                                                          ("negative", "neg", "bad"), "train")
    assert page.model.rowCount() == 41
    page.undo_action.trigger()
    assert page.model.rowCount() == 40
    page.redo_action.trigger()
    assert state.project.examples()[-1] == added


def test_resplit_asks_first_and_can_be_undone(qtbot, page, state, answers):
    before = state.project.example_splits()
    dialog = page.resplit()
    dialog.set_shares(50, 25, 25)
    assert dialog.preview.text() == "Gives 20 train · 10 dev · 10 test."

    answers.replies = [False]
    dialog.accept()
    assert "Deal all 40 rows again" in answers.asked[-1]
    assert state.project.example_splits() == before

    page._resplit({"train": 50, "dev": 25, "test": 25}, 7)
    assert state.project.example_splits() != before
    assert state.project.split_counts() == {"train": 20, "dev": 10, "test": 10}
    page.undo_action.trigger()
    assert state.project.example_splits() == before


def test_import_more_rows_then_undo(qtbot, page, state):
    dialog = page.import_more()
    dialog.source.set_pasted_text("text\tsentiment\nQuiet fan.\tpositive\nLoud fan.\tnegative\n")
    dialog.source.put_combo.setCurrentIndex(dialog.source.put_combo.findData("test"))
    assert dialog.import_button.isEnabled()
    with qtbot.waitSignal(state.examples_changed, timeout=10_000):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert state.project.split_counts()["test"] == 12
    assert page.import_report.text().startswith("Imported 2 rows (2 test) from pasted text")
    page.undo_action.trigger()
    assert state.project.split_counts()["test"] == 10


def test_rows_are_locked_while_a_run_is_going(page, state):
    state.runs.started.emit(1)
    assert page.lock_note.isVisibleTo(page)
    assert not page.model.flags(page.model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable
    assert not page.delete_action.isEnabled()
    assert not page.task_panel.isEnabled()
    state.runs.ended.emit(1, "finished")
    assert page.delete_action.isEnabled()
    assert page.model.flags(page.model.index(0, 0)) & Qt.ItemFlag.ItemIsEditable


def test_rows_added_elsewhere_appear(page, state):
    state.project.add_examples([Row("New one.", "positive", ("positive",), "dev")])
    state.examples_changed.emit()
    assert page.model.rowCount() == 41


def test_no_project_shows_what_to_do(page, state):
    state.close_project()
    assert page.stack.currentWidget() is page.no_project
    assert page.model.rowCount() == 0


# -- the models -----------------------------------------------------------------------------


def test_examples_model_passes_the_model_tester(qtmodeltester, sample_project):
    model = ExamplesModel()
    model.set_project(sample_project)
    qtmodeltester.check(model)
    model.set_split("test")
    qtmodeltester.check(model)


def test_a_hundred_thousand_rows_scroll_without_reading_them_all(qtbot, tmp_path):
    project = Project.create(tmp_path / "big.sqlite", ProjectSettings(name="big"))
    try:
        project.add_examples([Row(f"question {i}", f"answer {i}", (f"answer {i}",),
                                  ("train", "dev", "test")[i % 3]) for i in range(100_000)])
        model = ExamplesModel()
        started = time.perf_counter()
        model.set_project(project)
        assert model.rowCount() == 100_000
        last = model.index(99_999, 0)
        assert model.data(last) == "question 99999"
        assert model.data(model.index(99_998, 1)) == "answer 99998"
        assert model.data(model.index(50_001, 2)) == "train"
        assert time.perf_counter() - started < 5.0
        assert len(model._pages) == 2  # only the two pages asked for were read

        view = QTableView()
        qtbot.addWidget(view)
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        view.setModel(model)
        view.resize(600, 400)
        view.show()
        started = time.perf_counter()
        view.scrollToBottom()
        view.grab()
        assert time.perf_counter() - started < 5.0
        assert len(model._pages) <= 4
        model.delete_rows([99_999])
        assert model.rowCount() == 99_999
        model.undo_stack.undo()
        assert model.data(model.index(99_999, 0)) == "question 99999"
    finally:
        project.close()


def test_preview_model_passes_the_model_tester(qtmodeltester):
    from promptstudio import dataio

    model = PreviewModel()
    model.set_table(dataio.parse_pasted("a\tb\n1\t2\n3\t4\n"))
    model.set_roles({"a": "input"})
    qtmodeltester.check(model)


def test_a_chat_task_model_gets_where_the_prompt_goes_in_its_messages(page, state,
                                                                      chat_model_file):
    assert not page.chat_placement.isVisibleTo(page), "a text model has no messages"
    state.update_settings(task_model=state.project.settings.task_model.__class__(
        path=str(chat_model_file)))
    assert page.chat_placement.isVisibleTo(page)
    assert page.chat_placement.preview.text().startswith("system: {instruction}\nuser: ")
    box = page.chat_placement.instruction_place
    box.setCurrentIndex(box.findData("user"))
    box.activated.emit(box.currentIndex())
    assert state.project.settings.instruction_place == "user"
    assert state.project.scoring().instruction_place == "user"
    assert page.chat_placement.preview.text().startswith(
        "user: {instruction}\n\n{demo input}")


def test_a_chat_server_shows_the_messages_it_is_sent(page, state):
    from promptstudio.llm.config import ModelConfig

    state.update_settings(task_model=ModelConfig(kind="server",
                                                 base_url="http://127.0.0.1:11434"))
    assert page.chat_placement.isVisibleTo(page)
    assert page.chat_placement.preview.text() == (
        "system: {instruction}\nuser: {demo input}\nassistant: {demo output}\nuser: {input}")
