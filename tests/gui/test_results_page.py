"""The Results page: the score plot, the candidate table, the detail pane, export, and a
run followed live, on scripted runs of the first-letter project; one real run."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from optimize_support import (
    ScriptedModel,
    letters_optimizer,
    letters_project,
    letters_task,
    scripted_run,
    start_run,
)
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QTableView

from promptstudio.gui.candidate_detail import AnswersModel, CompareDialog
from promptstudio.gui.candidates_model import (
    BEST,
    CANDIDATE_ROLE,
    DEV,
    INSTRUCTION,
    CandidatesFilter,
    CandidatesModel,
)
from promptstudio.gui.data_page import TaskDataPage
from promptstudio.gui.results_page import ResultsPage
from promptstudio.optimize import runner
from promptstudio.optimize.events import StepStarted
from promptstudio.optimize.layouts import Layout
from promptstudio.reports import CandidateResult, SplitScore

WAIT_MS = 60_000




@pytest.fixture
def letters(state):
    """A finished scripted ProTeGi run, in the project open in `state`: the run's id."""
    project, run_id = scripted_run(state.workspace)
    project.close()
    state.open_project("letters")
    return run_id


@pytest.fixture
def page(qtbot, state):
    widget = ResultsPage(state)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    return widget


def slow_letters_task(instruction: str, word: str) -> str:
    """Slow enough that the window sees the run's events while it goes."""
    time.sleep(0.004)
    return letters_task(instruction, word)


def candidate_rows(page: ResultsPage) -> list[int]:
    """Candidate ids in the table's current order."""
    return [page.proxy.index(row, 0).data(CANDIDATE_ROLE)
            for row in range(page.proxy.rowCount())]


def select(page: ResultsPage, operation: str) -> int:
    candidate = next(c for c in page.model.candidates() if c.operation == operation)
    page.select_candidate(candidate.id)
    return candidate.id


class SaveAs:
    """Stands in for the save dialog: answers with `path`, keeps what it was asked."""

    def __init__(self, monkeypatch, path: Path) -> None:
        self.path = path
        self.suggested: list[str] = []
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self)

    def __call__(self, parent, title, suggested, filters, selected, options):
        assert options & QFileDialog.Option.DontConfirmOverwrite
        self.suggested.append(Path(suggested).name)
        return str(self.path), selected


# -- what the page shows ------------------------------------------------------------------


def test_without_runs_the_page_says_what_to_do(page, state, sample_project):
    assert page.stack.currentWidget() is page.empty
    assert "Run" in page.empty.text()


def test_the_latest_run_fills_plot_table_and_run_list(state, letters, page):
    project = state.project
    candidates = project.candidates(letters)
    results = page.results[letters]
    path = results.trajectory()

    assert page.stack.currentIndex() == 1
    assert page.run_list.checked_ids() == {letters}
    assert "Finished" in page.run_list.item_for(letters).text(0)
    assert page.model.rowCount() == len(candidates)
    scatter = page.plot.scatters[letters]
    assert len(scatter.data) == len(path.points) + 1, "every score, and the test star"
    assert page.plot._test_lines[letters].value() == results.test_score
    best = project.run(letters).best_candidate_id
    assert f"#{best}" in page.summary.text()
    assert candidate_rows(page)[0] == best, "sorted by dev score, best first"
    best_row = page.proxy.index(0, BEST).data()
    assert best_row == "run's pick"


def test_changing_the_metric_on_the_task_page_leaves_no_old_score_current(
        qtbot, state, letters, page):
    """The Task page says what a change of metric does before it is made; afterwards the
    Results page shows the run's scores as from earlier settings, and says why."""
    tasks = TaskDataPage(state)
    qtbot.addWidget(tasks)
    tasks.show()
    assert tasks.score_note.isVisible(), "said before the change, since there are scores"
    assert "recomputed the next time they are needed" in tasks.score_note.text()
    said: list[str] = []
    state.status.connect(said.append)
    best = state.project.run(letters).best_candidate_id
    assert "earlier" not in page.run_list.item_for(letters).text(0)
    assert not page.scoring_note.isVisible() and f"#{best}" in page.summary.text()

    scoring = tasks.scoring
    index = scoring.metric_combo.findData("exact")
    scoring.metric_combo.setCurrentIndex(index)
    scoring.metric_combo.activated.emit(index)

    assert state.project.settings.metric == "exact"
    assert said[-1].startswith("Saved. Scores will be recomputed")
    said_why = (f"Run {letters} scored its prompts before the metric (Loose match → Exact "
                "match) changed")
    assert said_why in page.summary.text(), "the best prompt's run, in its reason"
    assert "earlier scoring settings" in page.summary.text(), "the best prompt's scores"
    # The run's own scores stay readable, as they were made.
    assert page.model.rowCount() == len(state.project.candidates(letters))
    second = start_run(state.project, "protegi")
    model = ScriptedModel(letters_task, letters_optimizer)
    runner.execute(state.project, second.id, model, model)
    state.candidates_changed.emit()
    page.run_list.set_checked(second.id)
    page.run_list.set_checked(letters)
    state.settings_changed.emit()
    assert page.scoring_note.isVisible() and said_why in page.scoring_note.text()
    assert f"Run {second.id}" not in page.scoring_note.text(), "made under the current ones"
    assert "earlier settings" in page.run_list.item_for(letters).text(0)


