"""Which prompt "export the best" writes: the user's choice first, then a run's pick."""

from __future__ import annotations

import json

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.store.records import Evaluation, ProjectSettings


def scored_project(workspace):
    project = workspace.create(ProjectSettings(name="exports", instruction="Answer."))
    project.add_examples([Row(w, w[0], (w[0],), "dev") for w in ("ant", "bee", "cat")])
    dev = project.examples("dev")

    def candidate(instruction: str, right: int, **kwargs):
        made = project.add_candidate(instruction, **kwargs)
        for i, example in enumerate(dev):
            project.save_evaluation(Evaluation(made.id, example.id, "m", "", "",
                                               float(i < right), scoring=project.scoring().key))
        return made

    return project, candidate


def test_without_runs_or_choices_the_best_on_dev_is_exported(workspace, tmp_path):
    project, candidate = scored_project(workspace)
    candidate("Weak.", 1)
    strong = candidate("Strong.", 3)
    out = workflows.export_best(project, tmp_path / "best.json")
    assert json.loads(out.read_text())["instruction"] == strong.instruction


def test_a_finished_runs_pick_beats_a_lucky_dev_score(workspace, tmp_path):
    project, candidate = scored_project(workspace)
    run = project.add_run("ape")
    kept = candidate("Kept start.", 2, run_id=run.id, operation="start")
    candidate("Lucky.", 3, run_id=run.id)
    project.update_run(run.id, status="finished", best_candidate_id=kept.id)
    out = workflows.export_best(project, tmp_path / "best.json")
    assert json.loads(out.read_text())["instruction"] == "Kept start."


def test_the_users_choice_comes_first(workspace, tmp_path):
    project, candidate = scored_project(workspace)
    chosen = candidate("Mine.", 0)
    candidate("Strong.", 3)
    project.choose_candidate(chosen.id)
    out = workflows.export_best(project, tmp_path / "best.md")
    assert "Mine." in out.read_text()
