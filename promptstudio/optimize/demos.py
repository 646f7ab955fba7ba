"""Demonstration search: which k training examples to show the model with its instruction.

Beyond the four papers. A small base model such as the bundled one answers almost nothing
from an instruction alone, while three random demonstrations take it to 0.5-0.97 on the
instruction-induction tasks: there, which examples it sees matters more than the wording.
The search, in `DemoSearch.optimize`:

1. Keep the current best instruction: the starting prompt's, or, when this runs after
   another method (the runner's `then`), that method's best by the score it ranked on, if
   it also beats the instruction the method started from on training rows the run has not
   yet answered (`carried`). Racing sets for the user's instruction too, beside that
   method's best, was tried (2026-12-07): after APE on the bundled model's 21 benchmark
   tasks it took half again as long (20.2 minutes against 13.7) and gained +5.9 points on
   test where the one-instruction race gained +7.3 (with twice the sets in the race
   another one wins, and the winner must still pass the check), so it was not kept.
2. Collect candidate demonstration sets: random subsets of train, *bootstrapped* sets
   made only of train examples the model already answers right under the instruction with
   its current demonstrations (as DSPy's BootstrapFewShot keeps the traces that pass the
   metric), and the current set itself, so the search cannot end below where it began.
   The sets come in sizes from `k` to `max_k` (at most half the training examples, so that
   as many are left to score a set on as it shows), because how many examples a small model
   sees matters as much as which: with the bundled model, 6-10 random demonstrations
   instead of 3 took active-to-passive from 0.10-0.34 to 0.58-0.84 and negation from
   0.04-0.08 to 0.20-0.30 on test (two seeds each), while other tasks stayed level.
3. Race the sets with a best-arm bandit (`promptstudio.optimize.bandits`). Each pull scores
   a set on its next few train examples, in one shuffled order shared by all sets (paired
   comparisons), skipping the set's own demonstrations so that no set is scored on the
   answers it shows. The bandit's best few are the finalists.
4. Try the race's winner in other layouts (`promptstudio.optimize.layouts`: field names
   such as "Q:" for "Input:", separators, spacing; Sclar et al. 2024), raced the same way;
   its best layouts join the finalists. Only where the template writes the example to
   answer the way its demonstrations are (the default does), and not for a chat model,
   whose own template lays the prompt out.
5. Try the best so far with its examples in other orders (Lu et al., "Fantastically
   Ordered Prompts and Where to Find Them", ACL 2022: the order alone moved few-shot
   accuracy from near the best to near chance, and a good order for one model does not
   carry over to another), raced the same way; the best orders join the finalists.
   The paper picks orders without labels, by the spread of the labels the model predicts
   on inputs it generated itself (entropy probing); here the training rows have answers,
   so orders are raced on them like any other candidate, which also works for tasks that
   are not classification.

No paper defines this search, so `paper` is empty; the thorough preset follows DSPy's
BootstrapFewShotWithRandomSearch in size (16 candidate sets, up to 16 labelled
demonstrations). A set is raced in the order it was drawn; only the best is reordered.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import cycle
from typing import ClassVar

from promptstudio.evaluation import own_template, scorable
from promptstudio.llm.chat import CHAT
from promptstudio.optimize import bandits, layouts
from promptstudio.optimize.bandits import RACE_TEXT as _RACE
from promptstudio.optimize.context import RunContext
from promptstudio.optimize.describe import clip
from promptstudio.optimize.method import (
    DEFAULT_DEMOS,
    FINALISTS,
    Method,
    Operation,
    Section,
    Setting,
    Sizes,
    register,
)
from promptstudio.optimize.selection import MIN_CONFIRM_ROWS
from promptstudio.store.records import Candidate, Example


@register
class DemoSearch(Method):
    name = "demos"
    title = "Demonstration search"
    summary = (
        "Keeps your instruction and looks for the best few examples to show the model with "
        "it, trying random picks and examples the model already gets right, and quickly "
        "dropping picks that do badly; then tries the best pick written in a few other "
        "layouts (Q and A in place of Input and Output, for example) and in other orders. "
        "Small models learn more from examples than from instructions, so choose it for "
        "them, alone or after another method. Cost: several hundred short answers on the "
        "quick setting."
    )
    paper: ClassVar[dict] = {}
    order = 0
    meta_prompts = ()
    operations: ClassVar[dict[str, Operation]] = {
        "demo": Operation(
            "Other examples shown",
            "the same instruction with other examples",
            "The same instruction, shown to the model with other examples."),
        "layout": Operation(
            "Another layout",
            "the same prompt with its examples laid out another way",
            "The same instruction and examples, with the examples written in another "
            "layout (other field names, separators or spacing): a small model can answer "
            "very differently when only the layout changes."),
        "order": Operation(
            "Examples in another order",
            "the same prompt with its examples in another order",
            "The same instruction and examples, shown in another order: a small model can "
            "answer very differently depending on which example it sees last."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "k": Setting(
            "Fewest examples shown",
            "The fewest worked examples (demonstrations) the model sees together with the "
            "instruction in a pick."),
        "max_k": Setting(
            "Most examples shown",
            "The most worked examples in a pick. Picks of several sizes up to this are "
            "tried, because small models often do better with more examples; more "
            "examples make every answer slower. A pick never holds more than half the "
            "training examples, so that the rest can score it."),
        "random_sets": Setting(
            "Random picks",
            "How many random sets of training examples are tried as demonstrations."),
        "bootstrapped_sets": Setting(
            "Picks from right answers",
            "How many sets are made only of training examples the model already answers "
            "right."),
        "bandit": Setting(
            "How to race the picks",
            "How the sets of examples compete on training examples: " + _RACE,
            bandits.STRATEGIES),
        "budget_per_set": Setting(
            "Examples per pick",
            "On average, how many training examples each set is tried on in the race."),
        "batch": Setting(
            "Examples per race turn",
            "How many examples a set is tried on each time the race picks it."),
        "layouts": Setting(
            "Other layouts",
            "How many other ways of writing the examples (field names such as Q and A "
            "instead of Input and Output, separators, spacing) are tried with the best "
            "examples found. 0 keeps your template's layout."),
        "orders": Setting(
            "Other orders",
            "How many other orders of the best examples found are tried. 0 shows them in "
            "the order they were picked."),
    }
    # Sets of 4 to 16 examples at every preset: at `quick`, sets of 4, 10 and 16 in place of
    # 3, 5 and 8 took the 21 benchmark tasks from +6.8 to +9.4 points over the start (10
    # tasks above it, none below) for 2% fewer calls (docs/benchmarks.md, "Larger example
    # sets at quick"). `standard` was given the same sizes without a run of its own.
    presets: ClassVar[dict[str, dict]] = {
        "quick": {"k": 4, "max_k": 16, "random_sets": 6, "bootstrapped_sets": 2,
                  "bandit": "successive-halving", "budget_per_set": 32, "batch": 4,
                  "layouts": 4, "orders": 4},
        "standard": {"k": 4, "max_k": 16, "random_sets": 12, "bootstrapped_sets": 4,
                     "bandit": "ucb", "budget_per_set": 16, "batch": 4, "layouts": 6,
                     "orders": 6},
        # DSPy's BootstrapFewShotWithRandomSearch tries 16 sets of 4 bootstrapped and up to
        # 16 labelled demonstrations. This preset is the proposed default; 8 other orders
        # lifted it on two tasks and lowered none, for 26% more calls (docs/benchmarks.md,
        # "The default with and without orders on one machine").
        "thorough": {"k": 4, "max_k": 16, "random_sets": 8, "bootstrapped_sets": 8,
                     "bandit": "successive-rejects", "budget_per_set": 32, "batch": 4,
                     "layouts": 12, "orders": 8},
    }

    def story(self, project, candidate, known) -> list[Section]:
        if candidate.operation == "layout":
            return [Section("Its layout", f"Each example written as: {candidate.origin}")]
        if candidate.operation == "order":
            return [Section("Its order", candidate.origin)]
        origin = {"random": "A random pick of training examples.",
                  "bootstrapped": "Training examples the model already answered right."
                  }.get(candidate.origin, candidate.origin)
        return [Section("Where it came from", origin)] if origin else []

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        train = max(0, sizes.train - DEFAULT_DEMOS)
        arms = 1 + params["random_sets"] + params["bootstrapped_sets"]
        tried = min(train, 2 * max(set_sizes(params, train)) * params["bootstrapped_sets"])
        rows = max(0, train - params["k"])
        carry_check = 2 * min(train, CARRY_CHECK_ROWS) if sizes.follows else 0
        return (carry_check + tried + race_calls(arms, params, rows)
                + race_calls(1 + params.get("layouts", 0), params, rows)
                + race_calls(1 + params.get("orders", 0), params, rows))

    def optimize(self, ctx: RunContext, params: dict) -> None:
        k = params["k"]
        bandits.check(params["bandit"])
        if not ctx.template.shows_demos:
            ctx.log("The template has no {demos} slot, so the model never sees "
                    "demonstrations; there is nothing to search.")
            return
        if len(ctx.train) <= k:
            ctx.log(f"Demonstration search needs more than {k} training examples.")
            return
        base = current_best(ctx)

        layout = own_layout(ctx, base) if params.get("layouts") else None
        steps = 2 + bool(layout) + bool(params.get("orders"))
        ctx.begin_step(1, steps, "Finding examples the model already answers right")
        pool = drawable(ctx, base)
        sizes = set_sizes(params, len(pool))
        sets = [("random", ids)
                for ids in random_sets(ctx, pool, sizes, params["random_sets"])]
        sets += [("bootstrapped", ids)
                 for ids in bootstrapped_sets(ctx, base, pool, sizes,
                                              params["bootstrapped_sets"])]
        arms = [base]
        seen = {frozenset(base.demo_ids)}
        for origin, ids in sets:
            if frozenset(ids) not in seen:
                seen.add(frozenset(ids))
                arms.append(ctx.add_candidate(base.instruction, operation="demo", demo_ids=ids,
                                              parents=[base], origin=origin, clean=False))

        ctx.begin_step(2, steps, f"Racing {len(arms)} demonstration sets ({params['bandit']})")
        order = list(ctx.train)
        ctx.rng("demos-race").shuffle(order)
        race(ctx, arms, order, params)
        if layout and ctx.finalists:
            try_layouts(ctx, layout, params, steps)
        if params.get("orders") and ctx.finalists:
            try_orders(ctx, params, steps)


def own_layout(ctx: RunContext, base: Candidate) -> layouts.Layout | None:
    """The layout `base` writes its examples in, or None (with the reason in the log) when
    there is no layout to vary."""
    if ctx.evaluator.scoring.prompt_format == CHAT:
        ctx.log("A chat model's own template lays out its prompt, so other layouts of the "
                "examples are not tried.")
        return None
    found = layouts.Layout.of(own_template(base, ctx.evaluator.scoring))
    if found is None:
        ctx.log("The template does not end with the example to answer written the way its "
                "examples are, so other layouts of the examples are not tried.")
    return found


def try_layouts(ctx: RunContext, layout: layouts.Layout, params: dict, steps: int) -> None:
    """Race the demonstration race's winner in other layouts; the two best of this race
    join the finalists ahead of the other demonstration sets."""
    best = ctx.finalists[0]
    template = own_template(best, ctx.evaluator.scoring)
    drawn = layouts.draw(ctx.rng("layouts"), params["layouts"], layout)
    ctx.begin_step(3, steps, f"Trying the best examples in {len(drawn)} other layouts")
    arms = [best]
    for other in drawn:
        meta = {**best.meta, **other.recorded(template)}
        arms.append(ctx.add_candidate(best.instruction, operation="layout",
                                      demo_ids=best.demo_ids, parents=[best],
                                      origin=other.describe(), meta=meta, clean=False))
    race_beside(ctx, arms, "layouts-race", params)


def try_orders(ctx: RunContext, params: dict, steps: int) -> None:
    """Race the best so far with its examples in other orders, drawn at random without
    repeats (`orders` of them, or as many as there are); the two best of this race join
    the finalists ahead of the others."""
    best = ctx.finalists[0]
    shown = [text for text, _ in best.demos]  # in the order of `best.demo_ids`
    drawn = other_orders(ctx.rng("orders"), len(shown), params["orders"])
    ctx.begin_step(steps, steps, f"Trying the best examples in {len(drawn)} other orders")
    if not drawn:
        ctx.log("The best prompt shows fewer than two examples, so there is no other "
                "order to try.")
        return
    arms = [best]
    for positions in drawn:
        listed = "; ".join(f'"{clip(shown[i], 40)}"' for i in positions)
        arms.append(ctx.add_candidate(
            best.instruction, operation="order", parents=[best],
            demo_ids=[best.demo_ids[i] for i in positions], meta=best.meta or None,
            clean=False,
            origin=f"The same examples shown in this order: {listed}."))
    race_beside(ctx, arms, "orders-race", params)


def other_orders(rng: random.Random, count: int, wanted: int) -> list[tuple[int, ...]]:
    """Up to `wanted` distinct orders of `count` positions, none the one shown."""
    shown = tuple(range(count))
    possible = math.factorial(count) - 1
    drawn: list[tuple[int, ...]] = []
    while len(drawn) < min(wanted, possible):
        positions = tuple(rng.sample(shown, count))
        if positions != shown and positions not in drawn:
            drawn.append(positions)
    return drawn


def race_beside(ctx: RunContext, arms: list[Candidate], key: str, params: dict) -> None:
    """Race `arms` (the best so far and its variants) on train in an order of their own;
    the race's two best go to the finalists ahead of those already there."""
    before = ctx.finalists
    order = list(ctx.train)
    ctx.rng(key).shuffle(order)
    race(ctx, arms, order, params)
    ranked = [*ctx.finalists[:FINALISTS // 2], *before]
    ctx.finalists = list({c.id: c for c in ranked}.values())[:FINALISTS]


def race_calls(arms: int, params: dict, rows: int) -> int:
    """About how many answers racing `arms` candidates takes on `rows` training rows."""
    pulls = params["budget_per_set"] * arms  # all kept still share it (`bandits.select`)
    if arms <= FINALISTS:
        return min(pulls, arms * rows)
    if params["bandit"] in ("ucb", "ucb-e"):
        pulls = max(pulls, arms * params["batch"]) + params["batch"]
    elif params["bandit"] == "successive-rejects":
        pulls += arms * params["batch"]  # phases are rounded up to whole batches
    return min(pulls, arms * rows)


CARRY_CHECK_ROWS = 32
"""The most training rows an earlier method's best instruction is checked on (`carried`)."""


def current_best(ctx: RunContext) -> Candidate:
    """The instruction to keep: the best among an earlier method's finalists by the score it
    ranked them on (train, or dev for ProTeGi's beam), if it holds up on fresh rows
    (`carried`); or, if the method named none, the best by train score of everything this
    run has scored; else the start. A tie goes to the earlier candidate."""
    if ctx.finalists:
        return carried(ctx, max(ctx.finalists, key=lambda c: (ctx.search_score(c), -c.id)))
    scored = [c for c in ctx.project.candidates(ctx.run.id)
              if ctx.scores.get(c.id) and ctx.scores[c.id].get("train") is not None]
    return max(scored, key=lambda c: (ctx.train_score(c), -c.id), default=ctx.start)


def carried(ctx: RunContext, best: Candidate) -> Candidate:
    """`best`, an earlier method's pick, if its instruction beats the one that method
    started from (`ctx.base`) on training rows the run has not yet answered; else that one.

    A written instruction can come first by luck on the few rows it was ranked on: after APE
    on number to words, "What is the value of 4303?" was carried, and every set of examples
    raced for it failed the final check, where the same search for the user's instruction
    passed. The check is paired (the same rows for both) and a tie keeps the instruction
    started from. With fewer than `MIN_CONFIRM_ROWS` fresh rows (a small training split the
    method used up) `best` is carried unchecked, as before the check existed. Rows shown to
    the optimizer model as examples to write from are not tracked, only those answered."""
    base = ctx.base
    if best.instruction == base.instruction:
        return best
    fresh = [x for x in scorable(best, ctx.train) if x.id not in ctx.answered]
    if len(fresh) < MIN_CONFIRM_ROWS:
        ctx.log(f"Too few training rows are left that the run has not answered "
                f"({len(fresh)}; a check needs {MIN_CONFIRM_ROWS}), so the best instruction "
                f"found, \"{best.instruction}\", is kept for the examples search without "
                "a check.")
        return best
    rows = ctx.sample(fresh, CARRY_CHECK_ROWS, "demos-carry")
    found, started = ctx.score(best, rows), ctx.score(base, rows)
    scores = f"{found:.2f} against {started:.2f} on {len(rows)} training rows not used before"
    if found > started:
        ctx.log(f"The best instruction found, \"{best.instruction}\", beats "
                f"\"{base.instruction}\" on fresh rows ({scores}): examples are searched "
                "for it.")
        return best
    ctx.log(f"The best instruction found, \"{best.instruction}\", does not beat "
            f"\"{base.instruction}\" on fresh rows ({scores}): examples are searched for "
            "the instruction started from instead.")
    return base


def set_sizes(params: dict, available: int) -> list[int]:
    """The sizes the sets take in turn: `k`, `max_k` and, when they are far apart, one
    halfway between; none above half the `available` training examples (but never below
    `k`), so that a set is raced on at least as many as it shows. Without the cap, sets of
    16 drawn from 20 training rows were scored on the 4 left over, and their luck there
    decided the race."""
    low, high = params["k"], max(params["k"], params.get("max_k", params["k"]))
    cap = max(low, available // 2)
    return sorted({min(size, cap) for size in (low, (low + high) // 2, high)})


def drawable(ctx: RunContext, base: Candidate) -> list[Example]:
    """The training examples a new set is drawn from: all but those `base` shows."""
    return [x for x in ctx.train if x.id not in base.demo_ids]


def random_sets(ctx: RunContext, pool: Sequence[Example], sizes: Sequence[int], count: int
                ) -> list[tuple[int, ...]]:
    ids = [x.id for x in pool]
    return [tuple(ctx.rng("demos-random", index).sample(ids, min(size, len(ids))))
            for index, size in zip(range(count), cycle(sizes), strict=False)]


def bootstrapped_sets(ctx: RunContext, base: Candidate, pool: Sequence[Example],
                      sizes: Sequence[int], count: int) -> list[tuple[int, ...]]:
    """Sets drawn from examples of `pool` the base prompt answers right, among twice as many
    tried as the largest set needs per set. Sets too large for the right answers found are
    smaller."""
    if count == 0:
        return []
    tried = ctx.sample(pool, 2 * max(sizes) * count, "demos-bootstrap")
    right = [e.example_id for e in ctx.evaluate(base, tried) if e.score >= 1.0]
    if len(right) < min(sizes):
        ctx.log(f"The model answered only {len(right)} of {len(tried)} examples right; "
                f"too few to bootstrap sets of {min(sizes)}.")
        return []
    return [tuple(ctx.rng("demos-bootstrapped", index).sample(right, min(size, len(right))))
            for index, size in zip(range(count), cycle(sizes), strict=False)]


def race(ctx: RunContext, arms: list[Candidate], order: Sequence[Example], params: dict
         ) -> None:
    """Sets `ctx.finalists` to the bandit's best few arms, best first. (If the budget runs
    out mid-race, the runner takes the best train scores recorded so far.)"""
    # `ctx.score` records (and announces) each arm's train score as it grows.
    pull = bandits.OrderedPulls([scorable(arm, order) for arm in arms],
                                lambda arm, batch: ctx.score(arms[arm], batch))
    best = bandits.select(params["bandit"], len(arms), pull, k=FINALISTS,
                          budget=params["budget_per_set"] * len(arms), batch=params["batch"])
    ctx.finalists = [arms[index] for index in best]
