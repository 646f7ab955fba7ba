"""Kill a real run again and again at chosen points; check it ends as the run left alone.

One project is optimized without interruption. A second, made the same way, runs the same
method with the same seed, but its process kills itself (SIGKILL) at chosen points, half of
them inside a call of sampled replies (the optimizer writing) and half inside a batch of
training evaluations; each time the run is resumed from the command line, as a user would.
The points come from the first run's stored calls (`KILL_AT_CALL`: "die once N calls are
stored"), so they fall inside batches by construction rather than by timing.

Then the two projects are compared: the candidates in order, the run's pick, its reason
and scores, every evaluation and every stored model answer. Anything that differs is
printed; a reproducible run prints nothing there.

    python benchmarks/kill_campaign.py [--method ape] [--preset thorough] [--kills 20]
                                       [--task antonyms] [--data DIR]

The test suite runs a small campaign on its own data (`tests/test_kill_campaign.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optimizers import STARTING_INSTRUCTIONS  # noqa: E402

from promptstudio.store.project import KILL_AT_CALL  # noqa: E402
from promptstudio.store.workspace import Workspace  # noqa: E402

NAME = "campaign"
KILLED = -9


@dataclass
class Campaign:
    """What a campaign did and found."""

    kill_points: list[int]
    kills: int = 0
    resumes: int = 0
    differences: list[str] = field(default_factory=list)
    seconds_alone: float = 0.0
    seconds_killed: float = 0.0
    calls: int = 0


def cli(workspace: Path, *args: str, kill_at: int | None = None,
        timeout: float = 1800) -> int:
    """Run `promptstudio` in a child process; its exit code (-9 when it killed itself)."""
    env = {key: value for key, value in os.environ.items() if key != KILL_AT_CALL}
    if kill_at is not None:
        env[KILL_AT_CALL] = str(kill_at)
    done = subprocess.run([sys.executable, "-m", "promptstudio", "--workspace",
                           str(workspace), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode not in (0, KILLED):
        raise RuntimeError(f"promptstudio {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stderr[-2000:]}")
    return done.returncode


def _rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchall()


def batches(database: Path) -> tuple[list[range], list[range]]:
    """Stored calls in the order they were stored, as runs of places (1-based) that came
    from one call: (sampled calls, batched evaluations). Evaluations asked alone, whose
    answers do not depend on their neighbours, are left out."""
    rows = _rows(database, "SELECT op, params, prompt FROM llm_call ORDER BY rowid")
    sampled: list[range] = []
    evaluated: list[range] = []
    start = 0
    for place in range(1, len(rows) + 1):
        if place < len(rows) and _same_call(rows[place - 1], rows[place]):
            continue
        settings = json.loads(rows[start][1])
        if settings.get("temperature", 0) > 0:
            sampled.append(range(start + 1, place + 1))
        elif "alone_after" not in settings:
            evaluated.append(range(start + 1, place + 1))
        start = place
    return sampled, evaluated


def _same_call(a: tuple, b: tuple) -> bool:
    settings = json.loads(a[1])
    if a[0] != b[0] or a[1] != b[1]:
        return False
    return a[2] == b[2] if settings.get("temperature", 0) > 0 else True


def kill_points(database: Path, kills: int) -> list[int]:
    """`kills` places, in order: half in sampled calls, half in evaluation batches, spread
    over the run; inside a call (after its first answer is stored, before its last) where
    the call has more than one prompt, else right after it."""
    sampled, evaluated = batches(database)
    chosen: set[int] = set()
    for pool, wanted in ((sampled, kills - kills // 2), (evaluated, kills // 2)):
        wide = [call for call in pool if len(call) > 1] or pool
        taken: dict[int, int] = {}
        for i in range(wanted if wide else 0):
            index = i * len(wide) // wanted
            nth = taken[index] = taken.get(index, -1) + 1
            call = wide[index]
            inside = max(1, len(call) - 1)
            chosen.add(call[0] + (len(call) // 2 - 1 + nth) % inside if len(call) > 1
                       else call[0])
    return sorted(chosen)


def snapshot(database: Path) -> dict[str, object]:
    """Everything a run decides, keyed so that two projects can be compared."""
    return {
        "candidates": _rows(database, "SELECT id, instruction, demo_ids, parent_ids, "
                                      "operation, step, meta FROM candidate ORDER BY id"),
        "run": _rows(database, "SELECT status, best_candidate_id, choice FROM run"),
        "evaluations": _rows(database, "SELECT candidate_id, example_id, model, raw_output, "
                                       "score FROM evaluation ORDER BY 1, 2, 3"),
        "calls": _rows(database, "SELECT key, response FROM llm_call ORDER BY key"),
    }


def compare(alone: dict, killed: dict) -> list[str]:
    differences = []
    for part in alone:
        left, right = alone[part], killed[part]
        if left == right:
            continue
        only_left = set(left) - set(right)
        only_right = set(right) - set(left)
        differences.append(f"{part}: {len(only_left)} only in the run left alone, "
                           f"{len(only_right)} only in the killed run")
        for row in sorted(only_left, key=str)[:3]:
            differences.append(f"  left alone: {str(row)[:200]}")
        for row in sorted(only_right, key=str)[:3]:
            differences.append(f"  killed:     {str(row)[:200]}")
    return differences


def campaign(folder: Path, make_project: Callable[[Workspace, str], None], method: str,
             preset: str, kills: int, seed: int = 0,
             settings: dict[str, object] | None = None) -> Campaign:
    """Run the campaign in `folder`; `make_project(workspace, name)` makes the project;
    `settings` change the method's preset (as `--set` does)."""
    optimize = ["optimize", NAME, "--method", method, "--preset", preset, "--seed", str(seed)]
    for key, value in (settings or {}).items():
        optimize += ["--set", f"{key}={json.dumps(value)}"]
    paths = {}
    for name in ("alone", "killed"):
        workspace = Workspace(folder / name)
        make_project(workspace, NAME)
        paths[name] = folder / name
    started = time.monotonic()
    cli(paths["alone"], *optimize)
    seconds_alone = time.monotonic() - started
    database = paths["alone"] / f"{NAME}.sqlite"
    report = Campaign(kill_points(database, kills), seconds_alone=seconds_alone,
                      calls=_rows(database, "SELECT COUNT(*) FROM llm_call")[0][0])

    started = time.monotonic()
    command = optimize
    for point in report.kill_points:
        code = cli(paths["killed"], *command, kill_at=point)
        if code != KILLED:
            report.differences.append(f"the run ended before the kill at call {point}")
            break
        report.kills += 1
        command = ["resume", f"{NAME}:1"]
    else:
        cli(paths["killed"], *command)
    report.resumes = report.kills
    report.seconds_killed = time.monotonic() - started
    report.differences += compare(snapshot(database),
                                  snapshot(paths["killed"] / f"{NAME}.sqlite"))
    return report


