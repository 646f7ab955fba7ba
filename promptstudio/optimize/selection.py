"""How a run chooses its best prompt, and says why: on dev rows the search never used.

A search compares many candidates on a few examples, so the best of them always looks
better than it is: with 12-30 dev rows, picking the best of many equally good prompts shows
a false gain of ten points or more. So a finished run

1. takes the finalist the search scored best (`RunContext.search_score`: the train score,
   or for ProTeGi, which ranks its beam on a third of dev, that score); ties, and a search
   that ranks on something else (APE by log-likelihood), go to the method's own order;
2. checks it on every dev row the search never used (`RunContext.dev_parts`: all of dev,
   or the other two thirds after ProTeGi). Until 2026-12-06 the finalists were first
   compared again on a third of dev, which left two thirds for the check whatever the
   method. On seven suites of 21 runs of the shared suite (replays with
   `benchmarks/selection_rules.py`, and runs; docs/benchmarks.md), ranking by the search's
   own score and checking on all 30 rows gained +7.0 points on test on average where the
   old rule gained +6.3 (from +5.6 to +8.0 after PE2 and to +7.2 after OPRO; from +8.4 to
   +7.9 at the standard preset and from +5.8 to +5.0 after APE), with no more picks below
   the start. A pick that keeps the user's instruction is checked on all of dev even after
   ProTeGi, whose beam shows the start's examples (`ranked_only_instructions_on_dev`):
   the select third ranked instructions only, so it chose no part of such a pick, and the
   start it is compared with had the same chance there. On the bundled model this took
   ProTeGi then demonstration search from +5.4 to +7.8 points on test (21 tasks,
   measured), where examples that clearly won on 30 rows had not on 20;
3. lets it replace the starting prompt only if it beats the start on those rows by a
   one-sided exact sign test over the rows where the two differ, at p <= `REPLACE_P`,
   with a higher mean (a 2-0 win is not enough);
4. when the winner has both a new instruction and new demonstrations (other examples, or
   the same written in another layout), scores the user's own instruction with those
   demonstrations on the same rows. If the written instruction does not win there by the
   same test and the user's instruction with the new demonstrations beats the start, the
   pick is the latter: a gain that comes from the examples is credited to the examples
   (Wan et al. 2024, arXiv 2406.15708, find that optimizing the examples beats optimizing
   the instruction; Honovich et al. 2022, arXiv 2205.10782, that a base model writes poor
   instructions). If neither part alone clearly beats what it replaces, the winner is kept
   whole, since only it has beaten the start, and the reason says that neither part did
   alone. Until 2026-12-07 that case kept the start, which threw away gains the check had
   confirmed: on negation, OPRO's words with new examples beat the start 6-2 on 30 dev
   rows, 0.38 against 0.08 on test. The price is words that may say nothing of the task:
   after OPRO on number to words, "In an environmental classification system, the project
   is composed of several" with new examples (0.12 to 0.16 on test, where the user's
   instruction with the same examples also scores 0.16). Showing the user's instruction
   there instead would show a prompt that has not clearly beaten the start;
5. when it keeps a written instruction, scores the same demonstrations with no instruction
   at all on the same rows, and says in the reason whether the words beat none: a small
   model that follows its examples may gain as much from dropping the user's instruction as
   from any new one, and then what the new instruction says is not why it won. The pick
   stands, since it did beat the user's prompt. The check weighs words, not their meaning:
   on the bundled model a base-model APE pick, "Say whether you believe in ghosts, and give
   a reason for your answer.", beat "Rewrite the sentence in the passive voice." 0.75 to
   0.20 and no instruction 0.75 to 0.45; that model does better with some instruction-like
   line, whatever it says.

`Choice` is what the run stores (`run.choice`) and what every view shows as the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from promptstudio.optimize.layouts import recorded_in
from promptstudio.store.records import Candidate, Example

EXPLAINED = (
    "Every run, whatever its method, chooses its best prompt the same way. The prompt the "
    "search ranked first, by the score it ranked its finalists on, is checked against your "
    "starting prompt on the dev rows the search never used (all of them, or two thirds "
    "when the method ranks its instructions on the other third, as ProTeGi does, unless "
    "the prompt keeps your instruction): it replaces your prompt "
    "only if it beats it there clearly enough (a one-sided sign test over the rows where "
    "the two differ, at p <= 0.15); a tie goes to your prompt. When the winner has both a "
    "new instruction and new examples, your own instruction is tried with those examples "
    "on the same rows: if the new instruction does not win there too and your instruction "
    "with those examples beats your prompt, you get your instruction with the examples "
    "that made the gain, and the run says so; if neither part alone does clearly better, "
    "you get the two together, and the run says that too. A new instruction that wins "
    "is also tried against the same examples with no instruction at all, and the reason "
    "says whether its words did better than none. The run stores its reason, and the "
    "window, `promptstudio show` and exported prompt cards show it.")
"""How a run chooses, for `promptstudio methods` and the Run page's help."""

