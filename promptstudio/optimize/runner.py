"""The run engine: plan a run, execute or resume it, choose and report its best prompt.

A run optimizes on **train**, chooses on **dev** and reports on **test**, which is never
used to choose anything. The finalist the search scored best must beat the starting prompt
on the dev rows no part of the search has seen: all of dev, or two thirds of it when the
search ranked on the other third, as ProTeGi does (`selection`). The starting prompt (the
project's instruction with k = 3 demonstrations drawn from train with the run's seed) is
scored on test too, so the gain and the train-test gap are visible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from promptstudio.llm.base import Backend, model_name
from promptstudio.optimize import writing
from promptstudio.optimize.budget import Budget, BudgetExhausted
from promptstudio.optimize.context import RunContext, RunControl, Scores, Stopped
from promptstudio.optimize.estimate import CallCost
from promptstudio.optimize.events import Listener, RunFinished, RunStarted
from promptstudio.optimize.layouts import RECORDED
from promptstudio.optimize.method import DEFAULT_DEMOS, FINALISTS, Method, Sizes, method_named
from promptstudio.optimize.selection import (
    FOUND,
    KEPT_START,
    MIN_CONFIRM_ROWS,
    NEW_DEMOS,
    Choice,
    Duel,
    checked_rows,
    duel,
    examples_changed,
    examples_meta,
    examples_phrase,
    found_reason,
    new_demos_reason,
    no_dev_reason,
    nothing_found_reason,
    unconfirmed_reason,
)
from promptstudio.store.errors import is_disk_full, is_write_failure
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import Candidate, Run, Scoring, now

OPTIMIZER_WEIGHT = 10.0
"""An optimizer call in task answers when the machine's rates are not known (a server):
about what `estimate.call_cost` measures for the bundled model on 2 cores."""
MIN_DEV_ROWS = 8
"""Fewer dev rows leave too few to confirm a winner on (`selection`)."""
PRESETS = ("quick", "standard", "thorough")
RESUMABLE = ("pending", "running", "paused", "failed")
RUN_FIELDS = ("then", "turns", "projected_calls", "uncorrected_seconds", "gate_max_words",
              "projected_optimizer_calls", "optimizer_weight", "writer")
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
    final_calls: int = 0
    """How many of the projected calls choosing and reporting the best prompt may take."""
    gate_max_words: int | None = None
    """The longest instruction the readability gate lets a model write; None: 40."""
    optimizer_calls: int = 0
    """How many of the projected calls ask the optimizer model to write."""
    optimizer_weight: float = OPTIMIZER_WEIGHT
    """What one optimizer call costs in task answers, for the progress bar: measured when
    the plan knows the machine's rates, else `OPTIMIZER_WEIGHT`."""

    writer: str = writing.PAPER
    """How the optimizer model is asked to write (`writing`): decided by the model when the
    run is planned, and kept with the run."""

    limited_by: str | None = None
    """The user's limit the plan was cut to (`within`), in words; None when none is."""
    unlimited_calls: int = 0
    """The calls the run would make without the limit, when it is cut."""

    def within(self, budget: Budget) -> Plan:
        """This plan as the user's limits will end it: no more calls or time than they
        allow (the search stops early, and the best prompt is still chosen and tested)."""
        calls, seconds, limits = self.projected_calls, self.projected_seconds, []
        if budget.max_calls is not None and budget.max_calls < calls:
            if seconds is not None:
                seconds *= budget.max_calls / calls
            calls = budget.max_calls
            limits.append(f"{budget.max_calls:,} model calls")
        if (budget.max_minutes is not None and seconds is not None
                and budget.max_minutes * 60 < seconds):
            calls = min(calls, max(1, round(calls * budget.max_minutes * 60 / seconds)))
            seconds = budget.max_minutes * 60
            limits.append(f"{budget.max_minutes:g} minutes")
        if not limits:
            return self
        return replace(self, projected_calls=calls, projected_seconds=seconds,
                       limited_by=" and ".join(limits),
                       unlimited_calls=self.unlimited_calls or self.projected_calls)

    def describe(self) -> str:
        text = f"about {self.projected_calls} model calls"
        if self.limited_by:
            text += (f" (your limit of {self.limited_by} ends the search early; without it, "
                     f"about {self.unlimited_calls})")
        elif self.final_calls:
            text += (f" (up to {self.final_calls} of them to choose the best prompt and score "
                     "it on test)")
        if self.projected_seconds is not None:
            minutes = self.projected_seconds / 60
            text += f", about {minutes:.0f} minutes" if minutes >= 1.5 else (
                f", about {self.projected_seconds:.0f} seconds")
        if self.writing_note:
            text += f"; {self.writing_note}"
        return text

    @property
    def writing_note(self) -> str:
        """How the optimizer model will be asked to write, in words; "" when it writes
        nothing (demonstration search)."""
        if not self.optimizer_calls:
            return ""
        return f"the optimizer model writes with {writing.DESCRIPTIONS[self.writer]}"


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
    choice: Choice | None = None
    """How the best prompt was chosen, and why; None when the run did not finish."""

    def as_json(self, project: Project) -> dict:
        best_demos = []
        if self.best is not None:
            best_demos = [{"input": text, "output": output}
                          for text, output in self.best.demos]
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
            "kept": self.choice.kind if self.choice else None,
            "why": self.choice.reason if self.choice else None,
        }


