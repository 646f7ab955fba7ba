"""The Run page: choose how to search, see what it will cost, start it and watch it go.

The left column is the run's recipe (method, preset, limits, every setting), the right
column its progress (a bar, a log in plain words, and the project's unfinished runs). The
page only gathers choices and shows events: the run itself belongs to
`state.runs` (`RunController`), which runs the engine on a worker thread.

A run may send hundreds of events a second (a resumed run replays its history fast), so
events are queued and shown together every `REFRESH_MS`; the GUI thread never reads the
database per event.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QDoubleValidator, QFont, QIntValidator, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from promptstudio.errors import user_message
from promptstudio.gui import messages
from promptstudio.gui.params_form import ParamsForm, hint_label
from promptstudio.gui.state import AppState
from promptstudio.optimize import describe, runner
from promptstudio.optimize.budget import LIMITS, Budget
from promptstudio.optimize.events import Event, Progress, RunFinished, StepStarted
from promptstudio.optimize.method import Method, method_named, methods, short_title
from promptstudio.optimize.proposal import Proposal, propose
from promptstudio.store.records import Run

REFRESH_MS = 100
PROGRESS_STEPS = 1000
PLAN_DELAY_MS = 400
LOG_LINES = 20_000
DEMO_SEARCH_CHOICES = {
    "keep": ("Keep the starting examples", None, 1),
    "afterwards": ("Afterwards, look for better examples", "demos", 1),
    "take turns": ("Take turns: instruction, examples, instruction, examples", "demos", 2),
}
"""What happens to the demonstrations after an instruction method: words, then, turns."""


def ordered_methods() -> list[Method]:
    """In each method's own `order`: simplest and cheapest first."""
    return [method_named(n) for n in methods()]


def _limit(field: QLineEdit, kind: type) -> int | float | None:
    """A limit box's value; None when it is empty (no limit)."""
    text = field.text().strip().replace(",", ".")
    if not text:
        return None
    value = kind(float(text))
    return value if value > 0 else None


