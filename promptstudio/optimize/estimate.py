"""How long a run will take, said before it starts.

A task answer costs its own tokens read at the machine's batched prompt rate, a share of
the prompt that all answers in a batch begin with (instruction and demonstrations, decoded
once per batch), and a short answer at the parallel generation rate. An optimizer call
reads a long meta-prompt and writes a long reply, one sequence at a time. Those rates are
measured once per model and machine (`promptstudio.llm.throughput`).

What the rates cannot see (replies longer than the average, another program busy on the
processor when the rates were measured, cache hits on a resumed run) shows in the runs the
project has already made: the estimate is scaled by how far the last ones were off.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from promptstudio.llm.throughput import Throughput
from promptstudio.store.project import Project

EXAMPLES_PER_PREFIX = 12
"""Answers that share one decoded prefix, typically: the bandits and stages score a
candidate a few examples at a time, the final dev and test scoring many at once."""
META_PROMPT_TOKENS = 400
"""A meta-prompt with its examples, errors or history, as the four methods write them."""
REPLY_TOKENS = 40
"""An optimizer reply: a new instruction, or a few reasons with their instructions.
These three were set against the benchmark suite's runs (`docs/performance.md`); the
estimate still comes out long on an idle machine, because a run makes fewer calls than
projected (repeated replies, cache hits)."""
HISTORY = 5
"""How many of the project's latest runs correct the estimate."""
CORRECTION_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class CallCost:
    """Seconds per task answer and per optimizer reply on this machine, times the
    correction learnt from the project's earlier runs."""

    task: float
    optimizer: float
    correction: float = 1.0

    def uncorrected(self, calls: int, optimizer_calls: int) -> float:
        return (calls - optimizer_calls) * self.task + optimizer_calls * self.optimizer

    def seconds(self, calls: int, optimizer_calls: int) -> float:
        return self.uncorrected(calls, optimizer_calls) * self.correction


def call_cost(project: Project, rates: Throughput) -> CallCost:
    """The cost of a call on the task model's measured rates. The optimizer model is
    assumed to run as fast: a server's speed is not measured."""
    examples = project.examples("train", limit=50) or project.examples(limit=50)
    if not examples:
        return CallCost(0.0, 0.0)
    input_tokens = sum(len(e.input) for e in examples) / len(examples) / 4 + 8
    answer_tokens = sum(len(e.output) for e in examples) / len(examples) / 3 + 2
    demos = 3 * (input_tokens + answer_tokens)
    instruction = len(project.settings.instruction) / 4 + 8
    prefix_share = (demos + instruction) / EXAMPLES_PER_PREFIX
    single = rates.generation.get(1, rates.best_generation_rate)
    task = ((input_tokens + prefix_share) / rates.best_prompt_rate
            + answer_tokens / rates.best_generation_rate)
    optimizer = META_PROMPT_TOKENS / rates.best_prompt_rate + REPLY_TOKENS / single
    return CallCost(task, optimizer, correction(project))


def correction(project: Project) -> float:
    """The median of actual over estimated seconds per call in the project's latest
    finished runs (1 when there are none), kept within `CORRECTION_RANGE`."""
    ratios = []
    for run in sorted(project.runs(), key=lambda r: r.id, reverse=True):
        estimated = run.params.get("uncorrected_seconds")
        projected = run.params.get("projected_calls")
        if (run.status != "finished" or not estimated or not projected
                or run.llm_calls <= 0 or run.seconds <= 0):
            continue
        ratios.append((run.seconds / run.llm_calls) / (estimated / projected))
        if len(ratios) == HISTORY:
            break
    if not ratios:
        return 1.0
    low, high = CORRECTION_RANGE
    return min(high, max(low, statistics.median(ratios)))
