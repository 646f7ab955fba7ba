"""ProTeGi / APO: Pryzant et al., "Automatic Prompt Optimization with 'Gradient Descent'
and Beam Search" (EMNLP 2023), after its official code (microsoft/LMOps,
prompt_optimization).

A beam search over instructions. In each round, every prompt in the beam answers a
minibatch of train examples. From groups of the examples it gets wrong, the optimizer model
says why the prompt fails (a textual "gradient"), then rewrites the prompt to fix each
reason ("gradient-edit"), and every rewrite is paraphrased a few times to search around it
("paraphrase"). The successors join their parents in a pool, and a best-arm bandit picks
the next beam by scoring the pool on small batches of examples, spending more of them on
the promising prompts. Only the instruction changes; the demonstrations stay as they are.

Where PromptStudio departs from the paper and its code:
- Selection scores on dev, not on train as the official code does (train feeds the
  optimizer, dev selects, test only reports). A project without dev rows selects on train.
- Each beam member draws its own minibatch; the official code draws one per round.
- An edit reply yields at most `edits_per_gradient` prompts (the official code keeps every
  tagged piece); tags are read leniently, since small models drop them.
- Paraphrases are made of the edited prompts, as the paper describes; the official code
  also paraphrases the parent.
- UCB puts the total pull count in its log term (see `bandits`). All arms of one round
  are pulled along the same shuffled order of the examples, so arms that have been pulled
  equally often were judged on the same examples, as the official code's shared samples are.
- Successors beyond the cap are sampled at random, the official default; its option to keep
  those that do best on the errors is not offered.
- With a base optimizer model (`writing.BASE`), each reason, edit and paraphrase is one
  sampled line that continues worked cases, and the edit sees the reason but not the
  errors again: a small model loses the thread in a long context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from promptstudio.optimize import bandits, writing
from promptstudio.optimize.bandits import RACE_TEXT as _RACE
from promptstudio.optimize.context import MAX_INSTRUCTION_CHARS, RunContext
from promptstudio.optimize.meta_prompts import fill, load
from promptstudio.optimize.method import Method, Operation, Section, Setting, Sizes, register
from promptstudio.parsing import tagged
from promptstudio.store.records import Candidate, Evaluation, Example

REASONS_PER_GROUP = 1  # the official code's gradients_per_error
MAX_REASON_CHARS = 400
# Enough for the longest text we would keep (about 4 characters a token): more is rambling.
REASON_TOKENS = MAX_REASON_CHARS // 4
INSTRUCTION_TOKENS = MAX_INSTRUCTION_CHARS // 4
OPTIMIZER_TEMPERATURE = 1.0
_TAGS = re.compile(r"</?(START|END)>", re.IGNORECASE)

PAPER = {
    "rounds": 6, "beam": 4, "minibatch": 64, "gradients": 4, "errors_per_gradient": 4,
    "edits_per_gradient": 1, "paraphrases": 2, "max_expansion": 8, "bandit": "ucb",
    # 8 bandit rounds x 8 prompts x 32 examples, in the official code.
    "selection_budget": 2048, "pull_size": 32,
}


@register
class ProTeGi(Method):
    name = "protegi"
    title = "ProTeGi (textual gradients)"
    summary = (
        "Shows the model the examples your prompt gets wrong, asks it why, and rewrites the "
        "prompt to fix each reason; each round keeps the few rewrites that do best on your "
        "dev examples. Choose it when you already have a reasonable prompt that makes "
        "recurring mistakes. It makes a few optimizer calls per round and prompt plus many "
        "short evaluations: Quick takes minutes on the bundled model, Thorough (the paper's "
        "settings) hours.")
    needs_capable_writer = True
    asks_the_writer = "find the reasons for the prompt's mistakes and rewrite it to fix them"
    paper: ClassVar[dict] = PAPER
    order = 3
    meta_prompts = ("protegi_gradient", "protegi_edit", "paraphrase", "protegi_gradient_base",
                    "protegi_edit_base", "paraphrase_base")
    operations: ClassVar[dict[str, Operation]] = {
        "gradient-edit": Operation(
            "Rewritten to fix mistakes (ProTeGi)",
            "rewritten to fix mistakes",
            "ProTeGi showed the optimizer model answers that an earlier prompt got wrong, "
            "asked it why, and had it rewrite the prompt to fix that."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "rounds": Setting(
            "Rounds",
            "How many rounds of finding mistakes and rewriting the prompt. The paper saw the "
            "gains peak around round 3; more rounds can fit the training examples too "
            "closely."),
        "beam": Setting(
            "Prompts kept per round",
            "How many of the best prompts go on to the next round (the 'beam')."),
        "minibatch": Setting(
            "Examples checked for mistakes",
            "How many training examples each kept prompt answers in a round, to find the "
            "mistakes it makes."),
        "gradients": Setting(
            "Groups of mistakes",
            "How many groups of mistakes the model is asked to explain, per prompt and "
            "round. Each explanation (the paper's 'textual gradient') leads to a rewrite."),
        "errors_per_gradient": Setting(
            "Mistakes per group",
            "How many wrong answers the model sees together when it explains what the prompt "
            "gets wrong."),
        "edits_per_gradient": Setting(
            "Rewrites per explanation",
            "How many rewritten prompts are kept from each explanation of the mistakes."),
        "paraphrases": Setting(
            "Rewordings per rewrite",
            "How many times each rewritten prompt is reworded, to search around it."),
        "max_expansion": Setting(
            "Most new prompts per prompt",
            "The most new prompts one prompt may produce in a round; when there are more, a "
            "random few are kept."),
        "bandit": Setting(
            "How to race the new prompts",
            "How the new prompts compete on dev examples for a place in the next round: "
            + _RACE, bandits.STRATEGIES),
        "selection_budget": Setting(
            "Race length (answers)",
            "How many answers to examples the race may spend in each round to choose the "
            "prompts that go on."),
        "pull_size": Setting(
            "Examples per race turn",
            "How many examples a prompt is tried on each time the race picks it."),
    }
    presets: ClassVar[dict[str, dict]] = {
        # Small enough for a 270M model with ~100 train and ~20 dev rows: few rounds, a
        # narrow beam and minibatch, one paraphrase, and a selection budget the dev split
        # can feed (each arm has at most as many pulls as there are dev rows).
        "quick": {**PAPER, "rounds": 2, "beam": 2, "minibatch": 16, "gradients": 2,
                  "errors_per_gradient": 3, "paraphrases": 1, "max_expansion": 4,
                  "selection_budget": 80, "pull_size": 4},
        # The paper finds gains peak around round 3.
        "standard": {**PAPER, "rounds": 3, "beam": 3, "minibatch": 32, "gradients": 3,
                     "paraphrases": 1, "max_expansion": 6, "selection_budget": 256,
                     "pull_size": 8},
        "thorough": dict(PAPER),
    }

    def story(self, project, candidate, known) -> list[Section]:
        sections = []
        if candidate.origin:
            sections.append(Section("The problem the optimizer model found", candidate.origin))
        wrong = project.examples(ids=candidate.meta.get("errors", ()))
        if wrong:
            sections.append(Section("Answers it was shown that were wrong", "",
                                    tuple(f"{e.input} → {e.output}" for e in wrong)))
        return sections

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """An upper estimate: every member makes mistakes and every reply is usable."""
        return sum(_projection(params, sizes))

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        return _projection(params, sizes)[1]

    def optimize(self, ctx: RunContext, params: dict) -> None:
        bandits.check(params["bandit"])
        selection_rows, split = (ctx.dev, "dev") if ctx.dev else (ctx.train, "train")
        beam = [ctx.base]
        ctx.finalists = list(beam)
        rounds = params["rounds"]
        for round_number in range(1, rounds + 1):
            ctx.begin_step(round_number, rounds, f"Round {round_number} of {rounds}: "
                           f"expanding {len(beam)} prompt(s)")
            pool = {c.id: c for c in beam}
            for member_index, member in enumerate(beam):
                for successor in self.expand(ctx, params, member, member_index):
                    pool.setdefault(successor.id, successor)
            beam = self.select(ctx, params, list(pool.values()), selection_rows, split)
            ctx.finalists = list(beam)
            ctx.log(f"Round {round_number}: {len(pool)} prompts in the pool; keeping "
                    + ", ".join(f"#{c.id}" for c in beam) + ".")

    def expand(self, ctx: RunContext, params: dict, member: Candidate,
               member_index: int) -> list[Candidate]:
        """New prompts from one beam member: its errors' reasons, edits and paraphrases."""
        minibatch = ctx.sample(ctx.train, params["minibatch"], "minibatch", ctx.step,
                               member_index)
        errors = ctx.errors(member, minibatch)
        if not errors:
            ctx.log(f"Prompt #{member.id} gets all {len(minibatch)} training examples of its "
                    "minibatch right, so there is nothing to learn from; no gradients.")
            return []
        edits: dict[int, Candidate] = {}
        for group_index in range(params["gradients"]):
            group = ctx.rng("errors", ctx.step, member_index, group_index).sample(
                errors, min(params["errors_per_gradient"], len(errors)))
            shown = describe_errors(group)
            for reason_index, reason in enumerate(self.reasons(
                    ctx, member, shown, key=("gradient", member_index, group_index))):
                for edit in self.edit(ctx, params, member, shown, reason, [x for x, _ in group],
                                      key=("edit", member_index, group_index, reason_index)):
                    edits.setdefault(edit.id, edit)
        edits.pop(member.id, None)
        successors = dict(edits)
        for edit_index, edit in enumerate(edits.values()):
            for paraphrase in self.paraphrase(ctx, params, edit,
                                              key=("paraphrase", member_index, edit_index)):
                successors.setdefault(paraphrase.id, paraphrase)
        successors.pop(member.id, None)
        found = list(successors.values())
        if len(found) > params["max_expansion"]:
            kept = ctx.rng("cap", ctx.step, member_index).sample(
                range(len(found)), params["max_expansion"])
            ctx.log(f"Prompt #{member.id} has {len(found)} successors; keeping a random "
                    f"{params['max_expansion']}.")
            found = [found[i] for i in sorted(kept)]
        return found

    def reasons(self, ctx: RunContext, member: Candidate, shown: Shown, *,
                key: tuple) -> list[str]:
        """The optimizer's reasons why `member` got these examples wrong."""
        if ctx.writer == writing.BASE:
            return [clip_reason(r) for r in writing.continue_lines(
                ctx, "protegi_gradient_base", n=REASONS_PER_GROUP, key=key,
                prompt=member.instruction, errors=shown.lines)]
        prompt = fill(load("protegi_gradient", ctx.project), prompt=member.instruction,
                      errors=shown.text, n=REASONS_PER_GROUP)
        reply = ctx.ask(prompt, temperature=OPTIMIZER_TEMPERATURE,
                        max_tokens=REASON_TOKENS * REASONS_PER_GROUP,
                        stop=("<END>",) if REASONS_PER_GROUP == 1 else (), key=key)[0]
        reasons = [clip_reason(_TAGS.sub(" ", piece)) for piece in tagged(reply)]
        return [r for r in dict.fromkeys(reasons) if any(ch.isalnum() for ch in r)
                ][:REASONS_PER_GROUP]

    def edit(self, ctx: RunContext, params: dict, member: Candidate, shown: Shown, reason: str,
             examples: Sequence[Example], *, key: tuple) -> list[Candidate]:
        """Rewrites of `member` meant to fix `reason`; an empty reply counts as a rejected
        candidate, so the run's tally shows how often the optimizer model failed."""
        count = params["edits_per_gradient"]
        if ctx.writer == writing.BASE:
            pieces = writing.continue_lines(ctx, "protegi_edit_base", n=count, key=key,
                                            temperature=OPTIMIZER_TEMPERATURE,
                                            prompt=member.instruction, gradient=reason)
        else:
            prompt = fill(load("protegi_edit", ctx.project), prompt=member.instruction,
                          errors=shown.text, gradient=reason, n=count)
            reply = ctx.ask(prompt, temperature=OPTIMIZER_TEMPERATURE,
                            max_tokens=INSTRUCTION_TOKENS * count,
                            stop=("<END>",) if count == 1 else (), key=key)[0]
            pieces = tagged(reply)[:count] or [reply]
        made = [ctx.add_candidate(piece, operation="gradient-edit", parents=[member],
                                  origin=reason, meta={"errors": [x.id for x in examples]})
                for piece in pieces]
        return [c for c in made if c is not None]

    def paraphrase(self, ctx: RunContext, params: dict, edit: Candidate, *,
                   key: tuple) -> list[Candidate]:
        """Monte-Carlo samples around `edit`: the same request in other words."""
        if params["paraphrases"] <= 0:
            return []
        # A paraphrase is about as long as its source; small models ramble to any limit.
        max_tokens = min(INSTRUCTION_TOKENS, len(edit.instruction) // 2 + 16)
        if ctx.writer == writing.BASE:
            replies = writing.continue_lines(
                ctx, "paraphrase_base", n=params["paraphrases"], key=key,
                temperature=OPTIMIZER_TEMPERATURE, max_tokens=max_tokens,
                instruction=edit.instruction)
        else:
            prompt = fill(load("paraphrase", ctx.project), instruction=edit.instruction)
            replies = ctx.ask(prompt, n=params["paraphrases"],
                              temperature=OPTIMIZER_TEMPERATURE, max_tokens=max_tokens, key=key)
        made = [ctx.add_candidate(reply, operation="paraphrase", parents=[edit],
                                  origin=edit.origin, meta={"paraphrase_of": edit.id})
                for reply in replies]
        return [c for c in made if c is not None]

    def select(self, ctx: RunContext, params: dict, pool: list[Candidate],
               rows: Sequence[Example], split: str) -> list[Candidate]:
        """The next beam: the best `beam` of the pool according to the bandit."""
        if len(pool) <= params["beam"]:
            return pool
        order = list(rows)
        ctx.rng("selection order", ctx.step).shuffle(order)
        pull = bandits.OrderedPulls([order] * len(pool),
                                    lambda arm, batch: ctx.score(pool[arm], batch, split))
        chosen = bandits.select(params["bandit"], len(pool), pull,
                                budget=params["selection_budget"], k=params["beam"],
                                batch=params["pull_size"])
        return [pool[i] for i in chosen]


def _projection(params: dict, sizes: Sizes) -> tuple[int, int]:
    """Task-model calls (minibatches and the bandit's pulls) and optimizer calls (gradients,
    edits, paraphrases) of a run where every member makes mistakes and every reply is
    usable."""
    minibatch = min(params["minibatch"], sizes.train)
    rows = sizes.dev or sizes.train
    edits = params["gradients"] * REASONS_PER_GROUP * params["edits_per_gradient"]
    # A capable model writes a reason's edits in one reply; a base model, one per sample.
    edit_calls = (edits if sizes.writer == writing.BASE
                  else params["gradients"] * REASONS_PER_GROUP)
    written = params["gradients"] + edit_calls + edits * params["paraphrases"]
    successors = min(params["max_expansion"], edits * (1 + params["paraphrases"]))
    task, optimizer, members = 0, 0, 1
    for _ in range(params["rounds"]):
        pool = members * (1 + successors)
        task += members * minibatch
        optimizer += members * written
        if pool > params["beam"]:
            first_pulls = pool * min(params["pull_size"], rows)
            task += min(pool * rows, max(params["selection_budget"], first_pulls))
        members = min(params["beam"], pool)
    return task, optimizer


@dataclass(frozen=True)
class Shown:
    """Wrong answers as the optimizer model sees them: in blocks for a capable model, one
    line each for a base model (`writing.BASE`), as its worked cases show them."""

    text: str
    lines: str


def describe_errors(errors: Sequence[tuple[Example, Evaluation]]) -> Shown:
    text = "\n\n".join(
        f"Example {number}\nInput: {example.input}\nCorrect answer: {example.output}\n"
        f"The model answered: {evaluation.answer or '(nothing)'}"
        for number, (example, evaluation) in enumerate(errors, start=1))
    line = writing.one_line
    lines = "\n".join(
        f"Input: {line(example.input)} | Correct answer: {line(example.output)} | "
        f"The model answered: {line(evaluation.answer) or '(nothing)'}"
        for example, evaluation in errors)
    return Shown(text, lines)



def clip_reason(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """One line of at most `limit` characters, cut at a word: a rambling reason would
    crowd the edit request out of a small model's context."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."
