"""What a user does with a project, as plain functions: the CLI and the GUI both call these.

Each function either completes or leaves the project as it was: data is read and checked
in full before anything is written, and then written in one transaction.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from promptstudio import dataio, deployed, metrics
from promptstudio.best_prompt import best_prompt, prompt_scores, scored_under
from promptstudio.dataio import SPLITS, ImportResult, Row
from promptstudio.evaluation import (
    EvaluationResult,
    Evaluator,
    ProgressCallback,
    own_template,
)
from promptstudio.llm.base import Backend, BackendError, CancelToken, model_name
from promptstudio.llm.chat import (
    CHAT,
    FORMAT_WORDS,
    ServerMessages,
    file_template,
    messages_text,
)
from promptstudio.llm.config import ModelConfig
from promptstudio.optimize.layouts import recorded_in
from promptstudio.paths import resource
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import Candidate, ProjectSettings, Scoring
from promptstudio.store.workspace import Unreadable, Workspace, file_stem
from promptstudio.templates import ChatPromptTemplate

DEFAULT_SPLIT = {"train": 0.8, "dev": 0.2}
BEST_FORMATS = ("txt", "md", "json", "yaml", "messages", "system", "modelfile")
"""How a prompt is written out: its card (txt: the prompt as text, md, json, yaml), or the
way it will be used (`deployed`: chat messages, the system prompt alone, an Ollama
Modelfile)."""
DATA_FORMATS = ("csv", "tsv", "jsonl", "json")


@dataclass
class ImportReport:
    """What an import did, for the user: rows added per split, and what was skipped."""

    added: dict[str, int]
    duplicates: list[tuple[int, int]]
    skipped_blank: int
    source: str
    already: int = 0
    """Rows skipped because the project holds them already (the same input and output)."""
    elsewhere: int = 0
    """Rows added whose input the project already holds in another split."""

    def describe(self) -> str:
        parts = [f"{n} {split}" for split, n in self.added.items() if n]
        text = f"Imported {sum(self.added.values())} rows ({', '.join(parts) or 'none'})"
        text += f" from {self.source}."
        if self.duplicates:
            lines = ", ".join(f"line {b} repeats line {a}" for a, b in self.duplicates[:5])
            more = len(self.duplicates) - 5
            text += f" Skipped {len(self.duplicates)} duplicate rows ({lines}"
            text += f", and {more} more)." if more > 0 else ")."
        if self.skipped_blank:
            text += f" Skipped {self.skipped_blank} rows with an empty input."
        if self.already:
            text += f" Skipped {self.already} rows the project already has."
        if self.elsewhere:
            text += (f" {self.elsewhere} of the new rows have an input the project already "
                     "has in another split, so those inputs are now in two splits (see "
                     "them with: promptstudio check).")
        return text


def read_rows(path: str | Path, input_field: str = "input", output_field: str = "output",
              answers_field: str | None = None) -> ImportResult:
    return dataio.to_rows(dataio.read_table(path), input_field, output_field, answers_field)


def _assign_splits(rows: Sequence[Row], split: str | None, seed: int) -> list[Row]:
    if split is not None:
        if split not in SPLITS:
            raise ProjectError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")
        return [Row(r.input, r.output, r.answers, split) for r in rows]
    if all(r.split in SPLITS for r in rows):
        return list(rows)
    names = dataio.split_rows(len(rows), DEFAULT_SPLIT, seed)
    return [Row(r.input, r.output, r.answers, name) for r, name in zip(rows, names)]


def create_project(workspace: Workspace, name: str, data: str | Path, *,
                   input_field: str = "input", output_field: str = "output",
                   answers_field: str | None = None, metric: str = "normalized_exact",
                   labels: Sequence[str] = (), split: str | None = None, seed: int = 0,
                   instruction: str = "", task_description: str = "") -> tuple[Project,
                                                                                ImportReport]:
    """A new project from a data file. Without `split`, rows go 80/20 to train and dev."""
    _check_new_project(workspace, name, metric, labels, " (--labels a,b)")
    imported = read_rows(data, input_field, output_field, answers_field)
    if not imported.rows:
        raise ProjectError(f"{data} has no rows to import.")
    settings = ProjectSettings(name=name, metric=metric, labels=tuple(labels),
                               instruction=instruction, task_description=task_description)
    return _store_new_project(workspace, settings, imported, str(data), split, seed)


def name_problem(workspace: Workspace, name: str) -> str:
    """Why a new project cannot take this name, in words; "" when it can. The new project
    dialog shows it as the name is typed; creating a project refuses with it."""
    name = name.strip()
    if not name:
        return "Give the project a name."
    try:
        file_stem(name)
    except ProjectError as exc:
        return str(exc)
    if workspace.exists(name):
        return f"A project named \u201c{name}\u201d already exists. Choose another name."
    return ""


def _check_new_project(workspace: Workspace, name: str, metric: str, labels: Sequence[str],
                       labels_hint: str = "") -> None:
    """Refuse a new project's settings before anything is read or written."""
    if metrics.lacks_labels(metric, labels):
        raise ProjectError(f"The 'label' metric needs at least two labels{labels_hint}.")
    problem = name_problem(workspace, name)
    if problem:
        raise ProjectError(problem)


