"""Demonstration search: candidate sets, bootstrapping, the race, chaining after APE, budget,
resume, on a scripted model that reads the demonstrations; and once on the bundled model."""

from __future__ import annotations

import random
import re
from itertools import permutations

import pytest
from optimize_support import (
    SMALL_SETS,
    WORDS,
    ScriptedModel,
    instruction_of,
    letters_project,
    letters_task,
    search_budget,
    start_run,
    task_input,
)
from scripted import ScriptedBackend
from task_data import data_project

from promptstudio.dataio import Row
from promptstudio.optimize import demos, runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.context import RunContext, RunControl
from promptstudio.optimize.demos import carried
from promptstudio.optimize.events import Message, StepStarted
from promptstudio.optimize.method import method_named
from promptstudio.store.project import ProjectError
from promptstudio.store.records import ProjectSettings

HELPFUL = {"cherry", "fig", "kiwi"}
EASY = {"apple", "cherry", "damson", "elder", "grape", "hazel"}


class DemoReader(ScriptedBackend):
    """Answers a task prompt right when a helpful word is among its demonstrations, or when
    the asked word is easy; never asked to write instructions here."""

    def __init__(self, helpful=frozenset(HELPFUL), easy=frozenset()) -> None:
        self.helpful, self.easy = set(helpful), set(easy)
        super().__init__(self.answer)

    def answer(self, prompt: str) -> str:
        shown = re.findall(r"Input: (.*)\nOutput:", prompt)[:-1]
        word = task_input(prompt)
        right = bool(self.helpful & set(shown)) or word in self.easy
        return " " + (word[0] if right else "?") + "\n"


def run_demos(project, model, overrides=None, budget=None):
    run = start_run(project, "demos", overrides=overrides, budget=budget)
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)
    return run, outcome, events


def demo_candidates(project, run_id, origin=None):
    return [c for c in project.candidates(run_id)
            if c.operation == "demo" and origin in (None, c.origin)]


def words(project, ids) -> set[str]:
    return {x.input for x in project.examples(ids=ids)}


def train_ids_evaluated(project, candidate) -> set[int]:
    train = {x.id for x in project.examples("train")}
    return {i for i in project.evaluations(candidate.id) if i in train}


def test_random_sets_race_and_the_set_with_a_helpful_example_wins(workspace):
    project = letters_project(workspace)
    run, outcome, _ = run_demos(project, DemoReader(), overrides={"k": 3, "max_k": 3})

    start = project.candidates(run.id)[0]
    sets = demo_candidates(project, run.id, "random")
    assert len(sets) == 6 and all(len(c.demo_ids) == 3 for c in sets)
    assert all(c.instruction == start.instruction and c.parent_ids == (start.id,)
               for c in sets)
    assert len({frozenset(c.demo_ids) for c in sets}) == 6
    assert not any(set(c.demo_ids) & set(start.demo_ids) for c in sets)
    helpful = [c for c in sets if words(project, c.demo_ids) & HELPFUL]
    assert helpful and len(helpful) < len(sets), "the draw holds both kinds"
    assert words(project, outcome.best.demo_ids) & HELPFUL
    assert outcome.dev_score == 1.0 and outcome.baseline_test_score == 0.0


class CountingReader(ScriptedBackend):
    """Answers right only when the prompt shows at least `enough` demonstrations."""

    def __init__(self, enough: int) -> None:
        self.enough = enough
        super().__init__(self.answer)

    def answer(self, prompt: str) -> str:
        shown = re.findall(r"Input: (.*)\nOutput:", prompt)[:-1]
        word = task_input(prompt)
        return " " + (word[0] if len(shown) >= self.enough else "?") + "\n"


def test_the_search_finds_how_many_demonstrations_the_model_needs(workspace):
    project = letters_project(workspace)
    run, outcome, _ = run_demos(project, CountingReader(enough=6), overrides=SMALL_SETS)
    sets = demo_candidates(project, run.id, "random")
    assert [len(c.demo_ids) for c in sets] == [3, 5, 8] * 2, "sizes from k to max_k in turn"
    assert len(outcome.best.demo_ids) == 8
    assert outcome.dev_score == 1.0 and outcome.baseline_test_score == 0.0


def test_max_k_equal_to_k_tries_one_size_only(workspace):
    project = letters_project(workspace)
    run, _, _ = run_demos(project, DemoReader(), overrides={"k": 3, "max_k": 3})
    assert {len(c.demo_ids) for c in demo_candidates(project, run.id)} == {3}