def shared_project(data: Path, task: str, train: int, dev: int, test: int
                   ) -> Callable[[Workspace, str], None]:
    """A project of one shared benchmark task, with its starting instruction."""
    from promptstudio.dataio import Row
    from promptstudio.store.records import ProjectSettings

    def rows(split: str) -> list[dict]:
        path = data / task / f"{split}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def make(workspace: Workspace, name: str) -> None:
        project = workspace.create(ProjectSettings(
            name=name, instruction=STARTING_INSTRUCTIONS.get(task, "Answer.")))
        pool, tests = rows("train"), rows("test")
        for split, chosen in (("train", pool[:train]), ("dev", pool[train:train + dev]),
                              ("test", tests[:test])):
            project.add_examples([Row(r["input"], r["output"],
                                      tuple(r.get("answers") or [r["output"]]), split)
                                  for r in chosen])
        project.close()

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="ape")
    parser.add_argument("--preset", default="thorough")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--task", default="antonyms")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "bench"))
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--dev", type=int, default=30)
    parser.add_argument("--test", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("PROMPTSTUDIO_HOME", tempfile.mkdtemp(prefix="ps-kills-"))
    make = shared_project(Path(args.data), args.task, args.train, args.dev, args.test)
    with tempfile.TemporaryDirectory(prefix="ps-kills-") as folder:
        report = campaign(Path(folder), make, args.method, args.preset, args.kills)
    print(f"{args.method} at {args.preset} on {args.task}: {report.calls} stored calls; "
          f"left alone {report.seconds_alone:.0f} s")
    print(f"killed {report.kills} times (after stored calls {report.kill_points}), resumed "
          f"{report.resumes} times: {report.seconds_killed:.0f} s in all "
          f"({report.seconds_killed / max(report.seconds_alone, 1e-9):.2f}x)")
    print("What differed:", "nothing" if not report.differences else "")
    for line in report.differences:
        print(line)


if __name__ == "__main__":
    main()