def test_hovering_a_point_shows_its_prompt(state, letters, page):
    scatter = page.plot.scatters[letters]
    spot = next(s for s in scatter.points() if page.plot.spot(letters, s.data())[1] == "dev")
    candidate = page.results[letters].candidates[page.plot.spot(letters, spot.data())[0]]
    tip = scatter.opts["tip"](x=spot.pos().x(), y=spot.pos().y(), data=spot.data())
    assert scatter.opts["hoverable"]
    assert f"#{candidate.id}" in tip and "dev score" in tip
    assert candidate.instruction.split()[0] in tip


def test_clicking_a_point_selects_its_candidate(state, letters, page):
    child = next(c for c in page.model.candidates() if c.operation == "paraphrase")
    page.plot.candidate_clicked.emit(child.id)
    assert page.table.currentIndex().data(CANDIDATE_ROLE) == child.id
    assert page.detail.candidate.id == child.id


def test_models_pass_the_model_tester(qtmodeltester, state, letters, page):
    qtmodeltester.check(page.model)
    qtmodeltester.check(page.proxy)
    select(page, "gradient-edit")
    qtmodeltester.check(page.detail.answers)
    qtmodeltester.check(page.detail.answers_filter)


def test_table_filters_by_words_and_by_how_prompts_were_made(state, letters, page):
    page.search.setText("FIRST letter")
    shown = [page.model.candidate(page.model.row_of(i)) for i in candidate_rows(page)]
    assert shown and all("first letter" in c.instruction.lower() for c in shown)
    assert page.count_label.text() == f"{len(shown)} of {page.model.rowCount()} prompts"
    page.search.clear()

    index = page.operation_filter.findData("paraphrase")
    assert page.operation_filter.itemText(index) == "Reworded"
    page.operation_filter.setCurrentIndex(index)
    shown = [page.model.candidate(page.model.row_of(i)) for i in candidate_rows(page)]
    assert shown and {c.operation for c in shown} == {"paraphrase"}


def test_table_sorts_by_any_column(state, letters, page):
    page.table.sortByColumn(INSTRUCTION, Qt.SortOrder.AscendingOrder)
    texts = [page.proxy.index(r, INSTRUCTION).data() for r in range(page.proxy.rowCount())]
    assert texts == sorted(texts, key=str.casefold)
    page.table.sortByColumn(DEV, Qt.SortOrder.AscendingOrder)
    scores = [page.proxy.index(r, DEV).data(Qt.ItemDataRole.UserRole)
              for r in range(page.proxy.rowCount())]
    assert scores == sorted(scores)


# -- the detail pane ----------------------------------------------------------------------


def test_a_child_candidate_shows_its_diff_and_story(state, letters, page):
    child_id = select(page, "gradient-edit")
    child = state.project.candidate(child_id)
    detail = page.detail

    assert detail.stack.currentIndex() == 1
    assert detail.prompt_view.toPlainText().startswith(f"Instruction: {child.instruction}")
    assert f"prompt #{child.parent_ids[0]}" in detail.diff_summary.text()
    page_html = detail.diff_view.toHtml()
    assert "line-through" in page_html and "#cdf0cd" in page_html
    parent = state.project.candidate(child.parent_ids[0])
    assert parent.instruction.split()[0] in detail.diff_view.toPlainText()
    story = detail.story_view.toPlainText()
    assert "It never says that a letter is wanted." in story
    assert "Answers it was shown that were wrong" in story


def test_a_starting_prompt_has_nothing_to_compare(state, letters, page):
    select(page, "start")
    assert "nothing to compare" in page.detail.diff_summary.text()


