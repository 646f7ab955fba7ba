"""The Models page: which model the prompt is tuned for, and which model writes new prompts.

Each model is one of three kinds: the bundled model (nothing to set up), a GGUF file on
this computer, or an OpenAI-compatible server. Everything that touches a model or a large
file (reading a GGUF header, asking a server for its models, loading and timing a model)
runs as a job, so the window never freezes; its answer appears next to the control that
asked, in plain words. A choice is saved in the project as soon as it is complete.

The page is also the way into re-tuning the best prompt for another model (`retune.py`).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from promptstudio.errors import USER_ERRORS, user_message
from promptstudio.gui import messages
from promptstudio.gui.labels import hint, muted, scrolling
from promptstudio.gui.model_choice import ModelChoice
from promptstudio.gui.state import AppState
from promptstudio.gui.workers import JobState
from promptstudio.llm.base import BackendError, GenerationParams
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.local import LocalBackend

SERVER_TEST_PROMPT = "Say hello in one short sentence."


class ModelPage(QWidget):
    """The project's task model and optimizer model, and the way to re-tune for another."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._api_keys: dict[str, str] = {}
        self._load_states: dict[ModelConfig, tuple[str, str | None, bool]] = {}

        title = QLabel("Models")
        title.setObjectName("pageTitle")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        self.no_project = muted("Open or create a project to choose its models.")
        intro = hint(
            "The task model is the one your prompt is for: it answers your examples, and "
            "the prompt is tuned to suit it. The optimizer model reads the results and "
            "writes new prompts to try; a larger one writes better prompts.")

        self.task_choice = ModelChoice(state)
        self.task_now = muted("")
        task_box = QGroupBox("Task model: the model your prompt is for")
        task_layout = QVBoxLayout(task_box)
        task_layout.addWidget(self.task_now)
        task_layout.addWidget(self.task_choice)

        self.same_model = QCheckBox("Same as the task model")
        self.optimizer_choice = ModelChoice(state)
        self.optimizer_now = muted("")
        optimizer_box = QGroupBox("Optimizer model: the model that writes new prompts")
        optimizer_layout = QVBoxLayout(optimizer_box)
        optimizer_layout.addWidget(self.optimizer_now)
        optimizer_layout.addWidget(self.same_model)
        optimizer_layout.addWidget(self.optimizer_choice)

        self.retune_button = QPushButton("Re-tune the best prompt for another model…")
        self.retune_button.clicked.connect(self.open_retune)
        retune_box = QGroupBox("Moving to another model?")
        retune_layout = QVBoxLayout(retune_box)
        retune_layout.addWidget(hint(
            "A prompt that works well with one model can do badly with another. Score your "
            "best prompt with the new model, compare, and re-tune it from there."))
        retune_layout.addWidget(self.retune_button, 0, Qt.AlignmentFlag.AlignLeft)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(18, 14, 18, 18)
        column.setSpacing(12)
        for widget in (title, self.no_project, intro, task_box, optimizer_box, retune_box):
            column.addWidget(widget)
        column.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(content))
        self._sections = (intro, task_box, optimizer_box, retune_box)

        self.task_choice.changed.connect(self._task_chosen)
        self.optimizer_choice.changed.connect(self._optimizer_chosen)
        self.same_model.toggled.connect(self._same_toggled)
        for choice in (self.task_choice, self.optimizer_choice):
            choice.load_requested.connect(self.load_and_measure)
            choice.edited.connect(self._show_load_states)
        state.project_changed.connect(self._project_changed)
        state.settings_changed.connect(self._settings_changed)
        self._project_changed()

    # -- following the project -----------------------------------------------------------

    def _project_changed(self) -> None:
        project = self.state.project
        self.no_project.setVisible(project is None)
        for section in self._sections:
            section.setEnabled(project is not None)
        if project is None:
            return
        settings = project.settings
        blocked = self.same_model.blockSignals(True)
        self.same_model.setChecked(settings.optimizer_model == settings.task_model)
        self.same_model.blockSignals(blocked)
        self._settings_changed()

    def _settings_changed(self) -> None:
        if self.state.project is None:
            return
        settings = self.state.project.settings
        task, optimizer = settings.task_model, settings.optimizer_model
        if optimizer != task and self.same_model.isChecked():
            blocked = self.same_model.blockSignals(True)
            self.same_model.setChecked(False)
            self.same_model.blockSignals(blocked)
        self.task_choice.set_config(self._with_key(task))
        self.optimizer_choice.set_config(self._with_key(optimizer))
        self.optimizer_choice.setVisible(not self.same_model.isChecked())
        self.task_now.say(f"Now using: {task.describe()}", "muted")
        self.optimizer_now.say(f"Now using: {optimizer.describe()}", "muted")
        self._show_load_states()

    def _with_key(self, config: ModelConfig) -> ModelConfig:
        key = self._api_keys.get(config.base_url or "")
        return replace(config, api_key=key) if config.kind == "server" and key else config

    # -- saving the user's choices ----------------------------------------------------------

    def _save(self, **changes: ModelConfig) -> None:
        for config in changes.values():
            if config.kind == "server" and config.base_url:
                if config.api_key:
                    self._api_keys[config.base_url] = config.api_key
                else:
                    self._api_keys.pop(config.base_url, None)
                self.state.use_api_key(config)
        try:
            self.state.update_settings(**{name: config.without_key()
                                          for name, config in changes.items()})
        except USER_ERRORS as error:
            messages.show_error(self, error)
            return
        self.state.status.emit("Model settings saved.")

    def _task_chosen(self, config: ModelConfig) -> None:
        if self.same_model.isChecked():
            self._save(task_model=config, optimizer_model=config)
        else:
            self._save(task_model=config)

    def _optimizer_chosen(self, config: ModelConfig) -> None:
        self._save(optimizer_model=config)

    def _same_toggled(self, same: bool) -> None:
        self.optimizer_choice.setVisible(not same)
        if same and self.state.project is not None:
            task = self.task_choice.config() or self.state.project.settings.task_model
            self._save(optimizer_model=task)

    # -- loading and timing a model ---------------------------------------------------------

    def load_and_measure(self, config: ModelConfig) -> None:
        """Load the model (or reach the server) in the background and time it."""
        stored = config.without_key()
        if self._load_states.get(stored, ("", None, False))[2]:
            return
        self.state.use_api_key(config)
        self._load_states[stored] = ("Loading the model and measuring its speed… The window "
                                     "stays usable meanwhile.", None, True)
        self._show_load_states()

        def measure(job: JobState) -> tuple[ModelConfig, str | BaseException]:
            try:
                backend = self.state.backend_for(stored)
                if isinstance(backend, LocalBackend):
                    backend.load()
                    rates = self.state.runs.speed_of(backend, job)
                    if rates is None:
                        return stored, ("Ready. Its speed is measured once no run is going, "
                                        "so as not to slow the run down.")
                    return stored, (
                        f"Ready: generates about {rates.best_generation_rate:,.0f} tokens a "
                        f"second on this computer (reads prompts at "
                        f"{rates.best_prompt_rate:,.0f} a second).")
                [reply] = backend.generate([SERVER_TEST_PROMPT],
                                           GenerationParams(max_tokens=16), job.cancel_token)
                rate = reply.completion_tokens / reply.seconds if reply.seconds else 0.0
                return stored, (f"Ready: the server answered a test prompt in "
                                f"{reply.seconds:.1f} s (about {rate:,.0f} tokens a second).")
            except Exception as error:  # shown to the user in `_measured`
                return stored, error
            finally:
                # Each thread loads its own copy; this one ends now, so its copy goes too.
                made = self.state.made_backend(stored)
                if made is not None:
                    made.release_thread()

        self.state.jobs.start("Loading the model", measure, on_done=self._measured)

    def _measured(self, result: tuple[ModelConfig, str | BaseException]) -> None:
        stored, outcome = result
        if isinstance(outcome, BaseException):
            self._load_states[stored] = (f"Could not load it: {user_message(outcome)}", "bad",
                                         False)
            if not isinstance(outcome, BackendError):
                messages.show_error(self, outcome)
        else:
            self._load_states[stored] = (outcome, "good", False)
            self.state.status.emit(outcome)
        self._show_load_states()

    def _show_load_states(self) -> None:
        for choice in (self.task_choice, self.optimizer_choice):
            config = choice.config()
            unknown = ("Not loaded yet.", "muted", False)
            text, tone, busy = (self._load_states.get(config.without_key(), unknown)
                                if config else unknown)
            choice.show_load_state(text, tone, busy)

    # -- another model ----------------------------------------------------------------------

    def open_retune(self) -> QWidget | None:
        from promptstudio.gui.retune import RetuneDialog

        if self.state.project is None:
            return None
        dialog = RetuneDialog(self.state, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog
