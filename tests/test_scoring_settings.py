"""A score belongs to the settings it was made under (`store.records.Scoring`).

Changing the template, the metric, its options, the labels, how the answer is read, or the
answer length must not leave old scores counted as current: evaluating again asks again,
and gives what a fresh project with the new settings gives. Old scores stay, as history.
Runs keep the scoring, models and starting prompt they were created with.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import replace

import pytest
from optimize_support import ScriptedModel, letters_optimizer, letters_project, start_run
from scripted import ScriptedBackend
from task_data import data_rows

from promptstudio import reports, workflows
from promptstudio.best_prompt import OLD_SCORING, RUN_PICK, best_prompt
from promptstudio.dataio import Row
from promptstudio.optimize import runner
from promptstudio.optimize.context import RunControl
from promptstudio.optimize.events import StepStarted
from promptstudio.parsing import OutputParser
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import ProjectSettings, Scoring, settings_to_row
from promptstudio.store.schema import MIGRATIONS, migrate, schema_version

INSTRUCTION = "Say whether the review is positive or negative."
LABELS = ("positive", "negative")
ARITHMETIC = [("2 + 3", "5"), ("10 - 4", "6"), ("3 x 3", "9"), ("7 + 8", "15"),
              ("20 - 9", "11"), ("6 x 2", "12")]


def reviews(workspace, name: str, **settings):
    """Eight training rows and six dev rows of the sentiment task."""
    rows = [Row(r["input"], r["output"], tuple(r["answers"]))
            for r in data_rows("sentiment", "train", limit=14)]
    project = workspace.create(ProjectSettings(name=name, instruction=INSTRUCTION,
                                               **settings))
    project.add_examples(rows[:8], split="train")
    project.add_examples(rows[8:14], split="dev")
    return project


def sums(workspace, name: str, **settings):
    """Small sums whose answers are numbers: for the numeric metric's tolerance."""
    project = workspace.create(ProjectSettings(name=name, instruction="Work out the sum.",
                                               metric="numeric", **settings))
    project.add_examples([Row(q, a, (a,)) for q, a in ARITHMETIC[:3]], split="train")
    project.add_examples([Row(q, a, (a,)) for q, a in ARITHMETIC[3:]], split="dev")
    return project


LONG_ANSWER = Row("A review to answer at length.", "positive " * 40, ("positive " * 40,))

CHANGES = {
    # name: (project maker, settings before, settings after, rows added after)
    "template": (reviews, {}, {"template": "{instruction}\n\n{demos}Review: {input}\n"
                                           "Sentiment:"}, []),
    "metric": (reviews, {"labels": LABELS}, {"metric": "label"}, []),
    "metric options": (sums, {"tolerance": 1e-6}, {"tolerance": 100.0}, []),
    "labels": (reviews, {"metric": "label", "labels": LABELS},
               {"labels": ("positive", "negative", "mixed")}, []),
    "output parser": (reviews, {}, {"output_parser": OutputParser(
        mode="full", regex=r"(positive|negative)")}, []),
    "answer length": (reviews, {}, {}, [LONG_ANSWER]),
    "calibration": (reviews, {"metric": "label", "labels": LABELS}, {"calibrate": True}, []),
}


@pytest.mark.parametrize("setting", list(CHANGES))
def test_a_changed_setting_is_scored_again_as_a_fresh_project_would(
        workspace, local_backend, setting: str) -> None:
    make, before, after, rows = CHANGES[setting]
    project = make(workspace, "changed", **before)
    first = workflows.evaluate_instruction(project, local_backend, INSTRUCTION)
    old_key = project.scoring().key
    assert first.new_evaluations == first.n == len(project.examples("dev"))

    if after:
        project.update_settings(**after)
    if rows:
        project.add_examples(rows, split="train")
    assert project.scoring().key != old_key, f"{setting} must change what scores count"
    again = workflows.evaluate_instruction(project, local_backend, INSTRUCTION)

    fresh = make(workspace, "fresh", **{**before, **after})
    if rows:
        fresh.add_examples(rows, split="train")
    expected = workflows.evaluate_instruction(fresh, local_backend, INSTRUCTION)

    assert again.new_evaluations == again.n == first.n, "every row is scored again"
    assert [e.answer for e in again.evaluations] == [e.answer for e in expected.evaluations]
    assert again.score == expected.score
    # The old scores are kept, as history, under the settings they were made under.
    kept = project.evaluations(first.candidate.id, scoring=old_key)
    assert sorted(e.score for e in kept.values()) == sorted(e.score for e in first.evaluations)
    assert project.scoring_named(old_key) is not None