def test_per_example_answers_filter_right_and_wrong(state, letters, page):
    half_right = next(c for c in page.model.candidates()
                      if c.instruction.startswith("Reply with a letter"))
    page.select_candidate(half_right.id)
    detail = page.detail
    rows = detail.answers.rows()
    right = [r for r in rows if r.right]
    assert 0 < len(right) < len(rows)
    assert detail.answers_count.text() == f"{len(right)} of {len(rows)} answers right."

    def shown() -> list[str]:
        return [detail.answers_filter.index(r, AnswersModel.SCORE).data()
                for r in range(detail.answers_filter.rowCount())]

    detail.outcome_choice.setCurrentIndex(detail.outcome_choice.findData("wrong"))
    assert len(shown()) == len(rows) - len(right)
    assert all(text.startswith("✗") for text in shown())
    detail.outcome_choice.setCurrentIndex(detail.outcome_choice.findData("right"))
    assert len(shown()) == len(right) and all(text.startswith("✓") for text in shown())
    detail.split_choice.setCurrentIndex(detail.split_choice.findData("dev"))
    assert len(shown()) == sum(1 for r in right if r.split == "dev")
    assert "Showing" in detail.answers_count.text()


def test_use_as_starting_prompt_changes_the_projects_instruction(state, letters, page,
                                                                   answers, qtbot):
    child_id = select(page, "paraphrase")
    wanted = state.project.candidate(child_id).instruction
    with qtbot.waitSignal(state.settings_changed):
        page.detail.use_as_start()
    assert state.project.settings.instruction == wanted
    assert len(answers.asked) == 1 and "Answer." in answers.asked[0]

    answers.replies = [False]
    select(page, "start")
    page.detail.use_as_start()
    assert state.project.settings.instruction == wanted, "the user said no"


def test_use_as_starting_prompt_takes_a_layout_with_the_instruction(state, page, answers,
                                                                   qtbot):
    project, run_id = scripted_run(state.workspace)
    start = project.candidates(run_id)[0]
    qa = Layout("Q: ", "\nA: ", "\n")
    written = qa.applied(project.settings.prompt_template)
    project.add_candidate(start.instruction, start.demo_ids, run_id=run_id,
                          parent_ids=[start.id], operation="layout", origin=qa.describe(),
                          meta={"template": written.text, "demo_format": written.demo_format,
                                "layout": qa.describe()})
    project.close()
    state.open_project("letters")
    select(page, "layout")
    with qtbot.waitSignal(state.settings_changed):
        page.detail.use_as_start()
    settings = state.project.settings
    assert (settings.template, settings.demo_format) == (written.text, written.demo_format)
    assert settings.instruction == start.instruction
    assert "instruction and layout" in answers.asked[0]
    assert "written as Q: …⏎A: …⏎" in answers.asked[0]
    assert "The instruction stays the same" in answers.asked[0]


def test_mark_as_best_is_shown_and_used_by_export(state, letters, page, monkeypatch,
                                                  tmp_path, answers):
    child_id = select(page, "paraphrase")
    page.detail.toggle_best()
    assert state.project.chosen_candidate().id == child_id
    row = page.model.row_of(child_id)
    assert page.model.index(row, BEST).data().startswith("★ yours")
    assert "You marked it as the best prompt." in page.summary.text()
    assert page.detail.best_button.text() == "Unmark as best"

    save = SaveAs(monkeypatch, tmp_path / "chosen.json")
    page.export_prompt()
    card = json.loads((tmp_path / "chosen.json").read_text(encoding="utf-8"))
    assert card["instruction"] == state.project.candidate(child_id).instruction
    assert save.suggested == ["letters-best-prompt.md"]

    page.detail.toggle_best()
    assert state.project.chosen_candidate() is None
    assert page.detail.best_button.text() == "Mark as best"


