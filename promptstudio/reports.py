"""A run's results as plain data: what each candidate scored, how the scores moved step by
step, how a candidate came about, and the rows of a CSV report.

The results page draws these and the tests read them; nothing here knows about widgets.
`RunResults` is loaded from the project in a few queries, and during a run it follows the
engine's events one at a time, so a window can show a run as it goes without reading the
database again. While a run goes, a candidate's score is the running mean of the batches
the engine announced; loading the run afresh gives the stored mean over every example.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from promptstudio.best_prompt import prompt_scores, scored_under
from promptstudio.evaluation import scoring_changes
from promptstudio.llm.base import model_name
from promptstudio.optimize import describe, method, writing
from promptstudio.optimize.events import (
    CandidateCreated,
    CandidateScored,
    Event,
    RunFinished,
    RunStarted,
    StepStarted,
)
from promptstudio.optimize.method import Section, method_named, method_title, methods
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate, Run

PLOTTED_SPLITS = ("train", "dev")
"""The splits a trajectory follows; test is scored once, for the final best."""

def operation_name(operation: str) -> str:
    """How a candidate was made, in plain words (the method that makes it says)."""
    return method.operation(operation).label


def local_time(stamp: str) -> str:
    """A stored UTC timestamp as the user's local date and time, to the minute."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


# -- a run's candidates and their scores -------------------------------------------------


@dataclass
class SplitScore:
    """A running mean: the sum of scores and how many examples they cover."""

    total: float = 0.0
    count: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class CandidateResult:
    """One candidate as the results page lists it."""

    id: int
    run_id: int | None
    instruction: str
    operation: str
    step: int
    parent_ids: tuple[int, ...] = ()
    demo_ids: tuple[int, ...] = ()
    scores: dict[str, SplitScore] = field(default_factory=dict)
    prompt_tokens: float | None = None
    """Mean prompt tokens of one call of the task model (known once stored)."""

    @classmethod
    def of(cls, candidate: Candidate) -> CandidateResult:
        return cls(candidate.id, candidate.run_id, candidate.instruction, candidate.operation,
                   candidate.step, candidate.parent_ids, candidate.demo_ids)

    def score(self, split: str) -> float | None:
        known = self.scores.get(split)
        return known.mean if known else None

    def examples(self, split: str) -> int:
        known = self.scores.get(split)
        return known.count if known else 0

    def add(self, split: str, mean: float, n: int) -> None:
        known = self.scores.setdefault(split, SplitScore())
        known.total += mean * n
        known.count += n

    @property
    def words(self) -> int:
        return len(self.instruction.split())

    @property
    def made_by(self) -> str:
        return operation_name(self.operation)