def test_no_set_shows_more_than_half_the_training_examples(workspace):
    """20 training rows, 3 of them the start's: sets of 16 would leave 4 rows to race on."""
    project = letters_project(workspace)
    run, _, _ = run_demos(project, CountingReader(enough=6), overrides={"k": 3, "max_k": 16})
    sets = demo_candidates(project, run.id, "random")
    assert [len(c.demo_ids) for c in sets] == [3, 8] * 3, "17 to draw from: at most 8"
    for candidate in sets:
        assert len(train_ids_evaluated(project, candidate)) >= len(candidate.demo_ids)


def test_no_set_is_scored_on_its_own_demonstrations(workspace):
    project = letters_project(workspace)
    run, _, _ = run_demos(project, DemoReader(easy=EASY))
    candidates = demo_candidates(project, run.id)
    assert candidates
    for candidate in candidates:
        evaluated = train_ids_evaluated(project, candidate)
        assert evaluated, "every set was raced"
        assert not evaluated & set(candidate.demo_ids)


def test_bootstrapped_sets_hold_only_examples_the_prompt_already_answers(workspace):
    project = letters_project(workspace)
    run, _, _ = run_demos(project, DemoReader(helpful=(), easy=EASY))
    start = project.candidates(run.id)[0]
    booted = demo_candidates(project, run.id, "bootstrapped")
    assert len(booted) == method_named("demos").presets["quick"]["bootstrapped_sets"]
    answered = {i for i, e in project.evaluations(start.id).items() if e.score == 1.0}
    for candidate in booted:
        assert set(candidate.demo_ids) <= answered
        assert words(project, candidate.demo_ids) <= EASY
        assert candidate.parent_ids == (start.id,)


def test_bootstrapped_sets_that_only_reorder_each_other_are_raced_once(workspace):
    project = letters_project(workspace)
    run, _, _ = run_demos(project, DemoReader(helpful=(), easy={"apple", "cherry", "fig"}),
                          overrides=SMALL_SETS)
    booted = demo_candidates(project, run.id, "bootstrapped")
    assert [words(project, c.demo_ids) for c in booted] == [{"apple", "cherry", "fig"}]


def test_too_few_right_answers_means_no_bootstrapped_sets(workspace):
    project = letters_project(workspace)
    run, outcome, events = run_demos(project, DemoReader(helpful=(), easy={"apple"}))
    assert not demo_candidates(project, run.id, "bootstrapped")
    assert any("too few to bootstrap" in getattr(e, "text", "") for e in events)
    assert outcome.status == "finished"


@pytest.mark.parametrize("bandit", ["ucb", "ucb-e", "successive-rejects",
                                    "successive-halving"])
def test_every_bandit_finds_a_helpful_set(workspace, bandit):
    project = letters_project(workspace)
    run = start_run(project, "demos", overrides={"bandit": bandit, "budget_per_set": 6,
                                                  "batch": 2})
    outcome = runner.execute(project, run.id, DemoReader(), DemoReader())
    assert words(project, outcome.best.demo_ids) & HELPFUL


class OrderReader(ScriptedBackend):
    """Answers right only when its demonstrations come in reverse alphabetical order: a
    model for which the order of the same examples is everything."""

    def __init__(self) -> None:
        super().__init__(self.answer)

    def answer(self, prompt: str) -> str:
        shown = re.findall(r"Input: (.*)\nOutput:", prompt)[:-1]
        right = len(shown) > 1 and shown == sorted(shown, reverse=True)
        word = task_input(prompt)
        return " " + (word[0] if right else "?") + "\n"


def test_the_best_examples_are_tried_in_other_orders(workspace):
    project = letters_project(workspace)
    only_orders = {"random_sets": 0, "bootstrapped_sets": 0, "layouts": 0, "orders": 8}
    run, outcome, events = run_demos(project, OrderReader(), overrides=only_orders)

    start = project.candidates(run.id)[0]
    shown = [x.input for x in project.examples(ids=start.demo_ids)]
    assert shown != sorted(shown, reverse=True), "the seed's draw is not the right order"
    orders = [c for c in project.candidates(run.id) if c.operation == "order"]
    assert len(orders) == 5, "three examples have five other orders, each tried once"
    assert len({c.demo_ids for c in orders} | {start.demo_ids}) == 6
    assert all(sorted(c.demo_ids) == sorted(start.demo_ids) and c.parent_ids == (start.id,)
               and c.instruction == start.instruction for c in orders)
    assert "Trying the best examples in 5 other orders" in [
        e.title for e in events if isinstance(e, StepStarted)]

    best = outcome.best
    assert best.operation == "order"
    assert [x.input for x in project.examples(ids=best.demo_ids)] == sorted(shown,
                                                                           reverse=True)
    assert outcome.dev_score == 1.0 and outcome.baseline_test_score == 0.0
    assert "your examples in another order raised dev" in outcome.choice.reason
    story = method_named("demos").story(project, best, {})
    assert story[0].title == "Its order" and all(word in story[0].text for word in shown)


