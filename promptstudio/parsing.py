"""Model output parsing: turning the text a model wrote into the answer that is scored.

Every place that reads a model's reply goes through this module, so the evaluator, the
GUI's preview and the generation settings sent to a backend agree on what the answer is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("first_line", "full")


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f'The answer pattern "{pattern}" is not a valid regular expression: {error}.'
        ) from None


def _first_nonblank_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def after_reasoning(text: str) -> str | None:
    """A reply without the reasoning a reasoning model writes first (`<think>…</think>`,
    as DeepSeek-R1 distills and Qwen3 do); None while that block is open, or when the
    reply ended inside it (its reasoning was cut off). A template may open the block
    itself, so a reply can start inside it, with only the closing tag."""
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE)
    if start >= 0 and not text[:start].strip():
        end = text.find(THINK_CLOSE, start)
        return None if end < 0 else text[end + len(THINK_CLOSE):]
    if end >= 0 and (start < 0 or start > end):
        return text[end + len(THINK_CLOSE):]
    return text


def reasoning_of(text: str) -> str:
    """The reasoning before a reply's answer (`after_reasoning`), or ""."""
    answer = after_reasoning(text)
    kept = text if answer is None else text[:len(text) - len(answer)]
    return kept.replace(THINK_OPEN, "").replace(THINK_CLOSE, "").strip()


def first_line_complete(text: str) -> bool:
    """Whether the first non-blank line of `text` has ended (so more text cannot change
    it). A reasoning model's block does not count: the answer's first line comes after it."""
    answer = after_reasoning(text)
    if answer is None:
        return False
    for line in answer.splitlines(keepends=True):
        if line.strip():
            return line.splitlines()[0] != line
    return False


@dataclass(frozen=True)
class OutputParser:
    """How to read the answer out of a model's reply to a task prompt.

    `mode` picks the text to look at: "first_line" is the first line that is not blank
    (models often go on to invent further examples), "full" is the whole reply. `regex`,
    if given, then picks the answer out of that text: group 1 of its first match, or the
    whole match when it has no groups, and "" when it does not match. Patterns are
    case-sensitive unless they start with `(?i)`. The answer is always stripped of
    surrounding whitespace. An empty `regex` means no pattern.
    """

    mode: str = "first_line"
    regex: str | None = None

    def __post_init__(self) -> None:
        if self.regex == "":
            object.__setattr__(self, "regex", None)

    def validate(self) -> None:
        """Raise `ValueError`, worded for the user, if the parser cannot be used."""
        if self.mode not in MODES:
            raise ValueError(
                f'Unknown answer mode "{self.mode}". Choose "first_line" (the first line of '
                f'the reply that is not blank) or "full" (the whole reply).'
            )
        if self.regex is not None:
            _compile(self.regex)

    def parse(self, raw: str) -> str:
        """The answer contained in `raw`, the model's reply."""
        self.validate()
        raw = after_reasoning(raw) or ""
        text = _first_nonblank_line(raw) if self.mode == "first_line" else raw.strip()
        if self.regex is None:
            return text
        match = _compile(self.regex).search(text)
        if match is None:
            return ""
        answer = match.group(1) if match.re.groups else match.group(0)
        return (answer or "").strip()

    def is_settled(self, text: str) -> bool:
        """Whether `text`, the start of a reply, already fixes what `parse` will return.

        True once the first non-blank line has ended in "first_line" mode, whatever the
        model writes next; never in "full" mode. A backend that generates token by token
        can stop as soon as this is true without changing the parsed answer.
        """
        return self.mode == "first_line" and first_line_complete(text)

    def stop_sequences(self) -> tuple[str, ...]:
        """Strings a backend may stop generating at without changing `parse`: none.

        A backend stops at the first place a stop string occurs, even at the very start
        of the reply, and no string is safe against that. "\\n" and "\\n\\n" both cut a
        reply that opens with a blank line ("\\n\\nParis" would parse as "" instead of
        "Paris"), and a string with visible characters cuts a reply that begins with it.
        Small models do open with blank lines, so instead of a stop string that sometimes
        loses the answer, backends that can check the text while generating should stop
        when `is_settled` says so.
        """
        return ()

    def to_dict(self) -> dict[str, str | None]:
        return {"mode": self.mode, "regex": self.regex}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> OutputParser:
        """The parser saved by `to_dict`; missing keys take their defaults.

        The values are not validated, so a project with a broken pattern still opens and
        the user can fix it; call `validate` to check.
        """
        mode = data.get("mode", "first_line")
        regex = data.get("regex")
        if not isinstance(mode, str):
            raise ValueError(f"The answer mode must be text, not {mode!r}.")
        if regex is not None and not isinstance(regex, str):
            raise ValueError(f"The answer pattern must be text, not {regex!r}.")
        return cls(mode=mode, regex=regex)


