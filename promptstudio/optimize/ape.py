"""APE, the Automatic Prompt Engineer: Zhou et al., "Large Language Models Are Human-Level
Prompt Engineers" (2022), after its official code (keirp/automatic_prompt_engineer).

The loop, in `APE.optimize`:

1. **Propose.** For each of a few random subsamples of train, show the optimizer model the
   examples and let it say which instruction produced them, many guesses in one request:
   *forward* (the meta-prompt ends where the instruction begins), *reverse* (the
   instruction is a blank inside the text) or the user's own meta-prompt.
2. **Select.** Score the guesses cheaply: a multi-stage funnel (everyone on a few examples,
   the better part on more, and so on) or, as the official code offers, a UCB bandit.
3. **Resample** (iterative APE). Ask for rewordings of the best instruction that keep its
   meaning, and keep whichever scores best; repeat.

Where we depart from the paper:

- Reverse generation needed a fill-in-the-middle model that no longer exists. A causal
  model gets the meta-prompt up to the blank and stops at the words that follow it.
- Candidates are scored under the project's own template with the starting prompt's
  demonstrations (a small base model answers almost nothing without them), not with APE's
  zero-shot evaluation template.
- Only the first line of a guess is kept, and its first letter is capitalized.
- `stage_sizes` are cumulative: by the end of stage i a survivor has been scored once on
  each of the first `stage_sizes[i]` examples of one shuffled train order. That is the
  paper's running mean over fresh subsets, with the subsets fixed so that a replay (resume)
  draws the same ones.
- The few best become finalists that the runner compares on dev; the paper picks on train.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import ClassVar

from promptstudio.optimize import bandits, meta_prompts, writing
from promptstudio.optimize.budget import BudgetExhausted
from promptstudio.optimize.context import MAX_INSTRUCTION_CHARS, RunContext
from promptstudio.optimize.method import (
    DEFAULT_DEMOS,
    FINALISTS,
    Method,
    Operation,
    Setting,
    Sizes,
    register,
)
from promptstudio.parsing import clean_instruction
from promptstudio.store.records import Candidate, Example

SAMPLING = {"temperature": 0.9, "top_p": 0.9, "max_tokens": 50, "first_line_only": True}
"""How the official code samples guesses (and we, rewordings); only the first line of a
reply is kept, so generation stops there."""
BLANK = "{blank}"
MODES = ("forward", "reverse", "both")

Measure = Callable[[Candidate, Sequence[Example]], float]


@register
class APE(Method):
    name = "ape"
    title = "APE: instructions induced from examples"
    summary = (
        "Shows the model a few of your examples and asks it, many times over, which "
        "instruction would produce those answers; then tries the guesses on your examples "
        "and keeps the best, with a last round of rewordings. Choose it when you have "
        "examples but no good instruction yet. Cost: mostly short test answers, a few "
        "hundred model calls on the quick setting."
    )
    paper: ClassVar[dict] = {
        "mode": "forward",
        "template": "",
        "subsamples": 5,
        "demos_per_subsample": 5,
        "per_subsample": 50,
        "score_by": "accuracy",  # the instruction-induction runs; the code's default is logprob
        "selection": "stages",
        "stage_sizes": [10, 20, 50],  # the paper gives no sizes; 50 = the code's samples/prompt
        "keep_fraction": 0.5,
        "ucb_budget": 12500,  # official bandit: 5 rounds x 50 prompts x 50 samples
        "ucb_batch": 50,
        "mc_rounds": 0,  # iterative APE is an optional extra in the paper, without sizes;
        "mc_per_round": 10,  # 10 rewordings a round is our choice
    }
    order = 1
    meta_prompts = ("ape_forward", "ape_reverse", "paraphrase", "ape_forward_base",
                    "paraphrase_base")
    operations: ClassVar[dict[str, Operation]] = {
        "forward": Operation(
            "Guessed from examples (APE)",
            "guessed from examples",
            "APE showed the optimizer model a few training examples and asked which "
            "instruction would produce them."),
        "reverse": Operation(
            "Filled in from examples (APE)",
            "guessed from examples",
            "APE showed the optimizer model a few training examples and let it fill in "
            "the instruction that produced them."),
        "template": Operation(
            "Guessed with your meta-prompt (APE)",
            "guessed with your own guessing prompt",
            "APE asked the optimizer model for this instruction with your own "
            "meta-prompt."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "mode": Setting(
            "Guessing style",
            "How the model is asked to guess the instruction behind your examples. "
            "'forward' shows the examples and lets the model finish the sentence that names "
            "the instruction; 'reverse' leaves a blank for the instruction before the rest "
            "of the sentence; 'both' takes turns.", MODES),
        "template": Setting(
            "Own guessing prompt",
            "Your own text for asking the model to guess the instruction, with {demos} where "
            "the examples go and, if you like, {blank} where the instruction goes. Leave it "
            "empty to use the built-in one."),
        "subsamples": Setting(
            "Groups of examples",
            "How many different small groups of training examples the model is shown; each "
            "group gives its own guesses."),
        "demos_per_subsample": Setting(
            "Examples per group",
            "How many examples each group shows the model when it guesses the instruction."),
        "per_subsample": Setting(
            "Guesses per group",
            "How many instructions the model guesses from each group. Groups times guesses "
            "is how many instructions are tried."),
        "score_by": Setting(
            "Judge guesses by",
            "'accuracy' counts how often the model answers right under the instruction (the "
            "paper found this predicts the final score best); 'logprob' measures how likely "
            "the model finds the right answers, which needs a model that reports "
            "probabilities, such as the bundled one.", ("accuracy", "logprob")),
        "selection": Setting(
            "How to pick the best guesses",
            "'stages' tries every guess on a few examples, keeps the better part, tries those "
            "on more examples, and so on; 'ucb' runs a race that spends more examples on the "
            "guesses that look promising.", ("stages", "ucb")),
        "stage_sizes": Setting(
            "Examples per stage",
            "With 'stages': how many examples a guess has been tried on by the end of each "
            "stage, as growing numbers separated by commas, for example 4, 8, 16."),
        "keep_fraction": Setting(
            "Share kept per stage",
            "With 'stages': the share of guesses that go on to the next stage; 0.5 keeps the "
            "better half."),
        "ucb_budget": Setting(
            "Race length (answers)",
            "With 'ucb': how many answers to examples the race may spend in all."),
        "ucb_batch": Setting(
            "Examples per race turn",
            "With 'ucb': how many examples a guess is tried on each time the race picks it."),
        "mc_rounds": Setting(
            "Rewording rounds",
            "How many times the best instruction is reworded at the end, looking for a "
            "better phrasing with the same meaning. 0 skips this; gains level off after 3."),
        "mc_per_round": Setting(
            "Rewordings per round",
            "How many rewordings of the best instruction are tried in each rewording round."),
    }
    presets: ClassVar[dict[str, dict]] = {
        # Laptop cost: 8 guesses instead of 250, judged on up to 16 examples instead of 50.
        "quick": {**paper, "subsamples": 2, "per_subsample": 4, "stage_sizes": [4, 8, 16],
                  "ucb_budget": 96, "ucb_batch": 4, "mc_rounds": 1, "mc_per_round": 4},
        # 32 guesses; enough to see APE's spread of guesses without an evening's wait.
        "standard": {**paper, "subsamples": 4, "per_subsample": 8, "stage_sizes": [5, 10, 25],
                     "ucb_budget": 480, "ucb_batch": 5, "mc_rounds": 2, "mc_per_round": 6},
        # The paper's pool and samples, plus 3 rounds of rewording (gains level off there).
        "thorough": {**paper, "mc_rounds": 3},
    }

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        train = max(0, sizes.train - DEFAULT_DEMOS)  # the start's demos are never scored
        guesses = params["subsamples"] * params["per_subsample"]
        judged = min(params["stage_sizes"][-1], train)
        if params["selection"] == "ucb":
            pulls = max(params["ucb_budget"], guesses * params["ucb_batch"]) + params["ucb_batch"]
            scoring = (min(pulls, guesses * train) if guesses > FINALISTS else 0)
            scoring += min(guesses, FINALISTS) * judged
        else:
            scoring, done, survivors = 0, 0, guesses
            for size in params["stage_sizes"]:
                scoring += survivors * max(0, min(size, train) - done)
                done = max(done, min(size, train))
                survivors = max(1, math.ceil(survivors * params["keep_fraction"]))
        rewordings = params["mc_rounds"] * params["mc_per_round"] * (1 + judged)
        return guesses + scoring + rewordings

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        return (params["subsamples"] * params["per_subsample"]
                + params["mc_rounds"] * params["mc_per_round"])

    def optimize(self, ctx: RunContext, params: dict) -> None:
        if not ctx.train:
            ctx.log("APE needs training examples to induce instructions from; there are none.")
            return
        measure = scorer(ctx, params["score_by"])
        if params["selection"] not in ("stages", "ucb"):
            raise ValueError(f"Unknown APE selection {params['selection']!r}; "
                             "choose stages or ucb.")
        steps = 1 + (len(params["stage_sizes"]) if params["selection"] == "stages" else 2)
        steps += params["mc_rounds"]
        proposals = Proposals(ctx)

        ctx.begin_step(1, steps, "Guessing instructions from examples")
        pool = propose(ctx, params, proposals)
        ctx.log(f"{len(pool)} distinct instructions proposed; {proposals.duplicates} repeats "
                f"and {ctx.rejected} unusable replies set aside.")
        if not pool:
            return

        order = shuffled(ctx, ctx.train, "ape-order")
        judged_on = order[:params["stage_sizes"][-1]]
        if params["selection"] == "stages":
            ranked, scores = funnel(ctx, pool, order, params, measure, steps)
        else:
            ctx.begin_step(2, steps, f"Racing {len(pool)} instructions (UCB)")
            ranked = race(ctx, pool, params, measure)
            ctx.begin_step(3, steps, f"Scoring the finalists on {len(judged_on)} examples")
            ctx.finalists = ranked
            scores = {c.id: measure(c, judged_on) for c in ranked}
            ranked = by_score(ranked, scores)

        ctx.finalists = ranked[:FINALISTS]
        for round_ in range(params["mc_rounds"]):
            best = ranked[0]
            ctx.begin_step(steps - params["mc_rounds"] + round_ + 1, steps,
                           f"Rewording the best instruction (round {round_ + 1})")
            replies = reword(ctx, best, n=params["mc_per_round"], key=("paraphrase", round_))
            variants = [c for reply in replies
                        if (c := proposals.add(reply, "paraphrase", [best])) is not None]
            scores.update({c.id: measure(c, judged_on) for c in variants})
            ranked = by_score([*ranked, *variants], scores)
            ctx.finalists = ranked[:FINALISTS]


class Proposals:
    """Turns the optimizer's replies into candidates, one per distinct instruction."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.seen = {normalized(ctx.base.instruction)}
        self.duplicates = 0

    def add(self, reply: str, operation: str, parents: Sequence[Candidate] = (),
            stops: Sequence[str] = ()) -> Candidate | None:
        """The new candidate, or None for an unusable reply (counted as rejected by the
        context) or one that only repeats an instruction seen before."""
        text = first_line(cut_at(reply, stops))
        cleaned, _ = clean_instruction(text, MAX_INSTRUCTION_CHARS)
        if cleaned is None:
            self.ctx.add_candidate(text, operation=operation, parents=parents)
            return None
        cleaned = cleaned[0].upper() + cleaned[1:]
        if normalized(cleaned) in self.seen:
            self.duplicates += 1
            return None
        self.seen.add(normalized(cleaned))
        return self.ctx.add_candidate(cleaned, operation=operation, parents=parents)