def test_other_orders_are_distinct_and_never_the_one_shown():
    def drawn(count, wanted):
        return demos.other_orders(random.Random(0), count, wanted)

    assert drawn(3, 8) == drawn(3, 8)
    assert sorted(drawn(3, 8)) == sorted(p for p in permutations(range(3)) if p != (0, 1, 2))
    assert len(set(drawn(8, 6))) == 6 and tuple(range(8)) not in drawn(8, 6)
    assert drawn(1, 4) == [] and drawn(0, 4) == []


def test_after_another_method_it_keeps_that_methods_best_instruction(workspace):
    project = letters_project(workspace)

    def answer(instruction: str, word: str) -> str:
        return word[0] if "first letter" in instruction.lower() else "?"

    replies = [" write the first letter of the word.", " shout the word.", "", " sing"]
    model = ScriptedModel(answer, lambda prompt, call: replies[(call - 1) % len(replies)])
    run = start_run(project, "ape", then="demos", overrides={"mc_rounds": 0})
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)

    steps = [(e.step, e.steps) for e in events if isinstance(e, StepStarted)]
    assert [step for step, _ in steps] == list(range(1, len(steps) + 1)), (
        "the demonstration steps count on from APE's")
    assert steps[-1] == (len(steps), len(steps))
    assert max(c.step for c in demo_candidates(project, run.id)) == len(steps) - 3, (
        "the sets are made in the first of the four demonstration steps")
    induced = next(c for c in project.candidates(run.id) if c.operation == "forward"
                   and c.instruction == "Write the first letter of the word.")
    sets = demo_candidates(project, run.id)
    assert sets
    assert all(c.instruction == induced.instruction and c.parent_ids == (induced.id,)
               for c in sets)
    assert outcome.best.instruction == induced.instruction
    assert any("Too few training rows are left that the run has not answered (1;" in e.text
               for e in events if isinstance(e, Message)), (
        "APE judged on 16 of the 17 training rows: one left, too few to check on")


def wide_letters_project(workspace, name: str = "wide"):
    """The first-letter task with 40 training rows, so that fresh ones are left after OPRO
    has ranked its instructions on 16, and a start that says only "a letter"."""
    project = workspace.create(ProjectSettings(name=name,
                                               instruction="Give a letter of the word."))
    project.add_examples([Row(w, w[0], (w[0],), "train")
                          for w in (f"{word}{n}" for n in (1, 2) for word in WORDS[:20])])
    project.add_examples([Row(w, w[0], (w[0],), "dev") for w in WORDS[20:30]])
    project.add_examples([Row(w, w[0], (w[0],), "test") for w in WORDS[30:34]])
    return project


def opro_then_demos(project, model):
    """OPRO, one step of two instructions, then demonstration search; with its log."""
    run = start_run(project, "opro", then="demos", overrides={"steps": 1, "per_step": 2})
    events = []
    runner.execute(project, run.id, model, model, listener=events.append)
    log = [e.text for e in events if isinstance(e, Message)]
    return {c.instruction for c in demo_candidates(project, run.id)}, log


def lucky_model() -> ScriptedModel:
    """Writes "Shout the word.", which it then answers right on the first 16 words it is
    asked about and on no others: an instruction that came first by luck on the rows it was
    ranked on. Any other instruction it follows as `letters_task` does."""
    lucky: set[str] = set()

    def answer(instruction: str, word: str) -> str:
        if instruction != "Shout the word.":
            return letters_task(instruction, word)
        if len(lucky) < 16:
            lucky.add(word)
        return word[0] if word in lucky else "?"

    return ScriptedModel(answer, lambda prompt, call: "<START>Shout the word.<END>")


