"""Shared helpers for the optimizer tests: a small project, a scripted model that plays
both the task model and the optimizer model, and runs that are interrupted and resumed."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from scripted import ScriptedBackend, base_variant, meta_prompt_of

from promptstudio.dataio import Row
from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.context import RunControl
from promptstudio.optimize.events import Event, StepStarted
from promptstudio.store.records import ProjectSettings

WORDS = ("apple banana cherry damson elder fig grape hazel iris juniper kiwi lemon mango "
         "nutmeg olive peach quince radish spinach tomato ugli vanilla walnut yam zucchini "
         "acorn bean carrot dill endive basil celery date eggplant").split()


SMALL_SETS = {"k": 3, "max_k": 8}
"""Demonstration sets of 3, 5 and 8 examples: the sizes the scripted tests of sizes and of
choosing were written for (the presets now draw 4 to 16, at most 8 from the letters
project's 20 training rows)."""


def letters_project(workspace, name: str = "letters", **settings):
    """First-letter task: 20 train, 10 dev, 4 test rows."""
    project = workspace.create(ProjectSettings(
        name=name, instruction=settings.pop("instruction", "Answer."), **settings))
    project.add_examples([Row(w, w[0], (w[0],), "train") for w in WORDS[:20]])
    project.add_examples([Row(w, w[0], (w[0],), "dev") for w in WORDS[20:30]])
    project.add_examples([Row(w, w[0], (w[0],), "test") for w in WORDS[30:34]])
    return project


def task_input(prompt: str) -> str:
    """The example's input, in a prompt that writes its examples in the default layout;
    "" in any other layout (demonstration search tries others), which these scripted
    models never answer right."""
    if "Input: " not in prompt:
        return ""
    return prompt.rsplit("Input: ", 1)[1].split("\n", 1)[0]


def instruction_of(prompt: str) -> str:
    match = re.match(r"Instruction: (.*?)\n", prompt)
    return match.group(1) if match else ""


class ScriptedModel(ScriptedBackend):
    """Answers task prompts with `task(instruction, input)` and anything else (a meta-prompt)
    with `optimizer(prompt, call_number)`. Counts every call it receives."""

    def __init__(self, task: Callable[[str, str], str],
                 optimizer: Callable[[str, int], str]) -> None:
        self.optimizer_calls = 0

        def reply(prompt: str) -> str:
            if prompt.startswith("Instruction: "):
                word = task_input(prompt)
                return " " + (task(instruction_of(prompt), word) if word else "?") + "\n"
            self.optimizer_calls += 1
            return optimizer(prompt, self.optimizer_calls)

        super().__init__(reply)


def start_run(project, method: str, preset: str = "quick", seed: int = 0,
              overrides: dict | None = None, budget: Budget | None = None,
              then: str | None = None, turns: int = 1, writer: str = "paper"):
    """A run ready to execute. The scripted optimizer models answer the papers'
    meta-prompts unless a test says otherwise (`writer`)."""
    plan = runner.plan(project, method, preset=preset, overrides=overrides, then=then,
                       turns=turns, writer=writer)
    return runner.create_run(project, plan, preset=preset, seed=seed, budget=budget or Budget())


def search_budget(project, calls: int) -> Budget:
    """A call limit that leaves `calls` for the search, after what choosing and reporting
    the best prompt may take (the limit covers the whole run)."""
    return Budget(max_calls=runner.final_calls(runner.sizes(project)) + calls)


def pause_then_resume(project, run_id: int, model, step: int):
    """Execute, pausing when the method announces `step`, then resume to the end; returns
    the finished run's outcome."""
    control = RunControl()

    def listen(event: Event) -> None:
        if isinstance(event, StepStarted) and event.step == step:
            control.pause()

    paused = runner.execute(project, run_id, model, model, control=control, listener=listen)
    assert paused.status == "paused", f"the run did not pause at step {step}"
    finished = runner.execute(project, run_id, model, model)
    assert finished.status == "finished"
    return finished


# -- a finished run to look at: the reports and the results page ----------------------

EDITS = ("Give the first letter of the word.", "Reply with a letter of the word.")


def letter_model(*, half: Callable[[str], bool] = lambda word: word[0] < "n",
                miss: Callable[[str], str] = lambda word: word[-1],
                otherwise: Callable[[str], str] = lambda word: "?",
                slips: Callable[[str], bool] = lambda word: False
                ) -> Callable[[str, str], str]:
    """The scripted first-letter task model, which does what the instruction says, with
    the tests' differences as parameters. Told to give the first letter, it is right,
    except on words where `slips` (it gives the second letter); told to give a letter, it
    is right on words where `half` and answers `miss(word)` on the others; told anything
    else, it answers `otherwise(word)`."""

    def answer(instruction: str, word: str) -> str:
        text = instruction.lower()
        if "first letter" in text:
            return word[1] if slips(word) else word[0]
        if "letter" in text:
            return word[0] if half(word) else miss(word)
        return otherwise(word)

    return answer


letters_task = letter_model()
"""Fully right when told to give the first letter, half right when told to give a letter,
wrong otherwise."""


def letters_optimizer(prompt: str, call: int) -> str:
    """ProTeGi's optimizer model, for the papers' meta-prompts and for those a base model
    continues: a reason, an edit that fixes it (a half-right prompt first, then a right
    one), a paraphrase."""
    name = meta_prompt_of(prompt)
    tagged = "{}" if base_variant(name) else "<START>{}<END>"
    if name in ("protegi_gradient", "protegi_gradient_base"):
        return tagged.format("It never says that a letter is wanted.")
    if name in ("protegi_edit", "protegi_edit_base"):
        current = re.findall(r'(?:Prompt: |now is:\n)"(.*?)"\n', prompt)[-1]
        return tagged.format(EDITS[1] if current == "Answer." else EDITS[0])
    instruction = prompt.rsplit("Instruction: ", 1)[1].split("\n", 1)[0]
    return f"{instruction.rstrip('.')}, please."


def scripted_run(workspace, name: str = "letters", method: str = "protegi",
                 listener=None):
    """A finished scripted ProTeGi run on the first-letter project: (project, run id)."""
    project = letters_project(workspace, name=name)
    run = start_run(project, method)
    model = ScriptedModel(letters_task, letters_optimizer)
    outcome = runner.execute(project, run.id, model, model, listener=listener)
    assert outcome.status == "finished"
    return project, run.id


def gguf_header(path: Path, metadata: dict[str, str], size: int) -> Path:
    """A GGUF file with string metadata and no tensors, written by the gguf package's own
    writer and padded (sparsely) to `size`."""
    import gguf

    shown = dict(metadata)
    writer = gguf.GGUFWriter(str(path), shown.pop("general.architecture", "llama"))
    for key, value in shown.items():
        writer.add_string(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if path.stat().st_size < size:
        os.truncate(path, size)
    return path
