"""Every method, killed in the middle of a run (SIGKILL, in a child process) and resumed,
ends with the same best prompt, the same reason and the same scores as the run left alone.

The model is scripted, so the two runs can only differ through what the kill lost or the
resume repeated; the real model's kill is tested from the command line
(`test_resume_cli.py`).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal

import pytest
from optimize_support import (
    ScriptedModel,
    letter_model,
    letters_optimizer,
    letters_project,
    start_run,
)
from scripted import meta_prompt_of

from promptstudio.optimize import runner
from promptstudio.optimize.events import CandidateScored, Event
from promptstudio.store.project import Project

RUNS = {
    "ape": {"subsamples": 2, "per_subsample": 3, "mc_rounds": 1, "mc_per_round": 2},
    "protegi": {"rounds": 2},
    "opro": {"steps": 2, "per_step": 4, "train_size": 6},
    "pe2": {"steps": 2, "n": 2, "m": 2},
    "demos": {},
}


task = letter_model(miss=lambda word: "?")
"""Right when asked for the first letter, half right when asked for a letter."""


def optimizer(prompt: str, call: int) -> str:
    """ProTeGi's replies where it asks, and a letter-asking instruction anywhere else. A
    function of the prompt alone, as a model at a fixed seed is: after a kill the answers
    already given come from the cache, so a reply that counted calls would change."""
    if meta_prompt_of(prompt) in ("protegi_gradient", "protegi_edit"):
        return letters_optimizer(prompt, 0)
    number = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 100
    wording = ("Give the first letter of the word" if number % 3 == 0 else
               f"Name a letter of the word, take {number}")
    return f"<START>{wording}.<END>" if "<START>" in prompt[-20:] else f" {wording}."


def model() -> ScriptedModel:
    return ScriptedModel(task, optimizer)


def killed_at(path: str, run_id: int, scored: int) -> None:
    """In a child: run until the `scored`-th score is announced, then die by SIGKILL."""
    project = Project.open(path)
    count = 0

    def listen(event: Event) -> None:
        nonlocal count
        if isinstance(event, CandidateScored):
            count += 1
            if count == scored:
                os.kill(os.getpid(), signal.SIGKILL)

    runner.execute(project, run_id, model(), model(), listener=listen)
    os._exit(3)  # the run ended before the kill: the test says so


@pytest.mark.parametrize("method", sorted(RUNS))
def test_a_killed_run_resumes_to_the_same_end(workspace, method):
    reference_project = letters_project(workspace, name="left-alone", instruction="Answer.")
    reference_run = start_run(reference_project, method, overrides=RUNS[method])
    reference = runner.execute(reference_project, reference_run.id, model(), model())
    assert reference.status == "finished"

    project = letters_project(workspace, name="killed", instruction="Answer.")
    run = start_run(project, method, overrides=RUNS[method])
    child = multiprocessing.get_context("fork").Process(
        target=killed_at, args=(str(project.path), run.id, 6))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL, "the child was killed in the middle of the run"

    project.close()
    reopened = Project.open(project.path)
    assert runner.mark_interrupted(reopened) == [run.id]
    resumed = runner.execute(reopened, run.id, model(), model())
    assert resumed.status == "finished"
    assert resumed.best.instruction == reference.best.instruction
    assert resumed.best.demo_ids == reference.best.demo_ids
    assert resumed.choice.reason == reference.choice.reason
    assert resumed.choice.scores.keys() == reference.choice.scores.keys()
    assert resumed.requested_calls == reference.requested_calls
