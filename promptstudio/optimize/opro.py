"""OPRO: Yang et al., "Large Language Models as Optimizers" (2023).

Each step the optimizer model reads a meta-prompt (`resources/meta_prompts/opro.txt`): the
best instructions tried so far with their training scores from 0 to 100, lowest first,
then three training examples showing where the instruction goes, then a request for a new
and better instruction. It answers with several instructions at temperature 1.0; the new
ones are scored on a fixed training subset (the task model at temperature 0) and join the
list. The search starts from the project's instruction.

Where PromptStudio departs from the paper and its official code:
- The instruction's position is set by the project's template, which must end with the
  input (see `templates.py`). Of the paper's four positions only "before_question" (the
  default template) and "question_begin" can be written that way; the official default,
  the start of the answer, and the end of the question cannot. With the default template
  the `position` setting picks between the two. Every candidate of such a run, its own
  copy of the starting instruction included, records its template in `meta["template"]`,
  so it never shares scores with the same words in the project's template; the starting
  prompt in the project's template stays among the finalists. With the user's own
  template, that template decides and the setting is ignored.
- The examples in the meta-prompt are shown in the run's template with `<INS>` in the
  instruction's slot, without the demonstrations.
- Each reply gives one candidate: the first text between <START> and <END>. The meta-prompt
  ends with <START>, so a small model's reply that never repeats the tag still counts.
- With a base optimizer model (`writing.BASE`) the meta-prompt is the scored list itself,
  score before instruction, after a worked list from another task, and ends with a score
  `TARGET_STEP` above the best: the model continues the list with one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from promptstudio.evaluation import label_continuation
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
from promptstudio.store.records import Candidate, Example
from promptstudio.templates import DEFAULT_TEMPLATE, PromptTemplate

POSITIONS = {
    "before_question": DEFAULT_TEMPLATE,
    "question_begin": "{demos}Input: {instruction}\n{input}\nOutput:",
}
REPLY_TOKENS = 128
TARGET_STEP = 10
"""With a base model, the score written before its new instruction: this much above the
best so far (at most 100), so that it continues the list with a better one."""


@register
class OPRO(Method):
    name = "opro"
    title = "OPRO"
    summary = (
        "OPRO shows the optimizer model the instructions tried so far with their scores and "
        "asks it for a new one that should score higher; each new instruction is tested on "
        "training examples and joins the list. It improves an instruction step by step and "
        "needs many rounds, so it costs more model calls than APE.")
    # Official code: 200 steps of 8 instructions, at most 20 in the meta-prompt, 3 examples;
    # on BBH it scored on 20% of each task (about 50 examples). Its default position is the
    # start of the answer, which a PromptStudio template cannot express (see above).
    needs_capable_writer = True
    asks_the_writer = "read earlier instructions with their scores and write a better one"
    paper: ClassVar[dict] = {"steps": 200, "per_step": 8, "history": 20, "exemplars": 3,
                             "train_size": 50, "position": "answer_begin"}
    order = 2
    meta_prompts = ("opro", "opro_base")
    operations: ClassVar[dict[str, Operation]] = {
        "opro": Operation(
            "Proposed from scores (OPRO)",
            "written to beat the best so far",
            "OPRO showed the optimizer model earlier instructions with their scores and "
            "asked it for one that scores higher."),
    }
    settings: ClassVar[dict[str, Setting]] = {
        "steps": Setting(
            "Steps",
            "How many times the optimizer model is asked for new instructions. OPRO improves "
            "slowly; the paper used 200 steps."),
        "per_step": Setting(
            "Instructions per step",
            "How many new instructions the optimizer model writes in each step."),
        "history": Setting(
            "Earlier instructions shown",
            "How many of the best instructions so far, with their scores, the optimizer "
            "model reads in each step."),
        "exemplars": Setting(
            "Examples shown",
            "How many training examples the optimizer model sees in each step, so it knows "
            "what the task looks like."),
        "train_size": Setting(
            "Examples for scoring",
            "How many training examples every new instruction is tried on."),
        "position": Setting(
            "Where the instruction goes",
            "'before_question' puts the instruction before the input; 'question_begin' at the "
            "start of the input line. The paper's 'answer_begin' is not possible with "
            "PromptStudio's templates. Only used with the default template.",
            tuple(POSITIONS)),
    }
    presets: ClassVar[dict[str, dict]] = {
        # A few minutes on the bundled 270M model: fewer and smaller steps, a smaller subset.
        "quick": {"steps": 3, "per_step": 4, "history": 20, "exemplars": 3, "train_size": 16,
                  "position": "before_question"},
        "standard": {"steps": 10, "per_step": 8, "history": 20, "exemplars": 3,
                     "train_size": 32, "position": "before_question"},
        # The paper's settings, except the position (see `paper`).
        "thorough": {**paper, "position": "before_question"},
    }

    def story(self, project, candidate, known) -> list[Section]:
        if not candidate.parent_ids:
            return []
        shown = []
        for parent_id in candidate.parent_ids:
            parent = known.get(parent_id)
            if parent is None:
                continue
            score = parent.score("train")
            shown.append(f"#{parent_id}: {parent.instruction}"
                         + (f" (score {round(100 * score)})" if score is not None else ""))
        return [Section(f"Earlier instructions it was shown ({len(candidate.parent_ids)})",
                        "Lowest score first, as OPRO shows them.", tuple(shown))]

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """The start on the subset, then per step one optimizer sample and one subset
        evaluation per candidate; repeated or unusable replies make it fewer."""
        subset = min(params["train_size"], sizes.train)
        return subset + params["steps"] * params["per_step"] * (1 + subset)

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        return params["steps"] * params["per_step"]

    def optimize(self, ctx: RunContext, params: dict) -> None:
        extra = _place_instruction(ctx, params["position"])
        template = (PromptTemplate(extra["template"], ctx.settings.demo_format)
                    if extra else ctx.template)
        start = ctx.base
        if extra:  # the starting instruction, placed where this run puts instructions
            start = ctx.add_candidate(start.instruction, operation="start", meta=extra,
                                      clean=False)
        subset = ctx.sample(ctx.train, params["train_size"], "opro-train")
        scores = {start.id: ctx.score(start, subset)}
        tried = {start.id: start}
        steps = params["steps"]
        for step in range(1, steps + 1):
            ctx.begin_step(step, steps, "Asking for instructions that beat the best so far")
            shown = sorted(tried.values(), key=lambda c: (-scores[c.id], c.id))
            shown = shown[:params["history"]][::-1]
            exemplars = ctx.sample(subset, params["exemplars"], "opro-exemplars", step)
            texts = _proposals(ctx, params, shown, scores, _exemplars(template, exemplars))
            fresh, repeated, unusable = [], 0, 0
            for text in texts:
                cleaned, _ = clean_instruction(text, MAX_INSTRUCTION_CHARS)
                if cleaned is not None and cleaned in {c.instruction for c in tried.values()}:
                    repeated += 1
                    continue
                candidate = ctx.add_candidate(
                    text, operation="opro", parents=shown,
                    meta={"exemplars": [e.id for e in exemplars], **extra})
                if candidate is None:
                    unusable += 1
                    continue
                tried[candidate.id] = candidate
                fresh.append(candidate)
            ctx.log(f"Step {step}: {params['per_step']} replies, {len(fresh)} new instructions, "
                    f"{params['per_step'] - len(texts) + repeated} repeated, "
                    f"{unusable} unusable.")
            for candidate in fresh:
                scores[candidate.id] = ctx.score(candidate, subset)
        ranked = sorted(tried.values(), key=lambda c: (-scores[c.id], c.id))
        ctx.finalists = ranked[:FINALISTS]


def _proposals(ctx: RunContext, params: dict, shown: Sequence[Candidate],
               scores: dict[int, float], exemplars: str) -> list[str]:
    """The step's new instructions as written, one per reply. A base model continues the
    scored list after a prefilled score above the best so far; a capable model is asked,
    and answers between <START> and <END>."""
    if ctx.writer == writing.BASE:
        target = min(100, round(100 * max(scores[c.id] for c in shown)) + TARGET_STEP)
        history = "\n".join(f"Score {round(100 * scores[c.id])}: {c.instruction}"
                            for c in shown)
        return writing.continue_lines(ctx, "opro_base", n=params["per_step"], key="propose",
                                      temperature=1.0, history=history,
                                      exemplars=exemplars, target=target)
    prompt = fill(load("opro", ctx.project), history=_history(shown, scores),
                  exemplars=exemplars).rstrip()
    replies = ctx.ask(prompt, n=params["per_step"], temperature=1.0,
                      max_tokens=REPLY_TOKENS, stop=("<END>",), key="propose")
    return [first_proposal(reply) for reply in replies]


def _place_instruction(ctx: RunContext, position: str) -> dict:
    """Use the template for `position` when the project has the default template; returns
    what each candidate records about it."""
    if position not in POSITIONS:
        raise ValueError(
            f'OPRO cannot put the instruction at "{position}": the input must be the last '
            f"part of a template. Choose {' or '.join(POSITIONS)}.")
    if ctx.settings.template != DEFAULT_TEMPLATE:
        if position != "before_question":
            ctx.log("The project's own template decides where the instruction goes; the "
                    "position setting applies to the default template only.")
        return {}
    if POSITIONS[position] == ctx.settings.template:
        return {}
    template = PromptTemplate(POSITIONS[position], ctx.settings.demo_format)
    template.check()
    ctx.log(f"Scoring this run's instructions in this template: {template.text!r}.")
    return {"template": template.text}


def _history(shown: Iterable[Candidate], scores: dict[int, float]) -> str:
    return "\n\n".join(f"Instruction: {c.instruction}\nScore: {round(100 * scores[c.id])}"
                       for c in shown)


def _exemplars(template: PromptTemplate, examples: Sequence[Example]) -> str:
    shown = []
    for example in examples:
        prompt = template.render("<INS>", [], example.input)
        shown.append(prompt + label_continuation(prompt, example.output))
    return "\n\n".join(shown)
