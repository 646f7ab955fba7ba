"""The numbers mean what they say: a prompt keeps the demonstrations it was scored with,
imports do not copy rows silently, a prompt is never scored on its own demonstrations,
limits hold for the plan and the run, and a Ctrl-C keeps what the run had spent."""

from __future__ import annotations

import pytest
from optimize_support import (
    ScriptedModel,
    letters_optimizer,
    letters_project,
    letters_task,
    search_budget,
    start_run,
)
from scripted import ScriptedBackend
from task_data import data_rows, write_jsonl

from promptstudio import workflows
from promptstudio.cli import main
from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.events import StepStarted


def first_letter_model() -> ScriptedModel:
    return ScriptedModel(lambda instruction, word: word[0], letters_optimizer)


# -- 1. a prompt is its text ---------------------------------------------------------------


def test_deleting_a_demonstration_row_leaves_the_prompt_and_its_scores_as_scored(
        workspace, tmp_path) -> None:
    project = letters_project(workspace)
    model = first_letter_model()
    run = start_run(project, "demos")
    runner.execute(project, run.id, model, model)
    best = workflows.prompt_card(project, project.candidate(project.run(run.id)
                                                            .best_candidate_id))
    shown = project.candidate(project.run(run.id).best_candidate_id)
    assert len(shown.demo_ids) >= 3
    note = workflows.demonstration_note(project, [shown.demo_ids[0]])
    assert "shown as a demonstration in" in note and "the best prompt among them" in note

    project.delete_examples([shown.demo_ids[0]])
    project.update_example(shown.demo_ids[1], output="changed")

    after = workflows.prompt_card(project, project.candidate(shown.id))
    assert after["demos"] == best["demos"] and after["prompt"] == best["prompt"]
    assert after["scores"] == best["scores"]
    written = workflows.export_best(project, tmp_path / "best.json").read_text()
    assert written.count('"input"') == len(shown.demo_ids)
    assert workflows.demonstration_note(project, [project.examples("test")[0].id]) == ""


def test_a_candidate_cannot_show_a_row_that_is_gone(workspace) -> None:
    project = letters_project(workspace)
    gone = project.examples("train")[0].id
    project.delete_examples([gone])
    with pytest.raises(Exception, match=f"Example {gone} no longer exists"):
        project.add_candidate("Answer.", [gone])


# -- 2. imports compare with the rows already there ---------------------------------------


def test_importing_the_same_rows_again_adds_nothing_and_says_so(cli, tmp_path) -> None:
    data = write_jsonl(tmp_path / "antonyms.jsonl", data_rows("antonyms", "train", 30))
    assert cli("new", "d", "--data", str(data))[0] == 0
    code, out, _ = cli("import", "d", "--data", str(data), "--seed", "7")
    assert code == 0 and "Imported 0 rows" in out and "Skipped 30 rows the project" in out
    code, out, _ = cli("import", "d", "--data", str(data), "--split", "test")
    assert "Imported 0 rows" in out
    assert cli("check", "d")[0] == 0

    code, out, _ = cli("import", "d", "--data", str(data), "--split", "test",
                       "--allow-duplicates")
    assert "Imported 30 rows (30 test)" in out
    assert "30 of the new rows have an input the project already has in another split" in out
    code, out, _ = cli("check", "d")
    assert code == 1 and "30 inputs are in more than one split" in out
    code, _, err = cli("optimize", "d", "--method", "demos")
    assert code != 0 and "--allow-overlap" in err


def test_the_import_preview_counts_rows_the_project_has(workspace) -> None:
    from promptstudio.dataio import ImportResult, Row

    project = letters_project(workspace)
    old = project.examples("dev")[0]
    rows = [Row(old.input, old.output, old.answers), Row("zebra", "z", ("z",)),
            Row(old.input, "another answer", ("another answer",))]
    report = workflows.plan_import(ImportResult(rows, [], 0), "pasted", split="train",
                                   project=project)
    assert (report.already, report.elsewhere, sum(report.added.values())) == (1, 1, 2)


def test_a_run_asks_before_it_starts_with_a_test_row_in_train(workspace) -> None:
    project = letters_project(workspace)
    assert runner.overlap_question(project) == ""
    row = project.examples("test")[0]
    from promptstudio.dataio import Row

    project.add_examples([Row(row.input, row.output, row.answers, "train")])
    assert runner.overlap_question(project).startswith("1 training input is also in dev")