def test_an_instruction_that_came_first_by_luck_is_not_carried_into_the_examples_search(
        workspace):
    """OPRO ranks "Shout the word." first on its 16 rows; on the training rows nothing had
    answered yet it loses to the start's instruction, so the examples are searched for
    that."""
    project = wide_letters_project(workspace)
    searched_for, log = opro_then_demos(project, lucky_model())
    assert searched_for == {"Give a letter of the word."}
    assert any('"Shout the word.", does not beat "Give a letter of the word."' in line
               and "0.00 against" in line and "on 21 training rows" in line for line in log)


def test_an_instruction_that_holds_up_on_fresh_rows_is_carried(workspace):
    project = wide_letters_project(workspace)
    model = ScriptedModel(letters_task,
                          lambda prompt, call: "<START>Write the first letter of the word.<END>")
    searched_for, log = opro_then_demos(project, model)
    assert searched_for == {"Write the first letter of the word."}
    assert any("beats" in line and "1.00 against" in line for line in log)


class InstructedDemoReader(ScriptedBackend):
    """Answers right only when told to give the first letter, and then only easy words
    unless shown a helpful one; writes instructions from a fixed list when asked."""

    REPLIES = (" write the first letter of the word.", " shout the word.", " sing")

    def __init__(self) -> None:
        self.written = 0
        super().__init__(self.answer)

    def answer(self, prompt: str) -> str:
        if not prompt.startswith("Instruction: "):
            self.written += 1
            return self.REPLIES[(self.written - 1) % len(self.REPLIES)]
        shown = set(re.findall(r"Input: (.*)\nOutput:", prompt)[:-1])
        word = task_input(prompt)
        told = "first letter" in instruction_of(prompt).lower()
        right = told and (bool(shown & HELPFUL) or word in EASY)
        return " " + (word[0] if right else "?") + "\n"


