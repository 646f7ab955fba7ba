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
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from task_data import data_rows, write_jsonl

pytestmark = pytest.mark.model

RUN = ["--method", "demos", "--preset", "quick", "--json"]


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


def test_a_run_on_a_full_disk_pauses_and_finishes_after_resume(tmp_path, unchecked_home):
    alone = project(unchecked_home, tmp_path / "alone", tmp_path)
    whole = cli(unchecked_home, tmp_path / "alone", "optimize", "s", *RUN)
    assert whole.returncode == 0, whole.stderr[-2000:]
    expected = json.loads(whole.stdout.strip().splitlines()[-1])
    assert alone.exists()

    database = project(unchecked_home, tmp_path / "full", tmp_path)
    size = max(database.stat().st_size, Path(f"{database}-wal").stat().st_size
               if Path(f"{database}-wal").exists() else 0)
    stopped = cli(unchecked_home, tmp_path / "full", "optimize", "s", *RUN,
                  file_limit=size + 60_000)
    assert stopped.returncode == 2, stopped.stderr[-2000:]
    assert "could not save more. It is paused" in stopped.stderr
    assert "resume s:1" in stopped.stderr and "Traceback" not in stopped.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        status, = conn.execute("SELECT status FROM run").fetchone()
        kept = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    assert status in ("paused", "running"), status  # running: the pause itself could not
    assert kept > 0, "finished work is kept"

    resumed = cli(unchecked_home, tmp_path / "full", "resume", "s:1", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    for key in ("best_instruction", "best_demos", "dev_score", "test_score", "kept"):
        assert result[key] == expected[key], key
