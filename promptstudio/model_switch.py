"""Moving a tuned prompt to another model: score it with both models, side by side.

A prompt tuned for one model often does worse on another, and a new model breaking a
working prompt is why many people come to prompt tuning at all. Before re-tuning, the
user sees how much the prompt lost: the project's best prompt (or its starting
instruction) is scored on dev and test with the new model, and with the current model
where it has no score yet. Evaluations are stored per model, so both sets of scores stay
in the project, and scoring again only does what is missing.

Each model is asked in its own prompt format: moving from a base model to a chat model (or
back) keeps the instruction and the worked examples, and puts them in the new model's
format (its messages, where its template and the project's settings place them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from promptstudio.best_prompt import best_prompt
from promptstudio.evaluation import Evaluator
from promptstudio.llm.base import Backend, BackendError, CancelToken
from promptstudio.store.project import Project, ProjectError
from promptstudio.store.records import Candidate

COMPARED_SPLITS = ("dev", "test")
SAME_SCORE_MARGIN = 0.02
"""Differences below two points are within what a different model's rounding gives."""

Progress = Callable[[str, int, int], None]
"""Called with (what is being scored, examples done, examples in total)."""


@dataclass(frozen=True)
class CarriedPrompt:
    """The prompt to move to the new model, and where it comes from."""

    instruction: str
    demo_ids: tuple[int, ...] = ()
    candidate_id: int | None = None
    is_best: bool = False

    def describe(self) -> str:
        if not self.is_best:
            return "the project's starting instruction (no prompt has been scored yet)"
        demos = len(self.demo_ids)
        shown = f", with {demos} worked example{'s' if demos != 1 else ''}" if demos else ""
        return f"the project's best prompt{shown}"


def prompt_to_carry(project: Project) -> CarriedPrompt | None:
    """The project's best prompt (`best_prompt`), else the starting instruction; None when
    there is neither."""
    best = best_prompt(project)
    if best is not None:
        candidate = best.candidate
        return CarriedPrompt(candidate.instruction, candidate.demo_ids, candidate.id,
                             is_best=True)
    instruction = project.settings.instruction
    return CarriedPrompt(instruction) if instruction.strip() else None


@dataclass(frozen=True)
class SplitComparison:
    """One split's mean scores under the current and the new model."""

    split: str
    examples: int
    old_score: float | None
    old_count: int
    new_score: float | None
    new_count: int

    @property
    def change(self) -> float | None:
        if self.old_score is None or self.new_score is None:
            return None
        return self.new_score - self.old_score


@dataclass
class ModelComparison:
    candidate: Candidate
    old_model: str
    new_model: str
    splits: list[SplitComparison] = field(default_factory=list)
    old_model_problem: str | None = None
    """Why the current model could not be scored, if it could not (a server gone, say)."""
    cancelled: bool = False

    def verdict(self) -> str:
        """One or two sentences on what the scores mean for the user."""
        if self.cancelled:
            return "Scoring was stopped; the scores above cover only what was finished."
        compared = next((s for s in self.splits if s.change is not None), None)
        if compared is None:
            return ("There is no score with the current model to compare with. A run "
                    "for the new model will show what tuning gains.")
        change = compared.change or 0.0
        scores = (f"{percent(compared.old_score)} → {percent(compared.new_score)} "
                  f"on {compared.split}")
        if change <= -SAME_SCORE_MARGIN:
            return (f"With the new model this prompt scores {points(-change)} lower "
                    f"({scores}). Re-tuning it for the new model should win some of that "
                    "back.")
        if change >= SAME_SCORE_MARGIN:
            return (f"The new model does better with this prompt ({scores}). A run may "
                    "still find a prompt that suits it even better.")
        return (f"The new model does about as well with this prompt ({scores}). A run may "
                "still find a prompt that suits it better.")


def percent(score: float | None) -> str:
    return "—" if score is None else f"{100 * score:.0f}%"


def points(change: float) -> str:
    value = round(100 * change)
    return f"{value} point{'s' if value != 1 else ''}"


def compare_models(project: Project, prompt: CarriedPrompt, old: Backend, new: Backend, *,
                   old_name: str, new_name: str, cancel: CancelToken | None = None,
                   on_progress: Progress | None = None) -> ModelComparison:
    """Score `prompt` on dev and test with `new`, fill in what `old` lacks, and compare.

    A failure of the new model is the user's to see and raises; a failure of the current
    model (often the reason for switching) is noted in the comparison instead.
    """
    splits = [split for split in COMPARED_SPLITS if project.examples(split, limit=1)]
    if not splits:
        raise ProjectError("The project has no dev or test rows to compare the models on. "
                           "Add some on the Task & data page.")
    if prompt.candidate_id is not None:
        candidate = project.candidate(prompt.candidate_id)
    else:
        candidate = project.add_candidate(prompt.instruction, prompt.demo_ids)
    comparison = ModelComparison(candidate, old_name, new_name)
    examples = {split: project.examples(split) for split in splits}

    def score_all(backend: Backend, who: str) -> bool:
        for split in splits:
            def progress(done: int, total: int, split: str = split) -> None:
                if on_progress is not None:
                    on_progress(f"{who}, {split} rows", done, total)

            evaluator = Evaluator(project, backend, cancel=cancel, on_progress=progress,
                                  scoring=project.scoring(backend.prompt_format))
            if evaluator.evaluate(candidate, examples[split]).cancelled:
                return False
        return True

    finished = score_all(new, f"Scoring with {new_name}")
    if finished:
        try:
            finished = score_all(old, f"Scoring with {old_name}")
        except BackendError as problem:
            comparison.old_model_problem = str(problem)
    comparison.cancelled = not finished
    old_scoring = project.scoring(old.prompt_format).key
    new_scoring = project.scoring(new.prompt_format).key
    for split in splits:
        old_score, old_count = project.mean_score(candidate.id, split, model=old.model_id,
                                                  scoring=old_scoring)
        new_score, new_count = project.mean_score(candidate.id, split, model=new.model_id,
                                                  scoring=new_scoring)
        comparison.splits.append(SplitComparison(split, len(examples[split]), old_score,
                                                 old_count, new_score, new_count))
    return comparison
