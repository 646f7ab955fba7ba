"""The Run page's recipe: methods, presets, every setting, limits, checks and the estimate."""

from __future__ import annotations

import time

import pytest
from optimize_support import ScriptedModel, letters_project, start_run
from PySide6.QtWidgets import QComboBox, QLineEdit, QMessageBox, QSpinBox

from promptstudio.gui.run_page import RunPage
from promptstudio.llm.base import Cancelled, CancelToken
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.throughput import Throughput
from promptstudio.optimize.method import method_named, methods


def quiet_model() -> ScriptedModel:
    return ScriptedModel(lambda instruction, word: word[0],
                         lambda prompt, call: "<START>Give the first letter.<END>")


def slow_model(seconds: float = 0.003) -> ScriptedModel:
    """Slow enough that a run is still going when the test acts on it."""

    def answer(instruction: str, word: str) -> str:
        time.sleep(seconds)
        return word[0]

    return ScriptedModel(answer, lambda prompt, call: "<START>Give the first letter.<END>")


@pytest.fixture
def letters(state):
    """The letters project, open, with a scripted model standing in for both models."""
    letters_project(state.workspace).close()
    project = state.open_project("letters")
    state.use_backend(project.settings.task_model, quiet_model())
    return project


@pytest.fixture
def page(qtbot, state, letters) -> RunPage:
    widget = RunPage(state)
    qtbot.addWidget(widget)
    widget.resize(1040, 760)
    widget.show()
    return widget


def errors_shown(widget) -> list[str]:
    return [box.text() for box in widget.findChildren(QMessageBox, "errorMessage")]


def test_every_method_is_offered_with_its_explanation(page):
    titles = [page.method_list.item(i).text() for i in range(page.method_list.count())]
    assert sorted(titles) == sorted(method_named(name).title for name in methods())
    for name in methods():
        page.choose(name)
        assert page.method.name == name
        assert page.method_summary.text() == method_named(name).summary
        assert page.demo_search_row.isVisible() == (name != "demos")


def test_the_advanced_settings_show_every_setting_with_its_paper_default(page):
    assert not page.advanced.isVisible()
    page.advanced_toggle.click()
    assert page.advanced.isVisible()
    page.choose("protegi", "quick")
    method = method_named("protegi")
    assert set(page.params.fields) == set(method.presets["quick"])
    assert page.params.values() == method.presets["quick"]
    texts = [label.text() for label in page.params.findChildren(type(page.method_summary))]
    assert "Prompts kept per round" in texts
    assert str(method.paper["beam"]) in texts  # the paper's beam width beside the setting
    assert isinstance(page.params.fields["bandit"].widget, QComboBox)
    assert isinstance(page.params.fields["rounds"].widget, QSpinBox)


def test_each_kind_of_setting_gets_its_own_editor(page):
    page.choose("ape", "quick")
    widgets = {name: field.widget for name, field in page.params.fields.items()}
    assert isinstance(widgets["mode"], QComboBox)
    assert isinstance(widgets["stage_sizes"], QLineEdit)
    assert widgets["stage_sizes"].text() == "4, 8, 16"
    assert widgets["keep_fraction"].value() == 0.5
    page.params.set_value("stage_sizes", [3, 6, 12])
    page.params.set_value("mode", "both")
    assert page.params.overrides() == {"stage_sizes": [3, 6, 12], "mode": "both"}
    assert page.params.labels["mode"].font().bold()
    assert not page.params.labels["subsamples"].font().bold()


def test_a_switch_of_preset_starts_from_that_preset(page):
    page.choose("opro", "quick")
    page.params.set_value("steps", 7)
    page.choose("opro", "standard")
    assert page.params.values() == method_named("opro").presets["standard"]
    assert page.params.overrides() == {}


def test_text_that_is_no_list_of_numbers_is_refused_in_words(page, state):
    page.choose("ape", "quick")
    page.params.fields["stage_sizes"].widget.setText("four, eight")
    with pytest.raises(ValueError, match="whole numbers separated by commas"):
        page.params.overrides()
    page.start_run()
    assert any("whole numbers" in text for text in errors_shown(page))
    assert state.project.runs() == []