def test_scores_made_under_other_settings_never_mix_into_the_current_ones(workspace) -> None:
    project = reviews(workspace, "mixed", labels=LABELS)
    says_positive = ScriptedBackend(lambda prompt: " positive\n", scores={"positive": -0.1})
    prompt = workflows.evaluate_instruction(project, says_positive, INSTRUCTION).candidate
    exact = project.mean_score(prompt.id, "dev", scoring=project.scoring().key)
    assert exact[1] == 6 and best_prompt(project).current
    project.update_settings(metric="label")
    assert project.mean_score(prompt.id, "dev", scoring=project.scoring().key) == (None, 0)
    assert best_prompt(project) is None, "nothing is scored under the current settings"
    card = workflows.prompt_card(project, prompt)
    assert (card["metric"], card["current_settings"]) == ("normalized_exact", False)
    assert card["scores"]["dev"]["score"] == round(exact[0], 4)
    assert "made under earlier settings" in workflows.export_best(
        project, workspace.folder / "card.md", candidate=prompt).read_text()

    workflows.evaluate_instruction(project, says_positive, INSTRUCTION)
    best = best_prompt(project)
    assert best.current and best.scores["dev"][1] == len(project.examples("dev"))
    card = workflows.prompt_card(project, prompt)
    assert (card["metric"], card["current_settings"]) == ("label", True)
    [history] = reports.other_scores(project, prompt.id)
    assert history.startswith(f"dev {exact[0]:.2f} (6 rows)")
    assert "under earlier settings (before the metric (Loose match" in history


def letters_model() -> ScriptedModel:
    return ScriptedModel(lambda instruction, word: word[0], letters_optimizer)


def test_a_run_started_after_a_metric_change_scores_only_under_the_new_metric(
        workspace) -> None:
    project = letters_project(workspace, labels=("a", "b", "c"))
    model = letters_model()
    first = start_run(project, "protegi")
    assert runner.execute(project, first.id, model, model).status == "finished"
    old_key = project.scoring().key

    project.update_settings(metric="exact")
    second = start_run(project, "protegi")
    assert runner.execute(project, second.id, model, model).status == "finished"

    new_key = project.scoring().key
    assert new_key != old_key and project.run(second.id).scoring == new_key
    for candidate in project.candidates(second.id):
        for evaluation in project.evaluations(candidate.id).values():
            assert evaluation.scoring == new_key, f"candidate {candidate.id}"
    start = next(c for c in project.candidates(second.id) if c.operation == "start")
    assert project.mean_score(start.id, "test", scoring=new_key)[1] == 4
    # The first run keeps its own scores, and is said to be from earlier settings.
    assert all(e.scoring == old_key for c in project.candidates(first.id)
               for e in project.evaluations(c.id).values())
    best = best_prompt(project)
    assert best.source == RUN_PICK and best.run.id == second.id and best.current