def sizes(project: Project, writer: str = writing.PAPER) -> Sizes:
    counts = project.split_counts()
    return Sizes(counts["train"], counts["dev"], counts["test"], writer)


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
         cost: CallCost | None = None, gate_max_words: int | None = None,
         writer: str | None = None) -> Plan:
    """The settings a run will use and what it will cost, before it starts. Without a
    `cost` (a server's speed is not measured) the time is left unsaid. `gate_max_words`:
    the longest instruction the readability gate lets a model write (`gate.MAX_WORDS`).
    `writer`: the meta-prompts to write with (`writing.WRITERS`); by default, those that
    suit the project's optimizer model (`writing.writer_for`)."""
    if gate_max_words is not None and gate_max_words < 1:
        raise ProjectError("The longest instruction must be at least one word.")
    if writer is None:
        writer = writing.writer_for(project.settings.optimizer_model)
    if writer not in writing.WRITERS:
        raise ProjectError(f"Write with {' or '.join(writing.WRITERS)} meta-prompts, "
                           f"not {writer!r}.")
    method = method_named(method_name)
    params = resolve_params(method, preset, overrides)
    if turns < 1 or (turns > 1 and not then):
        raise ProjectError("Turns alternate a method and a follow-up search: give at "
                           "least 1, and more only with a follow-up (then).")
    if then == method.name:
        raise ProjectError(f"{method.title} cannot follow itself.")
    data = sizes(project, writer)
    calls = method.projected_calls(params, data)
    written = method.projected_optimizer_calls(params, data)
    if then:
        follow = method_named(then)
        follow_params = resolve_params(follow, preset, None)
        after = replace(data, follows=True)
        calls += follow.projected_calls(follow_params, after)
        written += follow.projected_optimizer_calls(follow_params, after)
    calls, written = calls * turns, written * turns
    # The readability gate scores each written candidate's likelihood once, and the start's.
    calls += written + (1 if written else 0)
    final = final_calls(data)
    calls += final
    if cost is None:
        return Plan(method.name, params, then, turns, calls, None, final_calls=final,
                    gate_max_words=gate_max_words, optimizer_calls=written, writer=writer)
    weight = cost.optimizer / cost.task if cost.task > 0 else OPTIMIZER_WEIGHT
    return Plan(method.name, params, then, turns, calls, cost.seconds(calls, written),
                cost.uncorrected(calls, written), final_calls=final,
                gate_max_words=gate_max_words, optimizer_calls=written,
                optimizer_weight=max(1.0, weight), writer=writer)


def preflight(project: Project, method: str, then: str | None = None
              ) -> tuple[list[str], list[str]]:
    """Whether a run may start: (what prevents it, what the user should know first), in
    plain words. The Run page shows both; `optimize` refuses on the first and prints the
    second."""
    from promptstudio.optimize.proposal import writer_warning
    from promptstudio.templates import TemplateError

    blocking, warnings = [], []
    settings = project.settings
    try:
        settings.prompt_template.check()
    except TemplateError as exc:
        blocking.append(f"{exc} Change the template on the Task & data page.")
    counts = project.split_counts()
    if counts["train"] == 0:
        blocking.append("The project has no training examples, and every method learns "
                        "from them. Add examples on the Task & data page (30 or more work "
                        "well).")
    elif counts["dev"] < MIN_DEV_ROWS:
        warnings.append(dev_warning(counts))
    if counts["train"] and counts["test"] == 0:
        warnings.append("There are no test examples, so the run cannot show how the best "
                        "prompt does on examples it never saw.")
    warning = writer_warning(method, settings.optimizer_model)
    if warning:
        warnings.append(warning)
    return blocking, warnings


