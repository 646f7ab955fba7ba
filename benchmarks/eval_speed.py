"""Evaluation speed: PromptStudio's evaluator against the plain loop, and the roofline.

For each task, one fixed candidate (an instruction and 4 demonstrations) is evaluated on N
examples with the bundled model, twice in this process:

  plain  one `llama_cpp.Llama.create_completion` call per example, in sequence, greedy,
         stopping at the first new line (the way any script would do it; llama-cpp-python
         reuses the KV cache of the prompt prefix it shares with the previous example);
  ours   `promptstudio.evaluation.Evaluator` on a fresh project: batched engine, call cache
         writes, database writes and all. Label tasks use the `label` metric (the label is
         chosen from the log-probabilities at the answer position, no generation).

The roofline is the fastest this machine could process the tokens that must be processed
(the shared prefix once, each example's own tokens, each generated token), at the best
measured prompt-processing rate and the best generation rate summed over parallel
sequences.

    python benchmarks/eval_speed.py [--rows 200] [--tasks a,b] [--data DIR] [--json]
                                    [--write docs/performance.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from promptstudio import metrics  # noqa: E402
from promptstudio.dataio import Row  # noqa: E402
from promptstudio.evaluation import Evaluator  # noqa: E402
from promptstudio.llm.bundled import bundled_model_path  # noqa: E402
from promptstudio.llm.config import physical_cores  # noqa: E402
from promptstudio.llm.engine import common_prefix_length  # noqa: E402
from promptstudio.llm.local import LocalBackend  # noqa: E402
from promptstudio.llm.throughput import measure  # noqa: E402
from promptstudio.parsing import OutputParser  # noqa: E402
from promptstudio.store.project import Project  # noqa: E402
from promptstudio.store.records import Example, ProjectSettings  # noqa: E402

DEFAULT_TASKS = ("singular_to_plural", "sst2", "navigate")
INSTRUCTIONS = {
    "singular_to_plural": "Write the plural form of the word.",
    "sst2": "Say whether the movie review is positive or negative.",
    "navigate": "Decide whether following the instructions brings you back to the start.",
}
DEMOS = 4


@dataclass
class TaskResult:
    task: str
    n: int
    plain_seconds: float
    ours_seconds: float
    roofline_seconds: float
    prefix_roofline_seconds: float
    plain_tokens: int
    ours_tokens: int
    agree: int
    plain_accuracy: float
    ours_accuracy: float
    differences: list[tuple[str, str, str]]

    def as_json(self) -> dict:
        return {
            "plain_eps": round(self.n / self.plain_seconds, 2),
            "ours_eps": round(self.n / self.ours_seconds, 2),
            "ratio": round(self.plain_seconds / self.ours_seconds, 2),
            "roofline_eps": round(self.n / self.roofline_seconds, 2),
            "roofline_fraction": round(self.roofline_seconds / self.ours_seconds, 3),
            "prefix_roofline_eps": round(self.n / self.prefix_roofline_seconds, 2),
            "prefix_roofline_fraction": round(
                self.prefix_roofline_seconds / self.ours_seconds, 3),
            "same_predictions": self.agree == self.n,
            "agreeing_predictions": self.agree,
            "n": self.n,
            "plain_tokens": self.plain_tokens,
            "ours_tokens": self.ours_tokens,
            "plain_accuracy": round(self.plain_accuracy, 3),
            "ours_accuracy": round(self.ours_accuracy, 3),
        }


def load_rows(folder: Path, task: str, split: str) -> list[dict]:
    with (folder / task / f"{split}.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_project(folder: Path, task: str, rows: int, workdir: Path) -> tuple[Project, list]:
    """A fresh project with 4 seeded demonstrations and `rows` evaluation examples."""
    info = json.loads((folder / "tasks.json").read_text())[task]
    train = load_rows(folder, task, "train")
    random.Random(0).shuffle(train)
    demos, spare = train[:DEMOS], train[DEMOS:]
    examples = (load_rows(folder, task, "test") + spare)[:rows]
    labels = tuple(info.get("labels", ()))
    settings = ProjectSettings(
        name=task, instruction=INSTRUCTIONS.get(task, "Answer the question."),
        metric="label" if labels else info["metric"], labels=labels,
    )
    project = Project.create(workdir / f"{task}.sqlite", settings)
    demo_ids = project.add_examples(
        [Row(r["input"], r["output"], tuple(r["answers"]), "train") for r in demos])
    project.add_examples(
        [Row(r["input"], r["output"], tuple(r["answers"]), "test") for r in examples])
    return project, demo_ids


def run_plain(model: Path, project: Project, candidate, examples: list[Example],
              threads: int, labels: tuple[str, ...]) -> tuple[float, int, list[str]]:
    """One create_completion per example. Returns seconds, tokens processed, answers."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(model), n_ctx=4096, n_threads=threads,
                            n_threads_batch=threads, verbose=False)
    evaluator = Evaluator(project, LocalBackend(), use_cache=False)
    budget = evaluator.params.max_tokens
    parser = OutputParser()
    answers, tokens, previous = [], 0, []
    started = time.perf_counter()
    for example in examples:
        prompt = evaluator.prompt(candidate, example)
        ids = llama.tokenize(prompt.encode("utf-8"))
        result = llama.create_completion(prompt, max_tokens=budget, temperature=0.0,
                                         stop=["\n"], repeat_penalty=1.0)
        text = result["choices"][0]["text"]
        # What llama.cpp actually ran: the prompt minus the prefix reused from the last
        # call, plus the generated tokens.
        tokens += len(ids) - common_prefix_length(previous, ids) + \
            result["usage"]["completion_tokens"]
        previous = ids
        answer = parser.parse(text)
        if labels:
            answer = next((label for label in labels
                           if metrics.normalize(label) == metrics.normalize(answer)), answer)
        answers.append(answer)
    seconds = time.perf_counter() - started
    llama.close()
    return seconds, tokens, answers


