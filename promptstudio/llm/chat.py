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
`ChatTemplateError` instead of running. On top of the sandbox, one rendering is stopped
when it runs past `MAX_SECONDS` (checked at every output, attribute, item, call and
operator), writes more than `MAX_CHARS`, or loops over `range` more than `MAX_STEPS`
times; `*` and `**` may not build values too large to hold. A loop that does none of
these (nested loops over a long text that write nothing) is not interrupted: Jinja offers
no hook inside such a loop, and Python cannot stop a thread from outside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
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
ROLES = ("system", "user", "assistant")
"""The roles of the messages a prompt is made of."""
FORMAT_WORDS = {TEXT: "plain text", CHAT: "chat messages in its own template"}
"""How a prompt reached its model, in words (a prompt card says what it was tuned for)."""


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
    raise ChatTemplateError(f"The chat template refused these messages: {message}")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


MAX_SECONDS = 2.0
"""The longest one rendering may take: a real template renders in well under a millisecond."""
MAX_CHARS = 1_000_000
"""The longest text one rendering may make: far beyond any prompt a model reads."""
MAX_STEPS = 1_000_000
"""The most items the template's `range` calls may produce in one rendering, nested loops
included (the sandbox caps one range at 100,000, not a loop inside a loop)."""


class _Limits(Exception):
    """A rendering ran past `MAX_SECONDS`, `MAX_CHARS` or `MAX_STEPS`."""


class _Environment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with `*` and `**` checked so that one expression cannot
    build a text or a number too large to hold, and the clock checked at every attribute,
    item and call (`watch`, set by `ChatTemplate.render`)."""

    intercepted_binops = frozenset({"*", "**"})
    watch: Callable[[], None] = staticmethod(lambda: None)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.watch()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.watch()
        return super().getitem(obj, argument)

    def call(self, context: jinja2.runtime.Context, obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        self.watch()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        self.watch()
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if isinstance(items, str | list | tuple) and isinstance(times, int) and (
                        len(items) * times > MAX_CHARS):
                    raise _Limits(f"it builds a text of more than {MAX_CHARS:,} characters")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise _Limits("it raises a number to a power too large")
        return super().call_binop(context, operator, left, right)


class ChatTemplate:
    """A model's chat template with its begin and end tokens, rendered in the sandbox.
    `origin` names where it came from (the model file), for messages."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "",
                 origin: str = "the model") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.origin = origin
        self._steps = 0
        environment = _Environment(
            loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
            extensions=[_GenerationTags, jinja2.ext.loopcontrols])
        environment.filters["tojson"] = _tojson
        environment.globals["range"] = self._range
        environment.watch = self._watch
        self._started = 0.0
        try:
            self._program = environment.from_string(source)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(
                f"The chat template of {origin} cannot be read: {exc}") from exc

    def _watch(self) -> None:
        if time.monotonic() - self._started > MAX_SECONDS:
            raise _Limits(f"it runs longer than {MAX_SECONDS:g} seconds")

    def _range(self, *args: int) -> range:
        items = range(*args)
        if len(items) > 100_000:  # the sandbox's own cap on one range
            raise _Limits("it asks for a range of more than 100,000 numbers")
        self._steps += len(items)
        if self._steps > MAX_STEPS:
            raise _Limits(f"its loops run more than {MAX_STEPS:,} times")
        return items

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The text the model reads for these messages, ending with the start of its reply
        when `add_generation_prompt`."""
        self._steps = 0
        self._started = started = time.monotonic()
        pieces: list[str] = []
        length = 0
        try:
            for piece in self._program.generate(
                    messages=[m.as_dict() for m in messages], bos_token=self.bos_token,
                    eos_token=self.eos_token, add_generation_prompt=add_generation_prompt,
                    raise_exception=_raise, strftime_now=lambda f: datetime.now().strftime(f),
                    functions=None, function_call=None, tools=None, tool_choice=None):
                pieces.append(piece)
                length += len(piece)
                if length > MAX_CHARS:
                    raise _Limits(f"it writes more than {MAX_CHARS:,} characters")
                if time.monotonic() - started > MAX_SECONDS:
                    raise _Limits(f"it runs longer than {MAX_SECONDS:g} seconds")
        except ChatTemplateError as exc:
            raise ChatTemplateError(f"{exc} (the chat template of {self.origin})") from exc
        except _Limits as exc:
            raise ChatTemplateError(
                f"The chat template of {self.origin} was stopped: {exc}. Use another copy "
                "of the model file.") from exc
        except SecurityError as exc:
            raise ChatTemplateError(
                f"The chat template of {self.origin} tried something a template may not do "
                f"({exc}); it was stopped and nothing of it ran. Use another copy of the "
                "model file.") from exc
        except RecursionError as exc:
            raise ChatTemplateError(
                f"The chat template of {self.origin} calls itself without end; it was "
                "stopped. Use another copy of the model file.") from exc
        except Exception as exc:  # a template is a program: any error is the template's
            raise ChatTemplateError(
                f"The chat template of {self.origin} failed: {exc}") from exc
        return "".join(pieces)

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


RECORD, UNIT = "\x1e", "\x1f"
"""The separators of messages on their way to a chat server (ASCII's record and unit
separators: control characters no one types)."""


class ServerMessages(ChatTemplate):
    """A chat server applies its model's template itself, out of our sight. Its `render`
    writes the messages in a plain form the server backend reads back (`read_messages`)
    and sends as a chat request: so evaluation, caching and the text shared before each
    input treat a chat server as any chat model."""

    def __init__(self, origin: str) -> None:
        super().__init__("", origin=origin)

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        return "".join(f"{RECORD}{m.role}{UNIT}{m.content}" for m in messages)

    def accepts_system(self) -> bool:
        """The server's template decides what becomes of a system message."""
        return True