@dataclass
class RunResults:
    """A run and its candidates, loaded from the project and kept up to date by events."""

    run_id: int
    method: str
    preset: str = ""
    status: str = "pending"
    created: str = ""
    then: str | None = None
    best_candidate_id: int | None = None
    turns: int = 1
    test_score: float | None = None
    baseline_test_score: float | None = None
    step: int = 0
    steps: int = 0
    step_title: str = ""
    candidates: dict[int, CandidateResult] = field(default_factory=dict)
    seed: int = 0
    writer: str = writing.PAPER
    """How the optimizer model was asked to write (`writing`)."""

    @classmethod
    def empty(cls, run: Run) -> RunResults:
        """The run's description without its candidates: what a run starts from (a resumed
        run replays its history as events)."""
        return cls(run.id, run.method, run.preset, run.status, run.created,
                   run.params.get("then"), run.best_candidate_id,
                   int(run.params.get("turns") or 1), seed=run.seed,
                   writer=str(run.params.get("writer") or writing.PAPER))

    @classmethod
    def load(cls, project: Project, run_id: int) -> RunResults:
        """Everything stored about the run, with each candidate's mean per split."""
        results = cls.empty(project.run(run_id))
        scores = project.split_scores(run_id)
        for candidate in project.candidates(run_id):
            result = CandidateResult.of(candidate)
            stored = scores.get(candidate.id, {})
            for split, (mean, count, _) in stored.items():
                result.scores[split] = SplitScore(mean * count, count)
            calls = sum(count for _, count, _ in stored.values())
            if calls:
                result.prompt_tokens = sum(t * n for _, n, t in stored.values()) / calls
            results.candidates[candidate.id] = result
        if results.best_candidate_id in results.candidates:
            results.test_score = results.candidates[results.best_candidate_id].score("test")
        start = results.start
        if start is not None and results.test_score is not None:
            results.baseline_test_score = start.score("test")
        return results

    @property
    def writing_note(self) -> str:
        """How the optimizer model was asked to write, for a run whose methods write; ""
        for one that only chose examples."""
        writes = any(method_named(name).meta_prompts for name in (self.method, self.then)
                     if name and name in methods())
        return (f"The optimizer model wrote with {writing.DESCRIPTIONS[self.writer]}."
                if writes and self.writer in writing.DESCRIPTIONS else "")

    @property
    def start(self) -> CandidateResult | None:
        return next((c for c in self.candidates.values() if c.operation == "start"), None)

    @property
    def title(self) -> str:
        """The method in words, and the method that followed it, if any."""
        return self._joined(method_title(self.method),
                            method_title(self.then) if self.then else None)

    @property
    def short_title(self) -> str:
        """The method's short name, such as 'ProTeGi' or 'APE, then Demonstration search'."""
        return self._joined(method.short_title(self.method),
                            method.short_title(self.then) if self.then else None)

    def _joined(self, method: str, then: str | None) -> str:
        if then is None:
            return method
        if self.turns > 1:
            return f"{method} and {then}, taking turns {self.turns} times"
        return f"{method}, then {then}"

    @property
    def status_name(self) -> str:
        return describe.status_name(self.status)

    def best_score(self, split: str = "dev") -> float | None:
        """The run's chosen prompt's score once it has one, else the best so far."""
        best = self.candidates.get(self.best_candidate_id or -1)
        if best is not None and best.score(split) is not None:
            return best.score(split)
        return max((s for c in self.candidates.values() if (s := c.score(split)) is not None),
                   default=None)

    def apply(self, event: Event,
              lookup: Callable[[int], Candidate] | None = None) -> int | None:
        """Follow one engine event of this run; returns the id of the candidate it added or
        changed, if any. `lookup` fetches a candidate the events never announced (the
        starting prompt is created without an event)."""
        if isinstance(event, CandidateCreated):
            if event.candidate_id not in self.candidates:
                self.candidates[event.candidate_id] = CandidateResult(
                    event.candidate_id, event.run_id, event.instruction, event.operation,
                    event.step, tuple(event.parent_ids))
            return event.candidate_id
        if isinstance(event, CandidateScored):
            result = self.candidates.get(event.candidate_id)
            if result is None:
                if lookup is None:
                    return None
                result = self.candidates[event.candidate_id] = CandidateResult.of(
                    lookup(event.candidate_id))
            result.add(event.split, event.score, event.n)
            return event.candidate_id
        if isinstance(event, RunStarted):
            self.status = "running"
        elif isinstance(event, StepStarted):
            self.step, self.steps, self.step_title = event.step, event.steps, event.title
        elif isinstance(event, RunFinished):
            self.status = event.status
            self.best_candidate_id = event.best_candidate_id
            self.test_score = event.test_score
            self.baseline_test_score = event.baseline_test_score
        return None

    def trajectory(self) -> Trajectory:
        return trajectory(self.candidates.values(), self.test_score)


# -- the score trajectory ----------------------------------------------------------------


@dataclass(frozen=True)
class ScorePoint:
    """One candidate's score on one split, placed at the step that made it."""

    candidate_id: int
    step: int
    split: str
    score: float


@dataclass(frozen=True)
class Trajectory:
    """Per step (in `steps`), the best score so far and the step's mean score on each split
    (None where nothing is known yet), and every candidate's scores as points."""

    steps: list[int]
    best_so_far: dict[str, list[float | None]]
    step_mean: dict[str, list[float | None]]
    points: list[ScorePoint]
    test_score: float | None = None

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0


def trajectory(candidates: Iterable[CandidateResult],
               test_score: float | None = None) -> Trajectory:
    points = [ScorePoint(c.id, c.step, split, score)
              for c in sorted(candidates, key=lambda c: c.id) for split in PLOTTED_SPLITS
              if (score := c.score(split)) is not None]
    steps = sorted({p.step for p in points})
    best_so_far: dict[str, list[float | None]] = {}
    step_mean: dict[str, list[float | None]] = {}
    for split in PLOTTED_SPLITS:
        by_step: dict[int, list[float]] = {}
        for point in points:
            if point.split == split:
                by_step.setdefault(point.step, []).append(point.score)
        best: float | None = None
        best_so_far[split], step_mean[split] = [], []
        for step in steps:
            scores = by_step.get(step)
            if scores:
                best = max(scores) if best is None else max(best, *scores)
            best_so_far[split].append(best)
            step_mean[split].append(sum(scores) / len(scores) if scores else None)
    return Trajectory(steps, best_so_far, step_mean, points, test_score)


# -- how a candidate came about ----------------------------------------------------------


def provenance(project: Project, candidate: Candidate,
               known: dict[int, CandidateResult] | None = None) -> list[Section]:
    """How the candidate was made, from what its method stored with it: the critique of a
    ProTeGi edit and the wrong answers behind it, the reasoning, history and momentum a PE2
    edit was given, the scored instructions OPRO was shown, the examples a prompt shows."""
    known = known or {}
    meta = candidate.meta
    story = method.operation(candidate.operation).story
    if candidate.parent_ids and candidate.operation not in ("start", "opro"):
        sources = ", ".join(f"#{i}" for i in candidate.parent_ids)
        story += f" Made from {sources}."
    sections = [Section("How it was made", story)]
    if candidate.operation == "paraphrase":
        if "paraphrase_of" in meta:
            sections[0] = Section("How it was made", story.replace(
                "an earlier prompt", f"prompt #{meta['paraphrase_of']}"))
        if candidate.origin:
            sections.append(Section("The problem its source was written to fix",
                                    candidate.origin))
    maker = method.owner(candidate.operation)
    if maker is not None:
        sections += maker.story(project, candidate, known)
    if meta.get("thinking"):
        sections.append(Section("What the optimizer model reasoned before writing it",
                                meta["thinking"]))
    if "template" in meta:
        sections.append(Section("Template it was scored in", meta["template"]))
    if "demo_format" in meta:
        sections.append(Section("How it writes each example", meta["demo_format"]))
    if candidate.demos:
        sections.append(Section(f"Examples shown to the model ({len(candidate.demos)})", "",
                                tuple(f"{text} → {output}" for text, output in
                                      candidate.demos)))
    return sections