def _store_new_project(workspace: Workspace, settings: ProjectSettings,
                       imported: ImportResult, source: str, split: str | None, seed: int
                       ) -> tuple[Project, ImportReport]:
    """Create the project file and its rows, or nothing at all."""
    rows = _assign_splits(imported.rows, split, seed)
    project = workspace.create(settings)
    try:
        project.add_examples(rows, source=source)
    except BaseException:
        project.close()
        workspace.delete(settings.name)
        raise
    return project, _report(rows, imported, source)


@dataclass(frozen=True)
class Sample:
    """A small project that ships with the app, for trying things out."""

    id: str
    title: str
    path: Path
    task_description: str
    instruction: str
    metric: str
    labels: tuple[str, ...]


def samples() -> list[Sample]:
    folder = resource("samples")
    index = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    return [Sample(key, item["title"], folder / item["file"], item["task_description"],
                   item["instruction"], item["metric"], tuple(item["labels"]))
            for key, item in index.items()]


def create_sample_project(workspace: Workspace, sample_id: str,
                          name: str | None = None) -> tuple[Project, ImportReport]:
    by_id = {sample.id: sample for sample in samples()}
    if sample_id not in by_id:
        raise ProjectError(f"No sample named {sample_id!r}; samples: {', '.join(by_id)}.")
    sample = by_id[sample_id]
    return create_project(
        workspace, name or sample.title, sample.path, metric=sample.metric,
        labels=sample.labels, instruction=sample.instruction,
        task_description=sample.task_description,
    )


def import_data(project: Project, data: str | Path, *, split: str | None = None,
                input_field: str = "input", output_field: str = "output",
                answers_field: str | None = None, seed: int = 0,
                allow_duplicates: bool = False) -> ImportReport:
    imported = read_rows(data, input_field, output_field, answers_field)
    return add_rows(project, imported, str(data), split=split, seed=seed,
                    allow_duplicates=allow_duplicates)[0]


def _into(project: Project | None, imported: ImportResult, split: str | None, seed: int,
          allow_duplicates: bool) -> tuple[list[Row], int, int]:
    """The rows to add to `project`, with their splits: without those it holds already
    (the same input and output, in any split) unless `allow_duplicates`; and how many were
    left out, and how many of those added have an input it holds in another split."""
    rows, already = list(imported.rows), 0
    held: dict[str, set[str]] = {}
    if project is not None:
        pairs = set()
        for example in project.examples():
            pairs.add((example.input, example.output))
            held.setdefault(example.input, set()).add(example.split)
        if not allow_duplicates:
            rows = [r for r in rows if (r.input, r.output) not in pairs]
            already = len(imported.rows) - len(rows)
    rows = _assign_splits(rows, split, seed)
    elsewhere = sum(1 for r in rows if held.get(r.input, set()) - {r.split})
    return rows, already, elsewhere


def _report(rows: Sequence[Row], imported: ImportResult, source: str, already: int = 0,
            elsewhere: int = 0) -> ImportReport:
    added = dict.fromkeys(SPLITS, 0)
    for row in rows:
        added[row.split or "train"] += 1
    return ImportReport(added, imported.duplicates, imported.skipped_blank, source, already,
                        elsewhere)


def overlap_note(project: Project) -> str:
    """A warning, in words, when inputs sit in more than one split; "" when none do."""
    overlaps = project.split_overlaps()
    if not overlaps:
        return ""
    pairs = Counter(" and ".join(splits) for splits in overlaps.values())
    which = (next(iter(pairs)) if len(pairs) == 1
             else "; ".join(f"{n} in {pair}" for pair, n in pairs.most_common()))
    return (f"{len(overlaps)} input{'s are' if len(overlaps) != 1 else ' is'} in more than "
            f"one split ({which}): a prompt can be scored on a row it learned from, and "
            "look better than it is. Delete the copies, or re-split the rows.")


