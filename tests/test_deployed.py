"""A tuned prompt exported the way it will be used (`deployed`): each format read back gives
the same instruction and worked examples, and the Modelfile follows Ollama's syntax."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.llm.config import ModelConfig
from promptstudio.store.project import ProjectError
from promptstudio.store.records import Evaluation, ProjectSettings

INSTRUCTION = "Name the animal's first letter,\nin capitals."
DEMOS = [("ant", "A"), ("bee", "B")]
OLLAMA_INSTRUCTIONS = {"FROM", "PARAMETER", "TEMPLATE", "SYSTEM", "ADAPTER", "LICENSE",
                       "MESSAGE", "REQUIRES"}
"""The instructions Ollama's Modelfile documentation lists."""


def project_with_best(workspace, instruction: str = INSTRUCTION, demos=DEMOS, **settings):
    project = workspace.create(ProjectSettings(name="deploy", instruction="Answer.",
                                               **settings))
    project.add_examples([Row(q, a, (a,), "train") for q, a in demos])
    project.add_examples([Row(w, w[0].upper(), (w[0].upper(),), "dev")
                          for w in ("cat", "dog", "elk")])
    shown = [e.id for e in project.examples("train")]
    best = project.add_candidate(instruction, shown)
    for example in project.examples("dev"):
        project.save_evaluation(Evaluation(best.id, example.id, "m", "", "", 1.0,
                                           scoring=project.scoring().key))
    return project


def read_modelfile(text: str) -> list[tuple[str, list[str]]]:
    """Instructions and their arguments, by the syntax Ollama documents: `# comment`, then
    `INSTRUCTION arguments`, an argument in triple quotes running over lines until the
    closing ones; MESSAGE takes a role, then the message."""
    parsed: list[tuple[str, list[str]]] = []
    position = 0
    while position < len(text):
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end]
        if not line.strip() or line.startswith("#"):
            position = end + 1
            continue
        word, _, value = line.partition(" ")
        assert word.upper() in OLLAMA_INSTRUCTIONS, line
        args: list[str] = []
        if word.upper() == "MESSAGE":
            role, _, value = value.partition(" ")
            assert role in ("system", "user", "assistant"), line
            args.append(role)
        if value.startswith('"""'):
            opened = end - len(value) + 3
            closed = text.find('"""', opened)
            assert closed >= 0, f"unterminated triple quotes after {word}"
            assert text[closed + 3:closed + 4] in ("\n", ""), "text after the closing quotes"
            args.append(text[opened:closed])
            position = closed + 4
        else:
            args += shlex.split(value) if word.upper() == "PARAMETER" else [value]
            position = end + 1
        parsed.append((word.upper(), args))
    return parsed


def read_demos(text: str, demo_format: str) -> tuple[str, list[tuple[str, str]]]:
    """The instruction and the examples back out of a system prompt."""
    one = re.escape(demo_format.strip()).replace(re.escape("{input}"), "(.*?)").replace(
        re.escape("{output}"), "(.*?)")
    demos = re.findall(rf"{one}(?=\n\n|\Z)", text.strip(), flags=re.S)
    first = re.search(one, text, flags=re.S)
    return text[:first.start() if first else len(text)].strip(), list(demos)


def test_messages_give_back_the_instruction_and_the_examples(workspace, tmp_path):
    project = project_with_best(workspace)
    out = workflows.export_best(project, tmp_path / "p.json", "messages")
    turns = json.loads(out.read_text())["messages"]
    assert turns[0] == {"role": "system", "content": INSTRUCTION}
    pairs = [(turns[i]["content"], turns[i + 1]["content"]) for i in range(1, 5, 2)]
    assert pairs == DEMOS
    assert [t["role"] for t in turns[1:5]] == ["user", "assistant"] * 2
    assert turns[-1] == {"role": "user", "content": "{input}"}


def test_the_system_prompt_gives_back_the_instruction_and_the_examples(workspace, tmp_path):
    project = project_with_best(workspace)
    out = workflows.export_best(project, tmp_path / "system.txt", "system")
    instruction, demos = read_demos(out.read_text(), project.settings.demo_format)
    assert instruction == INSTRUCTION
    assert demos == DEMOS


