"""Runs from the window, end to end: pause and resume, a responsive window during a real
run, closing mid-run, a crash, and the errors a user can meet."""

from __future__ import annotations

import gc
import itertools
import time

import pytest
from optimize_support import ScriptedModel, letter_model, letters_project, start_run
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox
from scripted import base_variant, meta_prompt_of

from promptstudio.gui.main_window import MainWindow
from promptstudio.gui.run_page import RunPage
from promptstudio.gui.state import AppState
from promptstudio.llm.base import BackendError
from promptstudio.llm.config import ModelConfig
from promptstudio.optimize import runner
from promptstudio.optimize.context import RunControl
from promptstudio.optimize.events import Progress, RunFinished, StepStarted
from promptstudio.store.project import Project
from promptstudio.store.workspace import Workspace

RUN_TIMEOUT_MS = 60_000


class Crash(BaseException):
    """What a hard stop looks like from inside the run: nothing in the engine catches it."""


letter_task = letter_model(half=lambda word: len(word) % 2 == 0, otherwise=str)
"""The first letter gets every word right, a letter the words of even length, anything
else repeats the word."""


def proposal(prompt: str, call: int) -> str:
    """OPRO's reply depends only on the meta-prompt, so a resumed run asks and gets the
    same: two vague instructions, then the right one."""
    base = base_variant(meta_prompt_of(prompt))
    tried = prompt.count(", try ") + 1  # the instructions tried, the start among them
    reply = ("Give the first letter of the word." if tried >= 3
             else f"Name a letter of the word, try {tried}.")
    return f" {reply}\n" if base else f"<START>{reply}<END>"


def model(delay: float = 0.0, fail_after: int | None = None,
          failure: BaseException | None = None) -> ScriptedModel:
    """The letters task and OPRO's proposals; `delay` seconds per answer keeps a run going
    long enough to act on, and `failure` is raised at the answer after `fail_after`."""
    answered = [0]

    def answer(instruction: str, word: str) -> str:
        answered[0] += 1
        if fail_after is not None and answered[0] > fail_after:
            raise failure or BackendError("The model stopped answering.")
        time.sleep(delay)
        return letter_task(instruction, word)

    return ScriptedModel(answer, proposal)


def use_model(state: AppState, backend) -> None:
    settings = state.project.settings
    state.use_backend(settings.task_model, backend)
    state.use_backend(settings.optimizer_model, backend)


def open_letters(state: AppState, backend) -> None:
    if not state.workspace.exists("letters"):
        letters_project(state.workspace).close()
    state.open_project("letters")
    use_model(state, backend)


@pytest.fixture
def page(qtbot, state) -> RunPage:
    open_letters(state, model())
    widget = RunPage(state)
    qtbot.addWidget(widget)
    widget.resize(1040, 760)
    widget.show()
    widget.choose("opro", "quick")
    return widget


def errors_shown(widget) -> list[str]:
    return [box.text() for box in widget.findChildren(QMessageBox, "errorMessage")]


def wait_for_end(qtbot, state: AppState, timeout: int = RUN_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: not state.runs.running, timeout=timeout)


def uninterrupted_best(workspace: Workspace, name: str) -> tuple[str, tuple[int, ...]]:
    """The best prompt of the same run on a copy of the project, never interrupted."""
    project = letters_project(workspace, name)
    try:
        run = start_run(project, "opro")
        backend = model()
        outcome = runner.execute(project, run.id, backend, backend, control=RunControl())
        return outcome.best.instruction, outcome.best.demo_ids
    finally:
        project.close()


def best_of(project: Project, run_id: int) -> tuple[str, tuple[int, ...]]:
    best = project.candidate(project.run(run_id).best_candidate_id)
    return best.instruction, best.demo_ids


# -- 1. pause, resume, finish ----------------------------------------------------------


