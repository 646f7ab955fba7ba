"""Which prompt of a project is "the best prompt", and why: one rule for every view.

The window's results page and project list, `promptstudio show` and `export`, the prompt
card and re-tuning for another model all ask this module, so they always name the same
prompt and give the same reason. In order:

1. the prompt the user marked as best;
2. else the pick of a finished run on the project's current task model and under its
   current scoring (the best of them on dev if several, the latest on a tie). A run's
   pick has been checked against the run's starting prompt on dev rows the search never
   used (`optimize.selection`), and its reason says how it won, or why the start was kept;
3. else the pick of the latest finished run on the current model under earlier scoring
   settings (a template, metric or labels changed since), said so;
4. else the pick of the latest finished run on another model, said to be tuned for it;
5. else, before any run, the best mean score on dev (then test, then train) under the
   current scoring.

Scores are always of one model and one scoring, named beside them: evaluations are stored
per model and scoring (`store.records.Scoring`), and a prompt scored under two has two
sets of scores. Those under the current scoring come first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from promptstudio.evaluation import scoring_changes
from promptstudio.llm.base import model_name
from promptstudio.optimize.method import method_title
from promptstudio.optimize.selection import Choice
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate, Run, Scoring

MARKED, RUN_PICK, OLD_SCORING, OTHER_MODEL, BEST_SCORE = (
    "marked", "run", "earlier settings", "other model", "score")
SCORED_SPLITS = ("dev", "test", "train")


@dataclass(frozen=True)
class BestPrompt:
    """The best prompt, where it comes from, why, and its scores on one model under one
    scoring."""

    candidate: Candidate
    source: str
    why: str
    """One or two sentences for people: the reason shown beside the prompt."""
    model: str | None
    """The model (as evaluations name it) whose scores `scores` holds."""
    scores: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Mean score and number of examples by split, on `model` under `scoring`."""
    run: Run | None = None
    scoring: str | None = None
    """The `Scoring.key` `scores` were made under."""
    current: bool = True
    """Whether `scoring` is the project's current scoring."""

    def score(self, split: str) -> float | None:
        return self.scores[split][0] if split in self.scores else None

    def scores_text(self) -> str:
        """'dev 0.75, test 0.62 on gemma-3-270m-q4_k_m.gguf'."""
        parts = [f"{split} {mean:.2f}" for split, (mean, _) in self.scores.items()
                 if split != "train"]
        if not parts:
            return "not scored yet"
        text = ", ".join(parts) + (f" on {model_name(self.model)}" if self.model else "")
        return text + ("" if self.current else ", under earlier scoring settings")


def best_prompt(project: Project) -> BestPrompt | None:
    """The project's best prompt by the rule above; None before anything was scored."""
    current = project.scoring()
    marked = project.chosen_candidate()
    if marked is not None:
        return _scored(project, marked, MARKED, "You marked it as the best prompt.",
                       current.key)
    finished = [r for r in project.runs()
                if r.status == "finished" and r.best_candidate_id is not None]
    on_model = [r for r in finished if r.task_model == project.settings.task_model]
    now = [r for r in on_model if r.scoring == current.key]
    if now:
        run = max(now, key=lambda r: (_pick_dev(project, r), r.id))
        return _run_pick(project, run, RUN_PICK, current)
    if on_model:
        return _run_pick(project, on_model[-1], OLD_SCORING, current)
    if finished:
        return _run_pick(project, finished[-1], OTHER_MODEL, current)
    for split in SCORED_SPLITS:
        candidate = project.best_candidate(split, current.key)
        if candidate is not None:
            why = (f"No run has finished yet; it has the best mean {split} score of the "
                   "prompts scored so far.")
            return _scored(project, candidate, BEST_SCORE, why, current.key)
    return None


def _scored(project: Project, candidate: Candidate, source: str, why: str, current: str
            ) -> BestPrompt:
    model, scoring = scored_under(project, candidate, current)
    return BestPrompt(candidate, source, why, model,
                      prompt_scores(project, candidate, model, scoring),
                      scoring=scoring, current=scoring in (None, current))


def _run_pick(project: Project, run: Run, source: str, current: Scoring) -> BestPrompt:
    candidate = project.candidate(run.best_candidate_id)
    choice = Choice.from_json(run.choice) if run.choice else None
    model = run.task_model_id or (choice.model if choice else None)
    label = method_title(run.method)
    why = f"The pick of run {run.id} ({label}, seed {run.seed})."
    if choice is not None:
        why += " " + choice.reason
    if source == OLD_SCORING:
        why += " " + scoring_notice(project, [run], current)
    if source == OTHER_MODEL:
        why += (f" That run was on {model_name(model)}, not on the task model chosen now; "
                "re-tune it for the new model (Models page).")
    return BestPrompt(candidate, source, why, model,
                      prompt_scores(project, candidate, model, run.scoring), run,
                      scoring=run.scoring, current=run.scoring == current.key)


def scoring_notice(project: Project, runs: list[Run], current: Scoring | None = None) -> str:
    """What to know about runs that scored their prompts under earlier settings than the
    project's `current` ones (a template, metric or labels changed since); "" when none
    did."""
    current = current or project.scoring()
    earlier = [r for r in runs if r.scoring is not None and r.scoring != current.key]
    if not earlier:
        return ""
    changes: list[str] = []
    for run in earlier:
        older = project.scoring_named(run.scoring)
        for change in (scoring_changes(current, older) if older else []) or [
                "the scoring settings"]:
            if change not in changes:
                changes.append(change)
    ids = [str(r.id) for r in earlier]
    who = (f"Run {ids[0]}" if len(ids) == 1
           else f"Runs {', '.join(ids[:-1])} and {ids[-1]}")
    return (f"{who} scored {'its' if len(ids) == 1 else 'their'} prompts before "
            f"{' and '.join(changes)} changed. Those scores are kept as they were made and "
            "are not current: scores under the current settings are computed the next time "
            "they are needed (Run again, or a new run).")


def _pick_dev(project: Project, run: Run) -> float:
    choice = Choice.from_json(run.choice) if run.choice else None
    if choice is not None and choice.score(run.best_candidate_id, "dev") is not None:
        return choice.score(run.best_candidate_id, "dev")
    mean, _ = project.mean_score(run.best_candidate_id, "dev", model=run.task_model_id,
                                 scoring=run.scoring)
    return -1.0 if mean is None else mean


def scored_under(project: Project, candidate: Candidate, current: str
                 ) -> tuple[str | None, str | None]:
    """The (model, scoring) whose scores speak for a candidate: a run's candidate's are
    those of its run; another's, those it was scored on most, under the current scoring
    first (ties go by name, so the answer is stable)."""
    found = project.scored_under(candidate.id)
    if candidate.run_id is not None:
        run = project.run(candidate.run_id)
        if (run.task_model_id, run.scoring) in found:
            return run.task_model_id, run.scoring
    if not found:
        return None, None
    model, scoring = max(found, key=lambda pair: (pair[1] == current, found[pair], pair))
    return model, scoring


def prompt_scores(project: Project, candidate: Candidate, model: str | None,
                  scoring: str | None) -> dict[str, tuple[float, int]]:
    """A candidate's mean score and example count by split, on one model under one
    scoring."""
    found = {}
    for split in SCORED_SPLITS:
        mean, count = project.mean_score(candidate.id, split, model=model, scoring=scoring)
        if count:
            found[split] = (mean, count)
    return found