def dev_warning(counts: dict[str, int]) -> str:
    """What a run with too few dev rows cannot do, in words."""
    return (f"There are {counts['dev'] or 'no'} dev examples: a run checks a new prompt "
            "against yours on dev examples the search did not use, and with fewer than "
            f"{MIN_DEV_ROWS} it cannot tell a real gain from luck, so your prompt will be "
            "kept. Move some examples to dev on the Task & data page (20 or more work well).")


def overlap_question(project: Project) -> str:
    """Why a run should not start before the user confirms, when a training input is also
    a dev or test input: the search could show it as a demonstration, and a prompt would be
    chosen or reported on a row it holds the answer to. "" when there is none."""
    both = sum(1 for splits in project.split_overlaps().values() if "train" in splits)
    if not both:
        return ""
    return (f"{both} training input{'s are' if both != 1 else ' is'} also in dev or test, "
            "so the best prompt could be chosen or tested on rows it shows as examples, "
            "and look better than it is (see them with: promptstudio check).")


def final_calls(data: Sizes) -> int:
    """The most task-model calls choosing and reporting the best prompt can take: four
    prompts on the dev rows the search never used (the pick, the start, the user's
    instruction with the new demonstrations, and those with no instruction), which are all
    of dev unless the search ranked on a third of it (then the pick and the start are also
    scored on that third: fewer calls in all); the pick and the start on test."""
    return 4 * data.dev + 2 * data.test


def run_label(method: str, then: str | None, turns: int = 1) -> str:
    """A run's method in a word, for lists and reports: `ape`, `ape+demos`, `ape+demos×2`."""
    if not then:
        return method
    return f"{method}+{then}" + (f"×{turns}" if turns > 1 else "")


def create_run(project: Project, run_plan: Plan, *, preset: str, seed: int,
               budget: Budget) -> Run:
    """A new run of the plan; refused when its call limit leaves nothing for the search."""
    problem = limit_problem(budget, final_calls(sizes(project)))
    if problem:
        raise ProjectError(problem)
    return project.add_run(run_plan.method, params={**run_plan.params, "then": run_plan.then,
                                                    "turns": run_plan.turns,
                                                    "projected_calls": run_plan.projected_calls,
                                                    "uncorrected_seconds":
                                                        run_plan.uncorrected_seconds,
                                                    "gate_max_words":
                                                        run_plan.gate_max_words,
                                                    "projected_optimizer_calls":
                                                        run_plan.optimizer_calls,
                                                    "optimizer_weight":
                                                        run_plan.optimizer_weight,
                                                    "writer": run_plan.writer},
                           seed=seed, preset=preset, budget=budget.to_dict())


def new_run(project: Project, method: str, *, preset: str = "quick",
            overrides: dict | None = None, then: str | None = None, turns: int = 1,
            seed: int = 0, budget: Budget | None = None, cost: CallCost | None = None,
            gate_max_words: int | None = None, writer: str | None = None
            ) -> tuple[Plan, Run]:
    """Plan a run within the user's limits and create it, ready to `execute`: the one way
    the Run page and `optimize` start a run. `cost`: the machine's measured rates, when
    known, for the time estimate."""
    budget = budget or Budget()
    run_plan = plan(project, method, preset=preset, overrides=overrides, then=then,
                    turns=turns, cost=cost, gate_max_words=gate_max_words,
                    writer=writer).within(budget)
    return run_plan, create_run(project, run_plan, preset=preset, seed=seed, budget=budget)


def limit_problem(budget: Budget, needed: int) -> str:
    """Why a call limit cannot hold a run whose final choice takes up to `needed` calls;
    "" when it can."""
    if budget.max_calls is None or budget.max_calls > needed:
        return ""
    return (f"Choosing the best prompt and scoring it on test takes up to {needed} model "
            f"calls with this project's dev and test rows, so a limit of {budget.max_calls} "
            f"leaves nothing to search with. Allow at least {needed + 50} calls, or use "
            "fewer dev and test rows.")


REPRODUCIBLE = ("On this computer and this llama.cpp build it makes the same prompts, with "
                "the same scores; another processor or build may round differently, and "
                "a few answers can change.")
SERVER_NOTE = ("A model behind a server answers as the server batches requests, so the same "
               "seed need not give the same run there (temperature 0 and the seed are sent "
               "all the same).")