REPLACE_P = 0.15
"""The sign test's one-sided p-value a challenger must reach on the rows it is checked
on: 2-0 (0.25), 4-1 (0.19) and 5-2 (0.23) are not enough; 3-0 (0.125), 6-2 (0.14) and 8-3
(0.11) are. Measured on the bundled samples, 0.10 turned away real gains of 30 points on test
(8-3 and 9-4 on 20 confirm rows), since a small model's answers flip both ways when the
examples change."""
MIN_CONFIRM_ROWS = 3
"""Below this many rows to check on no win can reach `REPLACE_P` (3-0 gives 0.125)."""
KEPT_START, FOUND, NEW_DEMOS = "start", "found", "new demonstrations"
"""What a run's pick is: the starting prompt, a prompt the search found, or the user's own
instruction with demonstrations the search found."""


def split_dev(dev: Sequence[Example], rng) -> tuple[list[Example], list[Example]]:
    """The third of dev a search may rank on (ProTeGi does) and the two thirds kept from it
    (the first part rounds up), the same on every replay of the run."""
    order = list(dev)
    rng.shuffle(order)
    cut = math.ceil(len(order) / 3)
    return order[:cut], order[cut:]


def sign_test(candidate: dict[int, float], start: dict[int, float]) -> tuple[float, int, int]:
    """(one-sided p-value that `candidate` beats `start`, wins, losses), from the examples
    scored by both on which one did better than the other; ties carry no evidence."""
    shared = candidate.keys() & start.keys()
    wins = sum(candidate[i] > start[i] for i in shared)
    losses = sum(candidate[i] < start[i] for i in shared)
    n = wins + losses
    if n == 0:
        return 1.0, 0, 0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n, wins, losses


@dataclass(frozen=True)
class Duel:
    """One paired comparison on the rows a pick is checked on."""

    challenger: float
    holder: float
    wins: int
    losses: int
    p_value: float

    @property
    def won(self) -> bool:
        return self.p_value <= REPLACE_P and self.challenger > self.holder

    def describe(self) -> str:
        rows = "row" if self.wins == 1 else "rows"
        return (f"{self.challenger:.2f} against {self.holder:.2f} (better on {self.wins} "
                f"{rows}, worse on {self.losses}; sign test p = {self.p_value:.2f})")


def duel(challenger: dict[int, float], holder: dict[int, float]) -> Duel:
    """`challenger` against `holder` on the rows both were scored on."""
    shared = sorted(challenger.keys() & holder.keys())
    mean = (lambda scores: sum(scores[i] for i in shared) / len(shared)) if shared else (
        lambda scores: 0.0)
    p_value, wins, losses = sign_test(challenger, holder)
    return Duel(mean(challenger), mean(holder), wins, losses, p_value)


@dataclass
class Choice:
    """The run's pick and the evidence for it, in numbers and in words."""

    picked: int
    start: int
    kind: str
    reason: str
    model: str
    select_rows: int = 0
    """How many dev rows the search ranked on (0 unless it ranks on dev, as ProTeGi does;
    runs before 2026-12-06: the third every run compared its finalists on)."""
    confirm_rows: int = 0
    """How many dev rows the pick was checked on: those the search never used, or all of
    dev (`checked_rows`), the select rows included."""
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Mean scores by candidate id (as text, for JSON) and by part: search (the score the
    search ranked the finalists by), confirm (the rows checked on), dev (all of it) and
    test; runs before 2026-12-06 have select in place of search."""
    best_found: int | None = None
    """The finalist the search ranked first, whether or not it was picked."""
    ablation: int | None = None
    """The user's instruction with the best prompt's demonstrations, when it was tried."""
    bare: int | None = None
    """The picked instruction's demonstrations with no instruction, when a written
    instruction was picked."""

    def score(self, candidate_id: int | None, part: str) -> float | None:
        if candidate_id is None:
            return None
        return self.scores.get(str(candidate_id), {}).get(part)

    def record(self, candidate_id: int, part: str, value: float) -> None:
        self.scores.setdefault(str(candidate_id), {})[part] = value

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Choice:
        return cls(**data)


def no_dev_reason(confirm_rows: int) -> str:
    if confirm_rows == 0:
        return ("There are no dev rows, so nothing the run found could be checked on rows "
                "the search did not use; your prompt is kept. Add dev rows (8 or more) so "
                "that a run can replace it.")
    left = "1 dev row was" if confirm_rows == 1 else f"{confirm_rows} dev rows were"
    return (f"Only {left} left to check the best prompt on, too few to tell a real gain "
            "from luck; your prompt is kept. Add dev rows (8 or more) so that a run can "
            "replace it.")


def nothing_found_reason() -> str:
    return ("The run found no prompt other than yours to check (it may have stopped "
            "before its first candidate was scored), so your prompt is kept.")


SEARCH_ROWS = {"train": "training", "dev": "dev"}


def checked_rows(rows: int, instructions_ranked_on: int = 0) -> str:
    """The dev rows a pick is checked on, in words: those the search never used, or all of
    dev when the search ranked only instructions on some of them and the pick keeps the
    user's instruction (`RunContext.ranked_only_instructions_on_dev`)."""
    if instructions_ranked_on:
        return (f"all {rows} dev rows (the search ranked instructions on "
                f"{instructions_ranked_on} of them, and this prompt keeps yours)")
    return f"the {rows} dev rows the search never used"


