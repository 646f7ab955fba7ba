"""Re-tune for another model: score the best prompt with a new model, then re-tune it there.

Many people arrive because a new model broke prompts that worked. This dialog shows how
much: the project's best prompt (or its starting instruction) is scored on dev and test
with the new model, beside the current model's scores. One button then makes the new
model the task model, makes the prompt the starting instruction, and starts a quick run.
The scoring itself is `model_switch.compare_models`, run as a job.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from promptstudio import model_switch
from promptstudio.errors import USER_ERRORS
from promptstudio.gui import messages
from promptstudio.gui.labels import hint, muted, paint, scrolling
from promptstudio.gui.model_choice import ModelChoice
from promptstudio.gui.state import AppState
from promptstudio.gui.workers import Job, JobState
from promptstudio.llm.config import ModelConfig
from promptstudio.model_switch import CarriedPrompt, ModelComparison, percent
from promptstudio.optimize.method import method_named, methods

DEFAULT_METHOD = "demos"
DIALOG_SIZE = QSize(760, 900)
PRESET = "quick"


class RetuneDialog(QDialog):
    """Compare the current and a new task model on the best prompt; switch and re-tune."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Re-tune for another model")
        self.setObjectName("retuneDialog")
        self.setMinimumWidth(640)
        self.comparison: ModelComparison | None = None
        self._job: Job | None = None
        project = state.project
        self.prompt: CarriedPrompt | None = (model_switch.prompt_to_carry(project)
                                             if project is not None else None)
        self.old_model: ModelConfig = (project.settings.task_model if project is not None
                                       else ModelConfig())

        intro = hint("A prompt tuned for one model often does worse on another. Score your "
                     "prompt with the new model to see how it does, then re-tune it there.")
        self.prompt_source = muted("")
        self.prompt_text = QPlainTextEdit()
        self.prompt_text.setReadOnly(True)
        self.prompt_text.setMaximumHeight(90)
        prompt_box = QGroupBox("The prompt to carry over")
        prompt_layout = QVBoxLayout(prompt_box)
        prompt_layout.addWidget(self.prompt_source)
        prompt_layout.addWidget(self.prompt_text)

        self.choice = ModelChoice(state, show_load=False)
        self.choice.set_config(self.old_model)
        self.choice.edited.connect(self._model_changed)
        model_box = QGroupBox("The new task model")
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(muted(f"Now using: {self.old_model.describe()}"))
        model_layout.addWidget(self.choice)

        self.score_button = QPushButton("Score with both models")
        self.score_button.setDefault(True)
        self.score_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.score_button.clicked.connect(self.score)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.progress_text = muted("")
        self.progress_text.hide()
        score_row = QHBoxLayout()
        score_row.addWidget(self.score_button)
        score_row.addWidget(self.stop_button)
        score_row.addWidget(self.progress, 3)
        score_row.addStretch(1)
        self.scores = QGridLayout()
        self.scores.setHorizontalSpacing(24)
        self.scores_box = QWidget()
        self.scores_box.setLayout(self.scores)
        self.scores_box.hide()
        self.verdict = hint()
        self.verdict.setObjectName("verdict")
        self.verdict.hide()
        compare_box = QGroupBox("Compare")
        compare_layout = QVBoxLayout(compare_box)
        compare_layout.addLayout(score_row)
        compare_layout.addWidget(self.progress_text)
        compare_layout.addWidget(self.scores_box)
        compare_layout.addWidget(self.verdict)

        self.method = QComboBox()
        for name in methods():
            self.method.addItem(method_named(name).title, name)
        self.method.setCurrentIndex(max(0, self.method.findData(DEFAULT_METHOD)))
        self.method_summary = muted("")
        self.method.currentIndexChanged.connect(self._method_changed)
        self.switch_button = QPushButton("Switch to this model and start a run from this prompt")
        self.switch_button.clicked.connect(self.switch_and_run)
        self.switch_note = muted("")
        run_box = QGroupBox("Re-tune")
        run_layout = QVBoxLayout(run_box)
        method_row = QHBoxLayout()
        method_row.addWidget(QLabel("Method:"))
        method_row.addWidget(self.method, 1)
        run_layout.addLayout(method_row)
        run_layout.addWidget(self.method_summary)
        run_layout.addWidget(self.switch_button, 0, Qt.AlignmentFlag.AlignLeft)
        run_layout.addWidget(self.switch_note)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 6, 0)
        column.setSpacing(10)
        for widget in (intro, prompt_box, model_box, compare_box, run_box):
            column.addWidget(widget)
        column.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(scrolling(content), 1)
        layout.addWidget(buttons)
        screen = self.screen().availableGeometry()
        self.resize(min(DIALOG_SIZE.width(), screen.width() - 40),
                    min(DIALOG_SIZE.height(), screen.height() - 80))

        state.runs.started.connect(self._model_changed)
        state.runs.ended.connect(self._model_changed)
        self._show_prompt()
        self._method_changed()
        self._model_changed()

    # -- what is shown --------------------------------------------------------------------

    def _show_prompt(self) -> None:
        if self.prompt is None:
            self.prompt_source.say(
                "This project has no prompt yet: write a starting instruction on the "
                "Task & data page, or run an optimization first.", "warn")
            self.prompt_text.hide()
            return
        self.prompt_source.say(f"This is {self.prompt.describe()}.", "muted")
        self.prompt_text.setPlainText(self.prompt.instruction)

    def _method_changed(self) -> None:
        name = self.method.currentData()
        self.method_summary.say(method_named(name).summary if name else "", "muted")

    def new_model(self) -> ModelConfig | None:
        return self.choice.config()

    def _model_changed(self, *_: object) -> None:
        config = self.new_model()
        same = config is not None and config.without_key() == self.old_model
        ready = (self.prompt is not None and config is not None and not same
                 and self._job is None)
        self.score_button.setEnabled(ready)
        self.switch_button.setEnabled(ready and not self.state.runs.running)
        if self.state.runs.running:
            note = "A run is going: pause or stop it on the Run page before switching."
        elif same:
            note = "This is the model in use now; choose another one above."
        else:
            note = ("The run re-tunes the prompt above for the new model. The optimizer "
                    "model stays as it is, unless it was the same as the task model.")
            if self.prompt is not None and self.prompt.demo_ids:
                note += " The run chooses worked examples anew for the new model."
        self.switch_note.say(note, "muted")
        if self.comparison is not None and config is not None and \
                self.comparison.new_model != config.describe():
            self.scores_box.hide()
            self.verdict.hide()

    # -- comparing --------------------------------------------------------------------------

    def score(self) -> None:
        """Score the prompt with the new model (and the current one where needed) in a job."""
        project, prompt, config = self.state.project, self.prompt, self.new_model()
        if project is None or prompt is None or config is None:
            return
        self.state.use_api_key(config)
        old_config, new_config = self.old_model, config.without_key()

        def compare(job: JobState) -> ModelComparison:
            old = self.state.backend_for(old_config)
            new = self.state.backend_for(new_config)
            try:
                return model_switch.compare_models(
                    project, prompt, old, new, old_name=old_config.describe(),
                    new_name=new_config.describe(), cancel=job.cancel_token,
                    on_progress=lambda what, done, total: job.report((what, done, total)))
            finally:
                old.release_thread()
                new.release_thread()

        self._job = self.state.jobs.start("Comparing models", compare,
                                          on_done=self._compared, on_error=self._failed,
                                          on_progress=self._progressed)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.progress_text.say("Loading the models…", "muted")
        self.progress_text.show()
        self.stop_button.show()
        self.stop_button.setEnabled(True)
        self._model_changed()

    def stop(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.stop_button.setEnabled(False)
            self.progress_text.say("Stopping after the examples being scored…", "muted")

    def _progressed(self, value: object) -> None:
        what, done, total = value  # type: ignore[misc]
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress_text.say(f"{what}: {done} of {total}", "muted")

    def _finished(self) -> None:
        self._job = None
        self.progress.hide()
        self.progress_text.hide()
        self.stop_button.hide()
        self._model_changed()

    def _failed(self, error: BaseException) -> None:
        self._finished()
        messages.show_error(self, error)

    def _compared(self, comparison: ModelComparison) -> None:
        self._finished()
        self.comparison = comparison
        self._show_scores(comparison)

    def _show_scores(self, comparison: ModelComparison) -> None:
        """A small table: a column per split, a row per model, and the change."""
        while self.scores.count():
            item = self.scores.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        splits = comparison.splits
        for column, split in enumerate(splits, start=1):
            header = QLabel(f"{split.split.capitalize()} ({split.examples} rows)")
            header.setStyleSheet("font-weight: bold")
            self.scores.addWidget(header, 0, column)
        rows = (
            (f"Now: {comparison.old_model}",
             [self._score_text(s.old_score, s.old_count, s.examples) for s in splits]),
            (f"New: {comparison.new_model}",
             [self._score_text(s.new_score, s.new_count, s.examples) for s in splits]),
            ("Change", ["—" if s.change is None else f"{100 * s.change:+.0f} points"
                        for s in splits]),
        )
        for row, (title, cells) in enumerate(rows, start=1):
            name = hint(title)
            self.scores.addWidget(name, row, 0)
            for column, (split, text) in enumerate(zip(splits, cells), start=1):
                label = QLabel(text)
                label.setObjectName(f"score_{split.split}_{row}")
                self.scores.addWidget(label, row, column)
        self.scores.setColumnStretch(0, 1)
        self.scores_box.show()
        verdict = comparison.verdict()
        if comparison.old_model_problem:
            verdict += (" The current model could not be scored: "
                        f"{comparison.old_model_problem}")
        worse = any((s.change or 0) <= -model_switch.SAME_SCORE_MARGIN
                    for s in comparison.splits[:1])
        paint(self.verdict, verdict, "warn" if worse else None)

    @staticmethod
    def _score_text(score: float | None, count: int, rows: int) -> str:
        if score is None:
            return "not scored"
        return percent(score) + (f" ({count} of {rows} rows)" if count < rows else "")

    # -- switching ----------------------------------------------------------------------------

    def switch_and_run(self) -> int | None:
        """Make the new model the task model, the prompt the starting instruction, and run.

        Returns the new run's id, or None when nothing was started.
        """
        project, prompt, config = self.state.project, self.prompt, self.new_model()
        if project is None or prompt is None or config is None:
            return None
        if self.state.runs.running:
            messages.show_error(self, "A run is going: pause or stop it on the Run page "
                                      "before switching models.")
            return None
        settings = project.settings
        method = self.method.currentData()
        replaced = settings.instruction.strip()
        if replaced and replaced != prompt.instruction.strip() and not messages.ask(
                self, "Switch models",
                f"Make {config.describe()} the task model and start a quick "
                f"{method_named(method).title} run from this prompt? The project's current "
                "starting instruction is replaced by it.",
                yes="Switch and start", no="Cancel"):
            return None
        changes: dict[str, object] = {"task_model": config.without_key(),
                                      "instruction": prompt.instruction}
        if settings.optimizer_model == settings.task_model:
            changes["optimizer_model"] = config.without_key()
        self.state.use_api_key(config)
        try:
            self.state.update_settings(**changes)
            run_id = self.state.runs.start(method, preset=PRESET)
        except (*USER_ERRORS, RuntimeError) as error:
            messages.show_error(self, error)
            return None
        self.state.status.emit(f"Run {run_id} started: re-tuning for {config.describe()}.")
        self._show_run_page()
        self.accept()
        return run_id

    def _show_run_page(self) -> None:
        window = self.parent().window() if self.parent() is not None else None
        pages, run_page = getattr(window, "pages", None), getattr(window, "run_page", None)
        if pages is not None and run_page is not None:
            pages.setCurrentWidget(run_page)

    def reject(self) -> None:
        if self._job is not None:
            self._job.cancel()
        super().reject()
