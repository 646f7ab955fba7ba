"""GrIPS: Prasad et al., "GrIPS: Gradient-free, Edit-based Instruction Search for Prompting
Large Language Models" (EACL 2023), after its official code (archiki/GrIPS,
`run_search.py`).

A search that edits the user's own instruction instead of asking a model to write one. The
instruction is cut into phrases; each round makes m candidates, each by one edit of the
current instruction chosen at random: delete a phrase, swap two phrases, paraphrase one,
or add back a phrase deleted earlier (never new text). Every candidate is scored on the
same training rows; the best replaces the current instruction only if it scores higher.
The search stops when the current instruction has survived `patience` rounds, or after
`rounds` rounds. For a label task the score is balanced accuracy plus a tenth of the
entropy of the predicted labels (the paper's accuracy in percent plus 10 x entropy, on our
0-1 scale), so that answering one label for everything is not rewarded; for other tasks it
is the mean score.

Where PromptStudio departs from the paper and its code:
- Phrases come from a small rule (split at punctuation, and before a joining word such as
  "and", "of" or "whether" once a phrase has two words), not from a constituency parser,
  which would be a second model to ship. The edits themselves are the paper's.
- The official code paraphrases a phrase with a separate Pegasus model. Here the optimizer
  model does it, one phrase at a time, with a prompt a base model can continue (worked
  examples, the answer begun for it), cut at the end of the line and capped in length;
  several samples are drawn and the usable ones kept (`grips_paraphrase.txt`).
- An edit that changes nothing (a swap of the only phrase) is not scored.
- Simulated annealing, an option of the official code, is not offered.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from promptstudio.optimize.context import RunContext
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
from promptstudio.store.records import Candidate, Evaluation, Example

EDITS = ("del", "swap", "sub", "add")
PAPER = {"candidates": 5, "patience": 2, "rounds": 10, "score_rows": 100}
PARAPHRASE_SAMPLES = 4
"""Paraphrases drawn for one phrase (the official code draws 10 beams and picks one)."""
ENTROPY_WEIGHT = 0.1
"""The paper's 10 x entropy beside accuracy in percent, on a 0-1 scale."""
JOINING_WORDS = frozenset(
    "and or but with without for to of in on at by from into about as that which whether "
    "if when while so than then using".split())
_TOKEN = re.compile(r"[^\s,;:.!?]+|[,;:.!?]")
_PUNCTUATION = frozenset(",;:.!?")