def test_the_best_prompt_says_when_its_run_scored_under_earlier_settings(workspace,
                                                                        capsys) -> None:
    project = letters_project(workspace)
    model = letters_model()
    run = start_run(project, "protegi")
    runner.execute(project, run.id, model, model)
    project.update_settings(template="{instruction}\n\n{demos}Word: {input}\nLetter:")
    best = best_prompt(project)
    assert best.source == OLD_SCORING and not best.current
    assert f"Run {run.id} scored its prompts before the template changed" in best.why
    assert "how prompts are scored" in runner.again_note(project, project.run(run.id))
    from promptstudio import cli

    project.close()
    assert cli.main(["--workspace", str(workspace.folder), "runs", "letters"]) == 0
    assert "(scored under earlier settings)" in capsys.readouterr().out
    assert cli.main(["--workspace", str(workspace.folder), "show", "letters", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["scored_under_current_settings"] is False
    assert "before the template changed" in shown["why_best"]


def test_a_run_resumes_under_its_own_settings_instruction_and_model(workspace) -> None:
    project = letters_project(workspace)
    model = letters_model()
    run = start_run(project, "protegi")
    created_under = project.run(run.id).scoring
    control = RunControl()

    def pause_at_step_2(event) -> None:
        if isinstance(event, StepStarted) and event.step == 2:
            control.pause()

    assert runner.execute(project, run.id, model, model, control=control,
                          listener=pause_at_step_2).status == "paused"
    project.update_settings(metric="contains", instruction="Something else entirely.")
    assert runner.execute(project, run.id, model, model).status == "finished"

    assert project.run(run.id).scoring == created_under
    starts = [c for c in project.candidates(run.id) if c.operation == "start"]
    assert [c.instruction for c in starts] == ["Answer."]
    assert {e.scoring for c in project.candidates(run.id)
            for e in project.evaluations(c.id).values()} == {created_under}

    other = ScriptedModel(lambda instruction, word: word[0], letters_optimizer)
    other.name = "another-model"
    again = runner.run_again(project, run.id)
    runner.execute(project, again.id, model, model, control=_paused_at_once())
    with pytest.raises(ProjectError, match="cannot go on with"):
        runner.execute(project, again.id, other, other)


def _paused_at_once() -> RunControl:
    control = RunControl()
    control.pause()
    return control


def test_scorings_differ_only_in_what_can_change_a_score(workspace) -> None:
    project = reviews(workspace, "keys")
    key = project.scoring().key
    project.update_settings(labels=("yes", "no"))
    assert project.scoring().key == key, "labels do not count under an exact-match metric"
    project.update_settings(tolerance=0.5)
    assert project.scoring().key == key, "tolerance counts only for numbers"
    project.update_settings(task_description="Reviews of boots.", instruction="Judge it.")
    assert project.scoring().key == key
    project.update_settings(metric="label")
    assert project.scoring().key != key


# -- files saved before scores recorded their settings (schema 5) -----------------------


def test_a_version_5_file_gets_the_projects_current_scoring(tmp_path, caplog) -> None:
    """Its scores were made under settings no longer known: they are taken to be under the
    project's current ones, the best that can be known, and the log says so."""
    path = tmp_path / "v5.sqlite"
    settings = ProjectSettings(name="v5", instruction=INSTRUCTION, metric="label",
                               labels=LABELS)
    with sqlite3.connect(path) as conn:
        migrate(conn, MIGRATIONS[:5])
        row = {**settings_to_row(settings), "id": 1, "created": "then", "updated": "then"}
        row.pop("chat")  # a column of version 8
        conn.execute(f"INSERT INTO project ({', '.join(row)}) VALUES "
                     f"({', '.join('?' * len(row))})", list(row.values()))
        for i, (text, label, split) in enumerate([("Great boots.", "positive", "train"),
                                                  ("Thin fabric.", "negative", "dev"),
                                                  ("Works well.", "positive", "dev")], 1):
            conn.execute("INSERT INTO example (id, input, output, answers, split, created) "
                         "VALUES (?, ?, ?, ?, ?, 'then')",
                         (i, text, label, json.dumps([label]), split))
        choice = json.dumps({"model": "local:old.gguf:1"})
        conn.execute("INSERT INTO run (id, method, status, created, best_candidate_id, "
                     "choice) VALUES (1, 'ape', 'finished', 'then', NULL, ?)", (choice,))
        conn.execute("INSERT INTO run (id, method, status, created) "
                     "VALUES (2, 'opro', 'paused', 'then')")
        conn.execute("INSERT INTO candidate (id, run_id, instruction, fingerprint, created) "
                     "VALUES (1, 1, ?, 'f1', 'then')", (INSTRUCTION,))
        conn.execute("INSERT INTO candidate (id, run_id, instruction, fingerprint, created) "
                     "VALUES (2, 2, 'Judge the review.', 'f2', 'then')")
        for candidate, example, model, score in ((1, 2, "local:old.gguf:1", 1.0),
                                                 (1, 3, "local:old.gguf:1", 0.0),
                                                 (2, 2, "server:x#m", 1.0)):
            conn.execute("INSERT INTO evaluation (candidate_id, example_id, model, raw_output, "
                         "answer, score, created) VALUES (?, ?, ?, '', '', ?, 'then')",
                         (candidate, example, model, score))
    assert schema_version(sqlite3.connect(path)) == 5

    with caplog.at_level(logging.INFO, logger="promptstudio.store.schema"):
        project = Project.open(path)
    key = Scoring.of(settings, ["positive", "positive"]).key
    assert project.scoring().key == key
    assert project.scoring_named(key) == project.scoring()
    assert {e.scoring for c in (1, 2) for e in project.evaluations(c).values()} == {key}
    assert project.mean_score(1, "dev", scoring=key) == (0.5, 2)
    first, second = project.runs()
    assert (first.scoring, first.task_model_id) == (key, "local:old.gguf:1")
    assert (second.scoring, second.task_model_id) == (key, "server:x#m")
    assert "3 stored scores" in caplog.text and "best guess" in caplog.text
    # The new key lets a score under other settings sit beside the old one.
    project.update_settings(metric="normalized_exact")
    assert project.scoring().key != key
    assert project.integrity_check() == "ok"
    project.close()


def test_resume_from_the_cli_uses_the_runs_models_not_the_projects_new_ones(
        workspace, monkeypatch, tmp_path) -> None:
    from promptstudio import cli

    project = letters_project(workspace)
    run = start_run(project, "protegi")
    model = letters_model()
    runner.execute(project, run.id, model, model, control=_paused_at_once())
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    project.update_settings(task_model=replace(project.settings.task_model, path=str(other)))
    project.close()
    asked = []

    def make_backend(config):
        asked.append(config)
        return model

    monkeypatch.setattr(cli, "make_backend", make_backend)
    assert cli.main(["--workspace", str(workspace.folder), "resume", "letters:1",
                     "--json"]) == 0
    assert asked and all(config.path is None for config in asked), "the run's bundled model"