def unconfirmed_reason(search: tuple[float, int, str], check: Duel, checked_on: str) -> str:
    """Why the search's best prompt did not replace the start; `search` is what the search
    knew of it (`RunContext.search_evidence`)."""
    mean, rows, split = search
    known = (f", which scored {mean:.2f} on the {rows} {SEARCH_ROWS[split]} "
             f"row{'s' if rows != 1 else ''} the search tried it on," if rows else "")
    return (f"The best prompt the search found{known} was checked against yours on "
            f"{checked_on} and scored {check.describe()}: not clearly better, so your "
            "prompt is kept.")


def found_reason(candidate: Candidate, start: Candidate, check: Duel, checked_on: str,
                 instruction_check: Duel | None, bare_check: Duel | None = None,
                 examples_check: Duel | None = None) -> str:
    """Why a prompt the search found replaced the start. With new examples too,
    `instruction_check` is its instruction against the user's with the same examples and,
    when that was not won, `examples_check` the user's instruction with those examples
    against the start; `bare_check` is the found prompt against its own examples with no
    instruction."""
    what = _what_changed(candidate, start)
    text = f"{what} beat your prompt on {checked_on}: {check.describe()}."
    if instruction_check is not None and instruction_check.won:
        text += (" Its new instruction also beat your instruction shown with the same "
                 f"examples: {instruction_check.describe()}.")
    elif instruction_check is not None and examples_check is not None:
        text += (" Neither part alone did clearly better: its instruction against yours "
                 f"with the same examples scored {instruction_check.describe()}, and your "
                 f"instruction with its examples against your prompt "
                 f"{examples_check.describe()}. Together they did beat your prompt, so the new "
                 "instruction and the new examples are kept together.")
    if bare_check is not None and bare_check.won:
        text += (" It also beat the same examples with no instruction at all: "
                 f"{bare_check.describe()}.")
    elif bare_check is not None:
        text += (" But the same examples with no instruction at all did about as well (the "
                 f"new instruction scored {bare_check.describe()}): the model follows the "
                 "examples here, and the gain did not come from what the new instruction "
                 "says.")
    return text


def new_demos_reason(start_dev: float, picked_dev: float, check: Duel, checked_on: str,
                     instruction_check: Duel | None, examples: str = "the new examples"
                     ) -> str:
    text = (f"Your instruction was kept; {examples} raised dev from {start_dev:.2f} to "
            f"{picked_dev:.2f}. On {checked_on} they scored {check.describe()}.")
    if instruction_check is not None:
        text += (" The instruction the run wrote did no better with the same examples "
                 f"({instruction_check.describe()}), so the gain is the examples'.")
    return text


def examples_meta(candidate: Candidate) -> dict:
    """What a candidate records about how its examples are written, when demonstration
    search gave it another layout (`layouts`); else nothing."""
    return recorded_in(candidate.meta)


def examples_changed(candidate: Candidate, start: Candidate) -> bool:
    """Whether `candidate` shows other examples than `start`, or writes them otherwise."""
    return (tuple(candidate.demo_ids) != tuple(start.demo_ids)
            or examples_meta(candidate) != examples_meta(start))


def _what_changed(candidate: Candidate, start: Candidate) -> str:
    new_words = candidate.instruction != start.instruction
    new_demos = examples_changed(candidate, start)
    if new_words and new_demos:
        return "A new instruction with " + _examples_words(candidate, start)
    if new_words:
        return "A new instruction"
    return "Your instruction with " + _examples_words(candidate, start)


def examples_phrase(candidate: Candidate, start: Candidate) -> str:
    """The examples a pick keeps the user's instruction with, in words: 'the new examples',
    'your examples in another order', 'your examples, written as …,' (the same rows in
    another layout)."""
    words = _examples_words(candidate, start)
    return ("the " if words.startswith("new") else "") + words + (
        "," if _laid_out(candidate, start) else "")


def _examples_words(candidate: Candidate, start: Candidate) -> str:
    """'new examples', 'your examples in another order' or 'your examples', then how they
    are written when that changed."""
    laid_out = _laid_out(candidate, start)
    same = tuple(candidate.demo_ids) == tuple(start.demo_ids)
    if same and laid_out:
        whose = "your examples"
    elif not same and sorted(candidate.demo_ids) == sorted(start.demo_ids):
        whose = "your examples in another order"
    else:
        whose = "new examples"
    return whose + laid_out


def _laid_out(candidate: Candidate, start: Candidate) -> str:
    """', written as Q: … A: …' when the candidate writes its examples in a layout of its
    own."""
    layout = candidate.meta.get("layout")
    if not layout or examples_meta(candidate) == examples_meta(start):
        return ""
    return f", written as {layout}"
