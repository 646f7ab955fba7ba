"""A real run killed with SIGKILL at chosen points inside its batches, resumed each time,
ends exactly as the same run left alone: the same candidates in the same order, the same
pick, reason and scores, the same evaluations and the same stored answers.

APE (the optimizer samples instructions) on the bundled model, two kills: one inside a
call of sampled replies, one inside a batch of training evaluations
(`benchmarks/kill_campaign.py` places them; the same script runs the long campaign for
docs/performance.md, and test_grips.py runs it on GrIPS).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from task_data import data_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from kill_campaign import batches, campaign

pytestmark = pytest.mark.model


def small_letters(workspace, name: str) -> None:
    data_project(workspace, name=name, instruction="Write the first letter of the word.",
                 train=12, dev=6, test=4).close()


# APE's run is killed inside both kinds of batch (sampled instructions, evaluations);
# ProTeGi's kills fell inside the same evaluation batches, and its resume after a kill is
# tested on a scripted model (test_kill_resume), so it is not repeated here: on a slower
# 2-core machine the campaign alone took over a minute.
@pytest.mark.parametrize("method", ["ape"])
def test_a_run_killed_inside_its_batches_ends_as_the_run_left_alone(tmp_path, method,
                                                                   bundled_model):
    # Fewer guesses, a shorter race and rewording: the kills still land in both kinds.
    report = campaign(tmp_path, small_letters, method, "quick", kills=2,
                      settings={"subsamples": 1, "ucb_budget": 32, "mc_per_round": 2})
    sampled, evaluated = batches(tmp_path / "alone" / "campaign.sqlite")

    def inside(pool: list[range]) -> int:
        return sum(any(p in call[:-1] for call in pool) for p in report.kill_points)

    assert report.kills == len(report.kill_points) == 2, report.kill_points
    assert inside(evaluated) == 1, "a kill inside a batch of evaluations"
    assert inside(sampled) == 1, "a kill inside a call of sampled instructions"
    assert report.differences == []
