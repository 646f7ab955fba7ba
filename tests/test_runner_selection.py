"""How a run chooses its best prompt: the search's own best, checked on the dev rows the
search never used, ties to the start, and a gain from the examples credited to the examples.

The task model here is scripted, so which prompt is really better is known: the tests check
that the run's choice and its stated reason agree with it.
"""

from __future__ import annotations

import random

from optimize_support import (
    SMALL_SETS,
    ScriptedModel,
    instruction_of,
    letters_project,
    start_run,
    task_input,
)
from scripted import meta_prompt_of

from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.method import method_named
from promptstudio.optimize.selection import (
    FOUND,
    KEPT_START,
    NEW_DEMOS,
    REPLACE_P,
    duel,
    sign_test,
    split_dev,
)
from promptstudio.store.project import ProjectError


def test_a_win_must_be_clear_to_count():
    start = dict.fromkeys(range(30), 0.0)
    assert sign_test({0: 1.0, **{i: 0.0 for i in range(1, 30)}}, start) == (0.5, 1, 0)
    assert sign_test({i: float(i < 3) for i in range(30)}, start) == (0.125, 3, 0)
    assert sign_test(start, start) == (1.0, 0, 0)
    mixed = {i: float(i < 4) for i in range(30)}
    assert sign_test(mixed, {i: float(4 <= i < 6) for i in range(30)}) == (22 / 64, 4, 2)
    assert not duel({0: 1.0, 1: 1.0}, {0: 0.0, 1: 0.0}).won, "2-0 is luck (p = 0.25)"
    assert duel(dict.fromkeys(range(3), 1.0), dict.fromkeys(range(3), 0.0)).won  # 0.125
    five_two = {i: float(i < 5) for i in range(7)}
    assert not duel(five_two, {i: float(i >= 5) for i in range(7)}).won  # 0.23
    assert REPLACE_P == 0.15


def test_dev_splits_the_same_way_every_time_into_a_third_and_two_thirds():
    rows = list(range(11))
    select, confirm = split_dev(rows, random.Random(3))
    again = split_dev(rows, random.Random(3))
    assert (select, confirm) == again
    assert len(select) == 4 and len(confirm) == 7 and not set(select) & set(confirm)
    assert sorted(select + confirm) == rows


# -- runs with a task model whose better prompt is known -------------------------------------

def demos_of(prompt: str) -> list[str]:
    """The inputs of the demonstrations a task prompt shows."""
    return [part.split("\n", 1)[0] for part in prompt.split("Input: ")[1:-1]]


class KnownModel(ScriptedModel):
    """A first-letter task model whose accuracy is set by the prompt: `right(instruction,
    demos)` gives the chance of a right answer, decided per input by a fixed hash, so the
    same prompt always answers the same way."""

    def __init__(self, right, optimizer=lambda prompt, call: "") -> None:
        def task(instruction: str, word: str) -> str:
            raise AssertionError("answered in reply()")

        super().__init__(task, optimizer)
        self.right = right
        outer = self.reply

        def reply(prompt: str) -> str:
            if prompt.startswith("Instruction: "):
                word = task_input(prompt) or "?"
                chance = self.right(instruction_of(prompt), demos_of(prompt))
                lucky = (sum(map(ord, word)) * 7919) % 100 / 100
                return " " + (word[0] if lucky < chance else "?") + "\n"
            return outer(prompt)

        self.reply = reply


def finished(project, model, method="demos", **kwargs):
    run = start_run(project, method, **kwargs)
    outcome = runner.execute(project, run.id, model, model)
    assert outcome.status == "finished"
    return outcome