def test_the_estimate_follows_the_choices(page, qtbot, state):
    qtbot.waitUntil(lambda: "model calls" in page.plan_label.text(), timeout=10_000)
    page.choose("opro", "quick")
    plans = []
    state.runs.planned.connect(plans.append)
    page.params.set_value("steps", 1)
    page.params.set_value("steps", 2)
    page.params.set_value("per_step", 2)
    qtbot.waitUntil(lambda: bool(plans) and "model calls" in page.plan_label.text(),
                    timeout=10_000)
    qtbot.wait(600)
    assert len(plans) == 1, "quick changes in a row are estimated once"
    assert plans[0].params["steps"] == 2 and plans[0].params["per_step"] == 2
    assert f"about {plans[0].projected_calls:,} model calls" in page.plan_label.text()
    page.max_calls.setText("10")
    assert "a limit of 10 leaves nothing to search with" in page.plan_label.text()
    page.max_calls.setText(str(page._plan.final_calls + 20))
    assert (f"Your limit of {page._plan.final_calls + 20} model calls ends the search early"
            in page.plan_label.text())


def test_limits_and_seed_reach_the_run(page, qtbot, state):
    page.choose("opro", "quick")
    page.max_calls.setText("400")
    page.max_minutes.setText("2.5")
    page.seed.setValue(7)
    page.demo_search.setCurrentIndex(page.demo_search.findData("take turns"))
    page.start_run()
    qtbot.waitUntil(lambda: not state.runs.running, timeout=20_000)
    run = state.project.runs()[-1]
    assert run.budget == {"max_calls": 400, "max_minutes": 2.5}
    assert run.seed == 7 and run.preset == "quick"
    assert (run.params["then"], run.params["turns"]) == ("demos", 2)
    assert run.llm_calls <= 400


def test_a_limit_too_small_to_choose_the_best_prompt_is_refused_with_the_reason(page, qtbot,
                                                                                 state):
    page.choose("demos", "quick")
    page.max_calls.setText("10")
    page.start_run()
    qtbot.waitUntil(lambda: bool(errors_shown(page)), timeout=20_000)
    assert any("a limit of 10 leaves nothing to search with" in text
               for text in errors_shown(page))
    assert state.project.runs() == []


def test_a_template_without_input_stops_the_run_before_it_starts(page, state):
    # The store refuses such a template; an older or hand-edited project file may hold one.
    state.project.db["project"].update(1, {"template": "Instruction: {instruction}\nOutput:"})
    state.settings_changed.emit()
    assert "no {input} slot" in page.checks.text()
    page.start_run()
    assert any("{input}" in text for text in errors_shown(page))
    assert state.project.runs() == []


def test_a_project_without_training_examples_is_told_what_to_do(qtbot, state):
    from promptstudio.store.records import ProjectSettings

    state.workspace.create(ProjectSettings(name="empty")).close()
    state.open_project("empty")
    widget = RunPage(state)
    qtbot.addWidget(widget)
    widget.start_run()
    assert any("no training examples" in text for text in errors_shown(widget))
    assert state.project.runs() == []


def test_no_dev_examples_asks_before_starting(qtbot, state, answers):
    from promptstudio.dataio import Row
    from promptstudio.store.records import ProjectSettings

    project = state.workspace.create(ProjectSettings(name="nodev"))
    project.add_examples([Row(f"w{i}", "x", ("x",), "train") for i in range(8)])
    project.close()
    project = state.open_project("nodev")
    state.use_backend(project.settings.task_model, quiet_model())
    widget = RunPage(state)
    qtbot.addWidget(widget)
    assert "no dev examples" in widget.checks.text()
    answers.replies = [False]
    widget.start_run()
    assert "no dev examples" in answers.asked[0]
    assert state.project.runs() == []


def test_unfinished_runs_are_offered_for_resuming(page, state):
    assert not page.unfinished.isVisible()
    paused = start_run(state.project, "opro")
    state.project.update_run(paused.id, status="paused", llm_calls=12)
    failed = start_run(state.project, "ape")
    state.project.update_run(failed.id, status="failed", error="ServerError: timed out")
    state.candidates_changed.emit()
    assert page.unfinished.isVisible()
    assert page.unfinished.count() == 2
    assert page.unfinished.itemData(0) == failed.id  # newest first
    assert "stopped by an error" in page.unfinished.itemText(0)
    assert "paused" in page.unfinished.itemText(1)
    assert "12 model calls" in page.unfinished.itemText(1)
    assert page.resume_button.isEnabled()
    assert page.pause_button.text() == "Resume" and page.pause_button.isEnabled()


def test_buttons_follow_the_run(page, qtbot, state):
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    state.use_backend(state.project.settings.task_model, slow_model())
    page.choose("opro", "quick")
    page.start_run()
    assert state.runs.running
    assert not page.start_button.isEnabled()
    assert page.pause_button.text() == "Pause" and page.stop_button.isEnabled()
    assert not page.settings_panel.isEnabled()
    qtbot.waitUntil(lambda: not state.runs.running, timeout=20_000)
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    assert page.settings_panel.isEnabled()


