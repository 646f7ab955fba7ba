"""Which prompt of a project is "the best prompt", and why: one rule for every view.

The window's results page and project list, `promptstudio show` and `export`, the prompt
card and re-tuning for another model all ask this module, so they always name the same
prompt and give the same reason. In order:

1. the prompt the user marked as best;
2. else the pick of a finished run on the project's current task model (the best of them
   on dev if several, the latest on a tie). A run's pick has been checked against the
   run's starting prompt on dev rows the search never used (`optimize.selection`), and
   its reason says how it won, or why the start was kept;
3. else the pick of the latest finished run on another model, said to be tuned for it;
4. else, before any run, the best mean score on dev (then test, then train).

Scores are always of one model, named beside them: evaluations are stored per model, and a
prompt scored on two models has two sets of scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from promptstudio.optimize.method import method_title
from promptstudio.optimize.selection import Choice
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate, Run

MARKED, RUN_PICK, OTHER_MODEL, BEST_SCORE = "marked", "run", "other model", "score"
SCORED_SPLITS = ("dev", "test", "train")


@dataclass(frozen=True)
class BestPrompt:
    """The best prompt, where it comes from, why, and its scores on one model."""

    candidate: Candidate
    source: str
    why: str
    """One or two sentences for people: the reason shown beside the prompt."""
    model: str | None
    """The model (as evaluations name it) whose scores `scores` holds."""
    scores: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Mean score and number of examples by split, on `model`."""
    run: Run | None = None

    def score(self, split: str) -> float | None:
        return self.scores[split][0] if split in self.scores else None

    def scores_text(self) -> str:
        """'dev 0.75, test 0.62 on gemma-3-270m-q4_k_m.gguf'."""
        parts = [f"{split} {mean:.2f}" for split, (mean, _) in self.scores.items()
                 if split != "train"]
        if not parts:
            return "not scored yet"
        return ", ".join(parts) + (f" on {model_name(self.model)}" if self.model else "")


def best_prompt(project: Project) -> BestPrompt | None:
    """The project's best prompt by the rule above; None before anything was scored."""
    marked = project.chosen_candidate()
    if marked is not None:
        model = scored_model(project, marked)
        return BestPrompt(marked, MARKED, "You marked it as the best prompt.", model,
                          prompt_scores(project, marked, model))
    finished = [r for r in project.runs()
                if r.status == "finished" and r.best_candidate_id is not None]
    current = [r for r in finished if r.task_model == project.settings.task_model]
    if current:
        run = max(current, key=lambda r: (_pick_dev(project, r), r.id))
        return _run_pick(project, run, RUN_PICK)
    if finished:
        return _run_pick(project, finished[-1], OTHER_MODEL)
    for split in SCORED_SPLITS:
        candidate = project.best_candidate(split)
        if candidate is not None:
            model = scored_model(project, candidate)
            why = (f"No run has finished yet; it has the best mean {split} score of the "
                   "prompts scored so far.")
            return BestPrompt(candidate, BEST_SCORE, why, model,
                              prompt_scores(project, candidate, model))
    return None


def model_name(model: str | None) -> str:
    """A model as evaluations name it ('local:FILE:SIZE', 'server:URL#NAME'), shortly."""
    if not model:
        return "unknown model"
    kind, _, rest = model.partition(":")
    if kind == "local":
        return rest.rsplit(":", 1)[0]
    if kind == "server":
        url, _, name = rest.partition("#")
        return f"{name} at {url}"
    return rest or model


def _run_pick(project: Project, run: Run, source: str) -> BestPrompt:
    candidate = project.candidate(run.best_candidate_id)
    choice = Choice.from_json(run.choice) if run.choice else None
    model = choice.model if choice else scored_model(project, candidate)
    label = method_title(run.method)
    why = f"The pick of run {run.id} ({label}, seed {run.seed})."
    if choice is not None:
        why += " " + choice.reason
    if source == OTHER_MODEL:
        why += (f" That run was on {model_name(model)}, not on the task model chosen now; "
                "re-tune it for the new model (Models page).")
    return BestPrompt(candidate, source, why, model, prompt_scores(project, candidate, model),
                      run)


def _pick_dev(project: Project, run: Run) -> float:
    choice = Choice.from_json(run.choice) if run.choice else None
    if choice is not None and choice.score(run.best_candidate_id, "dev") is not None:
        return choice.score(run.best_candidate_id, "dev")
    mean, _ = project.mean_score(run.best_candidate_id, "dev")
    return -1.0 if mean is None else mean


def scored_model(project: Project, candidate: Candidate) -> str | None:
    """The model a candidate was scored on most (ties go by name, so the answer is
    stable)."""
    models = project.evaluation_models(candidate.id)
    return max(models, key=lambda m: (models[m], m)) if models else None


def prompt_scores(project: Project, candidate: Candidate, model: str | None
                  ) -> dict[str, tuple[float, int]]:
    """A candidate's mean score and example count by split, on one model."""
    found = {}
    for split in SCORED_SPLITS:
        mean, count = project.mean_score(candidate.id, split, model=model)
        if count:
            found[split] = (mean, count)
    return found
