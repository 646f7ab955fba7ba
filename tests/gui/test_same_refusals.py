"""`promptstudio optimize` refuses the runs the Run page refuses, with the same words: both
ask `runner` (`preflight`, `overlap_question`, `limit_problem`, `dev_warning`)."""

from __future__ import annotations

import pytest
from optimize_support import letters_project
from PySide6.QtWidgets import QMessageBox

from promptstudio.cli import main
from promptstudio.dataio import Row
from promptstudio.gui.run_page import RunPage
from promptstudio.store.records import ProjectSettings


@pytest.fixture
def both(qtbot, state, capsys):
    """(what the Run page said, what `optimize` said on stderr, its exit status) for a
    project made by `make(workspace)`, with extra `optimize` arguments."""

    def ask(make, *cli_args: str, budget_calls: int | None = None):
        name = make(state.workspace)
        state.open_project(name)
        page = RunPage(state)
        qtbot.addWidget(page)
        if budget_calls is not None:
            page.max_calls.setText(str(budget_calls))
        page.start_run()
        qtbot.waitUntil(lambda: bool(page.findChildren(QMessageBox, "errorMessage")),
                        timeout=20_000)
        shown = " ".join(box.text() for box in page.findChildren(QMessageBox, "errorMessage"))
        capsys.readouterr()
        state.close_project()
        code = main(["--workspace", str(state.workspace.folder), "optimize", name,
                     "--method", "demos", *cli_args])
        said = capsys.readouterr().err
        assert state.workspace.open(name).runs() == [], "neither started a run"
        return shown, said, code

    return ask


def words(text: str) -> str:
    return " ".join(text.split())


def test_no_training_rows(both):
    def make(workspace):
        workspace.create(ProjectSettings(name="empty")).close()
        return "empty"

    shown, said, code = both(make)
    assert code != 0 and "no training examples" in shown
    assert words(shown) in words(said)


def test_a_template_without_an_input_slot(both):
    def make(workspace):
        project = letters_project(workspace)
        project.db["project"].update(1, {"template": "Instruction: {instruction}\nOutput:"})
        project.close()
        return "letters"

    shown, said, code = both(make)
    assert code != 0 and "{input}" in shown
    assert words(shown) in words(said)


def test_a_call_limit_that_leaves_nothing_to_search_with(both):
    def make(workspace):
        letters_project(workspace).close()
        return "letters"

    shown, said, code = both(make, "--max-calls", "10", budget_calls=10)
    assert code != 0 and "a limit of 10 leaves nothing to search with" in shown
    assert words(shown) in words(said)


def test_training_inputs_in_dev_or_test_are_asked_about_with_the_same_words(
        qtbot, state, answers, capsys):
    project = letters_project(state.workspace)
    project.add_examples([Row("apple", "a", ("a",), "dev")])
    project.close()
    state.open_project("letters")
    page = RunPage(state)
    qtbot.addWidget(page)
    answers.replies = [False]
    page.start_run()
    state.close_project()
    code = main(["--workspace", str(state.workspace.folder), "optimize", "letters",
                 "--method", "demos"])
    said = capsys.readouterr().err
    asked = answers.asked[0].removesuffix(" Start anyway?")
    assert code != 0 and "also in dev or test" in asked
    assert words(asked) in words(said) and "--allow-overlap" in said


def test_no_dev_rows_are_asked_about_with_the_words_optimize_prints(qtbot, state, answers,
                                                                     capsys):
    project = state.workspace.create(ProjectSettings(name="nodev"))
    project.add_examples([Row(f"w{i}", "x", ("x",), "train") for i in range(8)])
    project.close()
    state.open_project("nodev")
    page = RunPage(state)
    qtbot.addWidget(page)
    answers.replies = [False]
    page.start_run()
    asked = answers.asked[-1].removesuffix(" Start anyway?")
    assert "no dev examples" in asked and state.project.runs() == []
    from promptstudio.optimize import runner

    blocking, warnings = runner.preflight(state.project, "demos")
    assert blocking == [] and words(asked) in [words(w) for w in warnings]