# -- rows the user has already seen (the window's import preview) -------------------------


MAX_SUGGESTED_LABELS = 10


def suggest_scoring(rows: Sequence[Row]) -> tuple[str, tuple[str, ...]]:
    """A metric (and labels) that fits these rows: when a handful of answers each come back
    again and again, the task is choosing among them, and the label metric scores it from
    the model's own preference among them; else loose matching of the answer."""
    counts = Counter(row.output.strip() for row in rows if row.output.strip())
    if (2 <= len(counts) <= MAX_SUGGESTED_LABELS
            and all(count >= 2 for count in counts.values())):
        return "label", tuple(label for label, _ in counts.most_common())
    return "normalized_exact", ()


def plan_import(imported: ImportResult, source: str, *, split: str | None = None,
                seed: int = 0, project: Project | None = None,
                allow_duplicates: bool = False) -> ImportReport:
    """What importing these rows (into `project`, when given) would do, worked out without
    writing anything."""
    rows, already, elsewhere = _into(project, imported, split, seed, allow_duplicates)
    return _report(rows, imported, source, already, elsewhere)


def create_project_from_rows(workspace: Workspace, name: str, imported: ImportResult,
                             source: str, *, split: str | None = None, seed: int = 0,
                             metric: str = "normalized_exact", labels: Sequence[str] = (),
                             instruction: str = "", task_description: str = ""
                             ) -> tuple[Project, ImportReport]:
    """A new project from rows already read and mapped to columns (a previewed file, or
    pasted text). Without `split`, rows keep their own split or go 80/20 to train and dev."""
    _check_new_project(workspace, name, metric, labels)
    if not imported.rows:
        raise ProjectError(f"There are no rows to import from {source}.")
    settings = ProjectSettings(name=name, metric=metric, labels=tuple(labels),
                               instruction=instruction, task_description=task_description)
    return _store_new_project(workspace, settings, imported, source, split, seed)


def add_rows(project: Project, imported: ImportResult, source: str, *,
             split: str | None = None, seed: int = 0, allow_duplicates: bool = False
             ) -> tuple[ImportReport, list[int]]:
    """Add rows already read to a project, leaving out those it has already unless
    `allow_duplicates`; the new rows' ids come back so it can be undone."""
    rows, already, elsewhere = _into(project, imported, split, seed, allow_duplicates)
    ids = project.add_examples(rows, source=source)
    return _report(rows, imported, source, already, elsewhere), ids


def resplit(project: Project, shares: Mapping[str, float], seed: int = 0) -> dict[str, int]:
    """Deal every example anew to train, dev and test in these proportions; the same seed
    deals the same way. Returns how many rows each split now holds."""
    unknown = [name for name in shares if name not in SPLITS]
    if unknown:
        raise ProjectError(f"Unknown split {unknown[0]!r}: use {', '.join(SPLITS)}.")
    if any(share < 0 for share in shares.values()) or sum(shares.values()) <= 0:
        raise ProjectError("Give each split a share of zero or more, and at least one split "
                           "a share above zero.")
    ids = project.example_ids()
    names = dataio.split_rows(len(ids), dict(shares), seed)
    project.set_splits(dict(zip(ids, names)))
    return project.split_counts()


# -- the list of projects -----------------------------------------------------------------


@dataclass(frozen=True)
class ProjectOverview:
    """A project as the projects list shows it: its size and its best score so far."""

    name: str
    path: Path
    examples: int
    best_score: float | None = None
    best_split: str | None = None


def project_overviews(workspace: Workspace) -> tuple[list[ProjectOverview], list[Unreadable]]:
    """Every project of the workspace, with its best mean score on dev, else on test; and
    the files that could not be opened, each with the reason."""
    return workspace.scan(overview_of)


def unreadable_text(unreadable: Sequence[Unreadable]) -> str:
    """The files that could not be opened, one paragraph each, for a message box."""
    return "\n\n".join(f"{bad.path.name}: {bad.reason}" for bad in unreadable)


def overview_of(project: Project) -> ProjectOverview:
    """One project's size and its best prompt's score (on dev, else on test)."""
    score, split = None, None
    best = best_prompt(project)
    if best is not None:
        split = next((s for s in ("dev", "test") if best.score(s) is not None), None)
        score = best.score(split) if split else None
    return ProjectOverview(project.name, project.path, sum(project.split_counts().values()),
                           score, split)


def free_project_name(workspace: Workspace, wanted: str) -> str:
    """`wanted`, or `wanted 2`, `wanted 3`… whichever no project of the workspace uses."""
    name, number = wanted, 1
    while workspace.exists(name):
        number += 1
        name = f"{wanted} {number}"
    return name


