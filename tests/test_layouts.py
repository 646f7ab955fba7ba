"""Layouts of the examples: found in the user's template, replaced there, drawn from the
grammar; and demonstration search trying them, on a scripted model that answers only in one
layout, and once on the bundled model."""

from __future__ import annotations

import random
import re

import pytest
from optimize_support import letters_project, start_run
from scripted import ScriptedBackend
from task_data import data_project

from promptstudio import workflows
from promptstudio.deployed import system_prompt
from promptstudio.optimize import runner
from promptstudio.optimize.layouts import Layout, draw
from promptstudio.optimize.selection import (
    NEW_DEMOS,
    Choice,
    examples_changed,
    examples_meta,
    examples_phrase,
)
from promptstudio.store.workspace import Workspace
from promptstudio.templates import PromptTemplate

DEFAULT = Layout("Input: ", "\nOutput: ", "\n\n")
QA = Layout("Q: ", "\nA: ", "\n")


def test_the_default_template_writes_its_examples_in_the_input_output_layout():
    assert Layout.of(PromptTemplate()) == DEFAULT
    assert DEFAULT.cue == "Input: {input}\nOutput:"
    assert DEFAULT.describe() == "Input: …⏎Output: …⏎⏎"


def test_another_layout_replaces_only_how_examples_are_written():
    template = PromptTemplate("Be brief.\nTask: {instruction}\n\n{demos}Input: {input}\n"
                              "Output:")
    written = QA.applied(template)
    assert written.text == "Be brief.\nTask: {instruction}\n\n{demos}Q: {input}\nA:"
    assert written.demo_format == "Q: {input}\nA: {output}\n"
    assert Layout.of(written) == QA
    nameless = Layout("", " => ", "\n").applied(template)
    assert nameless.render("Say it.", [("cat", "c")], "dog") == (
        "Be brief.\nTask: Say it.\n\ncat => c\ndog =>")


@pytest.mark.parametrize(("text", "demo_format"), [
    ("Instruction: {instruction}\n\n{demos}Word: {input}\nOutput:",
     "Input: {input}\nOutput: {output}\n\n"),
    ("Instruction: {instruction}\n\n{demos}Input: {input}\nOutput:",
     "Output: {output}\nInput: {input}\n\n"),
    ("{demos}Input: {input}\nOutput: please answer",
     "Input: {input}\nOutput: {output}\n\n"),
])
def test_a_template_that_writes_its_input_its_own_way_has_no_layout_to_vary(text,
                                                                            demo_format):
    template = PromptTemplate(text, demo_format)
    assert Layout.of(template) is None
    with pytest.raises(ValueError):
        QA.applied(template)


def test_drawn_layouts_are_different_from_each_other_and_from_the_current_one():
    drawn = draw(random.Random(3), 12, DEFAULT)
    assert len(drawn) == len(set(drawn)) == 12 and DEFAULT not in drawn
    assert drawn == draw(random.Random(3), 12, DEFAULT), "the seed decides the draw"
    for layout in drawn:
        assert "{input}" not in layout.before + layout.between + layout.after
        assert layout.after.endswith("\n") and layout.between.strip()
    assert any(layout.before == "" for layout in draw(random.Random(0), 40, DEFAULT))


# -- demonstration search tries layouts ---------------------------------------------------


class QAReader(ScriptedBackend):
    """Answers right only when the examples are written as "Q: …" / "A: …"."""

    def __init__(self) -> None:
        super().__init__(self.answer)

    def answer(self, prompt: str) -> str:
        asked = re.search(r"Q: (.*)\nA:$", prompt)
        if asked:
            return " " + asked[1][0] + "\n"
        return " ?\n"


