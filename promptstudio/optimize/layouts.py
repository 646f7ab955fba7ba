"""Layouts: the ways a prompt can write its examples, for demonstration search to try.

Sclar et al., "Quantifying Language Models' Sensitivity to Spurious Features in Prompt
Design" (ICLR 2024, arXiv 2310.11324): with the same instruction and examples, the format
alone (field names such as "Input:" or "Q:", separators, spacing, casing) moved few-shot
accuracy by up to 76 points. A layout is also something a small base model never has to
write: trying one is an edit, not a request.

A `Layout` is the part of a prompt that writes an example: the text before the input, the
text between the input and the answer, and the text after each example. It is found in the
user's own template and demonstration format (`Layout.of`): the demonstration format must
write one input and then one answer, and the template must end by writing the example to
answer the same way, up to its answer (the default template does). Trying another layout
(`Layout.applied`) replaces only those parts; the instruction and whatever the user wrote
around it stay as they are.

Where this departs from the paper: FormatSpread samples formats from a larger grammar
(enumerations and answer-option formats as well) to *measure* the spread of accuracy across
formats; here a few layouts drawn from a smaller grammar (`draw`) are raced like sets of
examples, and the best go to the run's final choice on dev rows the search did not use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from promptstudio.templates import PromptTemplate

NAMES = (("Input", "Output"), ("Q", "A"), ("Question", "Answer"), ("Text", "Answer"),
         ("In", "Out"))
"""Field names for the input and the answer."""
CASINGS = ("as written", "lower", "upper")
JOINS = (": ", " : ", " - ")
"""Between a field's name and its value."""
BREAKS = ("\n", " ", " | ")
"""Between the input's field and the answer's."""
ENDS = ("\n\n", "\n")
"""After each example."""
ARROWS = (" => ", " -> ")
"""Between input and answer, in layouts without field names."""
NAMELESS_SHARE = 1 / 6
"""How often a drawn layout has no field names: one family in six, beside the five
pairs of names."""

_INPUT, _OUTPUT = "{input}", "{output}"


@dataclass(frozen=True)
class Layout:
    """How an example is written: `before` + input + `between` + answer + `after`."""

    before: str
    between: str
    after: str

    @property
    def demo_format(self) -> str:
        return f"{self.before}{_INPUT}{self.between}{_OUTPUT}{self.after}"

    @property
    def cue(self) -> str:
        """How the template ends: the example to answer, written up to its answer (the
        answer's own leading space is the model's to write)."""
        return f"{self.before}{_INPUT}{self.between.rstrip(' ')}"

    def describe(self) -> str:
        """The layout as one readable line: 'Q: … A: …', newlines shown as ⏎."""
        text = f"{self.before}…{self.between}…{self.after}"
        return text.replace("\n", "⏎")

    @classmethod
    def of(cls, template: PromptTemplate) -> Layout | None:
        """The layout `template` writes its examples in, or None when its template does not
        end with the example to answer written the way its demonstrations are."""
        demo = template.demo_format
        if demo.count(_INPUT) != 1 or demo.count(_OUTPUT) != 1:
            return None
        before, _, rest = demo.partition(_INPUT)
        between, _, after = rest.partition(_OUTPUT)
        if _OUTPUT in before:
            return None
        layout = cls(before, between, after)
        return layout if template.text.endswith(layout.cue) else None

    def recorded(self, template: PromptTemplate) -> dict[str, str]:
        """What a candidate in this layout records (`Candidate.meta`): `template` written
        in it, and the layout in one line."""
        written = self.applied(template)
        return {"template": written.text, "demo_format": written.demo_format,
                "layout": self.describe()}

    def applied(self, template: PromptTemplate) -> PromptTemplate:
        """`template` with its examples written in this layout instead of its own (which
        `Layout.of(template)` must have found)."""
        own = Layout.of(template)
        if own is None:
            raise ValueError("The template's layout is its own: nothing to replace.")
        return PromptTemplate(template.text[:len(template.text) - len(own.cue)] + self.cue,
                              self.demo_format)


RECORDED = ("template", "demo_format", "layout")
"""The keys of `Layout.recorded`."""


def recorded_in(meta: dict) -> dict[str, str]:
    """The layout a candidate's meta records (`Layout.recorded`), or {} when it has none;
    OPRO's own `template`, with no layout, is not one."""
    return {key: meta[key] for key in RECORDED} if "layout" in meta else {}


def cased(name: str, casing: str) -> str:
    return name.lower() if casing == "lower" else name.upper() if casing == "upper" else name


def one(rng: random.Random) -> Layout:
    """A layout drawn from the grammar, each part independently (as FormatSpread draws
    formats)."""
    if rng.random() < NAMELESS_SHARE:
        return Layout("", rng.choice(ARROWS), rng.choice(ENDS))
    names, casing = rng.choice(NAMES), rng.choice(CASINGS)
    join, line_break, end = rng.choice(JOINS), rng.choice(BREAKS), rng.choice(ENDS)
    question, answer = (cased(name, casing) for name in names)
    return Layout(f"{question}{join}", f"{line_break}{answer}{join}", end)


def draw(rng: random.Random, count: int, current: Layout) -> list[Layout]:
    """`count` different layouts, none of them `current`, in the order drawn."""
    found: list[Layout] = []
    for _ in range(50 * count):
        if len(found) == count:
            break
        layout = one(rng)
        if layout != current and layout not in found:
            found.append(layout)
    return found
