"""`promptstudio`: the command line over the same library the window uses.

Every command prints plain words for people; `--json` makes the last line one JSON object
for scripts. Errors the user can fix end the program with a one-line message, not a trace.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from promptstudio import workflows
from promptstudio.best_prompt import best_prompt
from promptstudio.dataio import SPLITS
from promptstudio.errors import USER_ERRORS, user_message
from promptstudio.llm.base import CancelToken, model_name
from promptstudio.llm.chat import AUTO, FORMATS, prompt_format_of
from promptstudio.llm.config import ModelConfig, parse_model_spec
from promptstudio.llm.factory import make_backend
from promptstudio.llm.gguf import inspect_gguf
from promptstudio.llm.local import LocalBackend
from promptstudio.metrics import METRICS
from promptstudio.optimize import estimate, events, gate, runner, selection, writing
from promptstudio.optimize.budget import LIMITS, Budget
from promptstudio.optimize.context import RunControl
from promptstudio.optimize.describe import clip
from promptstudio.optimize.method import methods as method_names
from promptstudio.optimize.proposal import propose
from promptstudio.optimize.selection import Choice
from promptstudio.store.errors import is_damaged
from promptstudio.store.project import ProjectError
from promptstudio.store.workspace import Workspace
from promptstudio.templates import DEMO_PLACES, INSTRUCTION_PLACES


class ProgressBar:
    """A one-line progress bar with an ETA on stderr; silent when stderr is not a terminal
    unless `always` is set, so logs and pipes stay clean."""

    def __init__(self, label: str, always: bool = False) -> None:
        self.label = label
        self.start = time.monotonic()
        self.enabled = always or sys.stderr.isatty()
        self._last_draw = 0.0

    def __call__(self, done: int, total: int, fraction: float | None = None) -> None:
        """Draw `done` of `total`; `fraction` (0 to 1) fills the bar and sets the ETA when
        the work is not spread evenly over the count."""
        now = time.monotonic()
        if not self.enabled or (done < total and now - self._last_draw < 0.2):
            return
        self._last_draw = now
        elapsed = now - self.start
        width = 30
        if fraction is None:
            fraction = done / total if total else 1.0
        filled = int(width * fraction)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
            f"{elapsed:5.0f}s elapsed, ETA {eta:4.0f}s"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(args.workspace)


def cmd_new(args: argparse.Namespace) -> int:
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else []
    project, report = workflows.create_project(
        _workspace(args), args.name, args.data, input_field=args.input_field,
        output_field=args.output_field, answers_field=args.answers_field,
        metric=args.metric, labels=labels, split=args.split, seed=args.seed,
    )
    print(f"Created project {args.name!r} at {project.path}.")
    print(report.describe())
    project.close()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    try:
        report = workflows.import_data(
            project, args.data, split=args.split, input_field=args.input_field,
            output_field=args.output_field, answers_field=args.answers_field, seed=args.seed,
            allow_duplicates=args.allow_duplicates,
        )
    finally:
        project.close()
    print(report.describe())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Inputs in more than one split; exit status 1 when there are any."""
    project = _workspace(args).open(args.name)
    try:
        overlaps = project.split_overlaps()
        note = workflows.overlap_note(project)
    finally:
        project.close()
    if args.json:
        print(json.dumps([{"input": text, "splits": list(splits)}
                          for text, splits in overlaps.items()]))
    elif not overlaps:
        print("Every input is in one split only.")
    else:
        print(note)
        for text, splits in list(overlaps.items())[:20]:
            print(f"  {', '.join(splits):<16} {clip(text, 70)}")
        if len(overlaps) > 20:
            print(f"  … and {len(overlaps) - 20} more")
    return 1 if overlaps else 0


