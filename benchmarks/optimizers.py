"""Every optimization method on the shared benchmark tasks, with the bundled model.

For each task a project is made from the benchmark data (train and dev drawn from the
task's train file, test from its test file, both with a fixed seed), every method runs
with the same preset and seed from the same plain starting instruction, and the report
gives the starting prompt's test score beside each method's. The starting prompt is the
plain instruction with 3 demonstrations drawn from train (seeded), as every run starts.

    python benchmarks/optimizers.py [--tasks a,b] [--methods x,y|default] [--preset quick]
        [--data DIR] [--train 100] [--dev 20] [--test 50] [--then demos [--turns N]] [--json]
        [--rows rows.jsonl] [--report-with other.jsonl ...] [--write docs/benchmarks.md]

`--methods default` runs what PromptStudio proposes for the bundled optimizer model
(`optimize.proposal`), as `promptstudio optimize NAME` with no method does: at the
proposal's preset unless `--preset` says otherwise.

Instruction methods write with the meta-prompts the app picks for the bundled model (the
base-model variant, `writing.writer_for`) unless `--writer paper` asks for the papers';
until 2026-12-07 the papers' were the benchmark's default, and rows labelled without
"/base" were written with them.

With `--rows`, each finished run is appended to that file as one JSON line, and runs
already in it are not run again: a long benchmark can be stopped and picked up later.

A benchmark is not a test: CI does not run it. A full run over every task and method
takes hours on a 2-core laptop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from promptstudio.dataio import Row  # noqa: E402
from promptstudio.evaluation import Evaluator  # noqa: E402
from promptstudio.llm.config import ModelConfig  # noqa: E402
from promptstudio.llm.local import LocalBackend  # noqa: E402
from promptstudio.optimize import estimate, runner, writing  # noqa: E402
from promptstudio.optimize.budget import Budget  # noqa: E402
from promptstudio.optimize.context import run_dev_split  # noqa: E402
from promptstudio.optimize.events import (  # noqa: E402
    CandidateCreated,
    CandidateRejected,
    Event,
)
from promptstudio.optimize.method import method_named, methods  # noqa: E402
from promptstudio.optimize.proposal import propose  # noqa: E402
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

NOT_WRITTEN = ("start", "demo", "ablation", "bare", "layout", "order")
"""The operations whose candidates no model wrote: the rest count as "written"."""


def load(folder: Path, task: str, split: str) -> list[dict]:
    with (folder / task / f"{split}.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


TEST_SEED = 0
TEST_DRAW = f"shuffled, seed {TEST_SEED}"
"""How a row's test rows were drawn, recorded with it. Rows without it (before 2026-12-07)
were scored on the first rows of the test file, which for subj are all "subjective"."""


def test_rows(folder: Path, task: str, count: int) -> list[dict]:
    """`count` rows of a task's test file, shuffled with `TEST_SEED` first.

    A test file can be sorted by its answers (subj's first 1000 rows are all "subjective"),
    so its first rows are not a sample of it: a prompt that always says one label would
    score 0.98 on them."""
    rows = load(folder, task, "test")
    random.Random(TEST_SEED).shuffle(rows)
    return rows[:count]


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
    test = test_rows(folder, task, args.test)
    project = workspace.create(ProjectSettings(
        name=f"{task}-{method}", instruction=STARTING_INSTRUCTIONS.get(task, "Answer."),
        metric=info["metric"], labels=tuple(info.get("labels", ()))))
    for rows, split in ((train, "train"), (dev, "dev"), (test, "test")):
        project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), split)
                              for r in rows])
    return project


def label(method: str, then: str | None, args) -> str:
    """A row's method: the run's label, with "/base" where an instruction method wrote
    with the base-model meta-prompts (rows without it wrote with the papers')."""
    writes = method_named(method).meta_prompts or (then and method_named(then).meta_prompts)
    suffix = "/base" if args.writer == writing.BASE and writes else ""
    changed = ",".join(f"{key}={value}" for key, value in args.settings.items())
    return runner.run_label(method, then, args.turns) + suffix + (
        f"[{changed}]" if changed else "")


def setting(text: str) -> tuple[str, object]:
    """A `--set KEY=VALUE` argument, its value read as JSON where it is (numbers, true)."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def run_one(workspace, folder, task, method, then, backend, args) -> dict:
    project = make_project(workspace, folder, task, method, args)
    plan = runner.plan(project, method, preset=args.preset, then=then, turns=args.turns,
                       cost=estimate.call_cost(project, backend.throughput()),
                       writer=args.writer, overrides=args.settings or None)
    run = runner.create_run(project, plan, preset=args.preset, seed=args.seed, budget=Budget())
    rejected_examples: list[str] = []
    set_aside: Counter[str] = Counter()
    written = 0

    def listen(event: Event) -> None:
        nonlocal written
        if isinstance(event, CandidateCreated) and event.operation not in NOT_WRITTEN:
            written += 1
        if isinstance(event, CandidateRejected):
            set_aside[event.rule or "other"] += 1
            if len(rejected_examples) < 3:
                rejected_examples.append(f"{event.reason}: {event.text[:80]!r}")

    started = time.perf_counter()
    outcome = runner.execute(project, run.id, backend, backend, listener=listen)
    minutes = (time.perf_counter() - started) / 60
    choice = outcome.choice
    row = {
        "task": task, "method": label(method, then, args), "preset": args.preset,
        "writer": plan.writer,
        "baseline_test": outcome.baseline_test_score, "test": outcome.test_score,
        "dev": outcome.dev_score, "llm_calls": outcome.llm_calls, "tokens": outcome.tokens,
        "minutes": round(minutes, 1), "machine": machine(), "test_draw": TEST_DRAW,
        "rejected": outcome.rejected_candidates,
        "estimated_minutes": round(plan.projected_seconds / 60, 1),
        "start_instruction": project.settings.instruction,
        "best_instruction": outcome.best.instruction if outcome.best else None,
        "best_demos": len(outcome.best.demo_ids) if outcome.best else None,
        "best_layout": outcome.best.meta.get("layout") if outcome.best else None,
        "kept": choice.kind, "why": choice.reason,
        "select_rows": choice.select_rows, "confirm_rows": choice.confirm_rows,
        "start_scores": choice.scores.get(str(choice.start), {}),
        "pick_scores": choice.scores.get(str(choice.picked), {}),
        "set_aside": dict(set_aside), "written": written,
        "rejected_examples": rejected_examples,
        "written_examples": [f"{c.operation}: {c.instruction[:120]!r}"
                             for c in project.candidates(run.id)
                             if c.operation not in NOT_WRITTEN][:3],
    }
    if args.pool:
        row["pool"] = pool_scores(project, run.id, choice, backend)
    project.close()
    return row


def machine() -> str:
    """The processor and llama.cpp build a row's answers came from: the same prompt can be
    answered differently by another build or processor, so rows are compared across
    machines with care."""
    from promptstudio.llm import native

    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        name = next((line.partition(":")[2].strip() for line in info
                     if line.startswith("model name")), name)
    return f"{name}, {os.cpu_count()} cores, llama.cpp {native.loaded_variant()} build"


def pool_scores(project, run_id: int, choice, backend) -> list[dict]:
    """Every candidate the run chose among (its finalists and the start) and those it
    made to check its pick (`choice.ablation`, `choice.bare`, marked "ablation"), with
    per-row scores on train (as the search scored it), on all of dev and on test, and which
    dev rows were the third a search may rank on (ProTeGi does; the rule before 2026-12-06
    compared every run's finalists there): enough to replay other rules for choosing offline
    (`benchmarks/selection_rules.py`)."""
    ids = [int(key) for key, parts in choice.scores.items()
           if "search" in parts or "select" in parts]
    ids = list(dict.fromkeys([choice.start, *ids]))
    scoring = project.scoring().key
    model = backend.model_id
    third, _ = run_dev_split(project.examples("dev"), project.run(run_id).seed)
    select = {e.id for e in third}
    extra = [i for i in (choice.ablation, choice.bare) if i is not None]
    evaluator = Evaluator(project, backend)
    splits = project.example_splits()
    rows = {split: project.examples(split) for split in ("dev", "test")}
    pool = []
    for candidate_id in [*ids, *extra]:
        candidate = project.candidate(candidate_id)
        for examples in rows.values():
            evaluator.evaluate(candidate, examples)
        per_split: dict[str, dict[int, float]] = {"train": {}, "dev": {}, "test": {}}
        for example_id, evaluation in project.evaluations(candidate_id, model,
                                                          scoring=scoring).items():
            per_split[splits[example_id]][example_id] = evaluation.score
        pool.append({"id": candidate_id, "operation": candidate.operation,
                     "start": candidate_id == choice.start,
                     "ablation": candidate_id in extra,
                     "instruction": candidate.instruction, "demos": len(candidate.demo_ids),
                     "layout": candidate.meta.get("layout"),
                     **{split: {str(k): v for k, v in scores.items()}
                        for split, scores in per_split.items()},
                     "select_ids": sorted(select)})
    return pool


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _search(scores: dict) -> str:
    return _part(scores, "search" if "search" in scores else "select")


def _part(scores: dict, part: str) -> str:
    return _score(scores.get(part))


def shown(row: dict, preset: str) -> str:
    """A row's column in a report at `preset`: its method, and its own preset where that
    is another (the default runs at `thorough`)."""
    own = row.get("preset") or preset
    return row["method"] if own == preset else f"{row['method']} ({own})"


def report(rows: list[dict], args, command: str) -> str:
    """The benchmark as Markdown: what each method gained on test, how often its pick fell
    below the start, what the readability gate set aside, and every run in detail."""
    rows = [{**r, "method": shown(r, args.preset)} for r in rows]
    methods_run = sorted({r["method"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    by = {(r["task"], r["method"]): r for r in rows}
    proposal = propose(ModelConfig())
    default = shown({"method": proposal.label, "preset": proposal.preset}, args.preset)
    lines = ["| | " + " | ".join(m + (" (default)" if m == default else "")
                                  for m in methods_run) + " |",
             "|---|" + "---|" * len(methods_run)]

    def summary(name: str, cell) -> None:
        cells = []
        for m in methods_run:
            runs = [r for r in rows if r["method"] == m and r["test"] is not None]
            cells.append(cell(runs) if runs else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    summary("tasks", lambda runs: str(len(runs)))
    summary("start, mean test", lambda runs: f"{mean([r['baseline_test'] for r in runs]):.3f}")
    summary("pick, mean test", lambda runs: f"{mean([r['test'] for r in runs]):.3f}")
    summary("**gain (points)**", lambda runs: (
        f"**{100 * mean([r['test'] - r['baseline_test'] for r in runs]):+.1f}**"))
    summary("tasks above / below start", lambda runs: (
        f"{sum(r['test'] > r['baseline_test'] + 1e-9 for r in runs)} / "
        f"{sum(r['test'] < r['baseline_test'] - 1e-9 for r in runs)}"))
    summary("share below start", lambda runs: (
        f"{100 * sum(r['test'] < r['baseline_test'] - 1e-9 for r in runs) / len(runs):.0f}%"))
    summary("worst task (points)", lambda runs: (
        f"{100 * min(r['test'] - r['baseline_test'] for r in runs):+.0f}"))
    summary("pick: start / found / new examples", lambda runs: " / ".join(
        str(sum(r.get("kept") == kind for r in runs))
        for kind in ("start", "found", "new demonstrations")))
    all_runs = [r for r in rows if r["test"] is not None]
    below = sum(r["test"] < r["baseline_test"] - 1e-9 for r in all_runs)
    lines += ["", f"All runs: {below} of {len(all_runs)} picks score below their start on "
              f"test ({100 * below / max(len(all_runs), 1):.0f}%).", ""]

    lines += ["### Test score by task", "",
              "| task | start | " + " | ".join(methods_run) + " |",
              "|---|---|" + "---|" * len(methods_run)]
    for task in tasks:
        base = next(r["baseline_test"] for r in rows if r["task"] == task)
        cells = [_score(by[(task, m)]["test"]) if (task, m) in by else "-" for m in methods_run]
        lines.append(f"| {task} | {_score(base)} | " + " | ".join(cells) + " |")

    rules = sorted({rule for r in rows for rule in r.get("set_aside", {})})
    lines += ["", "### What the readability gate set aside, by rule (all tasks)", "",
              "| method | written and kept | set aside | " + " | ".join(rules) + " |",
              "|---|---|---|" + "---|" * len(rules)]
    for m in methods_run:
        runs = [r for r in rows if r["method"] == m]
        counts = Counter()
        for r in runs:
            counts.update(r.get("set_aside", {}))
        written = sum(r.get("written", 0) for r in runs)
        lines.append(f"| {m} | {written} | {sum(counts.values())} | "
                     + " | ".join(str(counts.get(rule, 0)) for rule in rules) + " |")

    compared = [m for m in methods_run if f"{m}/base" in methods_run]
    if compared:
        lines += ["", "### The papers' meta-prompts against those for a base model", "",
                  "The same runs with the optimizer model asked as the papers ask (a "
                  "request), and with text a base model continues (`--writer base`: worked "
                  "cases, a prefilled answer, one line per sample). Passed the gate: the "
                  "share of the instructions the optimizer model wrote that became "
                  "candidates (the rest were set aside as unreadable).", "",
                  "| method | meta-prompts | tasks | gain (points) | picks with written words "
                  "| written | set aside | passed the gate |",
                  "|---|---|---|---|---|---|---|---|"]
        for m in compared:
            for label, words in ((m, "papers'"), (f"{m}/base", "base model")):
                runs = [r for r in rows if r["method"] == label and r["test"] is not None]
                written = sum(r.get("written", 0) for r in runs)
                aside = sum(sum(r.get("set_aside", {}).values()) for r in runs)
                share = f"{100 * written / (written + aside):.0f}%" if written + aside else "-"
                lines.append(
                    f"| {m} | {words} | {len(runs)} | "
                    f"{100 * mean([r['test'] - r['baseline_test'] for r in runs]):+.1f} | "
                    f"{sum(r.get('kept') == 'found' for r in runs)} | {written} | {aside} | "
                    f"{share} |")

    lines += ["", "### Every run: the start's and the pick's scores", "",
              "Dev: all of dev; search: the score the search ranked the finalists by "
              "(train, or for ProTeGi a third of dev; runs before 2026-12-06 show their "
              "select third); checked: the dev rows the search never used, where the "
              "search's best must beat the start (\"-\" where it was not scored).", "",
              "| task | method | start dev / search / checked / test "
              "| pick dev / search / checked / test | pick | calls | minutes |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        start, pick = r.get("start_scores", {}), r.get("pick_scores", {})
        lines.append(
            f"| {r['task']} | {r['method']} | {_part(start, 'dev')} / "
            f"{_search(start)} / {_part(start, 'confirm')} / "
            f"{_score(r['baseline_test'])} | {_part(pick, 'dev')} / {_search(pick)} / "
            f"{_part(pick, 'confirm')} / {_score(r['test'])} | "
            f"{r.get('kept', '-')} | {r['llm_calls']} | {r['minutes']} |")

    changed = [r for r in rows if r.get("best_instruction")
               and r["best_instruction"] != r.get("start_instruction")]
    lines += ["", "### Every best instruction that differs from the start", ""]
    if not changed:
        lines.append("None: every run kept the user's instruction (with new examples or not).")
    for r in changed:
        lines.append(f"- **{r['task']}, {r['method']}**: “{r['best_instruction']}” "
                     f"(start: “{r['start_instruction']}”). {r.get('why', '')}")

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
    parser.add_argument("--preset", default=None, choices=runner.PRESETS,
                        help="default: quick, or the proposal's with --methods default")
    parser.add_argument("--then", default=None, choices=[None, "demos"])
    parser.add_argument("--turns", type=int, default=1,
                        help="with --then: how many times the method and demos take turns")
    parser.add_argument("--writer", choices=writing.WRITERS, default=None,
                        help="the meta-prompts instruction methods write with; default: "
                             "those the app picks for the bundled model (base). Rows of "
                             "'base' runs are labelled method/base")
    parser.add_argument("--set", dest="settings", action="append", type=setting,
                        default=[], metavar="KEY=VALUE",
                        help="a setting of the method (not of --then's) other than its "
                             "preset's; rows are labelled method[KEY=VALUE]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--dev", type=int, default=20)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", default=None)
    parser.add_argument("--rows", default=None, help="JSON-lines file of finished runs")
    parser.add_argument("--report-with", nargs="*", default=[], metavar="ROWS",
                        help="JSON-lines files of finished runs to report beside --rows "
                             "(not run, not resumed); a row at another preset is shown "
                             "as 'method (preset)'")
    parser.add_argument("--pool", action="store_true",
                        help="also score every candidate the run chose among on all of dev "
                             "and test, into the row's 'pool' (for selection_rules.py)")
    args = parser.parse_args()
    args.settings = dict(args.settings)
    os.environ.setdefault("PROMPTSTUDIO_HOME", tempfile.mkdtemp(prefix="ps-optbench-"))
    folder = Path(args.data)
    tasks = (args.tasks.split(",") if args.tasks
             else list(json.loads((folder / "tasks.json").read_text())))
    default = propose(ModelConfig())
    args.writer = args.writer or writing.writer_for(ModelConfig())
    names = args.methods.split(",") if args.methods else methods()
    args.preset = args.preset or (default.preset if "default" in names else "quick")
    chosen = [(default.method, default.then) if name == "default" else (name, args.then)
              for name in names]
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="ps-optbench-projects-")))
    backend = LocalBackend()
    rows_file = Path(args.rows) if args.rows else None
    rows = ([json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
            if rows_file and rows_file.exists() else [])
    beside = [json.loads(line) for path in args.report_with
              for line in Path(path).read_text().splitlines() if line.strip()]
    if any(r.get("test_draw") != TEST_DRAW for r in rows + beside):
        print("Some rows were scored on other test rows (the first rows of each test file, "
              "before 2026-12-07): start a new rows file, or report them with the code of "
              "their day.", file=sys.stderr)
        return 2
    done = {(r["task"], r["method"]) for r in rows}
    for task in tasks:
        for method, then in chosen:
            if (task, label(method, then, args)) in done:
                continue
            row = run_one(workspace, folder, task, method, then, backend, args)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
            if rows_file:
                with rows_file.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
    backend.close()
    command = "python benchmarks/optimizers.py " + " ".join(sys.argv[1:])
    table = report(rows + beside, args, command.strip())
    print(table)
    if args.write:
        Path(args.write).write_text(table + "\n")
    if args.json:
        print(json.dumps({"command": command.strip(), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
