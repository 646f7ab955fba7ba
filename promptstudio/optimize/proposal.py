"""What to run, for the models in use: the proposal the Run page and `optimize` make, and the
warning a method gives when its optimizer model cannot do what it asks.

The proposal comes from the measurements in `docs/benchmarks.md` (the shared suite, quick
preset, the bundled model as task and optimizer model). There, all of the gain came from
choosing the examples and how they are written, and no instruction the methods wrote beat
the user's on unseen rows: a 270M base model does not follow a request to critique or
rewrite a prompt
(Honovich et al. 2022, arXiv 2205.10782: instruction induction with base GPT-3 reaches 9.8% of
human performance, with InstructGPT 65.7%). With an instruction-tuned or larger optimizer
model nothing has been measured yet, and the proposal says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptstudio.llm.base import BackendError
from promptstudio.llm.chat import CHAT, prompt_format_of
from promptstudio.llm.config import ModelConfig
from promptstudio.optimize.method import method_named

SMALL_MODEL_BYTES = 1_500_000_000
"""A GGUF file under this size holds a model of about 2-3B parameters or fewer at 4 bits."""
SMALL_BASE, CAPABLE, UNKNOWN = "small base model", "instruction model", "unknown"


@dataclass(frozen=True)
class Proposal:
    """A method, an optional follow-up and a preset, with the reason in words."""

    method: str
    then: str | None
    preset: str
    why: str

    @property
    def label(self) -> str:
        """'demos', 'ape+demos': how runs and benchmarks name it."""
        return f"{self.method}+{self.then}" if self.then else self.method


MEASURED = Proposal(
    "demos", None, "thorough",
    "Proposed for a small base model such as the bundled one: on the shared benchmark "
    "suite, choosing the examples shown with your instruction, their order and layout, "
    "gave all of the gain. In the latest measurement the thorough setting gained 10 "
    "points on average over 21 tasks and ended below the prompt it started from on none "
    "(earlier measurements: 8 to 10 points; 6 with another seed), for about three "
    "minutes a task with 50 training examples on two cores. The quick setting gained 9 "
    "points in under half the time (docs/benchmarks.md).")
UNMEASURED = Proposal(
    "ape", "demos", "quick",
    "Proposed for an instruction-tuned or larger optimizer model: APE asks it for "
    "instructions that fit your examples, then the examples are chosen for the best of "
    "them. Only the bundled model has been measured so far, so this is a reasoned guess.")


def optimizer_kind(config: ModelConfig) -> str:
    """What the optimizer model is, as far as a proposal needs to know: a small base model
    (the bundled Gemma 3 270M; a GGUF file with no chat template, under 1.5 GB), an
    instruction or larger model, or unknown (a server, whose model is not inspected)."""
    if config.kind == "server":
        return UNKNOWN
    if config.is_bundled:
        return SMALL_BASE
    from promptstudio.llm.gguf import inspect_gguf

    try:
        info = inspect_gguf(config.path or "")
    except BackendError:
        return UNKNOWN
    chat = prompt_format_of(config) == CHAT
    return SMALL_BASE if not chat and info.size_bytes < SMALL_MODEL_BYTES else CAPABLE


def propose(optimizer_model: ModelConfig) -> Proposal:
    """The method, follow-up and preset to run with this optimizer model."""
    return MEASURED if optimizer_kind(optimizer_model) == SMALL_BASE else UNMEASURED


def writer_warning(method: str, optimizer_model: ModelConfig) -> str | None:
    """What the user should know before running `method` with this optimizer model: a
    method that needs a capable writer warns when the writer is a small base model. It
    never refuses; the readability gate and the choice on unseen rows keep the start
    when nothing better comes."""
    chosen = method_named(method)
    if not chosen.needs_capable_writer or optimizer_kind(optimizer_model) != SMALL_BASE:
        return None
    return (f"{chosen.short_title} asks the optimizer model, {optimizer_model.describe()}, "
            f"to {chosen.asks_the_writer}. A small base model is asked in text it can "
            "continue, and most of what it writes is readable, but on the shared benchmark "
            "its instructions almost never beat the user's: expect little gain and your "
            "prompt to be kept. For such a model demonstration search is the measured "
            "choice; or choose an instruction-tuned optimizer model on the Models page.")
