"""Background work for the window: one short-lived thread per job.

A job is a plain function that takes a `JobState` (Orange's TaskState in miniature): it
reports progress and partial results through it and checks it for cancellation. The
function knows nothing of Qt; the `Job` thread turns what it reports into signals, which
reach widgets in the GUI thread. `Jobs` keeps every running job alive and stops them all
when the window closes, so no thread is ever destroyed while it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal

from promptstudio.llm.base import Cancelled, CancelToken

log = logging.getLogger(__name__)


class JobState:
    """What a job's function sees: a way to report, and a cancellation flag."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self.cancel_token = CancelToken()

    def report(self, value: object) -> None:
        """Send progress or a partial result to the GUI thread."""
        self._job.progressed.emit(value)

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled


JobFunction = Callable[[JobState], object]


class Job(QThread):
    """Runs one function on its own thread; its signals arrive in the GUI thread."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    cancelled = Signal()  # the function stopped because `cancel` was called

    def __init__(self, title: str, function: JobFunction, parent: QObject | None = None,
                 on_cancel: Callable[[], None] | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.function = function
        self.state = JobState(self)
        self._on_cancel = on_cancel

    def run(self) -> None:
        try:
            result = self.function(self.state)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # every failure becomes a message, never a crash
            log.warning("Job %r failed", self.title, exc_info=True)
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)

    def cancel(self) -> None:
        self.state.cancel_token.cancel()
        if self._on_cancel is not None:
            self._on_cancel()


class Jobs(QObject):
    """Every job the window has started and not yet seen finish."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: list[Job] = []

    def start(self, title: str, function: JobFunction, *,
              on_done: Callable[[object], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None,
              on_progress: Callable[[object], None] | None = None,
              on_cancel: Callable[[], None] | None = None) -> Job:
        job = Job(title, function, self, on_cancel)
        if on_progress is not None:
            job.progressed.connect(on_progress)
        if on_done is not None:
            job.succeeded.connect(on_done)
        if on_error is not None:
            job.failed.connect(on_error)
        job.finished.connect(lambda: self._forget(job))
        self._running.append(job)
        job.start()
        if len(self._running) == 1:
            self.busy_changed.emit(True)
        return job

    def _forget(self, job: Job) -> None:
        if job in self._running:
            self._running.remove(job)
            job.deleteLater()
            if not self._running:
                self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def running(self) -> list[Job]:
        return list(self._running)

    def cancel_all(self) -> None:
        for job in self._running:
            job.cancel()

    def wait_all(self, milliseconds: int = 30_000) -> bool:
        """Block until every job has ended (used only when the window closes)."""
        return all(job.wait(milliseconds) for job in list(self._running))
