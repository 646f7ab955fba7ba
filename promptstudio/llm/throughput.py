"""How fast a model runs on this machine, measured once and remembered.

A run's projected time is computed from these rates rather than guessed: prompt tokens at
the best batched prompt-processing rate, generated tokens at the best rate summed over
parallel sequences. The measurement takes a few seconds and is kept per model and thread
count in the data folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from promptstudio.llm.base import CancelToken
from promptstudio.llm.engine import LlamaEngine
from promptstudio.paths import app_home

PROMPT_BATCHES = (64, 256)
"""Prompt tokens decoded at once: 256 is the engine's batch (`LlamaEngine.n_batch`; larger
ones are cut to it), 64 a batch of a few short answers."""
PARALLEL_SEQUENCES = (1, 16)
"""One sequence (an optimizer's reply) and as many as the engine decodes together
(`local.PARALLEL_SEQUENCES`). With these two and two batch sizes, timing the bundled model
takes about 8 s on 2 cores instead of 17 with the sizes in between, which no estimate read."""


@dataclass(frozen=True)
class Throughput:
    """Measured tokens per second: prompt processing by batch size, generation by the
    number of sequences decoded together."""

    model_id: str
    threads: int
    prompt: dict[int, float] = field(default_factory=dict)
    generation: dict[int, float] = field(default_factory=dict)
    measured: str = ""

    @property
    def best_prompt_rate(self) -> float:
        return max(self.prompt.values())

    @property
    def best_generation_rate(self) -> float:
        return max(self.generation.values())

    def seconds_for(self, prompt_tokens: int, generated_tokens: int) -> float:
        """The fastest this machine can process that many tokens (the roofline)."""
        return (prompt_tokens / self.best_prompt_rate
                + generated_tokens / self.best_generation_rate)

    def to_json(self) -> dict:
        data = asdict(self)
        data["prompt"] = {str(k): v for k, v in self.prompt.items()}
        data["generation"] = {str(k): v for k, v in self.generation.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> Throughput:
        return cls(data["model_id"], int(data["threads"]),
                   {int(k): float(v) for k, v in data["prompt"].items()},
                   {int(k): float(v) for k, v in data["generation"].items()},
                   data.get("measured", ""))


def measure(engine: LlamaEngine, model_id: str, threads: int,
            batches: tuple[int, ...] = PROMPT_BATCHES,
            parallel: tuple[int, ...] = PARALLEL_SEQUENCES,
            cancel: CancelToken | None = None) -> Throughput:
    """Measure an engine; `parallel` is capped by the engine's sequence count. It takes
    from seconds to minutes on a busy machine, so `cancel` is checked between parts."""
    cancel = cancel or CancelToken()
    prompt = {}
    for b in batches:
        cancel.raise_if_cancelled()
        prompt[b] = round(engine.prompt_rate(b), 1)
    generation = {}
    for n in sorted({min(n, engine.n_seq_max - 1) for n in parallel}):
        cancel.raise_if_cancelled()
        generation[n] = round(engine.generation_rate(n), 1)
    return Throughput(model_id, threads, prompt, generation, date.today().isoformat())


def _cache_file() -> Path:
    return app_home() / "models" / "throughput.json"


def cached(model_id: str, threads: int) -> Throughput | None:
    try:
        entries = json.loads(_cache_file().read_text())
        return Throughput.from_json(entries[f"{model_id}|{threads}"])
    except (OSError, ValueError, KeyError):
        return None


def remember(throughput: Throughput) -> None:
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        entries = {}
    entries[f"{throughput.model_id}|{throughput.threads}"] = throughput.to_json()
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(entries, indent=1))
    partial.replace(path)
