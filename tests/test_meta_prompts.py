"""Meta-prompts: shipped texts, per-project versions, and filling their slots."""

from __future__ import annotations

import pytest

from promptstudio.optimize import meta_prompts
from promptstudio.store.records import ProjectSettings


def test_every_named_meta_prompt_ships():
    for name in meta_prompts.names():
        assert meta_prompts.default(name).strip()
    with pytest.raises(KeyError, match="No meta-prompt named"):
        meta_prompts.default("nonexistent")


def test_a_project_version_replaces_the_shipped_one(workspace):
    project = workspace.create(ProjectSettings(name="own words"))
    shipped = meta_prompts.load("opro", project)
    project.set_meta_prompt("opro", "Earlier tries:\n{history}\nDo better.")
    assert meta_prompts.load("opro", project).startswith("Earlier tries:")
    project.set_meta_prompt("opro", None)
    assert meta_prompts.load("opro", project) == shipped


def test_fill_puts_values_in_one_pass():
    text = meta_prompts.fill("A {prompt} and {{input}} and {unknown}, {template}.",
                             prompt="say {input}", template="T")
    assert text == "A say {input} and {input} and {unknown}, T."
