"""The window's shared state: the open project, its active run, and what just changed.

Widgets never talk to each other. They read the project through `AppState`, change it
through `AppState` (or the engine), and listen to its signals, the way napari's layers
listen to their model. The run itself belongs to the engine (`optimize.runner`); the
`RunController` only starts it on a worker thread and relays its events as signals.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from promptstudio.gui.workers import Job, Jobs, JobState
from promptstudio.llm.base import Backend, Cancelled, CancelToken, ModelFileError
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.factory import make_backend
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.server import API_KEY_VARIABLE, ServerBackend
from promptstudio.llm.throughput import Throughput
from promptstudio.optimize import estimate, runner
from promptstudio.optimize.budget import Budget
from promptstudio.optimize.context import RunControl
from promptstudio.optimize.events import Event
from promptstudio.store.project import Project
from promptstudio.store.records import Run
from promptstudio.store.workspace import Workspace


class AppState(QObject):
    """The open project and the signals that say what changed in it."""

    project_changed = Signal()  # another project is open, or none
    settings_changed = Signal()  # task description, template, metric, models
    examples_changed = Signal()  # rows added, edited, deleted or re-split
    candidates_changed = Signal()  # runs started or ended; during a run, see `runs.event`
    candidate_selected = Signal(int)
    projects_listed = Signal()  # the workspace's list of projects changed
    status = Signal(str)  # a line for the status bar

    def __init__(self, workspace: Workspace | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace or Workspace()
        self.project: Project | None = None
        self.jobs = Jobs(self)
        self.runs = RunController(self)
        self._backends: dict[ModelConfig, Backend] = {}
        self._borrowed: set[int] = set()  # ids of backends their givers close themselves
        self._backends_lock = threading.Lock()

    # -- the open project ---------------------------------------------------------------

    def open_project(self, name_or_path: str | Path) -> Project:
        """Open a project of the workspace (by name) or any project file (by path).

        A run left 'running' by a crash or a kill is marked paused, ready to resume.
        """
        project = self.workspace.open(name_or_path)
        runner.mark_interrupted(project)
        self._close_current()
        self.project = project
        self.project_changed.emit()
        return project

    def close_project(self) -> None:
        self._close_current()
        self.project_changed.emit()

    def _close_current(self) -> None:
        if self.project is not None:
            self.project.close()
            self.project = None

    def update_settings(self, **changes: object) -> None:
        """Change the open project's settings and tell every view."""
        if self.project is None:
            return
        self.project.update_settings(**changes)
        self.settings_changed.emit()

    # -- models -------------------------------------------------------------------------

    def backend_for(self, config: ModelConfig) -> Backend:
        """One backend per model choice, kept for the session. A local model loads on the
        first thread that uses it (never the GUI thread), once per thread. Making a local
        backend reads the model file's header (about a second), so jobs call this, and
        two jobs asking at once get the same backend."""
        with self._backends_lock:
            if config not in self._backends:
                self._backends[config] = make_backend(config)
            return self._backends[config]

    def use_backend(self, config: ModelConfig, backend: Backend, *, owned: bool = True
                    ) -> Backend | None:
        """Answer for `config` with `backend` from now on: a server backend holding the API
        key that the project file leaves out, or a stand-in model in tests. `owned` says
        that the window closes it at the end; a backend lent by its caller (`owned=False`)
        is left open. Returns the backend it replaces, if one was made."""
        with self._backends_lock:
            previous = self._backends.get(config)
            self._backends[config] = backend
            if not owned:
                self._borrowed.add(id(backend))
        return previous

    def use_api_key(self, config: ModelConfig) -> None:
        """Make the session's backend for a server use the key typed for it.

        The project stores the choice without its key, and a run asks for a backend by the
        stored choice; so the backend for that choice is made here, with the key.
        """
        if config.kind != "server":
            return
        stored = config.without_key()
        previous = self.made_backend(stored)
        if previous is None and not config.api_key:
            return  # `backend_for` makes it as usual, with the environment's key if any
        if previous is not None and not isinstance(previous, ServerBackend):
            return  # put there by someone else on purpose (a stand-in, say)
        key = config.api_key or os.environ.get(API_KEY_VARIABLE)
        if previous is not None and previous.api_key == key:
            return
        self.use_backend(stored, ServerBackend(config))
        if previous is not None and not self.runs.running:
            previous.close()

    def made_backend(self, config: ModelConfig) -> Backend | None:
        """The backend already made for `config`, without making one."""
        with self._backends_lock:
            return self._backends.get(config)

    def shutdown(self, milliseconds: int = 30_000) -> bool:
        """Pause the active run, stop every job and wait for them; close the project."""
        self.runs.pause()
        self.jobs.cancel_all()
        stopped = self.jobs.wait_all(milliseconds)
        self._close_current()
        if stopped:  # a job still going may be inside a backend: freeing it would crash
            for backend in self._backends.values():
                if id(backend) not in self._borrowed:
                    backend.close()
        self._backends.clear()
        return stopped


def check_model_file(config: ModelConfig) -> None:
    """Say now, in the GUI thread, if a chosen model file is missing: the quick part of
    what making its backend checks (the rest reads the whole header, in a job)."""
    if config.kind == "local" and config.path:
        path = Path(config.path).expanduser()
        if not path.is_file():
            raise ModelFileError(f"The model file {path} does not exist. Choose another "
                                 "model on the Models page.")


def check_models(project: Project, run: Run | None = None) -> None:
    """`check_model_file` for the project's task and optimizer models, or a run's."""
    owner = run or project.settings
    for config in (owner.task_model, owner.optimizer_model):
        try:
            check_model_file(config)
        except ModelFileError as missing:
            if run is None:
                raise
            raise ModelFileError(
                f"Run {run.id} was made with the model file {config.path}, which no longer "
                "exists; its scores are of that model. Put the file back to continue the "
                "run, or start a new run.") from missing