# -- the answers behind a score ----------------------------------------------------------


@dataclass(frozen=True)
class AnswerRow:
    """What the task model answered to one example under a candidate, and its score."""

    example_id: int
    split: str
    input: str
    expected: str
    answer: str
    raw_output: str
    score: float

    @property
    def right(self) -> bool:
        return self.score >= 1.0


def answer_rows(project: Project, candidate_id: int) -> list[AnswerRow]:
    """Every stored answer of the candidate behind the scores shown for it
    (`best_prompt.scored_under`), dev first, then test, then train."""
    model, scoring = scored_under(project, project.candidate(candidate_id),
                                  project.scoring().key)
    evaluations = project.evaluations(candidate_id, model, scoring=scoring)
    examples = project.examples(ids=list(evaluations))
    order = {"dev": 0, "test": 1, "train": 2}
    rows = [AnswerRow(e.id, e.split, e.input, " | ".join(e.answers) or e.output,
                      evaluations[e.id].answer, evaluations[e.id].raw_output,
                      evaluations[e.id].score) for e in examples]
    return sorted(rows, key=lambda r: (order.get(r.split, 3), r.example_id))


def other_scores(project: Project, candidate_id: int) -> list[str]:
    """The candidate's scores on other models or under other scoring settings than those
    shown for it, one line each: "dev 0.45 on gemma-3-270m under earlier settings (before
    the template changed)"."""
    current = project.scoring()
    candidate = project.candidate(candidate_id)
    shown = scored_under(project, candidate, current.key)
    lines = []
    for model, key in sorted(project.scored_under(candidate_id)):
        if (model, key) == shown:
            continue
        parts = [f"{split} {mean:.2f} ({count} rows)" for split, (mean, count)
                 in prompt_scores(project, candidate, model, key).items()]
        if key == current.key:
            where = "under the current settings"
        else:
            older = project.scoring_named(key)
            changes = scoring_changes(current, older) if older else []
            where = "under earlier settings" + (
                f" (before {' and '.join(changes)} changed)" if changes else "")
        lines.append(f"{', '.join(parts)} on {model_name(model)} {where}")
    return lines


# -- the CSV report ----------------------------------------------------------------------


CSV_COLUMNS = ("Run", "Method", "Candidate", "Step", "Made by", "Made from",
               "Dev score", "Dev examples", "Test score", "Test examples",
               "Train score", "Train examples", "Words", "Tokens per call",
               "Demonstrations", "Best", "Instruction")


def candidate_rows(runs: Sequence[RunResults], chosen_id: int | None = None) -> list[dict]:
    """One row per candidate of each run, in the order they were made."""
    rows = []
    for results in runs:
        for candidate in sorted(results.candidates.values(), key=lambda c: c.id):
            marks = []
            if candidate.id == results.best_candidate_id:
                marks.append("run's pick")
            if candidate.id == chosen_id:
                marks.append("marked by you")
            row = {
                "Run": results.run_id, "Method": results.title, "Candidate": candidate.id,
                "Step": candidate.step, "Made by": candidate.made_by,
                "Made from": " ".join(str(p) for p in candidate.parent_ids),
            }
            for split in ("dev", "test", "train"):
                score = candidate.score(split)
                row[f"{split.capitalize()} score"] = "" if score is None else round(score, 4)
                row[f"{split.capitalize()} examples"] = candidate.examples(split)
            tokens = candidate.prompt_tokens
            row.update({"Words": candidate.words,
                        "Tokens per call": "" if tokens is None else round(tokens),
                        "Demonstrations": len(candidate.demo_ids),
                        "Best": ", ".join(marks), "Instruction": candidate.instruction})
            rows.append(row)
    return rows


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write the rows for a spreadsheet; UTF-8 with a byte-order mark, so that Excel reads
    accents right."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
    return path


# -- file names --------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^\w\-.]+", re.UNICODE)


def export_name(project_name: str, what: str, suffix: str) -> str:
    """A file name safe on every system: '<project>-<what>.<suffix>', with anything but
    letters, digits, '-', '_' and '.' replaced by '-'."""
    project = _UNSAFE.sub("-", project_name).strip("-. ")[:100]
    stem = f"{project}-{what}" if project else what
    return f"{stem}.{suffix.lstrip('.')}"