def test_interleaved_turns_search_instructions_with_the_demonstrations_found(workspace):
    project = letters_project(workspace)
    model = InstructedDemoReader()
    run = start_run(project, "ape", then="demos", turns=2, overrides={"mc_rounds": 0})
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)

    steps = [e.step for e in events if isinstance(e, StepStarted)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 2 == 0
    per_round = len(steps) // 2
    candidates = project.candidates(run.id)
    first_demo_search = [c for c in candidates if c.operation == "demo" and c.step <= per_round]
    second_instructions = [c for c in candidates if c.step > per_round
                           and c.operation not in ("demo", "start")]
    assert first_demo_search and second_instructions
    base_demos = {c.demo_ids for c in second_instructions}
    assert len(base_demos) == 1, "round two's instructions all show the chosen demonstrations"
    assert base_demos <= {c.demo_ids for c in first_demo_search}
    for candidate in second_instructions:
        assert not train_ids_evaluated(project, candidate) & set(candidate.demo_ids)
    assert "first letter" in outcome.best.instruction.lower()
    assert words(project, outcome.best.demo_ids) & HELPFUL
    assert any("Turn 2 of 2" in getattr(e, "text", "") for e in events)


def test_turns_need_a_follow_up_and_multiply_the_cost(workspace):
    project = letters_project(workspace)
    once = runner.plan(project, "opro", then="demos")
    twice = runner.plan(project, "opro", then="demos", turns=2)
    finishing = runner.plan(project, "opro").projected_calls - runner.plan(
        project, "opro", overrides={"steps": 0}).projected_calls
    assert twice.turns == 2 and twice.projected_calls > once.projected_calls
    with pytest.raises(ProjectError, match="follow-up"):
        runner.plan(project, "opro", turns=2)
    with pytest.raises(ProjectError, match="cannot follow itself"):
        runner.plan(project, "demos", then="demos")
    assert finishing > 0


def test_a_template_without_demonstrations_leaves_nothing_to_search(workspace):
    project = letters_project(workspace, template="Instruction: {instruction}\n\n"
                                                  "Input: {input}\nOutput:")
    run, outcome, events = run_demos(project, DemoReader())
    assert not demo_candidates(project, run.id)
    assert any("no {demos} slot" in getattr(e, "text", "") for e in events)
    assert outcome.status == "finished" and outcome.best.operation == "start"


def test_a_call_budget_stops_the_race_and_the_run_still_reports(workspace):
    full = letters_project(workspace, name="full")
    full_model = DemoReader()
    run_demos(full, full_model)
    limited = letters_project(workspace, name="limited")
    model = DemoReader()
    budget = search_budget(limited, 30)
    _, outcome, events = run_demos(limited, model, budget=budget)
    assert any(f"budget of {budget.max_calls} model calls" in getattr(e, "text", "")
               for e in events)
    assert outcome.requested_calls <= budget.max_calls
    assert len(model.prompts) < len(full_model.prompts)
    assert outcome.status == "finished" and outcome.test_score is not None
    assert outcome.best.operation == "demo", "the raced sets' scores so far still count"
    assert words(limited, outcome.best.demo_ids) & HELPFUL


def test_resuming_after_any_step_ends_as_an_uninterrupted_run(workspace):
    """Alone, after APE, and interleaved with APE in two turns, paused at every step
    boundary in turn (the layouts' and the orders' races included)."""

    def answer(instruction: str, word: str) -> str:
        return word[0] if "first letter" in instruction.lower() or word in EASY else "?"

    replies = [" write the first letter of the word.", " shout the word.", " {output}",
               " write the first letter of the word", " hum"]

    def model() -> ScriptedModel:
        return ScriptedModel(answer, lambda prompt, call: replies[(call - 1) % len(replies)])

    for method, then, turns, steps in (("demos", None, 1, 4), ("ape", "demos", 1, 9),
                                        ("ape", "demos", 2, 18)):
        reference = letters_project(workspace, name=f"reference-{method}-{turns}")
        reference_model = model()
        run = start_run(reference, method, then=then, turns=turns)
        events = []
        expected = runner.execute(reference, run.id, reference_model, reference_model,
                                  listener=events.append)
        boundaries = sum(isinstance(e, StepStarted) for e in events)
        assert boundaries == steps

        for boundary in range(1, boundaries + 1):
            project = letters_project(workspace, name=f"paused-{method}-{turns}-{boundary}")
            paused_model = model()
            run = start_run(project, method, then=then, turns=turns)
            paused = execute_paused_at(project, run.id, paused_model, boundary)
            assert paused.status == "paused"
            outcome = runner.execute(project, run.id, paused_model, paused_model)
            assert (outcome.best.instruction, outcome.best.demo_ids) == (
                expected.best.instruction, expected.best.demo_ids)
            assert (outcome.dev_score, outcome.test_score) == (expected.dev_score,
                                                               expected.test_score)
            assert len(paused_model.prompts) == len(reference_model.prompts), boundary


def test_the_check_of_the_carried_instruction_ends_the_same_after_a_pause_at_any_step(
        workspace):
    reference = wide_letters_project(workspace)
    reference_model = lucky_model()
    run = start_run(reference, "opro", then="demos", overrides={"steps": 1, "per_step": 2})
    events = []
    expected = runner.execute(reference, run.id, reference_model, reference_model,
                              listener=events.append)
    assert expected.best.instruction == "Give a letter of the word."
    boundaries = sum(isinstance(e, StepStarted) for e in events)
    for boundary in range(1, boundaries + 1):
        project = wide_letters_project(workspace, name=f"paused-{boundary}")
        paused_model = lucky_model()
        run = start_run(project, "opro", then="demos", overrides={"steps": 1, "per_step": 2})
        assert execute_paused_at(project, run.id, paused_model, boundary).status == "paused"
        outcome = runner.execute(project, run.id, paused_model, paused_model)
        assert (outcome.best.instruction, outcome.best.demo_ids, outcome.test_score) == (
            expected.best.instruction, expected.best.demo_ids, expected.test_score)
        assert len(paused_model.prompts) == len(reference_model.prompts), boundary


def execute_paused_at(project, run_id, model, boundary: int):
    """Execute, pausing at the `boundary`-th step announced (counting across methods)."""
    control = RunControl()
    seen = []

    def listen(event) -> None:
        if isinstance(event, StepStarted):
            seen.append(event)
            if len(seen) == boundary:
                control.pause()

    return runner.execute(project, run_id, model, model, control=control, listener=listen)


def test_summary_and_presets():
    demos = method_named("demos")
    assert 2 <= demos.summary.count(". ") + 1 <= 4 and "{" not in demos.summary
    assert set(demos.presets) == {"quick", "standard", "thorough"}
    keys = set(demos.presets["quick"])
    assert all(set(p) == keys for p in demos.presets.values())
    assert set(demos.paper) <= keys, "no paper defines this search; its defaults are ours"


@pytest.mark.parametrize("preset", ["quick", "standard", "thorough"])
def test_the_projected_cost_covers_what_a_run_spends(workspace, preset):
    project = letters_project(workspace)
    model = DemoReader(easy=EASY)
    plan = runner.plan(project, "demos", preset=preset)
    run = runner.create_run(project, plan, preset=preset, seed=0, budget=Budget())
    runner.execute(project, run.id, model, model)
    # The final choice's share is an upper bound (no ablation without a new instruction).
    search = plan.projected_calls - plan.final_calls
    assert 0.6 * search <= len(model.prompts) <= plan.projected_calls


# -- the bundled model -------------------------------------------------------------------


@pytest.mark.model
def test_demonstration_search_on_the_bundled_model(workspace, local_backend):
    project = data_project(workspace)
    run = start_run(project, "demos", overrides={
        "random_sets": 3, "bootstrapped_sets": 2, "budget_per_set": 4, "batch": 2})
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished"
    assert outcome.dev_score is not None and outcome.test_score is not None
    start = project.candidates(run.id)[0]
    dev = {x.id for x in project.examples("dev")}
    start_dev = [e.score for i, e in project.evaluations(start.id).items() if i in dev]
    assert len(start_dev) == len(dev)
    assert outcome.dev_score >= sum(start_dev) / len(start_dev)
    assert demo_candidates(project, run.id)
    orders = [c for c in project.candidates(run.id) if c.operation == "order"]
    assert len(orders) == 4 and all(project.evaluations(c.id) for c in orders)


@pytest.mark.model
def test_taking_turns_with_an_instruction_method_on_the_bundled_model(workspace,
                                                                      local_backend,
                                                                      monkeypatch):
    """OPRO and demonstration search, two turns each, with tiny settings: the second
    OPRO turn writes instructions for the demonstrations the first search chose, and the
    examples are searched for the instruction each check of a written one names."""
    demos = method_named("demos")
    monkeypatch.setitem(demos.presets, "quick", {**demos.presets["quick"], **SMALL_SETS,
                                                 "random_sets": 3, "bootstrapped_sets": 1,
                                                 "layouts": 1, "orders": 1})
    project = data_project(workspace, train=20, dev=6, test=6)
    plan = runner.plan(project, "opro", overrides={"steps": 1, "per_step": 2,
                                                   "train_size": 4},
                       then="demos", turns=2)
    run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    events = []
    outcome = runner.execute(project, run.id, local_backend, local_backend,
                             listener=events.append)
    assert outcome.status == "finished" and outcome.test_score is not None
    checks = [e.text for e in events if isinstance(e, Message) and "on fresh rows" in e.text]
    searched = [c for c in project.candidates(run.id) if c.operation == "demo"]
    for turn, line in enumerate(checks):
        kept, base = re.findall(r'"(.*?)"', line)[:2]
        if "does not beat" in line:
            kept = base
        assert any(c.instruction == kept for c in searched), (turn, line)
    candidates = project.candidates(run.id)
    first_turn_sets = {c.demo_ids for c in candidates if c.operation in ("demo", "order")}
    written = [c for c in candidates
               if c.operation not in ("demo", "layout", "order", "start")]
    # Each turn: OPRO's one step, then the search's four. Whether OPRO's second turn
    # writes anything usable depends on the model's answers, which differ by CPU.
    assert [e.step for e in events if isinstance(e, StepStarted)] == list(range(1, 11))
    second_turn = [c for c in written if c.step > 5]
    assert all(c.demo_ids in first_turn_sets | {candidates[0].demo_ids}
               for c in second_turn)


@pytest.mark.model
def test_the_check_before_carrying_an_instruction_on_the_bundled_model(workspace,
                                                                      local_backend):
    """On real answers: an instruction ranked on 4 training rows is scored beside the one
    it started from on all the training rows nothing had answered, and carried only if it
    scored higher there."""
    project = data_project(workspace, train=20, dev=6, test=6,
                           instruction="Write the first letter of the word.")
    run = start_run(project, "opro", then="demos")
    ctx = RunContext(project, run, local_backend, local_backend, budget=Budget(),
                     start=runner.starting_candidate(project, run,
                                                     runner.run_scoring(project, run)))
    ranked_on = ctx.train[:4]
    written = ctx.add_candidate("Say the word backwards.", operation="opro", clean=False)
    for candidate in (ctx.start, written):
        ctx.score(candidate, ranked_on)

    kept = carried(ctx, written)

    fresh = [x.id for x in ctx.train[4:]]
    means = [sum(ctx.scores[c.id].per_example["train"][i] for i in fresh) / len(fresh)
             for c in (written, ctx.start)]
    assert all(set(ctx.scores[c.id].per_example["train"]) == {x.id for x in ctx.train}
               for c in (written, ctx.start)), "both on the same rows: all 17 left to score"
    assert kept == (written if means[0] > means[1] else ctx.start)