def test_examples_that_really_help_replace_the_start_and_are_credited(workspace):
    """Demonstration search with a model that only learns from examples of words that start
    with a vowel: the user's instruction is kept, with the new examples, and so said."""
    project = letters_project(workspace, instruction="Answer.")
    vowels = lambda demos: sum(d[0] in "aeiou" for d in demos)  # noqa: E731
    model = KnownModel(lambda instruction, demos: 0.9 if vowels(demos) >= 2 else 0.2)
    outcome = finished(project, model)
    choice = outcome.choice
    assert choice.kind == NEW_DEMOS and outcome.best.instruction == "Answer."
    assert outcome.best.id != choice.start and vowels(
        [e.input for e in project.examples(ids=outcome.best.demo_ids)]) >= 2
    assert choice.reason.startswith("Your instruction was kept; the new examples raised dev "
                                    f"from {choice.score(choice.start, 'dev'):.2f} to "
                                    f"{choice.score(outcome.best.id, 'dev'):.2f}")
    # Demonstration search ranks on train only, so the pick is checked on all 10 dev rows.
    assert choice.select_rows == 0 and choice.confirm_rows == 10
    assert "On the 10 dev rows the search never used" in choice.reason
    searched = {int(i): parts["search"] for i, parts in choice.scores.items()
                if "search" in parts}
    found = {i: score for i, score in searched.items() if i != choice.start}
    assert choice.best_found == max(found, key=lambda i: (found[i], -i)), (
        "the challenger is the search's own best")
    assert project.run(outcome.run_id).choice["reason"] == choice.reason, "stored with the run"


def test_a_prompt_that_only_got_lucky_in_the_search_is_not_confirmed(workspace):
    """Every prompt is equally good; one set of examples happens to win on the training
    rows the search tried it on. On the dev rows it never saw it is no better, and the start
    stays, with the reason in numbers."""
    project = letters_project(workspace, instruction="Answer.")
    model = KnownModel(lambda instruction, demos: 0.5)
    outcome = finished(project, model)
    choice = outcome.choice
    assert outcome.best.id == choice.start and choice.kind == KEPT_START
    best = choice.score(choice.best_found, "search")
    assert choice.reason.startswith(f"The best prompt the search found, which scored {best:.2f} "
                                    "on the ")
    assert "training rows the search tried it on, was checked against yours on the 10 dev " \
           "rows the search never used and scored " in choice.reason
    assert choice.reason.endswith("not clearly better, so your prompt is kept.")


def test_ties_go_to_the_start(workspace):
    """Every prompt answers everything right: the search's best is checked, ties the start
    on the dev rows the search never used, and the start stays."""
    project = letters_project(workspace, instruction="Answer.")
    outcome = finished(project, KnownModel(lambda instruction, demos: 1.0))
    choice = outcome.choice
    assert choice.kind == KEPT_START and choice.best_found != choice.start
    assert choice.score(choice.best_found, "confirm") == 1.0
    assert "(better on 0 rows, worse on 0; sign test p = 1.00): not clearly better" in (
        choice.reason)


def test_the_users_own_examples_stay_when_they_are_the_best_there_are(workspace):
    """Only the user's three examples teach the model: every other set does worse in the
    search and on dev, so the search's best is checked and turned away. (The same examples
    in other orders would teach it as well: none are tried here.)"""
    project = letters_project(workspace, instruction="Answer.")
    model = KnownModel(lambda instruction, demos: 0.9 if len(demos) == 3 else 0.0)
    outcome = finished(project, model, overrides={"k": 4, "max_k": 4, "orders": 0})
    choice = outcome.choice
    assert choice.kind == KEPT_START and outcome.best.id == choice.start
    assert choice.score(choice.best_found, "confirm") == 0.0
    assert choice.score(choice.start, "confirm") > 0.5
    assert "so your prompt is kept" in choice.reason


def writer(instruction: str):
    """An optimizer model that always proposes `instruction` (ProTeGi's three requests)."""
    def optimizer(prompt: str, call: int) -> str:
        if meta_prompt_of(prompt) == "protegi_gradient":
            return "<START>It does not say what to answer.<END>"
        if meta_prompt_of(prompt) == "protegi_edit":
            return f"<START>{instruction}<END>"
        return instruction
    return optimizer


def test_a_written_instruction_is_kept_only_where_it_beats_the_users_with_the_same_examples(
        workspace):
    """ProTeGi then demonstration search. The model does well with the written instruction
    whatever the examples, and badly with the user's: the words made the gain."""
    project = letters_project(workspace, instruction="Answer.")
    good = "Give the first letter of the word."
    model = KnownModel(lambda instruction, demos: 0.95 if instruction == good else 0.1,
                       writer(good))
    outcome = finished(project, model, method="protegi", then="demos",
                       overrides={"beam": 1})
    choice = outcome.choice
    assert choice.kind == FOUND and outcome.best.instruction == good
    # ProTeGi ranked its beam on the select third, so only the other 6 rows check the pick.
    assert choice.select_rows == 4 and choice.confirm_rows == 6
    assert "beat your prompt on the 6 dev rows the search never used" in choice.reason
    bare = project.candidate(choice.bare)
    assert (bare.instruction, bare.demo_ids) == ("", outcome.best.demo_ids)
    assert bare.operation == "bare" and choice.score(bare.id, "confirm") is not None
    assert "It also beat the same examples with no instruction at all" in choice.reason