def test_a_run_pauses_resumes_and_finishes_from_the_page(page, qtbot, state):
    use_model(state, model(delay=0.002))
    seen = []
    state.runs.event.connect(seen.append)
    page.start_run()
    run_id = state.runs.active_run_id
    qtbot.waitUntil(lambda: any(isinstance(e, StepStarted) and e.step == 2 for e in seen),
                    timeout=RUN_TIMEOUT_MS)
    page.pause_run()
    assert page.pause_button.text() == "Pausing…" and not page.pause_button.isEnabled()
    wait_for_end(qtbot, state)

    assert state.project.run(run_id).status == "paused"
    assert "Paused" in page.outcome.text()
    assert page.unfinished.currentData() == run_id
    assert page.pause_button.text() == "Resume" and page.pause_button.isEnabled()
    log = page.log.toPlainText()
    assert "Step 1 of 3: Asking for instructions that beat the best so far." in log
    assert "New prompt #" in log and "scored" in log
    assert 0 < page.progress.value() < page.progress.maximum()
    assert "model calls" in page.progress_details.text()

    page.pause_run()  # the same button now resumes
    assert state.runs.running and state.runs.active_run_id == run_id
    assert page.unfinished.findData(run_id) < 0
    wait_for_end(qtbot, state)

    assert state.project.run(run_id).status == "finished"
    log = page.log.toPlainText()
    assert log.startswith("Resuming")
    assert "Step 3 of 3" in log and "Finished." in log
    outcome = page.outcome.text()
    assert outcome.startswith("Finished. " + state.project.run(run_id).choice["reason"])
    assert "The best prompt scores 100% on the dev examples" in outcome
    assert page.progress.value() == page.progress.maximum()
    assert page.unfinished.count() == 0
    assert best_of(state.project, run_id) == uninterrupted_best(state.workspace, "copy")


def test_events_are_shown_in_batches_not_one_by_one(page, qtbot, state, monkeypatch):
    appended = []
    original = page.log.appendPlainText
    monkeypatch.setattr(page.log, "appendPlainText",
                        lambda text: (appended.append(text), original(text)))
    seen = []
    state.runs.event.connect(seen.append)
    page.start_run()
    wait_for_end(qtbot, state)
    assert len(seen) > 30
    assert len(appended) <= len(seen) / 4
    assert sum(text.count("\n") + 1 for text in appended) > len(seen) / 2


# -- 2. the window stays responsive during a run ----------------------------------------