def test_compare_two_candidates_side_by_side(state, letters, page, qtbot):
    child_id = select(page, "gradient-edit")
    parent_id = state.project.candidate(child_id).parent_ids[0]
    dialog = page.compare(child_id)
    qtbot.addWidget(dialog)
    assert isinstance(dialog, CompareDialog)
    assert (dialog.left_choice.currentData(), dialog.right_choice.currentData()) == (
        parent_id, child_id)
    assert "#cdf0cd" in dialog.diff_view.toHtml()
    assert "added" in dialog.diff_summary.text()

    selection = page.table.selectionModel()
    selection.clearSelection()
    for row in (0, 1):
        selection.select(page.proxy.index(row, 0),
                         selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
    assert page.compare_button.isEnabled()
    page.compare_button.click()
    dialogs = [d for d in page.findChildren(CompareDialog) if d is not dialog and d.isVisible()]
    assert len(dialogs) == 1
    assert {dialogs[0].left_choice.currentData(), dialogs[0].right_choice.currentData()} == {
        page.proxy.index(0, 0).data(CANDIDATE_ROLE), page.proxy.index(1, 0).data(CANDIDATE_ROLE)}
    dialogs[0].close()


# -- export -------------------------------------------------------------------------------


def test_export_best_prompt_as_markdown_and_json(state, letters, page, monkeypatch,
                                                 tmp_path, answers):
    best = state.project.candidate(state.project.run(letters).best_candidate_id)
    save = SaveAs(monkeypatch, tmp_path / "card.md")
    assert page.export_prompt() == tmp_path / "card.md"
    text = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert text.startswith("# Prompt card: letters")
    assert best.instruction in text and "| dev |" in text
    assert save.suggested == ["letters-best-prompt.md"]

    save.path = tmp_path / "card"  # no suffix: the chosen filter's is added
    assert page.export_prompt() == tmp_path / "card.md"
    assert answers.asked == ["“card.md” already exists in " + str(tmp_path) + ".\n\nReplace it?"]

    save.path = tmp_path / "card.json"
    page.export_prompt()
    card = json.loads((tmp_path / "card.json").read_text(encoding="utf-8"))
    assert card["instruction"] == best.instruction
    assert card["scores"]["test"]["score"] == 1.0

    save.path = tmp_path / "card.txt"
    page.export_prompt()
    assert (tmp_path / "card.txt").read_text(encoding="utf-8").startswith(
        f"Instruction: {best.instruction}")


def test_export_the_prompt_the_way_it_will_be_used(state, letters, page, monkeypatch,
                                                    tmp_path, answers):
    """Chat messages, the system prompt alone and an Ollama Modelfile: the filter chosen
    says which (the first two share their suffix with a card's), and gives the suffix."""
    from promptstudio.gui.export_dialogs import PROMPT_FORMATS

    best = state.project.candidate(state.project.run(letters).best_candidate_id)
    labels = dict(PROMPT_FORMATS)
    chosen: dict = {}
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args: (str(chosen["path"]), chosen["filter"]))
    for fmt, name, written in (("messages", "chat", "chat.json"), ("system", "sys", "sys.txt"),
                               ("modelfile", "Modelfile", "Modelfile")):
        chosen.update(path=tmp_path / name, filter=labels[fmt])
        assert page.export_prompt() == tmp_path / written
    turns = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))["messages"]
    assert turns[0] == {"role": "system", "content": best.instruction}
    assert (tmp_path / "sys.txt").read_text(encoding="utf-8").startswith(best.instruction)
    modelfile = (tmp_path / "Modelfile").read_text(encoding="utf-8")
    assert "\nFROM " in modelfile and f'SYSTEM """{best.instruction}"""' in modelfile


def test_export_the_selected_prompt(state, letters, page, monkeypatch, tmp_path, answers):
    child_id = select(page, "paraphrase")
    save = SaveAs(monkeypatch, tmp_path / "one.yaml")
    page.detail.export_button.click()
    assert save.suggested == [f"letters-prompt-{child_id}.md"]
    assert state.project.candidate(child_id).instruction in (
        tmp_path / "one.yaml").read_text(encoding="utf-8")


def test_export_asks_before_replacing_a_file(state, letters, page, monkeypatch, tmp_path,
                                             answers):
    target = tmp_path / "taken.md"
    target.write_text("keep me", encoding="utf-8")
    SaveAs(monkeypatch, target)
    answers.replies = [False]
    assert page.export_prompt() is None
    assert target.read_text(encoding="utf-8") == "keep me"
    assert "taken.md" in answers.asked[0]

    answers.replies = [True]
    assert page.export_prompt() == target
    assert target.read_text(encoding="utf-8").startswith("# Prompt card")