def test_words_that_do_no_better_than_none_are_not_said_to_have_made_the_gain(workspace):
    """The model follows its examples, and only the user's wording holds it back: any
    other instruction, or none, does well. The written instruction beat the user's on the
    rows the search never used, so it is the pick, but the reason says its words are not why."""
    project = letters_project(workspace, instruction="Answer.")
    unrelated = "Say whether you like the weather today."
    model = KnownModel(lambda instruction, demos: 0.1 if instruction == "Answer." else 0.95,
                       writer(unrelated))
    outcome = finished(project, model, method="protegi", overrides={"beam": 1})
    choice = outcome.choice
    assert choice.kind == FOUND and outcome.best.instruction == unrelated
    bare = project.candidate(choice.bare)
    assert bare.instruction == "" and bare.demo_ids == outcome.best.demo_ids
    assert choice.score(bare.id, "confirm") == choice.score(outcome.best.id, "confirm")
    assert choice.reason.endswith(
        "But the same examples with no instruction at all did about as well (the new "
        f"instruction scored {choice.score(outcome.best.id, 'confirm'):.2f} against "
        f"{choice.score(bare.id, 'confirm'):.2f} (better on 0 rows, worse on 0; sign test "
        "p = 1.00)): the model follows the examples here, and the gain did not come from "
        "what the new instruction says.")


def test_a_pick_that_keeps_the_users_instruction_is_checked_on_all_of_dev_after_protegi(
        workspace):
    """ProTeGi ranks its beam of instructions on the select third of dev, shown with the
    start's examples. Its written instruction does worse, so the user's stays; the examples
    of vowel words then win. No row of dev chose any part of that pick, so it is checked on
    all of dev, and the reason says why the select third is among them."""
    project = letters_project(workspace, instruction="Answer.")
    vowels = lambda demos: sum(d[0] in "aeiou" for d in demos) >= 2  # noqa: E731
    model = KnownModel(lambda instruction, demos: 0.05 if instruction != "Answer." else
                       (0.95 if vowels(demos) else 0.3), writer("Name the first letter."))
    outcome = finished(project, model, method="protegi", then="demos", overrides={"beam": 1})
    choice = outcome.choice
    assert choice.kind == NEW_DEMOS and outcome.best.instruction == "Answer."
    assert (choice.select_rows, choice.confirm_rows) == (4, 10)
    assert ("On all 10 dev rows (the search ranked instructions on 4 of them, and this "
            "prompt keeps yours) they scored") in choice.reason


def test_a_gain_from_the_examples_alone_is_credited_to_the_examples(workspace):
    """ProTeGi then demonstration search. The written instruction helps a little with the
    start's examples, so ProTeGi keeps it and the examples are searched for it; but with
    examples of vowel words the model does well whatever the instruction. The pick is the
    user's instruction with the new examples, and the reason says so."""
    project = letters_project(workspace, instruction="Answer.")
    written = "Name the first letter."
    vowels = lambda demos: sum(d[0] in "aeiou" for d in demos)  # noqa: E731
    model = KnownModel(lambda instruction, demos: 0.95 if vowels(demos) >= 2 else
                       (0.6 if instruction == written else 0.1), writer(written))
    outcome = finished(project, model, method="protegi", then="demos",
                       overrides={"beam": 1})
    choice = outcome.choice
    found = project.candidate(choice.best_found)
    assert found.instruction == written, "the search carried the written instruction"
    assert choice.kind == NEW_DEMOS and outcome.best.instruction == "Answer."
    assert choice.ablation == outcome.best.id and outcome.best.demo_ids == found.demo_ids
    assert choice.reason.startswith("Your instruction was kept; the new examples raised")
    assert "so the gain is the examples'" in choice.reason


