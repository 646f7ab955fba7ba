"""OPRO: the loop against a scripted model, and one small run on the bundled model."""

from __future__ import annotations

import re

import pytest
from optimize_support import (
    WORDS,
    ScriptedModel,
    letter_model,
    letters_project,
    pause_then_resume,
    search_budget,
    start_run,
)
from scripted import ScriptedBackend
from task_data import data_project

from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.events import CandidateRejected, Message, Progress
from promptstudio.optimize.opro import POSITIONS

STEPS = 3
SETTINGS = {"steps": STEPS, "per_step": 8, "train_size": 16}
HISTORY = re.compile(r"Instruction: (.*)\nScore: (\d+)")
EXEMPLAR = re.compile(r"Instruction: <INS>\n\nInput: (\w+)\nOutput: (\w+)")


letter_task = letter_model(half=lambda word: len(word) % 2 == 0, otherwise=str)
"""The first letter gets every word right, a letter the words of even length, anything
else makes the model repeat the word."""


def proposals(prompt: str, call: int) -> str:
    """Eight replies a step: two usable and new, two repeats, three unusable, and a ramble
    that the readability gate sets aside."""
    step, index = divmod(call - 1, 8)
    take = step + 1
    return [
        f"Name a letter of the word, take {take}.<END>",
        f"<START>Give the first letter of the word, take {take}.<END>",
        "",
        "<START>Copy {input} here.<END>",
        "<START>" + "far too long " * 50 + "<END>",
        f"Well, one could try all sorts of things here, attempt {take}, hard to say really",
        f"<START>Give the first letter of the word, take {take}.<END>",
        "<START>Name a letter of the word, take 1.<END>",
    ][index]


def meta_prompts(model: ScriptedBackend) -> list[str]:
    """The optimizer's prompts, once each, in the order asked."""
    return list(dict.fromkeys(p for p in model.prompts if not p.startswith("Instruction: ")))


def train_scores(project, run_id: int) -> dict[str, float]:
    return {c.instruction: project.mean_score(c.id, "train")[0]
            for c in project.candidates(run_id) if project.mean_score(c.id, "train")[1]}


def run_opro(workspace, name="letters", overrides=None, budget=None, listener=None):
    project = letters_project(workspace, name)
    model = ScriptedModel(letter_task, proposals)
    run = start_run(project, "opro", overrides={**SETTINGS, **(overrides or {})}, budget=budget)
    outcome = runner.execute(project, run.id, model, model, listener=listener)
    return project, model, run, outcome


def test_history_is_the_best_few_in_ascending_order_with_rounded_scores(workspace):
    project, model, run, outcome = run_opro(workspace, overrides={"history": 3})
    scores = train_scores(project, run.id)
    asked = meta_prompts(model)
    assert len(asked) == STEPS
    for step, prompt in enumerate(asked, 1):
        shown = [(text, int(score)) for text, score in HISTORY.findall(prompt)]
        assert 1 <= len(shown) <= 3
        assert [s for _, s in shown] == sorted(s for _, s in shown)
        assert all(score == round(100 * scores[text]) for text, score in shown)
        earlier = [c for c in project.candidates(run.id) if c.step < step]
        best = sorted((scores[c.instruction] for c in earlier), reverse=True)[:3]
        assert sorted(scores[text] for text, _ in shown) == sorted(best)
    assert outcome.best.instruction.startswith("Give the first letter")


def test_exemplars_mark_the_instruction_and_are_drawn_again_each_step(workspace):
    _, model, _, _ = run_opro(workspace)
    drawn = []
    for prompt in meta_prompts(model):
        shown = EXEMPLAR.findall(prompt)
        assert len(shown) == 3
        assert all(word in WORDS[:20] and label == word[0] for word, label in shown)
        drawn.append(frozenset(word for word, _ in shown))
    assert len(set(drawn)) > 1


