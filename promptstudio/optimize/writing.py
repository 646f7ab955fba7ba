"""How a method asks the optimizer model to write: as a request, or as text to continue.

Every writing method has two sets of meta-prompts (`Method.meta_prompts`):

- **paper**: the papers' requests ("write an improved prompt between <START> and <END>"),
  for a model that follows requests: an instruction-tuned or large model.
- **base** (`<name>_base.txt`): text a base model can continue. A base model does not
  follow requests (Honovich et al. 2022, arXiv 2205.10782: instruction induction by base
  GPT-3 reached 9.8% of human performance, InstructGPT 65.7%), but it does continue a
  pattern. So each one shows worked cases written for PromptStudio, from tasks that are
  in no benchmark suite (capital cities, spam, past tenses, seasons), then the user's
  case, and ends where the answer begins: the start of the answer is prefilled
  ("Better prompt:"). Each sample stops at the end of its line, with a cap on its tokens,
  and many samples are drawn and deduplicated where the paper asks for several answers
  in one reply.

A run's variant is decided when it is planned, from its optimizer model
(`writer_for`), and kept with the run (`run.params["writer"]`), so a resume writes as the
run began. A run from before the variants existed wrote with the paper's texts.

We do not constrain replies with a llama.cpp grammar: the batched engine samples from
the logits itself (`llm/engine.py`), where llama-cpp-python's `LlamaGrammar` works only
through llama.cpp's own sampler. Stopping at the line's end and the readability gate
(`gate.py`) do that work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from promptstudio.llm.chat import TEXT, prompt_format_of
from promptstudio.llm.config import ModelConfig
from promptstudio.optimize.meta_prompts import fill, load, names

if TYPE_CHECKING:
    from promptstudio.optimize.context import RunContext
    from promptstudio.store.project import Project

BASE, PAPER = "base", "paper"
WRITERS = (BASE, PAPER)
DESCRIPTIONS = {
    BASE: "texts a base model can continue, with worked examples",
    PAPER: "the papers' requests, for a model that follows instructions",
}
LINE_TOKENS = 60
"""One line of a base model's answer: room for the gate's longest instruction (40 words)."""
TEMPERATURE = 0.9


def writer_for(config: ModelConfig) -> str:
    """The variant for this optimizer model, by its prompt format (`chat.prompt_format_of`):
    `BASE` for a local model asked in plain text (the bundled model, a GGUF file without a
    chat template), `PAPER` for a chat model or a server, whose model is not inspected."""
    if config.kind == "local" and prompt_format_of(config) == TEXT:
        return BASE
    return PAPER


def base_name(name: str) -> str:
    """The base-model variant of the meta-prompt `name`."""
    return f"{name}_base"


def gate_texts(project: Project | None = None) -> list[str]:
    """The meta-prompts' wording that a candidate must not repeat (`gate.Gate`)."""
    return [request_part(name, load(name, project)) for name in names()]


def worked_texts(project: Project | None = None) -> list[str]:
    """The worked cases of the base meta-prompts (the paragraphs between the opening one
    and the user's case): a candidate written under them must not copy them."""
    return [case for name in names() if name.endswith("_base")
            for case in load(name, project).split("\n\n")[1:-1]]


def request_part(name: str, text: str) -> str:
    """What of meta-prompt `name` (with `text`) the readability gate holds against a
    candidate that repeats it: all of a paper's; of a base one, its opening paragraph and
    the user's case at the end, not the worked cases between, whose wording is that of
    good instructions."""
    if not name.endswith("_base"):
        return text
    paragraphs = text.split("\n\n")
    return "\n\n".join([paragraphs[0], paragraphs[-1]])


def continue_lines(ctx: RunContext, name: str, *, n: int, key: object,
                   max_tokens: int = LINE_TOKENS, temperature: float = TEMPERATURE,
                   **slots: object) -> list[str]:
    """`n` samples of the line that completes base meta-prompt `name` filled with `slots`,
    repeats dropped, in the order they came. The meta-prompt ends with the start of the
    answer, which the model continues."""
    prompt = fill(load(name, ctx.project), **slots).rstrip()
    replies = ctx.ask(prompt, n=n, temperature=temperature, top_p=0.9, max_tokens=max_tokens,
                      first_line_only=True, key=key)
    # A server may not stop at the line's end (`first_line_only`); the first line counts.
    return distinct(next((line.strip() for line in reply.splitlines() if line.strip()), "")
                    for reply in replies)


def distinct(texts: Iterable[str]) -> list[str]:
    """The texts without repeats (same words, case and punctuation aside), first kept.
    Empty texts stay, for the caller to set aside as unusable replies."""
    seen: set[str] = set()
    kept = []
    for text in texts:
        words = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
        if words not in seen or not words:
            seen.add(words)
            kept.append(text)
    return kept


def one_line(text: str) -> str:
    """The text on one line, as a base meta-prompt's worked cases show an example."""
    return " ".join(text.split())
