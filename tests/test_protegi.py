"""ProTeGi: gradients from error groups, edits, paraphrases, the expansion cap, the beam,
budgets and resuming, on a scripted model; one short run on the bundled model."""

from __future__ import annotations

import re

import pytest
from optimize_support import (
    WORDS,
    ScriptedModel,
    letters_project,
    letters_task,
    pause_then_resume,
    search_budget,
    start_run,
)
from scripted import meta_prompt_of
from task_data import data_rows

from promptstudio.dataio import Row
from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.events import CandidateScored, Message, StepStarted
from promptstudio.optimize.method import method_named
from promptstudio.store.records import ProjectSettings

TRAIN_WORDS = set(WORDS[:20])


def kind_of(prompt: str) -> str:
    kinds = {"protegi_gradient": "gradient", "protegi_edit": "edit", "paraphrase": "paraphrase"}
    name = meta_prompt_of(prompt)
    assert name in kinds, prompt[:80]
    return kinds[name]


class Optimizer:
    """Plays the optimizer model: `replies[kind]` maps the k-th request of that kind (and the
    request itself) to a reply. Keeps every request it gets."""

    def __init__(self, **replies) -> None:
        self.replies = {"gradient": default_gradient, "edit": default_edit,
                        "paraphrase": default_paraphrase, **replies}
        self.asked: dict[str, list[str]] = {"gradient": [], "edit": [], "paraphrase": []}

    def __call__(self, prompt: str, call_number: int) -> str:
        kind = kind_of(prompt)
        self.asked[kind].append(prompt)
        return self.replies[kind](len(self.asked[kind]), prompt)


def default_gradient(k: int, prompt: str) -> str:
    return f"<START>It never says that a letter is wanted (point {k}).<END>"


EDITS = ["Reply with a letter of the word.", "Write one letter taken from the word.",
         "Give the first letter of the word.", "Name a single letter from the word."]


def default_edit(k: int, prompt: str) -> str:
    return f"<START>{EDITS[(k - 1) % len(EDITS)]}<END>"


def default_paraphrase(k: int, prompt: str) -> str:
    instruction = prompt.split("Instruction: ", 1)[1].split("\n", 1)[0]
    return f"{instruction.rstrip('.')}, version {k}."


def half_right_edit(k: int, prompt: str) -> str:
    """Edits that never reach a perfect score, so every beam member keeps making errors."""
    return f"<START>Name letter number {k} you see in the word.<END>"


def execute(workspace, optimizer: Optimizer, *, overrides: dict | None = None,
            budget: Budget | None = None, instruction: str = "Answer.", name: str = "letters",
            project=None, preset: str = "quick"):
    project = project or letters_project(workspace, name=name, instruction=instruction)
    run = start_run(project, "protegi", preset=preset, overrides=overrides, budget=budget)
    model = ScriptedModel(letters_task, optimizer)
    events: list = []
    outcome = runner.execute(project, run.id, model, model, listener=events.append)
    return project, run, outcome, model, events


def shown_inputs(meta_prompt: str) -> list[str]:
    return re.findall(r"^Input: (.*)$", meta_prompt, re.MULTILINE)


def search_events(events: list) -> list:
    """The events of the search, before the runner chooses among the finalists."""
    end = next(i for i, e in enumerate(events)
               if isinstance(e, Message) and e.text.startswith("Choosing among"))
    return events[:end]


def quoted_prompt(meta_prompt: str) -> str:
    return re.search(r'The prompt I have now is:\n"(.*)"', meta_prompt).group(1)


# -- the expansion --------------------------------------------------------------------


