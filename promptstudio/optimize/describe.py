"""The optimization methods in plain words: what each setting means, and what a run is doing.

The window shows every setting of a method beside its paper default, and a log of the run
as it goes. Both need sentences a person who has never read the papers can act on; they
live here, next to the methods, so that the words change when the methods do.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptstudio.optimize import bandits, events
from promptstudio.optimize.ape import MODES
from promptstudio.optimize.method import method_title
from promptstudio.optimize.opro import POSITIONS


@dataclass(frozen=True)
class Setting:
    """One setting of a method: a short label, what it does, and its allowed values when
    it is a choice among words."""

    label: str
    text: str
    choices: tuple[str, ...] = ()


_RACE = ("'ucb' and 'ucb-e' spend more examples on the contenders that look promising; "
         "'successive-rejects' drops the worst one phase by phase; 'successive-halving' keeps "
         "the better half each round.")

SETTINGS: dict[str, dict[str, Setting]] = {
    "ape": {
        "mode": Setting(
            "Guessing style",
            "How the model is asked to guess the instruction behind your examples. "
            "'forward' shows the examples and lets the model finish the sentence that names "
            "the instruction; 'reverse' leaves a blank for the instruction before the rest "
            "of the sentence; 'both' takes turns.", MODES),
        "template": Setting(
            "Own guessing prompt",
            "Your own text for asking the model to guess the instruction, with {demos} where "
            "the examples go and, if you like, {blank} where the instruction goes. Leave it "
            "empty to use the built-in one."),
        "subsamples": Setting(
            "Groups of examples",
            "How many different small groups of training examples the model is shown; each "
            "group gives its own guesses."),
        "demos_per_subsample": Setting(
            "Examples per group",
            "How many examples each group shows the model when it guesses the instruction."),
        "per_subsample": Setting(
            "Guesses per group",
            "How many instructions the model guesses from each group. Groups times guesses "
            "is how many instructions are tried."),
        "score_by": Setting(
            "Judge guesses by",
            "'accuracy' counts how often the model answers right under the instruction (the "
            "paper found this predicts the final score best); 'logprob' measures how likely "
            "the model finds the right answers, which needs a model that reports "
            "probabilities, such as the bundled one.", ("accuracy", "logprob")),
        "selection": Setting(
            "How to pick the best guesses",
            "'stages' tries every guess on a few examples, keeps the better part, tries those "
            "on more examples, and so on; 'ucb' runs a race that spends more examples on the "
            "guesses that look promising.", ("stages", "ucb")),
        "stage_sizes": Setting(
            "Examples per stage",
            "With 'stages': how many examples a guess has been tried on by the end of each "
            "stage, as growing numbers separated by commas, for example 4, 8, 16."),
        "keep_fraction": Setting(
            "Share kept per stage",
            "With 'stages': the share of guesses that go on to the next stage; 0.5 keeps the "
            "better half."),
        "ucb_budget": Setting(
            "Race length (answers)",
            "With 'ucb': how many answers to examples the race may spend in all."),
        "ucb_batch": Setting(
            "Examples per race turn",
            "With 'ucb': how many examples a guess is tried on each time the race picks it."),
        "mc_rounds": Setting(
            "Rewording rounds",
            "How many times the best instruction is reworded at the end, looking for a "
            "better phrasing with the same meaning. 0 skips this; gains level off after 3."),
        "mc_per_round": Setting(
            "Rewordings per round",
            "How many rewordings of the best instruction are tried in each rewording round."),
    },
    "protegi": {
        "rounds": Setting(
            "Rounds",
            "How many rounds of finding mistakes and rewriting the prompt. The paper saw the "
            "gains peak around round 3; more rounds can fit the training examples too "
            "closely."),
        "beam": Setting(
            "Prompts kept per round",
            "How many of the best prompts go on to the next round (the 'beam')."),
        "minibatch": Setting(
            "Examples checked for mistakes",
            "How many training examples each kept prompt answers in a round, to find the "
            "mistakes it makes."),
        "gradients": Setting(
            "Groups of mistakes",
            "How many groups of mistakes the model is asked to explain, per prompt and "
            "round. Each explanation (the paper's 'textual gradient') leads to a rewrite."),
        "errors_per_gradient": Setting(
            "Mistakes per group",
            "How many wrong answers the model sees together when it explains what the prompt "
            "gets wrong."),
        "edits_per_gradient": Setting(
            "Rewrites per explanation",
            "How many rewritten prompts are kept from each explanation of the mistakes."),
        "paraphrases": Setting(
            "Rewordings per rewrite",
            "How many times each rewritten prompt is reworded, to search around it."),
        "max_expansion": Setting(
            "Most new prompts per prompt",
            "The most new prompts one prompt may produce in a round; when there are more, a "
            "random few are kept."),
        "bandit": Setting(
            "How to race the new prompts",
            "How the new prompts compete on dev examples for a place in the next round: "
            + _RACE, bandits.STRATEGIES),
        "selection_budget": Setting(
            "Race length (answers)",
            "How many answers to examples the race may spend in each round to choose the "
            "prompts that go on."),
        "pull_size": Setting(
            "Examples per race turn",
            "How many examples a prompt is tried on each time the race picks it."),
    },
    "opro": {
        "steps": Setting(
            "Steps",
            "How many times the optimizer model is asked for new instructions. OPRO improves "
            "slowly; the paper used 200 steps."),
        "per_step": Setting(
            "Instructions per step",
            "How many new instructions the optimizer model writes in each step."),
        "history": Setting(
            "Earlier instructions shown",
            "How many of the best instructions so far, with their scores, the optimizer "
            "model reads in each step."),
        "exemplars": Setting(
            "Examples shown",
            "How many training examples the optimizer model sees in each step, so it knows "
            "what the task looks like."),
        "train_size": Setting(
            "Examples for scoring",
            "How many training examples every new instruction is tried on."),
        "position": Setting(
            "Where the instruction goes",
            "'before_question' puts the instruction before the input; 'question_begin' at the "
            "start of the input line. The paper's 'answer_begin' is not possible with "
            "PromptStudio's templates. Only used with the default template.",
            tuple(POSITIONS)),
    },
    "pe2": {
        "init": Setting(
            "Start from",
            "'user' starts from your instruction; 'induction' first has the model guess "
            "instructions from your examples (as APE does) and starts from those.",
            ("user", "induction")),
        "steps": Setting(
            "Steps",
            "How many rounds of reasoning about mistakes and editing the prompts."),
        "n": Setting(
            "Prompts improved per step",
            "How many of the best prompts found so far, in any step, are improved in each "
            "step. Going back to an earlier prompt means a bad edit never loses a good one."),
        "m": Setting(
            "New prompts per prompt",
            "How many edited prompts the model writes for each prompt it improves."),
        "batch_size": Setting(
            "Mistakes shown",
            "How many examples the prompt got wrong are shown to the model when it reasons "
            "about what to change."),
        "step_size": Setting(
            "Most words changed",
            "The most words one edit may change, so that every step makes small, careful "
            "changes."),
        "max_words": Setting(
            "Longest prompt (words)",
            "The most words a new prompt may have."),
        "train_size": Setting(
            "Examples for scoring",
            "How many training examples every new prompt is tried on."),
    },
    "demos": {
        "k": Setting(
            "Fewest examples shown",
            "The fewest worked examples (demonstrations) the model sees together with the "
            "instruction in a pick."),
        "max_k": Setting(
            "Most examples shown",
            "The most worked examples in a pick. Picks of several sizes up to this are "
            "tried, because small models often do better with more examples; more "
            "examples make every answer slower."),
        "random_sets": Setting(
            "Random picks",
            "How many random sets of training examples are tried as demonstrations."),
        "bootstrapped_sets": Setting(
            "Picks from right answers",
            "How many sets are made only of training examples the model already answers "
            "right."),
        "bandit": Setting(
            "How to race the picks",
            "How the sets of examples compete on training examples: " + _RACE,
            bandits.STRATEGIES),
        "budget_per_set": Setting(
            "Examples per pick",
            "On average, how many training examples each set is tried on in the race."),
        "batch": Setting(
            "Examples per race turn",
            "How many examples a set is tried on each time the race picks it."),
    },
}

PRESETS = {
    "quick": "Quick: a small search that finishes in minutes on the bundled model. Good for "
             "a first try.",
    "standard": "Standard: a larger search, usually a quarter of an hour to an hour on the "
                "bundled model.",
    "thorough": "Thorough: close to the paper's own settings. Can take hours; best with a "
                "fast model.",
}

OPERATIONS = {
    "start": "your starting prompt",
    "forward": "guessed from examples",
    "reverse": "guessed from examples",
    "template": "guessed with your own guessing prompt",
    "paraphrase": "a rewording",
    "gradient-edit": "rewritten to fix mistakes",
    "opro": "written to beat the best so far",
    "induce": "guessed from examples",
    "pe2": "edited after reasoning about mistakes",
}

SPLIT_NAMES = {"train": "training", "dev": "dev", "test": "test"}


def setting(method: str, name: str) -> Setting:
    """The plain-words description of one setting; a bare one for a setting not described."""
    known = SETTINGS.get(method, {}).get(name)
    return known or Setting(name.replace("_", " ").capitalize(), "")


def percent(score: float) -> str:
    return f"{100 * score:.0f}%"


def duration(seconds: float) -> str:
    """'40 seconds', '3 minutes', '1 hour 20 minutes'."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{text} {minutes} minutes" if minutes else text