def test_the_modelfile_follows_ollamas_syntax_and_gives_back_the_prompt(workspace,
                                                                       tmp_path):
    project = project_with_best(workspace)
    out = workflows.export_best(project, tmp_path / "Modelfile")
    text = out.read_text()
    parsed = read_modelfile(text)
    assert [word for word, _ in parsed].count("FROM") == 1 and parsed[0][0] == "FROM"
    assert parsed[0][1][0].endswith(".gguf")
    assert ("SYSTEM", [INSTRUCTION]) in parsed
    said = [args for word, args in parsed if word == "MESSAGE"]
    assert [(said[i][1], said[i + 1][1]) for i in range(0, len(said), 2)] == DEMOS
    assert [role for role, _ in said] == ["user", "assistant"] * 2
    assert text.startswith("# deploy: the prompt PromptStudio tuned for")


def test_a_modelfile_from_a_server_names_its_model(workspace, tmp_path):
    project = project_with_best(workspace, task_model=ModelConfig(
        kind="server", base_url="http://127.0.0.1:11434", model="qwen2.5:7b-instruct"))
    out = workflows.export_best(project, tmp_path / "Modelfile", "modelfile")
    assert read_modelfile(out.read_text())[0] == ("FROM", ["qwen2.5:7b-instruct"])


def test_a_text_the_modelfile_syntax_cannot_hold_is_refused_by_name(workspace, tmp_path):
    project = project_with_best(workspace, instruction='Answer "yes" or """no"""')
    with pytest.raises(ProjectError, match="three double quotes"):
        workflows.export_best(project, tmp_path / "Modelfile")
    assert not (tmp_path / "Modelfile").exists()


def test_the_card_names_the_model_and_format_it_was_tuned_for(workspace, tmp_path):
    project = project_with_best(workspace)
    card = json.loads(workflows.export_best(project, tmp_path / "c.json").read_text())
    assert card["format"] == "text" and "bundled" in card["model"]
    markdown = workflows.export_best(project, tmp_path / "c.md").read_text()
    assert "as plain text" in markdown


def test_a_chat_models_prompt_is_exported_in_the_messages_it_was_scored_with(
        workspace, tmp_path, chat_model_file):
    project = project_with_best(workspace, task_model=ModelConfig(path=str(chat_model_file)),
                                instruction_place="user", demo_place="inline")
    turns = json.loads(workflows.export_best(project, tmp_path / "m.json", "messages")
                       .read_text())["messages"]
    assert [t["role"] for t in turns] == ["user"]
    content = turns[0]["content"]
    assert content.startswith(INSTRUCTION) and content.endswith("{input}")
    assert "Input: ant\nOutput: A" in content
    card = json.loads(workflows.export_best(project, tmp_path / "c.json").read_text())
    assert card["format"] == "chat" and card["messages"] == turns


def test_the_command_line_exports_each_way(cli, tmp_path):
    from promptstudio.store.workspace import Workspace

    project_with_best(Workspace(tmp_path / "ws")).close()
    for fmt, name in (("messages", "m.json"), ("system", "s.txt"), ("modelfile", "Modelfile")):
        code, _, err = cli("export", "deploy", "--what", "best", "--format", fmt,
                             "--out", str(tmp_path / name))
        assert code == 0, err
        assert INSTRUCTION.splitlines()[0] in Path(tmp_path / name).read_text()


def test_a_chat_servers_prompt_is_shown_and_exported_as_its_messages(workspace, tmp_path):
    """A chat server applies its own template, out of sight: the card shows the messages
    it is sent, readable, and exports them as they are."""
    project = project_with_best(workspace, task_model=ModelConfig(
        kind="server", base_url="http://127.0.0.1:11434", model="qwen2.5:7b-instruct"))
    card = json.loads(workflows.export_best(project, tmp_path / "c.json").read_text())
    assert card["format"] == "chat"
    assert card["prompt"].startswith(f"system: {INSTRUCTION}\nuser: ant\nassistant: A\n")
    assert card["prompt"].endswith("user: {input}") and "\x1e" not in card["prompt"]
    turns = json.loads(workflows.export_best(project, tmp_path / "m.json", "messages")
                       .read_text())["messages"]
    assert turns == card["messages"] and turns[-1] == {"role": "user", "content": "{input}"}