def test_export_report_as_csv_and_png(state, letters, page, monkeypatch, tmp_path, answers):
    save = SaveAs(monkeypatch, tmp_path / "report.csv")
    page.export_report()
    with (tmp_path / "report.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(state.project.candidates(letters))
    assert {row["Run"] for row in rows} == {str(letters)}
    assert save.suggested == ["letters-candidates.csv"]

    save.path = tmp_path / "plot.png"
    page.export_report()
    picture = QImage(str(tmp_path / "plot.png"))
    assert not picture.isNull() and picture.width() == 1000

    save.path = tmp_path / "again.png"
    page.save_plot_button.click()
    assert save.suggested[-1] == "letters-scores.png"
    assert (tmp_path / "again.png").read_bytes().startswith(b"\x89PNG")


# -- runs compared and runs followed live -------------------------------------------------


def test_ticking_two_runs_overlays_them(state, letters, page):
    project = state.project
    second = start_run(project, "protegi", seed=1)
    model = ScriptedModel(letters_task, letters_optimizer)
    runner.execute(project, second.id, model, model)
    state.candidates_changed.emit()
    page.run_list.set_checked(second.id)

    assert set(page.plot.scatters) == {letters, second.id}
    assert page.model.rowCount() == (len(project.candidates(letters))
                                     + len(project.candidates(second.id)))
    page.run_list.set_checked(letters, False)
    assert set(page.plot.scatters) == {second.id}
    assert page.model.rowCount() == len(project.candidates(second.id))


def test_a_run_is_followed_live_without_stalling(qtbot, state, page, monkeypatch):
    project = letters_project(state.workspace)
    project.close()
    state.open_project("letters")
    model = ScriptedModel(slow_letters_task, letters_optimizer)
    monkeypatch.setattr(state, "backend_for", lambda config: model)
    slowest = {"event": 0.0, "flush": 0.0}
    flushes = []

    def timed(name, function):
        def wrapper(*args):
            began = time.perf_counter()
            function(*args)
            slowest[name] = max(slowest[name], time.perf_counter() - began)
            if name == "flush":
                flushes.append(began)
        return wrapper

    monkeypatch.setattr(page, "_on_event", timed("event", page._on_event))
    monkeypatch.setattr(page, "flush", timed("flush", page.flush))
    state.runs.event.disconnect()
    state.runs.event.connect(page._on_event)
    page._flush_timer.timeout.disconnect()
    page._flush_timer.timeout.connect(page.flush)
    seen = []
    state.runs.event.connect(seen.append)

    with qtbot.waitSignal(state.runs.ended, timeout=WAIT_MS) as ended:
        run_id = state.runs.start("protegi")
    assert ended.args == [run_id, "finished"]

    stored = state.project.candidates(run_id)
    assert sorted(c.id for c in page.model.candidates()) == [c.id for c in stored]
    assert 1 < len(flushes) < len(seen) / 5, "redraws are coalesced"
    assert slowest["event"] < 0.1 and slowest["flush"] < 0.1
    assert "Finished" in page.run_list.item_for(run_id).text(0)
    assert len(page.plot.scatters[run_id].data) == len(
        page.results[run_id].trajectory().points) + 1


def test_a_resumed_run_replays_without_repeating_rows(qtbot, state, page, monkeypatch):
    project = letters_project(state.workspace)
    project.close()
    state.open_project("letters")
    model = ScriptedModel(slow_letters_task, letters_optimizer)
    monkeypatch.setattr(state, "backend_for", lambda config: model)

    def pause_at_step_two(event):
        if isinstance(event, StepStarted) and event.step == 2:
            state.runs.pause()

    state.runs.event.connect(pause_at_step_two)
    with qtbot.waitSignal(state.runs.ended, timeout=WAIT_MS) as ended:
        run_id = state.runs.start("protegi")
    state.runs.event.disconnect(pause_at_step_two)
    assert ended.args[1] == "paused"
    assert "Paused" in page.run_list.item_for(run_id).text(0)
    rows_when_paused = page.model.rowCount()
    with qtbot.waitSignal(state.runs.ended, timeout=WAIT_MS):
        state.runs.resume(run_id)
    assert page.model.rowCount() > rows_when_paused
    ids = [c.id for c in page.model.candidates()]
    assert len(ids) == len(set(ids)) == len(state.project.candidates(run_id))
    assert page.results[run_id].status == "finished"


@pytest.mark.model
def test_a_real_run_on_the_bundled_model_shows_up(qtbot, state, page, local_backend):
    project = letters_project(state.workspace, instruction="Give the first letter.")
    project.close()
    state.open_project("letters")
    state.use_backend(state.project.settings.task_model, local_backend, owned=False)
    overrides = {"random_sets": 2, "bootstrapped_sets": 1, "budget_per_set": 4}
    with qtbot.waitSignal(state.runs.ended, timeout=600_000) as ended:
        run_id = state.runs.start("demos", overrides=overrides)
    assert ended.args[1] == "finished"
    assert page.model.rowCount() == len(state.project.candidates(run_id)) >= 2
    assert len(page.plot.scatters[run_id].data) >= 2
    assert page.results[run_id].test_score is not None
    select(page, "demo")
    assert page.detail.answers.rowCount() > 0
    assert "Examples shown to the model" in page.detail.story_view.toPlainText()


def test_new_scores_resort_the_table_and_keep_the_selection(qtbot, qtmodeltester):
    model, proxy = CandidatesModel(), CandidatesFilter()
    proxy.setSourceModel(model)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.sortByColumn(DEV, Qt.SortOrder.DescendingOrder)
    made = [CandidateResult(i, 1, f"Prompt {i}", "opro", 1,
                            scores={"dev": SplitScore(i / 10, 1)}) for i in range(1, 6)]
    model.set_candidates(made, [], None)
    assert [proxy.index(r, 0).data(CANDIDATE_ROLE) for r in range(5)] == [5, 4, 3, 2, 1]
    view.selectRow(4)
    assert view.currentIndex().data(CANDIDATE_ROLE) == 1

    made[0].add("dev", 1.0, 9)  # prompt 1 is now the best: 0.91
    model.refresh([1])
    model.add([CandidateResult(6, 1, "Prompt 6", "opro", 2,
                               scores={"dev": SplitScore(0.35, 1)})])

    assert [proxy.index(r, 0).data(CANDIDATE_ROLE) for r in range(6)] == [1, 5, 4, 6, 3, 2]
    assert view.currentIndex().data(CANDIDATE_ROLE) == 1, "the selection follows its row"
    assert view.currentIndex().row() == 0
    qtmodeltester.check(model)


def test_deleted_examples_take_their_scores_with_them(state, letters, page):
    best = state.project.run(letters).best_candidate_id
    row = page.model.row_of(best)
    dev_before = page.model.candidate(row).examples("dev")
    dev_ids = [e.id for e in state.project.examples("dev")]
    with state.project.transaction() as conn:
        conn.execute("DELETE FROM example WHERE id = ?", (dev_ids[0],))
    state.examples_changed.emit()

    row = page.model.row_of(best)
    assert page.model.candidate(row).examples("dev") == dev_before - 1


def test_a_score_on_fewer_rows_says_how_many(qtmodeltester):
    """A prompt scored only on the rows the search chooses on must not look like one
    scored on all of dev."""
    model = CandidatesModel()
    searched = CandidateResult(3, 1, "Searched", "demo", 1, scores={"dev": SplitScore(8.0, 11)})
    finalist = CandidateResult(2, 1, "Finalist", "demo", 1,
                               scores={"dev": SplitScore(20.0, 32)})
    model.set_candidates([searched, finalist], [2], None)

    def dev_text(candidate_id: int) -> str:
        return model.index(model.row_of(candidate_id), DEV).data()

    assert dev_text(3) == "0.73 (11)"
    assert dev_text(2) == "0.62"
    assert "11 dev examples" in model.index(model.row_of(3), DEV).data(
        Qt.ItemDataRole.ToolTipRole)

    searched.add("dev", 1.0, 21)  # now scored on all 32 rows as well
    model.refresh([3])
    assert dev_text(3) == "0.91"
    qtmodeltester.check(model)


def test_run_again_repeats_the_run_with_its_seed(state, letters, page, answers, qtbot):
    """The selected run, started again from the page: the same settings and seed, said
    before it starts, and the same prompts and pick."""
    model = ScriptedModel(letters_task, letters_optimizer)
    state.use_backend(state.project.settings.task_model, model, owned=False)
    page.run_list.setCurrentItem(page.run_list.item_for(letters))
    assert page.again_button.isEnabled()
    with qtbot.waitSignal(state.runs.ended, timeout=60_000) as ended:
        again = page.run_again()
    assert ended.args[1] == "finished"
    assert "same settings and seed (0)" in answers.asked[-1]
    assert "same prompts, with the same scores" in answers.asked[-1]
    project = state.project
    first, second = project.run(letters), project.run(again)
    assert (second.method, second.preset, second.seed, second.params) == (
        first.method, first.preset, first.seed, first.params)
    assert ([c.instruction for c in project.candidates(again)]
            == [c.instruction for c in project.candidates(letters)])
    assert second.choice["reason"] == first.choice["reason"]
    assert "seed 0" in page.run_list.item_for(again).toolTip(0)
