"""Every optimization method on the shared benchmark tasks, with the bundled model.

For each task a project is made from the benchmark data (train and dev drawn from the
task's train file with a fixed seed, test from its test file), every method runs with the
same preset and seed from the same plain starting instruction, and the report gives the
starting prompt's test score beside each method's. The starting prompt is the plain
instruction with 3 demonstrations drawn from train (seeded), as every run starts.

    python benchmarks/optimizers.py [--tasks a,b] [--methods x,y] [--preset quick]
        [--data DIR] [--train 100] [--dev 20] [--test 50] [--then demos [--turns N]] [--json]
        [--rows rows.jsonl] [--write docs/benchmarks.md]

With `--rows`, each finished run is appended to that file as one JSON line, and runs
already in it are not run again: a long benchmark can be stopped and picked up later.

A benchmark is not a test: CI does not run it. A full run over every task and method
takes hours on a 2-core laptop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from promptstudio.dataio import Row  # noqa: E402
from promptstudio.llm.local import LocalBackend  # noqa: E402
from promptstudio.optimize import estimate, runner  # noqa: E402
from promptstudio.optimize.budget import Budget  # noqa: E402
from promptstudio.optimize.events import CandidateRejected, Event  # noqa: E402
from promptstudio.optimize.method import methods  # noqa: E402
from promptstudio.store.records import ProjectSettings  # noqa: E402
from promptstudio.store.workspace import Workspace  # noqa: E402

# Plain starting instructions, one line each, written for this benchmark.
STARTING_INSTRUCTIONS = {
    "first_word_letter": "Write the first letter of the word.",
    "letters_list": "Spell the word with spaces between the letters.",
    "singular_to_plural": "Write the plural of the word.",
    "active_to_passive": "Rewrite the sentence in the passive voice.",
    "negation": "Negate the sentence.",
    "sentiment": "Say whether the review is positive or negative.",
    "larger_animal": "Name the larger of the two animals.",
    "sum": "Add the two numbers.",
    "num_to_verbal": "Write the number in words.",
    "antonyms": "Give the opposite of the word.",
    "translation_en-de": "Translate the word into German.",
    "rhymes": "Give a word that rhymes with the word.",
    "cause_and_effect": "Say which sentence is the cause.",
    "sentence_similarity": "Rate how similar the two sentences are.",
    "boolean_expressions": "Evaluate the boolean expression.",
    "navigate": "Say whether the steps bring you back to the start.",
    "object_counting": "Count the objects.",
    "sports_understanding": "Say whether the sentence is plausible.",
    "sst2": "Say whether the movie review is positive or negative.",
    "subj": "Say whether the sentence is subjective or objective.",
    "liar": "Say whether the statement is a lie.",
}


def load(folder: Path, task: str, split: str) -> list[dict]:
    with (folder / task / f"{split}.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


MIN_TRAIN = 20


def dev_and_train(rows: list[dict], dev: int, train: int) -> tuple[list[dict], list[dict]]:
    """Disjoint dev and train rows from a task's train file, shuffled with seed 0.

    Repeated inputs are dropped first (subj's train file holds each of its 32 sentences
    twice), so that no dev row is also a training row. When too few rows remain for both
    sizes, dev shrinks so that train keeps `MIN_TRAIN` rows to draw demonstrations and
    errors from (the BIG-Bench Hard tasks, with 50 rows, keep dev 30 / train 20)."""
    rows = list(rows)
    random.Random(0).shuffle(rows)
    seen: set[str] = set()
    unique = [r for r in rows if not (r["input"] in seen or seen.add(r["input"]))]
    dev = min(dev, max(0, len(unique) - min(train, MIN_TRAIN)))
    return unique[:dev], unique[dev:dev + train]


def make_project(workspace: Workspace, folder: Path, task: str, method: str, args):
    info = json.loads((folder / "tasks.json").read_text())[task]
    dev, train = dev_and_train(load(folder, task, "train"), args.dev, args.train)
    test = load(folder, task, "test")[:args.test]
    project = workspace.create(ProjectSettings(
        name=f"{task}-{method}", instruction=STARTING_INSTRUCTIONS.get(task, "Answer."),
        metric=info["metric"], labels=tuple(info.get("labels", ()))))
    for rows, split in ((train, "train"), (dev, "dev"), (test, "test")):
        project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), split)
                              for r in rows])
    return project


def run_one(workspace, folder, task, method, backend, args) -> dict:
    project = make_project(workspace, folder, task, method, args)
    plan = runner.plan(project, method, preset=args.preset, then=args.then, turns=args.turns,
                       cost=estimate.call_cost(project, backend.throughput()))
    run = runner.create_run(project, plan, preset=args.preset, seed=args.seed, budget=Budget())
    rejected_examples: list[str] = []

    def listen(event: Event) -> None:
        if isinstance(event, CandidateRejected) and len(rejected_examples) < 3:
            rejected_examples.append(f"{event.reason}: {event.text[:80]!r}")

    started = time.perf_counter()
    outcome = runner.execute(project, run.id, backend, backend, listener=listen)
    minutes = (time.perf_counter() - started) / 60
    row = {
        "task": task, "method": runner.run_label(method, args.then, args.turns),
        "baseline_test": outcome.baseline_test_score, "test": outcome.test_score,
        "dev": outcome.dev_score, "llm_calls": outcome.llm_calls, "tokens": outcome.tokens,
        "minutes": round(minutes, 1), "rejected": outcome.rejected_candidates,
        "estimated_minutes": round(plan.projected_seconds / 60, 1),
        "best_instruction": outcome.best.instruction if outcome.best else None,
        "best_demos": len(outcome.best.demo_ids) if outcome.best else None,
        "rejected_examples": rejected_examples,
        "written_examples": [f"{c.operation}: {c.instruction[:120]!r}"
                             for c in project.candidates(run.id)
                             if c.operation not in ("start", "demo")][:3],
    }
    project.close()
    return row


def _cell(text: str | None, limit: int = 100) -> str:
    """A prompt as one markdown table cell: quoted, one line, no pipes, cut short."""
    if text is None:
        return "-"
    flat = " ".join(text.split()).replace("|", "\\|")
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def report(rows: list[dict], args, command: str) -> str:
    methods_run = sorted({r["method"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    by = {(r["task"], r["method"]): r for r in rows}
    lines = ["| task | start (test) | " + " | ".join(methods_run) + " |",
             "|---|---|" + "---|" * len(methods_run)]
    for task in tasks:
        base = next(r["baseline_test"] for r in rows if r["task"] == task)
        cells = [f"{by[(task, m)]['test']:.2f}" if (task, m) in by else "-"
                 for m in methods_run]
        lines.append(f"| {task} | {base:.2f} | " + " | ".join(cells) + " |")
    bases = {r["task"]: r["baseline_test"] for r in rows}
    mean_base = sum(bases.values()) / len(bases)
    means, gains, record = [], [], []
    for m in methods_run:
        runs = [r for r in rows if r["method"] == m]
        mean = sum(r["test"] for r in runs) / len(runs)
        start = sum(r["baseline_test"] for r in runs) / len(runs)
        means.append(f"{mean:.3f}" + (f" ({len(runs)} tasks)" if len(runs) < len(tasks) else ""))
        gains.append(f"{100 * (mean - start):+.1f}")
        won = sum(r["test"] > r["baseline_test"] + 1e-9 for r in runs)
        lost = sum(r["test"] < r["baseline_test"] - 1e-9 for r in runs)
        record.append(f"{won} / {lost}")
    lines.append(f"| **mean** | {mean_base:.3f} | " + " | ".join(means) + " |")
    lines.append("| **gain (points)** | | " + " | ".join(gains) + " |")
    lines.append("| **tasks above / below start** | | " + " | ".join(record) + " |")
    lines += ["", "| task | method | calls | tokens | minutes | rejected | demos | "
              "best instruction |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['method']} | {r['llm_calls']} | {r['tokens']} | "
                     f"{r['minutes']} | {r['rejected']} | {r.get('best_demos', '-')} | "
                     f"{_cell(r['best_instruction'])} |")
    lines += ["", f"Preset {args.preset}, seed {args.seed}, train {args.train}, dev {args.dev}, "
              f"test {args.test} rows per task; bundled model, {os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}.",
              f"Command: `{command}`"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "bench"))
    parser.add_argument("--tasks", default=None)
    parser.add_argument("--methods", default=None)
    parser.add_argument("--preset", default="quick", choices=runner.PRESETS)
    parser.add_argument("--then", default=None, choices=[None, "demos"])
    parser.add_argument("--turns", type=int, default=1,
                        help="with --then: how many times the method and demos take turns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--dev", type=int, default=20)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", default=None)
    parser.add_argument("--rows", default=None, help="JSON-lines file of finished runs")
    args = parser.parse_args()
    os.environ.setdefault("PROMPTSTUDIO_HOME", tempfile.mkdtemp(prefix="ps-optbench-"))
    folder = Path(args.data)
    tasks = (args.tasks.split(",") if args.tasks
             else list(json.loads((folder / "tasks.json").read_text())))
    chosen = args.methods.split(",") if args.methods else methods()
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="ps-optbench-projects-")))
    backend = LocalBackend()
    rows_file = Path(args.rows) if args.rows else None
    rows = ([json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
            if rows_file and rows_file.exists() else [])
    done = {(r["task"], r["method"]) for r in rows}
    for task in tasks:
        for method in chosen:
            if (task, runner.run_label(method, args.then, args.turns)) in done:
                continue
            row = run_one(workspace, folder, task, method, backend, args)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
            if rows_file:
                with rows_file.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
    backend.close()
    command = "python benchmarks/optimizers.py " + " ".join(sys.argv[1:])
    table = report(rows, args, command.strip())
    print(table)
    if args.write:
        Path(args.write).write_text(table + "\n")
    if args.json:
        print(json.dumps({"command": command.strip(), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
