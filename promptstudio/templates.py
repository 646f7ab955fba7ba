"""Prompt templates: where the instruction, the demonstrations and the input go.

A template is plain text with up to three slots, written exactly as `{instruction}`,
`{demos}` and `{input}`. Filling a template replaces those exact markers and nothing
else, so braces in the user's own text (JSON, code, a stray `{`) never break a prompt
and never need escaping. `{{` and `}}` have no special meaning either: they stay in the
prompt as written (so `{{input}}` is a brace, the input, and a brace).

Everything before `{input}` is the same for every example a candidate instruction is
tried on. `PromptTemplate.prefix` returns that part, so a backend can compute it once
and reuse it (KV-cache prefix reuse); this is why `{input}` must be the last slot.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from promptstudio.llm.chat import ChatTemplate, Message

DEFAULT_TEMPLATE = "Instruction: {instruction}\n\n{demos}Input: {input}\nOutput:"
DEFAULT_DEMO_FORMAT = "Input: {input}\nOutput: {output}\n\n"
SLOTS = ("instruction", "demos", "input")
DEMO_SLOTS = ("input", "output")

_INPUT_MARKER = "{input}"
_ANY_MARKER = re.compile(r"\{(\w+)\}")
_SPACED_MARKER = re.compile(r"\{(\s*)(\w+)(\s*)\}")
_TEMPLATE_MARKERS = re.compile(r"\{(instruction|demos)\}")
_DEMO_MARKERS = re.compile(r"\{(input|output)\}")
_BRACE_ADVICE = (
    "If it was meant to be a slot, finish it, for example {input}; "
    "otherwise it will appear in the prompt as written."
)


class TemplateError(ValueError):
    """A template cannot be used as it is; the message says which slot and how to fix it."""


def _slot_list(names: Sequence[str]) -> str:
    markers = [f"{{{name}}}" for name in names]
    return ", ".join(markers[:-1]) + " and " + markers[-1]


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _count(number: int, noun: str) -> str:
    return f"one {noun}" if number == 1 else f"{number} {noun}s"


def _where_first(text: str, positions: Sequence[int]) -> str:
    line = _line_of(text, positions[0])
    return f"on line {line}" if len(positions) == 1 else f"the first on line {line}"


def _slot_findings(text: str, where: str, slots: Sequence[str]) -> list[str]:
    """Markers in `text` that look like slots but are not one of `slots`."""
    findings = []
    for match in _ANY_MARKER.finditer(text):
        name = match.group(1)
        if name in slots:
            continue
        message = (
            f"{where} contains {match.group(0)} on line {_line_of(text, match.start())}, "
            f"which is not a slot, so it will appear in the prompt exactly as written. "
            f"The slots are {_slot_list(slots)}."
        )
        suggestion = difflib.get_close_matches(name.lower(), slots, n=1, cutoff=0.75)
        if suggestion:
            message += f" Did you mean {{{suggestion[0]}}}?"
        findings.append(message)
    for match in _SPACED_MARKER.finditer(text):
        leading, name, trailing = match.groups()
        if name in slots and (leading or trailing):
            findings.append(
                f"{where} contains {match.group(0)} on line {_line_of(text, match.start())}. "
                f"Write it as {{{name}}}, without spaces inside the braces, or it will not "
                f"be filled in."
            )
    return findings


def _brace_findings(text: str, where: str) -> list[str]:
    """Braces without a partner: harmless in the prompt, but often a half-typed slot."""
    unclosed: list[int] = []
    stray: list[int] = []
    for index, char in enumerate(text):
        if char == "{":
            unclosed.append(index)
        elif char == "}":
            if unclosed:
                unclosed.pop()
            else:
                stray.append(index)
    findings = []
    if unclosed:
        findings.append(
            f'{where} has {_count(len(unclosed), "opening brace")} "{{" with no closing "}}" '
            f"({_where_first(text, unclosed)}). {_BRACE_ADVICE}"
        )
    if stray:
        findings.append(
            f'{where} has {_count(len(stray), "closing brace")} "}}" with no opening "{{" '
            f"({_where_first(text, stray)}). {_BRACE_ADVICE}"
        )
    return findings


@dataclass(frozen=True)
class PromptTemplate:
    """The text around a task's input, and how each demonstration is written."""

    text: str = DEFAULT_TEMPLATE
    demo_format: str = DEFAULT_DEMO_FORMAT

    @cached_property
    def _fatal(self) -> tuple[str, ...]:
        """Problems that make the template unusable, in the order a user should fix them."""
        fatal = []
        input_count = self.text.count(_INPUT_MARKER)
        if input_count == 0:
            fatal.append(
                "The template has no {input} slot, so the model would never see the example "
                'it should answer. Add {input} where the example belongs, for example '
                '"Input: {input}".'
            )
        elif input_count > 1:
            fatal.append(
                f"The template contains {{input}} {input_count} times. Keep exactly one "
                f"{{input}} slot, where the example belongs."
            )
        else:
            after_input = self.text.partition(_INPUT_MARKER)[2]
            for name in ("instruction", "demos"):
                if f"{{{name}}}" in after_input:
                    fatal.append(
                        f"The template puts {{{name}}} after {{input}}. Move {{{name}}} "
                        f"before {{input}}: the example must be the last slot, so the text "
                        f"before it can be shared by all examples."
                    )
        for name, role in (("input", "input text"), ("output", "answer")):
            if f"{{{name}}}" not in self.demo_format:
                fatal.append(
                    f"The demonstration format has no {{{name}}} slot, so the examples shown "
                    f"to the model would not include their {role}. Add {{{name}}} where a "
                    f'demonstration\'s {role} belongs, for example "{name.title()}: {{{name}}}".'
                )
        return tuple(fatal)

    @cached_property
    def _warnings(self) -> tuple[str, ...]:
        warnings = []
        if "{instruction}" not in self.text:
            warnings.append(
                "The template has no {instruction} slot, so the instruction being tuned "
                'never reaches the model. Add {instruction}, for example "Instruction: '
                '{instruction}".'
            )
        warnings += _slot_findings(self.text, "The template", SLOTS)
        warnings += _brace_findings(self.text, "The template")
        warnings += _slot_findings(self.demo_format, "The demonstration format", DEMO_SLOTS)
        warnings += _brace_findings(self.demo_format, "The demonstration format")
        return tuple(warnings)

    def problems(self) -> list[str]:
        """Everything worth telling the user, the unusable parts first.

        A template without `{demos}` is not a problem: it just means zero-shot prompts.
        """
        return [*self._fatal, *self._warnings]

    def fatal_problems(self) -> list[str]:
        """The problems that stop the template from being filled in at all."""
        return list(self._fatal)

    def check(self) -> None:
        """Raise `TemplateError` if the template cannot be filled in."""
        if self._fatal:
            raise TemplateError("\n".join(self._fatal))

    def render_demos(self, demos: Sequence[tuple[str, str]]) -> str:
        """The demonstrations written one after another in the demonstration format."""
        return "".join(self._render_demo(question, answer) for question, answer in demos)

    def _render_demo(self, question: str, answer: str) -> str:
        filled = {"input": question, "output": answer}
        return _DEMO_MARKERS.sub(lambda match: filled[match[1]], self.demo_format)

    def prefix(self, instruction: str, demos: Sequence[tuple[str, str]]) -> str:
        """The prompt up to the example's input: the same for every example of a candidate."""
        self.check()
        before_input = self.text.partition(_INPUT_MARKER)[0]
        filled = {"instruction": instruction}
        if "{demos}" in before_input:
            filled["demos"] = self.render_demos(demos)
        return _TEMPLATE_MARKERS.sub(lambda match: filled[match[1]], before_input)

    def suffix(self) -> str:
        """The fixed text after the example's input, such as the cue for the answer."""
        self.check()
        return self.text.partition(_INPUT_MARKER)[2]

    def render(self, instruction: str, demos: Sequence[tuple[str, str]], input: str) -> str:
        """The full prompt for one example: `prefix(instruction, demos) + input + suffix()`."""
        return self.prefix(instruction, demos) + input + self.suffix()

    @property
    def shows_demos(self) -> bool:
        """Whether demonstrations reach the model at all (the template has `{demos}`)."""
        return "{demos}" in self.text.partition(_INPUT_MARKER)[0]

    def before_instruction(self) -> str:
        """The fixed text before the instruction, for scoring how natural an instruction
        reads where it goes."""
        before = self.text.partition("{instruction}")[0]
        return re.sub(r"\{\w+\}", "", before).rstrip()

    def slot_spans(self) -> list[tuple[int, int, str]]:
        """`(start, end, name)` of every `{name}` marker in `text`, for highlighting.

        Unknown names are included too (a GUI can colour them as warnings); test
        `name in SLOTS` to tell them apart.
        """
        return [(match.start(), match.end(), match[1]) for match in _ANY_MARKER.finditer(self.text)]


