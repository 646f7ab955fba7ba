"""Contextual calibration of the label metric (Zhao et al. 2021): each label's probability
divided by its probability when the input says nothing."""

from __future__ import annotations

import math

import pytest
from scripted import ScriptedBackend
from task_data import data_rows

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.evaluation import CONTENT_FREE, calibrated, label_continuation, softmax
from promptstudio.store.records import ProjectSettings, Scoring

LABELS = ("positive", "negative")
INSTRUCTION = "Say whether the review is positive or negative."


def reviews(workspace, calibrate: bool, name: str = "reviews"):
    rows = [Row(r["input"], r["output"], tuple(r["answers"]))
            for r in data_rows("sentiment", "train", limit=12)]
    project = workspace.create(ProjectSettings(name=name, instruction=INSTRUCTION,
                                               metric="label", labels=LABELS,
                                               calibrate=calibrate))
    project.add_examples(rows[:6], split="train")
    project.add_examples(rows[6:], split="dev")
    return project


def test_calibration_divides_out_what_the_model_says_to_no_input():
    bias = [0.8, 0.2]  # the model leans to the first label whatever the input
    values = [math.log(0.6), math.log(0.4)]  # and on this input only a little
    assert max(range(2), key=lambda i: values[i]) == 0
    fixed = calibrated(values, bias)
    assert fixed == pytest.approx([math.log(0.6 / 0.8), math.log(0.4 / 0.2)])
    assert max(range(2), key=lambda i: fixed[i]) == 1
    assert softmax([0.0, 0.0]) == [0.5, 0.5]


def test_a_scripted_model_that_always_leans_one_way_is_corrected(workspace):
    """The model prefers "positive" by the same margin on every input, content-free ones
    included, except on reviews that say "bad", where it prefers it less: only
    calibration sees that those lean the other way."""

    def scores(prompt: str, continuation: str) -> float:
        leaning = -0.2 if "bad" in prompt.rsplit("Input:", 1)[-1] else -0.5
        return leaning if continuation.strip() == "negative" else -0.1

    class Leaning(ScriptedBackend):
        def score(self, prompt, continuations, cancel=None):
            found = super().score(prompt, continuations, cancel)
            return [type(s)(s.continuation, scores(prompt, s.continuation),
                            scores(prompt, s.continuation), 1) for s in found]

    for calibrate, expected in ((False, "positive"), (True, "negative")):
        project = reviews(workspace, calibrate, name=f"leaning-{calibrate}")
        project.add_examples([Row("A bad buy.", "negative", ("negative",), "test")])
        result = workflows.evaluate_instruction(project, Leaning(), INSTRUCTION,
                                                split="test")
        assert result.evaluations[0].answer == expected
        if calibrate:
            assert "(calibrated: " in result.evaluations[0].raw_output


def test_calibration_changes_the_scoring_only_for_the_label_metric():
    plain = ProjectSettings(name="p", metric="label", labels=LABELS)
    assert Scoring.of(plain, ["x"]).key != Scoring.of(
        ProjectSettings(name="p", metric="label", labels=LABELS, calibrate=True), ["x"]).key
    exact = ProjectSettings(name="p", calibrate=True)
    assert Scoring.of(exact, ["x"]) == Scoring.of(ProjectSettings(name="p"), ["x"])


@pytest.mark.model
def test_calibrated_choices_match_a_hand_computation_on_real_scores(workspace,
                                                                    local_backend):
    project = reviews(workspace, calibrate=True)
    result = workflows.evaluate_instruction(project, local_backend, INSTRUCTION)
    assert result.n == 6
    template = project.settings.prompt_template
    demos = list(result.candidate.demos)

    after = len(template.prefix(INSTRUCTION, demos))

    def label_values(text: str) -> list[float]:
        """The labels' scores, asked as the evaluator asks dev rows: alone, after the
        prompt's shared prefix (another call shape rounds differently)."""
        prompt = template.render(INSTRUCTION, demos, text)
        [scored] = local_backend.score_batch(
            [(prompt, [label_continuation(prompt, label) for label in LABELS])], None, after)
        return [s.mean_logprob for s in scored]

    shares = [softmax(label_values(text)) for text in CONTENT_FREE]
    bias = [sum(column) / len(shares) for column in zip(*shares)]
    for example in project.examples("dev"):
        raw = label_values(example.input)
        by_hand = [math.log(p / b) for p, b in zip(softmax(raw), bias)]
        expected = LABELS[max(range(2), key=lambda i: by_hand[i])]
        evaluation = next(e for e in result.evaluations if e.example_id == example.id)
        assert evaluation.answer == expected, example.input
        stored = evaluation.raw_output.split("(calibrated: ")[1].rstrip(")")
        numbers = [float(part.split(": ")[1]) for part in stored.split("; ")]
        assert numbers == pytest.approx(by_hand, abs=2e-3)