def messages_text(messages: Sequence[Message]) -> str:
    """Messages for a person to read: each its role, then what it says."""
    return "\n".join(f"{m.role}: {m.content}" for m in messages)


def read_messages(text: str) -> list[Message]:
    """The messages `ServerMessages.render` wrote. An input that itself held a separator
    stays inside the message it was in."""
    found: list[Message] = []
    for part in text.split(RECORD)[1:]:
        role, unit, content = part.partition(UNIT)
        if unit and role in ROLES:
            found.append(Message(role, content))
        elif found:
            found[-1] = Message(found[-1].role, found[-1].content + RECORD + part)
    return found


def plain_transcript(messages: Sequence[Message]) -> str:
    """Messages as text a completions endpoint can continue, for a server in automatic
    format that refused chat: the system message, then each turn named, then the reply's
    name to continue after."""
    lines = [m.content + "\n" if m.role == "system" else
             f"{'User' if m.role == 'user' else 'Assistant'}: {m.content}\n"
             for m in messages]
    return "".join(lines) + "Assistant:"


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
                        eos_token=texts.get(ids["eos"], ""), origin=Path(path).name)


def prompt_format_of(config: ModelConfig) -> str:
    """How prompts reach this model: `CHAT` or `TEXT`. Under `auto`, a GGUF file with a
    chat template is a chat model; the bundled model, a file without one and a file that
    cannot be read are text models. A server is asked in chat (its backend falls back to
    its completions endpoint where chat is refused)."""
    if config.prompt_format in (TEXT, CHAT):
        return config.prompt_format
    if config.kind != "local":
        return CHAT
    if config.is_bundled:
        return TEXT
    from promptstudio.llm.gguf import inspect_gguf

    try:
        info = inspect_gguf(config.path or "")
    except BackendError:
        return TEXT
    return file_format(config.prompt_format, info.metadata)


def file_format(chosen: str, metadata: dict) -> str:
    """A model file's prompt format: the one chosen, or under `auto`, chat where the file
    holds a chat template."""
    if chosen in (TEXT, CHAT):
        return chosen
    return CHAT if template_of(metadata) else TEXT
