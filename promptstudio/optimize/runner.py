"""The run engine: plan a run, execute or resume it, choose and report its best prompt.

A run optimizes on **train**, selects on **dev** and reports on **test**, which is never
used to choose anything. The starting prompt (the project's instruction with k = 3
demonstrations drawn from train with the run's seed) is scored on test too, so the gain
and the train-test gap are visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from promptstudio.llm.base import Backend
from promptstudio.optimize.budget import Budget, BudgetExhausted
from promptstudio.optimize.context import RunContext, RunControl, Stopped
from promptstudio.optimize.estimate import CallCost
from promptstudio.optimize.events import Listener, RunFinished, RunStarted
from promptstudio.optimize.method import Method, Sizes, method_named
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import Candidate, Run, now

DEFAULT_DEMOS = 3
FINALISTS = 4
REPLACE_START_P = 0.25
"""How sure the dev set must be that a candidate beats the starting prompt before it
replaces it: the one-sided sign test's p-value over the examples where they differ."""
PRESETS = ("quick", "standard", "thorough")
RESUMABLE = ("pending", "running", "paused", "failed")
RUN_FIELDS = ("then", "turns", "projected_calls", "uncorrected_seconds")
"""Entries of a run's params that belong to the run, not to its method."""


@dataclass(frozen=True)
class Plan:
    method: str
    params: dict
    then: str | None
    turns: int
    """With `then`, how many times the method and the follow-up take turns: 1 runs them
    one after the other, more interleaves them, each turn starting from the best pair of
    instruction and demonstrations so far. (Not `rounds`: ProTeGi has a setting of that
    name.)"""
    projected_calls: int
    projected_seconds: float | None
    uncorrected_seconds: float | None = None
    """The estimate from the machine's rates alone, kept with the run to correct later
    estimates (`estimate.correction`)."""

    def describe(self) -> str:
        text = f"about {self.projected_calls} model calls"
        if self.projected_seconds is not None:
            minutes = self.projected_seconds / 60
            text += f", about {minutes:.0f} minutes" if minutes >= 1.5 else (
                f", about {self.projected_seconds:.0f} seconds")
        return text


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str
    best: Candidate | None
    dev_score: float | None
    test_score: float | None
    baseline_test_score: float | None
    llm_calls: int
    tokens: int
    seconds: float
    rejected_candidates: int
    requested_calls: int = 0
    """Calls the search asked for, including those answered by the cache or the database;
    the difference to `llm_calls` is what the cache saved."""

    def as_json(self, project: Project) -> dict:
        best_demos = []
        if self.best is not None:
            best_demos = [{"input": e.input, "output": e.output}
                          for e in project.examples(ids=self.best.demo_ids)]
        return {
            "run_id": self.run_id, "status": self.status,
            "best_instruction": self.best.instruction if self.best else None,
            "best_demos": best_demos,
            "dev_score": self.dev_score, "test_score": self.test_score,
            "baseline_test_score": self.baseline_test_score,
            "llm_calls": self.llm_calls, "tokens": self.tokens,
            "seconds": round(self.seconds, 1),
            "rejected_candidates": self.rejected_candidates,
            "requested_calls": self.requested_calls,
        }


def sizes(project: Project) -> Sizes:
    counts = project.split_counts()
    return Sizes(counts["train"], counts["dev"], counts["test"])


def resolve_params(method: Method, preset: str, overrides: dict | None) -> dict:
    if preset not in method.presets:
        raise ProjectError(f"{method.title} has no preset {preset!r}; "
                           f"choose {', '.join(method.presets)}.")
    params = dict(method.presets[preset])
    unknown = set(overrides or {}) - set(params)
    if unknown:
        raise ProjectError(f"{method.title} has no setting {', '.join(sorted(unknown))}; "
                           f"its settings are {', '.join(sorted(params))}.")
    params.update(overrides or {})
    return params


