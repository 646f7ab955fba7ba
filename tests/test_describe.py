"""Plain words for every method setting and every run event."""

from __future__ import annotations

import pytest

from promptstudio.optimize import describe, events
from promptstudio.optimize.method import method_named, methods, operation, setting


def every_setting():
    for name in methods():
        method = method_named(name)
        keys = set(method.paper)
        for params in method.presets.values():
            keys |= set(params)
        for key in sorted(keys):
            yield name, key


@pytest.mark.parametrize(("method", "key"), list(every_setting()))
def test_every_setting_of_every_method_is_described(method, key):
    described = method_named(method).settings.get(key)
    assert described is not None, f"{method}.{key} has no description"
    assert described.label and described.label[0].isupper()
    assert len(described.text) > 30 and described.text.endswith(".")


def test_no_description_is_left_over_from_a_removed_setting():
    for name in methods():
        method = method_named(name)
        known = set(method.paper).union(*method.presets.values())
        assert set(method.settings) <= known, name


def test_every_preset_value_of_a_choice_is_among_its_choices():
    checked = 0
    for method, key in every_setting():
        choices = setting(method, key).choices
        for params in method_named(method).presets.values():
            if choices and key in params:
                assert params[key] in choices, (method, key, params[key])
                checked += 1
    assert checked, "no setting offers choices: nothing was checked"


def test_presets_are_explained():
    for name in methods():
        assert set(method_named(name).presets) <= set(describe.PRESET_TEXTS)


def test_an_unknown_setting_still_gets_a_label():
    assert setting("ape", "new_thing").label == "New thing"


def test_every_way_a_method_makes_candidates_is_described_by_that_method_alone():
    """A method carries its own words: no two methods claim one operation, and each
    operation has a label, a phrase for the log and a story."""
    claimed = [op for name in methods() for op in method_named(name).operations]
    assert len(claimed) == len(set(claimed))
    for name in claimed:
        described = operation(name)
        assert described.label[0].isupper() and described.log and described.story.endswith(".")
    assert operation("new-trick").label == "New trick"


def test_each_event_becomes_one_plain_line():
    lines = [describe.event_line(e) for e in (
        events.RunStarted(3, "ape", 420, 0.0),
        events.StepStarted(3, 2, 5, "Scoring 8 instructions on 4 examples"),
        events.CandidateCreated(3, 12, "Say the first\nletter.", "paraphrase", (4,), 2),
        events.CandidateRejected(3, "Input: {input}", "repeats the template's slots or tags"),
        events.CandidateScored(3, 12, "train", 0.75, 8, 2),
        events.BestChanged(3, 12, "Say the first letter.", 0.75, "train"),
        events.Message(3, "Choosing among 4 finalists on 6 dev examples."),
        events.RunFinished(3, "finished", 12, 0.8, 0.7, 0.5),
    )]
    assert lines[0] == "Run 3 (APE: instructions induced from examples) is going: about 420 " \
        "model calls in all."
    assert lines[1] == "Step 2 of 5: Scoring 8 instructions on 4 examples."
    assert lines[2] == "New prompt #12 (a rewording): “Say the first letter.”"
    assert "no usable instruction" in lines[3]
    assert lines[4] == "Prompt #12 scored 75% on 8 training examples."
    assert lines[5].startswith("Best so far: #12, 75% on training examples")
    assert lines[6] == "Choosing among 4 finalists on 6 dev examples."
    assert "80% on the dev examples and 70% on the test examples" in lines[7]
    assert "20 points gained" in lines[7]
    assert all("\n" not in line for line in lines)


def test_progress_goes_to_the_bar_not_the_log():
    progress = events.Progress(1, 120, 400, 60.0, 150.0, 100, 9000)
    assert describe.event_line(progress) is None
    assert describe.progress_line(progress) == (
        "120 of about 400 model calls · about 2 minutes left · 2.0 calls and 150 tokens a "
        "second")


def test_demonstration_candidates_say_what_changed():
    line = describe.event_line(events.CandidateCreated(1, 5, "Answer.", "demo", (1,), 1))
    assert line == "New prompt #5: the same instruction, shown with other examples."


def test_an_ended_run_says_what_it_spent():
    progress = events.Progress(1, 135, 167, 130.0, 30.0, 135, 9000)
    assert describe.spent_line(progress, "finished") == "Done: 135 model calls in 2 minutes."
    assert describe.spent_line(progress, "paused") == "Paused after 135 model calls in 2 minutes."


@pytest.mark.parametrize(("status", "words"), [
    ("paused", "resume"), ("cancelled", "kept"), ("failed", "error")])
def test_every_ending_is_said(status, words):
    assert words in describe.ending(status)


def test_a_run_that_keeps_the_starting_prompt_says_so():
    text = describe.ending("finished", 0.9, 1.0, 1.0, kept_start=True)
    assert text == ("Finished. Nothing the run found did clearly better than your starting "
                    "prompt, so it keeps that one. It scores 90% on the dev examples and 100% "
                    "on the test examples. See the Results page.")


def test_a_run_gives_its_reason_before_its_scores():
    reason = "Your instruction was kept; the new examples raised dev from 0.31 to 0.62."
    text = describe.ending("finished", 0.62, 0.58, 0.25, reason=reason)
    assert text.startswith(f"Finished. {reason} The best prompt scores 62% on the dev "
                           "examples and 58% on the test examples.")
    assert "33 points gained" in text


def test_a_worse_prompt_is_said_plainly():
    text = describe.ending("finished", 0.9, 0.4, 0.6)
    assert "20 points worse" in text


@pytest.mark.parametrize(("seconds", "words"), [
    (40, "40 seconds"), (200, "3 minutes"), (4800, "1 hour 20 minutes"),
    (9000, "2 hours 30 minutes")])
def test_durations_read_naturally(seconds, words):
    assert describe.duration(seconds) == words


def test_every_status_has_one_name_as_a_label_and_in_a_sentence():
    from promptstudio.optimize.describe import STATUSES, status_name, status_words

    assert set(STATUSES) == {"pending", "running", "paused", "finished", "cancelled", "failed"}
    assert status_name("running") == "Running", "while it goes"
    assert status_words("running") == "interrupted", "found running when none goes"
    assert status_name("running", going=False) == "Interrupted"
    assert status_words("failed") == "stopped by an error"
    assert status_name("paused") == "Paused (can resume)"