def cmd_eval(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    backend = make_backend(project.settings.task_model)
    cancel = CancelToken()
    started = time.monotonic()
    try:
        result = workflows.evaluate_instruction(
            project, backend, args.instruction, demos=args.demos, seed=args.seed,
            split=args.split, limit=args.limit, cancel=cancel,
            on_progress=ProgressBar(f"Evaluating on {args.split}"),
        )
    except KeyboardInterrupt:
        cancel.cancel()
        print("Stopped; finished evaluations are saved.", file=sys.stderr)
        return 130
    finally:
        project.close()
    seconds = time.monotonic() - started
    stats = backend.stats.snapshot()
    for notice in backend.notices:
        print(notice, file=sys.stderr)
    examples = {e.id: e for e in project.examples(args.split, limit=args.limit)}
    if not args.json:
        print(f"{'id':>6}  {'score':>5}  {'answer':<30}  expected")
        for evaluation in result.evaluations:
            example = examples[evaluation.example_id]
            print(f"{evaluation.example_id:>6}  {evaluation.score:5.2f}  "
                  f"{clip(evaluation.answer, 30):<30}  {clip(example.output, 30)}")
    summary = {
        "accuracy": round(result.score, 4), "n": result.n,
        "llm_calls": stats["calls"], "cached_calls": stats["cached_calls"],
        "tokens": stats["tokens"], "seconds": round(seconds, 2),
        "candidate_id": result.candidate.id, "left_out": result.left_out,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"model calls: {stats['calls']} (+{stats['cached_calls']} from cache), "
              f"tokens: {stats['tokens']}, seconds: {seconds:.1f}")
        print(f"accuracy: {result.score:.4f}")
        if result.left_out:
            print(f"{result.left_out} rows left out: the prompt shows them as demonstrations, "
                  "so their answers are in it.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    try:
        if args.what == "best":
            path = workflows.export_best(project, args.out, args.format)
        else:
            path = workflows.export_data(project, args.out, args.format, args.split)
    finally:
        project.close()
    print(f"Wrote {path}.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every project that opens; a line on stderr for each file that does not."""
    summaries, unreadable = _workspace(args).scan()
    for bad in unreadable:
        say(f"Could not open {bad.path.name}: {bad.reason}")
    if args.json:
        print(json.dumps([{"name": s.name, "path": str(s.path), "examples": s.examples}
                          for s in summaries]))
        return 0
    if not summaries:
        print("No projects yet. Create one with: promptstudio new NAME --data FILE")
    for summary in summaries:
        print(f"{summary.name}\t{summary.examples} examples\t{summary.path}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    try:
        settings = project.settings
        counts = project.split_counts()
        best = best_prompt(project)
        info = {
            "name": settings.name, "path": str(project.path),
            "examples": counts, "metric": settings.metric, "labels": list(settings.labels),
            "calibrate": settings.calibrate,
            "template": settings.template, "instruction": settings.instruction,
            "task_model": settings.task_model.describe(),
            "optimizer_model": settings.optimizer_model.describe(),
            "runs": len(project.runs()),
            "best_instruction": best.candidate.instruction if best else None,
            "best_demos": len(best.candidate.demo_ids) if best else None,
            "best_layout": best.candidate.meta.get("layout") if best else None,
            "best_dev_score": best.score("dev") if best else None,
            "best_test_score": best.score("test") if best else None,
            "scored_on": model_name(best.model) if best and best.model else None,
            "scored_under_current_settings": best.current if best else None,
            "why_best": best.why if best else None,
        }
    finally:
        project.close()
    if args.json:
        print(json.dumps(info))
        return 0
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Show or change a project's task settings and its two models."""
    project = _workspace(args).open(args.name)
    try:
        settings = project.settings
        changes: dict[str, object] = {}
        if args.task_model:
            changes["task_model"] = parse_model_spec(args.task_model, settings.task_model)
        if args.optimizer_model:
            changes["optimizer_model"] = parse_model_spec(args.optimizer_model,
                                                          settings.optimizer_model)
        for key in ("task_model", "optimizer_model"):
            chosen = changes.get(key)
            if isinstance(chosen, ModelConfig) and chosen.kind == "local" and chosen.path:
                inspect_gguf(chosen.path)  # the checks the first evaluation would make
        for field_name in ("template", "instruction", "metric", "task_description"):
            value = getattr(args, field_name)
            if value is not None:
                changes[field_name] = value.replace("\\n", "\n")
        if args.labels is not None:
            changes["labels"] = tuple(x.strip() for x in args.labels.split(",") if x.strip())
        if args.calibrate is not None:
            changes["calibrate"] = args.calibrate == "on"
        for key, chosen_format in (("task_model", args.task_format),
                                   ("optimizer_model", args.optimizer_format)):
            if chosen_format is not None:
                model = changes.get(key, getattr(settings, key))
                changes[key] = replace(model, prompt_format=chosen_format)
        for key in ("instruction_place", "demo_place"):
            if getattr(args, key) is not None:
                changes[key] = getattr(args, key)
        if args.threads is not None or args.context is not None:
            for key in ("task_model", "optimizer_model"):
                model = changes.get(key, getattr(settings, key))
                changes[key] = replace(
                    model, n_threads=args.threads if args.threads is not None else model.n_threads,
                    n_ctx=args.context or model.n_ctx)
        if changes:
            settings = project.update_settings(**changes)
    finally:
        project.close()
    for label, model in (("task model", settings.task_model),
                         ("optimizer model", settings.optimizer_model)):
        print(f"{label}: {model.describe()}  ({format_words(model)})")
    place = ("a system message" if settings.instruction_place == "system"
             else "the user message, at the top")
    demos = "as earlier turns" if settings.demo_place == "turns" else "inline"
    print(f"chat models: the instruction in {place}, the demonstrations {demos}")
    calibrated = "  calibrated" if settings.calibrate and settings.metric == "label" else ""
    print(f"metric: {settings.metric}  labels: {', '.join(settings.labels) or '-'}"
          f"{calibrated}")
    print(f"template: {settings.template!r}")
    print(f"instruction: {settings.instruction!r}")
    return 0


def format_words(model: ModelConfig) -> str:
    """'chat format', 'text format (auto)': how prompts reach a model, and why."""
    chosen = prompt_format_of(model)
    return f"{chosen} format" + (" (auto)" if model.prompt_format == AUTO else "")


class RunReporter:
    """Prints a run's events in plain words; a one-line progress bar on a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = ProgressBar("Searching")

    def __call__(self, event: events.Event) -> None:
        if self.quiet:
            return
        if isinstance(event, events.RunStarted):
            say(f"Run {event.run_id}: {event.method}, about {event.projected_calls} calls.")
        elif isinstance(event, events.StepStarted):
            say(f"Step {event.step}/{event.steps}: {event.title}")
        elif isinstance(event, events.BestChanged):
            say(f"  best so far ({event.split} {event.score:.2f}): {clip(event.instruction, 70)}")
        elif isinstance(event, events.Message):
            say(f"  {event.text}")
        elif isinstance(event, events.Progress) and event.projected_calls:
            self.bar(min(event.calls, event.projected_calls), event.projected_calls,
                     event.fraction)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_to_end(project, run_id: int, args: argparse.Namespace, task=None) -> int:
    """Run or resume a run on the models it was created with (`Run.task_model`)."""
    settings, run = project.settings, project.run(run_id)
    try:
        task = task or make_backend(run.task_model)
        optimizer = (task if run.optimizer_model == run.task_model
                     else make_backend(run.optimizer_model))
    except Exception:
        runner.discard_if_unstarted(project, run_id)
        raise
    control = RunControl()
    try:
        outcome = runner.execute(project, run_id, task, optimizer, control=control,
                                 listener=RunReporter(quiet=args.json))
    except KeyboardInterrupt:  # the run saved its counters and paused on the way out
        control.pause()
        if project.run(run_id).status == "running":  # stopped before it could
            project.update_run(run_id, status="paused")
        say(f"Paused. Continue with: promptstudio resume {settings.name}:{run_id}")
        return 130
    if outcome.status != "finished":
        say(f"Run {run_id} {outcome.status}. Continue with: "
            f"promptstudio resume {settings.name}:{run_id}")
        return 1
    if args.json:
        run = project.run(run_id)
        print(json.dumps({"method": run.method, "then": run.params.get("then"),
                          "turns": int(run.params.get("turns") or 1), "preset": run.preset,
                          "writer": run.params.get("writer") or writing.PAPER,
                          **outcome.as_json(project)}))
        return 0
    best = outcome.best
    print(f"Best instruction: {best.instruction if best else '-'}")
    if best and best.demo_ids:
        print(f"With {len(best.demo_ids)} demonstrations: examples {list(best.demo_ids)}")
        if "layout" in best.meta:
            print(f"Each written as: {best.meta['layout']}")
    print(f"dev score: {_fmt(outcome.dev_score)}   test score: {_fmt(outcome.test_score)}   "
          f"starting prompt on test: {_fmt(outcome.baseline_test_score)}")
    if outcome.choice is not None:
        print(f"Why: {outcome.choice.reason}")
    print(f"model calls: {outcome.llm_calls}, tokens: {outcome.tokens}, "
          f"seconds: {outcome.seconds:.0f}, rejected candidates: "
          f"{outcome.rejected_candidates}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cmd_optimize(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    try:
        if args.optimizer_model:
            settings = project.settings
            project.update_settings(optimizer_model=parse_model_spec(
                args.optimizer_model, settings.optimizer_model))
        overrides = dict(_parse_setting(item) for item in args.set or [])
        method, then, preset = args.method, args.then, args.preset or "quick"
        if method is None:
            proposal = propose(project.settings.optimizer_model)
            method, then = proposal.method, args.then or proposal.then
            preset = args.preset or proposal.preset
            if not args.json:
                say(f"No --method given: running the proposal, {proposal.label} ({preset}). "
                    f"{proposal.why}")
        blocking, warnings = runner.preflight(project, method, then)
        overlap = runner.overlap_question(project)
        if overlap and not args.allow_overlap:
            blocking.append(overlap + " To start anyway, add --allow-overlap.")
        if blocking:
            raise ProjectError(" ".join(blocking))
        for warning in warnings:
            say(f"Note: {warning}")

        settings = {"preset": preset, "overrides": overrides, "then": then,
                    "turns": args.turns, "gate_max_words": args.max_instruction_words,
                    "writer": args.writer}
        budget = Budget(args.max_calls, args.max_tokens, args.minutes)
        # Bad settings and a limit that leaves nothing to search with: refused before loading.
        problem = runner.limit_problem(budget, runner.plan(project, method, **settings).final_calls)
        if problem:
            raise ProjectError(problem)
        task = make_backend(project.settings.task_model)
        cost = (estimate.call_cost(project, task.throughput())
                if isinstance(task, LocalBackend) else None)
        run_plan, run = runner.new_run(project, method, **settings, seed=args.seed, cost=cost,
                                       budget=budget)
        if not args.json:
            say(f"Plan: {runner.run_label(method, then, args.turns)} ({preset}), "
                f"{run_plan.describe()}.")
        return _run_to_end(project, run.id, args, task)
    finally:
        project.close()


def _parse_setting(item: str) -> tuple[str, object]:
    key, sep, value = item.partition("=")
    if not sep:
        raise ValueError(f"--set takes key=value, not {item!r}.")
    try:
        return key.strip(), json.loads(value)
    except (ValueError, RecursionError):  # plain text, not JSON
        return key.strip(), value


def cmd_runs(args: argparse.Namespace) -> int:
    project = _workspace(args).open(args.name)
    try:
        runner.mark_interrupted(project)
        current = project.scoring().key
        rows = []
        for run in project.runs():
            best = project.candidate(run.best_candidate_id) if run.best_candidate_id else None
            choice = Choice.from_json(run.choice) if run.choice else None
            test = choice.score(best.id, "test") if choice and best else None
            dev = choice.score(best.id, "dev") if choice and best else None
            rows.append({"id": run.id, "method": run.method, "then": run.params.get("then"),
                         "turns": int(run.params.get("turns") or 1), "preset": run.preset,
                         "writer": run.params.get("writer") or writing.PAPER,
                         "status": run.status, "seed": run.seed, "dev_score": dev,
                         "test_score": test, "llm_calls": run.llm_calls,
                         "best_instruction": best.instruction if best else None,
                         "created": run.created,
                         "current_settings": run.scoring in (None, current)})
    finally:
        project.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("No runs yet. Start one with: promptstudio optimize NAME --method ape")
    for row in rows:
        method = runner.run_label(row["method"], row["then"], row["turns"])
        earlier = "" if row["current_settings"] else " (scored under earlier settings)"
        print(f"{row['id']:>4}  {method:<12} {row['status']:<10} "
              f"test {_fmt(row['test_score'])}  {clip(row['best_instruction'] or '', 60)}"
              f"{earlier}")
    return 0


def _run_reference(text: str) -> tuple[str, int]:
    """('reviews', 3) from 'reviews:3'; ('', 3) from '3'."""
    name, _, number = text.rpartition(":")
    if not number.isdigit():
        raise ValueError(f"A run is given as NAME:ID or ID, not {text!r}.")
    return name, int(number)


def cmd_resume(args: argparse.Namespace) -> int:
    workspace = _workspace(args)
    name, run_id = _run_reference(args.run)
    if not name:
        owners = []
        for summary in workspace.list():
            project = workspace.open(summary.path)
            try:
                runner.mark_interrupted(project)
                if any(r.id == run_id and r.status in runner.RESUMABLE
                       for r in project.runs()):
                    owners.append(summary.name)
            finally:
                project.close()
        if len(owners) != 1:
            found = ", ".join(owners) or "no project"
            raise ProjectError(f"Run {run_id} can be resumed in {found}; "
                               "say which one as NAME:ID.")
        name = owners[0]
    project = workspace.open(name)
    try:
        runner.mark_interrupted(project)
        return _run_to_end(project, run_id, args)
    finally:
        project.close()


def cmd_again(args: argparse.Namespace) -> int:
    """Run a finished (or any) run again, with its settings, limits and seed."""
    name, run_id = _run_reference(args.run)
    if not name:
        raise ValueError(f"A run is given as NAME:ID, not {args.run!r}.")
    project = _workspace(args).open(name)
    try:
        original = project.run(run_id)
        note = runner.again_note(project, original)
        run = runner.run_again(project, original.id)
        say(f"Run {run.id}: {note}")
        return _run_to_end(project, run.id, args)
    finally:
        project.close()


def cmd_methods(args: argparse.Namespace) -> int:
    """The methods, what they do, and their presets beside the paper's defaults."""
    from promptstudio.optimize.method import method_named

    lines = ["# The optimization methods", "",
             "Generated by `promptstudio methods --markdown`.", ""]
    for name in method_names():
        method = method_named(name)
        lines += [f"## {method.title} (`--method {name}`)", "", method.summary, ""]
        if method.needs_capable_writer:
            lines += [f"It asks the optimizer model to {method.asks_the_writer}, which a small "
                      "base model such as the bundled one does not do: with it, the run "
                      "warns before it starts.", ""]
        lines += ["| setting | " + " | ".join(method.presets) + " | paper |",
                  "|---|" + "---|" * (len(method.presets) + 1)]
        keys = list(dict.fromkeys([*method.paper, *next(iter(method.presets.values()))]))
        for key in keys:
            cells = [json.dumps(p.get(key)) for p in method.presets.values()]
            lines.append(f"| `{key}` | " + " | ".join(cells)
                         + f" | {json.dumps(method.paper.get(key, '-'))} |")
        lines.append("")
    default = propose(ModelConfig())
    lines += ["## How a run chooses its best prompt", "", selection.EXPLAINED, "",
              "## The readability gate", "", gate.EXPLAINED, "",
              "## Which method to run", "",
              f"`promptstudio optimize NAME` with no `--method` runs what is proposed for the "
              f"project's optimizer model. For the bundled model: `{default.label}` "
              f"({default.preset}). {default.why}", ""]
    text = "\n".join(lines)
    if not args.markdown:
        text = "\n".join(line for line in lines if not line.startswith(("|---", "Generated")))
    print(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the sample review project (once) and score its starting instruction."""
    workspace = _workspace(args)
    sample = next(s for s in workflows.samples() if s.id == "product_reviews")
    if not workspace.exists(sample.title):
        project, report = workflows.create_sample_project(workspace, sample.id)
        project.close()
        print(report.describe())
    args.name, args.instruction, args.demos, args.split = (
        sample.title, sample.instruction, 3, "dev")
    args.limit, args.seed, args.json = None, 0, False
    print(f"Scoring {sample.instruction!r} with 3 demonstrations on the bundled model:")
    return cmd_eval(args)


def _add_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="CSV, TSV, JSONL or JSON file")
    parser.add_argument("--input-field", default="input")
    parser.add_argument("--output-field", default="output")
    parser.add_argument("--answers-field", default=None,
                        help="column of accepted answers (default: 'answers' when present)")
    parser.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptstudio",
        description="Tune prompts automatically for a local language model.",
    )
    parser.add_argument("--workspace", default=None,
                        help="folder of project files (default: $PROMPTSTUDIO_HOME/projects)")
    parser.add_argument("--self-test", action="store_true",
                        help="check that PromptStudio works on this computer, then exit")
    parser.add_argument("--json", dest="self_test_json", action="store_true",
                        help="with --self-test: end with one JSON line for scripts")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    new = commands.add_parser("new", help="create a project from a data file")
    new.add_argument("name")
    _add_fields(new)
    new.add_argument("--metric", default="normalized_exact", choices=sorted(METRICS))
    new.add_argument("--labels", default=None, help="comma-separated labels")
    new.add_argument("--split", default=None, choices=SPLITS,
                     help="put every row in this split (default: 80%% train, 20%% dev)")
    new.set_defaults(handler=cmd_new)

    imp = commands.add_parser("import", help="add rows from a data file to a project")
    imp.add_argument("name")
    _add_fields(imp)
    imp.add_argument("--split", default=None, choices=SPLITS)
    imp.add_argument("--allow-duplicates", action="store_true",
                     help="also add rows the project already has (same input and output)")
    imp.set_defaults(handler=cmd_import)

    check = commands.add_parser("check", help="list inputs that sit in more than one split")
    check.add_argument("name")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_check)

    ev = commands.add_parser("eval", help="score an instruction on a split of a project")
    ev.add_argument("name")
    ev.add_argument("--instruction", required=True)
    ev.add_argument("--demos", type=int, default=0, help="demonstrations drawn from train")
    ev.add_argument("--split", default="dev", choices=SPLITS)
    ev.add_argument("--limit", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=cmd_eval)

    ex = commands.add_parser("export", help="write the best prompt or the data to a file")
    ex.add_argument("name")
    ex.add_argument("--what", choices=("best", "data"), default="best")
    ex.add_argument("--format", choices=sorted({*workflows.BEST_FORMATS,
                                                *workflows.DATA_FORMATS}), default=None)
    ex.add_argument("--split", default=None, choices=SPLITS, help="with --what data")
    ex.add_argument("--out", required=True)
    ex.set_defaults(handler=cmd_export)

    ls = commands.add_parser("list", help="list the projects")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_list)

    show = commands.add_parser("show", help="describe a project")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    config = commands.add_parser(
        "config", help="show or change a project's models and task settings",
        description="Models are 'bundled', a .gguf file, or a server address such as "
                    "http://127.0.0.1:8080/v1#model-name. In --template, \\n is a new line.")
    config.add_argument("name")
    config.add_argument("--task-model", help="the model whose prompt is tuned")
    config.add_argument("--optimizer-model", help="the model that writes new prompts")
    config.add_argument("--threads", type=int, help="CPU threads for local models (0 = all)")
    config.add_argument("--context", type=int, help="context size in tokens for local models")
    config.add_argument("--template", help="prompt template with {instruction} {demos} {input}")
    config.add_argument("--instruction", help="the starting instruction")
    config.add_argument("--task-description")
    config.add_argument("--metric", choices=sorted(METRICS))
    config.add_argument("--labels", help="comma-separated labels")
    config.add_argument("--calibrate", choices=("on", "off"), default=None,
                        help="label metric: correct for the model's leaning toward some "
                             "labels, measured on inputs that say nothing (calibration)")
    config.add_argument("--task-format", choices=FORMATS, default=None,
                        help="how prompts reach the task model: 'chat' through its chat "
                             "template, 'text' as plain text, 'auto' by the model (default)")
    config.add_argument("--optimizer-format", choices=FORMATS, default=None,
                        help="the same for the optimizer model")
    config.add_argument("--instruction-place", choices=INSTRUCTION_PLACES, default=None,
                        help="chat models: the instruction in a system message (default) or "
                             "atop the user message")
    config.add_argument("--demo-place", choices=DEMO_PLACES, default=None,
                        help="chat models: demonstrations as earlier turns (default) or "
                             "inline in the user message")
    config.set_defaults(handler=cmd_config)

    opt = commands.add_parser("optimize", help="search for a better prompt")
    opt.add_argument("name")
    opt.add_argument("--method", choices=method_names(), default=None,
                     help="the method (default: the one proposed for the optimizer model, "
                          "with its follow-up and preset)")
    opt.add_argument("--then", choices=["demos"], default=None,
                     help="afterwards, search demonstrations for the best instruction")
    opt.add_argument("--turns", type=int, default=1,
                     help="with --then: take turns this many times, each instruction search "
                          "starting from the best instruction and demonstrations so far")
    opt.add_argument("--preset", choices=runner.PRESETS, default=None,
                     help="how long to search (default: quick, or the proposal's)")
    opt.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="change one of the method's settings (repeatable)")
    opt.add_argument("--max-instruction-words", type=int, default=None,
                     help="the longest instruction a model may write, in words (default 40)")
    opt.add_argument("--writer", choices=writing.WRITERS, default=None,
                     help="how to ask the optimizer model for prompts: 'base' continues "
                          "worked examples, 'paper' asks as the papers do (default: 'base' "
                          "for a model file without a chat template, else 'paper')")
    opt.add_argument("--max-calls", type=int, default=None, help=LIMITS["max_calls"])
    opt.add_argument("--max-tokens", type=int, default=None, help=LIMITS["max_tokens"])
    opt.add_argument("--minutes", type=float, default=None, help=LIMITS["max_minutes"])
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--allow-overlap", action="store_true",
                     help="start even when an input is both in train and in dev or test")
    opt.add_argument("--optimizer-model", default=None,
                     help="the model that writes new prompts (default: the project's)")
    opt.add_argument("--json", action="store_true")
    opt.set_defaults(handler=cmd_optimize)

    runs = commands.add_parser("runs", help="list a project's runs")
    runs.add_argument("name")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=cmd_runs)

    resume = commands.add_parser("resume", help="continue a paused or interrupted run")
    resume.add_argument("run", help="NAME:ID, or ID when only one project has it")
    resume.add_argument("--json", action="store_true")
    resume.set_defaults(handler=cmd_resume)

    again = commands.add_parser("again", help="run a run again with its settings and seed")
    again.add_argument("run", help="NAME:ID")
    again.add_argument("--json", action="store_true")
    again.set_defaults(handler=cmd_again)

    described = commands.add_parser("methods", help="explain the methods and their settings")
    described.add_argument("--markdown", action="store_true")
    described.set_defaults(handler=cmd_methods)

    demo = commands.add_parser("demo", help="try the engine on a bundled sample project")
    demo.set_defaults(handler=cmd_demo)

    gui = commands.add_parser("gui", help="open the PromptStudio window")
    gui.add_argument("project", nargs="?",
                     help="a project to open: its name, or a project file (.sqlite)")
    gui.set_defaults(handler=cmd_gui)
    return parser


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the window (`launch.open_window`), with a project when one is named."""
    if args.open_window is None:
        raise ProjectError("The window cannot be opened from here; start promptstudio-gui.")
    project = args.project
    if project and _workspace(args).exists(project):
        project = str(_workspace(args).path_for(project))
    return args.open_window(project)


def main(argv: Sequence[str] | None = None,
         open_window: Callable[[str | None], int] | None = None) -> int:
    """The command line; `open_window` is how its `gui` command opens the window (given by
    `launch`, the one module above both, so that this one never imports Qt)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.open_window = open_window
    if args.self_test:
        from promptstudio import selftest

        return selftest.main(json_output=args.self_test_json)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        print(f"promptstudio: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        if not is_damaged(exc):
            raise
        print(f"promptstudio: {user_message(exc)}", file=sys.stderr)
        return 2

