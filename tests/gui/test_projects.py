"""The projects sidebar and the new-project dialog: create, open, rename, copy, delete."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from promptstudio import workflows
from promptstudio.gui import projects
from promptstudio.gui.projects import ProjectsSidebar
from promptstudio.store import Evaluation, Project


@pytest.fixture
def sidebar(qtbot, state, settings, answers) -> ProjectsSidebar:
    widget = ProjectsSidebar(state, settings=settings)
    qtbot.addWidget(widget)
    widget.resize(260, 600)
    widget.show()
    return widget


def add_sample(state, sample_id: str, name: str) -> None:
    workflows.create_sample_project(state.workspace, sample_id, name)[0].close()
    state.projects_listed.emit()


def select(sidebar: ProjectsSidebar, name: str) -> None:
    sidebar.list.setCurrentRow(sidebar.names().index(name))


def error_boxes(widget) -> list[str]:
    return [box.text() for box in widget.findChildren(QMessageBox, "errorMessage")]


def create(qtbot, state, dialog) -> None:
    assert dialog.create_button.isEnabled()
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.created is not None and state.project is not None,
                    timeout=10_000)


# -- an empty workspace --------------------------------------------------------------------


def test_an_empty_workspace_offers_the_samples(qtbot, sidebar, state):
    assert sidebar.stack.currentWidget() is sidebar.empty
    titles = [card.text() for card in sidebar.sample_buttons]
    assert titles == [f"Try a sample: {s.title}" for s in workflows.samples()]
    card = sidebar.findChild(projects.ChoiceCard, "sample_plural_nouns")
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert state.project is not None and state.project.name == "Plural nouns"
    assert sidebar.stack.currentWidget() is sidebar.list
    assert sidebar.names() == ["Plural nouns"]
    assert sidebar.selected_name() == "Plural nouns"


# -- the new-project dialog ------------------------------------------------------------------


def test_a_project_from_a_csv_file_with_its_own_column_names(qtbot, sidebar, state,
                                                             tmp_path):
    data = tmp_path / "shop_reviews.csv"
    data.write_text("id,review,label\n1,Great kettle,positive\n2,Broke at once,negative\n"
                    "3,Lovely lamp,positive\n4,Great kettle,positive\n", encoding="utf-8")
    dialog = sidebar.new_project()
    dialog.source.load_file(data)
    qtbot.waitUntil(lambda: dialog.source.table is not None)
    dialog.source.input_combo.setCurrentText("review")
    dialog.source.output_combo.setCurrentText("label")
    dialog.source.put_combo.setCurrentIndex(dialog.source.put_combo.findData("dev"))

    preview = dialog.source.preview_model
    headers = [preview.headerData(i, Qt.Orientation.Horizontal) for i in range(3)]
    assert headers == ["id\n", "review\n→ input", "label\n→ expected output"]
    assert dialog.name_edit.text() == "shop reviews"
    report = dialog.source.report_label.text()
    assert report.startswith("Ready to import 3 rows (3 dev) from shop_reviews.csv.")
    assert "line 5 repeats line 2" in report

    create(qtbot, state, dialog)
    project = state.project
    assert project.name == "shop reviews"
    assert [(e.input, e.output, e.split) for e in project.examples()] == [
        ("Great kettle", "positive", "dev"), ("Broke at once", "negative", "dev"),
        ("Lovely lamp", "positive", "dev")]
    assert sidebar.names() == ["shop reviews"]


def test_a_project_from_pasted_rows(qtbot, sidebar, state):
    dialog = sidebar.new_project()
    dialog.source.from_paste.setChecked(True)
    dialog.source.set_pasted_text("question\tanswer\n2 + 2\t4\n3 + 3\t6\n")
    assert not dialog.create_button.isEnabled()  # no name yet
    qtbot.keyClicks(dialog.name_edit, "Sums")
    assert dialog.source.mapping() == {"input": "question", "output": "answer",
                                       "answers": None, "split": None}
    create(qtbot, state, dialog)
    assert state.project.name == "Sums"
    assert [e.input for e in state.project.examples()] == ["2 + 2", "3 + 3"]


REVIEWS = ("review\tfeeling\nGreat kettle\tpositive\nBroke at once\tnegative\n"
           "Lovely lamp\tpositive\nLate and cold\tnegative\nFine\tneutral\nOkay\tneutral\n")


def test_answers_that_repeat_are_offered_as_labels(qtbot, sidebar, state):
    dialog = sidebar.new_project()
    dialog.source.set_pasted_text(REVIEWS)
    assert dialog.scoring.chosen_metric() == "label"
    assert dialog.scoring.chosen_labels() == ("positive", "negative", "neutral")
    assert dialog.scoring.labels_row.isVisibleTo(dialog)
    qtbot.keyClicks(dialog.name_edit, "Feelings")
    create(qtbot, state, dialog)
    settings = state.project.settings
    assert settings.metric == "label"
    assert settings.labels == ("positive", "negative", "neutral")


def test_the_users_scoring_choice_is_kept_and_checked(qtbot, sidebar, state):
    dialog = sidebar.new_project()
    dialog.source.set_pasted_text("question\tanswer\n2 + 2\t4\n3 + 3\t6\n")
    qtbot.keyClicks(dialog.name_edit, "Sums")
    assert dialog.scoring.chosen_metric() == "normalized_exact", "every answer differs"
    scoring = dialog.scoring
    scoring.metric_combo.setCurrentIndex(scoring.metric_combo.findData("label"))
    scoring.metric_combo.activated.emit(scoring.metric_combo.currentIndex())
    assert not dialog.create_button.isEnabled(), "the label metric needs labels"
    assert "at least two labels" in scoring.labels_help.text()
    scoring.labels_edit.setText("4, 6")
    scoring.labels_edit.editingFinished.emit()
    dialog.source.set_pasted_text(REVIEWS.replace("review\tfeeling", "question\tanswer"))
    assert scoring.chosen_labels() == ("4", "6"), "a new paste does not undo the user's choice"
    create(qtbot, state, dialog)
    assert (state.project.settings.metric, state.project.settings.labels) == (
        "label", ("4", "6"))


def test_a_project_from_a_sample(qtbot, sidebar, state):
    add_sample(state, "plural_nouns", "Plural nouns")
    dialog = sidebar.new_project()
    dialog.choose_sample("plural_nouns")
    assert dialog.name_edit.text() == "Plural nouns 2"
    create(qtbot, state, dialog)
    sample = next(s for s in workflows.samples() if s.id == "plural_nouns")
    assert state.project.settings.instruction == sample.instruction
    assert sidebar.names() == ["Plural nouns", "Plural nouns 2"]


def test_an_answers_column_can_be_left_out(qtbot, sidebar, state):
    dialog = sidebar.new_project()
    dialog.source.set_pasted_text("input\toutput\tanswers\nNYC?\tNew York\tNY|Big Apple\n")
    assert dialog.source.mapping()["answers"] == "answers"
    assert dialog.source.imported.rows[0].answers == ("New York", "NY", "Big Apple")
    dialog.source.set_mapping("input", "output", answers=None)
    assert dialog.source.imported.rows[0].answers == ("New York",)


def test_the_same_column_twice_is_refused(qtbot, sidebar, state):
    dialog = sidebar.new_project()
    dialog.source.set_pasted_text("a,b\n1,2\n")
    dialog.source.set_mapping("a", "a")
    assert "same column" in dialog.source.error
    assert dialog.source.imported is None


def test_a_taken_name_is_refused_before_anything_is_made(qtbot, sidebar, state):
    add_sample(state, "plural_nouns", "Nouns")
    dialog = sidebar.new_project()
    dialog.choose_sample("plural_nouns")
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "Nouns")
    assert not dialog.create_button.isEnabled()
    assert "already exists" in dialog.name_problem.text()


@pytest.mark.parametrize("file_name, content, words", [
    ("broken.csv", 'input,output\n"unclosed,positive\nfine,negative\n', "line 2"),
    ("short.csv", "input,output\nonly one value\n", "line 2"),
    ("sheet.xlsx", "PK\x03\x04", "CSV UTF-8"),
    ("empty_outputs.csv", "input,output\nhello,\n", "is empty"),
])
def test_a_malformed_file_shows_why_and_creates_nothing(qtbot, sidebar, state, tmp_path,
                                                        file_name, content, words):
    data = tmp_path / file_name
    data.write_text(content, encoding="utf-8")
    dialog = sidebar.new_project()
    dialog.source.load_file(data)
    qtbot.waitUntil(lambda: not dialog.source.loading)
    assert words in dialog.source.error
    assert dialog.source.report_label.text() == dialog.source.error
    assert not dialog.create_button.isEnabled()
    dialog.create()
    assert state.workspace.list() == []
    assert state.project is None


# -- changing projects --------------------------------------------------------------------


def test_rename_the_open_project_keeps_it_open(qtbot, sidebar, state, sample_project,
                                               monkeypatch):
    monkeypatch.setattr(projects, "ask_name", lambda *_: "Reviews, renamed")
    select(sidebar, "reviews")
    sidebar.rename_project()
    assert sidebar.names() == ["Reviews, renamed"]
    assert state.project.name == "Reviews, renamed"
    assert state.project.path == state.workspace.path_for("Reviews, renamed")


def test_a_cancelled_rename_changes_nothing(qtbot, sidebar, state, sample_project,
                                            monkeypatch):
    monkeypatch.setattr(projects, "ask_name", lambda *_: None)
    select(sidebar, "reviews")
    sidebar.rename_project()
    assert sidebar.names() == ["reviews"]


def test_duplicate_makes_a_copy_under_a_new_name(qtbot, sidebar, state, sample_project,
                                                 monkeypatch):
    offered = []
    monkeypatch.setattr(projects, "ask_name",
                        lambda parent, title, label, text: offered.append(text) or text)
    select(sidebar, "reviews")
    sidebar.duplicate_project()
    assert offered == ["reviews copy"]
    assert sidebar.names() == ["reviews", "reviews copy"]
    assert state.project.name == "reviews"


def test_delete_asks_first(qtbot, sidebar, state, sample_project, answers):
    add_sample(state, "plural_nouns", "nouns")
    select(sidebar, "reviews")
    answers.replies = [False]
    sidebar.delete_project()
    assert "reviews" in answers.asked[-1]
    assert sidebar.names() == ["nouns", "reviews"]
    assert state.project is not None

    answers.replies = [True]
    sidebar.delete_project()
    assert sidebar.names() == ["nouns"]
    assert state.project is None


def test_clicking_a_project_opens_it(qtbot, sidebar, state, sample_project):
    add_sample(state, "plural_nouns", "nouns")
    item = sidebar.list.item(sidebar.names().index("nouns"))
    rect = sidebar.list.visualItemRect(item)
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())
    assert state.project.name == "nouns"


def test_the_list_shows_the_best_score_and_follows_changes(qtbot, sidebar, state,
                                                           sample_project):
    detail = sidebar.list.item(0).data(projects.DETAIL_ROLE)
    assert detail == "40 examples · not scored yet"
    project = state.project
    candidate = project.add_candidate("Say positive or negative.")
    for example in project.examples("dev")[:4]:
        score = 1.0 if example.id % 2 else 0.0
        project.save_evaluation(Evaluation(candidate.id, example.id, "m", "", "", score,
                                                   scoring=project.scoring().key))
    expected = project.mean_score(candidate.id, "dev")[0]
    state.candidates_changed.emit()
    assert sidebar.list.item(0).data(projects.DETAIL_ROLE) == (
        f"40 examples · best {expected:.0%} on dev")


def test_the_open_projects_size_follows_its_rows(qtbot, sidebar, state, sample_project):
    add_sample(state, "plural_nouns", "nouns")
    state.project.delete_examples([1, 2])
    state.examples_changed.emit()
    details = {sidebar.list.item(row).text(): sidebar.list.item(row).data(projects.DETAIL_ROLE)
               for row in range(sidebar.list.count())}
    assert details["reviews"].startswith("38 examples")
    assert details["nouns"].startswith("40 examples")


# -- files ----------------------------------------------------------------------------------


def test_export_asks_before_replacing_a_file(qtbot, sidebar, state, sample_project, answers,
                                             monkeypatch, tmp_path):
    target = tmp_path / "elsewhere" / "copy.sqlite"
    target.parent.mkdir()
    target.write_text("an older file")
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    answers.replies = [False]
    sidebar.export_project()
    assert "copy.sqlite already exists" in answers.asked[-1]
    assert target.read_text() == "an older file"

    answers.replies = [True]
    with qtbot.waitSignal(state.status, timeout=10_000) as said:
        sidebar.export_project()
    assert "Saved a copy of reviews" in said.args[0]
    copy = Project.open(target)
    try:
        assert copy.name == "reviews"
        assert sum(copy.split_counts().values()) == 40
    finally:
        copy.close()


def test_open_a_project_file_from_elsewhere_and_find_it_in_recent(qtbot, sidebar, state,
                                                                 sample_project, settings,
                                                                 monkeypatch, tmp_path):
    outside = tmp_path / "outside" / "shared.sqlite"
    outside.parent.mkdir()
    state.workspace.export_file("reviews", outside)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(outside), "")))
    sidebar.open_project_file()
    assert state.project.path == outside
    assert sidebar.selected_name() is None  # not one of the workspace's projects

    menu = QMenu()
    sidebar.fill_recent_menu(menu)
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts == ["shared", "reviews", "Clear this list"]
    menu.actions()[1].trigger()
    assert state.project.name == "reviews"


def test_a_file_that_is_no_project_shows_an_error(qtbot, sidebar, state, monkeypatch,
                                                  tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("just text")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(bogus), "")))
    sidebar.open_project_file()
    assert state.project is None
    assert any("not a PromptStudio project" in text for text in error_boxes(sidebar))


def test_the_last_project_opens_again(qtbot, sidebar, state, settings):
    add_sample(state, "plural_nouns", "nouns")
    settings.setValue(projects.LAST_KEY, str(state.workspace.path_for("nouns")))
    sidebar.restore_last_project()
    assert state.project.name == "nouns"


def test_a_missing_last_project_is_skipped_quietly(qtbot, sidebar, state, settings,
                                                   tmp_path):
    settings.setValue(projects.LAST_KEY, str(tmp_path / "gone.sqlite"))
    sidebar.restore_last_project()
    assert state.project is None
    assert error_boxes(sidebar) == []


def test_the_window_menu_opens_the_new_project_dialog(qtbot, window):
    window.findChild(type(window.recent_menu.menuAction()), "newProject").trigger()
    assert window.sidebar.findChild(projects.NewProjectDialog) is not None



def test_a_damaged_project_file_is_named_and_hides_nothing(qtbot, sidebar, state):
    import sqlite3

    for name in ("alpha", "beta", "gamma"):
        add_sample(state, "product_reviews", name)
    damaged = state.workspace.path_for("gamma")
    with sqlite3.connect(damaged) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("DROP INDEX example_split")
        conn.execute("ALTER TABLE example DROP COLUMN split")
    state.projects_listed.emit()

    assert sidebar.names() == ["alpha", "beta"]
    assert sidebar.unreadable_button.isVisible()
    assert sidebar.unreadable_button.text() == "1 file could not be opened…"
    qtbot.mouseClick(sidebar.unreadable_button, Qt.MouseButton.LeftButton)
    [text] = error_boxes(sidebar)
    assert "gamma.sqlite" in text and "has lost the column 'split'" in text
