"""PE2: the loop against a scripted model, and one small run on the bundled model."""

from __future__ import annotations

import re
from collections import Counter

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
from scripted import meta_prompt_of
from task_data import data_project

from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.events import CandidateCreated, CandidateRejected, Progress

START = "Name a letter."
REASONING = "The model wrote the last letter; the prompt never says which letter to give."
CURRENT = re.compile(r'The current prompt is:\n"(.*)"')


letter_task = letter_model(half=lambda word: len(word) % 2 == 0, otherwise=str,
                                slips=lambda word: len(word) == 5)
"""Every prompt has mistakes to learn from: the first letter misses the five-letter words,
a letter gets the words of even length right, anything else repeats the word."""


class Optimizer:
    """Plays the optimizer model: reasons, proposes edits (the j-th time a refinement prompt
    is asked, the j-th reply below), and induces prompts from examples."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    def __call__(self, prompt: str, call: int) -> str:
        if meta_prompt_of(prompt) == "pe2_induce":
            return ["Say the letter the word starts with.<END>",
                    "<START>Think about the word, then reply.<END>"][call % 2]
        if meta_prompt_of(prompt) != "pe2_refine":
            return " " + REASONING
        current = CURRENT.search(prompt).group(1)
        more = "Give the first letter." if "first letter" not in current else "Be brief."
        replies = [
            f"{current} {more}<END>",
            "<START>Repeat the word.<END>",
            "",
            "<START>Reply with {input} unchanged.<END>",
            "<START>" + "far too long " * 50 + "<END>",
            f"<START>{current}<END>",
            f"Well, there are many ways to go about this, {current}, hard to say really",
        ]
        self.asked[prompt] += 1
        return replies[(self.asked[prompt] - 1) % len(replies)]


def run_pe2(workspace, name="letters", budget=None, listener=None, **overrides):
    project = letters_project(workspace, name, instruction=START)
    model = ScriptedModel(letter_task, Optimizer())
    run = start_run(project, "pe2", overrides=overrides, budget=budget)
    outcome = runner.execute(project, run.id, model, model, listener=listener)
    return project, model, run, outcome


def optimizer_prompts(model) -> list[str]:
    return list(dict.fromkeys(p for p in model.prompts if not p.startswith("Instruction: ")))


def reasoning_prompts(model) -> list[str]:
    return [p for p in optimizer_prompts(model)
            if p.startswith("You are improving") and "Now the second step" not in p]


def refinement_prompts(model) -> list[str]:
    return [p for p in optimizer_prompts(model) if "Now the second step" in p]


def train_score(project, candidate) -> float:
    return project.mean_score(candidate.id, "train")[0]


def test_the_meta_prompt_shows_the_prompt_in_its_template_and_the_failures(workspace):
    project, model, run, _ = run_pe2(workspace, steps=1, n=1, m=2)
    [prompt] = reasoning_prompts(model)
    start = next(c for c in project.candidates(run.id) if c.operation == "start")
    demos = "".join(f"Input: {e.input}\nOutput: {e.output}\n\n"
                    for e in project.examples(ids=start.demo_ids))
    assert f"Instruction: {START}\n\n{demos}Input: {{input}}\nOutput:" in prompt
    assert f'The current prompt is:\n"{START}"' in prompt
    failures = re.findall(r"Input: (\w+)\nModel output: (\w+)\nLabel \(correct\): (\w+)", prompt)
    assert len(failures) == 2
    for word, output, label in failures:
        assert word in WORDS[:20] and output == word[-1] != label == word[0]
    assert "Is the model's output correct?" in prompt
    assert "Does the prompt describe the task well?" in prompt
    assert prompt.startswith("You are improving a prompt") and "in two steps" in prompt


def test_refinement_carries_step_size_length_history_and_momentum(workspace):
    project, model, run, _ = run_pe2(workspace, steps=2, n=1, m=2, step_size=7, max_words=33)
    first, second = refinement_prompts(model)
    assert first.startswith(reasoning_prompts(model)[0].rstrip())
    assert REASONING in first
    assert "change at most 7 words" in first and "under 33 words" in first
    assert "No edits yet" in first
    by_text = {c.instruction: c for c in project.candidates(run.id)}
    edited = by_text[f"{START} Give the first letter."]
    start = by_text[START]
    gain = train_score(project, edited) - train_score(project, start)
    assert gain > 0
    assert f'- "{START}": {train_score(project, start):.2f}' in second
    assert f'- "{edited.instruction}": {train_score(project, edited):.2f}' in second
    assert f"step 1: added 'Give the first letter.' → {gain:+.2f}" in second
    for child in (c for c in project.candidates(run.id) if c.step == 2):
        assert child.parent_ids == (edited.id,)
        assert child.origin == child.meta["reasoning"] == REASONING
        assert child.meta["history"] in second and child.meta["momentum"] in second


def test_reasoning_is_greedy_and_the_m_proposals_come_from_one_sampled_call(workspace):
    calls = []

    class Recording(ScriptedModel):
        def generate(self, prompts, params, cancel=None, on_result=None):
            if not prompts[0].startswith("Instruction: "):
                kind = "refine" if meta_prompt_of(prompts[0]) == "pe2_refine" else "reason"
                calls.append((kind, len(prompts), params.temperature))
            return super().generate(prompts, params, cancel, on_result)

    project = letters_project(workspace, instruction=START)
    model = Recording(letter_task, Optimizer())
    run = start_run(project, "pe2", overrides={"steps": 2, "n": 1, "m": 3})
    runner.execute(project, run.id, model, model)
    assert calls == [("reason", 1, 0.0), ("refine", 3, 0.7)] * 2
    train = {e.id for e in project.examples("train")}
    subsets = {frozenset(project.evaluations(c.id).keys() & train)
               for c in project.candidates(run.id)}
    assert len(subsets) == 1, "every prompt is scored on the same training subset"


def test_each_step_expands_the_best_prompts_of_all_steps(workspace):
    project, model, run, _ = run_pe2(workspace, steps=2, n=2, m=2)
    candidates = project.candidates(run.id)
    before_step_2 = sorted((c for c in candidates if c.step < 2),
                           key=lambda c: (-train_score(project, c), c.id))
    expanded = [CURRENT.search(p).group(1) for p in reasoning_prompts(model)]
    assert expanded[1:] == [c.instruction for c in before_step_2[:2]]
    assert START in expanded[1:], "the start beats a child of step 1 and is expanded again"
    assert {c.step for c in candidates} == {0, 1, 2}


def test_unusable_and_repeated_proposals_make_no_candidates(workspace):
    events = []
    project, model, run, outcome = run_pe2(workspace, steps=1, n=1, m=7,
                                           listener=events.append)
    made = [c.instruction for c in project.candidates(run.id) if c.operation == "pe2"]
    assert made == [f"{START} Give the first letter.", "Repeat the word."]
    assert outcome.rejected_candidates == 4
    rambling = next(e for e in events if isinstance(e, CandidateRejected)
                    and e.text.startswith("Well, there are many ways"))
    assert rambling.rule == "length", "the readability gate sets the ramble aside"
    assert len([e for e in events if isinstance(e, CandidateCreated)]) == len(made)
    scored = {p.split("\n", 1)[0] for p in model.prompts if p.startswith("Instruction: ")}
    assert f"Instruction: {START}" in scored and len(scored) == 1 + len(made)


def test_starting_by_induction(workspace):
    project, model, run, _ = run_pe2(workspace, steps=1, n=2, m=2, init="induction",
                                     max_words=12)
    asked = [p for p in optimizer_prompts(model) if p.startswith("Here are inputs")]
    assert len(asked) == 2
    for prompt in asked:
        shown = re.findall(r"Input: (\w+)\nOutput: (\w+)", prompt)
        assert len(shown) == 5 and all(label == word[0] for word, label in shown)
        assert "at most 12 words" in prompt and prompt.endswith("<START>")
    induced = [c for c in project.candidates(run.id) if c.operation == "induce"]
    assert [c.instruction for c in induced] == ["Think about the word, then reply.",
                                               "Say the letter the word starts with."]
    expanded = {CURRENT.search(p).group(1) for p in reasoning_prompts(model)}
    assert expanded == {c.instruction for c in induced}


def test_starting_from_the_users_prompt(workspace):
    _, model, _, _ = run_pe2(workspace, steps=1, n=4, m=2)
    assert [CURRENT.search(p).group(1) for p in reasoning_prompts(model)] == [START]
    assert not any(p.startswith("Here are inputs") for p in optimizer_prompts(model))


@pytest.mark.parametrize("writer", ["paper", "base"])
def test_projected_calls_match_a_run(workspace, writer):
    project = letters_project(workspace, instruction=START)
    counter = iter(range(10_000))

    def optimizer(prompt: str, call: int) -> str:
        refining = meta_prompt_of(prompt) in ("pe2_refine", "pe2_refine_base")
        return f"Say letter {next(counter)}." if refining else "thinking"

    model = ScriptedModel(letter_task, optimizer)
    plan = runner.plan(project, "pe2", overrides={"steps": 2, "n": 2, "m": 2}, writer=writer)
    run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    progress = []
    runner.execute(project, run.id, model, model,
                   listener=lambda e: progress.append(e) if isinstance(e, Progress) else None)
    # An upper bound, close for the search; the final choice's share is an upper bound.
    search = plan.projected_calls - plan.final_calls
    assert 0.9 * search <= progress[-1].calls <= plan.projected_calls


def test_budget_stops_the_search_and_still_chooses_a_prompt(workspace):
    budget = search_budget(letters_project(workspace, "sized"), 40)
    project, model, run, outcome = run_pe2(workspace, budget=budget, steps=2, n=2, m=2)
    assert outcome.status == "finished"
    assert len(reasoning_prompts(model)) == 1
    assert outcome.best is not None and outcome.dev_score is not None
    assert max(c.step for c in project.candidates(run.id)) == 1
    assert outcome.requested_calls <= budget.max_calls


@pytest.mark.parametrize("pause_at", [1, 2, 3])
def test_resuming_at_a_step_boundary_repeats_no_call(workspace, pause_at):
    settings = {"steps": 3, "n": 2, "m": 3}
    _, whole, _, expected = run_pe2(workspace, "whole", **settings)
    project = letters_project(workspace, "paused", instruction=START)
    model = ScriptedModel(letter_task, Optimizer())
    run = start_run(project, "pe2", overrides=settings)
    resumed = pause_then_resume(project, run.id, model, pause_at)
    assert len(model.prompts) == len(whole.prompts)
    assert resumed.best.instruction == expected.best.instruction
    assert resumed.dev_score == expected.dev_score


@pytest.mark.model
def test_a_small_run_on_the_bundled_model(workspace, local_backend):
    project = data_project(workspace, "first letters", "Write the first letter.")
    run = start_run(project, "pe2", overrides={"steps": 1, "n": 1, "m": 2, "train_size": 8})
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished"
    assert project.run(run.id).best_candidate_id == outcome.best.id
    assert outcome.dev_score is not None and outcome.test_score is not None
