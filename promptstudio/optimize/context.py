"""What an optimization method works with: `RunContext`.

A method (one module of this package, such as `ape` or `grips`) is a short loop written
against this object. It asks the optimizer model for text (`ask`), turns text into candidates
(`add_candidate`), scores candidates on training examples (`score`), and calls
`checkpoint` between steps. Everything it does is stored as it happens.

Resuming is replay: a resumed run executes the method again from the start with the same
seed. Every model call it already made is answered from the call cache, every evaluation
from the database and every candidate is found again by its fingerprint, so the replay
reaches the point of interruption quickly, without a repeated model call, and continues
exactly as the uninterrupted run would have. For that, everything random comes from
`rng(...)`, keyed by what it is for, never from global state.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from promptstudio.evaluation import Evaluator, label_continuation, scorable
from promptstudio.llm import chat
from promptstudio.llm.base import (
    Backend,
    Cancelled,
    CancelToken,
    GenerationParams,
    ScoringUnsupported,
)
from promptstudio.llm.cache import CachedBackend
from promptstudio.optimize import gate, writing
from promptstudio.optimize.budget import Budget, BudgetExhausted
from promptstudio.optimize.events import (
    BestChanged,
    CandidateCreated,
    CandidateRejected,
    CandidateScored,
    Event,
    Listener,
    Message,
    Progress,
    StepStarted,
)
from promptstudio.optimize.selection import examples_meta, split_dev
from promptstudio.parsing import after_reasoning, clean_instruction, reasoning_of
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate, Evaluation, Example, Run, Scoring

MAX_INSTRUCTION_CHARS = 500


class Stopped(Exception):
    """The user paused or cancelled the run; `reason` is 'paused' or 'cancelled'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RunControl:
    """Pause and cancel requests from the outside (a button, Ctrl-C), seen at checkpoints
    and between model tokens."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self.reason = "cancelled"

    def pause(self) -> None:
        self.reason = "paused"
        self.token.cancel()

    def cancel(self) -> None:
        self.reason = "cancelled"
        self.token.cancel()


@dataclass
class Scores:
    """What is known of a candidate's scores in this session: per split, every example
    scored so far (bandits score a candidate a few examples at a time), and means of other
    measures such as `train:logprob`."""

    per_example: dict[str, dict[int, float]] = field(default_factory=dict)
    measures: dict[str, tuple[float, int]] = field(default_factory=dict)

    def add(self, split: str, evaluations: Sequence[Evaluation]) -> None:
        known = self.per_example.setdefault(split, {})
        for evaluation in evaluations:
            known[evaluation.example_id] = evaluation.score

    def get(self, split: str) -> float | None:
        """Mean over every example of `split` scored so far, or None if none was."""
        if split in self.measures:
            return self.measures[split][0]
        known = self.per_example.get(split)
        return sum(known.values()) / len(known) if known else None

    def count(self, split: str) -> int:
        return len(self.per_example.get(split, {}))


def seeded(seed: int, *keys: object) -> random.Random:
    """A random generator for one purpose of a run with this seed, the same on every replay."""
    text = repr((seed, *keys)).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha256(text).digest()[:8], "big"))


def run_dev_split(dev: Sequence[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """How a run with this seed splits dev (`split_dev`): the third a search may rank on and
    the two thirds kept from it. `benchmarks/optimizers.py` finds a finished run's with it."""
    return split_dev(dev, seeded(seed, "dev-split"))


