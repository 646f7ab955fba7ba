"""The window on a disk that refuses writes (a real refusal, by a limit on the size of the
files the child process writes, as in `tests/test_full_disk.py`): the Run page says the run
is paused, that its work is kept and how to go on; the project file stays consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_refused_write_pauses_the_run_and_the_run_page_says_so(tmp_path):
    script = Path(__file__).with_name("full_disk_window.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "ws"), "40000"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PROMPTSTUDIO_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["integrity"] == "ok" and seen["kept"] > 0, "finished work is kept"
    assert seen["status"] in ("paused", "running"), seen["status"]  # running: even the
    # pause could not be saved; opening the project marks such a run paused
    assert any("could not save more. It is paused" in text for text in seen["errors"])
    assert "could not save more" in seen["outcome"] and "Stopped by an error" not in (
        seen["outcome"])