class RunPage(QWidget):
    """Page 3: a run's recipe on the left, its progress and the unfinished runs on the
    right."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._pending: list[Event] = []
        self._finished: RunFinished | None = None
        self._planning = False
        self._plan_stale = False
        self._plan_dirty = False
        self._plan: runner.Plan | None = None
        self._pausing = False
        self._stopping = False
        self._resumed = False
        self._last_progress: Progress | None = None

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._recipe_column())
        splitter.addWidget(self._progress_column())
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(splitter)

        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(REFRESH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._plan_now)

        state.project_changed.connect(self._project_changed)
        state.settings_changed.connect(self._project_edited)
        state.examples_changed.connect(self._project_edited)
        state.candidates_changed.connect(self._refresh_unfinished)
        state.runs.started.connect(self._run_started)
        state.runs.event.connect(self._queue_event)
        state.runs.ended.connect(self._run_ended)
        state.runs.failed.connect(self._run_failed)
        self.preset_hint.setText(describe.PRESET_TEXTS[self.preset])
        self.method_list.setCurrentRow(0)
        self._project_changed()

    # -- layout -------------------------------------------------------------------------

    def _recipe_column(self) -> QWidget:
        recipe = QWidget()
        column = QVBoxLayout(recipe)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(10)

        method_box = QGroupBox("1. Choose a method")
        method_layout = QVBoxLayout(method_box)
        self.proposal_label = hint_label()
        self.proposal_label.setObjectName("proposal")
        self.use_proposal = QPushButton("Use the proposal")
        self.use_proposal.setObjectName("useProposal")
        self.use_proposal.clicked.connect(self.choose_proposal)
        proposal_row = QHBoxLayout()
        proposal_row.addWidget(self.proposal_label, 1)
        proposal_row.addWidget(self.use_proposal, 0, Qt.AlignmentFlag.AlignTop)
        method_layout.addLayout(proposal_row)
        self.method_list = QListWidget()
        self.method_list.setObjectName("methodList")
        self.method_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for method in ordered_methods():
            item = QListWidgetItem(method.title)
            item.setData(Qt.ItemDataRole.UserRole, method.name)
            item.setToolTip(method.summary)
            self.method_list.addItem(item)
        rows = self.method_list.count()
        self.method_list.setFixedHeight(self.method_list.sizeHintForRow(0) * rows
                                        + 2 * self.method_list.frameWidth() + 4)
        self.method_summary = QLabel()
        self.method_summary.setObjectName("methodSummary")
        self.method_summary.setWordWrap(True)
        self.demo_search = QComboBox()
        self.demo_search.setObjectName("demoSearch")
        for key, (text, _, _) in DEMO_SEARCH_CHOICES.items():
            self.demo_search.addItem(text, key)
        self.demo_search.setToolTip(
            "Small models often gain more from well-chosen examples than from wording. "
            "Afterwards: demonstration search runs on the method's best instruction, if it "
            "also beats yours on training examples not used before (else on yours). Taking "
            "turns: the method then searches instructions again, showing the examples found, "
            "and the examples are searched once more; it costs about twice as much.")
        self.demo_search_row = QWidget()
        demo_row = QHBoxLayout(self.demo_search_row)
        demo_row.setContentsMargins(0, 0, 0, 0)
        demo_row.addWidget(QLabel("Examples shown with the prompt:"))
        demo_row.addWidget(self.demo_search, 1)
        method_layout.addWidget(self.method_list)
        method_layout.addWidget(self.method_summary)
        method_layout.addWidget(self.demo_search_row)

        preset_box = QGroupBox("2. How long to search")
        preset_layout = QVBoxLayout(preset_box)
        row = QHBoxLayout()
        self.preset_group = QButtonGroup(self)
        self.preset_buttons: dict[str, QRadioButton] = {}
        for preset in runner.PRESETS:
            button = QRadioButton(preset.capitalize())
            button.setObjectName(f"preset_{preset}")
            self.preset_group.addButton(button)
            self.preset_buttons[preset] = button
            row.addWidget(button)
        row.addStretch(1)
        self.preset_buttons["quick"].setChecked(True)
        self.preset_hint = hint_label()
        preset_layout.addLayout(row)
        preset_layout.addWidget(self.preset_hint)

        limits_box = QGroupBox("3. Limits (optional)")
        limits_layout = QFormLayout(limits_box)
        self.max_calls = self._limit_field(QIntValidator(1, 2_000_000_000))
        self.max_tokens = self._limit_field(QIntValidator(1, 2_000_000_000))
        minutes = QDoubleValidator(0.1, 1e7, 1)
        minutes.setNotation(QDoubleValidator.Notation.StandardNotation)
        self.max_minutes = self._limit_field(minutes)
        limits_layout.addRow("Most model calls", self.max_calls)
        limits_layout.addRow("Most tokens", self.max_tokens)
        limits_layout.addRow("Most minutes", self.max_minutes)
        for field, limit in ((self.max_calls, "max_calls"), (self.max_tokens, "max_tokens"),
                             (self.max_minutes, "max_minutes")):
            field.setToolTip(LIMITS[limit][0].upper() + LIMITS[limit][1:] + ".")
        limits_layout.addRow(hint_label(
            "Each limit holds for the whole run, choosing and testing the best prompt "
            "included: the search stops early enough to leave room for that, and picks the "
            "best prompt found so far. Leave a box empty for no limit."))

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setObjectName("advancedToggle")
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QWidget()
        self.advanced.setObjectName("advanced")
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.setContentsMargins(16, 0, 0, 0)
        seed_row = QFormLayout()
        self.seed = QSpinBox()
        self.seed.setObjectName("seed")
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setMaximumWidth(180)
        seed_row.addRow("Random seed", self.seed)
        seed_row.addRow(hint_label(
            "The same seed and settings make the same choices again; change it to try "
            "another draw of examples and samples."))
        self.params = ParamsForm()
        self.reset_params = QPushButton("Back to the preset's values")
        self.reset_params.clicked.connect(lambda: self.params.reset())
        advanced_layout.addLayout(seed_row)
        advanced_layout.addWidget(self.params)
        advanced_layout.addWidget(self.reset_params, 0, Qt.AlignmentFlag.AlignLeft)
        self.advanced.setVisible(False)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)

        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 8, 0)
        for widget in (method_box, preset_box, limits_box, self.advanced_toggle, self.advanced):
            settings_layout.addWidget(widget)
        settings_layout.addStretch(1)
        self.settings_panel = settings
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(settings)
        column.addWidget(scroll, 1)

        self.checks = QLabel()
        self.checks.setObjectName("runChecks")
        self.checks.setWordWrap(True)
        self.checks.setTextFormat(Qt.TextFormat.RichText)
        self.plan_label = QLabel()
        self.plan_label.setObjectName("planLabel")
        self.plan_label.setWordWrap(True)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start run")
        self.start_button.setObjectName("startButton")
        self.start_button.setToolTip("Start a new run with these settings (F5)")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop the run for good; what it found is kept (Esc)")
        for button in (self.start_button, self.pause_button, self.stop_button):
            button.setMinimumWidth(110)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.start_button.clicked.connect(self.start_run)
        self.pause_button.clicked.connect(self.pause_run)
        self.stop_button.clicked.connect(self.stop_run)
        column.addWidget(self.checks)
        column.addWidget(self.plan_label)
        column.addLayout(buttons)

        self.method_list.currentRowChanged.connect(self._method_chosen)
        self.preset_group.buttonToggled.connect(self._preset_chosen)
        self.demo_search.currentIndexChanged.connect(self._schedule_plan)
        self.params.changed.connect(self._schedule_plan)
        for field in (self.max_calls, self.max_tokens, self.max_minutes):
            field.textChanged.connect(self._show_plan)
        return recipe

    def _limit_field(self, validator) -> QLineEdit:
        field = QLineEdit()
        field.setPlaceholderText("no limit")
        field.setValidator(validator)
        field.setClearButtonEnabled(True)
        field.setMaximumWidth(180)
        return field

    def _progress_column(self) -> QWidget:
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(8, 0, 0, 0)
        column.setSpacing(10)

        progress_box = QGroupBox("Progress")
        progress_layout = QVBoxLayout(progress_box)
        self.headline = QLabel()
        self.headline.setObjectName("runHeadline")
        self.headline.setWordWrap(True)
        bold = QFont(self.headline.font())
        bold.setBold(True)
        self.headline.setFont(bold)
        self.progress = QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_details = hint_label()
        self.progress_details.setObjectName("progressDetails")
        self.log = QPlainTextEdit()
        self.log.setObjectName("runLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setPlaceholderText("What the run does will appear here, step by step.")
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.outcome = QLabel()
        self.outcome.setObjectName("runOutcome")
        self.outcome.setWordWrap(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        progress_layout.addWidget(self.headline)
        progress_layout.addWidget(self.progress)
        progress_layout.addWidget(self.progress_details)
        progress_layout.addWidget(self.log, 1)
        progress_layout.addWidget(self.outcome)

        unfinished_box = QGroupBox("Unfinished runs")
        unfinished_layout = QVBoxLayout(unfinished_box)
        self.unfinished_hint = hint_label()
        row = QHBoxLayout()
        self.unfinished = QComboBox()
        self.unfinished.setObjectName("unfinishedRuns")
        self.unfinished.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.unfinished.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setToolTip("Continue this run where it stopped (F6)")
        self.resume_button.clicked.connect(self.resume_selected)
        self.unfinished.currentIndexChanged.connect(self._update_buttons)
        row.addStretch(1)
        row.addWidget(self.resume_button)
        unfinished_layout.addWidget(self.unfinished_hint)
        unfinished_layout.addWidget(self.unfinished)
        unfinished_layout.addLayout(row)

        column.addWidget(progress_box, 1)
        column.addWidget(unfinished_box)
        return panel

    # -- the recipe ---------------------------------------------------------------------

    @property
    def method(self) -> Method:
        item = self.method_list.currentItem() or self.method_list.item(0)
        return method_named(item.data(Qt.ItemDataRole.UserRole))

    @property
    def preset(self) -> str:
        return next((name for name, button in self.preset_buttons.items()
                     if button.isChecked()), "quick")

    def choose(self, method: str, preset: str | None = None) -> None:
        """Select a method (and preset) by name, as if the user clicked them."""
        for row in range(self.method_list.count()):
            if self.method_list.item(row).data(Qt.ItemDataRole.UserRole) == method:
                self.method_list.setCurrentRow(row)
        if preset is not None:
            self.preset_buttons[preset].setChecked(True)

    def budget(self) -> Budget:
        return Budget(_limit(self.max_calls, int), _limit(self.max_tokens, int),  # type: ignore[arg-type]
                      _limit(self.max_minutes, float))

    def then(self) -> str | None:
        if self.method.name == "demos":
            return None
        return DEMO_SEARCH_CHOICES[self.demo_search.currentData()][1]

    def turns(self) -> int:
        return 1 if self.then() is None else DEMO_SEARCH_CHOICES[self.demo_search.currentData()][2]

    def _method_chosen(self) -> None:
        method = self.method
        self.method_summary.setText(method.summary)
        follow = method.name != "demos"
        self.demo_search_row.setEnabled(follow)
        self.demo_search_row.setVisible(follow)
        self.params.show_method(method, self.preset)
        self._refresh_checks()
        self._schedule_plan()

    def proposal(self) -> Proposal | None:
        project = self.state.project
        return propose(project.settings.optimizer_model) if project is not None else None

    def choose_proposal(self) -> None:
        """Select the method, follow-up and preset proposed for the models in use."""
        proposal = self.proposal()
        if proposal is None:
            return
        self.choose(proposal.method, proposal.preset)
        follow = "afterwards" if proposal.then else "keep"
        self.demo_search.setCurrentIndex(self.demo_search.findData(follow))

    def _show_proposal(self) -> None:
        proposal = self.proposal()
        self.proposal_label.setVisible(proposal is not None)
        self.use_proposal.setVisible(proposal is not None)
        if proposal is None:
            return
        title = method_named(proposal.method).title
        if proposal.then:
            title += f", then {method_named(proposal.then).title.lower()}"
        self.proposal_label.setText(f"Proposed: {title} ({proposal.preset}). {proposal.why}")

    def _preset_chosen(self, _button=None, checked: bool = True) -> None:
        if not checked:
            return
        self.preset_hint.setText(describe.PRESET_TEXTS[self.preset])
        self.params.show_method(self.method, self.preset)
        self._schedule_plan()

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown
                                          else Qt.ArrowType.RightArrow)

    # -- checks and the projected cost --------------------------------------------------

    def problems(self) -> tuple[list[str], list[str]]:
        """(what prevents a run, what the user should know before one): `runner.preflight`."""
        project = self.state.project
        if project is None:
            return ["Open or create a project first (on the left)."], []
        return runner.preflight(project, self.method.name, self.then())

    def _refresh_checks(self) -> None:
        blocking, warnings = self.problems()
        lines = ([f"<span style='color:#b3261e'>⚠ {html.escape(text)}</span>"
                  for text in blocking]
                 + [f"<span style='color:#8a5a00'>ⓘ {html.escape(text)}</span>"
                    for text in warnings])
        self.checks.setText("<br>".join(lines))
        self.checks.setVisible(bool(lines))

    def _schedule_plan(self) -> None:
        """Estimate the cost soon, once the choices settle; only while the page is shown,
        since the first estimate times the model."""
        if self.state.project is None:
            return
        self._plan_dirty = True
        self.plan_label.setText("Estimating what this run will cost…")
        if self.isVisible():
            self._plan_timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._plan_dirty and self.state.project is not None:
            self._plan_timer.start()

    def _plan_now(self) -> None:
        if self.state.project is None:
            return
        if self._planning:
            self._plan_stale = True
            return
        try:
            overrides = self.params.overrides()
        except ValueError as exc:
            self.plan_label.setText(str(exc))
            return
        self._planning, self._plan_stale, self._plan_dirty = True, False, False
        self.state.runs.plan(self.method.name, preset=self.preset, overrides=overrides,
                             then=self.then(), turns=self.turns(), on_done=self._planned,
                             on_error=self._plan_failed)

    def _planned(self, plan: runner.Plan) -> None:
        self._planning = False
        if self._plan_stale:
            self._plan_now()
            return
        self._plan = plan
        self._show_plan()

    def _plan_failed(self, error: BaseException) -> None:
        self._planning = False
        if self._plan_stale:
            self._plan_now()
            return
        self._plan = None
        self.plan_label.setText("Cannot estimate this run: " + user_message(error))

    def _show_plan(self) -> None:
        plan = self._plan
        if plan is None or self._plan_timer.isActive() or self._planning:
            return
        try:
            budget = self.budget()
        except ValueError:  # a limit being typed: the plan as it is
            budget = Budget()
        problem = runner.limit_problem(budget, plan.final_calls)
        if problem:
            self.plan_label.setText(problem)
            return
        plan = plan.within(budget)
        text = f"This run will make about {plan.projected_calls:,} model calls"
        if plan.projected_seconds is not None:
            text += (f" and take about {describe.duration(plan.projected_seconds)} "
                     "on this computer")
        text += "."
        if plan.limited_by:
            text += (f" Your limit of {plan.limited_by} ends the search early (without it, "
                     f"about {plan.unlimited_calls:,} calls); the best prompt found by then "
                     "is still chosen and tested within the limit.")
        if plan.writing_note:
            text += f" {plan.writing_note[0].upper()}{plan.writing_note[1:]}."
        self.plan_label.setText(text)

    # -- starting, pausing, stopping ----------------------------------------------------

    def start_run(self) -> None:
        """Start a new run with the chosen settings, after checking the project is ready."""
        if self.state.runs.running:
            self.state.status.emit("A run is already going; pause or stop it first.")
            return
        if not self._ready():
            return
        try:
            overrides = self.params.overrides()
            budget = self.budget()
        except ValueError as exc:
            messages.show_error(self, exc)
            return
        self._resumed = False
        try:
            self.state.runs.start(self.method.name, preset=self.preset, overrides=overrides,
                                  then=self.then(), turns=self.turns(),
                                  seed=self.seed.value(), budget=budget)
        except Exception as exc:  # a missing model file, a bad setting: said, not raised
            messages.show_error(self, exc)
            self._update_buttons()

    def resume_selected(self) -> None:
        """Continue the unfinished run chosen in the list."""
        run_id = self.unfinished.currentData()
        if run_id is None or self.state.runs.running or not self._ready(ask=False):
            return
        self._resumed = True
        try:
            self.state.runs.resume(run_id)
        except Exception as exc:
            messages.show_error(self, exc)
            self._update_buttons()

    def pause_run(self) -> None:
        """Pause the run going (it can resume later), or resume the chosen paused run."""
        if not self.state.runs.running:
            self.resume_selected()
            return
        if self._pausing or self._stopping:
            return
        self._pausing = True
        self.state.runs.pause()
        self.headline.setText("Pausing at the next safe point…")
        self._update_buttons()

    def stop_run(self) -> None:
        """Stop the run going for good, after asking: a stopped run cannot resume."""
        if not self.state.runs.running or self._stopping:
            return
        if not messages.ask(self, "Stop the run?",
                            "Stop this run for good? What it found so far is kept, but it "
                            "cannot continue later. To continue later, choose Pause instead.",
                            yes="Stop the run", no="Keep running"):
            return
        self._stopping = True
        self.state.runs.stop()
        self.headline.setText("Stopping…")
        self._update_buttons()

    def _ready(self, ask: bool = True) -> bool:
        blocking, _ = self.problems()
        if blocking:
            messages.show_error(self, "\n\n".join(blocking), "The run cannot start yet")
            return False
        project = self.state.project
        overlap = runner.overlap_question(project) if project is not None else ""
        if ask and overlap and not messages.ask(self, "Rows in two splits",
                                                f"{overlap} Start anyway?",
                                                yes="Start anyway", no="Cancel"):
            return False
        if ask and project is not None and project.split_counts()["dev"] == 0:
            # The same words `optimize` prints before such a run.
            return messages.ask(self, "No dev examples",
                                f"{runner.dev_warning(project.split_counts())} Start anyway?",
                                yes="Start anyway", no="Cancel")
        return True

    # -- the run's progress -------------------------------------------------------------

    def _run_started(self, run_id: int) -> None:
        self._pending.clear()
        self._finished = None
        self._last_progress = None
        self._pausing = self._stopping = False
        self.log.clear()
        self.outcome.clear()
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.setTextVisible(True)
        self.progress.setVisible(True)
        self.progress_details.setText("Preparing the model…")
        title = self._run_title(run_id)
        if self._resumed:
            self.headline.setText(f"Run {run_id} ({title}) is going again.")
            self.log.appendPlainText("Resuming: the work done before is replayed from the "
                                     "project, without asking the model again.")
        else:
            self.headline.setText(f"Run {run_id} ({title}) is going.")
        self._resumed = False
        self._flush_timer.start()
        self._refresh_unfinished()
        self.settings_panel.setEnabled(False)
        self._update_buttons()

    def _run_title(self, run_id: int) -> str:
        project = self.state.project
        try:
            run = project.run(run_id) if project is not None else None
            return f"{method_named(run.method).title}, {run.preset}" if run else ""
        except Exception:
            return ""

    def _queue_event(self, event: object) -> None:
        if isinstance(event, Event):
            self._pending.append(event)

    def _flush(self) -> None:
        """Show every event queued since the last refresh, at once."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        lines = []
        progress = None
        for event in batch:
            if isinstance(event, Progress):
                progress = event
                continue
            line = describe.event_line(event)
            if isinstance(event, RunFinished):
                self._finished = event
                line = self._ending(event.status, event)
            if line and isinstance(event, (StepStarted, RunFinished)):
                lines.append("")  # a blank line before each step, for the eye
            if line:
                lines.append(line)
        if lines:
            bar = self.log.verticalScrollBar()
            following = bar.value() >= bar.maximum() - 2  # else the user is reading back
            self.log.appendPlainText("\n".join(lines))
            if following:
                bar.setValue(bar.maximum())
        if progress is not None:
            self._show_progress(progress)

    def _show_progress(self, progress: Progress) -> None:
        self._last_progress = progress
        if self.progress.maximum() != PROGRESS_STEPS:
            self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(round(progress.fraction * PROGRESS_STEPS))
        self.progress_details.setText(describe.progress_line(progress))

    def _run_ended(self, run_id: int, status: str) -> None:
        self._flush()
        self._flush_timer.stop()
        self._pausing = self._stopping = False
        finished = self._finished if self._finished and self._finished.run_id == run_id else None
        text = self._ending(status, finished)
        if status == "finished":
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        elif self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        if self._last_progress is not None:
            self.progress_details.setText(describe.spent_line(self._last_progress, status))
        else:
            self.progress_details.clear()
        self.headline.setText(f"Run {run_id}: {describe.status_words(status)}."
                              if status != "finished" else f"Run {run_id} finished.")
        self.outcome.setText(text)
        self.settings_panel.setEnabled(True)
        self._refresh_unfinished()
        self.state.status.emit(f"Run {run_id}: {text}")
        # Estimated anew: the finished run corrects the estimate, and the model's speed may
        # not have been timed while the run was going (`RunController.timing`).
        self._schedule_plan()

    def _ending(self, status: str, finished: RunFinished | None) -> str:
        if finished is None or status != "finished":
            return describe.ending(status)
        return describe.ending(status, finished.dev_score, finished.test_score,
                               finished.baseline_test_score, reason=finished.reason,
                               kept_start=self._is_start(finished.best_candidate_id))

    def _is_start(self, candidate_id: int | None) -> bool:
        project = self.state.project
        if project is None or candidate_id is None:
            return False
        try:
            return project.candidate(candidate_id).operation == "start"
        except Exception:  # gone with a deleted run: nothing to say about it
            return False

    def _run_failed(self, run_id: int, error: object) -> None:
        if isinstance(error, runner.DiskFull):  # paused, not failed: its message says so
            self.outcome.setText(user_message(error))
            messages.show_error(self, error, "The run is paused")
        elif isinstance(error, BaseException):
            self.outcome.setText(describe.ending("failed") + " " + user_message(error))
            messages.show_error(self, error, "The run stopped")

    # -- the project --------------------------------------------------------------------

    def _project_changed(self) -> None:
        self._plan = None
        self.log.clear()
        self.outcome.clear()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.progress_details.clear()
        self._show_proposal()
        if self.state.project is not None and not self.state.runs.running:
            self.choose_proposal()
        self._project_edited()
        self._refresh_unfinished()
        if self.state.project is None:
            self.plan_label.clear()

    def _project_edited(self) -> None:
        self._show_proposal()
        self._refresh_checks()
        self._schedule_plan()

    def unfinished_runs(self) -> list[Run]:
        project = self.state.project
        if project is None:
            return []
        active = self.state.runs.active_run_id
        return [run for run in reversed(project.runs())
                if run.status in runner.RESUMABLE and run.id != active]

    def _refresh_unfinished(self) -> None:
        chosen = self.unfinished.currentData()
        runs = self.unfinished_runs()
        self.unfinished.blockSignals(True)
        self.unfinished.clear()
        for run in runs:
            text = (f"Run {run.id}: {short_title(run.method)} {run.preset}, "
                    f"{describe.status_words(run.status)} after "
                    f"{run.llm_calls:,} model calls")
            self.unfinished.addItem(text, run.id)
            if run.error:
                self.unfinished.setItemData(self.unfinished.count() - 1, run.error,
                                            Qt.ItemDataRole.ToolTipRole)
        index = self.unfinished.findData(chosen)
        self.unfinished.setCurrentIndex(index if index >= 0 else 0 if runs else -1)
        self.unfinished.blockSignals(False)
        self.unfinished.setVisible(bool(runs))
        self.resume_button.setVisible(bool(runs))
        if runs:
            self.unfinished_hint.setText(
                "These runs stopped before the end (paused, closed, or stopped by an error). "
                "Resuming continues exactly where each left off.")
        else:
            self.unfinished_hint.setText("No unfinished runs. Paused or interrupted runs "
                                         "appear here, ready to resume.")
        if not self.state.runs.running:
            self._idle_headline(len(runs))
        self._update_buttons()

    def _idle_headline(self, unfinished: int) -> None:
        if self.state.project is None:
            self.headline.setText("No project is open.")
        elif self.outcome.text():
            return
        elif unfinished:
            self.headline.setText("No run is going. You can start a new one or resume an "
                                  "unfinished run below.")
        else:
            self.headline.setText("No run is going. Choose a method and press Start run "
                                  "(F5).")

    def _update_buttons(self) -> None:
        running = self.state.runs.running
        has_project = self.state.project is not None
        resumable = self.unfinished.currentData() is not None
        self.start_button.setEnabled(has_project and not running)
        if running:
            self.pause_button.setText("Pausing…" if self._pausing else "Pause")
            self.pause_button.setToolTip("Pause at the next safe point; resume it any time, "
                                         "also after closing PromptStudio (F6)")
            self.pause_button.setEnabled(not (self._pausing or self._stopping))
        elif resumable:
            self.pause_button.setText("Resume")
            self.pause_button.setToolTip("Continue the unfinished run chosen on the right (F6)")
            self.pause_button.setEnabled(has_project)
        else:
            self.pause_button.setText("Pause")
            self.pause_button.setToolTip("Pause a run while it is going (F6)")
            self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(running and not (self._pausing or self._stopping))
        self.resume_button.setEnabled(has_project and resumable and not running)

