"""How a method asks the optimizer model to write: the papers' requests, or text a base
model continues (`optimize/writing.py`), chosen by the optimizer model and kept with the run."""

from __future__ import annotations

import json

import pytest
from optimize_support import (
    ScriptedModel,
    gguf_header,
    letters_project,
    letters_task,
    search_budget,
    start_run,
)
from scripted import base_variant, meta_prompt_of
from task_data import data_rows, write_jsonl

from promptstudio.llm.config import ModelConfig
from promptstudio.optimize import meta_prompts, runner, writing
from promptstudio.optimize.events import CandidateCreated, CandidateRejected, Message
from promptstudio.optimize.gate import Gate
from promptstudio.optimize.method import method_named

WRITING_METHODS = ("ape", "opro", "protegi", "pe2")
SERVER = ModelConfig(kind="server", base_url="http://127.0.0.1:8080/v1", model="qwen2.5-7b")
LINES = {
    "ape_forward_base": " Give the first letter of the word.\nInput: fig",
    "paraphrase_base": " Write the word's first letter.",
    "opro_base": " Give the first letter of the word.",
    "protegi_gradient_base": " it never says that a letter is wanted.",
    "protegi_edit_base": ' Give the first letter of the word."',
    "pe2_induce_base": " Write the first letter of the word.",
    "pe2_reason_base": " the prompt does not say that a letter is wanted.",
    "pe2_refine_base": " in one letter."
}
"""What a base model writes after each base meta-prompt: a line, sometimes running on."""


