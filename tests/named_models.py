"""Scripted models with names of their own, and a small project to score them on.

Evaluations are stored per model name, so comparing two models needs two names.
"""

from __future__ import annotations

from collections.abc import Callable

from optimize_support import task_input
from scripted import ScriptedBackend

from promptstudio.dataio import Row
from promptstudio.store.records import ProjectSettings

WORDS = "apple banana cherry damson elder fig grape hazel iris juniper".split()


def NamedModel(name: str, reply: Callable[[str], str]) -> ScriptedBackend:
    """A scripted model with a name of its own."""
    return ScriptedBackend(reply, name=name)


def first_letter(prompt: str) -> str:
    return task_input(prompt)[:1] or "?"


def knows_nothing(prompt: str) -> str:
    return "?"


def letters_project(workspace, instruction: str = "Give the first letter.",
                    name: str = "letters"):
    """First-letter task over ten words: 4 train, 6 dev and 4 test rows."""
    project = workspace.create(ProjectSettings(name=name, instruction=instruction))
    for split, words in (("train", WORDS[:4]), ("dev", WORDS[:6]), ("test", WORDS[6:])):
        project.add_examples([Row(w, w[0], (w[0],), split) for w in words])
    return project