def test_a_gain_that_needs_both_the_words_and_the_examples_keeps_both(workspace, monkeypatch):
    """OPRO then demonstration search. The written instruction and examples of vowel words
    each lift two dev rows, and together four: the pair beats the start (4-0), but neither
    part alone beats what it replaces clearly enough (2-0 each). The pair is the pick, and
    the reason says the gain is the two together; until 2026-12-07 the start was kept.
    The follow-up draws sets of 3 to 8 examples, as the scenario was built for: with the
    preset's 4 to 16 (8 at most from these 20 training rows) the race, on the few rows a set
    leaves, ended on a set without two vowel words, and the start was rightly kept."""
    monkeypatch.setitem(method_named("demos").presets, "quick",
                        {**method_named("demos").presets["quick"], **SMALL_SETS})
    project = letters_project(workspace, instruction="Answer.")
    written = "Name the first letter."
    vowels = lambda demos: sum(d[0] in "aeiou" for d in demos) >= 2  # noqa: E731

    def right(instruction: str, demos: list[str]) -> float:
        if instruction == written:
            return 0.8 if vowels(demos) else 0.6
        if instruction == "Answer.":
            return 0.67 if vowels(demos) else 0.5
        return 0.5

    outcome = finished(project, KnownModel(right, writer(written)), method="opro",
                       then="demos")
    choice = outcome.choice
    assert choice.kind == FOUND and outcome.best.id == choice.best_found
    assert outcome.best.instruction == written and vowels([i for i, _ in outcome.best.demos])
    own_words = project.candidate(choice.ablation)
    assert (own_words.instruction, own_words.demo_ids) == ("Answer.", outcome.best.demo_ids)
    part = lambda candidate: choice.score(candidate.id, "confirm")  # noqa: E731
    assert (part(outcome.best), part(own_words), choice.score(choice.start, "confirm")) == (
        0.8, 0.6, 0.4)
    assert ("Neither part alone did clearly better: its instruction against yours with the "
            "same examples scored 0.80 against 0.60 (better on 2 rows, worse on 0; sign test "
            "p = 0.25), and your instruction with its examples against your prompt 0.60 "
            "against 0.40 (better on 2 rows, worse on 0; sign test p = 0.25). Together they "
            "did beat your prompt, so the new instruction and the new examples are kept "
            "together.") in (
                choice.reason)
    assert "It also beat the same examples with no instruction at all" in choice.reason


def test_without_enough_dev_rows_the_start_is_kept_and_the_user_told_why(workspace):
    from promptstudio.dataio import Row

    project = workspace.create(__import__("promptstudio.store.records", fromlist=["x"])
                               .ProjectSettings(name="tiny", instruction="Answer."))
    words = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay"]
    project.add_examples([Row(w, w[0], (w[0],), "train") for w in words[:8]])
    project.add_examples([Row(w, w[0], (w[0],), "dev") for w in words[8:]])
    outcome = finished(project, KnownModel(lambda instruction, demos: 0.5))
    assert outcome.choice.kind == KEPT_START
    assert outcome.choice.reason.startswith("Only 2 dev rows were left to check")


# -- the limit holds for the whole run -------------------------------------------------------


def test_a_call_limit_covers_choosing_and_reporting_too(workspace):
    project = letters_project(workspace, instruction="Answer.")
    vowels = lambda demos: sum(d[0] in "aeiou" for d in demos)  # noqa: E731
    model = KnownModel(lambda instruction, demos: 0.9 if vowels(demos) >= 2 else 0.2)
    limit = runner.final_calls(runner.sizes(project)) + 30
    outcome = finished(project, model, budget=Budget(max_calls=limit))
    assert outcome.requested_calls <= limit
    assert outcome.llm_calls <= limit


def test_a_limit_too_small_to_choose_is_refused_before_the_run(workspace):
    project = letters_project(workspace, instruction="Answer.")
    needed = runner.final_calls(runner.sizes(project))
    try:
        start_run(project, "demos", budget=Budget(max_calls=needed))
    except ProjectError as refused:
        assert f"takes up to {needed} model calls" in str(refused)
    else:
        raise AssertionError("a run that cannot choose was created")
