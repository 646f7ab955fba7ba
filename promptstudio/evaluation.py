"""The evaluator: run the task model over examples under a candidate prompt, and score it.

This is the one place where a candidate meets the data. Every finished evaluation is
written to the project as soon as it exists, so a cancelled or killed evaluation keeps its
work, and evaluating again only does what is missing. Calls go through the project's call
cache, so results are the same whether the cache is cold or warm.

Two ways of asking the model, one rule for which (`ALONE_SPLITS`): dev and test rows, whose
scores choose and report the best prompt, are asked one prompt at a time after the
candidate's shared prefix, so that a score belongs to the prompt and the row alone, as the
user will run it. Training rows, which steer the search, are asked in batches, several
times faster; a batched answer can depend on its batchmates, so a run gives the batches it
plans (`evaluate(..., new=...)`), and they are asked in that shape even when part of one is
already stored (after a kill): the run then comes out the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from promptstudio import metrics
from promptstudio.llm.base import (
    Backend,
    Cancelled,
    CancelToken,
    Generation,
    GenerationParams,
)
from promptstudio.llm.cache import CachedBackend
from promptstudio.llm.chat import CHAT, FORMAT_WORDS, REASONING_TOKENS
from promptstudio.parsing import after_reasoning
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate, Evaluation, Example, Scoring
from promptstudio.templates import ChatPromptTemplate, PromptTemplate

ProgressCallback = Callable[[int, int], None]
"""Called with (examples done, examples in total) after each example."""

CONTENT_FREE = ("N/A", "", "[MASK]")
"""Inputs that say nothing, whose label probabilities measure a prompt's bias (Zhao et
al. 2021, "Calibrate Before Use")."""
ALONE_SPLITS = frozenset({"dev", "test"})
"""Rows asked one prompt at a time: those that choose the best prompt and report on it."""


class EvaluationError(RuntimeError):
    """The project is not ready to evaluate (no labels for a label metric, and so on)."""


@dataclass
class EvaluationResult:
    """A candidate's evaluations over a set of examples, old and new."""

    candidate: Candidate
    evaluations: list[Evaluation] = field(default_factory=list)
    new_evaluations: int = 0
    cancelled: bool = False
    left_out: int = 0
    """Examples asked for but not scored: the candidate shows them as demonstrations."""

    @property
    def n(self) -> int:
        return len(self.evaluations)

    @property
    def score(self) -> float:
        """Mean score; 0 when nothing was evaluated."""
        return sum(e.score for e in self.evaluations) / self.n if self.n else 0.0


def scorable(candidate: Candidate, examples: Sequence[Example]) -> list[Example]:
    """The examples a candidate may be scored on: never those it shows as demonstrations,
    whose answers are in its prompt. The one rule for every caller: `Evaluator.evaluate`
    applies it, and a run draws its training rows with it."""
    shown = set(candidate.demo_ids)
    return [e for e in examples if e.id not in shown]


def softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    weights = [math.exp(v - top) for v in values]
    total = sum(weights)
    return [w / total for w in weights]


def calibrated(values: Sequence[float], bias: Sequence[float]) -> list[float]:
    """Label scores with the prompt's bias divided out: log p(label | input) minus
    log p(label | no content), up to a constant (the paper's W = diag(p_cf)^-1, b = 0)."""
    probabilities = softmax(values)
    return [math.log(max(p, 1e-300)) - math.log(max(b, 1e-300))
            for p, b in zip(probabilities, bias, strict=True)]


def scoring_changes(newer: Scoring, older: Scoring) -> list[str]:
    """What differs between two scorings, in words: ["the metric (Exact match → Label)",
    "the template"]."""
    found = []
    if newer.template != older.template or newer.demo_format != older.demo_format:
        found.append("the template")
    if newer.metric != older.metric:
        found.append(f"the metric ({metrics.get_metric(older.metric).name} → "
                     f"{metrics.get_metric(newer.metric).name})")
    elif newer.labels != older.labels:
        found.append("the labels")
    elif newer.tolerance != older.tolerance:
        found.append("the metric's tolerance")
    elif newer.calibrate != older.calibrate:
        found.append("calibration")
    if newer.parser != older.parser:
        found.append("how the answer is read from the reply")
    if newer.answer_tokens != older.answer_tokens:
        found.append(f"the answer length limit ({older.answer_tokens} → "
                     f"{newer.answer_tokens} tokens, sized on the longest answer in the "
                     "training rows)")
    if newer.temperature != older.temperature:
        found.append("the temperature")
    if newer.prompt_format != older.prompt_format:
        found.append(f"the task model's prompt format ({FORMAT_WORDS[older.prompt_format]} → "
                     f"{FORMAT_WORDS[newer.prompt_format]})")
    elif (newer.instruction_place, newer.demo_place) != (older.instruction_place,
                                                           older.demo_place):
        found.append("where the instruction and the examples go in the chat messages")
    return found


