"""The evaluator: rendering, parsing, scoring, storing as it goes, resuming, cancelling."""

from __future__ import annotations

import pytest
from scripted import ScriptedBackend
from task_data import data_rows, write_jsonl

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.evaluation import Evaluator, label_continuation
from promptstudio.llm.base import CancelToken
from promptstudio.store.records import ProjectSettings, answer_token_budget

WORDS = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel"]


def _letters_project(workspace, **settings):
    project = workspace.create(ProjectSettings(name="letters", **settings))
    project.add_examples([Row(w, w[0], (w[0],), "train") for w in WORDS[:4]])
    project.add_examples([Row(w, w[0].upper(), (w[0].upper(),), "dev") for w in WORDS[4:]])
    return project


def _first_letter(prompt: str) -> str:
    word = prompt.rsplit("Input: ", 1)[1].split("\n", 1)[0]
    return f" {word[0]}\n\nInput: something else"


def test_evaluations_are_rendered_parsed_scored_and_stored(workspace):
    project = _letters_project(workspace)
    backend = ScriptedBackend(_first_letter)
    candidate = project.add_candidate("Give the first letter.", [1, 2])
    result = Evaluator(project, backend).evaluate(candidate, project.examples("dev"))
    assert result.n == 4 and result.new_evaluations == 4
    assert result.score == 1.0, "normalized_exact ignores case: 'e' matches 'E'"
    first_prompt = backend.prompts[0]
    assert first_prompt.startswith("Instruction: Give the first letter.\n\n")
    assert "Input: apple\nOutput: a\n\nInput: banana\nOutput: b\n\nInput: elder\nOutput:" in (
        first_prompt)
    stored = project.evaluations(candidate.id, backend.model_id)
    assert {e.answer for e in stored.values()} == {"e", "f", "g", "h"}
    assert all(e.raw_output.startswith(" ") for e in stored.values())


def test_a_second_evaluation_only_does_what_is_missing(workspace):
    project = _letters_project(workspace)
    backend = ScriptedBackend(_first_letter)
    candidate = project.add_candidate("Give the first letter.")
    dev = project.examples("dev")
    Evaluator(project, backend, use_cache=False).evaluate(candidate, dev[:2])
    result = Evaluator(project, backend, use_cache=False).evaluate(candidate, dev)
    assert len(backend.prompts) == 4
    assert result.n == 4 and result.new_evaluations == 2


def test_a_cancelled_evaluation_keeps_only_complete_rows(workspace):
    project = _letters_project(workspace)
    cancel = CancelToken()
    seen = []

    def stop_after_two(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            cancel.cancel()

    candidate = project.add_candidate("Give the first letter.")
    result = Evaluator(project, ScriptedBackend(_first_letter), cancel=cancel,
                       on_progress=stop_after_two).evaluate(candidate, project.examples("dev"))
    assert result.cancelled and result.n == 2
    rows = project.conn.execute(
        "SELECT raw_output, answer, score FROM evaluation WHERE candidate_id = ?",
        (candidate.id,)).fetchall()
    assert len(rows) == 2
    assert all(raw and answer and score == 1.0 for raw, answer, score in rows)
    assert project.integrity_check() == "ok"


def test_label_metric_chooses_by_log_probability(workspace):
    project = workspace.create(ProjectSettings(name="mood", metric="label",
                                               labels=("positive", "negative")))
    project.add_examples([Row("great", "positive", ("positive",), "dev"),
                          Row("awful", "negative", ("negative",), "dev")])
    backend = ScriptedBackend(scores={"positive": -0.3, "negative": -1.2})
    candidate = project.add_candidate("Classify the mood.")
    result = Evaluator(project, backend).evaluate(candidate, project.examples("dev"))
    assert [e.answer for e in result.evaluations] == ["positive", "positive"]
    assert result.score == 0.5
    assert backend.scored[0][1] == (" positive", " negative")
    assert not backend.prompts, "the label metric never generates"


def test_label_metric_without_labels_is_refused(workspace):
    from promptstudio.evaluation import EvaluationError

    project = workspace.create(ProjectSettings(name="nolabels", metric="label"))
    with pytest.raises(EvaluationError, match="labels"):
        Evaluator(project, ScriptedBackend())


def test_server_sized_batches_are_sent_together(workspace):
    project = _letters_project(workspace)
    backend = ScriptedBackend(_first_letter, preferred_batch=3)
    calls = []
    original = backend.generate
    backend.generate = lambda prompts, params, cancel=None, on_result=None: (
        calls.append(len(prompts)) or original(prompts, params, cancel, on_result))
    candidate = project.add_candidate("Give the first letter.")
    Evaluator(project, backend).evaluate(candidate, project.examples("dev"))
    assert calls == [3, 1]


def test_helpers():
    assert label_continuation("Answer:", "yes") == " yes"
    assert label_continuation("Answer: ", "yes") == "yes"
    assert answer_token_budget(["y"]) == 16
    assert answer_token_budget(["a" * 100, "b"]) == 58
    assert answer_token_budget(["a" * 1000]) == 256


# -- on the real bundled model ----------------------------------------------------------


def _imported_project(workspace, tmp_path, task: str, train: int = 100, test: int = 40):
    """A project made as a user makes one: a train file split 80/20, then test rows."""
    data = write_jsonl(tmp_path / f"{task}-train.jsonl", data_rows(task, "train", train))
    test_data = write_jsonl(tmp_path / f"{task}-test.jsonl", data_rows(task, "test", test))
    project, _ = workflows.create_project(workspace, task, data)
    workflows.import_data(project, test_data, split="test")
    return project


@pytest.mark.model
def test_first_letter_with_three_demos_on_the_bundled_model(workspace, tmp_path, local_backend):
    project = _imported_project(workspace, tmp_path, "first_letter")
    result = workflows.evaluate_instruction(
        project, local_backend, "Write the first letter of the word.", demos=3, split="test")
    assert result.n == 40
    assert result.score >= 0.8, [e.raw_output for e in result.evaluations if e.score < 1]


@pytest.mark.model
def test_results_are_identical_with_the_cache_cold_or_warm(workspace, tmp_path, local_backend):
    project = _imported_project(workspace, tmp_path, "plurals", train=50, test=12)
    candidate = project.add_candidate("Write the plural of the word.",
                                      workflows.draw_demos(project, 3, seed=1))
    examples = project.examples("test")
    cold = Evaluator(project, local_backend).evaluate(candidate, examples)
    calls = local_backend.stats.snapshot()["calls"]
    project.conn.execute("DELETE FROM evaluation")
    project.conn.commit()
    warm_evaluator = Evaluator(project, local_backend)
    warm = warm_evaluator.evaluate(candidate, examples)
    assert local_backend.stats.snapshot()["calls"] == calls, "no model call when warm"
    assert warm_evaluator.backend.stats.snapshot()["cached_calls"] == 12
    assert [(e.raw_output, e.answer, e.score) for e in warm.evaluations] == [
        (e.raw_output, e.answer, e.score) for e in cold.evaluations]
    assert cold.score > 0, "the model answered some rows right"