class Ticks:
    """A 10 ms timer in the GUI thread; a long gap between ticks is a stall the user feels.

    While it ticks, the objects the test session made before are frozen out of the garbage
    collector: after a thousand tests, one full collection of them takes 100 ms or more on
    a busy machine, a pause of the test process and not of the page under test."""

    def __init__(self, state: AppState) -> None:
        self.times: list[float] = []
        self.going: list[float] = []
        """When the run started and when it finished."""
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))
        state.runs.started.connect(lambda _: self.going.append(time.perf_counter()))
        state.runs.event.connect(
            lambda e: isinstance(e, RunFinished) and self.going.append(time.perf_counter()))

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        gc.unfreeze()

    def worst_gap(self, start: float = 0.0, end: float = float("inf")) -> float:
        times = [t for t in self.times if start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def worst_gaps(self) -> tuple[float, float]:
        """The worst gap while the run went, and counting its start and end."""
        return self.worst_gap(*self.going), self.worst_gap()


def test_a_flood_of_events_never_stalls_the_page(page, qtbot, state):
    """A scripted model answers at once, so the run sends its events as fast as it can."""
    use_model(state, ScriptedModel(letter_task, lambda prompt, call: f"Name letter {call}."))
    ticks = Ticks(state)
    seen = []
    state.runs.event.connect(seen.append)
    page.choose("ape", "quick")
    page.params.set_value("subsamples", 4)
    page.params.set_value("per_subsample", 20)
    ticks.start()
    page.start_run()
    wait_for_end(qtbot, state)
    qtbot.wait(100)
    ticks.stop()
    during, overall = ticks.worst_gaps()
    print(f"{len(seen)} events; worst gap {during * 1000:.0f} ms during the run, "
          f"{overall * 1000:.0f} ms counting its start and end")
    assert len(seen) > 300
    assert during < 0.1, f"the GUI thread stalled for {during * 1000:.0f} ms during the run"
    assert overall < 0.4, (f"the GUI thread stalled for {overall * 1000:.0f} ms as the run "
                           "started or ended")


@pytest.mark.model
def test_the_window_never_stalls_during_a_run_on_the_bundled_model(window, qtbot, state,
                                                                   bundled_model):
    letters_project(state.workspace, instruction="Write the first letter of the word.").close()
    state.open_project("letters")
    page = window.run_page
    page.choose("demos", "quick")
    page.max_calls.setText(str(runner.final_calls(runner.sizes(state.project)) + 24))
    ticks = Ticks(state)
    progress = []
    state.runs.event.connect(lambda e: isinstance(e, Progress) and progress.append(e))

    ticks.start()
    page.start_run()
    run_id = state.runs.active_run_id
    window.pages.setCurrentWidget(window.results_page)  # watching it live, as users do
    wait_for_end(qtbot, state, timeout=600_000)
    qtbot.wait(300)  # the end of a run refreshes the pages: that counts too
    ticks.stop()

    assert state.project.run(run_id).status == "finished"
    assert progress and "Finished." in page.outcome.text()
    assert page.progress.value() == page.progress.maximum()
    during, overall = ticks.worst_gaps()
    print(f"GUI thread: worst gap {during * 1000:.0f} ms during the run, "
          f"{overall * 1000:.0f} ms counting its start and end")
    assert during < 0.1, f"the GUI thread stalled for {during * 1000:.0f} ms during the run"
    assert overall < 0.4, (f"the GUI thread stalled for {overall * 1000:.0f} ms as the run "
                           "started or ended")


# -- 3. closing the window during a run -------------------------------------------------


def test_closing_the_window_pauses_the_run_and_a_new_window_resumes_it(
        window, qtbot, state, settings, answers, qtlog):
    open_letters(state, model(delay=0.003))
    page = window.run_page
    page.choose("opro", "quick")
    seen = []
    state.runs.event.connect(seen.append)
    page.start_run()
    run_id = state.runs.active_run_id
    qtbot.waitUntil(lambda: any(isinstance(e, Progress) for e in seen), timeout=RUN_TIMEOUT_MS)

    assert window.close()
    assert any("A run is still going" in question for question in answers.asked)
    assert not any(job.isRunning() for job in state.jobs.running())
    path = state.workspace.path_for("letters")
    project = Project.open(path)
    try:
        assert project.run(run_id).status == "paused"
    finally:
        project.close()
    assert not [r for r in qtlog.records if "Destroyed while thread" in r.message]

    again = AppState(Workspace(state.workspace.folder))
    reopened = MainWindow(again, settings)
    qtbot.addWidget(reopened)
    reopened.show()
    open_letters(again, model())
    resumable = reopened.run_page
    assert resumable.unfinished.currentData() == run_id
    assert "paused" in resumable.unfinished.currentText()
    resumable.resume_selected()
    wait_for_end(qtbot, again)
    assert again.project.run(run_id).status == "finished"
    assert best_of(again.project, run_id) == uninterrupted_best(again.workspace, "copy")
    reopened.close()


# -- 4. a crash, then the next start ----------------------------------------------------


def test_a_run_killed_mid_way_is_resumable_next_time_and_ends_the_same(page, qtbot, state):
    use_model(state, model(fail_after=40, failure=Crash("power cut")))
    page.start_run()
    run_id = state.runs.active_run_id
    wait_for_end(qtbot, state)
    assert state.project.run(run_id).status == "running"  # nothing had time to record it
    partial = len(state.project.candidates(run_id))
    assert partial >= 2
    state.shutdown()

    again = AppState(Workspace(state.workspace.folder))
    try:
        open_letters(again, model())
        assert again.project.run(run_id).status == "paused"
        fresh = RunPage(again)
        qtbot.addWidget(fresh)
        assert fresh.unfinished.currentData() == run_id
        assert "paused" in fresh.unfinished.currentText()
        fresh.pause_run()  # Resume
        wait_for_end(qtbot, again)
        assert again.project.run(run_id).status == "finished"
        assert best_of(again.project, run_id) == uninterrupted_best(again.workspace, "copy")
    finally:
        again.shutdown()


# -- 5. errors the user can meet --------------------------------------------------------


def test_a_missing_model_file_is_said_plainly_and_changes_nothing(page, qtbot, state,
                                                                  tmp_path):
    missing = ModelConfig(kind="local", path=str(tmp_path / "gone" / "model.gguf"))
    state.update_settings(task_model=missing, optimizer_model=missing)
    state._backends.clear()
    before = state.project.settings
    qtbot.waitUntil(lambda: "Cannot estimate" in page.plan_label.text(), timeout=10_000)

    page.start_run()
    shown = errors_shown(page)
    assert shown and "model.gguf" in shown[-1]
    assert "Traceback" not in shown[-1] and "Error:" not in shown[-1]
    assert not state.runs.running
    assert state.project.runs() == []
    assert state.project.candidates() == []
    assert state.project.settings == before
    assert page.start_button.isEnabled()


def test_a_model_failing_mid_run_fails_the_run_and_keeps_its_work(page, qtbot, state):
    use_model(state, model(fail_after=40))
    page.start_run()
    run_id = state.runs.active_run_id
    wait_for_end(qtbot, state)

    run = state.project.run(run_id)
    assert run.status == "failed" and "stopped answering" in run.error
    assert any("stopped answering" in text for text in errors_shown(page))
    assert "Stopped by an error" in page.outcome.text()
    assert len(state.project.candidates(run_id)) >= 2
    assert page.unfinished.currentData() == run_id
    assert "stopped by an error" in page.unfinished.currentText()

    use_model(state, model())
    page.resume_selected()
    wait_for_end(qtbot, state)
    assert state.project.run(run_id).status == "finished"