def run_again(project: Project, run_id: int) -> Run:
    """A new run with another run's method, settings, limits and seed."""
    run = project.run(run_id)
    return project.add_run(run.method, params=dict(run.params), seed=run.seed,
                           preset=run.preset, budget=dict(run.budget))


def again_note(project: Project, run: Run) -> str:
    """What running `run` again will reproduce, and what has changed since that it
    cannot."""
    changed = []
    settings = project.settings
    if settings.task_model != run.task_model:
        changed.append("the task model")
    if settings.optimizer_model != run.optimizer_model:
        changed.append("the optimizer model")
    start = run_start(project, run.id)
    if start is not None and start.instruction != (settings.instruction or start.instruction):
        changed.append("your instruction")
    if run.scoring is not None and run.scoring != project.scoring().key:
        changed.append("how prompts are scored (the template, metric or labels)")
    note = f"The same settings and seed ({run.seed}) as run {run.id}. "
    if any(kind == "server" for kind in (settings.task_model.kind,
                                         settings.optimizer_model.kind)):
        return note + SERVER_NOTE
    if changed:
        return note + (f"Since then {' and '.join(changed)} changed, so the new run can "
                       "differ.")
    return note + REPRODUCIBLE


def run_scoring(project: Project, run: Run) -> Scoring:
    """The scoring a run scores under: the one it was created with (`Project.add_run`).
    A run from before runs kept theirs is given the project's current one, once."""
    scoring = project.scoring_named(run.scoring)
    if scoring is None:
        scoring = project.scoring()
        project.update_run(run.id, scoring=project.register_scoring(scoring))
    return scoring


def check_run_model(project: Project, run: Run, task_backend: Backend) -> None:
    """A run is continued on the task model it started on, or not at all: its stored
    scores are of that model, and the rest of the search must be too."""
    model = task_backend.model_id
    if run.task_model_id is None:
        project.update_run(run.id, task_model_id=model)
    elif run.task_model_id != model:
        raise ProjectError(
            f"Run {run.id} was started on {model_name(run.task_model_id)} and its scores are "
            f"of that model, so it cannot go on with {model_name(model)}. Put the model it "
            "started on back where it was, or start a new run.")


def run_start(project: Project, run_id: int) -> Candidate | None:
    """The starting prompt a run made for itself, once it has one."""
    return next((c for c in project.candidates(run_id) if c.operation == "start"), None)


def starting_candidate(project: Project, run: Run, scoring: Scoring) -> Candidate:
    """The project's instruction with its default demonstrations (when the run's template
    shows any), drawn with the run's seed; once a run has its start, the run keeps it,
    whatever the project's instruction has become since."""
    import random

    own = run_start(project, run.id)
    if own is not None:
        return own
    settings = project.settings
    demo_ids: Sequence[int] = ()
    if "{demos}" in scoring.template:
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
    scoring = run_scoring(project, run)
    check_run_model(project, run, task_backend)
    try:
        project.update_run(run_id, status="running", started=now(), error=None)
        run = project.run(run_id)
        start = starting_candidate(project, run, scoring)
        ctx = RunContext(project, run, task_backend, optimizer_backend,
                         budget=Budget.from_dict(run.budget), control=control,
                         listener=listener, start=start,
                         projected_calls=int(run.params.get("projected_calls", 0)),
                         projected_optimizer_calls=int(
                             run.params.get("projected_optimizer_calls") or 0),
                         optimizer_weight=float(run.params.get("optimizer_weight")
                                                or OPTIMIZER_WEIGHT),
                         final_calls=final_calls(sizes(project)), scoring=scoring)
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        with contextlib.suppress(Exception):  # if even this fails, opening it says paused
            project.update_run(run_id, status="paused")
        raise disk_full(project, run_id, exc) from exc
    ctx.emit(RunStarted(run_id, run.method, ctx.projected_calls, 0.0))
    if "server" in (task_backend.kind, optimizer_backend.kind):
        ctx.log(SERVER_NOTE)
    status = "finished"
    try:
        try:
            _search(ctx, method, params, then, turns, run.preset or "quick")
        except BudgetExhausted as spent:
            ctx.log(f"Stopped searching: {spent}. Choosing the best prompt found so far.")
        best, choice = _finish(ctx)
    except Stopped as stop:
        status = stop.reason
        best, choice = None, None
    except KeyboardInterrupt:
        # Ctrl-C on the command line: a pause, with what was spent so far kept, so that
        # a limit on calls or minutes goes on counting from there.
        _save_on_the_way_out(ctx, status="paused")
        raise
    except Exception as exc:
        if is_write_failure(exc):
            # Nothing is lost and nothing is wrong with the run: it pauses, to go on once
            # the disk takes writes again.
            _save_on_the_way_out(ctx, status="paused")
            raise disk_full(project, run_id, exc) from exc
        _save_on_the_way_out(ctx, status="failed", finished=now(),
                             error=f"{type(exc).__name__}: {exc}")
        raise
    ctx.tell_notices()
    ctx.save_progress(status=status, finished=now(),
                      best_candidate_id=best.id if best else None,
                      choice=choice.to_json() if choice else None)
    record = project.run(run_id)
    dev_score = choice.score(best.id, "dev") if choice and best else None
    test_score = choice.score(best.id, "test") if choice and best else None
    baseline = choice.score(ctx.start.id, "test") if choice else None
    ctx.emit(RunFinished(run_id, status, best.id if best else None, dev_score, test_score,
                         baseline, choice.reason if choice else ""))
    return RunOutcome(run_id, status, best, dev_score, test_score, baseline,
                      record.llm_calls, record.tokens, record.seconds,
                      record.rejected_candidates, ctx.calls, choice)


