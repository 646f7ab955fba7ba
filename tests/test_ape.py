"""APE: its loop on a scripted model (proposals, funnel, bandit, rewording, budget, resume)
and one short run on the bundled model."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from optimize_support import (
    ScriptedModel,
    instruction_of,
    letter_model,
    letters_project,
    pause_then_resume,
    search_budget,
    start_run,
)
from scripted import meta_prompt_of
from task_data import data_project

from promptstudio.llm.base import ContinuationScore
from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.events import StepStarted
from promptstudio.optimize.method import method_named

GOOD = "Write the first letter of the word."
MEDIUM = "Name one letter of the word"
FORWARD_REPLIES = [
    " write the first letter of the word.\nMy friend then went on to other things.",
    " repeat the word in capitals.",
    "",
    "\n\n name one letter of the word\n\nA second paragraph that rambles on and on.",
    " copy {input} to the output",
    " Write the first letter of the word",
    " shout the word.",
    " add an exclamation mark",
]
"""Eight replies for the quick preset's 2 x 4 guesses: five distinct instructions, two
unusable ones (empty, a template echo) and one repeat of the first in other case."""


task = letter_model(half=lambda word: len(word) % 2 == 1, otherwise=str.upper)
"""Right always with 'first letter', about half the time with just 'letter'."""


def optimizer(forward: list[str], rewordings: list[str]):
    def reply(prompt: str, call: int) -> str:
        replies = rewordings if meta_prompt_of(prompt) == "paraphrase" else forward
        return replies[(call - 1) % len(replies)]
    return reply


def scripted(forward=FORWARD_REPLIES, rewordings=("",)) -> ScriptedModel:
    return ScriptedModel(task, optimizer(list(forward), list(rewordings)))


class RecordingModel(ScriptedModel):
    """Also remembers each prompt's generation settings (with its own seed, as backends
    derive it); ignores stop sequences, as some servers do."""

    def __init__(self, forward=FORWARD_REPLIES, rewordings=("",)) -> None:
        super().__init__(task, optimizer(list(forward), list(rewordings)))
        self.calls = []

    def generate(self, prompts, params, cancel=None, on_result=None):
        self.calls += [(p, replace(params, seed=params.seed + i)) for i, p in enumerate(prompts)]
        return super().generate(prompts, params, cancel, on_result)


class LikelihoodModel(ScriptedModel):
    """Finds the right answer likelier the more the instruction says about it."""

    def __init__(self, forward=FORWARD_REPLIES) -> None:
        super().__init__(task, optimizer(list(forward), [""]))
        self.scored = []

    def score(self, prompt, continuations, cancel=None):
        self.scored.append((prompt, tuple(continuations)))
        text = instruction_of(prompt).lower()
        value = -0.1 if "first letter" in text else -1.0 if "letter" in text else -4.0
        return [ContinuationScore(c, value, value, 1) for c in continuations]


def run_ape(project, model, overrides=None, budget=None, then=None):
    run = start_run(project, "ape", overrides=overrides, budget=budget, then=then)
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)
    return run, outcome, events


def by_operation(project, run_id, operation):
    return [c for c in project.candidates(run_id) if c.operation == operation]


def train_evaluations(project, candidate) -> int:
    train = {x.id for x in project.examples("train")}
    return sum(1 for e in project.evaluations(candidate.id).values() if e.example_id in train)


# -- proposals ---------------------------------------------------------------------------


def test_forward_guesses_are_cleaned_deduplicated_and_the_unusable_counted(workspace):
    project = letters_project(workspace)
    model = scripted(rewordings=[" give the first letter of the word.", " {instruction}",
                                 " write the first letter of the word", ""])
    run, outcome, _ = run_ape(project, model)

    forward = by_operation(project, run.id, "forward")
    assert [c.instruction for c in forward] == [
        GOOD, "Repeat the word in capitals.", MEDIUM, "Shout the word.",
        "Add an exclamation mark"]
    start = project.candidates(run.id)[0]
    assert all(c.parent_ids == () and c.demo_ids == start.demo_ids for c in forward)
    rewordings = by_operation(project, run.id, "paraphrase")
    assert [c.instruction for c in rewordings] == ["Give the first letter of the word."]
    assert rewordings[0].parent_ids == (forward[0].id,), "reworded from the best"
    # empty + template echo among the guesses; template echo + empty among the rewordings
    assert outcome.rejected_candidates == 4
    assert outcome.status == "finished"
    assert outcome.best.instruction == GOOD
    assert outcome.test_score == 1.0 and outcome.baseline_test_score == 0.0


def test_guessing_asks_once_per_subsample_with_the_papers_sampling(workspace):
    project = letters_project(workspace)
    model = RecordingModel()
    run_ape(project, model, overrides={"mc_rounds": 0})
    asks = [(p, params) for p, params in model.calls if not p.startswith("Instruction: ")]
    assert len(asks) == 8, "2 subsamples x 4 guesses"
    distinct = {p for p, _ in asks}
    assert len(distinct) == 2, "one prompt per subsample, sampled 4 times"
    for prompt, params in asks:
        assert (params.temperature, params.top_p, params.max_tokens) == (0.9, 0.9, 50)
        assert prompt.endswith("The instruction my friend had been given was to")
        assert len(re.findall(r"^Input: ", prompt, re.MULTILINE)) == 5
    assert len({params.seed for _, params in asks}) == 8, "every guess its own sample"


def test_reverse_mode_fills_the_blank_by_stopping_at_the_words_after_it(workspace):
    project = letters_project(workspace)
    model = RecordingModel(forward=[
        'Write the first letter of the word". They followed that sentence for every input.',
        'Spell the word backwards."\nMore text'])
    run, outcome, _ = run_ape(project, model, overrides={"mode": "reverse", "mc_rounds": 0})

    asks = [(p, params) for p, params in model.calls if not p.startswith("Instruction: ")]
    prompt, params = asks[0]
    assert prompt.endswith('I said: "'), "the prompt ends where the blank was"
    assert prompt.startswith("Input: "), "the demonstrations come first"
    assert '". They' in params.stop and '"' in params.stop
    reverse = by_operation(project, run.id, "reverse")
    assert [c.instruction for c in reverse] == [GOOD.rstrip("."), "Spell the word backwards."]
    assert outcome.best.instruction == GOOD.rstrip(".")


def test_mode_both_alternates_forward_and_reverse_subsamples(workspace):
    project = letters_project(workspace)
    model = scripted(forward=[f" do thing number {n}" for n in range(8)])
    run, _, _ = run_ape(project, model, overrides={"mode": "both", "mc_rounds": 0})
    operations = [c.operation for c in project.candidates(run.id)[1:]]
    assert operations == ["forward"] * 4 + ["reverse"] * 4


def test_a_user_template_with_or_without_a_blank(workspace):
    project = letters_project(workspace)
    model = RecordingModel(forward=[" write the first letter of the word and did so always"])
    template = "Examples:\n{demos}\nThe person was told to {blank} and did so every time."
    run, _, _ = run_ape(project, model, overrides={"template": template, "mc_rounds": 0})
    prompt, params = next((p, q) for p, q in model.calls if p.startswith("Examples:"))
    assert prompt.endswith("The person was told to")
    assert " and did" in params.stop
    assert [c.operation for c in project.candidates(run.id)[1:]
            if c.operation != "bare"] == ["template"]
    assert project.candidates(run.id)[1].instruction == "Write the first letter of the word"

    other = letters_project(workspace, name="no-blank")
    model = RecordingModel(forward=[" State the first letter.\nInput: x"])
    run, _, _ = run_ape(other, model, overrides={
        "template": "{demos}\nIn one sentence, the rule is:\n", "mc_rounds": 0})
    prompt = next(p for p, _ in model.calls if "the rule is" in p)
    assert prompt.endswith("the rule is:"), "a forward template is cut where the model goes on"
    assert [c.instruction for c in other.candidates(run.id)[1:]
            if c.operation != "bare"] == ["State the first letter."]


def test_a_template_without_the_examples_is_refused(workspace):
    project = letters_project(workspace)
    with pytest.raises(ValueError, match=r"\{demos\}"):
        run_ape(project, scripted(), overrides={"template": "Say what to do: {blank}."})


# -- selection ---------------------------------------------------------------------------


def test_the_funnel_halves_the_pool_and_doubles_the_examples(workspace):
    project = letters_project(workspace)
    run, outcome, _ = run_ape(project, scripted(), overrides={"mc_rounds": 0})
    counts = {c.instruction: train_evaluations(project, c)
              for c in by_operation(project, run.id, "forward")}
    # 5 guesses on 4 examples; the best 3 on 8; the best 2 on 16. Ties go to the older.
    assert counts == {GOOD: 16, MEDIUM: 16, "Repeat the word in capitals.": 8,
                      "Shout the word.": 4, "Add an exclamation mark": 4}
    assert outcome.best.instruction == GOOD


def test_ucb_spends_its_pulls_on_the_better_instruction(workspace):
    project = letters_project(workspace)
    model = scripted()
    pulls_by_step: dict[int, list[str]] = {}

    def listen(event):
        if isinstance(event, StepStarted):
            pulls_by_step[event.step] = []

    overrides = {"selection": "ucb", "ucb_budget": 40, "ucb_batch": 2, "mc_rounds": 0}
    run = start_run(project, "ape", overrides=overrides)
    original_reply = model.reply

    def reply(prompt: str) -> str:
        if prompt.startswith("Instruction: ") and pulls_by_step:
            pulls_by_step[max(pulls_by_step)].append(instruction_of(prompt))
        return original_reply(prompt)

    model.reply = reply
    outcome = runner.execute(project, run.id, model, model, listener=listen)

    race = pulls_by_step[2]
    bad = ["Repeat the word in capitals.", "Shout the word.", "Add an exclamation mark"]
    assert race.count(GOOD) > max(race.count(other) for other in [MEDIUM, *bad])
    assert min(race.count(other) for other in [MEDIUM, *bad]) >= 2, "every arm tried"
    assert len(race) <= 40 + 2
    assert outcome.best.instruction == GOOD


def test_logprob_scoring_ranks_by_the_likelihood_of_the_reference_answer(workspace):
    project = letters_project(workspace)
    model = LikelihoodModel()
    _, outcome, _ = run_ape(project, model, overrides={"score_by": "logprob", "mc_rounds": 0})
    answers_scored = [(p, c) for p, c in model.scored if "Input: " in p]
    assert answers_scored, "the search scored continuations"
    train_outputs = {x.output for x in project.examples("train")}
    assert all(len(c) == 1 and c[0][0] == " " and c[0][1:] in train_outputs
               for _, c in answers_scored), "the reference answer, after one space"
    answers = [p for p in model.prompts if p.startswith("Instruction: ")]
    # Answers only to choose and report: the search's best, the start and the best's
    # examples with no instruction on all 10 dev rows (the search never used dev); the
    # best and the start on test.
    assert len(answers) == 3 * 10 + 2 * 4
    assert outcome.best.instruction == GOOD


def test_rewording_replaces_the_best_only_when_it_scores_better(workspace):
    improving = letters_project(workspace, name="improving")
    model = scripted(forward=[" name one letter of the word", " shout the word"],
                     rewordings=[" say the first letter of the word", " name a letter of it",
                                 " say the first letter, please", " utter a letter"])
    run, outcome, _ = run_ape(improving, model, overrides={"mc_rounds": 2,
                                                           "mc_per_round": 2})
    rewordings = by_operation(improving, run.id, "paraphrase")
    best = outcome.best
    assert best.operation == "paraphrase" and best.instruction.startswith("Say the first")
    medium = by_operation(improving, run.id, "forward")[0]
    assert best.parent_ids == (medium.id,)
    assert rewordings[-1].parent_ids == (best.id,), "round 2 rewords the new best"

    keeping = letters_project(workspace, name="keeping")
    model = scripted(rewordings=[" shout the first word", " tell the first letter loudly"])
    run, outcome, _ = run_ape(keeping, model, overrides={"mc_per_round": 2})
    assert len(by_operation(keeping, run.id, "paraphrase")) == 2
    assert outcome.best.instruction == GOOD, "a tie keeps the older instruction"


def test_a_call_budget_stops_the_search_and_the_run_still_reports(workspace):
    full = letters_project(workspace, name="full")
    full_model = scripted()
    run_ape(full, full_model)
    limited = letters_project(workspace, name="limited")
    model = scripted()
    budget = search_budget(limited, 14)
    _, outcome, events = run_ape(limited, model, budget=budget)
    assert outcome.status == "finished"
    assert outcome.best is not None and outcome.test_score is not None
    assert outcome.dev_score is not None
    assert any(f"budget of {budget.max_calls} model calls" in getattr(e, "text", "")
               for e in events)
    assert outcome.requested_calls <= budget.max_calls
    assert len(model.prompts) < len(full_model.prompts)


def test_a_budget_spent_mid_race_leaves_the_leaders_as_finalists(workspace):
    """With log-probability scores there are no train accuracies for the runner to fall
    back on: the race's leaders must be kept."""
    project = letters_project(workspace)
    model = LikelihoodModel(forward=[" shout the word", " repeat the word", " hum the word",
                                     " add a dot", " write the first letter of the word"])
    overrides = {"selection": "ucb", "score_by": "logprob", "ucb_budget": 40, "ucb_batch": 2,
                 "mc_rounds": 0}
    budget = search_budget(project, 22 + 6)  # and the gate's likelihood of 5 guesses and the start
    _, outcome, events = run_ape(project, model, overrides=overrides, budget=budget)
    assert any(f"budget of {budget.max_calls} model calls" in getattr(e, "text", "")
               for e in events)
    assert outcome.best.instruction == "Write the first letter of the word"
    assert outcome.dev_score == 1.0