@pytest.mark.parametrize(("minibatch", "group"), [(10, 4), (3, 3)])
def test_gradients_are_asked_for_groups_of_errors(workspace, minibatch, group):
    optimizer = Optimizer()
    _, _, outcome, _, _ = execute(workspace, optimizer, overrides={
        "rounds": 1, "beam": 1, "minibatch": minibatch, "gradients": 3,
        "errors_per_gradient": 4})
    assert outcome.status == "finished"
    asked = optimizer.asked["gradient"]
    assert len(asked) == 3
    groups = [shown_inputs(prompt) for prompt in asked]
    assert all(len(g) == group and len(set(g)) == group for g in groups)
    assert all(set(g) <= TRAIN_WORDS for g in groups), "errors come from train only"
    assert all(quoted_prompt(prompt) == "Answer." for prompt in asked)
    assert all(prompt.count("The model answered: ?") == group for prompt in asked)
    if minibatch > group:
        assert len({tuple(g) for g in groups}) > 1, "each group is drawn on its own"
    for gradient, edit in zip(asked, optimizer.asked["edit"]):
        assert shown_inputs(edit) == shown_inputs(gradient), "the edit sees the same errors"


def test_edits_and_paraphrases_carry_their_lineage(workspace):
    optimizer = Optimizer()
    project, run, outcome, _, _ = execute(workspace, optimizer, overrides={
        "rounds": 1, "beam": 1, "gradients": 2, "errors_per_gradient": 2,
        "paraphrases": 2, "max_expansion": 8})
    candidates = project.candidates(run.id)
    start = next(c for c in candidates if c.operation == "start")
    edits = [c for c in candidates if c.operation == "gradient-edit"]
    paraphrases = [c for c in candidates if c.operation == "paraphrase"]
    assert [c.instruction for c in edits] == EDITS[:2]
    reasons = ["It never says that a letter is wanted (point 1).",
               "It never says that a letter is wanted (point 2)."]
    assert [c.origin for c in edits] == reasons
    assert all(c.parent_ids == (start.id,) and c.demo_ids == start.demo_ids for c in edits)
    assert all(set(c.meta["errors"]) <= {e.id for e in project.examples("train")}
               for c in edits)
    assert len(paraphrases) == 4
    by_id = {c.id: c for c in edits}
    for paraphrase in paraphrases:
        (parent_id,) = paraphrase.parent_ids
        assert paraphrase.origin == by_id[parent_id].origin
        assert paraphrase.instruction.startswith(by_id[parent_id].instruction.rstrip("."))
    for reason, edit_prompt in zip(reasons, optimizer.asked["edit"]):
        assert f"is that {reason}" in edit_prompt
    dev = {c.id: project.mean_score(c.id, "dev")[0] for c in candidates
           if project.mean_score(c.id, "dev")[1]}
    assert max(dev, key=dev.get) != start.id, "an edit beats the start on dev"
    # Half right (first letters before n) against never right: the edit also wins on the
    # dev rows the search never used, and replaces the start.
    assert outcome.best.id in by_id and outcome.choice.kind == "found"


def test_better_edits_win(workspace):
    _, _, outcome, _, _ = execute(workspace, Optimizer(), overrides={
        "rounds": 2, "beam": 2, "gradients": 3})
    assert "first letter" in outcome.best.instruction
    assert outcome.dev_score == 1.0
    assert outcome.test_score == 1.0 and outcome.baseline_test_score == 0.0


def test_malformed_replies_are_read_leniently_or_rejected(workspace):
    rambling = "Well, let me think about this.\n\n" + "It is all rather unclear. " * 60
    gradients = {
        1: "",
        2: "The prompt is too vague about what to answer.",
        3: "<START>It asks for nothing in particular.<END><START>It asks for nothing "
           "in particular.<END>",
        4: rambling,
        5: "<START>   <END>",
        6: "<START>Too short to say what is wanted",
    }
    edits = {
        1: "",
        2: "<START>Copy the {input} back.<END>",
        3: "Sure, here is a better one:\n\n<START>Name a letter of the word.<END> Hope it "
           "helps!",
        4: "<START>Answer.<END>",
    }
    paraphrases = {1: "Answer.", 2: "x" * 600}
    optimizer = Optimizer(gradient=lambda k, p: gradients[k], edit=lambda k, p: edits[k],
                          paraphrase=lambda k, p: paraphrases[k])
    project, run, outcome, _, _ = execute(workspace, optimizer, overrides={
        "rounds": 1, "beam": 1, "gradients": 6, "errors_per_gradient": 2,
        "paraphrases": 2})
    assert len(optimizer.asked["gradient"]) == 6
    edit_prompts = optimizer.asked["edit"]
    assert len(edit_prompts) == 4, "no edit for an empty reason"
    reasons = [re.search(r"is that (.*)\n", p).group(1) for p in edit_prompts]
    assert reasons[0] == "The prompt is too vague about what to answer."
    assert reasons[1] == "It asks for nothing in particular."
    assert reasons[2].startswith("Well, let me think") and len(reasons[2]) <= 410
    assert reasons[3] == "Too short to say what is wanted"
    assert len(optimizer.asked["paraphrase"]) == 2, "only the one usable edit is paraphrased"
    created = [c.instruction for c in project.candidates(run.id) if c.operation != "bare"]
    assert created == ["Answer.", "Name a letter of the word."]
    assert outcome.rejected_candidates == 3  # the empty edit, the echo, the overlong one
    assert outcome.status == "finished"
    edit = next(c for c in project.candidates(run.id) if c.instruction.startswith("Name"))
    assert project.mean_score(edit.id, "dev")[0] > 0.0
    # Half right (first letters before n) where the start is never right: it wins on the
    # dev rows the search never used too, and replaces the start.
    assert outcome.best.id == edit.id


