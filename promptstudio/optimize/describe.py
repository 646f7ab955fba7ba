"""What a run is doing, in plain words: the lines of its log, and the presets.

The window shows a log of the run as it goes, in sentences a person who has never read the
papers can act on. Each method describes its own settings and the ways it makes
candidates (`Method.settings`, `Method.operations`); this module puts them into words as
the run's events arrive.
"""

from __future__ import annotations

from promptstudio.optimize import events
from promptstudio.optimize.method import method_title, operation

PRESET_TEXTS = {
    "quick": "Quick: a small search. Good for a first try. The estimate below says how long "
             "it takes on this computer.",
    "standard": "Standard: a larger search than quick. The estimate below says how long it "
                "takes on this computer.",
    "thorough": "Thorough: close to the paper's own settings, the largest search; best with a "
                "fast model.",
}
"""Each preset (`runner.PRESETS`) in a sentence, for the Run page."""

SPLIT_NAMES = {"train": "training", "dev": "dev", "test": "test"}


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
        kind = operation(event.operation).log
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
    return f"{status_words(status).capitalize()} after {calls}."


STATUSES = {
    "pending": ("Not started", "not started yet"),
    "running": ("Running", "running"),
    "paused": ("Paused (can resume)", "paused"),
    "finished": ("Finished", "finished"),
    "cancelled": ("Stopped", "stopped"),
    "failed": ("Failed", "stopped by an error"),
}
"""What each status of a run is called: as a label (a list of runs) and inside a sentence
("Run 3: stopped by an error."). The one place for both."""
INTERRUPTED = ("Interrupted", "interrupted")
"""A run stored as running while none is going: killed, or the app closed on it."""


def status_name(status: str, *, going: bool = True) -> str:
    """A run's status as a label; `going`: whether a run is going in this app now (else
    a `running` run was interrupted)."""
    return _status(status, going)[0]


def status_words(status: str, *, going: bool = False) -> str:
    """A run's status inside a sentence; by default as seen when no run is going."""
    return _status(status, going)[1]


def _status(status: str, going: bool) -> tuple[str, str]:
    if status == "running" and not going:
        return INTERRUPTED
    return STATUSES.get(status, (status, status))


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
