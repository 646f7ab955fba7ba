"""Plain records read from and written to a project database (no SQL here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from promptstudio.llm.config import ModelConfig
from promptstudio.parsing import OutputParser
from promptstudio.templates import DEFAULT_DEMO_FORMAT, DEFAULT_TEMPLATE, PromptTemplate

SPLITS = ("train", "dev", "test")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(instruction: str, demo_ids: tuple[int, ...], template: str | None = None
                ) -> str:
    """Identity of a prompt candidate: its instruction, the demonstrations it shows and,
    when it is not the project's, the template it is scored in."""
    parts: list = [instruction, list(demo_ids)] + ([template] if template else [])
    text = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ProjectSettings:
    """What defines the task: how prompts are built, read back and scored."""

    name: str
    task_description: str = ""
    template: str = DEFAULT_TEMPLATE
    demo_format: str = DEFAULT_DEMO_FORMAT
    instruction: str = ""
    output_parser: OutputParser = field(default_factory=OutputParser)
    metric: str = "normalized_exact"
    tolerance: float = 1e-6
    labels: tuple[str, ...] = ()
    task_model: ModelConfig = field(default_factory=ModelConfig)
    optimizer_model: ModelConfig = field(default_factory=ModelConfig)

    @property
    def prompt_template(self) -> PromptTemplate:
        return PromptTemplate(self.template, self.demo_format)


@dataclass(frozen=True)
class Example:
    id: int
    input: str
    output: str
    answers: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class Candidate:
    """A prompt under consideration: an instruction and the ids of its demonstrations.

    `meta["template"]`, when present, is the template the candidate is scored in instead
    of the project's (OPRO's instruction position).
    """

    id: int
    instruction: str
    demo_ids: tuple[int, ...] = ()
    run_id: int | None = None
    parent_ids: tuple[int, ...] = ()
    operation: str = "manual"
    step: int = 0
    origin: str = ""
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """The task model's answer to one example under one candidate, and its score."""

    candidate_id: int
    example_id: int
    model: str
    raw_output: str
    answer: str
    score: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0


@dataclass(frozen=True)
class Run:
    id: int
    method: str
    status: str
    seed: int = 0
    preset: str = ""
    params: dict = field(default_factory=dict)
    budget: dict = field(default_factory=dict)
    best_candidate_id: int | None = None
    llm_calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    rejected_candidates: int = 0
    error: str | None = None
    created: str = ""
    choice: dict | None = None
    """How the run chose its best prompt and why (`optimize.selection.Choice`), once it
    finished."""
    task_model: ModelConfig = field(default_factory=ModelConfig)
    """The project's task model when the run was created."""
    optimizer_model: ModelConfig = field(default_factory=ModelConfig)
    """The project's optimizer model when the run was created."""
