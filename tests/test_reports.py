"""A run's results as data: candidates and scores, the trajectory, how each candidate was
made, the answers behind a score, the CSV report and export file names (no Qt)."""

from __future__ import annotations

import csv

import pytest
from optimize_support import (
    ScriptedModel,
    letters_optimizer,
    letters_project,
    letters_task,
    scripted_run,
)

from promptstudio import reports, workflows
from promptstudio.best_prompt import best_prompt
from promptstudio.optimize.events import CandidateCreated, CandidateScored, RunFinished
from promptstudio.reports import CandidateResult, RunResults, SplitScore


@pytest.fixture
def finished(workspace):
    events: list = []
    project, run_id = scripted_run(workspace, listener=events.append)
    yield project, run_id, events
    project.close()


def test_loaded_results_hold_every_candidate_with_its_stored_means(finished):
    project, run_id, _ = finished
    results = RunResults.load(project, run_id)

    assert set(results.candidates) == {c.id for c in project.candidates(run_id)}
    for candidate in results.candidates.values():
        for split in ("train", "dev", "test"):
            mean, count = project.mean_score(candidate.id, split)
            assert candidate.examples(split) == count
            assert candidate.score(split) == pytest.approx(mean) if count else (
                candidate.score(split) is None)
    run = project.run(run_id)
    assert results.status == "finished"
    assert results.best_candidate_id == run.best_candidate_id
    best = results.candidates[run.best_candidate_id]
    assert results.test_score == best.score("test") == 1.0
    assert results.baseline_test_score == results.start.score("test") == 0.0
    assert best.prompt_tokens and best.prompt_tokens > best.words
    assert results.title == "ProTeGi (textual gradients)"
    assert results.status_name == "Finished"
    assert results.best_score("dev") == 1.0


def test_events_build_the_same_candidates_as_loading(finished):
    project, run_id, events = finished
    loaded = RunResults.load(project, run_id)
    live = RunResults.empty(project.run(run_id))
    changed = {live.apply(event, lookup=project.candidate) for event in events}

    assert set(live.candidates) == set(loaded.candidates)
    assert changed - {None} == set(loaded.candidates)
    for candidate_id, candidate in live.candidates.items():
        stored = loaded.candidates[candidate_id]
        assert (candidate.operation, candidate.step, candidate.parent_ids,
                candidate.instruction) == (stored.operation, stored.step, stored.parent_ids,
                                           stored.instruction)
        assert (candidate.score("test") is None) == (stored.score("test") is None)
    assert (live.status, live.best_candidate_id, live.test_score) == (
        "finished", loaded.best_candidate_id, loaded.test_score)
    assert live.steps == 2


def test_without_a_lookup_an_unannounced_candidate_is_skipped():
    live = RunResults(1, "protegi")
    assert live.apply(CandidateScored(1, 7, "train", 0.5, 4, 0)) is None
    assert live.apply(CandidateCreated(1, 8, "Answer.", "opro", (7,), 1)) == 8
    assert live.apply(CandidateScored(1, 8, "train", 0.5, 4, 1)) == 8
    assert live.apply(CandidateScored(1, 8, "train", 1.0, 4, 1)) == 8
    assert live.candidates[8].score("train") == 0.75
    assert live.candidates[8].examples("train") == 8
    live.apply(RunFinished(1, "finished", 8, 0.9, 0.8, 0.2))
    assert (live.best_candidate_id, live.test_score, live.baseline_test_score) == (8, 0.8, 0.2)


def candidate(candidate_id: int, step: int, **scores: float) -> CandidateResult:
    return CandidateResult(candidate_id, 1, f"Prompt {candidate_id}", "opro", step,
                           scores={split: SplitScore(score, 1) for split, score in scores.items()})


def test_trajectory_has_best_so_far_and_step_means_per_split():
    path = reports.trajectory([
        candidate(1, 0, train=0.5),
        candidate(2, 1, train=0.25, dev=0.5),
        candidate(3, 1, train=0.75),
        candidate(4, 2),  # not scored: no point, no step of its own
        candidate(5, 3, train=0.5, dev=1.0),
    ], test_score=0.9)

    assert path.steps == [0, 1, 3]
    assert path.best_so_far == {"train": [0.5, 0.75, 0.75], "dev": [None, 0.5, 1.0]}
    assert path.step_mean == {"train": [0.5, 0.5, 0.5], "dev": [None, 0.5, 1.0]}
    assert len(path.points) == 6
    assert {(p.candidate_id, p.split) for p in path.points if p.step == 1} == {
        (2, "train"), (2, "dev"), (3, "train")}
    assert (path.test_score, path.last_step) == (0.9, 3)


def test_a_runs_trajectory_rises_and_has_a_point_per_score(finished):
    project, run_id, _ = finished
    results = RunResults.load(project, run_id)
    path = results.trajectory()
    scored = sum(1 for c in results.candidates.values() for split in ("train", "dev")
                 if c.score(split) is not None)
    assert len(path.points) == scored > 5
    best = [s for s in path.best_so_far["train"] if s is not None]
    assert best == sorted(best)
    assert path.test_score == 1.0


