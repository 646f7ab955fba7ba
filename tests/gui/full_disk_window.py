"""Run by `test_full_disk_window.py` in a child process: the window starts a run on a disk
that refuses writes past a size (RLIMIT_FSIZE, set after the project is made), and prints
what the Run page says and what the project file holds. Not a test module itself."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import sys
import time
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimize_support import ScriptedModel, letters_project, letters_task
from PySide6.QtWidgets import QApplication, QMessageBox

from promptstudio.gui.run_page import RunPage
from promptstudio.gui.state import AppState
from promptstudio.store.workspace import Workspace


def main(folder: str, headroom: int) -> None:
    app = QApplication([])
    workspace = Workspace(Path(folder))
    letters_project(workspace).close()
    state = AppState(workspace)
    project = state.open_project("letters")
    model = ScriptedModel(letters_task, lambda prompt, call: "")
    for config in (project.settings.task_model, project.settings.optimizer_model):
        state.use_backend(config, model, owned=False)
    page = RunPage(state)
    page.show()
    database = Path(folder) / "letters.sqlite"
    size = max(database.stat().st_size, (Path(f"{database}-wal").stat().st_size
                                         if Path(f"{database}-wal").exists() else 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + headroom, hard))
    page.choose("demos", "quick")
    page.start_run()
    deadline = time.monotonic() + 120
    while (state.runs.running or state.runs.active_run_id) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    errors = [box.text() for box in page.findChildren(QMessageBox, "errorMessage")]
    outcome = page.outcome.text()
    state.shutdown()
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    with sqlite3.connect(database) as conn:
        status = conn.execute("SELECT status FROM run").fetchone()[0]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        kept = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    print(json.dumps({"errors": errors, "outcome": outcome, "status": status,
                      "integrity": check, "kept": kept}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