class Recorder:
    """A scripted optimizer model that answers base meta-prompts with a line and records
    which meta-prompts it was asked with."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def __call__(self, prompt: str, call: int) -> str:
        name = meta_prompt_of(prompt)
        self.asked.append(name)
        return LINES.get(name or "", "<START>Say the letter the word starts with.<END>")


def run_with(project, method: str, writer: str, **kwargs):
    recorder = Recorder()
    model = ScriptedModel(letters_task, recorder)
    overrides = {"init": "induction"} if method == "pe2" else None
    run = start_run(project, method, writer=writer, overrides=overrides, **kwargs)
    events = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)
    assert outcome.status == "finished"
    return recorder, outcome, events, run


@pytest.mark.parametrize("method", WRITING_METHODS)
def test_a_base_writer_is_asked_only_with_text_it_can_continue(workspace, method):
    project = letters_project(workspace)
    recorder, outcome, events, run = run_with(project, method, writing.BASE)
    assert recorder.asked and all(base_variant(name) for name in recorder.asked), recorder.asked
    assert project.run(run.id).params["writer"] == writing.BASE
    written = [e for e in events if isinstance(e, CandidateCreated)
               and e.operation not in ("start", "ablation", "demo")]
    assert written, "the lines became candidates"
    # A line that runs on into an example is cut at the line's end.
    assert all("Input" not in e.instruction and not e.instruction.endswith('"')
               for e in written)
    assert outcome.best.instruction.lower().startswith(("give", "write", "answer", "say"))


@pytest.mark.parametrize("method", WRITING_METHODS)
def test_a_paper_writer_is_asked_only_with_the_papers_requests(workspace, method):
    project = letters_project(workspace)
    recorder, _, _, run = run_with(project, method, writing.PAPER)
    assert recorder.asked and not any(base_variant(name) for name in recorder.asked)
    assert project.run(run.id).params["writer"] == writing.PAPER


def test_the_writer_follows_the_optimizer_model(workspace, tmp_path):
    base = gguf_header(tmp_path / "base.gguf", {"general.architecture": "llama"}, 6_000_000_000)
    chat = gguf_header(tmp_path / "chat.gguf",
                       {"general.architecture": "qwen2",
                        "tokenizer.chat_template": "{% for m in messages %}{% endfor %}"},
                       4_000_000_000)
    assert writing.writer_for(ModelConfig()) == writing.BASE
    assert writing.writer_for(ModelConfig(kind="local", path=str(base))) == writing.BASE
    assert writing.writer_for(ModelConfig(kind="local", path=str(chat))) == writing.PAPER
    assert writing.writer_for(SERVER) == writing.PAPER
    forced = ModelConfig(kind="local", path=str(chat), prompt_format="text")
    assert writing.writer_for(forced) == writing.BASE, "the format decides, as the user set it"

    project = letters_project(workspace)
    plan = runner.plan(project, "protegi")
    assert plan.writer == writing.BASE and "base model can continue" in plan.describe()
    project.update_settings(optimizer_model=SERVER)
    assert runner.plan(project, "protegi").writer == writing.PAPER
    assert "optimizer model writes" not in runner.plan(project, "demos").describe()
    with pytest.raises(Exception, match="base or paper"):
        runner.plan(project, "protegi", writer="chatty")


def test_protegi_projects_one_call_per_edit_for_a_base_writer(workspace):
    project = letters_project(workspace)
    params = {"edits_per_gradient": 3}
    base = runner.plan(project, "protegi", overrides=params, writer=writing.BASE)
    paper = runner.plan(project, "protegi", overrides=params, writer=writing.PAPER)
    assert base.optimizer_calls > paper.optimizer_calls


def test_a_resumed_run_writes_as_it_began(workspace):
    """The project's optimizer model changed to a server while the run was paused: the run
    goes on writing for a base model, as it began."""
    from promptstudio.optimize.context import RunControl
    from promptstudio.optimize.events import StepStarted

    project = letters_project(workspace)
    run = start_run(project, "opro", writer=writing.BASE)
    recorder = Recorder()
    model = ScriptedModel(letters_task, recorder)
    control = RunControl()
    paused = runner.execute(project, run.id, model, model, control=control,
                            listener=lambda e: isinstance(e, StepStarted) and e.step == 2
                            and control.pause())
    assert paused.status == "paused"
    project.update_settings(optimizer_model=SERVER)
    assert runner.execute(project, run.id, model, model).status == "finished"
    assert recorder.asked and set(recorder.asked) == {"opro_base"}


def test_the_gate_holds_the_request_not_the_worked_cases_against_a_candidate():
    """A base meta-prompt's worked cases are worded as good instructions are; a candidate
    may share their words. Repeating what the notes are ("each note gives a prompt") is
    the model talking about the request, and is set aside."""
    gate = Gate("Say whether the review is positive.", meta_prompts=writing.gate_texts())
    assert gate.check("Answer with one of the two words positive or negative.") is None
    found = gate.check("Each note gives a prompt about the review.")
    assert found is not None and found.rule == "meta-prompt words"


def test_every_writing_method_names_its_base_meta_prompts():
    for name in WRITING_METHODS:
        method = method_named(name)
        base = [n for n in method.meta_prompts if n.endswith("_base")]
        assert base, f"{name} has meta-prompts for a base model"
        for meta_prompt in base:
            text = meta_prompts.default(meta_prompt)
            assert not text.rstrip().endswith("."), "it ends where the answer begins"


@pytest.mark.model
@pytest.mark.parametrize("method", WRITING_METHODS)
def test_base_meta_prompts_on_the_bundled_model(workspace, local_backend, method):
    """Every reply the bundled model writes after a base meta-prompt becomes a candidate or
    is set aside with a reason; nothing crashes."""
    project = letters_project(workspace)
    overrides = {"opro": {"steps": 1}, "protegi": {"rounds": 1}, "pe2": {"steps": 1},
                 "ape": {"mc_rounds": 1}}[method]
    run = start_run(project, method, writer=writing.BASE, overrides=overrides,
                    budget=search_budget(project, 60))
    events = []
    outcome = runner.execute(project, run.id, local_backend, local_backend,
                             listener=events.append)
    assert outcome.status == "finished"
    made = [e for e in events if isinstance(e, CandidateCreated) and e.operation != "start"]
    set_aside = [e for e in events if isinstance(e, CandidateRejected)]
    repeats = [e for e in events if isinstance(e, Message) and "repeated" in e.text]
    assert made or set_aside or repeats, "what the model wrote is accounted for"
    assert all(e.reason for e in set_aside)
    assert all("\n" not in e.instruction for e in made)
    assert outcome.best is not None and outcome.choice.reason


@pytest.mark.model
def test_the_cli_records_the_writer(cli, tmp_path, local_backend):
    data = write_jsonl(tmp_path / "letters.jsonl", data_rows("first_letter", "train", 40))
    assert cli("new", "w", "--data", str(data))[0] == 0
    code, out, err = cli("optimize", "w", "--method", "ape", "--writer", "paper",
                         "--set", "mc_rounds=0", "--max-calls", "150", "--json")
    assert code == 0, err
    assert json.loads(out)["writer"] == "paper"
    code, out, _ = cli("runs", "w", "--json")
    assert [r["writer"] for r in json.loads(out)] == ["paper"]
