"""A run on a disk that fills up: it stops with a message, stays paused with its finished
work, and once there is room again `resume` ends it with the same best prompt as a run
never stopped. The disk is made to refuse writes for the child process alone, by a limit on
the size of the files it writes (RLIMIT_FSIZE), which needs neither root nor a special
filesystem; SQLite reports such a refused write as a disk I/O error where a full disk is
"database or disk is full", and the run treats both alike.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from task_data import SHORT_SEARCH, data_rows, write_jsonl

pytestmark = pytest.mark.model

RUN = [*SHORT_SEARCH, "--json"]


def cli(home: Path, workspace: Path, *args: str, file_limit: int | None = None
        ) -> subprocess.CompletedProcess:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    env = {**os.environ, "PROMPTSTUDIO_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "promptstudio", "--workspace",
                           str(workspace), *args], capture_output=True, text=True, env=env,
                          timeout=600, preexec_fn=limit_files if file_limit else None)


def project(home: Path, workspace: Path, tmp_path: Path) -> Path:
    data = write_jsonl(tmp_path / "train.jsonl", data_rows("first_letter", "train", 30))
    test = write_jsonl(tmp_path / "test.jsonl", data_rows("first_letter", "test", 8))
    for args in (["new", "s", "--data", str(data)],
                 ["import", "s", "--data", str(test), "--split", "test"],
                 ["config", "s", "--instruction", "Write the first letter of the word."]):
        assert cli(home, workspace, *args).returncode == 0
    return workspace / "s.sqlite"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, unchecked_home_module) -> dict:
    """The run as it ends when nothing stops it."""
    tmp_path = tmp_path_factory.mktemp("alone")
    project(unchecked_home_module, tmp_path / "ws", tmp_path)
    whole = cli(unchecked_home_module, tmp_path / "ws", "optimize", "s", *RUN)
    assert whole.returncode == 0, whole.stderr[-2000:]
    return json.loads(whole.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def unchecked_home_module(tmp_path_factory, bundled_model: Path) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / "models").symlink_to(bundled_model.parent, target_is_directory=True)
    return home


def stops_then_resumes(home: Path, workspace: Path, stopped: subprocess.CompletedProcess,
                       expected: dict, make_room) -> None:
    """The run stopped with the message, its file consistent and its work kept; once
    `make_room()` has freed space, `resume` ends it as the uninterrupted run ended."""
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    assert "could not save more. It is paused" in stopped.stderr
    assert "resume s:1" in stopped.stderr and "Traceback" not in stopped.stderr
    with sqlite3.connect(workspace / "s.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status, = conn.execute("SELECT status FROM run").fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    assert status in ("paused", "running"), status  # running: the pause itself could not
    assert kept > 0, "finished work is kept"
    make_room()
    resumed = cli(home, workspace, "resume", "s:1", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    for key in ("best_instruction", "best_demos", "dev_score", "test_score", "kept"):
        assert result[key] == expected[key], key


def test_a_run_past_a_file_size_limit_pauses_and_finishes_after_resume(
        tmp_path, unchecked_home_module, uninterrupted):
    database = project(unchecked_home_module, tmp_path / "full", tmp_path)
    size = max(database.stat().st_size, Path(f"{database}-wal").stat().st_size
               if Path(f"{database}-wal").exists() else 0)
    stopped = cli(unchecked_home_module, tmp_path / "full", "optimize", "s", *RUN,
                  file_limit=size + 60_000)
    stops_then_resumes(unchecked_home_module, tmp_path / "full", stopped, uninterrupted,
                       lambda: None)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` at `path`, where the tests run as root and may mount one; yields
    whether it is one (else `path` is a plain folder)."""
    path.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_run_on_a_really_full_disk_pauses_and_finishes_after_resume(
        tmp_path, unchecked_home_module, uninterrupted):
    """A real filesystem that fills up (a tmpfs, all but 150 kB of it taken by a
    filler file; 16 MB, so that the whole run fits once the filler goes): SQLite says
    "database or disk is full". Where no tmpfs can be mounted
    (not root), the disk is a file-size limit instead, as in the test above."""
    with small_disk(tmp_path / "disk", "16m") as mounted:
        workspace = tmp_path / "disk" / "ws"
        database = project(unchecked_home_module, workspace, tmp_path)
        filler = tmp_path / "disk" / "filler"
        limit = None
        if mounted:
            free = shutil.disk_usage(tmp_path / "disk").free
            with filler.open("wb") as handle:
                handle.truncate(0)
                handle.write(b"\0" * max(0, free - 150_000))
        else:
            limit = database.stat().st_size + 60_000
        stopped = cli(unchecked_home_module, workspace, "optimize", "s", *RUN,
                      file_limit=limit)
        if mounted:
            assert "The disk is full" in stopped.stderr, stopped.stderr[-2000:]
        stops_then_resumes(unchecked_home_module, workspace, stopped, uninterrupted,
                           lambda: filler.unlink(missing_ok=True))
