"""A dev or test score belongs to the prompt and the row: the evaluator's answers on those
rows are exactly the same whether it asks the model 1, 3 or 40 prompts at a time, on the
real model, for generated answers and for label log-probabilities alike. Training rows are
batched and may differ in near-ties; that is what asking alone avoids (see
docs/performance.md)."""

from __future__ import annotations

import pytest
from task_data import data_project

from promptstudio.evaluation import Evaluator
from promptstudio.llm.local import LocalBackend

pytestmark = pytest.mark.model


def answers_in_calls_of(workspace, local_backend: LocalBackend, size: int, *,
                        task: str, instruction: str, labels: tuple[str, ...] = ()
                        ) -> dict[str, str]:
    project = data_project(workspace, name=f"{task}-{size}", instruction=instruction,
                           task=task, train=10, dev=40, test=1)
    if labels:
        project.update_settings(metric="label", labels=list(labels))
    start = project.add_candidate(instruction, [e.id for e in project.examples("train")[:3]])
    before = local_backend.preferred_batch
    local_backend.preferred_batch = size * (4 if labels else 1)  # label calls take a quarter
    try:
        result = Evaluator(project, local_backend, use_cache=False).evaluate(
            start, project.examples("dev"))
    finally:
        local_backend.preferred_batch = before
    project.close()
    assert result.n == 40
    return {e.example_id: e.raw_output for e in result.evaluations}


@pytest.mark.parametrize("task, instruction, labels", [
    ("first_letter", "Write the first letter of the word.", ()),
    ("sentiment", "Is the review positive or negative?", ("positive", "negative")),
])
def test_dev_answers_do_not_depend_on_how_many_are_asked_at_once(
        workspace, local_backend, task, instruction, labels):
    one, three, forty = (answers_in_calls_of(workspace, local_backend, size, task=task,
                                             instruction=instruction, labels=labels)
                         for size in (1, 3, 40))
    assert list(one.values()) == list(three.values()) == list(forty.values())