# -- resume ------------------------------------------------------------------------------


@pytest.mark.parametrize("selection", ["stages", "ucb"])
def test_resuming_after_any_step_ends_as_an_uninterrupted_run(workspace, selection):
    overrides = {"selection": selection, "ucb_budget": 24, "ucb_batch": 2, "mc_per_round": 3}
    reference = letters_project(workspace, name="reference")
    reference_model = scripted(rewordings=[" give the first letter", " {input}", ""])
    _, expected, events = run_ape(reference, reference_model, overrides=overrides)
    steps = max(e.steps for e in events if isinstance(e, StepStarted))
    assert steps == (5 if selection == "stages" else 4)

    for step in range(1, steps + 1):
        project = letters_project(workspace, name=f"paused-{step}")
        model = scripted(rewordings=[" give the first letter", " {input}", ""])
        run = start_run(project, "ape", overrides=overrides)
        outcome = pause_then_resume(project, run.id, model, step)
        assert (outcome.best.instruction, outcome.best.demo_ids) == (
            expected.best.instruction, expected.best.demo_ids)
        assert (outcome.dev_score, outcome.test_score) == (expected.dev_score,
                                                           expected.test_score)
        assert len(model.prompts) == len(reference_model.prompts), f"paused at {step}"
        assert outcome.rejected_candidates == expected.rejected_candidates