def test_a_member_without_errors_asks_for_no_gradients(workspace):
    optimizer = Optimizer()
    _, _, outcome, model, events = execute(workspace, optimizer,
                                           instruction="Give the first letter.")
    assert model.optimizer_calls == 0
    assert any(isinstance(e, Message) and "no gradients" in e.text for e in events)
    assert outcome.best.operation == "start"
    assert outcome.test_score == 1.0


def test_successors_beyond_the_cap_are_sampled(workspace):
    optimizer = Optimizer(edit=half_right_edit)
    project, run, _, _, events = execute(workspace, optimizer, overrides={
        "rounds": 1, "beam": 2, "gradients": 3, "paraphrases": 2, "max_expansion": 4})
    made = [c for c in project.candidates(run.id) if c.operation not in ("start", "bare")]
    assert len(made) == 9
    arms = {e.candidate_id for e in search_events(events) if isinstance(e, CandidateScored)}
    assert len(arms) == 1 + 4, "the start and the 4 successors kept"
    assert any(isinstance(e, Message) and "keeping a random 4" in e.text for e in events)


@pytest.mark.parametrize("beam", [2, 3])
def test_the_beam_has_its_width(workspace, beam):
    optimizer = Optimizer(edit=half_right_edit)
    _, _, outcome, _, events = execute(workspace, optimizer, overrides={
        "rounds": 2, "beam": beam, "gradients": 2, "errors_per_gradient": 2})
    steps = [e for e in events if isinstance(e, StepStarted)]
    assert [s.step for s in steps] == [1, 2]
    first, second = optimizer.asked["gradient"][:2], optimizer.asked["gradient"][2:]
    assert {quoted_prompt(p) for p in first} == {"Answer."}
    assert len(second) == 2 * beam
    assert len({quoted_prompt(p) for p in second}) == beam
    assert outcome.status == "finished"


def test_selection_scores_on_dev(workspace):
    _, _, outcome, _, events = execute(workspace, Optimizer(), overrides={"rounds": 1})
    pulls = [e for e in search_events(events) if isinstance(e, CandidateScored)]
    assert pulls and {e.split for e in pulls} == {"dev"}
    assert all(e.n <= 4 for e in pulls), "minibatches of pull_size"
    assert outcome.dev_score is not None


def test_selection_falls_back_to_train_without_dev_rows(workspace):
    project = workspace.create(ProjectSettings(name="no-dev", instruction="Answer."))
    project.add_examples([Row(w, w[0], (w[0],), "train") for w in WORDS[:24]])
    project.add_examples([Row(w, w[0], (w[0],), "test") for w in WORDS[24:30]])
    _, _, outcome, _, events = execute(workspace, Optimizer(), project=project,
                                       overrides={"rounds": 1})
    pulls = [e for e in search_events(events) if isinstance(e, CandidateScored)]
    assert pulls and {e.split for e in pulls} == {"train"}
    assert outcome.status == "finished" and outcome.test_score is not None