def plan(project: Project, method_name: str, *, preset: str = "quick",
         overrides: dict | None = None, then: str | None = None, turns: int = 1,
         cost: CallCost | None = None) -> Plan:
    """The settings a run will use and what it will cost, before it starts. Without a
    `cost` (a server's speed is not measured) the time is left unsaid."""
    method = method_named(method_name)
    params = resolve_params(method, preset, overrides)
    if turns < 1 or (turns > 1 and not then):
        raise ProjectError("Turns alternate a method and a follow-up search: give at "
                           "least 1, and more only with a follow-up (then).")
    if then == method.name:
        raise ProjectError(f"{method.title} cannot follow itself.")
    data = sizes(project)
    calls = method.projected_calls(params, data)
    written = method.projected_optimizer_calls(params, data)
    if then:
        follow = method_named(then)
        follow_params = resolve_params(follow, preset, None)
        calls += follow.projected_calls(follow_params, data)
        written += follow.projected_optimizer_calls(follow_params, data)
    calls, written = calls * turns, written * turns
    calls += FINALISTS * data.dev + 2 * data.test + data.dev
    if cost is None:
        return Plan(method.name, params, then, turns, calls, None)
    return Plan(method.name, params, then, turns, calls, cost.seconds(calls, written),
                cost.uncorrected(calls, written))


def run_label(method: str, then: str | None, turns: int = 1) -> str:
    """A run's method in a word, for lists and reports: `ape`, `ape+demos`, `ape+demos×2`."""
    if not then:
        return method
    return f"{method}+{then}" + (f"×{turns}" if turns > 1 else "")


def create_run(project: Project, run_plan: Plan, *, preset: str, seed: int,
               budget: Budget) -> Run:
    return project.add_run(run_plan.method, params={**run_plan.params, "then": run_plan.then,
                                                    "turns": run_plan.turns,
                                                    "projected_calls": run_plan.projected_calls,
                                                    "uncorrected_seconds":
                                                        run_plan.uncorrected_seconds},
                           seed=seed, preset=preset, budget=budget.to_dict())


def starting_candidate(project: Project, run: Run) -> Candidate:
    """The project's instruction with its default demonstrations, drawn with the run's seed."""
    import random

    settings = project.settings
    demo_ids: Sequence[int] = ()
    if "{demos}" in settings.template:
        train = [e.id for e in project.examples("train")]
        demo_ids = sorted(random.Random(run.seed).sample(train, min(DEFAULT_DEMOS, len(train))))
    instruction = settings.instruction or "Answer the input."
    return project.add_candidate(instruction, demo_ids, run_id=run.id, operation="start")


