"""A real optimization run killed with SIGKILL in the middle, then resumed from the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from task_data import SHORT_SEARCH, data_rows, write_jsonl

pytestmark = pytest.mark.model


def _cli(workspace, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "promptstudio", "--workspace",
                             str(workspace), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, **kwargs)


def _count(database, sql: str) -> int:
    with sqlite3.connect(database) as conn:
        return conn.execute(sql).fetchone()[0]


def test_a_killed_run_resumes_without_repeating_calls(tmp_path, bundled_model):
    data = write_jsonl(tmp_path / "train.jsonl", data_rows("first_letter", "train", 30))
    test = write_jsonl(tmp_path / "test.jsonl", data_rows("first_letter", "test", 8))
    workspace = tmp_path / "ws"
    for args in (["new", "s", "--data", str(data)],
                 ["import", "s", "--data", str(test), "--split", "test"],
                 ["config", "s", "--instruction", "Write the first letter of the word."]):
        assert _cli(workspace, *args).wait(timeout=60) == 0
    database = workspace / "s.sqlite"

    process = _cli(workspace, "optimize", "s", *SHORT_SEARCH, "--json")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        if _count(database, "SELECT COUNT(*) FROM evaluation") >= 12:
            break
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert _count(database, "SELECT COUNT(*) FROM run WHERE status = 'running'") == 1
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    calls_before = _count(database, "SELECT COUNT(*) FROM llm_call")
    evaluations_before = _count(database, "SELECT COUNT(*) FROM evaluation")
    spent_before = _count(database, "SELECT llm_calls FROM run")
    assert calls_before > 0 and evaluations_before >= 12

    listing = _cli(workspace, "runs", "s", "--json")
    out, _ = listing.communicate(timeout=60)
    assert json.loads(out.decode().strip().splitlines()[-1])[0]["status"] == "paused"

    resumed = _cli(workspace, "resume", "s:1", "--json")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["status"] == "finished" and result["best_instruction"]
    assert result["test_score"] is not None and result["baseline_test_score"] is not None

    calls_after = _count(database, "SELECT COUNT(*) FROM llm_call")
    fresh_in_resume = result["llm_calls"] - spent_before
    # Every fresh call is stored under a new key, and a stored key is never asked again:
    # the resumed session made exactly as many calls as it added to the cache.
    assert fresh_in_resume == calls_after - calls_before
    assert _count(database, "SELECT COUNT(*) FROM evaluation") >= evaluations_before
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        incomplete = conn.execute(
            "SELECT COUNT(*) FROM evaluation WHERE raw_output IS NULL OR answer IS NULL"
        ).fetchone()[0]
    assert incomplete == 0