def test_provenance_of_a_gradient_edit_and_a_paraphrase(finished):
    project, run_id, _ = finished
    made = project.candidates(run_id)
    edit = next(c for c in made if c.operation == "gradient-edit")
    story = reports.provenance(project, edit)
    titles = [s.title for s in story]
    assert titles[0] == "How it was made"
    assert f"#{edit.parent_ids[0]}" in story[0].text
    problem = story[titles.index("The problem the optimizer model found")]
    assert problem.text == "It never says that a letter is wanted."
    wrong = story[titles.index("Answers it was shown that were wrong")]
    assert wrong.lines and all(" → " in line for line in wrong.lines)
    assert titles[-1].startswith("Examples shown to the model (3)")

    paraphrase = next(c for c in made if c.operation == "paraphrase")
    story = reports.provenance(project, paraphrase)
    assert f"reworded prompt #{paraphrase.meta['paraphrase_of']}" in story[0].text


def test_provenance_of_pe2_and_opro_candidates(workspace):
    project = letters_project(workspace)
    parent = project.add_candidate("Answer.", operation="start")
    pe2 = project.add_candidate(
        "Answer with the first letter.", parent_ids=[parent.id], operation="pe2",
        origin="The prompt never says what to answer.",
        meta={"history": '- "Answer.": 0.00', "momentum": "No edits yet.",
              "reasoning": "The prompt never says what to answer."})
    story = {s.title: s for s in reports.provenance(project, pe2)}
    assert story["The optimizer model's reasoning"].text.startswith("The prompt never")
    assert story["Optimization history it was given"].lines == ('- "Answer.": 0.00',)
    assert story["Momentum summary it was given"].lines == ("No edits yet.",)

    opro = project.add_candidate("Say the first letter.", parent_ids=[parent.id],
                                 operation="opro")
    known = {parent.id: CandidateResult(parent.id, None, "Answer.", "start", 0,
                                        scores={"train": SplitScore(0.25, 1)})}
    story = {s.title: s for s in reports.provenance(project, opro, known)}
    assert story["Earlier instructions it was shown (1)"].lines == (
        f"#{parent.id}: Answer. (score 25)",)
    project.close()


def test_answer_rows_join_examples_dev_first(finished):
    project, run_id, _ = finished
    best = project.run(run_id).best_candidate_id
    rows = reports.answer_rows(project, best)
    splits = [row.split for row in rows]
    assert splits == sorted(splits, key=["dev", "test", "train"].index)
    assert {"dev", "test"} <= set(splits)
    first = rows[0]
    assert first.expected == first.input[0]
    assert first.right and first.answer == first.expected
    start = RunResults.load(project, run_id).start
    assert not any(row.right for row in reports.answer_rows(project, start.id))


def test_csv_report_has_one_row_per_candidate(finished, tmp_path):
    project, run_id, _ = finished
    results = RunResults.load(project, run_id)
    chosen = results.start.id
    path = reports.write_csv(reports.candidate_rows([results], chosen_id=chosen),
                             tmp_path / "report.csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(results.candidates)
    assert list(rows[0]) == list(reports.CSV_COLUMNS)
    by_id = {int(row["Candidate"]): row for row in rows}
    assert by_id[results.best_candidate_id]["Best"] == "run's pick"
    assert by_id[chosen]["Best"] == "marked by you"
    assert by_id[chosen]["Made by"] == "Starting prompt"
    assert by_id[results.best_candidate_id]["Test score"] == "1.0"
    assert not (tmp_path / "report.csv.partial").exists()


def test_export_names_are_safe():
    assert reports.export_name("Product reviews/v2: ok?", "best-prompt", "md") == (
        "Product-reviews-v2-ok-best-prompt.md")
    assert reports.export_name("???", "scores", ".png") == "scores.png"
    assert reports.export_name("Éléphants", "candidates", "csv") == "Éléphants-candidates.csv"


def test_the_best_prompt_is_the_users_choice_else_the_runs_pick(finished):
    project, run_id, _ = finished
    best = project.run(run_id).best_candidate_id
    chosen = best_prompt(project)
    assert chosen.candidate.id == best and chosen.source == "run"
    assert chosen.why.startswith(f"The pick of run {run_id} (ProTeGi")
    assert chosen.why.endswith(project.run(run_id).choice["reason"])
    project.update_run(run_id, best_candidate_id=RunResults.load(project, run_id).start.id)
    assert best_prompt(project).candidate.id != best, "the run's pick, not the best dev"
    project.choose_candidate(best)
    chosen = best_prompt(project)
    assert chosen.candidate.id == best and chosen.why == "You marked it as the best prompt."


def test_without_a_finished_run_the_best_dev_score_is_the_best_prompt(workspace):
    project = letters_project(workspace)
    assert best_prompt(project) is None
    model = ScriptedModel(letters_task, letters_optimizer)
    workflows.evaluate_instruction(project, model, "Answer.")
    good = workflows.evaluate_instruction(project, model, "Give the first letter.")
    chosen = best_prompt(project)
    assert chosen.candidate.instruction == "Give the first letter."
    assert chosen.why.startswith("No run has finished yet")
    assert chosen.model == model.model_id and chosen.scores["dev"] == (1.0, 10)
    assert good.evaluations
    project.close()


def test_words_for_operations_and_times():
    assert reports.operation_name("gradient-edit") == "Rewritten to fix mistakes (ProTeGi)"
    assert reports.operation_name("new-trick") == "New trick"
    assert reports.local_time("not a time") == "not a time"
    assert len(reports.local_time("2024-05-01T14:03:27+00:00")) == len("2024-05-01 14:03")
    assert RunResults(1, "ape", then="demos").title == (
        "APE: instructions induced from examples, then Demonstration search")
    assert RunResults(1, "opro", then="demos", turns=2).short_title == (
        "OPRO and Demonstration search, taking turns 2 times")
    assert RunResults(1, "opro").short_title == "OPRO"