@register
class GrIPS(Method):
    name = "grips"
    title = "GrIPS (edits of your instruction)"
    summary = (
        "Edits your own instruction a phrase at a time: deletes a phrase, swaps two, rewords "
        "one, or puts back one deleted earlier, and keeps an edit only when it scores better "
        "on your training examples. Its prompts stay close to your words, so it suits a "
        "small model that cannot write instructions itself. It makes few optimizer calls "
        "(only to reword a phrase) and a few hundred short evaluations at Quick.")
    paper: ClassVar[dict] = PAPER
    order = 1
    meta_prompts = ("grips_paraphrase",)
    operations: ClassVar[dict[str, Operation]] = {
        "grips-del": Operation("A phrase deleted (GrIPS)", "a phrase deleted",
                               "GrIPS deleted one phrase of an earlier instruction."),
        "grips-swap": Operation("Two phrases swapped (GrIPS)", "two phrases swapped",
                                "GrIPS swapped two phrases of an earlier instruction."),
        "grips-sub": Operation("A phrase reworded (GrIPS)", "a phrase reworded",
                               "GrIPS had the optimizer model reword one phrase of an "
                               "earlier instruction."),
        "grips-add": Operation("A deleted phrase put back (GrIPS)",
                               "a deleted phrase put back",
                               "GrIPS put back a phrase deleted from an earlier instruction, "
                               "at another place."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "candidates": Setting("Edits per round",
                              "How many edited instructions each round tries (the paper's "
                              "m)."),
        "patience": Setting("Patience",
                            "How many rounds in a row may bring no better instruction before "
                            "the search stops."),
        "rounds": Setting("Most rounds",
                          "The most rounds of edits, if patience has not stopped the search "
                          "before."),
        "score_rows": Setting("Training examples scored",
                              "How many training examples every edited instruction is scored "
                              "on (the same ones each time)."),
    }
    presets: ClassVar[dict[str, dict]] = {
        # A 270M model on a laptop: the paper's loop on fewer rows, and fewer rounds.
        "quick": {**PAPER, "rounds": 4, "score_rows": 20},
        "standard": {**PAPER, "rounds": 6, "score_rows": 50},
        "thorough": dict(PAPER),
    }

    def story(self, project, candidate, known) -> list[Section]:
        return [Section("The edit", candidate.origin)] if candidate.origin else []

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """Every round runs, every edit is scored: an upper estimate."""
        rows = min(params["score_rows"], sizes.train)
        return (1 + params["rounds"] * params["candidates"]) * rows + (
            self.projected_optimizer_calls(params, sizes))

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        # About one edit in four is a paraphrase, each drawing a few samples.
        return math.ceil(params["rounds"] * params["candidates"] / len(EDITS)) * (
            PARAPHRASE_SAMPLES)

    def optimize(self, ctx: RunContext, params: dict) -> None:
        rows = ctx.sample(ctx.train, params["score_rows"], "grips-score")
        if not rows:
            ctx.log("GrIPS needs training examples to score its edits on.")
            return
        base = ctx.base
        values = {base.id: objective(ctx, base, rows)}
        scored = {base.id: base}
        deleted: list[str] = []
        patience = 1
        rounds = params["rounds"]
        for round_number in range(1, rounds + 1):
            ctx.begin_step(round_number, rounds,
                           f"Round {round_number} of {rounds}: editing #{base.id}")
            made = self.edit_round(ctx, params, base, deleted, round_number)
            for candidate, _, _ in made:
                values[candidate.id] = objective(ctx, candidate, rows)
                scored[candidate.id] = candidate
            better = [(values[c.id], -c.id, c, edit, phrase) for c, edit, phrase in made
                      if values[c.id] > values[base.id]]
            if better:
                _, _, base, edit, phrase = max(better, key=lambda found: found[:2])
                if edit == "add" and phrase in deleted:
                    deleted.remove(phrase)
                if edit == "del":
                    deleted.append(phrase)
                patience = 1
                ctx.log(f"Round {round_number}: #{base.id} scores {values[base.id]:.3f}, "
                        "better than the instruction it was edited from; it goes on.")
                continue
            patience += 1
            if patience > params["patience"]:
                ctx.log(f"Round {round_number}: no edit did better for "
                        f"{params['patience']} rounds; the search stops.")
                break
        ranked = sorted(scored.values(), key=lambda c: (-values[c.id], c.id))
        ctx.finalists = ranked[:FINALISTS]

    def edit_round(self, ctx: RunContext, params: dict, base: Candidate,
                   deleted: Sequence[str], round_number: int
                   ) -> list[tuple[Candidate, str, str]]:
        """This round's candidates, each one random edit of `base`, with the edit and the
        phrase it deleted or put back."""
        items = split_phrases(base.instruction)
        phrases = [i for i, item in enumerate(items) if item not in _PUNCTUATION]
        if not phrases:
            return []
        rng = ctx.rng("grips-edits", round_number)
        edits = [e for e in EDITS if e != "add" or deleted]
        made: list[tuple[Candidate, str, str]] = []
        seen = {base.instruction}
        for index in range(params["candidates"]):
            edit = rng.choice(edits)
            if edit == "del":
                at = rng.choice(phrases)
                phrase = items[at]
                edited = items[:at] + items[at + 1:]
                origin = f"Deleted \u201c{phrase}\u201d."
            elif edit == "swap":
                first, second = (rng.sample(phrases, 2) if len(phrases) > 1
                                 else (phrases[0], phrases[0]))
                edited = list(items)
                edited[first], edited[second] = items[second], items[first]
                phrase = items[first]
                origin = f"Swapped \u201c{items[first]}\u201d and \u201c{items[second]}\u201d."
            elif edit == "add":
                phrase = rng.choice(list(deleted))
                at = rng.choice([*phrases, -1])
                edited = [phrase, *items] if at < 0 else [*items[:at + 1], phrase,
                                                         *items[at + 1:]]
                origin = f"Put back \u201c{phrase}\u201d, deleted earlier."
            else:
                at = rng.choice(phrases)
                phrase = items[at]
                new = paraphrase(ctx, phrase, key=(round_number, index))
                if new is None:
                    continue
                edited = [*items[:at], new, *items[at + 1:]]
                origin = f"Reworded \u201c{phrase}\u201d as \u201c{new}\u201d."
            text = join_phrases(edited)
            if not text or text in seen:
                continue
            seen.add(text)
            candidate = ctx.add_candidate(text, operation=f"grips-{edit}", parents=[base],
                                          origin=origin, meta={"edit": edit})
            if candidate is not None and candidate.id != base.id:
                made.append((candidate, edit, phrase))
        return made


def paraphrase(ctx: RunContext, phrase: str, *, key: tuple) -> str | None:
    """The phrase in other words from the optimizer model: several samples, the first
    usable one in a random order; None when no sample is usable."""
    prompt = fill(load("grips_paraphrase", ctx.project), phrase=phrase)
    words = len(phrase.split())
    replies = ctx.ask(prompt, n=PARAPHRASE_SAMPLES, temperature=1.0,
                      max_tokens=2 * words + 8, stop=("\n",), first_line_only=True,
                      key=("grips-sub", *key))
    usable = list(dict.fromkeys(r for r in (usable_paraphrase(reply, phrase)
                                            for reply in replies) if r))
    if not usable:
        ctx.log(f"No usable rewording of \u201c{phrase}\u201d came back; that edit is "
                "skipped.")
        return None
    return ctx.rng("grips-pick", *key).choice(usable)


def usable_paraphrase(reply: str, phrase: str) -> str | None:
    """A reply cut to a phrase that can stand in for `phrase`, or None: not empty, not the
    phrase itself, not another prompt line, at most about twice as long."""
    text = reply.strip().splitlines()[0].strip() if reply.strip() else ""
    text = text.strip("\"'\u201c\u201d ").rstrip(".!?;:, ")
    if not text or ":" in text or text.lower() == phrase.lower():
        return None
    if len(text.split()) > 2 * len(phrase.split()) + 3:
        return None
    return text


def split_phrases(instruction: str) -> list[str]:
    """Phrases and punctuation marks, in order: words are grouped into a phrase until a
    punctuation mark, or until a joining word once the phrase has two words."""
    items: list[str] = []
    current: list[str] = []
    for token in _TOKEN.findall(instruction):
        if token in _PUNCTUATION:
            if current:
                items.append(" ".join(current))
                current = []
            items.append(token)
        elif token.lower() in JOINING_WORDS and len(current) >= 2:
            items.append(" ".join(current))
            current = [token]
        else:
            current.append(token)
    if current:
        items.append(" ".join(current))
    return items


def join_phrases(items: Sequence[str]) -> str:
    """The instruction the phrases and marks make: no mark at the start or twice in a row,
    the first letter a capital, ending as the original sentences do."""
    tokens: list[str] = []
    for item in items:
        if item in _PUNCTUATION:
            if not tokens or tokens[-1] in _PUNCTUATION:
                if tokens and item in ".!?":
                    tokens[-1] = item
                continue
            tokens.append(item)
        else:
            tokens.append(item)
    text = ""
    for token in tokens:
        text += token if token in _PUNCTUATION or not text else " " + token
    text = re.sub(r"([.!?])\s+(\w)", lambda m: f"{m.group(1)} {m.group(2).upper()}", text)
    return text[:1].upper() + text[1:]


def objective(ctx: RunContext, candidate: Candidate, rows: Sequence[Example]) -> float:
    """GrIPS's score of a candidate on the score rows (see the module's docstring). The
    mean score is recorded as its train score, as for every method."""
    ctx.score(candidate, rows)
    evaluations = ctx.evaluate(candidate, rows)
    if ctx.settings.metric != "label":
        return sum(e.score for e in evaluations) / len(evaluations) if evaluations else 0.0
    return balanced_accuracy(evaluations, rows) + ENTROPY_WEIGHT * label_entropy(
        [e.answer for e in evaluations], ctx.settings.labels)


def balanced_accuracy(evaluations: Sequence[Evaluation], rows: Sequence[Example]) -> float:
    """The mean, over the reference answers present, of the share of their rows answered
    right."""
    reference = {row.id: row.output for row in rows}
    by_class: dict[str, list[float]] = {}
    for evaluation in evaluations:
        by_class.setdefault(reference[evaluation.example_id], []).append(evaluation.score)
    if not by_class:
        return 0.0
    return sum(sum(s) / len(s) for s in by_class.values()) / len(by_class)


def label_entropy(answers: Sequence[str], labels: Sequence[str]) -> float:
    """Entropy (natural log) of how often each label was answered."""
    counts = Counter(answers)
    total = sum(counts[label] for label in labels)
    if not total:
        return 0.0
    shares = [counts[label] / total for label in labels if counts[label]]
    return -sum(p * math.log(p) for p in shares)
