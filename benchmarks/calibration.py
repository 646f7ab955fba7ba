"""Does contextual calibration help the label metric on the shared suite's label tasks?

For every task of `../shared/bench` that names its labels, the starting prompt of a run
(the task's instruction with 3 demonstrations drawn from train) is scored on test with the
label metric, calibrated and not, for three draws of the demonstrations (calibration is
said to matter most for which examples are shown). Prints a Markdown table, task by task.

    python benchmarks/calibration.py [--test 50] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
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


def score(workspace: Workspace, task: str, info: dict, calibrate: bool, seed: int,
          count: int, backend: LocalBackend) -> float:
    _, train = dev_and_train(load(SHARED, task, "train"), 30, 50)
    test = test_rows(SHARED, task, count)
    name = f"{task}-{seed}-{'on' if calibrate else 'off'}"
    project = workspace.create(ProjectSettings(
        name=name, instruction=STARTING_INSTRUCTIONS.get(task, "Answer."), metric="label",
        labels=tuple(info["labels"]), calibrate=calibrate))
    for rows, split in ((train, "train"), (test, "test")):
        project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), split)
                              for r in rows])
    result = workflows.evaluate_instruction(project, backend, project.settings.instruction,
                                            demos=3, seed=seed, split="test")
    project.close()
    return result.score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = {k: v for k, v in json.loads((SHARED / "tasks.json").read_text()).items()
             if v.get("labels")}
    backend = LocalBackend()
    workspace = Workspace(Path(tempfile.mkdtemp()) / "projects")
    started = time.perf_counter()
    lines = ["| task | labels | off (per seed) | on (per seed) | off, mean | on, mean | "
             "points |", "|---|---|---|---|---|---|---|"]
    gains, offs, ons = [], [], []
    for task, info in tasks.items():
        off = [score(workspace, task, info, False, s, args.test, backend) for s in seeds]
        on = [score(workspace, task, info, True, s, args.test, backend) for s in seeds]
        gain = 100 * (statistics.mean(on) - statistics.mean(off))
        gains.append(gain)
        offs.append(statistics.mean(off))
        ons.append(statistics.mean(on))
        lines.append(f"| {task} | {len(info['labels'])} | "
                     f"{' / '.join(f'{v:.2f}' for v in off)} | "
                     f"{' / '.join(f'{v:.2f}' for v in on)} | {statistics.mean(off):.3f} | "
                     f"{statistics.mean(on):.3f} | {gain:+.1f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    lines.append(f"| **mean** | | | | {statistics.mean(offs):.3f} | "
                 f"{statistics.mean(ons):.3f} | **{statistics.mean(gains):+.1f}** |")
    print("\n".join(lines))
    print(f"\n{len(tasks)} label tasks, seeds {args.seeds}, {args.test} test rows each; "
          f"{time.perf_counter() - started:.0f} s on this machine.")


if __name__ == "__main__":
    main()