def starting_prompt_of(candidate: Candidate) -> dict[str, str]:
    """The project settings that make `candidate` the starting prompt: its instruction and,
    when demonstration search gave it a layout of its own, its template and demonstration
    format (the examples themselves are each run's to draw)."""
    layout = recorded_in(candidate.meta)
    changes = {"instruction": candidate.instruction}
    if layout:
        changes |= {"template": layout["template"], "demo_format": layout["demo_format"]}
    return changes


def draw_demos(project: Project, k: int, seed: int = 0) -> tuple[int, ...]:
    """k training examples, drawn at random with `seed`, as demonstration ids."""
    train = [e.id for e in project.examples("train")]
    if k > len(train):
        raise ProjectError(f"Asked for {k} demonstrations but the project has only "
                           f"{len(train)} training rows.")
    return tuple(sorted(random.Random(seed).sample(train, k)))


def evaluate_instruction(project: Project, backend: Backend, instruction: str, *,
                         demos: int = 0, seed: int = 0, split: str = "dev",
                         limit: int | None = None, cancel: CancelToken | None = None,
                         on_progress: ProgressCallback | None = None) -> EvaluationResult:
    """Score an instruction (with k seeded demonstrations) on a split of the project."""
    examples = project.examples(split, limit=limit)
    if not examples:
        raise ProjectError(f"The project has no {split} rows to evaluate on. "
                           f"Import some with --split {split}.")
    candidate = project.add_candidate(instruction, draw_demos(project, demos, seed))
    evaluator = Evaluator(project, backend, cancel=cancel, on_progress=on_progress)
    return evaluator.evaluate(candidate, examples)


def demonstration_note(project: Project, example_ids: Sequence[int]) -> str:
    """What deleting or editing these rows does to the prompts that show them, in words;
    "" when no prompt does."""
    showing = project.showing(example_ids)
    if not showing:
        return ""
    best = best_prompt(project)
    rows = "This row is" if len(example_ids) == 1 else "These rows are"
    count = f"{len(showing)} prompt{'s' if len(showing) != 1 else ''}"
    among = (", the best prompt among them" if best is not None
             and best.candidate.id in {c.id for c in showing} else "")
    return (f"{rows} shown as a demonstration in {count}{among}. Those prompts keep their "
            "own copy, so what they say and their scores stay as they are; new runs will "
            "not use the rows.")


# -- export -----------------------------------------------------------------------------


def prompt_card(project: Project, candidate: Candidate) -> dict:
    """Everything needed to use a prompt elsewhere, with how well it did on which model,
    and, for the project's best prompt, why it is the best."""
    settings = project.settings
    best = best_prompt(project)
    current = project.scoring()
    if best is not None and best.candidate.id == candidate.id:
        scored_on, scoring_key, why = best.model, best.scoring, best.why
        found = best.scores
    else:
        scored_on, scoring_key = scored_under(project, candidate, current.key)
        why = None
        found = prompt_scores(project, candidate, scored_on, scoring_key)
    scores = {split: {"score": round(mean, 4), "examples": n}
              for split, (mean, n) in found.items()}
    run = project.run(candidate.run_id) if candidate.run_id else None
    # The card shows the template and metric the scores belong to: a run may have scored
    # its candidates in another template (OPRO's instruction position, a layout of
    # demonstration search), and the scores may be from before the settings changed.
    scoring = project.scoring_named(scoring_key) or current
    template = own_template(candidate, scoring)
    demos = list(candidate.demos)
    chat = (chat_prompt_template(settings.task_model, scoring)
            if scoring.prompt_format == CHAT else None)
    shown = chat or template
    if chat is not None and isinstance(chat.chat, ServerMessages):
        # The server writes the messages out with its own template, which we never see.
        prompt = messages_text(chat.messages(candidate.instruction, demos, "{input}"))
    else:
        prompt = shown.prefix(candidate.instruction, demos) + "{input}" + shown.suffix()
    card = {
        "project": settings.name,
        "instruction": candidate.instruction,
        "demos": [{"input": text, "output": output} for text, output in candidate.demos],
        "template": template.text,
        "demo_format": template.demo_format,
        "prompt": prompt,
        "metric": scoring.metric,
        "scores": scores,
        "scored_on": model_name(scored_on) if scored_on else None,
        "current_settings": scoring.key == current.key,
        "why": why,
        "model": settings.task_model.describe(),
        "format": scoring.prompt_format,
        "method": run.method if run else candidate.operation,
        "date": date.today().isoformat(),
    }
    if chat is not None:
        card["messages"] = [m.as_dict() for m in
                            chat.messages(candidate.instruction, demos, "{input}")]
    return card