def propose(ctx: RunContext, params: dict, proposals: Proposals) -> list[Candidate]:
    """Guesses from every subsample, sampled in one request per subsample."""
    pool: list[Candidate] = []
    for index in range(params["subsamples"]):
        demos = ctx.sample(ctx.train, params["demos_per_subsample"], "ape-subsample", index)
        operation, prompt, stops = generation_prompt(ctx, params, index, demos)
        replies = ctx.ask(prompt, n=params["per_subsample"], stop=stops,
                          key=("propose", index), **SAMPLING)
        pool += [c for reply in replies
                 if (c := proposals.add(reply, operation, stops=stops)) is not None]
    return pool


def reword(ctx: RunContext, instruction: Candidate, *, n: int, key: object) -> list[str]:
    """n rewordings of an instruction (iterative APE's resampling)."""
    if ctx.writer == writing.BASE:
        return writing.continue_lines(ctx, "paraphrase_base", n=n, key=key,
                                      instruction=instruction.instruction)
    paraphrase = meta_prompts.load("paraphrase", ctx.project)
    return ctx.ask(meta_prompts.fill(paraphrase, instruction=instruction.instruction).rstrip(),
                   n=n, key=key, **SAMPLING)


def generation_prompt(ctx: RunContext, params: dict, index: int, demos: Sequence[Example]
                      ) -> tuple[str, str, tuple[str, ...]]:
    """(operation, prompt, stop sequences) for one subsample.

    A meta-prompt with a blank is cut at the blank, and the words after the blank become
    the stop sequences: a causal model writes the blank's content and then, as the text
    goes on, those words. The demonstrations must come before the blank for the model to
    see them, so if a template puts them after it, they are moved to the front.
    """
    mode = params["mode"]
    if mode not in MODES:
        raise ValueError(f"Unknown APE mode {mode!r}; choose one of {', '.join(MODES)}.")
    if params["template"]:
        template, operation = params["template"], "template"
    elif mode == "reverse" or (mode == "both" and index % 2 == 1):
        template, operation = meta_prompts.load("ape_reverse", ctx.project), "reverse"
    elif ctx.writer == writing.BASE:  # worked cases, then the examples, then "Instruction:"
        template, operation = meta_prompts.load("ape_forward_base", ctx.project), "forward"
    else:
        template, operation = meta_prompts.load("ape_forward", ctx.project), "forward"
    if "{demos}" not in template:
        raise ValueError("An APE meta-prompt must show the examples: put {demos} in it.")
    demos_text = ctx.demos_text(demos).rstrip() + "\n"
    before, has_blank, after = template.partition(BLANK)
    if has_blank and "{demos}" not in before:
        before = "{demos}\n" + before
    return operation, meta_prompts.fill(before, demos=demos_text).rstrip(), stops_after(after)


