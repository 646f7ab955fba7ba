"""GrIPS: phrases, its four edits, its score and its loop on a scripted model; one run on
the bundled model with a tiny budget."""

from __future__ import annotations

import math

import pytest
from optimize_support import ScriptedModel, letters_project, search_budget, start_run
from scripted import meta_prompt_of

from promptstudio.optimize import runner
from promptstudio.optimize.grips import (
    balanced_accuracy,
    join_phrases,
    label_entropy,
    split_phrases,
    usable_paraphrase,
)
from promptstudio.optimize.method import method_named, methods
from promptstudio.store.records import Evaluation, Example

START = "Give the first letter of the word backwards."


def test_an_instruction_is_cut_into_phrases_and_put_back_together():
    assert split_phrases(START) == ["Give the first letter", "of the word backwards", "."]
    assert split_phrases("Read the text, then answer: yes or no.") == [
        "Read the text", ",", "then answer", ":", "yes or no", "."]
    for text in (START, "Read the text, then answer: yes or no.", "Name it. Then stop!"):
        assert join_phrases(split_phrases(text)) == text
    # After an edit: no mark at the start or twice, a capital first, the end kept.
    assert join_phrases(["of the word", ",", ".", "give it"]) == "Of the word. Give it"
    assert join_phrases([",", "say it", ".", "."]) == "Say it."


def test_a_reworded_phrase_must_stand_in_for_the_phrase():
    assert usable_paraphrase(" the initial letter.\n", "the first letter") == (
        "the initial letter")
    assert usable_paraphrase("\"the first letter\"", "the first letter") is None
    assert usable_paraphrase("Phrase: something else", "the first letter") is None
    assert usable_paraphrase("", "the first letter") is None
    assert usable_paraphrase("a b c d e f g h i j k", "the first letter") is None


def test_the_score_rewards_balance_between_labels():
    rows = [Example(i, f"x{i}", label, (label,), "train")
            for i, label in enumerate(["yes", "yes", "yes", "no"], 1)]

    def judged(answers):
        return [Evaluation(r.id, r.id, "m", a, a, float(a == r.output))
                for r, a in zip(rows, answers, strict=True)]

    always_yes = judged(["yes"] * 4)
    assert balanced_accuracy(always_yes, rows) == 0.5  # plain accuracy would say 0.75
    assert label_entropy(["yes"] * 4, ["yes", "no"]) == 0.0
    mixed = ["yes", "no", "yes", "no"]
    assert balanced_accuracy(judged(mixed), rows) == pytest.approx((2 / 3 + 1) / 2)
    assert label_entropy(mixed, ["yes", "no"]) == pytest.approx(math.log(2))


def first_letter_unless_backwards(instruction: str, word: str) -> str:
    return word[-1] if "backwards" in instruction.lower() else word[0]


def rewords(prompt: str, call: int) -> str:
    assert meta_prompt_of(prompt) == "grips_paraphrase", "GrIPS asks only for rewordings"
    return " the initial letter\n"


def test_the_search_keeps_an_edit_only_when_it_scores_better(workspace):
    project = letters_project(workspace, instruction=START)
    run = start_run(project, "grips")
    model = ScriptedModel(first_letter_unless_backwards, rewords)
    outcome = runner.execute(project, run.id, model, model)

    made = project.candidates(run.id)
    by_text = {c.instruction: c for c in made}
    kept = by_text["Give the first letter."]
    assert (kept.operation, kept.origin) == ("grips-del",
                                             "Deleted \u201cof the word backwards\u201d.")
    assert {"grips-swap", "grips-sub"} <= {c.operation for c in made}
    assert any("initial letter" in c.instruction for c in made if c.operation == "grips-sub")
    assert outcome.best.instruction == "Give the first letter."
    assert outcome.choice.kind == "found"
    assert model.optimizer_calls % 4 == 0, "paraphrases are drawn four at a time"


def test_a_phrase_deleted_earlier_can_be_put_back(workspace):
    """Deleting "backwards" helps; later rounds may put the deleted phrase back elsewhere
    (never new text), which does not help."""
    project = letters_project(workspace, instruction="Give the first letter of the word "
                                                     "backwards, then stop.")
    run = start_run(project, "grips", overrides={"candidates": 8, "rounds": 3})
    model = ScriptedModel(first_letter_unless_backwards, rewords)
    runner.execute(project, run.id, model, model)
    added = [c for c in project.candidates(run.id) if c.operation == "grips-add"]
    assert added and all("backwards" in c.instruction.lower() for c in added)
    assert all(c.origin == "Put back \u201cof the word backwards\u201d, deleted earlier."
               for c in added)


def test_the_search_stops_when_patience_runs_out(workspace):
    project = letters_project(workspace, instruction="Give the first letter.")
    run = start_run(project, "grips", overrides={"rounds": 10, "patience": 2})
    model = ScriptedModel(first_letter_unless_backwards, rewords)
    steps = []
    runner.execute(project, run.id, model, model,
                   listener=lambda event: steps.append(getattr(event, "step", None)))
    assert max(s for s in steps if s is not None) == 2, "two rounds with nothing better"


def test_grips_is_a_method_like_the_others():
    grips = method_named("grips")
    assert methods().index("grips") == methods().index("ape") + 1
    assert grips.meta_prompts == ("grips_paraphrase",)
    assert set(grips.settings) == set(grips.paper) == set(grips.presets["quick"])
    assert not grips.needs_capable_writer


@pytest.mark.model
def test_grips_on_the_bundled_model_with_a_tiny_budget(workspace, local_backend):
    project = letters_project(workspace, instruction="Write the first letter of the word.")
    run = start_run(project, "grips", budget=search_budget(project, 40),
                    overrides={"score_rows": 8})
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished"
    assert outcome.llm_calls <= search_budget(project, 40).max_calls
    edits = [c for c in project.candidates(run.id) if c.operation.startswith("grips-")]
    assert edits, "GrIPS made edited instructions"
    assert outcome.best is not None and outcome.choice.reason


@pytest.mark.model
def test_grips_killed_inside_its_batches_ends_as_the_run_left_alone(tmp_path, bundled_model):
    """The kill campaign of `tests/test_kill_campaign.py`, on GrIPS: killed twice inside
    its calls and resumed, it ends with the same prompts, pick and scores."""
    import sys
    from pathlib import Path

    from task_data import data_project

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from kill_campaign import campaign

    def small_letters(workspace, name: str) -> None:
        data_project(workspace, name=name, instruction="Write the first letter of the word.",
                     train=12, dev=6, test=4).close()

    report = campaign(tmp_path, small_letters, "grips", "quick", kills=2)
    assert report.kills == len(report.kill_points) == 2, report.kill_points
    assert report.differences == []
