"""The readability gate, on real junk: what the bundled model wrote as instructions in the
optimizer benchmark (`benchmarks/results/`), copied with the task's starting instruction to
`tests/data/gate_examples.jsonl` and marked by hand as readable or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optimize_support import ScriptedModel, letters_project, start_run

from promptstudio.optimize import gate, runner, writing
from promptstudio.optimize.events import CandidateRejected
from promptstudio.optimize.gate import Gate
from promptstudio.parsing import clean_instruction

EXAMPLES = [json.loads(line) for line in
            (Path(__file__).parent / "data" / "gate_examples.jsonl").read_text().splitlines()]
META_PROMPTS = writing.gate_texts()
LABELS = ("Instruction", "Input", "Output")


def verdict(start: str, text: str, **kwargs) -> gate.SetAside | None:
    cleaned, why = clean_instruction(text)
    if cleaned is None:
        return gate.SetAside("cleaning", why)
    return Gate(start, meta_prompts=META_PROMPTS, labels=LABELS, **kwargs).check(cleaned)


def test_the_collected_examples_are_many_and_mostly_junk():
    readable = [e for e in EXAMPLES if e["readable"]]
    assert len(EXAMPLES) >= 140 and 10 <= len(readable) <= 20


@pytest.mark.parametrize("example", [e for e in EXAMPLES if not e["readable"]],
                         ids=lambda e: e["text"][:40])
def test_junk_the_bundled_model_wrote_is_set_aside(example):
    assert verdict(example["start"], example["text"]) is not None


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e["readable"]],
                         ids=lambda e: e["text"][:40])
def test_readable_text_passes_whatever_it_means(example):
    """The gate judges form only: these are wrong for their task, and the choice on dev
    rows the search never used is what keeps them from being shown as best."""
    assert verdict(example["start"], example["text"]) is None


def test_every_rule_sets_something_aside_with_its_reason():
    start = "Write the plural of the word."
    cases = {
        gate.MARKUP: "Write the <b>plural</b> of the word.",
        gate.META: "Write the plural my friend gave.",
        gate.REPETITION: "Write the plural, write the plural of it.",
        gate.LENGTH: ("Write the plural of each noun that you are given here, keeping the "
                      "spelling of its root and the case of its first letter as they were."),
        gate.NOT_PROSE: "Write the plural of the",
        gate.COPY: "Write the past tense of the verb.",
    }
    for rule, text in cases.items():
        found = verdict(start, text, worked=writing.worked_texts())
        assert found is not None and found.rule == rule, (rule, found)
        assert found.reason


def test_a_copy_of_a_worked_case_is_set_aside_only_where_the_model_was_shown_it():
    """A base model continues the worked cases of its meta-prompts as readily as the
    user's task ("as it is in the northern half of the world", from PE2's); a run that
    showed it none of them, or a user whose own task has those words, is not held to it."""
    start = "Write the plural form of the noun you are given."
    copied = "Write the plural of the noun, as it is in the northern half of the world."
    found = verdict(start, copied, worked=writing.worked_texts())
    assert found is not None and found.rule == gate.COPY
    assert "northern half" in found.reason
    assert verdict(start, copied) is None
    assert verdict("Write the past tense of the verb.", "Write the past tense of the verb, "
                   "in English.", worked=writing.worked_texts()) is None


def test_the_users_own_words_are_never_held_against_a_candidate():
    start = "Score the review from 1 to 5, as my friend would."
    assert verdict(start, "Give the review a score from 1 to 5.") is None
    assert verdict("Answer.", "Give the review a score from 1 to 5.").rule == gate.META


def test_a_one_word_start_still_allows_a_sentence():
    assert verdict("Answer.", "Give the first letter of the word.") is None
    assert verdict("Answer.", "Reply.") is None, "as short as the user's own"
    assert verdict("Answer.", " ".join(["Give"] + ["the first letter"] * 4)).rule in (
        gate.REPETITION, gate.LENGTH)


def test_the_length_limit_can_be_set():
    long = "Write the plural of each noun you are given, keeping its spelling."
    assert verdict("Write the plural of the word.", long) is None
    assert verdict("Write the plural of the word.", long, max_words=8).rule == gate.LENGTH


def test_text_far_less_likely_than_the_start_is_set_aside():
    likelihoods = {"Write the plural of the word.": -2.0, "Give the plural.": -2.5,
                   "Zorb the plimp of the wug.": -6.0}
    asked = []

    def log_likelihood(text: str) -> float:
        asked.append(text)
        return likelihoods[text]

    strict = Gate("Write the plural of the word.", meta_prompts=META_PROMPTS,
                  log_likelihood=log_likelihood)
    assert strict.check("Give the plural.") is None
    found = strict.check("Zorb the plimp of the wug.")
    assert found.rule == gate.PERPLEXITY and "-6.0" in found.reason and "-2.0" in found.reason
    assert asked == ["Write the plural of the word.", "Give the plural.",
                     "Zorb the plimp of the wug."], "the start is scored once"


def test_a_model_that_cannot_score_text_skips_only_that_rule():
    blind = Gate("Answer.", meta_prompts=META_PROMPTS, log_likelihood=lambda text: None)
    assert blind.check("Give the plural.") is None
    assert blind.check("Give <b>the plural</b>.").rule == gate.MARKUP


# -- in a run --------------------------------------------------------------------------------


def test_every_method_sends_its_candidates_through_the_gate(workspace):
    """A scripted APE run whose optimizer writes junk: each piece is announced as set aside
    with its rule, none is scored, and the run still finishes."""
    junk = ["<OPT>", "My friend answered every input.", "Say the following:",
            "Answer with x = 1.", "Give the first letter of the word."]

    class Writer(ScriptedModel):
        def __init__(self) -> None:
            super().__init__(lambda instruction, word: word[0], self.write)
            self.written = 0

        def write(self, prompt: str, call: int) -> str:
            self.written += 1
            return " " + junk[(self.written - 1) % len(junk)]

    project = letters_project(workspace, instruction="Answer.")
    run = start_run(project, "ape", overrides={"subsamples": 1, "per_subsample": 5,
                                               "mc_rounds": 0})
    events = []
    model = Writer()
    outcome = runner.execute(project, run.id, model, model, listener=events.append)
    set_aside = {e.text: e.rule for e in events if isinstance(e, CandidateRejected)}
    assert set_aside == {"<OPT>": gate.MARKUP, "My friend answered every input.": gate.META,
                         "Say the following:": gate.NOT_PROSE,
                         "Answer with x = 1.": gate.NOT_PROSE}
    made = [c.instruction for c in project.candidates(run.id) if c.operation == "forward"]
    assert made == ["Give the first letter of the word."]
    assert outcome.status == "finished" and outcome.rejected_candidates == 4


@pytest.mark.model
def test_the_real_task_model_finds_nonsense_unlikely(workspace, local_backend):
    """The run's own gate, scoring with the bundled model: an instruction passes; words
    it has never seen, or an odd sentence, are far less likely than the start."""
    from task_data import data_project

    from promptstudio.optimize.budget import Budget
    from promptstudio.optimize.context import RunContext

    project = data_project(workspace, task="plurals", instruction="Write the plural of the word.")
    run = start_run(project, "ape")
    ctx = RunContext(project, run, local_backend, local_backend, budget=Budget(),
                     start=runner.starting_candidate(project, run,
                                                     runner.run_scoring(project, run)))
    assert ctx.gate.check("Give the plural of the word.") is None
    for nonsense in ("Zorb the plimp of the wug.", "Qxv blorp zint wekk."):
        assert ctx.gate.check(nonsense).rule == gate.PERPLEXITY
    assert ctx.calls == 4, "the start once, then each text once"


def test_a_run_can_set_the_cap_on_instruction_length(workspace):
    """The cap (40 words) can move; twice the start's words still bounds it."""
    from promptstudio.optimize.budget import Budget
    from promptstudio.optimize.context import RunContext

    project = letters_project(workspace, instruction="Give the first letter of the word.")
    for limit, expected in ((None, 14), (10, 10), (60, 14)):
        plan = runner.plan(project, "pe2", gate_max_words=limit)
        run = runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
        assert runner.resolve_params(runner.method_named("pe2"), "quick", None)["max_words"] \
            == run.params["max_words"], "PE2's own max_words is untouched"
        ctx = RunContext(project, run, ScriptedModel(lambda i, w: w, lambda p, c: ""),
                         ScriptedModel(lambda i, w: w, lambda p, c: ""), budget=Budget(),
                         start=runner.starting_candidate(project, run,
                                                     runner.run_scoring(project, run)))
        assert ctx.gate.word_limit == expected