def clip(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def event_line(event: events.Event) -> str | None:
    """One line of the run's log for an event, or None for events that only move the
    progress bar."""
    if isinstance(event, events.RunStarted):
        return (f"Run {event.run_id} ({method_title(event.method)}) is going: about "
                f"{event.projected_calls} model calls in all.")
    if isinstance(event, events.StepStarted):
        return f"Step {event.step} of {event.steps}: {event.title}."
    if isinstance(event, events.CandidateCreated):
        if event.operation == "demo":
            return (f"New prompt #{event.candidate_id}: the same instruction, shown with "
                    "other examples.")
        kind = OPERATIONS.get(event.operation, event.operation)
        return f"New prompt #{event.candidate_id} ({kind}): “{clip(event.instruction)}”"
    if isinstance(event, events.CandidateRejected):
        return (f"Set aside a reply that is no usable instruction ({event.reason}): "
                f"“{clip(event.text, 60)}”")
    if isinstance(event, events.CandidateScored):
        examples = "example" if event.n == 1 else "examples"
        return (f"Prompt #{event.candidate_id} scored {percent(event.score)} on {event.n} "
                f"{SPLIT_NAMES.get(event.split, event.split)} {examples}.")
    if isinstance(event, events.BestChanged):
        return (f"Best so far: #{event.candidate_id}, {percent(event.score)} on "
                f"{SPLIT_NAMES.get(event.split, event.split)} examples: "
                f"“{clip(event.instruction)}”")
    if isinstance(event, events.Message):
        return event.text
    if isinstance(event, events.RunFinished):
        return ending(event.status, event.dev_score, event.test_score,
                      event.baseline_test_score, reason=event.reason)
    return None


def progress_line(progress: events.Progress) -> str:
    """'120 of about 400 model calls · about 3 minutes left · 2.1 calls and 180 tokens a
    second'."""
    parts = [f"{progress.calls} of about {progress.projected_calls} model calls"
             if progress.projected_calls else f"{progress.calls} model calls"]
    if progress.eta_seconds is not None and progress.calls < progress.projected_calls:
        parts.append(f"about {duration(progress.eta_seconds)} left")
    if progress.seconds > 0:
        parts.append(f"{progress.calls / progress.seconds:.1f} calls and "
                     f"{progress.tokens / progress.seconds:.0f} tokens a second")
    return " · ".join(parts)


def spent_line(progress: events.Progress, status: str) -> str:
    """What a run that ended had spent, for the line under its progress bar."""
    calls = f"{progress.calls} model calls in {duration(progress.seconds)}"
    if status == "finished":
        return f"Done: {calls}."
    return f"{STATUS_WORDS.get(status, status).capitalize()} after {calls}."


STATUS_WORDS = {"pending": "not started yet", "running": "interrupted", "paused": "paused",
                "failed": "stopped by an error", "cancelled": "stopped",
                "finished": "finished"}
"""A run's status in words, as the list of runs shows it."""


def ending(status: str, dev_score: float | None = None, test_score: float | None = None,
           baseline_test_score: float | None = None, *, reason: str = "",
           kept_start: bool = False) -> str:
    """How a run ended, in a sentence or a few: why its best prompt is the one chosen
    (`reason`, from `selection.Choice`), and what it scores on test against the start.
    `kept_start`: the best prompt is the one the run started from."""
    if status == "finished":
        text = "Finished."
        if reason:
            text += " " + reason
        elif kept_start:
            text += (" Nothing the run found did clearly better than your starting prompt, "
                     "so it keeps that one.")
        if kept_start:
            scores = [f"{percent(s)} on the {split} examples"
                      for s, split in ((dev_score, "dev"), (test_score, "test"))
                      if s is not None]
            if scores:
                text += f" It scores {' and '.join(scores)}."
            return text + " See the Results page."
        scores = [f"{percent(s)} on the {split} examples"
                  for s, split in ((dev_score, "dev"), (test_score, "test")) if s is not None]
        if scores:
            text += " The best prompt scores " + " and ".join(scores) + "."
        if test_score is not None and baseline_test_score is not None:
            change = round(100 * (test_score - baseline_test_score))
            text += f" Your starting prompt scored {percent(baseline_test_score)} on test: "
            if change > 0:
                text += f"{change} points gained."
            elif change == 0:
                text += "no gain this time."
            else:
                text += (f"the new prompt is {-change} points worse there, so keep your own "
                         "or try again with more examples.")
        return text + " See the Results page."
    if status == "paused":
        return "Paused. You can resume this run at any time, also after closing PromptStudio."
    if status == "cancelled":
        return "Stopped. What the run found so far is kept on the Results page."
    if status == "failed":
        return "Stopped by an error. What the run found so far is kept; you can resume it."
    return f"The run is {status}."
