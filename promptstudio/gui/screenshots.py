"""Pictures of the window for the README, made from a real run on the bundled model.

    python -m promptstudio.gui.screenshots docs/screenshots     (what `make screenshots` runs)

It opens the window offscreen on a fresh data folder, creates the support-tickets sample,
runs what the Run page proposes for the bundled model, and saves each main view as it
would look to a user: the project and its data, the models, the run in progress, the
results with the best prompt and why it was chosen, the plot and the candidates, and the
best prompt's detail with what changed from the start.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SIZE = (1280, 820)
SAMPLE = "support_tickets"


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["PROMPTSTUDIO_HOME"] = tempfile.mkdtemp(prefix="promptstudio-screenshots-")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from promptstudio import workflows
    from promptstudio.gui import theme
    from promptstudio.gui.main_window import MainWindow
    from promptstudio.gui.state import AppState
    from promptstudio.optimize.events import CandidateScored

    app = QApplication.instance() or QApplication(["PromptStudio"])
    settings = QSettings(str(Path(os.environ["PROMPTSTUDIO_HOME"]) / "settings.ini"),
                         QSettings.Format.IniFormat)
    settings.setValue("theme", "light")
    theme.apply(app, settings)
    state = AppState()
    window = MainWindow(state, settings)
    window.resize(*SIZE)
    window.show()

    def settle(milliseconds: int = 300) -> None:
        loop = QEventLoop()
        QTimer.singleShot(milliseconds, loop.quit)
        loop.exec()

    def shoot(name: str) -> None:
        settle()
        path = out / f"{name}.png"
        window.grab().save(str(path))
        print(f"wrote {path}")

    project, _ = workflows.create_sample_project(state.workspace, SAMPLE)
    name = project.name
    project.close()
    state.projects_listed.emit()
    state.open_project(name)
    window.pages.setCurrentWidget(window.task_page)
    shoot("1-project-and-data")
    window.pages.setCurrentWidget(window.model_page)
    shoot("2-models")

    window.pages.setCurrentWidget(window.run_page)
    window.run_page.choose_proposal()
    settle(1000)
    while window.run_page.plan_label.text().startswith("Estimating"):
        settle(500)  # the first estimate times the model on this machine
    scored = 0
    finished = QEventLoop()

    def on_event(event: object) -> None:
        nonlocal scored
        if isinstance(event, CandidateScored):
            scored += 1
            if scored == 12:
                QTimer.singleShot(0, lambda: shoot("3-run-in-progress"))

    state.runs.event.connect(on_event)
    state.runs.ended.connect(lambda *_: finished.quit())
    window.run_page.start_run()
    finished.exec()
    shoot("3b-run-finished")

    results = window.results_page
    window.pages.setCurrentWidget(results)
    results.flush()
    shoot("4-results")
    run = max(state.project.runs(), key=lambda r: r.id)
    start = next(c for c in state.project.candidates(run.id) if c.operation == "start")
    if run.best_candidate_id is not None and run.best_candidate_id != start.id:
        results.select_candidate(run.best_candidate_id)
        results.detail.tabs.setCurrentIndex(1)
        shoot("5-candidate-diff")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
