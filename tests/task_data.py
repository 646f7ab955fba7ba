"""The small task data sets in tests/data, written for these tests, and projects made of them.

Each task has `train.jsonl` and `test.jsonl` (see tests/data/README.md). A missing file or
too few rows is an error, never a skip: every clone runs the same assertions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from promptstudio.dataio import Row
from promptstudio.store.records import ProjectSettings

DATA = Path(__file__).resolve().parent / "data"

SHORT_SEARCH = ["--method", "demos", "--preset", "quick", "--set", "random_sets=3", "--set",
                "bootstrapped_sets=1", "--set", "layouts=1", "--set", "orders=0"]
"""A short demonstration search on the command line, for the tests of what happens around a
real run (a full disk, a kill and a resume) rather than of the search. Demonstration search
writes nothing, so the run's length does not hang on how many of a small model's
instructions the readability gate lets through; resuming at each of its steps, the orders'
race included, is tested on a scripted model."""


def data_file(task: str, split: str) -> Path:
    """The file of one task's split: `split` is "train" or "test"."""
    path = DATA / task / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"test data missing: {path} (see tests/data/README.md)")
    return path


def data_rows(task: str, split: str, limit: int | None = None) -> list[dict]:
    """The first `limit` rows (all without it) of a task's split, as dicts."""
    lines = data_file(task, split).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if limit is not None and limit > len(rows):
        raise ValueError(f"{task}/{split}.jsonl has {len(rows)} rows; {limit} were asked for")
    return rows[:limit]


def write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    """Rows as a JSON Lines file that a project can import."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def data_project(workspace, name: str = "data", instruction: str = "Answer.",
                 task: str = "first_letter", train: int = 30, dev: int = 10, test: int = 10):
    """A project of one task: train and dev rows from its train file, test rows from its
    test file, for the tests that run the bundled model."""
    project = workspace.create(ProjectSettings(name=name, instruction=instruction))
    rows = data_rows(task, "train", train + dev)
    tests = data_rows(task, "test", test)
    for split, chosen in (("train", rows[:train]), ("dev", rows[train:]), ("test", tests)):
        project.add_examples([Row(r["input"], r["output"], tuple(r["answers"]), split)
                              for r in chosen])
    return project