class DiskFull(ProjectError):
    """A run stopped because the disk is full or refused a write; it is paused, and its
    message says how to go on."""


def disk_full(project: Project, run_id: int, exc: BaseException) -> DiskFull:
    """What a run that could not write says: what happened, that its work is kept, and
    how to go on."""
    what = ("The disk is full" if is_disk_full(exc)
            else f"The project file could not be written ({exc})")
    return DiskFull(
        f"{what}, so run {run_id} could not save more. It is paused, and everything it "
        "finished is kept. Free some space, then continue it (Resume on the Run page, or: "
        f"promptstudio resume {project.name}:{run_id}).")


def discard_if_unstarted(project: Project, run_id: int) -> None:
    """Remove a run that never started (its models could not be prepared), so that no
    `pending` run is left behind."""
    run = project.run(run_id)
    if run.status == "pending" and not project.candidates(run_id):
        with project.transaction():
            project.conn.execute("DELETE FROM run WHERE id = ?", (run_id,))


def _save_on_the_way_out(ctx: RunContext, **fields: object) -> None:
    """Save the run's counters and status as it stops on an error or an interrupt; if even
    that fails (a full disk), the error that stopped the run is the one to report, and
    the run is found `running` and paused at the next start (`mark_interrupted`)."""
    with contextlib.suppress(Exception):
        ctx.save_progress(**fields)


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


def _finish(ctx: RunContext) -> tuple[Candidate, Choice]:
    """Choose the run's best prompt on dev (`choose`) and report it and the start on test.
    This spends what the search held back of the budget (`RunContext.release_reserve`)."""
    ctx.release_reserve()
    pool = ctx.finalists or _top_by_train(ctx)
    pool = list({c.id: c for c in [*pool, ctx.start]}.values())
    best, choice = choose(ctx, pool)
    ctx.log(choice.reason)
    if ctx.test:
        for candidate in {best.id: best, ctx.start.id: ctx.start}.values():
            choice.record(candidate.id, "test", ctx.score(candidate, ctx.test, "test"))
    return best, choice