def test_stopping_asks_first_because_a_stopped_run_cannot_resume(page, qtbot, state, answers):
    state.use_backend(state.project.settings.task_model, slow_model())
    page.choose("opro", "quick")
    page.start_run()
    answers.replies = [False]
    page.stop_run()
    assert "cannot continue later" in answers.asked[0]
    assert state.runs.running
    page.stop_run()
    qtbot.waitUntil(lambda: not state.runs.running, timeout=20_000)
    assert state.project.runs()[-1].status == "cancelled"
    assert "Stopped" in page.outcome.text()


def test_the_page_is_usable_without_a_project(qtbot, state):
    widget = RunPage(state)
    qtbot.addWidget(widget)
    widget.show()
    assert not widget.start_button.isEnabled()
    widget.start_run()
    assert any("Open or create a project" in text for text in errors_shown(widget))
    assert widget.findChildren(QComboBox, "demoSearch")


def test_the_proposal_for_the_models_in_use_is_shown_and_chosen(page, state):
    assert page.method.name == "demos", "the proposal is chosen when a project opens"
    assert page.proposal_label.text().startswith(
        "Proposed: Demonstration search (thorough).")
    assert page.preset == "thorough"
    page.choose("pe2", "quick")
    page.use_proposal.click()
    assert (page.method.name, page.preset, page.then()) == ("demos", "thorough", None)


def test_a_method_the_optimizer_model_cannot_serve_is_warned_about_not_refused(page, state):
    page.choose("pe2")
    assert "PE2 asks the optimizer model, Gemma 3 270M (Q4_K_M) (bundled)" in page.checks.text()
    assert page.start_button.isEnabled()
    page.choose("demos")
    assert "asks the optimizer model" not in page.checks.text()


def test_a_model_file_whose_template_reaches_for_python_is_stopped_and_named(
        qtbot, state, tmp_path):
    """No code of the template runs, the message names the file, the window stays up."""
    from optimize_support import gguf_header

    from promptstudio.llm.config import ModelConfig

    evil = gguf_header(tmp_path / "evil-instruct.gguf", {
        "general.architecture": "llama",
        "tokenizer.chat_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, 10_000)
    letters_project(state.workspace).close()
    state.open_project("letters")
    state.update_settings(task_model=ModelConfig(path=str(evil)),
                          optimizer_model=ModelConfig(path=str(evil)))
    widget = RunPage(state)
    qtbot.addWidget(widget)
    widget.show()
    widget.choose("demos", "quick")
    widget.start_run()
    qtbot.waitUntil(lambda: bool(errors_shown(widget)), timeout=30_000)
    shown = " ".join(errors_shown(widget))
    assert "evil-instruct.gguf" in shown and "nothing of it ran" in shown
    assert widget.isVisible() and not state.runs.running


@pytest.mark.model
def test_a_run_started_while_the_model_is_timed_stops_the_timing(
        qtbot, window, state, monkeypatch, run_in_window):
    """Timing a model beside a run would slow the run and remember too slow a speed: the
    run page's first estimate times the model, and a run started meanwhile stops that
    timing; once the run has ended, the page times the model and estimates again."""
    letters_project(state.workspace, instruction="Write the first letter of the word.").close()
    state.open_project("letters")
    seen: list[str] = []

    def timing(backend: LocalBackend, cancel: CancelToken) -> Throughput:
        """Stands in for the measurement (seconds of parts, checked between them)."""
        seen.append("started")
        for _ in range(100):
            if cancel.cancelled:
                seen.append("stopped")
                raise Cancelled()
            time.sleep(0.05)
        seen.append("finished")
        return Throughput(backend.model_id, backend.n_threads, {256: 300.0},
                          {1: 40.0, 16: 110.0})

    monkeypatch.setattr(LocalBackend, "throughput", timing)
    plans = []
    state.runs.planned.connect(plans.append)
    window.pages.setCurrentWidget(window.run_page)
    qtbot.waitUntil(lambda: "started" in seen, timeout=10_000)
    run_in_window("demos", settings={"max_k": 4, "random_sets": 1, "bootstrapped_sets": 1,
                                     "layouts": 0, "orders": 0})
    assert seen[:2] == ["started", "stopped"]
    assert plans[0].projected_seconds is None, "estimated without times meanwhile"
    qtbot.waitUntil(lambda: "on this computer" in window.run_page.plan_label.text(),
                    timeout=30_000)
    assert seen[-1] == "finished" and plans[-1].projected_seconds is not None