# -- 3. never scored on its own demonstrations -----------------------------------------------


def test_eval_on_train_leaves_out_the_prompts_own_demonstrations(workspace) -> None:
    project = letters_project(workspace)
    model = ScriptedBackend(lambda prompt: " x\n")
    result = workflows.evaluate_instruction(project, model, "Answer.", demos=8,
                                            split="train")
    shown = set(result.candidate.demo_ids)
    assert len(shown) == 8 and result.left_out == 8
    assert result.n == 20 - 8
    assert not shown & {e.example_id for e in result.evaluations}


# -- 4. limits hold for the plan and the run -----------------------------------------------


def test_the_plan_is_worked_out_within_the_limits(workspace) -> None:
    project = letters_project(workspace)
    plan = runner.plan(project, "protegi")
    limit = runner.final_calls(runner.sizes(project)) + 10
    within = plan.within(Budget(max_calls=limit))
    assert plan.projected_calls > limit and within.projected_calls == limit
    assert f"your limit of {limit} model calls ends the search early" in within.describe()
    assert plan.within(Budget()) is plan


def test_a_run_never_passes_its_call_limit(workspace) -> None:
    project = letters_project(workspace)
    model = first_letter_model()
    budget = search_budget(project, 12)
    run = start_run(project, "protegi", budget=budget)
    outcome = runner.execute(project, run.id, model, model)
    assert outcome.status == "finished"
    assert 0 < outcome.llm_calls <= budget.max_calls
    # The first minibatch (16 rows) is cut to the 12 calls the search may make.
    train = {e.id for e in project.examples("train")}
    searched = sum(1 for c in project.candidates(run.id)
                   for e in project.evaluations(c.id).values() if e.example_id in train)
    assert searched == 12


def test_help_says_what_each_limit_covers(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the most model calls for the whole run" in text
    assert "counted on across pauses" in text


# -- 5. Ctrl-C keeps the counters -----------------------------------------------------------


def test_ctrl_c_keeps_what_the_run_spent_and_resume_adds_up(workspace) -> None:
    alone = letters_project(workspace, name="alone")
    model = ScriptedModel(letters_task, letters_optimizer)
    whole = runner.execute(alone, start_run(alone, "protegi").id, model, model)

    project = letters_project(workspace, name="paused")
    run = start_run(project, "protegi")
    model = ScriptedModel(letters_task, letters_optimizer)

    def ctrl_c_at_step_2(event) -> None:
        if isinstance(event, StepStarted) and event.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.execute(project, run.id, model, model, listener=ctrl_c_at_step_2)
    paused = project.run(run.id)
    assert paused.status == "paused"
    assert paused.llm_calls > 0 and paused.seconds > 0
    finished = runner.execute(project, run.id, model, model)
    assert finished.llm_calls == whole.llm_calls


def test_a_version_6_file_gives_its_prompts_their_demonstrations_text(tmp_path,
                                                                     caplog) -> None:
    import json
    import logging
    import sqlite3

    from promptstudio.store.project import Project
    from promptstudio.store.schema import MIGRATIONS, migrate

    path = tmp_path / "v6.sqlite"
    with sqlite3.connect(path) as conn:
        migrate(conn, MIGRATIONS[:6])
        conn.execute("INSERT INTO project (id, name, template, demo_format, created, "
                     "updated) VALUES (1, 'v6', '{demos}{input}', '{input} {output}', 'then', "
                     "'then')")
        conn.execute("INSERT INTO example (id, input, output, answers, split, created) "
                     "VALUES (1, 'apple', 'a', '[\"a\"]', 'train', 'then')")
        for candidate, ids in ((1, [1]), (2, [1, 99]), (3, [])):
            conn.execute("INSERT INTO candidate (id, instruction, demo_ids, fingerprint, "
                         "created) VALUES (?, 'Answer.', ?, ?, 'then')",
                         (candidate, json.dumps(ids), f"f{candidate}"))
    with caplog.at_level(logging.INFO, logger="promptstudio.store.schema"):
        project = Project.open(path)
    assert project.candidate(1).demos == (("apple", "a"),)
    assert project.candidate(2).demos == (("apple", "a"),)
    assert project.candidate(3).demos == ()
    assert "1 prompts show a demonstration whose row was deleted" in caplog.text
    project.close()