def test_demonstration_search_finds_the_layout_the_model_answers_in(cli):
    project = letters_project(Workspace(cli.workspace))
    model = QAReader()
    run = start_run(project, "demos", overrides={"layouts": 40})
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)

    start = project.candidates(run.id)[0]
    laid_out = [c for c in project.candidates(run.id) if c.operation == "layout"]
    assert len(laid_out) == 40
    assert all(c.instruction == start.instruction and c.demo_ids == laid_out[0].demo_ids
               and c.meta["layout"] == c.origin for c in laid_out)
    best = outcome.best
    assert best.operation == "layout" and Layout.of(PromptTemplate(
        best.meta["template"], best.meta["demo_format"])).before == "Q: "
    assert outcome.dev_score == 1.0 and outcome.baseline_test_score == 0.0
    choice = Choice.from_json(project.run(run.id).choice)
    assert choice.kind == NEW_DEMOS
    assert f"written as {best.meta['layout']}" in choice.reason
    assert any("other layouts" in getattr(e, "title", "") for e in events)

    card = workflows.prompt_card(project, best)
    assert card["template"] == best.meta["template"]
    assert card["demo_format"] == best.meta["demo_format"]
    assert card["prompt"].endswith("Q: {input}\nA:")
    shown = [text for text, _ in best.demos]
    assert all(f"Q: {text}\nA: " in system_prompt(card) for text in shown)
    project.close()
    code, out, _ = cli("show", "letters")
    assert code == 0 and f"best_layout: {best.meta['layout']}" in out


def test_the_same_rows_in_another_layout_are_another_prompt(workspace):
    project = letters_project(workspace)
    ids = [x.id for x in project.examples("train")[:3]]
    written = QA.applied(PromptTemplate())
    plain = project.add_candidate("Say it.", ids)
    laid_out = project.add_candidate("Say it.", ids, meta={
        "template": written.text, "demo_format": written.demo_format,
        "layout": QA.describe()})
    assert laid_out.id != plain.id
    assert examples_changed(laid_out, plain) and not examples_changed(plain, plain)
    assert examples_phrase(laid_out, plain) == "your examples, written as Q: …⏎A: …⏎,"
    assert examples_phrase(plain, laid_out) == "the new examples"


def test_only_a_layout_counts_as_how_the_examples_are_written(workspace):
    """OPRO's own template places its instruction: that is the words' doing, so the user's
    instruction tried with the found examples does not take it; a layout it does take."""
    project = letters_project(workspace)
    written = QA.applied(PromptTemplate())
    laid_out = project.add_candidate("Say it.", meta={
        "template": written.text, "demo_format": written.demo_format,
        "layout": QA.describe(), "thinking": "no"})
    placed = project.add_candidate("Say it.", meta={"template": "{demos}{instruction}\n"
                                                                "Input: {input}\nOutput:"})
    assert examples_meta(placed) == {}
    assert examples_meta(laid_out) == {"template": written.text,
                                       "demo_format": written.demo_format,
                                       "layout": QA.describe()}
    assert workflows.starting_prompt_of(laid_out) == {
        "instruction": "Say it.", "template": written.text,
        "demo_format": written.demo_format}
    assert workflows.starting_prompt_of(placed) == {"instruction": "Say it."}


def test_no_layouts_for_a_template_that_writes_its_input_its_own_way(workspace):
    project = letters_project(workspace, template="Instruction: {instruction}\n\n{demos}"
                                                  "Word: {input}\nOutput:")
    model = QAReader()
    run = start_run(project, "demos")
    events = []
    runner.execute(project, run.id, model, model, listener=events.append)
    assert not [c for c in project.candidates(run.id) if c.operation == "layout"]
    assert any("other layouts of the examples are not tried" in getattr(e, "text", "")
               for e in events)


@pytest.mark.model
def test_layouts_on_the_bundled_model(workspace, local_backend):
    """Every layout candidate is scored in its own layout, as the task model sees it."""
    project = data_project(workspace)
    run = start_run(project, "demos", overrides={
        "random_sets": 2, "bootstrapped_sets": 0, "budget_per_set": 4, "batch": 2,
        "layouts": 4})
    outcome = runner.execute(project, run.id, local_backend, local_backend)
    assert outcome.status == "finished" and outcome.test_score is not None
    laid_out = [c for c in project.candidates(run.id) if c.operation == "layout"]
    assert len(laid_out) == 4
    prompts = [row[0] for row in project.conn.execute("SELECT prompt FROM llm_call")]
    for candidate in laid_out:
        template = PromptTemplate(candidate.meta["template"], candidate.meta["demo_format"])
        prefix = template.prefix(candidate.instruction, list(candidate.demos))
        assert any(p.startswith(prefix) for p in prompts), candidate.meta["layout"]
        assert project.evaluations(candidate.id)