def test_each_step_asks_once_for_eight_samples_at_temperature_one(workspace):
    batches = []

    class Recording(ScriptedModel):
        def generate(self, prompts, params, cancel=None, on_result=None):
            if not prompts[0].startswith("Instruction: "):
                batches.append((len(prompts), params.temperature, params.seed))
            return super().generate(prompts, params, cancel, on_result)

    project = letters_project(workspace)
    model = Recording(letter_task, proposals)
    run = start_run(project, "opro", overrides=SETTINGS)
    runner.execute(project, run.id, model, model)
    assert [(n, t) for n, t, _ in batches] == [(8, 1.0)] * STEPS
    assert len({seed for _, _, seed in batches}) == STEPS


def test_repeats_are_skipped_and_unusable_replies_counted(workspace):
    events = []
    project, model, run, outcome = run_opro(workspace, listener=events.append)
    created = [c for c in project.candidates(run.id) if c.operation == "opro"]
    assert len(created) == 2 * STEPS
    assert len({c.instruction for c in created}) == len(created)
    assert outcome.rejected_candidates == 4 * STEPS
    assert [e.text for e in events if isinstance(e, Message) and e.text.startswith("Step")] == [
        f"Step {s}: 8 replies, 2 new instructions, 2 repeated, 4 unusable."
        for s in range(1, STEPS + 1)]
    rambles = [e for e in events if isinstance(e, CandidateRejected)
               and e.text.startswith("Well, one could try")]
    assert len(rambles) == STEPS and {e.rule for e in rambles} == {"length"}
    on_train = [p for p in model.prompts if p.startswith("Instruction: ")
                and p.rsplit("Input: ", 1)[1].split("\n")[0] in WORDS[:20]]
    assert len(on_train) == len(set(on_train)) == (1 + len(created)) * 16
    train = {e.id for e in project.examples("train")}
    subsets = {frozenset(project.evaluations(c.id).keys() & train)
               for c in project.candidates(run.id) if c.operation != "bare"}
    assert len(subsets) == 1, "every instruction searched is scored on the same training subset"


def test_projected_calls_match_a_run_without_repeats(workspace):
    project = letters_project(workspace)
    counter = iter(range(10_000))
    model = ScriptedModel(letter_task, lambda prompt, call: f"Say letter {next(counter)}.")
    plan = runner.plan(project, "opro", overrides=SETTINGS)
    run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    progress = []
    runner.execute(project, run.id, model, model,
                   listener=lambda e: progress.append(e) if isinstance(e, Progress) else None)
    # The final choice's share is an upper bound: the start and one finalist, not all.
    search = plan.projected_calls - plan.final_calls
    assert search <= progress[-1].calls <= plan.projected_calls


def test_budget_stops_the_search_and_still_chooses_a_prompt(workspace):
    budget = search_budget(letters_project(workspace, "sized"), 40)
    project, model, run, outcome = run_opro(workspace, budget=budget)
    assert outcome.status == "finished"
    assert model.optimizer_calls == 8
    assert outcome.best is not None and outcome.dev_score is not None
    assert max(c.step for c in project.candidates(run.id)) == 1
    assert outcome.requested_calls <= budget.max_calls


@pytest.mark.parametrize("pause_at", range(1, STEPS + 1))
def test_resuming_at_a_step_boundary_repeats_no_call(workspace, pause_at):
    _, whole, _, expected = run_opro(workspace, "whole")
    project = letters_project(workspace, "paused")
    model = ScriptedModel(letter_task, proposals)
    run = start_run(project, "opro", overrides=SETTINGS)
    resumed = pause_then_resume(project, run.id, model, pause_at)
    assert len(model.prompts) == len(whole.prompts)
    assert resumed.best.instruction == expected.best.instruction
    assert resumed.dev_score == expected.dev_score