def required_tokens(backend: LocalBackend, evaluator: Evaluator, candidate,
                    examples: list[Example], generated: int) -> tuple[int, int]:
    """Prompt tokens that must be processed (prefix once, each example's own tokens) and
    generated tokens."""
    token_lists = [backend.tokenize(evaluator.prompt(candidate, e)) for e in examples]
    prefix = min(common_prefix_length(token_lists[0], t) for t in token_lists)
    prompt = prefix + sum(len(t) - prefix for t in token_lists)
    if evaluator.settings.metric == "label":
        # Label scoring feeds each label's tokens but the last; one-token labels add none.
        extra = max(len(backend.tokenize(" " + label, add_bos=False)) - 1
                    for label in evaluator.settings.labels)
        prompt += extra * len(examples) * len(evaluator.settings.labels)
    return prompt, generated


@dataclass
class OursRun:
    project: Project
    candidate: object
    examples: list[Example]
    seconds: float
    tokens: int
    answers: list[str]
    accuracy: float
    roofline_seconds: float
    prefix_roofline_seconds: float
    prefix_tokens: int
    prompt_rate_with_prefix: float


def run_ours(folder: Path, task: str, rows: int, workdir: Path, rates) -> OursRun:
    project, demo_ids = build_project(folder, task, rows, workdir)
    candidate = project.add_candidate(project.settings.instruction, demo_ids)
    examples = project.examples("test")
    backend = LocalBackend()
    backend.load()
    evaluator = Evaluator(project, backend)
    fed_before = backend.engine().fed_tokens
    started = time.perf_counter()
    ours = evaluator.evaluate(candidate, examples)
    seconds = time.perf_counter() - started
    tokens = backend.engine().fed_tokens - fed_before
    generated = sum(e.completion_tokens for e in ours.evaluations)
    needed_prompt, needed_generated = required_tokens(backend, evaluator, candidate,
                                                      examples, generated)
    prefix = len(backend.tokenize(evaluator.template.prefix(
        candidate.instruction, evaluator.demos(candidate))))
    engine = backend.engine()
    with_prefix = max(engine.prompt_rate(b, prefix=prefix) for b in (64, 128, 256))
    backend.close()
    roofline = (needed_prompt / rates.best_prompt_rate
                + needed_generated / rates.best_generation_rate)
    prefix_roofline = (needed_prompt / with_prefix
                       + needed_generated / rates.best_generation_rate)
    return OursRun(project, candidate, examples, seconds, tokens,
                   [e.answer for e in ours.evaluations], ours.score, roofline,
                   prefix_roofline, prefix, with_prefix)


