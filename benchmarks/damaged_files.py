"""A fuzz campaign of damaged project files: does one bad file ever crash PromptStudio,
change the file, or hide the good projects beside it?

Makes variants of a real project file (truncated, bytes flipped inside pages, tables and
columns dropped or renamed, values of the wrong type, past and future schema versions, a
WAL without its database, a read-only file, a folder named like a project, an empty
file), puts each in a
workspace beside two good projects, and tries it the ways a user would: `list`, `show`,
opening it, and evaluating a prompt in it (with a scripted model: the store is under
test, not the model). Each try must work or end with a message (exit status 2), never a
traceback; a refused file must be left byte for byte as it was; the good projects must
still be listed. Prints the counts.

    python benchmarks/damaged_files.py [--variants 1000] [--seed 0]

`tests/test_damaged_files.py` runs a short version of the same campaign.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from scripted import ScriptedBackend

from promptstudio import workflows
from promptstudio.cli import main
from promptstudio.dataio import Row
from promptstudio.errors import USER_ERRORS
from promptstudio.store.project import Project
from promptstudio.store.records import ProjectSettings
from promptstudio.store.schema import MIGRATIONS
from promptstudio.store.workspace import Workspace

KINDS = ("truncated", "bytes flipped", "table dropped", "column dropped", "table renamed",
         "column renamed", "wrong types", "past version", "future version",
         "WAL without its database", "read-only file", "folder", "empty file")


@dataclass
class Campaign:
    variants: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    opened: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    """What went wrong, one line each: a traceback, a changed file, a good project lost."""

    def report(self) -> str:
        lines = [f"{self.variants} damaged files: {self.opened} still open as projects, "
                 f"{self.refused} refused with a message, {len(self.failures)} failures."]
        lines += [f"  {kind}: {n}" for kind, n in sorted(self.kinds.items())]
        lines += [f"FAILURE {line}" for line in self.failures[:20]]
        return "\n".join(lines)


def good_project(folder: Path, name: str) -> Path:
    """A small real project with a scored prompt and a finished run's worth of rows, in
    one self-contained file."""
    workspace = Workspace(folder)
    project = workspace.create(ProjectSettings(name=name, instruction="Give the first letter.",
                                               metric="label", labels=("a", "b", "c")))
    words = ["apple", "banana", "cherry", "acorn", "bean", "carrot"] * 3
    for split, chunk in (("train", words[:8]), ("dev", words[8:14]), ("test", words[14:])):
        project.add_examples([Row(f"{w} {i}", w[0], (w[0],), split)
                              for i, w in enumerate(chunk)])
    model = ScriptedBackend(lambda prompt: " a\n", scores={"a": -0.2, "b": -0.9})
    workflows.evaluate_instruction(project, model, "Give the first letter.", demos=2)
    project.store_call("k", {"op": "generate", "backend": "scripted", "model": "m",
                             "params": {}, "prompt": "p",
                             "response": {"text": "x", "prompt_tokens": 1,
                                          "completion_tokens": 1}})
    project.close()
    path = workspace.path_for(name)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    return path


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info('{table}')")]


def damage(path: Path, kind: str, rng: random.Random) -> None:
    """Damage the project file at `path` in the way `kind` names."""
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:rng.randrange(1, len(data))])
    elif kind == "bytes flipped":
        data = bytearray(path.read_bytes())
        for offset in rng.sample(range(100, len(data)), rng.randint(1, 64)):
            data[offset] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(data))
    elif kind == "WAL without its database":
        wal = Path(f"{path}-wal")
        wal.write_bytes(rng.randbytes(rng.randint(32, 9000)))
        path.write_bytes(b"")
    elif kind == "read-only file":
        path.chmod(0o444)
    elif kind == "folder":
        path.unlink()
        path.mkdir()
    elif kind == "empty file":
        path.write_bytes(b"")
    else:
        _damage_sql(path, kind, rng)


def _damage_sql(path: Path, kind: str, rng: random.Random) -> None:
    conn = sqlite3.connect(path)
    try:
        table = rng.choice(_tables(conn))
        column = rng.choice(_columns(conn, table))
        if kind == "table dropped":
            conn.execute(f"DROP TABLE '{table}'")
        elif kind == "table renamed":
            conn.execute(f"ALTER TABLE '{table}' RENAME TO '{table}_old'")
        elif kind == "column renamed":
            conn.execute(f"ALTER TABLE '{table}' RENAME COLUMN '{column}' TO '{column}_x'")
        elif kind == "column dropped":
            for (index,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name = ? AND sql IS NOT NULL",
                                         (table,)).fetchall():
                conn.execute(f"DROP INDEX '{index}'")
            conn.execute(f"ALTER TABLE '{table}' DROP COLUMN '{column}'")
        elif kind == "wrong types":
            value = rng.choice(["", "not json", "{bad", 42, -1.5, b"\x00\xff\xfe",
                                "\udcff".encode("utf-8", "surrogatepass")])
            conn.execute("PRAGMA ignore_check_constraints = ON")
            conn.execute(f"UPDATE '{table}' SET '{column}' = ?", (value,))
        elif kind == "past version":
            conn.execute(f"PRAGMA user_version = {rng.randrange(1, len(MIGRATIONS))}")
        elif kind == "future version":
            conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + rng.randint(1, 5)}")
        conn.commit()
    except sqlite3.Error:
        conn.rollback()
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")  # damaged all the same
        conn.commit()
    finally:
        conn.close()


def _digest(path: Path) -> str:
    if path.is_dir():
        return "folder"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "gone"


def _quietly(call: Callable[[], int]) -> tuple[int | None, str]:
    """Run a CLI call, with what it wrote to stderr; None for the exit status when it
    raised (a traceback the user would see)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return call(), err.getvalue()
        except Exception as exc:  # the failure the campaign looks for
            return None, f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Keep `path` read-only for whoever runs the campaign: its mode says so (0444), and
    root, who writes to any file whatever its mode, is stopped by the immutable attribute
    (`chattr +i`) while the tries run."""
    if os.geteuid() != 0:
        yield
        return
    subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True, capture_output=True)


def try_variant(folder: Path, bad: Path, kind: str, result: Campaign) -> None:
    with unwritable(bad) if kind == "read-only file" else contextlib.nullcontext():
        _try_variant(folder, bad, kind, result)


def _try_variant(folder: Path, bad: Path, kind: str, result: Campaign) -> None:
    before = _digest(bad)
    summaries = Workspace(folder).scan()[0]
    names = {s.path.name for s in summaries}
    if not {"alpha.sqlite", "beta.sqlite"} <= names:
        result.failures.append(f"{kind}: a good project was not listed")
    code, err = _quietly(lambda: main(["--workspace", str(folder), "list"]))
    if code != 0:
        result.failures.append(f"{kind}: list ended with {code}: {err[-200:]}")
    code, err = _quietly(lambda: main(["--workspace", str(folder), "show", str(bad)]))
    if code not in (0, 2) or "Traceback" in err:
        result.failures.append(f"{kind}: show ended with {code}: {err[-200:]}")
    try:
        project = Project.open(bad)
    except USER_ERRORS:
        result.refused += 1
        if _digest(bad) != before:
            result.failures.append(f"{kind}: a refused file was changed")
        return
    except Exception as exc:
        result.failures.append(f"{kind}: open raised {type(exc).__name__}: {exc}")
        return
    result.opened += 1
    try:
        model = ScriptedBackend(lambda prompt: " a\n", scores={"a": -0.2, "b": -0.9})
        workflows.evaluate_instruction(project, model, "Name the letter.", split="dev")
    except USER_ERRORS:
        pass
    except Exception as exc:
        result.failures.append(f"{kind}: eval raised {type(exc).__name__}: {exc}")
    finally:
        project.close()


def campaign(variants: int, seed: int = 0) -> Campaign:
    root = Path(tempfile.mkdtemp())
    try:
        return _campaign(root, variants, seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _campaign(root: Path, variants: int, seed: int) -> Campaign:
    source = good_project(root / "source", "gamma")
    rng = random.Random(seed)
    result = Campaign()
    for index in range(variants):
        kind = KINDS[index % len(KINDS)]
        workspace = root / f"v{index}"
        good_project(workspace, "alpha")
        good_project(workspace, "beta")
        bad = workspace / "gamma.sqlite"
        shutil.copy(source, bad)
        damage(bad, kind, rng)
        result.variants += 1
        result.kinds[kind] += 1
        try_variant(workspace, bad, kind, result)
        shutil.rmtree(workspace, ignore_errors=True)
    return result


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    result = campaign(args.variants, args.seed)
    if args.json:
        print(json.dumps({"variants": result.variants, "opened": result.opened,
                          "refused": result.refused, "failures": result.failures,
                          "kinds": dict(result.kinds)}))
    else:
        print(result.report())
        print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main_()