INSTRUCTION_PLACES = ("system", "user")
"""Where a chat model gets the instruction: its own system message, or the top of the user
message (what a template without a system role gets either way)."""
DEMO_PLACES = ("turns", "inline")
"""How a chat model sees demonstrations: as earlier user and assistant turns, or written in
the user message before the input, in the demonstration format."""
_INPUT_PLACEHOLDER = "\u2063\u2063input\u2063\u2063"


@dataclass(frozen=True)
class ChatPromptTemplate:
    """A prompt for a chat model: the instruction, the demonstrations and the input as
    messages, written out by the model's own chat template. It answers the same questions
    as `PromptTemplate` (`render`, `prefix`, `suffix`), so evaluation treats both alike;
    the text before the input is still the same for every example of a candidate."""

    chat: ChatTemplate
    base: PromptTemplate
    instruction_place: str = "system"
    demo_place: str = "turns"

    @property
    def text(self) -> str:
        return self.base.text

    @property
    def demo_format(self) -> str:
        return self.base.demo_format

    @cached_property
    def _system(self) -> bool:
        return self.instruction_place == "system" and self.chat.accepts_system()

    def messages(self, instruction: str, demos: Sequence[tuple[str, str]], input: str
                 ) -> list[Message]:
        """The conversation the model is given for one example."""
        turns: list[Message] = []
        if self.demo_place == "turns":
            for question, answer in demos:
                turns += [Message("user", question), Message("assistant", answer)]
            turns.append(Message("user", input))
        else:
            turns.append(Message("user", self.base.render_demos(demos) + input))
        if instruction and self._system:
            return [Message("system", instruction), *turns]
        if instruction:
            turns[0] = Message("user", f"{instruction}\n\n{turns[0].content}")
        return turns

    def render(self, instruction: str, demos: Sequence[tuple[str, str]], input: str) -> str:
        """The text the model reads for one example, as its chat template writes it."""
        return self.chat.render(self.messages(instruction, demos, input))

    def _split(self, instruction: str, demos: Sequence[tuple[str, str]]) -> tuple[str, str]:
        text = self.render(instruction, demos, _INPUT_PLACEHOLDER)
        before, found, after = text.partition(_INPUT_PLACEHOLDER)
        if not found:
            raise TemplateError("The model's chat template does not show the user's message "
                                "as it is, so PromptStudio cannot place the input in it.")
        return before, after

    def prefix(self, instruction: str, demos: Sequence[tuple[str, str]]) -> str:
        """The text up to the input: the same for every example of a candidate."""
        return self._split(instruction, demos)[0]

    def suffix(self) -> str:
        """The text after the input: the end of the user's turn and the start of the
        model's reply."""
        return self._split("", [])[1]

    def render_demos(self, demos: Sequence[tuple[str, str]]) -> str:
        return self.base.render_demos(demos)

    shows_demos = True
    """A chat model sees demonstrations as turns or inline, whatever the text template."""

    def before_instruction(self) -> str:
        marker = "\u2063\u2063instruction\u2063\u2063"
        text = self.render(marker, [], "")
        return text.partition(marker)[0].rstrip(" ") if marker in text else ""

    def problems(self) -> list[str]:
        return self.base.problems()

    def fatal_problems(self) -> list[str]:
        return self.base.fatal_problems()

    def check(self) -> None:
        self.base.check()
        self._split("instruction", [("question", "answer")])
