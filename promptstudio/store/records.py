"""Plain records read from and written to a project database (no SQL here)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

from promptstudio.llm.chat import CHAT, TEXT
from promptstudio.llm.config import ModelConfig
from promptstudio.parsing import OutputParser
from promptstudio.templates import DEFAULT_DEMO_FORMAT, DEFAULT_TEMPLATE, PromptTemplate

MIN_ANSWER_TOKENS = 16
MAX_ANSWER_TOKENS = 256


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fingerprint(instruction: str, demo_ids: tuple[int, ...], template: str | None = None,
                demo_format: str | None = None) -> str:
    """Identity of a prompt candidate: its instruction, the demonstrations it shows and,
    when they are not the project's, the template and demonstration format it is scored
    in."""
    parts: list = [instruction, list(demo_ids)] + ([template] if template else [])
    parts += [demo_format] if demo_format else []
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
    calibrate: bool = False
    """For the label metric: divide out the model's bias toward some labels, measured on
    content-free inputs (contextual calibration)."""
    instruction_place: str = "system"
    """For a chat model: the instruction in a system message, or atop the user message
    (`templates.INSTRUCTION_PLACES`)."""
    demo_place: str = "turns"
    """For a chat model: demonstrations as earlier turns, or inline in the user message
    (`templates.DEMO_PLACES`)."""
    task_model: ModelConfig = field(default_factory=ModelConfig)
    optimizer_model: ModelConfig = field(default_factory=ModelConfig)

    @property
    def prompt_template(self) -> PromptTemplate:
        return PromptTemplate(self.template, self.demo_format)


def answer_token_budget(answers: Iterable[str]) -> int:
    """Generation length from the longest reference answer: about 2 characters a token,
    plus headroom; small models ramble, and every token past the answer is wasted time."""
    longest = max((len(a) for a in answers), default=0)
    return max(MIN_ANSWER_TOKENS, min(MAX_ANSWER_TOKENS, math.ceil(longest / 2) + 8))


@dataclass(frozen=True)
class Scoring:
    """Everything besides the prompt and the model that decides a score: how a prompt is
    put together, how the answer is read and judged, and how long it may be.

    Every stored evaluation carries the `key` of the scoring it was made under, and every
    reader asks for the scores of one scoring, so that changing the template, the metric
    or the labels never leaves old scores counted as current. Settings that cannot change
    a score under the metric are left out (labels under a metric that does not choose
    among labels), so that editing them does not throw scores away. A setting added later
    should stay out of the key while it has its old default, so that old keys still hold.
    """

    template: str
    demo_format: str
    metric: str
    labels: tuple[str, ...] = ()
    tolerance: float | None = None
    parser: dict = field(default_factory=dict)
    answer_tokens: int = MIN_ANSWER_TOKENS
    temperature: float = 0.0
    calibrate: bool = False
    prompt_format: str = TEXT
    """How prompts reached the task model: plain text, or its chat template (`llm.chat`)."""
    instruction_place: str = "system"
    demo_place: str = "turns"

    @classmethod
    def of(cls, settings: ProjectSettings, answers: Iterable[str],
           prompt_format: str = TEXT) -> Scoring:
        """The scoring of a project's settings; `answers` are the reference answers the
        answer length is sized on (the training rows', else all); `prompt_format`, the
        task model's (`chat.prompt_format_of`). Where a chat model's messages go counts
        only for a chat model."""
        chat = prompt_format == CHAT
        return cls(template=settings.template, demo_format=settings.demo_format,
                   metric=settings.metric,
                   labels=settings.labels if settings.metric == "label" else (),
                   tolerance=settings.tolerance if settings.metric == "numeric" else None,
                   parser=settings.output_parser.to_dict(),
                   answer_tokens=answer_token_budget(answers),
                   calibrate=settings.calibrate and settings.metric == "label",
                   prompt_format=prompt_format,
                   instruction_place=settings.instruction_place if chat else "system",
                   demo_place=settings.demo_place if chat else "turns")

    @property
    def key(self) -> str:
        data = {k: v for k, v in self.to_dict().items()
                if k not in _ADDED_LATER or v != _ADDED_LATER[k]}
        text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def output_parser(self) -> OutputParser:
        return OutputParser.from_dict(self.parser)

    @property
    def prompt_template(self) -> PromptTemplate:
        return PromptTemplate(self.template, self.demo_format)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Scoring:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["labels"] = tuple(values.get("labels") or ())
        return cls(**values)

    def applied_to(self, settings: ProjectSettings) -> ProjectSettings:
        """`settings` with this scoring's template, metric, labels and parser: what a run
        made under this scoring works with, whatever the project holds now."""
        return replace(settings, template=self.template, demo_format=self.demo_format,
                       metric=self.metric, labels=self.labels or settings.labels,
                       tolerance=settings.tolerance if self.tolerance is None
                       else self.tolerance, output_parser=self.output_parser,
                       calibrate=self.calibrate,
                       instruction_place=self.instruction_place, demo_place=self.demo_place)


_ADDED_LATER = {"calibrate": False, "prompt_format": TEXT, "instruction_place": "system",
                "demo_place": "turns"}
"""Scoring settings added after scores were first keyed, with the value every earlier
score was made under: left out of the key at that value, so that old keys still hold."""


@dataclass(frozen=True)
class Example:
    id: int
    input: str
    output: str
    answers: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class Candidate:
    """A prompt under consideration: an instruction and its demonstrations.

    A prompt is its text: `demos` holds the demonstrations' input and output as they were
    when the candidate was made, so that editing or deleting those rows later changes
    neither the prompt nor what its scores are of. `demo_ids` says which rows they came
    from (the search keeps a prompt's demonstrations out of the rows it is scored on).
    `meta["template"]`, when present, is the template the candidate is scored in instead
    of the project's (OPRO's instruction position, a layout of demonstration search), and
    `meta["demo_format"]` the way it writes its demonstrations.
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
    demos: tuple[tuple[str, str], ...] = ()
    """(input, output) of each demonstration, in order; as many as `demo_ids`."""


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
    scoring: str = ""
    """The `Scoring.key` it was made under."""


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
    scoring: str | None = None
    """The `Scoring.key` its prompts are scored under, fixed when the run was created."""
    task_model_id: str | None = None
    """The task model's identity as evaluations name it, once the run has started."""


def settings_to_row(settings: ProjectSettings) -> dict:
    """The project table's columns for these settings."""
    return {
        "name": settings.name,
        "task_description": settings.task_description,
        "template": settings.template,
        "demo_format": settings.demo_format,
        "instruction": settings.instruction,
        "output_parser": json.dumps(settings.output_parser.to_dict()),
        "metric": settings.metric,
        "metric_options": json.dumps({"tolerance": settings.tolerance,
                                      "calibrate": settings.calibrate}),
        "labels": json.dumps(list(settings.labels), ensure_ascii=False),
        "chat": json.dumps({"instruction": settings.instruction_place,
                            "demos": settings.demo_place}),
        "task_model": json.dumps(settings.task_model.to_dict()),
        "optimizer_model": json.dumps(settings.optimizer_model.to_dict()),
    }


def settings_from_row(row: dict) -> ProjectSettings:
    options = json.loads(row["metric_options"])
    chat = json.loads(row.get("chat") or "{}")  # schema 8
    return ProjectSettings(
        name=row["name"],
        task_description=row["task_description"],
        template=row["template"],
        demo_format=row["demo_format"],
        instruction=row["instruction"],
        output_parser=OutputParser.from_dict(json.loads(row["output_parser"])),
        metric=row["metric"],
        tolerance=float(options.get("tolerance", 1e-6)),
        calibrate=bool(options.get("calibrate", False)),
        labels=tuple(json.loads(row["labels"])),
        instruction_place=str(chat.get("instruction", "system")),
        demo_place=str(chat.get("demos", "turns")),
        task_model=ModelConfig.from_dict(json.loads(row["task_model"])),
        optimizer_model=ModelConfig.from_dict(json.loads(row["optimizer_model"])),
    )
