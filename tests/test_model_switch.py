"""Comparing the current and a new task model on the project's best prompt."""

from __future__ import annotations

import pytest
from named_models import NamedModel, first_letter, knows_nothing, letters_project

from promptstudio.dataio import Row
from promptstudio.evaluation import Evaluator
from promptstudio.llm.base import CancelToken, ServerError
from promptstudio.model_switch import (
    CarriedPrompt,
    ModelComparison,
    SplitComparison,
    compare_models,
    percent,
    prompt_to_carry,
)
from promptstudio.store.project import ProjectError
from promptstudio.store.records import ProjectSettings


@pytest.fixture
def project(workspace):
    return letters_project(workspace)


def test_without_scores_the_starting_instruction_is_carried(project) -> None:
    prompt = prompt_to_carry(project)
    assert prompt == CarriedPrompt("Give the first letter.")
    assert "starting instruction" in prompt.describe()


def test_the_best_prompt_on_dev_is_carried_with_its_demos(project) -> None:
    good = project.add_candidate("Say the first letter.", (1, 2))
    Evaluator(project, NamedModel("old", first_letter)).evaluate(good, project.examples("dev"))
    prompt = prompt_to_carry(project)
    assert prompt == CarriedPrompt("Say the first letter.", (1, 2), good.id, is_best=True)
    assert prompt.describe() == "the project's best prompt, with 2 worked examples"


def test_nothing_to_carry_without_any_prompt(workspace) -> None:
    assert prompt_to_carry(letters_project(workspace, "", name="empty")) is None


def test_a_model_that_breaks_the_prompt_shows_the_drop(project) -> None:
    old, new = NamedModel("old", first_letter), NamedModel("new", knows_nothing)
    progress = []
    comparison = compare_models(project, prompt_to_carry(project), old, new,
                                old_name="Old model", new_name="New model",
                                on_progress=lambda *report: progress.append(report))
    dev, test = comparison.splits
    assert (dev.split, dev.examples, dev.old_score, dev.new_score) == ("dev", 6, 1.0, 0.0)
    assert (test.split, test.examples, test.old_count, test.new_count) == ("test", 4, 4, 4)
    assert dev.change == -1.0
    assert comparison.verdict() == (
        "With the new model this prompt scores 100 points lower (100% → 0% on dev). "
        "Re-tuning it for the new model should win some of that back.")
    assert ("Scoring with New model, dev rows", 6, 6) in progress
    assert ("Scoring with Old model, test rows", 4, 4) in progress
    # Both models' evaluations stay in the project, side by side.
    candidate = comparison.candidate
    assert project.mean_score(candidate.id, "dev", model="scripted:old") == (1.0, 6)
    assert project.mean_score(candidate.id, "dev", model="scripted:new") == (0.0, 6)


def test_scores_already_stored_are_not_asked_for_again(project) -> None:
    old, new = NamedModel("old", first_letter), NamedModel("new", first_letter)
    prompt = prompt_to_carry(project)
    compare_models(project, prompt, old, new, old_name="a", new_name="b")
    asked = len(old.prompts) + len(new.prompts)
    comparison = compare_models(project, prompt_to_carry(project), old, new, old_name="a",
                                new_name="b")
    assert len(old.prompts) + len(new.prompts) == asked
    assert "about as well" in comparison.verdict()


def test_an_unreachable_current_model_is_noted_not_fatal(project) -> None:
    def gone(prompt: str) -> str:
        raise ServerError("Could not reach the model server at http://old:8080/v1.")

    comparison = compare_models(project, prompt_to_carry(project), NamedModel("old", gone),
                                NamedModel("new", first_letter), old_name="a", new_name="b")
    assert comparison.old_model_problem.startswith("Could not reach")
    assert [s.new_score for s in comparison.splits] == [1.0, 1.0]
    assert [s.old_score for s in comparison.splits] == [None, None]
    assert "no score with the current model" in comparison.verdict()


def test_the_new_model_failing_is_the_users_to_see(project) -> None:
    def broken(prompt: str) -> str:
        raise ServerError("The server at http://new:8080/v1 rejected the request.")

    with pytest.raises(ServerError):
        compare_models(project, prompt_to_carry(project), NamedModel("old", first_letter),
                       NamedModel("new", broken), old_name="a", new_name="b")


def test_stopping_keeps_what_was_scored(project) -> None:
    cancel = CancelToken()

    def answer_then_stop(prompt: str) -> str:
        cancel.cancel()
        return "?"

    comparison = compare_models(project, prompt_to_carry(project),
                                NamedModel("old", first_letter),
                                NamedModel("new", answer_then_stop), old_name="a",
                                new_name="b", cancel=cancel)
    assert comparison.cancelled
    assert comparison.splits[0].new_count == 1
    assert comparison.verdict().startswith("Scoring was stopped")


def test_a_project_without_dev_or_test_rows_cannot_be_compared(workspace) -> None:
    project = workspace.create(ProjectSettings(name="train-only", instruction="Go."))
    project.add_examples([Row("apple", "a", ("a",), "train")])
    with pytest.raises(ProjectError, match="no dev or test rows"):
        compare_models(project, prompt_to_carry(project), NamedModel("a", first_letter),
                       NamedModel("b", first_letter), old_name="a", new_name="b")


def test_better_and_unscored_verdicts_read_plainly() -> None:
    better = ModelComparison(None, "a", "b",  # type: ignore[arg-type]
                             [SplitComparison("dev", 10, 0.5, 10, 0.8, 10)])
    assert better.verdict().startswith("The new model does better with this prompt (50% → 80%")
    assert percent(None) == "—" and percent(0.333) == "33%"


@pytest.mark.model
def test_a_prompt_moves_from_a_text_model_to_a_chat_model_and_back(workspace, bundled_model,
                                                                    chat_model_file):
    """The instruction and the worked examples are kept, and each model reads them in its
    own format: the base model as text, SmolLM2-135M-Instruct as its chat messages."""
    from promptstudio.llm.config import ModelConfig
    from promptstudio.llm.local import LocalBackend

    project = letters_project(workspace, "Give the first letter.")
    demos = [e.id for e in project.examples("train")[:2]]
    carried = CarriedPrompt("Say the first letter.", tuple(demos))
    text_model = LocalBackend(ModelConfig())
    chat_model = LocalBackend(ModelConfig(path=str(chat_model_file)))
    try:
        there = compare_models(project, carried, text_model, chat_model,
                               old_name="Gemma", new_name="SmolLM2")
        back = compare_models(project, carried, chat_model, text_model,
                              old_name="SmolLM2", new_name="Gemma")
    finally:
        text_model.close()
        chat_model.close()
    assert all(split.old_count == split.new_count == split.examples for split in there.splits)
    assert [s.new_score for s in back.splits] == [s.old_score for s in there.splits]
    heard = {model: [prompt for (prompt,) in project.conn.execute(
        "SELECT prompt FROM llm_call WHERE model = ?", (backend.model_id,))]
        for model, backend in (("text", text_model), ("chat", chat_model))}
    shown = project.examples(ids=tuple(demos))
    assert heard["chat"] and all(
        p.startswith("<|im_start|>system\nSay the first letter.<|im_end|>\n<|im_start|>user\n"
                     f"{shown[0].input}<|im_end|>\n<|im_start|>assistant\n{shown[0].output}")
        for p in heard["chat"])
    assert heard["text"] and all("Say the first letter." in p and "<|im_start|>" not in p
                                 and f"{shown[1].input}" in p for p in heard["text"])
    project.close()