def execute(project: Project, run_id: int, task_backend: Backend, optimizer_backend: Backend,
            *, control: RunControl | None = None, listener: Listener | None = None
            ) -> RunOutcome:
    """Run (or resume) a run to its end, or until it is paused or cancelled."""
    run = project.run(run_id)
    if run.status not in RESUMABLE:
        raise ProjectError(f"Run {run_id} is {run.status}; only unfinished runs can resume.")
    method = method_named(run.method)
    params = {k: v for k, v in run.params.items() if k not in RUN_FIELDS}
    then = run.params.get("then")
    turns = int(run.params.get("turns") or 1)
    project.update_run(run_id, status="running", started=now(), error=None)
    start = starting_candidate(project, run)
    ctx = RunContext(project, run, task_backend, optimizer_backend,
                     budget=Budget.from_dict(run.budget), control=control, listener=listener,
                     start=start, projected_calls=int(run.params.get("projected_calls", 0)))
    ctx.emit(RunStarted(run_id, run.method, ctx.projected_calls, 0.0))
    status = "finished"
    try:
        try:
            _search(ctx, method, params, then, turns, run.preset or "quick")
        except BudgetExhausted as spent:
            ctx.log(f"Stopped searching: {spent}. Choosing the best prompt found so far.")
        best, dev_score, test_score, baseline = _finish(ctx)
    except Stopped as stop:
        status = stop.reason
        best, dev_score, test_score, baseline = None, None, None, None
    except Exception as exc:
        ctx.save_progress(status="failed", finished=now(),
                          error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.save_progress(status=status, finished=now(),
                      best_candidate_id=best.id if best else None)
    record = project.run(run_id)
    ctx.emit(RunFinished(run_id, status, best.id if best else None, dev_score, test_score,
                         baseline))
    return RunOutcome(run_id, status, best, dev_score, test_score, baseline,
                      record.llm_calls, record.tokens, record.seconds,
                      record.rejected_candidates, ctx.calls)


def _search(ctx: RunContext, method: Method, params: dict, then: str | None, turns: int,
            preset: str) -> None:
    """The method, then its follow-up (at the run's preset), `turns` times over."""
    follow = method_named(then) if then else None
    for turn in range(1, turns + 1):
        if turn > 1:
            _next_turn(ctx, turn, turns)
        method.optimize(ctx, params)
        if turn > 1 and ctx.finalists:
            # The pair carried over competes with the method's new finalists.
            ctx.finalists = list({c.id: c for c in [*ctx.finalists, ctx.base]}.values())
        if follow is not None:
            ctx.log(f"Now searching demonstrations for the best instruction ({then}).")
            ctx.steps_before = ctx.step
            follow.optimize(ctx, resolve_params(follow, preset, None))


def _next_turn(ctx: RunContext, turn: int, turns: int) -> None:
    """Start the method again from the best pair the follow-up found (its first finalist,
    else the start), with its steps counted on from the last turn's."""
    base = ctx.finalists[0] if ctx.finalists else ctx.start
    ctx.log(f"Turn {turn} of {turns}: searching instructions again, now with the "
            f"{len(base.demo_ids)} demonstrations chosen so far.")
    ctx.set_base(base)
    ctx.finalists = []
    ctx.steps_before = ctx.step


def _finish(ctx: RunContext) -> tuple[Candidate, float, float | None, float | None]:
    """Score the finalists on dev, pick the best, and report it and the start on test."""
    ctx.budget = Budget()  # choosing and reporting are not part of the search budget
    pool = ctx.finalists or _top_by_train(ctx)
    pool = list({c.id: c for c in [*pool, ctx.start]}.values())
    ctx.log(f"Choosing among {len(pool)} finalists on {len(ctx.dev)} dev examples.")
    if ctx.dev:
        dev = {c.id: ctx.score(c, ctx.dev, "dev") for c in pool}
        best = max(pool, key=lambda c: (dev[c.id], c.id == ctx.start.id,
                                        ctx.train_score(c), -c.id))
        # A change has to earn its place: on a small dev set, a candidate that wins on a
        # few examples by chance would often lose on test (measured: the methods' means
        # fell below the start's on low-scoring tasks). The papers pick the best outright.
        p_value = sign_test(ctx.scores[best.id].per_example["dev"],
                            ctx.scores[ctx.start.id].per_example["dev"])
        if best.id != ctx.start.id and p_value > REPLACE_START_P:
            ctx.log(f"The best candidate scored {dev[best.id]:.2f} on dev against the "
                    f"starting prompt's {dev[ctx.start.id]:.2f}, too close to be sure "
                    f"(sign test p = {p_value:.2f}); keeping the starting prompt.")
            best = ctx.start
        dev_score = dev[best.id]
    else:
        best = max(pool, key=lambda c: (ctx.train_score(c), -c.id))
        dev_score = None
    test_score = baseline = None
    if ctx.test:
        test_score = ctx.score(best, ctx.test, "test")
        baseline = ctx.score(ctx.start, ctx.test, "test")
    return best, dev_score, test_score, baseline


def sign_test(candidate: dict[int, float], start: dict[int, float]) -> float:
    """One-sided p-value that `candidate` beats `start`, from the examples (scored by
    both) on which one did better than the other; ties carry no evidence."""
    shared = candidate.keys() & start.keys()
    wins = sum(candidate[i] > start[i] for i in shared)
    losses = sum(candidate[i] < start[i] for i in shared)
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def _top_by_train(ctx: RunContext) -> list[Candidate]:
    scored = [c for c in ctx.project.candidates(ctx.run.id) if c.id in ctx.scores]
    scored.sort(key=lambda c: (-ctx.train_score(c), c.id))
    return scored[:FINALISTS]


def mark_interrupted(project: Project) -> list[int]:
    """Runs left 'running' by a crash or a kill become 'paused', ready to resume."""
    stale = [r.id for r in project.runs() if r.status == "running"]
    for run_id in stale:
        project.update_run(run_id, status="paused")
    return stale