def stops_after(text: str) -> tuple[str, ...]:
    """Where a fill-in ends: at the first two words that follow the blank, and at a closing
    quote or bracket right after it."""
    words = text.split()
    if not words:
        return ()
    stops = {text[:len(text) - len(text.lstrip())] + " ".join(words[:2])}
    if not words[0][0].isalnum():
        stops.add(words[0][0])
    return tuple(sorted(stops))


def funnel(ctx: RunContext, pool: list[Candidate], order: Sequence[Example], params: dict,
           measure: Measure, steps: int) -> tuple[list[Candidate], dict[int, float]]:
    """Multi-stage evaluation: everyone on a few examples, the best fraction on more. Each
    stage scores its survivors only on the examples they have not seen yet, and updates
    their running means."""
    sizes = params["stage_sizes"]
    if not all(0 < a < b for a, b in zip([0.5, *sizes], sizes)):
        raise ValueError(f"APE stage_sizes must be positive and growing, not {sizes}.")
    totals: dict[int, float] = {}
    scores: dict[int, float] = {}
    seen = 0
    for stage, size in enumerate(sizes):
        fresh = order[seen:size]
        ctx.begin_step(2 + stage, steps,
                       f"Scoring {len(pool)} instructions on {seen + len(fresh)} examples")
        for candidate in pool:
            if fresh:
                totals[candidate.id] = (totals.get(candidate.id, 0.0)
                                        + measure(candidate, fresh) * len(fresh))
            scores[candidate.id] = totals[candidate.id] / (seen + len(fresh))
        seen += len(fresh)
        pool = by_score(pool, scores)
        ctx.finalists = pool[:FINALISTS]
        if stage < len(sizes) - 1:
            pool = pool[:max(1, math.ceil(len(pool) * params["keep_fraction"]))]
    return pool, scores