# -- what the optimizer model writes ------------------------------------------------------
#
# Small models rarely follow the requested format to the letter: tags go missing, answers
# come numbered or quoted, the model runs on into new examples. These functions take what
# can be used and say why the rest was not.

_TEMPLATE_ECHOES = re.compile(
    r"\{(instruction|demos|input|output)\}|<INS?>?|<START>|<END>|\[BLANK\]"
    r"|^(input|output)\s*:", re.IGNORECASE)
_LEADING_NOISE = re.compile(
    r"^(\s*([-*•]|\d+[.)]|#+|>|(new |improved |better |revised )?"
    r"(instruction|prompt|answer|output)\s*\d*\s*:))+\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’«»"


def tagged(text: str, start: str = "<START>", end: str = "<END>") -> list[str]:
    """The pieces of `text` between `start` and `end` tags, in order.

    Tolerates a missing end tag (the piece runs to the next start tag or the end of the
    text), different letter case, and no tags at all (then the whole text is one piece).
    """
    pattern = re.compile(re.escape(start) + r"(.*?)(?:" + re.escape(end) + "|(?="
                         + re.escape(start) + r")|$)", re.IGNORECASE | re.DOTALL)
    pieces = [m.group(1).strip() for m in pattern.finditer(text)]
    pieces = [p for p in pieces if p]
    if pieces:
        return pieces
    return [text.strip()] if text.strip() else []


def first_proposal(reply: str) -> str:
    """The first piece of a reply between <START> and <END>, for meta-prompts that end
    with <START>: a reply without its own start tag begins inside the piece."""
    pieces = tagged(reply if "<start>" in reply.lower() else "<START>" + reply)
    return pieces[0] if pieces else ""


def clean_instruction(text: str, max_chars: int = 500) -> tuple[str | None, str]:
    """A usable instruction from model-written text, or (None, why not).

    Keeps the first paragraph, drops list markers, labels such as "Instruction:" and
    surrounding quotes, collapses white space. Rejects empty text, text longer than
    `max_chars`, and text that echoes the template's slots or tags.
    """
    if re.search(r"<START>", text, re.IGNORECASE):
        text = tagged(text)[0]
    paragraph = next((p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()), "")
    lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
    # A model that runs on into an example ("Input: ...") has finished its instruction.
    kept = []
    for line in lines:
        if kept and re.match(r"(input|output|q|a|question|answer)\s*:", line, re.IGNORECASE):
            break
        kept.append(line)
    cleaned = " ".join(kept)
    cleaned = _LEADING_NOISE.sub("", cleaned).strip()
    while len(cleaned) >= 2 and cleaned[0] in _QUOTES and cleaned[-1] in _QUOTES:
        cleaned = cleaned[1:-1].strip()
    cleaned = cleaned.strip(_QUOTES + " ")
    cleaned = re.sub(r"\s+", " ", cleaned)
    if not cleaned or not any(ch.isalnum() for ch in cleaned):
        return None, "empty"
    if len(cleaned) > max_chars:
        return None, f"longer than {max_chars} characters"
    if _TEMPLATE_ECHOES.search(cleaned):
        return None, "repeats the template's slots or tags"
    return cleaned, ""

