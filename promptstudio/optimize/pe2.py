"""PE2: Ye et al., "Prompt Engineering a Prompt Engineer" (2023).

The search starts from the user's prompt or from prompts induced from examples
(`pe2_induce.txt`). Each step takes the n best prompts found in *any* step so far
(backtracking) and, for each, shows the optimizer model a batch of examples it gets wrong
in a three-part meta-prompt (`pe2_reason.txt`): a two-step task description; the context
specification, i.e. the prompt in place inside the full template the task model sees,
then each failure with its input, the model's output and the label, said to be correct;
and a step-by-step reasoning template per example. The model reasons at temperature 0;
then a refinement turn (`pe2_refine.txt`), appended to that conversation, asks for m new
prompts at temperature 0.7 that change at most `step_size` words, stay under `max_words`
words, and take into account the prompt's history (its ancestors and their scores) and a
momentum summary (what each earlier edit changed and how the score moved).

Where PromptStudio departs from the paper:
- Prompts are scored on a fixed training subset (`train_size`); dev only picks among the
  finalists afterwards (see `runner.py`). The paper selected on its dev set.
- The failures are drawn from that subset, whose answers are stored already, so finding
  them costs no new task-model calls (the budget still counts them, as it counts every
  evaluation).
- The momentum summary is written here from the lineage, as word-level edits with score
  changes, rather than by the optimizer model.
- Induction asks once per starting prompt, each time with its own five examples.
- With a base optimizer model (`writing.BASE`) the reasoning is one line that continues
  worked cases, and each refinement one sampled line after them: a 270M base model does
  not reason step by step, and its long replies drift from the task. The refinement's
  answer is prefilled with the prompt itself, up to a comma, so the model writes only what
  it adds (at most about `step_size` words): asked for an edited prompt, such a model
  copies the prompt unchanged. So a base model's edits add to the end of the prompt; they
  never reword it.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from typing import ClassVar

from promptstudio.optimize import writing
from promptstudio.optimize.context import MAX_INSTRUCTION_CHARS, RunContext
from promptstudio.optimize.meta_prompts import fill, load
from promptstudio.optimize.method import (
    FINALISTS,
    Method,
    Operation,
    Section,
    Setting,
    Sizes,
    register,
)
from promptstudio.parsing import clean_instruction, first_proposal
from promptstudio.store.records import Candidate, Evaluation, Example

INDUCTION_DEMOS = 5
REASONING_TOKENS = 256


@register
class PE2(Method):
    name = "pe2"
    title = "PE2"
    summary = (
        "PE2 shows the optimizer model examples your prompt gets wrong, has it reason about "
        "why, and then rewrites the prompt with small, careful edits. It keeps the best "
        "prompts of every round, so a bad edit never loses a good prompt. It needs few calls, "
        "but long ones, and works best with a capable optimizer model.")
    # n = 4 parents, m = 4 children each, 2 failures per batch, 3 steps (methods.md). The
    # paper's instruction-induction runs start by induction. Step size, length limit and
    # subset size are not fixed in our notes: 10 words, 50 words and 50 examples are ours.
    needs_capable_writer = True
    asks_the_writer = "reason step by step about the prompt's mistakes and edit it"
    paper: ClassVar[dict] = {"init": "induction", "steps": 3, "n": 4, "m": 4, "batch_size": 2,
                             "step_size": 10, "max_words": 50, "train_size": 50}
    order = 4
    meta_prompts = ("pe2_induce", "pe2_reason", "pe2_refine", "pe2_induce_base",
                    "pe2_reason_base", "pe2_refine_base")
    operations: ClassVar[dict[str, Operation]] = {
        "induce": Operation(
            "Written from examples (PE2)",
            "guessed from examples",
            "PE2 asked the optimizer model to write an instruction from a few training "
            "examples."),
        "pe2": Operation(
            "Edited after reasoning (PE2)",
            "edited after reasoning about mistakes",
            "PE2 had the optimizer model reason about answers that an earlier prompt got "
            "wrong, then change a few words of it."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "init": Setting(
            "Start from",
            "'user' starts from your instruction; 'induction' first has the model guess "
            "instructions from your examples (as APE does) and starts from those.",
            ("user", "induction")),
        "steps": Setting(
            "Steps",
            "How many rounds of reasoning about mistakes and editing the prompts."),
        "n": Setting(
            "Prompts improved per step",
            "How many of the best prompts found so far, in any step, are improved in each "
            "step. Going back to an earlier prompt means a bad edit never loses a good one."),
        "m": Setting(
            "New prompts per prompt",
            "How many edited prompts the model writes for each prompt it improves."),
        "batch_size": Setting(
            "Mistakes shown",
            "How many examples the prompt got wrong are shown to the model when it reasons "
            "about what to change."),
        "step_size": Setting(
            "Most words changed",
            "The most words one edit may change, so that every step makes small, careful "
            "changes."),
        "max_words": Setting(
            "Longest prompt (words)",
            "The most words a new prompt may have."),
        "train_size": Setting(
            "Examples for scoring",
            "How many training examples every new prompt is tried on."),
    }
    presets: ClassVar[dict[str, dict]] = {
        # A few minutes on the bundled 270M model: two steps from the two best prompts.
        "quick": {"init": "user", "steps": 2, "n": 2, "m": 2, "batch_size": 2,
                  "step_size": 10, "max_words": 50, "train_size": 16},
        "standard": {"init": "user", "steps": 3, "n": 4, "m": 4, "batch_size": 2,
                     "step_size": 10, "max_words": 50, "train_size": 32},
        "thorough": dict(paper),
    }

    def story(self, project, candidate, known) -> list[Section]:
        meta = candidate.meta
        if candidate.operation == "induce":
            return ([Section("Where it came from", candidate.origin)]
                    if candidate.origin else [])
        sections = []
        reasoning = meta.get("reasoning") or candidate.origin
        if reasoning:
            sections.append(Section("The optimizer model's reasoning", reasoning))
        if meta.get("history"):
            sections.append(Section("Optimization history it was given", "",
                                    tuple(meta["history"].splitlines())))
        if meta.get("momentum"):
            sections.append(Section("Momentum summary it was given", "",
                                    tuple(meta["momentum"].splitlines())))
        return sections

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """Starting prompts on the subset, then per parent: one reasoning call, m new prompts
        and their evaluations (a parent's failures are its stored answers, free)."""
        scored, written = _projection(params)
        return written + scored * min(params["train_size"], sizes.train)

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        return _projection(params)[1]

    def optimize(self, ctx: RunContext, params: dict) -> None:
        subset = ctx.sample(ctx.train, params["train_size"], "pe2-train")
        pool: dict[int, Candidate] = {}
        scores: dict[int, float] = {}
        for candidate in _starting_prompts(ctx, params):
            pool[candidate.id] = candidate
            scores[candidate.id] = ctx.score(candidate, subset)
        steps = params["steps"]
        for step in range(1, steps + 1):
            ctx.begin_step(step, steps, "Reasoning about mistakes and editing the best prompts")
            ranked = sorted(pool.values(), key=lambda c: (-scores[c.id], c.id))
            for parent in ranked[:params["n"]]:
                shuffled = ctx.rng("pe2-errors", step, parent.id).sample(subset, len(subset))
                failures = ctx.errors(parent, shuffled)[:params["batch_size"]]
                if not failures:
                    ctx.log(f"“{parent.instruction}” gets every training example right; "
                            "there is nothing to correct.")
                    continue
                known = {c.instruction for c in pool.values()}
                for child in _refine(ctx, parent, failures, _lineage(parent, pool), scores,
                                     known, params):
                    pool[child.id] = child
                    scores[child.id] = ctx.score(child, subset)
        ranked = sorted(pool.values(), key=lambda c: (-scores[c.id], c.id))
        ctx.finalists = ranked[:FINALISTS]


def _projection(params: dict) -> tuple[int, int]:
    """How many prompts a run scores, and how many optimizer calls it makes."""
    n, m = params["n"], params["m"]
    induction = params["init"] == "induction"
    pool = n if induction else 1
    scored, written = pool, n if induction else 0
    for _ in range(params["steps"]):
        parents = min(n, pool)
        written += parents * (1 + m)
        scored += parents * m
        pool += parents * m
    return scored, written


def _starting_prompts(ctx: RunContext, params: dict) -> list[Candidate]:
    if params["init"] == "user":
        return [ctx.base]
    if params["init"] != "induction":
        raise ValueError(f'PE2 starts from "user" or "induction", not "{params["init"]}".')
    induced: dict[int, Candidate] = {}
    for i in range(params["n"]):
        demos = ctx.sample(ctx.train, INDUCTION_DEMOS, "pe2-induce", i)
        if ctx.writer == writing.BASE:
            text = next(iter(writing.continue_lines(
                ctx, "pe2_induce_base", n=1, key=("induce", i), max_tokens=_reply_tokens(params),
                demos=ctx.demos_text(demos).rstrip() + "\n", max_words=params["max_words"])), "")
        else:
            prompt = fill(load("pe2_induce", ctx.project), demos=ctx.demos_text(demos),
                          max_words=params["max_words"])
            text = first_proposal(ctx.ask(prompt.rstrip(), temperature=0.9, top_p=0.9,
                                          max_tokens=_reply_tokens(params), stop=("<END>",),
                                          key=("induce", i))[0])
        candidate = ctx.add_candidate(text, operation="induce",
                                      origin="induced from training examples")
        if candidate is not None:
            induced[candidate.id] = candidate
    if not induced:
        ctx.log("No usable prompt came out of induction; starting from the project's prompt.")
        return [ctx.base]
    return list(induced.values())


def _refine(ctx: RunContext, parent: Candidate, failures: Sequence[tuple[Example, Evaluation]],
            lineage: Sequence[Candidate], scores: dict[int, float], known: set[str],
            params: dict) -> list[Candidate]:
    """Reason about the failures, then ask for m edited prompts in the same conversation;
    returns the new ones (`known` holds the instructions already tried)."""
    if ctx.writer == writing.BASE:
        reasoning, history, texts = _refine_base(ctx, parent, failures, lineage, scores, params)
    else:
        reasoning, history, texts = _refine_paper(ctx, parent, failures, lineage, scores,
                                                  params)
    momentum = _momentum(lineage, scores)
    children: list[Candidate] = []
    repeated = params["m"] - len(texts)
    for text in texts:
        cleaned, _ = clean_instruction(text, MAX_INSTRUCTION_CHARS)
        if cleaned is not None and cleaned in known:
            repeated += 1
            continue
        child = ctx.add_candidate(
            text, operation="pe2", parents=[parent], origin=reasoning,
            meta={"history": history, "momentum": momentum, "reasoning": reasoning})
        if child is not None:
            known.add(child.instruction)
            children.append(child)
    if repeated:
        ctx.log(f"{repeated} of {params['m']} edits of #{parent.id} repeated a prompt already "
                "tried.")
    return children


def _refine_paper(ctx: RunContext, parent: Candidate,
                  failures: Sequence[tuple[Example, Evaluation]], lineage: Sequence[Candidate],
                  scores: dict[int, float], params: dict) -> tuple[str, str, list[str]]:
    """The paper's two turns: reasoning at temperature 0, then m refinements appended to
    that conversation. Returns (reasoning, history shown, the new prompts as written)."""
    reason = fill(load("pe2_reason", ctx.project), context=_in_place(ctx, parent),
                  prompt=parent.instruction, examples=_failures(failures)).rstrip() + "\n"
    reasoning = ctx.ask(reason, temperature=0.0,
                        max_tokens=REASONING_TOKENS, key=("reason", parent.id))[0].strip()
    history = "\n".join(f'- "{c.instruction}": {scores[c.id]:.2f}' for c in lineage)
    momentum = _momentum(lineage, scores)
    refine = fill(load("pe2_refine", ctx.project), conversation=reason + reasoning,
                  prompt=parent.instruction, history=history, momentum=momentum,
                  step_size=params["step_size"], max_words=params["max_words"])
    replies = ctx.ask(refine.rstrip(), n=params["m"], temperature=0.7,
                      max_tokens=_reply_tokens(params), stop=("<END>",), key=("refine", parent.id))
    return reasoning, history, [first_proposal(reply) for reply in replies]


def _refine_base(ctx: RunContext, parent: Candidate,
                 failures: Sequence[tuple[Example, Evaluation]], lineage: Sequence[Candidate],
                 scores: dict[int, float], params: dict) -> tuple[str, str, list[str]]:
    """The same two turns for a base model: a one-line diagnosis continuing worked cases
    (greedy, as the paper reasons at temperature 0), then m sampled endings added to the
    prompt."""
    line = writing.one_line
    failures_text = "\n".join(
        f"Input: {line(example.input)} | Model output: {line(evaluation.answer) or '(nothing)'}"
        f" | Label: {line(example.output)}" for example, evaluation in failures)
    reasoning = next(iter(writing.continue_lines(
        ctx, "pe2_reason_base", n=1, key=("reason", parent.id), temperature=0.0,
        prompt=parent.instruction, examples=failures_text)), "")
    history = "; ".join(f'"{c.instruction}" {scores[c.id]:.2f}' for c in lineage)
    stem = parent.instruction.rstrip(" .!?") + ","
    endings = writing.continue_lines(
        ctx, "pe2_refine_base", n=params["m"], key=("refine", parent.id), temperature=0.7,
        max_tokens=2 * params["step_size"] + 8, prompt=parent.instruction, history=history,
        reason=reasoning or "it is not clear enough.", step_size=params["step_size"],
        stem=stem)
    return reasoning, history, [f"{stem} {ending}" if ending.strip(' "') else ""
                                for ending in endings]



def _reply_tokens(params: dict) -> int:
    """Room for a prompt of `max_words` words (about 1.5 tokens a word) and some slack."""
    return 2 * params["max_words"] + 16


def _in_place(ctx: RunContext, candidate: Candidate) -> str:
    """The whole prompt the task model sees, with the input's place marked."""
    prefix = ctx.template.prefix(candidate.instruction, list(candidate.demos))
    return prefix + "{input}" + ctx.template.suffix()


def _failures(failures: Sequence[tuple[Example, Evaluation]]) -> str:
    return "\n\n".join(
        f"Example {i}\nInput: {example.input}\nModel output: {evaluation.answer or '(nothing)'}"
        f"\nLabel (correct): {example.output}"
        for i, (example, evaluation) in enumerate(failures, 1))


def _lineage(candidate: Candidate, pool: dict[int, Candidate]) -> list[Candidate]:
    """The candidate and its ancestors in this run, oldest first."""
    chain = [candidate]
    while chain[-1].parent_ids and chain[-1].parent_ids[0] in pool:
        chain.append(pool[chain[-1].parent_ids[0]])
    return chain[::-1]


def _momentum(lineage: Sequence[Candidate], scores: dict[int, float]) -> str:
    """Each earlier edit in words, with how it moved the training score."""
    lines = [f"step {new.step}: {_edit(old.instruction, new.instruction)} → "
             f"{scores[new.id] - scores[old.id]:+.2f}"
             for old, new in itertools.pairwise(lineage)]
    return "\n".join(lines) or "No edits yet: this is the first version of the prompt."


def _edit(old: str, new: str) -> str:
    before, after = old.split(), new.split()
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after).get_opcodes():
        removed, added = " ".join(before[i1:i2]), " ".join(after[j1:j2])
        if op == "insert":
            changes.append(f"added '{added}'")
        elif op == "delete":
            changes.append(f"removed '{removed}'")
        elif op == "replace":
            changes.append(f"replaced '{removed}' with '{added}'")
    return "; ".join(changes) or "no change in wording"