def choose(ctx: RunContext, pool: Sequence[Candidate]) -> tuple[Candidate, Choice]:
    """The finalist the search scored best, if it beats the start on every dev row the
    search never used (or on all of dev, for a pick that keeps the user's instruction after
    a search that ranked only instructions there); the user's instruction with its
    demonstrations instead, if those alone made the gain; else the start. Ties go to the
    start at every step."""
    start = ctx.start
    searched, unseen = ctx.dev_parts()
    dev_rows = [*searched, *unseen]
    checked_on = checked_rows(len(unseen))
    choice = Choice(start.id, start.id, KEPT_START, "", ctx.task.model_id, len(searched),
                    len(unseen))
    ctx.log(f"Choosing among {len(pool)} finalists: the search's best is checked against "
            f"your prompt on {checked_on}.")

    def measure(candidate: Candidate, part: str) -> dict[int, float]:
        """Score a candidate on the rows the pick is checked on (`checked_on`): its mean
        goes into the choice under `part`, its per-row scores are returned for a paired
        comparison."""
        choice.record(candidate.id, part, ctx.score(candidate, unseen, "dev"))
        known = ctx.scores[candidate.id].per_example["dev"]
        return {row.id: known[row.id] for row in unseen}

    def whole_dev(candidate: Candidate) -> float:
        """The candidate's mean on all of dev, scoring only the rows it lacks."""
        known = ctx.scores.get(candidate.id, Scores()).per_example.get("dev", {})
        if missing := [row for row in dev_rows if row.id not in known]:
            ctx.score(candidate, missing, "dev")
            known = ctx.scores[candidate.id].per_example["dev"]
        choice.record(candidate.id, "dev",
                      sum(known[row.id] for row in dev_rows) / len(dev_rows))
        return choice.score(candidate.id, "dev")

    def picked(candidate: Candidate, kind: str, check: Duel, words_check: Duel | None,
               bare_check: Duel | None = None, demos_check: Duel | None = None
               ) -> tuple[Candidate, Choice]:
        choice.picked, choice.kind = candidate.id, kind
        candidate_dev, start_dev = whole_dev(candidate), whole_dev(start)
        choice.reason = (new_demos_reason(start_dev, candidate_dev, check, checked_on,
                                          words_check, examples_phrase(candidate, start))
                         if kind == NEW_DEMOS else
                         found_reason(candidate, start, check, checked_on, words_check,
                                      bare_check, demos_check))
        return candidate, choice

    def found_words(candidate: Candidate, scores: dict[int, float], check: Duel,
                    words_check: Duel | None, demos_check: Duel | None = None
                    ) -> tuple[Candidate, Choice]:
        """Pick a written instruction, after scoring its prompt with the instruction left
        out (the same template, layout and examples) against it on the same rows."""
        written_as = {key: candidate.meta[key] for key in RECORDED if key in candidate.meta}
        bare = ctx.add_candidate("", operation="bare", demo_ids=candidate.demo_ids,
                                 parents=[candidate], clean=False, meta=written_as or None)
        choice.bare = bare.id
        bare_check = duel(scores, measure(bare, "confirm"))
        return picked(candidate, FOUND, check, words_check, bare_check, demos_check)

    def kept(reason: str) -> tuple[Candidate, Choice]:
        if searched or unseen:
            whole_dev(start)
        choice.reason = reason
        return start, choice

    if len(unseen) < MIN_CONFIRM_ROWS:
        return kept(no_dev_reason(len(unseen)))
    for candidate in pool:
        mean, rows, _ = ctx.search_evidence(candidate)
        if rows:
            choice.record(candidate.id, "search", mean)
    found = [c for c in pool if c.id != start.id]
    if not found:
        return kept(nothing_found_reason())
    # Ties, and a search that ranks on what is not an accuracy (APE by log-likelihood),
    # go to the method's own order of its finalists.
    best = max(found, key=lambda c: (ctx.search_score(c), -found.index(c)))
    choice.best_found = best.id
    if searched and best.instruction == start.instruction and (
            ctx.ranked_only_instructions_on_dev()):
        unseen = dev_rows
        choice.confirm_rows = len(unseen)
        checked_on = checked_rows(len(unseen), instructions_ranked_on=len(searched))
        ctx.log(f"The search's best keeps your instruction, so it is checked on all "
                f"{len(unseen)} dev rows: the search ranked only instructions on dev.")
    start_scores = measure(start, "confirm")
    best_scores = measure(best, "confirm")
    check = duel(best_scores, start_scores)
    if not check.won:
        return kept(unconfirmed_reason(ctx.search_evidence(best), check, checked_on))
    new_words = best.instruction != start.instruction
    new_demos = examples_changed(best, start)
    if not new_words:
        return picked(best, NEW_DEMOS, check, None)
    if not new_demos:
        return found_words(best, best_scores, check, None)
    own_words = ctx.add_candidate(start.instruction, operation="ablation",
                                  demo_ids=best.demo_ids, parents=[best], clean=False,
                                  meta=examples_meta(best) or start.meta or None)
    choice.ablation = own_words.id
    own_words_scores = measure(own_words, "confirm")
    words_check = duel(best_scores, own_words_scores)
    if words_check.won:
        return found_words(best, best_scores, check, words_check)
    demos_check = duel(own_words_scores, start_scores)
    if demos_check.won:
        return picked(own_words, NEW_DEMOS, demos_check, words_check)
    return found_words(best, best_scores, check, words_check, demos_check)


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

