"""A tuned prompt written the way it will be used: as chat messages for an OpenAI-style API,
as a system prompt alone, or as an Ollama Modelfile.

Each writer takes a prompt card (`workflows.prompt_card`): the instruction, the worked
examples, the demonstration format and, for a prompt tuned on a chat model, the messages it
was scored with. The input the prompt is for is written `{input}`, where the user's text
goes.
"""

from __future__ import annotations

import json

from promptstudio.errors import ProjectError
from promptstudio.templates import PromptTemplate

INPUT = "{input}"
MODELFILE_QUOTES = '"""'


def messages(card: dict) -> list[dict[str, str]]:
    """The conversation one input becomes. A prompt tuned on a chat model keeps the messages
    it was scored with (where its instruction and examples went); one tuned as plain text
    gets the usual shape: the instruction as the system message, each example a user turn
    and the assistant's answer, then the input."""
    if card.get("messages"):
        return [dict(m) for m in card["messages"]]
    turns = [{"role": "system", "content": card["instruction"]}] if card["instruction"] else []
    for demo in card["demos"]:
        turns += [{"role": "user", "content": demo["input"]},
                  {"role": "assistant", "content": demo["output"]}]
    return [*turns, {"role": "user", "content": INPUT}]


def messages_json(card: dict) -> str:
    """An OpenAI-style request body without its model name: `{"messages": [...]}`."""
    return json.dumps({"messages": messages(card)}, indent=2, ensure_ascii=False) + "\n"


def system_prompt(card: dict) -> str:
    """The instruction alone, for a tool that takes only a system prompt; the worked
    examples follow it, in the project's demonstration format, so that a gain they brought
    is not left behind."""
    text = card["instruction"].strip()
    if card["demos"]:
        shown = PromptTemplate(demo_format=card["demo_format"]).render_demos(
            [(d["input"], d["output"]) for d in card["demos"]])
        text = f"{text}\n\n{shown.strip()}" if text else shown.strip()
    return text + "\n"


def modelfile(card: dict, model: str) -> str:
    """An Ollama Modelfile: `FROM` the model, the instruction as `SYSTEM`, and each worked
    example as a `MESSAGE user` and `MESSAGE assistant` pair (Ollama's way to start every
    conversation with them). Values are in triple quotes, which may span lines; a text
    that itself holds three double quotes, or ends with one (it would run into the closing
    quotes), cannot be written in that syntax."""
    lines = [f"# {card['project']}: the prompt PromptStudio tuned for {card['model']}"
             f" ({card.get('format', 'text')}). Make the model with:",
             "#   ollama create NAME -f Modelfile",
             f"FROM {model}"]
    if card["instruction"]:
        lines.append(f"SYSTEM {_quoted(card['instruction'])}")
    for demo in card["demos"]:
        lines.append(f"MESSAGE user {_quoted(demo['input'])}")
        lines.append(f"MESSAGE assistant {_quoted(demo['output'])}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    if MODELFILE_QUOTES in text or text.endswith('"'):
        raise ProjectError(
            'A Modelfile cannot hold a text with three double quotes in a row (""") or one '
            f"that ends with a double quote, and this prompt has one: {text[:60]!r}. Export "
            "it as messages or as a system prompt instead.")
    return f"{MODELFILE_QUOTES}{text}{MODELFILE_QUOTES}"
