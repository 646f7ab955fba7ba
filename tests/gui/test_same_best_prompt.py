"""Every view names the same best prompt: the CLI, the project list, the results page, export
and re-tuning all ask `best_prompt`.

The project is made so that the rules they once had apart would disagree: a finished run
whose pick was checked on rows the search never used, and a "lucky" prompt, scored by hand
on dev only, whose mean dev score is higher than the pick's.
"""

from __future__ import annotations

import json

import pytest
from optimize_support import ScriptedModel, letters_optimizer, letters_project, start_run

from promptstudio import model_switch, workflows
from promptstudio.best_prompt import best_prompt
from promptstudio.cli import main
from promptstudio.gui.import_dialog import DETAIL_ROLE
from promptstudio.gui.projects import ProjectsSidebar
from promptstudio.gui.results_page import ResultsPage
from promptstudio.optimize import runner
from promptstudio.store.records import Evaluation


def half_right(instruction: str, word: str) -> str:
    """A task model that ignores the prompt: right on words before n, wrong on the rest."""
    return word[0] if word[0] < "n" else "?"


@pytest.fixture
def two_rules(state):
    """A project (open in `state`) whose run pick and best dev score are different prompts."""
    project = letters_project(state.workspace, name="letters")
    run = start_run(project, "protegi")
    model = ScriptedModel(half_right, letters_optimizer)
    assert runner.execute(project, run.id, model, model).choice.kind == "start"
    run_id = run.id
    pick = project.run(run_id).best_candidate_id
    model = project.run(run_id).choice["model"]
    lucky = project.add_candidate("Lucky words.", project.candidate(pick).demo_ids)
    for example in project.examples("dev"):
        project.save_evaluation(Evaluation(lucky.id, example.id, model, "x", example.output,
                                           1.0, scoring=project.scoring().key))
    assert project.best_candidate("dev", project.scoring().key).id == lucky.id, (
        "the old dev rule would pick it")
    project.close()
    opened = state.open_project("letters")
    best = best_prompt(opened)
    assert best.candidate.id == pick != lucky.id
    return best


def test_the_cli_shows_it(two_rules, state, capsys):
    state.close_project()
    assert main(["--workspace", str(state.workspace.folder), "show", "letters", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_instruction"] == two_rules.candidate.instruction
    assert shown["best_dev_score"] == two_rules.score("dev")
    assert shown["why_best"] == two_rules.why


def test_the_project_list_shows_its_score(two_rules, qtbot, state, settings, answers):
    sidebar = ProjectsSidebar(state, settings=settings)
    qtbot.addWidget(sidebar)
    sidebar.refresh()
    row = sidebar.names().index("letters")
    detail = sidebar.list.item(row).data(DETAIL_ROLE)
    assert detail.endswith(f"best {two_rules.score('dev'):.0%} on dev")
    assert "100%" not in detail, "not the lucky prompt's score"


def test_the_results_page_names_it_with_the_reason(two_rules, qtbot, state):
    page = ResultsPage(state)
    qtbot.addWidget(page)
    page.show()
    page._update_summary()
    text = page.summary.text()
    assert f"<b>Best prompt: #{two_rules.candidate.id}</b>" in text
    assert two_rules.why.split(".")[0] in text


def test_export_writes_it(two_rules, state, tmp_path):
    out = workflows.export_best(state.project, tmp_path / "best.json")
    card = json.loads(out.read_text())
    assert card["instruction"] == two_rules.candidate.instruction
    assert card["why"] == two_rules.why
    assert card["scores"]["dev"]["score"] == round(two_rules.score("dev"), 4)


def test_re_tuning_carries_it(two_rules, state):
    carried = model_switch.prompt_to_carry(state.project)
    assert carried.candidate_id == two_rules.candidate.id


def test_the_cli_runs_and_export_agree_with_show(two_rules, state, tmp_path, capsys):
    """Issue 20 found `show` naming another prompt than `runs` and `export`."""
    state.close_project()
    folder = str(state.workspace.folder)
    assert main(["--workspace", folder, "runs", "letters", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["best_instruction"] == two_rules.candidate.instruction
    assert run["dev_score"] == pytest.approx(two_rules.score("dev"))
    out = tmp_path / "best.json"
    assert main(["--workspace", folder, "export", "letters", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["instruction"] == two_rules.candidate.instruction


def test_a_card_never_averages_two_task_models(state, tmp_path):
    """Scores of one prompt from two task models stay apart: the card shows one model's,
    and names it."""
    project = letters_project(state.workspace, name="two-models")
    prompt = project.add_candidate("Give the first letter.", ())
    for example in project.examples("dev"):
        for model, score in (("big.gguf", 1.0), ("small.gguf", 0.0), ("small.gguf", 0.0)):
            project.save_evaluation(Evaluation(prompt.id, example.id, model, "x",
                                               example.output, score,
                                               scoring=project.scoring().key))
    card = workflows.prompt_card(project, prompt)
    assert card["scores"]["dev"]["score"] in (0.0, 1.0), "not a blend of the two models"
    assert card["scored_on"] in ("big.gguf", "small.gguf")
    assert card["scores"]["dev"]["examples"] == len(project.examples("dev"))
    project.close()
