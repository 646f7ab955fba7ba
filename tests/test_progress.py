"""The progress of a run counts what its calls cost: one optimizer call, which reads a long
meta-prompt and writes a long reply, moves the bar as far as several task answers."""

from __future__ import annotations

from itertools import pairwise

from optimize_support import (
    ScriptedModel,
    letters_optimizer,
    letters_project,
    letters_task,
    start_run,
)

from promptstudio.optimize import runner
from promptstudio.optimize.events import Progress


def test_an_optimizer_call_moves_the_bar_further_than_a_task_answer(workspace):
    project = letters_project(workspace)
    run = start_run(project, "protegi", overrides={"rounds": 2})
    assert run.params["optimizer_weight"] == runner.OPTIMIZER_WEIGHT
    assert run.params["projected_optimizer_calls"] > 0
    seen: list[Progress] = []
    model = ScriptedModel(letters_task, letters_optimizer)
    outcome = runner.execute(project, run.id, model, model,
                             listener=lambda e: seen.append(e) if isinstance(e, Progress)
                             else None)
    assert outcome.status == "finished"
    steps = list(pairwise(seen))
    moved = [(b.fraction - a.fraction) / (b.calls - a.calls) for a, b in steps
             if b.calls > a.calls]
    assert max(moved) >= runner.OPTIMIZER_WEIGHT * min(moved) * 0.99
    assert all(0.0 <= p.fraction <= 1.0 for p in seen)
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
