"""The time a run is said to take before it starts: the machine's rates, the optimizer's
longer calls, and the correction learnt from the project's finished runs."""

from __future__ import annotations

import pytest
from optimize_support import letters_project
from scripted import ScriptedBackend

from promptstudio.llm.throughput import Throughput
from promptstudio.optimize import estimate, runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.estimate import CallCost

RATES = Throughput("m", 2, prompt={64: 150.0, 256: 300.0}, generation={1: 40.0, 16: 120.0})


def finished_run(project, method: str, actual_seconds_per_call: float, calls: int = 100,
                 status: str = "finished"):
    """A run that was estimated at 1 s per call and really took `actual_seconds_per_call`."""
    plan = runner.plan(project, method, cost=CallCost(1.0, 1.0))
    run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    project.update_run(run.id, status=status, llm_calls=calls,
                       seconds=calls * actual_seconds_per_call)
    return run


def test_an_optimizer_call_costs_more_than_a_task_answer(workspace):
    cost = estimate.call_cost(letters_project(workspace), RATES)
    assert 0 < cost.task < cost.optimizer
    assert cost.correction == 1.0


def test_longer_examples_cost_more_per_answer(workspace):
    short = estimate.call_cost(letters_project(workspace), RATES)
    long_rows = letters_project(workspace, name="long rows")
    for example in long_rows.examples():
        long_rows.update_example(example.id, input=example.input * 20)
    assert estimate.call_cost(long_rows, RATES).task > short.task


def test_the_plan_counts_optimizer_calls_at_their_own_cost(workspace):
    project = letters_project(workspace)
    task_only = runner.plan(project, "ape", cost=CallCost(1.0, 1.0))
    with_writing = runner.plan(project, "ape", cost=CallCost(1.0, 10.0))
    written = with_writing.projected_seconds - task_only.projected_seconds
    params = task_only.params
    assert written == pytest.approx(9 * (params["subsamples"] * params["per_subsample"]
                                         + params["mc_rounds"] * params["mc_per_round"]))
    assert runner.plan(project, "demos", cost=CallCost(1.0, 10.0)).projected_seconds == (
        pytest.approx(runner.plan(project, "demos").projected_calls))


def test_without_a_measured_speed_no_time_is_promised(workspace):
    plan = runner.plan(letters_project(workspace), "opro")
    assert plan.projected_seconds is None and "minutes" not in plan.describe()


def test_finished_runs_that_took_longer_raise_the_next_estimate(workspace):
    project = letters_project(workspace)
    assert estimate.correction(project) == 1.0
    finished_run(project, "ape", 2.0)
    finished_run(project, "opro", 3.0)
    finished_run(project, "demos", 2.5)
    finished_run(project, "pe2", 50.0, status="paused")  # unfinished runs do not count
    assert estimate.correction(project) == pytest.approx(2.5)
    assert estimate.call_cost(project, RATES).correction == pytest.approx(2.5)

    cost = estimate.call_cost(project, RATES)
    plan = runner.plan(project, "ape", cost=cost)
    assert plan.projected_seconds == pytest.approx(2.5 * plan.uncorrected_seconds)


def test_the_correction_is_kept_within_bounds_and_uses_recent_runs(workspace):
    project = letters_project(workspace)
    finished_run(project, "ape", 100.0)
    assert estimate.correction(project) == estimate.CORRECTION_RANGE[1]
    for _ in range(estimate.HISTORY):
        finished_run(project, "ape", 0.5)
    assert estimate.correction(project) == pytest.approx(0.5)


def test_the_method_never_sees_the_runs_own_fields(workspace):
    project = letters_project(workspace)
    run = finished_run(project, "demos", 1.0, status="pending")
    assert run.params["uncorrected_seconds"] > 0
    model = ScriptedBackend(lambda prompt: " a\n")
    assert runner.execute(project, run.id, model, model).status == "finished"


@pytest.mark.model
def test_the_bundled_models_measured_speed_gives_a_sensible_estimate(workspace, local_backend):
    rates = local_backend.throughput()
    assert all(rate > 0 for rate in [*rates.prompt.values(), *rates.generation.values()])
    cost = estimate.call_cost(letters_project(workspace), rates)
    assert 0 < cost.task < cost.optimizer < 60