def race(ctx: RunContext, pool: list[Candidate], params: dict, measure: Measure
         ) -> list[Candidate]:
    """The official code's alternative: UCB over the guesses, each pull scoring one guess on
    its next few examples of its own fixed order. If the budget runs out mid-race, the
    leaders so far become the finalists."""
    orders = [shuffled(ctx, ctx.train, "ape-ucb", arm) for arm in range(len(pool))]
    pull = bandits.OrderedPulls(orders, lambda arm, batch: measure(pool[arm], batch))
    try:
        best = bandits.select("ucb", len(pool), pull, budget=params["ucb_budget"],
                              k=FINALISTS, batch=params["ucb_batch"])
    except BudgetExhausted:
        ctx.finalists = leaders(pool, pull.rewards)
        raise
    return [pool[arm] for arm in best]


def leaders(arms: Sequence[Candidate], rewards: Sequence[Sequence[float]]) -> list[Candidate]:
    """The arms with the best mean reward so far, among those pulled at all."""
    pulled = [i for i, r in enumerate(rewards) if r]
    pulled.sort(key=lambda i: (-sum(rewards[i]) / len(rewards[i]), i))
    return [arms[i] for i in pulled[:FINALISTS]]


def scorer(ctx: RunContext, score_by: str) -> Measure:
    """Mean execution accuracy, or mean log-probability of the reference answers."""
    if score_by == "accuracy":
        return ctx.score
    if score_by == "logprob":
        return ctx.logprob_score
    raise ValueError(f"Unknown APE score_by {score_by!r}; choose accuracy or logprob.")


def by_score(pool: Sequence[Candidate], scores: dict[int, float]) -> list[Candidate]:
    """Best first; a tie goes to the older candidate, so a newcomer must do strictly better."""
    return sorted(pool, key=lambda c: (-scores[c.id], c.id))


def shuffled(ctx: RunContext, examples: Sequence[Example], *keys: object) -> list[Example]:
    order = list(examples)
    ctx.rng(*keys).shuffle(order)
    return order


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def cut_at(text: str, stops: Sequence[str]) -> str:
    """The text up to the first stop sequence, for backends that ignore stop sequences."""
    ends = [text.find(s) for s in stops if s.strip() and s in text]
    return text[:min(ends)] if ends else text


def normalized(text: str) -> str:
    """The words of an instruction, lower-cased, without punctuation: 'the same' for dedup."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
