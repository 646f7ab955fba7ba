"""What a run tells the outside world as it goes: the CLI prints these, the GUI plots them.

Events are plain frozen dataclasses; a listener is any callable taking one. A resumed run
replays its history quickly (from the database and the call cache), so listeners see the
same events as during the original run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    run_id: int


@dataclass(frozen=True)
class RunStarted(Event):
    method: str
    projected_calls: int
    projected_seconds: float


@dataclass(frozen=True)
class StepStarted(Event):
    step: int
    steps: int
    title: str


@dataclass(frozen=True)
class CandidateCreated(Event):
    candidate_id: int
    instruction: str
    operation: str
    parent_ids: tuple[int, ...]
    step: int


@dataclass(frozen=True)
class CandidateRejected(Event):
    text: str
    reason: str
    rule: str = ""
    """Which rule set it aside: "empty", or one of the readability gate's (`gate.RULES`)."""


@dataclass(frozen=True)
class CandidateScored(Event):
    candidate_id: int
    split: str
    score: float
    n: int
    step: int


@dataclass(frozen=True)
class BestChanged(Event):
    candidate_id: int
    instruction: str
    score: float
    split: str


@dataclass(frozen=True)
class Progress(Event):
    calls: int
    projected_calls: int
    seconds: float
    eta_seconds: float | None
    fresh_calls: int
    tokens: int
    work_done: float = 0.0
    work_total: float = 0.0
    """Calls weighted by what they cost: an optimizer call that reads a long meta-prompt and
    writes a long reply counts as several task answers (`runner.Plan.optimizer_weight`)."""

    @property
    def fraction(self) -> float:
        """How much of the run is done, 0 to 1, by the weighted count when there is one."""
        if self.work_total > 0:
            return min(1.0, self.work_done / self.work_total)
        return min(1.0, self.calls / self.projected_calls) if self.projected_calls else 0.0


@dataclass(frozen=True)
class Message(Event):
    """A line for the run's log, in plain words."""

    text: str


@dataclass(frozen=True)
class RunFinished(Event):
    status: str
    best_candidate_id: int | None
    dev_score: float | None
    test_score: float | None
    baseline_test_score: float | None
    reason: str = ""
    """Why the best prompt is the one chosen, in words (`selection.Choice.reason`)."""


Listener = Callable[[Event], None]
