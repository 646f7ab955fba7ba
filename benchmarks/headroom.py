"""How far could choosing the examples and their layout take the bundled model? A ceiling.

For every task of `../shared/bench`, the task's starting instruction is scored on test
(50 rows) with a few fixed prompts: 3 or 8 demonstrations drawn from train (seeded, as a
run's start is drawn), written in four layouts. Choosing, per task, the prompt with the
best *test* score is what a perfect chooser would do; no run can, since it must choose on
dev rows, so the mean of those best scores is a ceiling for this kind of search, not a
result. Prints one line per task and the means.

    python benchmarks/headroom.py [--tasks a,b] [--test 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizers import STARTING_INSTRUCTIONS, dev_and_train, load, test_rows

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.llm.local import LocalBackend
from promptstudio.store.records import ProjectSettings
from promptstudio.store.workspace import Workspace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"
LAYOUTS = {
    "default": ("Instruction: {instruction}\n\n{demos}Input: {input}\nOutput:",
                "Input: {input}\nOutput: {output}\n\n"),
    "qa": ("{instruction}\n\n{demos}Q: {input}\nA:", "Q: {input}\nA: {output}\n\n"),
    "single": ("{instruction}\n\n{demos}Input: {input}\nOutput:",
               "Input: {input}\nOutput: {output}\n"),
    "arrow": ("{instruction}\n\n{demos}{input} =>", "{input} => {output}\n"),
}
PROMPTS = (("default", 3, 0), ("default", 8, 0), ("default", 8, 1), ("qa", 3, 0),
           ("single", 3, 0), ("arrow", 3, 0), ("qa", 8, 0))
"""(layout, demonstrations, seed); the first is a run's starting prompt."""


def test_score(workspace: Workspace, task: str, info: dict, layout: str, k: int, seed: int,
               count: int, backend: LocalBackend) -> float:
    _, train = dev_and_train(load(SHARED, task, "train"), 30, 50)
    test = test_rows(SHARED, task, count)
    template, demo_format = LAYOUTS[layout]
    project = workspace.create(ProjectSettings(
        name=f"{task}-{layout}-{k}-{seed}", instruction=STARTING_INSTRUCTIONS[task],
        metric=info["metric"], labels=tuple(info.get("labels", ())), template=template,
        demo_format=demo_format))
    for rows, split in ((train, "train"), (test, "test")):
        project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), split)
                              for r in rows])
    result = workflows.evaluate_instruction(project, backend, project.settings.instruction,
                                            demos=k, seed=seed, split="test")
    project.close()
    return result.score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="")
    parser.add_argument("--test", type=int, default=50)
    args = parser.parse_args()
    tasks = json.loads((SHARED / "tasks.json").read_text())
    chosen = args.tasks.split(",") if args.tasks else list(tasks)
    backend = LocalBackend()
    workspace = Workspace(Path(tempfile.mkdtemp()) / "projects")
    starts, bests = [], []
    for task in chosen:
        scores = [test_score(workspace, task, tasks[task], layout, k, seed, args.test, backend)
                  for layout, k, seed in PROMPTS]
        starts.append(scores[0])
        bests.append(max(scores))
        print(task, " ".join(f"{layout}:{k}:{seed}={score:.2f}"
                             for (layout, k, seed), score in zip(PROMPTS, scores, strict=True)),
              flush=True)
    print(f"start {statistics.mean(starts):.3f}, best per task on test "
          f"{statistics.mean(bests):.3f} "
          f"({100 * (statistics.mean(bests) - statistics.mean(starts)):+.1f} points)")


if __name__ == "__main__":
    main()