def chat_prompt_template(model: ModelConfig, scoring: Scoring) -> ChatPromptTemplate | None:
    """A chat model's prompt as its own template writes it (for a card, the Task page's
    preview), or as the messages a chat server is sent; None when the model's file cannot
    be read now."""
    if model.kind == "server":
        return ChatPromptTemplate(ServerMessages(f"the server at {model.base_url}"),
                                  scoring.prompt_template, scoring.instruction_place,
                                  scoring.demo_place)
    if model.is_bundled:
        return None
    try:
        chat = file_template(model.path or "")
    except BackendError:
        return None
    if chat is None:
        return None
    return ChatPromptTemplate(chat, scoring.prompt_template, scoring.instruction_place,
                              scoring.demo_place)


def _card_markdown(card: dict) -> str:
    lines = [f"# Prompt card: {card['project']}", "", "## Instruction", "", card["instruction"],
             ""]
    if card["demos"]:
        lines += ["## Demonstrations", ""]
        for demo in card["demos"]:
            lines += [f"- **Input:** {demo['input']}  ", f"  **Output:** {demo['output']}"]
        lines.append("")
    if card.get("messages"):
        lines += ["## Messages", ""]
        lines += [f"- **{m['role']}:** {m['content']}" for m in card["messages"]]
        lines.append("")
    lines += ["## Prompt as the model sees it", "", "```", card["prompt"], "```", "",
              "## Scores", "", "| split | score | examples |", "|---|---|---|"]
    lines += [f"| {split} | {s['score']:.3f} | {s['examples']} |"
              for split, s in card["scores"].items()]
    if card.get("scored_on"):
        lines += ["", f"Scored on {card['scored_on']}."]
    if not card.get("current_settings", True):
        lines += ["", "These scores were made under earlier settings of the project (its "
                  "template, metric or labels have changed since); the template and metric "
                  "below are those they were made under."]
    if card.get("why"):
        lines += ["", "## Why this prompt", "", card["why"]]
    lines += ["", f"- Metric: `{card['metric']}`",
              f"- Model: {card['model']}, as {FORMAT_WORDS.get(card.get('format'), 'text')}",
              f"- Method: {card['method']}", f"- Date: {card['date']}", ""]
    return "\n".join(lines)


def export_best(project: Project, out: str | Path, fmt: str | None = None,
                candidate: Candidate | None = None) -> Path:
    """Write a candidate, by default the project's best prompt (`best_prompt`), in one of
    `BEST_FORMATS`; without one, the file's suffix says which (a file named Modelfile is
    one)."""
    out = Path(out)
    fmt = (fmt or ("modelfile" if out.name.lower() == "modelfile"
                   else out.suffix.lstrip("."))).lower()
    if fmt not in BEST_FORMATS:
        raise ProjectError(f"Prompts export as {', '.join(BEST_FORMATS)}, not {fmt!r}.")
    if candidate is None:
        best = best_prompt(project)
        candidate = best.candidate if best else None
    if candidate is None:
        raise ProjectError("Nothing to export yet: evaluate or optimize a prompt first.")
    card = prompt_card(project, candidate)
    if fmt == "txt":
        text = card["prompt"] + "\n"
    elif fmt == "md":
        text = _card_markdown(card)
    elif fmt == "json":
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "yaml":
        text = yaml.safe_dump(card, sort_keys=False, allow_unicode=True)
    elif fmt == "messages":
        text = deployed.messages_json(card)
    elif fmt == "system":
        text = deployed.system_prompt(card)
    else:
        text = deployed.modelfile(card, modelfile_source(project.settings.task_model))
    _write_atomically(out, text)
    return out


def modelfile_source(model: ModelConfig) -> str:
    """What a Modelfile's FROM names: the model file the prompt was tuned on, or the
    server's model name (Ollama's own, when the server is Ollama)."""
    if model.kind == "server":
        return model.model or "MODEL-NAME"
    if model.is_bundled:
        from promptstudio.llm.bundled import bundled_model_path
        return str(bundled_model_path())
    return str(Path(model.path or "").resolve())


def export_data(project: Project, out: str | Path, fmt: str | None = None,
                split: str | None = None) -> Path:
    rows = [Row(e.input, e.output, e.answers, e.split) for e in project.examples(split)]
    return dataio.write_rows(rows, out, fmt)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