def test_position_at_the_question_start_changes_the_template(workspace):
    def reply(prompt: str) -> str:
        if prompt.endswith("Output:"):
            instruction, word = prompt.rsplit("Input: ", 1)[1].split("\n")[:2]
            return " " + letter_task(instruction, word)
        return "<START>Give the first letter.<END>"

    project = letters_project(workspace)
    model = ScriptedBackend(reply)
    run = start_run(project, "opro", overrides={**SETTINGS, "steps": 1,
                                                "position": "question_begin"})
    outcome = runner.execute(project, run.id, model, model)
    assert outcome.best.instruction == "Give the first letter."
    assert outcome.best.meta["template"] == POSITIONS["question_begin"]
    bare = project.candidate(outcome.choice.bare)
    assert bare.meta["template"] == POSITIONS["question_begin"], (
        "the instruction is left out of the pick's own template")
    assert outcome.dev_score == 1.0
    meta = next(p for p in model.prompts if not p.endswith("Output:"))
    assert re.search(r"Input: <INS>\n\w+\nOutput: \w", meta)
    assert any(p.endswith("Input: Give the first letter.\nyam\nOutput:") for p in model.prompts)


def test_positions_a_template_cannot_express_are_refused(workspace):
    project = letters_project(workspace)
    model = ScriptedModel(letter_task, proposals)
    run = start_run(project, "opro", overrides={**SETTINGS, "position": "answer_begin"})
    with pytest.raises(ValueError, match="input must be the last"):
        runner.execute(project, run.id, model, model)
    assert project.run(run.id).status == "failed"


def test_the_project_template_decides_when_it_is_not_the_default(workspace):
    project = letters_project(workspace, template="Instruction: {instruction}\n\n{demos}"
                                                  "Input: {input}\nThe first letter:")
    model = ScriptedModel(letter_task, proposals)
    events = []
    run = start_run(project, "opro", overrides={**SETTINGS, "steps": 1,
                                                "position": "question_begin"})
    runner.execute(project, run.id, model, model, listener=events.append)
    assert any("own template decides" in e.text for e in events if isinstance(e, Message))
    assert all("template" not in c.meta for c in project.candidates(run.id))
    shown = re.findall(r"Instruction: <INS>\n\nInput: (\w+)\nThe first letter: (\w+)",
                       meta_prompts(model)[0])
    assert len(shown) == 3 and all(label == word[0] for word, label in shown)


@pytest.mark.model
def test_a_small_run_on_the_bundled_model(workspace, local_backend):
    project = data_project(workspace, "first letters", "Write the first letter.")
    run = start_run(project, "opro", overrides={"steps": 1, "per_step": 2, "train_size": 8})
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished"
    assert project.run(run.id).best_candidate_id == outcome.best.id
    assert outcome.dev_score is not None and outcome.test_score is not None
    assert len(project.candidates(run.id)) >= 1


def test_a_moved_instruction_never_shares_scores_with_the_project_template(workspace):
    """The same words in two templates are two candidates, each scored in its own."""
    def reply(prompt: str) -> str:
        if prompt.endswith("Output:"):
            # Right only when the instruction comes after the input line.
            return " " + prompt.rsplit("\n", 2)[-2][0] if "Input: Answer." in prompt else " ?"
        return "<START>Answer.<END>"

    project = letters_project(workspace)
    model = ScriptedBackend(reply)
    run = start_run(project, "opro", overrides={**SETTINGS, "steps": 1,
                                                "position": "question_begin"})
    outcome = runner.execute(project, run.id, model, model)
    starts = [c for c in project.candidates(run.id) if c.instruction == "Answer."]
    assert len(starts) == 2
    moved = next(c for c in starts if c.meta.get("template"))
    plain = next(c for c in starts if not c.meta.get("template"))
    assert project.mean_score(moved.id, "dev")[0] == 1.0
    assert project.mean_score(plain.id, "dev")[0] == 0.0
    assert outcome.best.id == moved.id
    assert outcome.baseline_test_score == 0.0