# -- settings and cost -------------------------------------------------------------------


def test_summary_presets_and_paper_defaults():
    ape = method_named("ape")
    assert 2 <= ape.summary.count(". ") + 1 <= 4 and "{" not in ape.summary
    assert set(ape.presets) == {"quick", "standard", "thorough"}
    for params in ape.presets.values():
        assert set(params) == set(ape.paper)
    assert ape.paper["subsamples"] * ape.paper["per_subsample"] == 250
    assert ape.presets["thorough"]["per_subsample"] == 50


@pytest.mark.parametrize(("preset", "selection"), [("quick", "stages"), ("quick", "ucb"),
                                                  ("standard", "stages")])
def test_the_projected_cost_covers_what_a_run_spends(workspace, preset, selection):
    project = letters_project(workspace)
    model = scripted(forward=[f" write the first letter, take {n}" for n in range(40)],
                     rewordings=[f" give the first letter, take {n}" for n in range(20)])
    plan = runner.plan(project, "ape", preset=preset, overrides={"selection": selection})
    run = runner.create_run(project, plan, preset=preset, seed=0, budget=Budget())
    outcome = runner.execute(project, run.id, model, model)
    spent = len(model.prompts) + len(model.scored)  # answers, and the gate's likelihoods
    assert 0.6 * plan.projected_calls <= spent <= plan.projected_calls
    if selection == "stages":
        assert outcome.requested_calls == spent, "the funnel asks for no answer twice"


# -- the bundled model -------------------------------------------------------------------


@pytest.mark.model
def test_ape_on_the_bundled_model(workspace, local_backend):
    project = data_project(workspace)
    run = start_run(project, "ape", overrides={
        "mode": "reverse", "subsamples": 1, "per_subsample": 2, "stage_sizes": [4],
        "mc_per_round": 1})  # reverse: the closing quote ends a guess early, which saves time
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished"
    assert outcome.best is not None
    assert outcome.dev_score is not None and outcome.test_score is not None
    assert len(project.candidates(run.id)) + outcome.rejected_candidates >= 2
