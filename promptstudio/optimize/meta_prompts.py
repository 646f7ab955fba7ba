"""The meta-prompts: the texts that ask the optimizer model for new prompts.

Each lives in `resources/meta_prompts/<name>.txt`, written for PromptStudio after the
structure of its paper; the method that writes with it names it (`Method.meta_prompts`). A
project may keep its own version of any of them (stored in the project file, so it travels
with it); `load` prefers that.
"""

from __future__ import annotations

import re

from promptstudio.paths import resource
from promptstudio.store.project import Project

_SLOT = re.compile(r"\{\{|\}\}|\{(\w+)\}")


def names() -> list[str]:
    """Every meta-prompt the methods write with."""
    from promptstudio.optimize.method import meta_prompt_names

    return meta_prompt_names()


def default(name: str) -> str:
    if name not in names():
        raise KeyError(f"No meta-prompt named {name!r}; known: {', '.join(names())}.")
    return resource("meta_prompts", f"{name}.txt").read_text(encoding="utf-8")


def load(name: str, project: Project | None = None) -> str:
    override = project.meta_prompt(name) if project is not None else None
    return override if override is not None else default(name)


def fill(template: str, /, **values: object) -> str:
    """Put values into `{name}` slots in one pass (so braces inside values stay as they
    are); `{{` and `}}` stand for literal braces; unknown slots are left alone."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "{{":
            return "{"
        if match.group(0) == "}}":
            return "}"
        key = match.group(1)
        return str(values[key]) if key in values else match.group(0)

    return _SLOT.sub(replace, template)