class RunContext:
    """One run's view of the project, its models, its data splits and its budget."""

    def __init__(self, project: Project, run: Run, task_backend: Backend,
                 optimizer_backend: Backend, *, budget: Budget,
                 control: RunControl | None = None, listener: Listener | None = None,
                 start: Candidate, projected_calls: int = 0, final_calls: int = 0,
                 projected_optimizer_calls: int = 0, optimizer_weight: float = 1.0,
                 scoring: Scoring | None = None) -> None:
        self.project = project
        self.run = run
        self.seed = run.seed
        self.budget = budget
        self.control = control or RunControl()
        self.listener = listener
        self.task = CachedBackend(task_backend, project)
        self.optimizer = (self.task if optimizer_backend is task_backend
                          else CachedBackend(optimizer_backend, project))
        for backend in {self.task, self.optimizer}:
            backend.on_mismatch = self._report_mismatch
        self._told: set[str] = set()
        self.evaluator = Evaluator(project, self.task, use_cache=False,
                                   cancel=self.control.token, scoring=scoring)
        # The run's own template, metric and labels, whatever the project holds now.
        self.settings = self.evaluator.scoring.applied_to(project.settings)
        self.template = self.evaluator.template
        """How prompts are written for the task model: the run's text template, or a chat
        model's messages (`evaluation.prompt_template`)."""
        self.start = start
        self._all_train = project.examples("train")
        self.set_base(start)
        # Dev is split once, the same way on every replay: the search (ProTeGi's bandit)
        # may use `dev`; `confirm` is kept from it, for checking the winner against the
        # start (`selection`, `dev_parts`).
        self.dev, self.confirm = run_dev_split(project.examples("dev"), self.seed)
        self.test = project.examples("test")
        self.scores: dict[int, Scores] = {}
        self.answered: set[int] = set()
        """The examples the task model has been asked about in this run, under any
        candidate: rows outside it can still judge what the search found so far."""
        self.finalists: list[Candidate] = []
        self.rejected = 0
        self._thoughts: dict[str, str] = {}
        """The last request's replies (after their reasoning) and the reasoning before
        them, for a reasoning optimizer model (`add_candidate` keeps it)."""
        self.set_aside: Counter[str] = Counter()
        """Candidates the readability gate set aside, by rule (`gate.RULES`)."""
        self._gate: gate.Gate | None = None
        self.calls = 0
        self.tokens = 0
        self.projected_calls = projected_calls
        self.optimizer_weight = optimizer_weight
        self.work = 0.0
        self.projected_work = (projected_calls
                               + projected_optimizer_calls * (optimizer_weight - 1))
        self.final_calls = final_calls
        """The most calls choosing and reporting the best prompt can take: held back from
        the search, so that a limit the user sets holds for the whole run."""
        self._holding = True
        self.step = 0
        self.steps_before = 0
        self._started = time.monotonic()
        self._best: tuple[float, int] | None = None
        self._counted: set[tuple[int, int]] = set()

    def _report_mismatch(self, prompt: str, stored: str, fresh: str) -> None:
        """A call asked again in its own shape answered otherwise than the stored answer:
        the two came from calls of other shapes (see `llm.cache`). Said in the log."""
        self.log(f"Asked again with its batch, a prompt got another answer than the one "
                 f"stored ({stored[:60]!r}, now {fresh[:60]!r}); this run uses the new one.")

    def set_base(self, candidate: Candidate) -> None:
        """The prompt an instruction search starts from, whose demonstrations its new
        candidates show: the starting prompt, or in an interleaved run the best pair of
        instruction and demonstrations found so far. Training examples exclude them, so a
        prompt is never scored on the answers it shows."""
        self.base = candidate
        self.train = scorable(candidate, self._all_train)

    # -- randomness and events --------------------------------------------------------

    def rng(self, *keys: object) -> random.Random:
        """A random generator for one purpose, the same on every replay of the run."""
        return seeded(self.seed, *keys)

    def seed_for(self, *keys: object) -> int:
        return self.rng("seed", *keys).randrange(2**31)

    def emit(self, event: Event) -> None:
        if self.listener is not None:
            self.listener(event)

    def log(self, text: str) -> None:
        self.emit(Message(self.run.id, text))

    def begin_step(self, step: int, steps: int, title: str) -> None:
        """Step `step` of a method's `steps`. In a chained run the second method's steps
        count on from the first's (`steps_before`), so a run's steps never repeat."""
        self.checkpoint()
        self.step = self.steps_before + step
        self.save_progress()
        self.emit(StepStarted(self.run.id, self.step, self.steps_before + steps, title))

    def fresh_usage(self) -> tuple[int, int]:
        """Model calls and tokens this session really made (not served by the cache)."""
        stats = self.task.stats.snapshot()
        calls, tokens = stats["calls"], stats["tokens"]
        if self.optimizer is not self.task:
            other = self.optimizer.stats.snapshot()
            calls, tokens = calls + other["calls"], tokens + other["tokens"]
        return calls, tokens

    def save_progress(self, **fields: object) -> None:
        """Write the run's running totals, so a killed run still shows what it spent."""
        calls, tokens = self.fresh_usage()
        self.project.update_run(
            self.run.id, llm_calls=self.run.llm_calls + calls,
            tokens=self.run.tokens + tokens, seconds=self.run.seconds + self.elapsed,
            rejected_candidates=self.rejected, **fields)

    def checkpoint(self, upcoming: int = 0) -> None:
        """Stop here if the user asked to, or if the budget is spent or would be by the
        `upcoming` calls. While searching, what the final choice may need is counted as
        spent already; the final choice itself is never stopped by the budget."""
        if self.control.token.cancelled:
            raise Stopped(self.control.reason)
        self.tell_notices()
        if not self._holding:
            return
        held_calls, held_tokens, held_seconds = self._held_back()
        reason = self.budget.exceeded(self.calls + held_calls, self.tokens + held_tokens,
                                      self.run.seconds + self.elapsed + held_seconds)
        if reason is None and self.budget.too_many(self.calls + held_calls + upcoming):
            reason = f"the budget of {self.budget.max_calls} model calls would be passed"
        if reason:
            if held_calls:
                reason += (f" (counting up to {held_calls} calls kept to choose and check the "
                           "best prompt)")
            raise BudgetExhausted(reason)

    def tell_notices(self) -> None:
        """Write to the log what the models said the user should know (a fallback taken),
        once each."""
        for backend in {self.task, self.optimizer}:
            for notice in backend.notices:
                if notice not in self._told:
                    self._told.add(notice)
                    self.log(notice)

    def _room(self) -> int | None:
        """Calls the search may still make under the limit on calls; None without one."""
        if not self._holding or self.budget.max_calls is None:
            return None
        return self.budget.max_calls - self.calls - self._held_back()[0]

    def _held_back(self) -> tuple[int, int, float]:
        """(calls, tokens, seconds) kept for the final choice: its calls at most, and their
        tokens and time at this run's mean per call so far."""
        if not self._holding or not self.final_calls:
            return 0, 0, 0.0
        per_call = 1 / self.calls if self.calls else 0.0
        return (self.final_calls, round(self.final_calls * self.tokens * per_call),
                self.final_calls * self.elapsed * per_call)

    def release_reserve(self) -> None:
        """The search is over: what it held back is for choosing the best prompt now."""
        self._holding = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _count(self, calls: int, tokens: int, weight: float = 1.0) -> None:
        """Count calls made; `weight`: what each costs in task answers (for progress)."""
        self.calls += calls
        self.tokens += tokens
        self.work += calls * weight
        fresh = self.fresh_usage()[0]
        rate = self.work / self.elapsed if self.elapsed > 0 else 0.0
        remaining = max(0.0, self.projected_work - self.work)
        self.emit(Progress(self.run.id, self.calls, self.projected_calls, self.elapsed,
                           remaining / rate if rate else None, fresh, self.tokens,
                           self.work, self.projected_work))

    # -- the optimizer model ----------------------------------------------------------

    @property
    def writer(self) -> str:
        """How this run asks its optimizer model to write: `writing.BASE` or `PAPER`."""
        return str(self.run.params.get("writer") or writing.PAPER)

    def ask(self, prompt: str, *, n: int = 1, temperature: float = 1.0,
            max_tokens: int = 200, stop: Sequence[str] = (), key: object = "",
            top_p: float = 1.0, first_line_only: bool = False) -> list[str]:
        """n samples from the optimizer model; `key` names this request within the step so
        that its seed, and so its cached answers, are the same on replay."""
        self.checkpoint(upcoming=n)
        template = self.optimizer.chat_template if self.optimizer.prompt_format == chat.CHAT \
            else None
        if template is not None:  # a meta-prompt is the user's message
            prompt = template.render([chat.Message("user", prompt)])
            if template.reasons:
                max_tokens += chat.REASONING_TOKENS
        params = GenerationParams(temperature=temperature, top_p=top_p,
                                  max_tokens=max_tokens, stop=tuple(stop),
                                  seed=self.seed_for("ask", self.step, key),
                                  first_line_only=first_line_only)
        try:
            generations = self.optimizer.generate([prompt] * n, params, self.control.token)
        except Cancelled:
            raise Stopped(self.control.reason) from None
        self._count(n, sum(g.prompt_tokens + g.completion_tokens for g in generations),
                    self.optimizer_weight)
        replies = [after_reasoning(g.text) for g in generations]
        self._thoughts = {reply: thought for reply, g in zip(replies, generations)
                          if reply and (thought := reasoning_of(g.text))}
        if None in replies:
            self.log(f"The optimizer model's reasoning ran past its {max_tokens} tokens "
                     f"before it answered, in {replies.count(None)} of {n} replies; those "
                     "count as empty. A model that reasons at length needs a larger "
                     "context, or choose one that answers directly.")
        return [reply or "" for reply in replies]

    # -- candidates -------------------------------------------------------------------

    def add_candidate(self, text: str, *, operation: str,
                      parents: Sequence[Candidate] = (), demo_ids: Sequence[int] | None = None,
                      origin: str = "", meta: dict | None = None,
                      clean: bool = True) -> Candidate | None:
        """A candidate from model-written text, or None (counted, and announced with its
        reason) when the text is unusable or the readability gate (`gate`) sets it aside.
        `clean=False` takes the text as it is: an instruction already in the run."""
        instruction = text
        if clean:
            instruction, reason = clean_instruction(text, MAX_INSTRUCTION_CHARS)
            rule = ("" if not reason else "empty" if reason == "empty" else
                    gate.LENGTH if reason.startswith("longer") else gate.MARKUP)
            if instruction is not None:
                found = self.gate.check(instruction)
                rule, reason = (found.rule, found.reason) if found else ("", "")
            if rule:
                self.rejected += 1
                self.set_aside[rule] += 1
                self.emit(CandidateRejected(self.run.id, text[:200], reason, rule))
                return None
        demos = self.base.demo_ids if demo_ids is None else tuple(demo_ids)
        thought = next((t for reply, t in self._thoughts.items()
                        if text.strip() and text.strip() in reply), "")
        if thought:  # a reasoning model's block, kept as part of how the candidate was made
            meta = {**(meta or {}), "thinking": thought}
        candidate = self.project.add_candidate(
            instruction, demos, run_id=self.run.id, parent_ids=[p.id for p in parents],
            operation=operation, step=self.step, origin=origin, meta=meta)
        self.emit(CandidateCreated(self.run.id, candidate.id, candidate.instruction,
                                   candidate.operation, candidate.parent_ids, self.step))
        return candidate

    @property
    def gate(self) -> gate.Gate:
        """The readability gate for this run's written candidates, made on first use."""
        if self._gate is None:
            settings = self.settings
            allowed = [settings.task_description,
                       *(f"{e.input} {e.output}" for e in self._all_train)]
            labels = re.findall(r"(?m)^\s*([A-Za-z][\w ]{0,20}?)\s*:", self.template.text)
            self._gate = gate.Gate(self.start.instruction,
                                   meta_prompts=writing.gate_texts(self.project),
                                   allowed=allowed, labels=labels,
                                   max_words=int(self.run.params.get("gate_max_words")
                                                 or gate.MAX_WORDS),
                                   log_likelihood=self._log_likelihood,
                                   worked=(writing.worked_texts(self.project)
                                           if self.writer == writing.BASE else ()))
        return self._gate

    def _log_likelihood(self, text: str) -> float | None:
        """Mean log-probability per token of an instruction, where the template puts it,
        under the task model; None when the model cannot score text."""
        prefix = self.template.before_instruction()
        continuation = f" {text}" if prefix and not prefix[-1].isspace() else text
        try:
            [scored] = self.task.score(prefix, [continuation], self.control.token)
        except ScoringUnsupported:
            return None
        except Cancelled:
            raise Stopped(self.control.reason) from None
        self._count(1, scored.n_tokens)
        return scored.mean_logprob

    # -- evaluation -------------------------------------------------------------------

    def sample(self, examples: Sequence[Example], n: int, *keys: object) -> list[Example]:
        """n examples drawn without replacement, the same on every replay; all of them, in
        their stored order, when n covers the whole pool."""
        pool = list(examples)
        if n >= len(pool):
            return pool
        return self.rng("sample", *keys).sample(pool, n)

    def evaluate(self, candidate: Candidate, examples: Sequence[Example]) -> list[Evaluation]:
        """Evaluate and return each example's evaluation; counts against the budget. A
        batch that would pass the limit on calls is cut to what is left of it (the same
        cut on every replay); the next checkpoint then ends the search."""
        unseen = {e.id for e in examples if (candidate.id, e.id) not in self._counted}
        room = self._room()
        if room is not None and 0 < room < len(unseen):
            keep = set([e.id for e in examples if e.id in unseen][:room])
            examples = [e for e in examples if e.id not in unseen or e.id in keep]
            unseen = keep
        self.checkpoint(upcoming=len(unseen))
        result = self.evaluator.evaluate(candidate, examples, new=unseen)
        if result.cancelled:
            raise Stopped(self.control.reason)
        self.answered.update(e.example_id for e in result.evaluations)
        # An example this run already scored for this candidate costs nothing again.
        new = [e for e in result.evaluations if (candidate.id, e.example_id) not in self._counted]
        self._counted.update((candidate.id, e.example_id) for e in new)
        self._count(len(new), sum(e.prompt_tokens + e.completion_tokens for e in new))
        return result.evaluations

    def score(self, candidate: Candidate, examples: Sequence[Example],
              split: str = "train") -> float:
        """Mean score on `examples` (a subset of `split`); remembered and announced."""
        evaluations = self.evaluate(candidate, examples)
        mean = sum(e.score for e in evaluations) / len(evaluations) if evaluations else 0.0
        self.scores.setdefault(candidate.id, Scores()).add(split, evaluations)
        self.emit(CandidateScored(self.run.id, candidate.id, split, mean, len(evaluations),
                                  self.step))
        if split == "train" and (self._best is None or (mean, -candidate.id) > self._best):
            self._best = (mean, -candidate.id)
            self.emit(BestChanged(self.run.id, candidate.id, candidate.instruction, mean,
                                  split))
        return mean

    def logprob_score(self, candidate: Candidate, examples: Sequence[Example],
                      split: str = "train") -> float:
        """Mean per-token log-probability of each example's reference output under the
        candidate (APE's alternative to execution accuracy); counts against the budget.
        Kept in memory under `<split>:logprob` and in the call cache, not as evaluations."""
        self.checkpoint(upcoming=len(examples))
        prompts = [self.prompt_for(candidate, e) for e in examples]
        try:
            scored = self.task.score_batch(
                [(p, [label_continuation(p, e.output)]) for p, e in zip(prompts, examples)],
                self.control.token)
        except Cancelled:
            raise Stopped(self.control.reason) from None
        self.answered.update(e.id for e in examples)
        self._count(len(examples), sum(s[0].n_tokens for s in scored))
        mean = sum(s[0].mean_logprob for s in scored) / len(scored) if scored else 0.0
        self.scores.setdefault(candidate.id, Scores()).measures[f"{split}:logprob"] = (
            mean, len(scored))
        return mean

    def errors(self, candidate: Candidate, examples: Sequence[Example]
               ) -> list[tuple[Example, Evaluation]]:
        """The examples this candidate gets wrong, with what the task model answered."""
        evaluations = {e.example_id: e for e in self.evaluate(candidate, examples)}
        return [(x, evaluations[x.id]) for x in examples
                if x.id in evaluations and evaluations[x.id].score < 1.0]

    def train_score(self, candidate: Candidate) -> float:
        return self.scores.get(candidate.id, Scores()).get("train") or 0.0

    def search_evidence(self, candidate: Candidate) -> tuple[float, int, str]:
        """What the search knows of a candidate, as (mean, rows, split): its train score,
        else (for a method that ranks on dev, as ProTeGi does) its score on the dev rows the
        search may use; (0.0, 0, "train") for a candidate it never scored."""
        scores = self.scores.get(candidate.id, Scores())
        for split in ("train", "dev"):
            mean = scores.get(split)
            if mean is not None:
                return mean, scores.count(split), split
        return 0.0, 0, "train"

    def search_score(self, candidate: Candidate) -> float:
        return self.search_evidence(candidate)[0]

    def dev_parts(self) -> tuple[list[Example], list[Example]]:
        """The dev rows the search used and those it never did, for checking a pick on.

        A search that scored any candidate on dev (ProTeGi ranks its beam on `dev`, the
        select third) used that third, and the pick is checked on `confirm` (unless it keeps
        the user's instruction: `ranked_only_instructions_on_dev`); one that ranked on train
        only leaves all of dev for the check. Read before the choice
        scores anything on dev: it looks at what the search recorded."""
        if any(scores.count("dev") for scores in self.scores.values()):
            return list(self.dev), list(self.confirm)
        return [], [*self.dev, *self.confirm]

    def ranked_only_instructions_on_dev(self) -> bool:
        """Whether every candidate the search scored on dev shows the start's examples in
        the start's way (ProTeGi's beam of instructions): then those rows chose no part of a
        pick that keeps the user's instruction, and it can be checked on all of dev."""
        shown = (self.start.demo_ids, examples_meta(self.start))
        return all((c.demo_ids, examples_meta(c)) == shown
                   for c in self.project.candidates(self.run.id)
                   if c.id in self.scores and self.scores[c.id].count("dev"))

    def prompt_for(self, candidate: Candidate, example: Example) -> str:
        """The full prompt the task model sees for this example."""
        return self.evaluator.prompt(candidate, example)

    def demos_text(self, examples: Sequence[Example]) -> str:
        """Examples written in the project's demonstration format."""
        return self.template.render_demos([(e.input, e.output) for e in examples])
