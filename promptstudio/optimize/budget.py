"""A run's budget: the most model calls, tokens or minutes a run may spend.

The limits hold for the whole run: the search stops early enough to leave what choosing
and reporting the best prompt needs (`RunContext.final_calls`).

Calls and tokens are counted logically: an answer served from the cache or the database
counts as if it had been asked again. A resumed run therefore spends its budget exactly as
the uninterrupted run would have, and stops at the same place. Minutes are wall-clock time,
counted on from where a paused run stopped (every way a run stops saves its time first);
time is the one limit a resumed run cannot spend exactly as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

LIMITS = {
    "max_calls": ("the most model calls for the whole run: choosing the best prompt and "
                  "scoring it on test are inside the limit, and answers found in the "
                  "project's store count as calls, so a resumed run stops where it would "
                  "have; a batch that would pass it is not asked"),
    "max_tokens": ("the most tokens (prompt and answer) for the whole run, counted the same "
                   "way; what choosing the best prompt will need is kept back at the run's "
                   "mean tokens per call"),
    "max_minutes": ("the most minutes for the whole run, counted on across pauses: the "
                    "search stops when the time spent, plus the time choosing the best "
                    "prompt is expected to take, reaches it"),
}
"""What each limit covers, in the words `optimize --help` and the Run page use."""


class BudgetExhausted(Exception):
    """Raised inside a method when the search budget is spent; the run then finishes."""


@dataclass(frozen=True)
class Budget:
    max_calls: int | None = None
    max_tokens: int | None = None
    max_minutes: float | None = None

    def exceeded(self, calls: int, tokens: int, seconds: float) -> str | None:
        """Why the budget is spent, in words, or None while it is not."""
        if self.max_calls is not None and calls >= self.max_calls:
            return f"the budget of {self.max_calls} model calls is spent"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"the budget of {self.max_tokens} tokens is spent"
        if self.max_minutes is not None and seconds >= self.max_minutes * 60:
            return f"the time budget of {self.max_minutes:g} minutes is spent"
        return None

    def too_many(self, calls: int) -> bool:
        """Whether that many calls in all would pass the limit on calls."""
        return self.max_calls is not None and calls > self.max_calls

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict | None) -> Budget:
        data = data or {}
        return cls(data.get("max_calls"), data.get("max_tokens"), data.get("max_minutes"))
