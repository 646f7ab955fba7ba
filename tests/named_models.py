"""Scripted models with names of their own, and a small project to score them on.

Evaluations are stored per model name, so comparing two models needs two names; the
conftest's ScriptedBackend has one. This module imports no conftest, so the window's tests
can use it too (their folder's conftest shadows the top-level one's module name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptstudio.dataio import Row
from promptstudio.llm.base import (
    Backend,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
)
from promptstudio.store.records import ProjectSettings

WORDS = "apple banana cherry damson elder fig grape hazel iris juniper".split()


class NamedModel(Backend):
    """Replies come from `reply(prompt)`; the prompts it was asked are kept in `prompts`."""

    kind = "scripted"

    def __init__(self, name: str, reply: Callable[[str], str]) -> None:
        super().__init__()
        self.name = name
        self.reply = reply
        self.prompts: list[str] = []

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
            results.append(Generation(self.reply(prompt), 1, 1, 0.001))
            if on_result is not None:
                on_result(index, results[-1])
        return results

    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        return [ContinuationScore(text, -1.0, -1.0, 1) for text in continuations]


def task_input(prompt: str) -> str:
    """The example's input in a prompt rendered with the default template."""
    return prompt.rsplit("Input: ", 1)[1].split("\n", 1)[0]


def first_letter(prompt: str) -> str:
    return task_input(prompt)[0]


def knows_nothing(prompt: str) -> str:
    return "?"


def letters_project(workspace, instruction: str = "Give the first letter.",
                    name: str = "letters"):
    """First-letter task over ten words: 4 train, 6 dev and 4 test rows."""
    project = workspace.create(ProjectSettings(name=name, instruction=instruction))
    for split, words in (("train", WORDS[:4]), ("dev", WORDS[:6]), ("test", WORDS[6:])):
        project.add_examples([Row(w, w[0], (w[0],), split) for w in words])
    return project