def test_an_unknown_bandit_is_refused_before_any_call(workspace):
    optimizer = Optimizer()
    with pytest.raises(ValueError, match="successive-halving"):
        execute(workspace, optimizer, overrides={"bandit": "thompson"})
    assert optimizer.asked == {"gradient": [], "edit": [], "paraphrase": []}


# -- cost, budget and resuming --------------------------------------------------------


def test_presets_and_projection(workspace):
    method = method_named("protegi")
    assert method.presets["thorough"] == method.paper
    assert method.paper["rounds"] == 6 and method.paper["beam"] == 4
    assert set(method.presets["quick"]) == set(method.paper)
    project = letters_project(workspace)
    plan = runner.plan(project, "protegi", preset="quick")
    _, _, outcome, _, _ = execute(workspace, Optimizer(), project=project)
    assert plan.projected_calls >= outcome.llm_calls > plan.projected_calls / 4


def test_a_budget_stops_the_search_and_the_run_still_reports(workspace):
    _, _, full, _, _ = execute(workspace, Optimizer(), name="full")
    budget = search_budget(letters_project(workspace, name="sized"), 40)
    _, _, short, _, events = execute(workspace, Optimizer(), name="short", budget=budget)
    assert any(isinstance(e, Message) and "Stopped searching" in e.text for e in events)
    assert short.status == "finished"
    assert short.best is not None and short.dev_score is not None
    assert short.test_score is not None and short.baseline_test_score is not None
    assert short.llm_calls < full.llm_calls
    assert short.requested_calls <= budget.max_calls


@pytest.mark.parametrize("pause_at", [1, 2, 3])
def test_a_paused_run_resumes_to_the_same_result(workspace, pause_at):
    overrides = {"rounds": 3}
    _, _, whole, model, _ = execute(workspace, Optimizer(), name="whole",
                                    overrides=overrides)

    project = letters_project(workspace, name="paused", instruction="Answer.")
    run = start_run(project, "protegi", overrides=overrides)
    resumed_model = ScriptedModel(letters_task, Optimizer())
    finished = pause_then_resume(project, run.id, resumed_model, pause_at)
    assert (finished.best.id, finished.best.instruction) == (whole.best.id,
                                                              whole.best.instruction)
    assert (finished.dev_score, finished.test_score) == (whole.dev_score, whole.test_score)
    assert len(resumed_model.prompts) == len(model.prompts)
    assert resumed_model.optimizer_calls == model.optimizer_calls


# -- on the bundled model -------------------------------------------------------------


@pytest.mark.model
def test_a_short_run_on_the_bundled_model(workspace, local_backend):
    # Without demonstrations the base model rambles, so the start makes mistakes to learn
    # from and the whole loop runs: gradient, edit, paraphrase, selection.
    rows = data_rows("sentiment", "train", 50)
    project = workspace.create(ProjectSettings(
        name="sentiment", instruction="Say whether the review is positive or negative.",
        template="Instruction: {instruction}\n\nInput: {input}\nOutput:",
        metric="normalized_exact"))
    project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), "train")
                          for r in rows[:40]])
    project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), "dev")
                          for r in rows[40:50]])
    project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), "test")
                          for r in data_rows("sentiment", "test", 10)])
    run = start_run(project, "protegi", overrides={
        "rounds": 1, "beam": 1, "minibatch": 8, "gradients": 1, "pull_size": 10})
    events: list = []
    outcome = runner.execute(project, run.id, local_backend, local_backend,
                             listener=events.append)
    assert outcome.requested_calls <= project.run(run.id).params["projected_calls"], (
        "the run stayed within the calls its plan projected")
    assert outcome.status == "finished"
    assert not any(isinstance(e, Message) and "no gradients" in e.text for e in events)
    made = [c for c in project.candidates(run.id) if c.operation != "start"]
    assert made or outcome.rejected_candidates > 0, "the optimizer model was asked"
    assert outcome.best is not None
    assert outcome.dev_score is not None and outcome.test_score is not None
    assert project.run(run.id).best_candidate_id == outcome.best.id