REASONING_CUT = (
    f"The task model's reasoning ran past the room it is given ({REASONING_TOKENS:,} "
    "tokens on top of the answer's) on some examples: its <think> block never closed, so "
    "those replies hold no answer and count as wrong. Choose a model that reasons less "
    "before answering, or ask for brief reasoning in the instruction.")
"""Said once (`Backend.notices`, which a run writes to its log) when it happens."""


def label_continuation(prompt: str, label: str) -> str:
    """The text that says `label` after the prompt: a space first, unless one is there."""
    return label if not prompt or prompt[-1].isspace() else " " + label


def own_template(candidate: Candidate, scoring: Scoring) -> PromptTemplate:
    """The template and demonstration format a candidate is written in: the project's,
    except where the candidate records its own (`Candidate.meta`)."""
    return PromptTemplate(candidate.meta.get("template", scoring.template),
                          candidate.meta.get("demo_format", scoring.demo_format))


def prompt_template(scoring: Scoring, backend: Backend
                    ) -> PromptTemplate | ChatPromptTemplate:
    """How prompts are written for this scoring and task model: the project's text
    template, or, for a chat model, messages in the model's own chat template."""
    if scoring.prompt_format != CHAT:
        return scoring.prompt_template
    chat = backend.chat_template
    if chat is None:
        raise EvaluationError(
            "These scores are of prompts in a chat model's messages, but the task model "
            "has no chat template. Choose a chat model, or set the task model's prompt "
            "format to text (promptstudio config NAME --task-format text).")
    return ChatPromptTemplate(chat, scoring.prompt_template, scoring.instruction_place,
                              scoring.demo_place)


