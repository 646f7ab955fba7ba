"""Chat templates: how an instruction-tuned model wants its messages written.

A GGUF file of a chat model holds its template (`tokenizer.chat_template`): a Jinja
program that turns a list of messages into the one text the model reads, with its special
tokens. We render it the way llama-cpp-python's `Jinja2ChatFormatter` does (the same
environment, filters and variables), so the text we send equals what its own chat
completion would build from the same messages; the text then goes through our batched
engine, which reuses the shared prefix of a candidate's prompts.

A template is code from a file. Since CVE-2024-34359 (a crafted template ran code through
llama-cpp-python), templates are rendered in Jinja's immutable sandbox, as the fix there
does: attribute access to internals, mutation of lists and dicts, and the like raise
`ChatTemplateError` instead of running.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from promptstudio.llm.base import BackendError
from promptstudio.llm.config import ModelConfig

TEXT, CHAT, AUTO = "text", "chat", "auto"
REASONING_TOKENS = 1024
"""Room a reasoning model gets for its `<think>` block, on top of its answer's tokens."""
FORMATS = (AUTO, TEXT, CHAT)
"""A model's prompt format: plain text to continue, or chat messages; `auto` decides by the
model (a GGUF file with a chat template is a chat model)."""


class ChatTemplateError(BackendError):
    """A chat template that cannot be rendered, or tried to do what the sandbox forbids."""


class _GenerationTags(jinja2.ext.Extension):
    """Passes through Hugging Face's `{% generation %}` blocks, as llama-cpp-python does."""

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise ChatTemplateError(f"The model's chat template refused these messages: {message}")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class ChatTemplate:
    """A model's chat template with its begin and end tokens, rendered in the sandbox."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        environment = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
            extensions=[_GenerationTags, jinja2.ext.loopcontrols])
        environment.filters["tojson"] = _tojson
        try:
            self._program = environment.from_string(source)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"The model's chat template cannot be read: {exc}") from exc

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The text the model reads for these messages, ending with the start of its reply
        when `add_generation_prompt`."""
        try:
            return self._program.render(
                messages=[m.as_dict() for m in messages], bos_token=self.bos_token,
                eos_token=self.eos_token, add_generation_prompt=add_generation_prompt,
                raise_exception=_raise, strftime_now=lambda f: datetime.now().strftime(f),
                functions=None, function_call=None, tools=None, tool_choice=None)
        except ChatTemplateError:
            raise
        except SecurityError as exc:
            raise ChatTemplateError(
                "The model's chat template tried something a template may not do "
                f"({exc}); it was stopped. Use another copy of the model file.") from exc
        except Exception as exc:  # a template is a program: any error is the template's
            raise ChatTemplateError(f"The model's chat template failed: {exc}") from exc

    @property
    def reasons(self) -> bool:
        """Whether the model writes its reasoning first, in a `<think>` block (its template
        mentions one): its replies need room for that before the answer."""
        return "<think>" in self.source

    def accepts_system(self) -> bool:
        """Whether the template takes a system message. Some (Gemma's among them) have no
        system role: they fold it into the first user turn, which is their way and fine,
        or refuse it, and then the instruction goes at the top of the user message."""
        try:
            self.render([Message("system", "s"), Message("user", "u")])
        except ChatTemplateError:
            return False
        return True


def template_of(metadata: dict) -> str | None:
    """The chat template a GGUF file's metadata holds, if any."""
    source = metadata.get("tokenizer.chat_template")
    return source if isinstance(source, str) and source.strip() else None


def file_template(path: str | Path) -> ChatTemplate | None:
    """A GGUF file's chat template with its begin and end tokens as the vocabulary writes
    them (as llama-cpp-python passes them to the template); None for a file without one."""
    from promptstudio.llm.gguf import inspect_gguf, token_texts

    info = inspect_gguf(path)
    source = template_of(info.metadata)
    if source is None:
        return None
    ids = {name: info.metadata.get(f"tokenizer.ggml.{name}_token_id") for name in ("bos", "eos")}
    texts = token_texts(path, [i for i in ids.values() if isinstance(i, int)])
    return ChatTemplate(source, bos_token=texts.get(ids["bos"], ""),
                        eos_token=texts.get(ids["eos"], ""))


def prompt_format_of(config: ModelConfig) -> str:
    """How prompts reach this model: `CHAT` or `TEXT`. Under `auto`, a GGUF file with a
    chat template is a chat model; the bundled model, a file without one and a file that
    cannot be read are text models. A server, for now, is always a text model: its chat
    endpoint is not used yet."""
    if config.kind != "local":
        return TEXT
    if config.prompt_format in (TEXT, CHAT):
        return config.prompt_format
    if config.is_bundled:
        return TEXT
    from promptstudio.llm.gguf import inspect_gguf

    try:
        info = inspect_gguf(config.path or "")
    except BackendError:
        return TEXT
    return CHAT if template_of(info.metadata) else TEXT
