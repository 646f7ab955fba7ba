"""A test helper that is not a fixture: a scripted model.

It lives here, not in conftest.py, because tests in sub-folders have their own
conftest.py, and `from scripted import ...` would find the wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from promptstudio.llm.base import (
    Backend,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
)
from promptstudio.optimize import meta_prompts


class ScriptedBackend(Backend):
    """A fake model for testing loop logic: replies come from a function of the prompt."""

    kind = "scripted"

    def __init__(self, reply=lambda prompt: "", scores: dict[str, float] | None = None,
                 preferred_batch: int = 1, name: str = "test") -> None:
        super().__init__()
        self.name = name  # evaluations are stored per model: two models need two names
        self.reply = reply
        self.label_scores = scores or {}
        self.preferred_batch = preferred_batch
        self.prompts: list[str] = []
        self.scored: list[tuple[str, tuple[str, ...]]] = []

    @property
    def model_id(self) -> str:
        return f"scripted:{self.name}"

    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None, on_result=None) -> list[Generation]:
        results = []
        for index, prompt in enumerate(prompts):
            if cancel is not None:
                cancel.raise_if_cancelled()
            self.prompts.append(prompt)
            text = self.reply(prompt)
            self.stats.add(len(prompt.split()), len(text.split()), 0.001)
            results.append(Generation(text, len(prompt.split()), len(text.split()), 0.001))
            if on_result is not None:
                on_result(index, results[-1])
        return results

    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        self.scored.append((prompt, tuple(continuations)))
        self.stats.add(len(prompt.split()), 0, 0.001)
        return [ContinuationScore(c, self.label_scores.get(c.strip(), -5.0),
                                  self.label_scores.get(c.strip(), -5.0), 1)
                for c in continuations]


def meta_prompt_of(prompt: str) -> str | None:
    """The meta-prompt `prompt` was filled from, by its fixed text (what lies between its
    slots, up to a blank): scripted optimizer models match on this, not on wording, so
    editing a meta-prompt's text breaks no test. Where one meta-prompt holds another (PE2's
    refinement holds its reasoning), the one that ends the prompt wins. None for a task
    prompt."""
    best, rank = None, (-1, 0)
    for name in meta_prompts.names():
        text = meta_prompts.default(name).partition("{blank}")[0]
        pieces = [p.strip() for p in re.split(r"\{\w+\}", text) if p.strip()]
        if pieces and all(p in prompt for p in pieces):
            ends = prompt.rfind(pieces[-1]) + len(pieces[-1])
            if (ends, sum(map(len, pieces))) > rank:
                best, rank = name, (ends, sum(map(len, pieces)))
    return best


def base_variant(name: str | None) -> bool:
    """Whether a meta-prompt is one a base model continues (`writing.BASE`)."""
    return bool(name) and name.endswith("_base")