def compare_with_plain(task: str, ours: OursRun, threads: int) -> TaskResult:
    project, examples = ours.project, ours.examples
    labels = project.settings.labels
    plain_seconds, plain_tokens, plain_answers = run_plain(
        bundled_model_path(), project, ours.candidate, examples, threads, labels)
    agree = sum(metrics.normalize(a) == metrics.normalize(b)
                for a, b in zip(plain_answers, ours.answers))
    differences = [(e.input[:60], a, b) for e, a, b in
                   zip(examples, plain_answers, ours.answers)
                   if metrics.normalize(a) != metrics.normalize(b)]
    metric = project.settings.metric
    plain_accuracy = sum(metrics.score(metric, a, e.answers)
                         for a, e in zip(plain_answers, examples)) / len(examples)
    project.close()
    return TaskResult(task, len(examples), plain_seconds, ours.seconds, ours.roofline_seconds,
                      ours.prefix_roofline_seconds, plain_tokens, ours.tokens, agree,
                      plain_accuracy, ours.accuracy, differences)


def report(results: list[TaskResult], rates, threads: int, peak_rss_mb: float,
           command: str) -> str:
    lines = [
        "| task | n | plain ex/s | ours ex/s | ratio | roofline ex/s | ours / roofline "
        "| prefix-aware roofline ex/s | ours / that | same predictions | plain tokens "
        "| ours tokens | accuracy plain / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        j = r.as_json()
        lines.append(
            f"| {r.task} | {r.n} | {j['plain_eps']:.2f} | {j['ours_eps']:.2f} | "
            f"{j['ratio']:.2f}x | {j['roofline_eps']:.2f} | {j['roofline_fraction']:.0%} | "
            f"{j['prefix_roofline_eps']:.2f} | {j['prefix_roofline_fraction']:.0%} | "
            f"{r.agree}/{r.n} | {r.plain_tokens} | {r.ours_tokens} | "
            f"{r.plain_accuracy:.2f} / {r.ours_accuracy:.2f} |")
    lines += [
        "",
        f"Machine limit for this model ({threads} threads; the fastest of the measurements "
        "taken before each task): prompt processing "
        + ", ".join(f"{k} tok/batch {v:.0f} tok/s" for k, v in rates.prompt.items())
        + "; generation summed over sequences "
        + ", ".join(f"{k} seq {v:.0f} tok/s" for k, v in rates.generation.items()) + ".",
        f"Peak resident memory while our evaluator ran (before the plain loop loaded its "
        f"own copy of the model): {peak_rss_mb:.0f} MB.",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}.",
        f"Command: `{command}`",
    ]
    for r in results:
        if r.differences:
            lines.append(f"\nDiffering predictions on {r.task} (input, plain, ours), first 5:")
            lines += [f"- `{i}` → plain `{a}`, ours `{b}`" for i, a, b in r.differences[:5]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "bench"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", default=None, help="also write the table to this file")
    args = parser.parse_args()
    os.environ.setdefault("PROMPTSTUDIO_HOME", tempfile.mkdtemp(prefix="ps-bench-"))
    threads = physical_cores()
    folder = Path(args.data)

    folder_rates = []

    def machine_limit():
        """The best rates right now: the machine's speed drifts by 20% over minutes here,
        so each task's roofline is measured just before the task runs."""
        from promptstudio.llm.engine import LlamaEngine

        engine = LlamaEngine(str(bundled_model_path()), n_ctx=4096, n_threads=threads,
                             n_seq_max=33)
        rates = measure(engine, "bundled", threads)
        engine.close()
        folder_rates.append(rates)
        print(f"prompt tok/s by batch: {rates.prompt}; generation tok/s by sequences: "
              f"{rates.generation}", file=sys.stderr)
        return rates

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="ps-bench-projects-"))
    # Ours first, for every task, so that the peak memory below is the evaluator's alone.
    runs = {task: run_ours(folder, task, args.rows, workdir, machine_limit())
            for task in tasks}
    rates = max(folder_rates, key=lambda r: r.best_prompt_rate)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = []
    for task in tasks:
        result = compare_with_plain(task, runs[task], threads)
        print(f"{task}: {json.dumps(result.as_json())}", file=sys.stderr)
        results.append(result)
    command = "python benchmarks/eval_speed.py " + " ".join(sys.argv[1:])
    table = report(results, rates, threads, peak_rss_mb, command.strip())
    print(table)
    if args.write:
        Path(args.write).write_text(table + "\n")
    if args.json:
        summary = {r.task: r.as_json() for r in results}
        summary["peak_rss_mb"] = round(peak_rss_mb)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