class Evaluator:
    """Evaluates candidates of one project with one task model, under one scoring: the
    project's current one, or the one a run was made under. Stored scores count only under
    the scoring and model they were made with."""

    def __init__(self, project: Project, backend: Backend, *, use_cache: bool = True,
                 cancel: CancelToken | None = None,
                 on_progress: ProgressCallback | None = None,
                 scoring: Scoring | None = None) -> None:
        self.project = project
        self.scoring = scoring or project.scoring()
        self.backend = CachedBackend(backend, project) if use_cache else backend
        self.model = backend.model_id
        self.cancel = cancel
        self.on_progress = on_progress
        self.template = prompt_template(self.scoring, backend)
        self.template.check()
        self.parser = self.scoring.output_parser
        self.parser.validate()
        metrics.get_metric(self.scoring.metric)
        if metrics.lacks_labels(self.scoring.metric, self.scoring.labels):
            raise EvaluationError(
                "The 'label' metric chooses among the project's labels, but fewer than two "
                "are set. Add the labels (for example: positive, negative) in Task settings."
            )
        chat = getattr(self.template, "chat", None)
        room = REASONING_TOKENS if chat is not None and chat.reasons else 0
        self.params = GenerationParams(
            temperature=self.scoring.temperature,
            max_tokens=self.scoring.answer_tokens + room,
            stop=self.parser.stop_sequences(),
            first_line_only=self.parser.mode == "first_line",
        )
        project.register_scoring(self.scoring)
        self._bias: dict[int, list[float]] = {}

    def prompt(self, candidate: Candidate, example: Example) -> str:
        return self.template_for(candidate).render(candidate.instruction,
                                                   self.demos(candidate), example.input)

    def template_for(self, candidate: Candidate) -> PromptTemplate | ChatPromptTemplate:
        """The project's template, unless the candidate records its own (a chat model's
        template decides the whole text)."""
        own = own_template(candidate, self.scoring)
        if own == self.scoring.prompt_template or self.scoring.prompt_format == CHAT:
            return self.template
        return own

    def demos(self, candidate: Candidate) -> list[tuple[str, str]]:
        """Its demonstrations as it keeps them: the rows' text when it was made."""
        return list(candidate.demos)

    def evaluate(self, candidate: Candidate, examples: Sequence[Example], *,
                 new: Collection[int] | None = None) -> EvaluationResult:
        """Evaluate `candidate` on `examples`, reusing what is already stored.

        `new` names the examples the caller has not had scored yet (a run knows); the
        training rows among them are asked in batches cut from that list, whatever is
        stored, so that a resumed run asks what an uninterrupted one did. By default the
        batches are cut from what is missing.

        On cancellation the evaluations finished so far are kept, and the result says
        `cancelled`; nothing half-done is ever written. The candidate's own demonstrations
        are left out (`scorable`).
        """
        asked = len(examples)
        examples = scorable(candidate, examples)
        done = self.project.evaluations(candidate.id, self.model, [e.id for e in examples],
                                        scoring=self.scoring.key)
        result = EvaluationResult(candidate, left_out=asked - len(examples))
        total = len(examples)
        self._report(len(done), total)
        demos = self.demos(candidate)
        template = self.template_for(candidate)
        alone_after = len(template.prefix(candidate.instruction, demos))
        step = max(1, self.backend.preferred_batch)
        if self.scoring.metric == "label":
            # Label scores arrive per call, not per example: smaller calls keep more of
            # the finished work if the evaluation is stopped.
            step = max(1, step // 4)

        def keep(evaluation: Evaluation) -> None:
            if evaluation.example_id in done:
                return
            self.project.save_evaluation(evaluation)
            done[evaluation.example_id] = evaluation
            result.new_evaluations += 1
            self._report(len(done), total)

        alone = [e for e in examples if e.split in ALONE_SPLITS and e.id not in done]
        batched = [e for e in examples if e.split not in ALONE_SPLITS
                   and (e.id not in done or (new is not None and e.id in new))]
        calls = [(alone[i:i + step], alone_after) for i in range(0, len(alone), step)]
        calls += [(batched[i:i + step], None) for i in range(0, len(batched), step)]
        try:
            for batch, after in calls:
                if all(e.id in done for e in batch):
                    continue
                if self.cancel is not None:
                    self.cancel.raise_if_cancelled()
                prompts = [template.render(candidate.instruction, demos, e.input)
                           for e in batch]
                if self.scoring.metric == "label":
                    for evaluation in self._choose_labels(candidate, batch, prompts, after):
                        keep(evaluation)
                else:
                    self.backend.generate(
                        prompts, replace(self.params, alone_after=after), self.cancel,
                        lambda i, generation, batch=batch: keep(
                            self._judge(candidate, batch[i], generation)))
        except Cancelled:
            result.cancelled = True
        result.evaluations = [done[e.id] for e in examples if e.id in done]
        return result

    def _judge(self, candidate: Candidate, example: Example,
               generation: Generation) -> Evaluation:
        if after_reasoning(generation.text) is None and REASONING_CUT not in \
                self.backend.notices:
            self.backend.notices.append(REASONING_CUT)
        answer = self.parser.parse(generation.text)
        return Evaluation(
            candidate_id=candidate.id, example_id=example.id, model=self.model,
            scoring=self.scoring.key, raw_output=generation.text, answer=answer,
            score=self._score(answer, example),
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens, latency=generation.seconds,
        )

    def _choose_labels(self, candidate: Candidate, examples: Sequence[Example],
                       prompts: Sequence[str], alone_after: int | None) -> list[Evaluation]:
        """Pick the label the model finds most likely (mean log-probability per token);
        with calibration, most likely relative to its bias (`label_bias`)."""
        labels = self.scoring.labels
        before = self.backend.stats.snapshot()
        all_scores = self.backend.score_batch(self._label_requests(prompts), self.cancel,
                                              alone_after)
        after = self.backend.stats.snapshot()
        bias = self.label_bias(candidate) if self.scoring.calibrate else None
        share = len(examples) or 1
        evaluations = []
        for example, scores in zip(examples, all_scores):
            values = [s.mean_logprob for s in scores]
            raw = "; ".join(f"{label}: {v:.3f}" for label, v in zip(labels, values))
            if bias is not None:
                values = calibrated(values, bias)
                raw += " (calibrated: " + "; ".join(
                    f"{label}: {v:.3f}" for label, v in zip(labels, values)) + ")"
            best = max(range(len(labels)), key=lambda i: values[i])
            evaluations.append(Evaluation(
                candidate_id=candidate.id, example_id=example.id, model=self.model,
                scoring=self.scoring.key, raw_output=raw, answer=labels[best],
                score=self._score(labels[best], example),
                prompt_tokens=(after["prompt_tokens"] - before["prompt_tokens"]) // share,
                latency=(after["seconds"] - before["seconds"]) / share,
            ))
        return evaluations

    def _label_requests(self, prompts: Sequence[str]) -> list[tuple[str, list[str]]]:
        """Each prompt with every label as its continuation, to be scored."""
        return [(p, [label_continuation(p, label) for label in self.scoring.labels])
                for p in prompts]

    def label_bias(self, candidate: Candidate) -> list[float]:
        """How likely the model finds each label under this candidate's prompt with no
        content at all: the mean, over `CONTENT_FREE` inputs, of the labels' probabilities
        (a softmax of their mean log-probabilities). Measured once per candidate."""
        if candidate.id not in self._bias:
            template, demos = self.template_for(candidate), self.demos(candidate)
            prompts = [template.render(candidate.instruction, demos, text)
                       for text in CONTENT_FREE]
            scored = self.backend.score_batch(
                self._label_requests(prompts), self.cancel,
                len(template.prefix(candidate.instruction, demos)))
            shares = [softmax([s.mean_logprob for s in scores]) for scores in scored]
            self._bias[candidate.id] = [sum(column) / len(shares) for column in zip(*shares)]
        return self._bias[candidate.id]

    def _score(self, answer: str, example: Example) -> float:
        tolerance = self.scoring.tolerance
        return metrics.score(self.scoring.metric, answer, example.answers,
                             **({} if tolerance is None else {"tolerance": tolerance}))

    def _report(self, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total)