class _TimingToken(CancelToken):
    """Set when its job is cancelled, or as soon as a run is going."""

    def __init__(self, job: JobState, runs: RunController) -> None:
        super().__init__()
        self._job, self._runs = job, runs

    @property
    def cancelled(self) -> bool:
        return super().cancelled or self._job.cancelled or self._runs.running


class RunController(QObject):
    """Starts, pauses, resumes and stops the open project's run on a worker thread."""

    planned = Signal(object)  # runner.Plan
    started = Signal(int)  # run id
    event = Signal(object)  # each engine event of the active run, in order
    ended = Signal(int, str)  # run id and its status: finished, paused, cancelled, failed
    failed = Signal(int, object)  # run id and the exception, after `ended`

    def __init__(self, state: AppState) -> None:
        super().__init__(state)
        self.state = state
        self.active_run_id: int | None = None
        self._control: RunControl | None = None
        self._job: Job | None = None

    @property
    def running(self) -> bool:
        return self._job is not None

    def speed_of(self, backend: LocalBackend, job: JobState) -> Throughput | None:
        """The model's speed on this machine, timed in `job` unless already known; None
        while a run is going. Timed beside a run on the same cores, the speed would come out
        too slow and be remembered for every later estimate, and the run would slow too, so
        a run that starts stops the timing."""
        try:
            return backend.throughput(_TimingToken(job, self))
        except Cancelled:
            if job.cancelled:
                raise
            return None

    def plan(self, method: str, *, preset: str = "quick", overrides: dict | None = None,
             then: str | None = None, turns: int = 1,
             on_done: Callable[[runner.Plan], None] | None = None,
             on_error: Callable[[BaseException], None] | None = None) -> Job:
        """Work out a run's cost on a worker thread (it may load the model to time it)."""
        project = self._project()

        def work(job: JobState) -> runner.Plan:
            # Here, not in the GUI thread: preparing the bundled model may take a while,
            # and a missing model file then reaches `on_error` like any other failure.
            backend = self.state.backend_for(project.settings.task_model)
            cost = None
            if isinstance(backend, LocalBackend):
                try:
                    rates = self.speed_of(backend, job)
                finally:
                    backend.release_thread()
                # While a run is going, the estimate goes without times until it ends.
                cost = estimate.call_cost(project, rates) if rates is not None else None
            return runner.plan(project, method, preset=preset, overrides=overrides, then=then,
                               turns=turns, cost=cost)

        def done(result: object) -> None:
            self.planned.emit(result)
            if on_done is not None:
                on_done(result)  # type: ignore[arg-type]

        return self.state.jobs.start("Estimating the run's cost", work, on_done=done,
                                     on_error=on_error)

    def start(self, method: str, *, preset: str = "quick", overrides: dict | None = None,
              then: str | None = None, turns: int = 1, seed: int = 0,
              budget: Budget | None = None) -> int:
        """Create a run and start it. Returns the run's id."""
        project = self._project()
        check_models(project)  # a missing file fails before the run exists
        _, run = runner.new_run(project, method, preset=preset, overrides=overrides,
                                then=then, turns=turns, seed=seed, budget=budget)
        self.state.candidates_changed.emit()
        self.resume(run.id)
        return run.id

    def again(self, run_id: int) -> int:
        """Start a new run with another run's settings, limits and seed."""
        project = self._project()
        check_models(project)
        run = runner.run_again(project, run_id)
        self.state.candidates_changed.emit()
        self.resume(run.id)
        return run.id

    def resume(self, run_id: int) -> None:
        """Continue a paused, failed or interrupted run (or start a new one) in the background."""
        if self.running:
            raise RuntimeError("A run is already going; pause or stop it first.")
        project = self._project()
        run = project.run(run_id)
        check_models(project, run)
        control = RunControl()

        def work(job: JobState) -> runner.RunOutcome:
            # The models the run was created with: its scores are of them.
            try:
                task = self.state.backend_for(run.task_model)
                optimizer = self.state.backend_for(run.optimizer_model)
            except Exception:
                runner.discard_if_unstarted(project, run_id)
                raise
            try:
                return runner.execute(project, run_id, task, optimizer, control=control,
                                      listener=job.report)
            finally:
                task.release_thread()
                optimizer.release_thread()

        self.active_run_id, self._control = run_id, control
        self._job = self.state.jobs.start(
            f"Run {run_id}", work, on_progress=self._relay,
            on_done=lambda outcome: self._end(run_id, outcome.status, None),  # type: ignore[attr-defined]
            on_error=lambda exc: self._end(
                run_id, "paused" if isinstance(exc, runner.DiskFull) else "failed", exc),
            on_cancel=control.pause)
        # A run stops itself on a pause; should a cancellation reach the job, it is a pause.
        self._job.cancelled.connect(lambda: self._end(run_id, "paused", None))
        self.started.emit(run_id)

    def pause(self) -> None:
        """Stop at the next safe point; the run can resume later from where it was."""
        if self._control is not None:
            self._control.pause()

    def stop(self) -> None:
        """Cancel the run; what it found so far stays in the project."""
        if self._control is not None:
            self._control.cancel()

    def _relay(self, value: object) -> None:
        if isinstance(value, Event):
            self.event.emit(value)

    def _end(self, run_id: int, status: str, error: BaseException | None) -> None:
        self.active_run_id, self._control, self._job = None, None, None
        self.state.candidates_changed.emit()
        self.ended.emit(run_id, status)
        if error is not None:
            self.failed.emit(run_id, error)

    def _project(self) -> Project:
        if self.state.project is None:
            raise RuntimeError("No project is open.")
        return self.state.project
