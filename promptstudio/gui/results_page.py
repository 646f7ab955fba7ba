"""The Results page: how the runs' scores moved, every prompt they tried, and the best one.

At the top, the project's runs (tick several to compare methods) beside the score plot;
below, the prompts of the ticked runs in a sortable table beside the selected prompt in
full. A run that is going shows up as it goes: each engine event updates the data in
memory at once, and a timer passes the changes on to the table and the plot at most five
times a second, so the window stays responsive however fast the events come. When a run
ends, it is read again from the project, where every score is complete.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QEvent, QItemSelection, QModelIndex, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from promptstudio import reports
from promptstudio.best_prompt import OLD_SCORING, best_prompt, scoring_notice
from promptstudio.gui import export_dialogs, messages
from promptstudio.gui.candidate_detail import CandidateDetail, CompareDialog
from promptstudio.gui.candidates_model import (
    BEST,
    CANDIDATE_ROLE,
    DEV,
    FROM,
    ID,
    INSTRUCTION,
    MADE_BY,
    RUN,
    SCORE_COLUMNS,
    STEP,
    TEST,
    TOKENS,
    TRAIN,
    WORDS,
    CandidatesFilter,
    CandidatesModel,
)
from promptstudio.gui.params_form import notice_label
from promptstudio.gui.state import AppState
from promptstudio.gui.trajectory_plot import TrajectoryPlot, run_color
from promptstudio.optimize import runner
from promptstudio.optimize.events import Event, RunFinished, StepStarted
from promptstudio.optimize.selection import Choice
from promptstudio.reports import CandidateResult, RunResults
from promptstudio.store.records import Run

FLUSH_MS = 200
"""How often, at most, a run's changes reach the table and the plot."""
EARLIER_ROLE = Qt.ItemDataRole.UserRole + 1
"""On a run list item: whether the run scored its prompts under earlier settings."""

EMPTY_TEXT = (
    "<h3>No results yet</h3>"
    "<p>Start a run on the <b>Run</b> page (F5). Its scores appear here as it goes: a plot of "
    "how they improve, every prompt it tries, and the best one, ready to export.</p>")


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(color)
    return QIcon(pixmap)


def _short_time(stamp: str) -> str:
    """'23 Nov 14:03' in the user's time zone."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%d %b %H:%M")
    except ValueError:
        return stamp


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


class RunList(QTreeWidget):
    """The project's runs, newest first, two lines each; ticked runs are drawn in the
    plot and listed in the table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runList")
        self.setColumnCount(1)
        self.setHeaderLabels(["Runs: tick to show, several to compare"])
        self.headerItem().setToolTip(0, "Tick runs to draw them in the plot and list their "
                                        "prompts; tick several to compare methods.")
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(False)
        self.setAlternatingRowColors(True)
        self.setIconSize(QSize(12, 12))

    def fill(self, runs: list[Run], scores: dict[int, tuple[float | None, float | None]],
             checked: set[int], earlier: set[int] = frozenset()) -> None:
        """The runs, newest first; those in `earlier` scored under earlier settings."""
        self.blockSignals(True)
        self.clear()
        for run in reversed(runs):
            item = QTreeWidgetItem()
            item.setData(0, Qt.ItemDataRole.UserRole, run.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if run.id in checked
                               else Qt.CheckState.Unchecked)
            item.setIcon(0, _swatch(run_color(run.id)))
            dev, test = scores.get(run.id, (None, None))
            self._set_text(item, reports.RunResults.empty(run), dev, test, run.error,
                           run.id in earlier)
            self.addTopLevelItem(item)
        self.blockSignals(False)

    def update_run(self, results: RunResults) -> None:
        item = self.item_for(results.run_id)
        if item is not None:
            self.blockSignals(True)
            self._set_text(item, results, results.best_score("dev"), results.test_score)
            self.blockSignals(False)

    @staticmethod
    def _set_text(item: QTreeWidgetItem, results: RunResults, dev: float | None,
                  test: float | None, error: str | None = None,
                  earlier: bool | None = None) -> None:
        status = results.status_name
        if results.status == "running" and results.steps:
            status = f"Running, step {results.step} of {results.steps}"
        method = results.short_title + (f", {results.preset}" if results.preset else "")
        scores = [f"{name} {value:.2f}" for name, value in (("dev", dev), ("test", test))
                  if value is not None]
        first = f"Run {results.run_id}: {method}  ({_short_time(results.created)})"
        if earlier is None:
            earlier = bool(item.data(0, EARLIER_ROLE))
        item.setData(0, EARLIER_ROLE, earlier)
        second = " · ".join([status, *scores, *(["earlier settings"] if earlier else [])])
        item.setText(0, f"{first}\n{second}")
        tip = (f"{results.title}, {results.preset or 'its own'} settings, seed "
               f"{results.seed}.\n"
               + (f"{results.writing_note}\n" if results.writing_note else "")
               + f"Best dev score: {_score(dev) or 'none yet'}; test score of its best prompt: "
               f"{_score(test) or 'not measured yet'}.")
        if earlier:
            tip += ("\nIts prompts were scored under earlier settings (template, metric or "
                    "labels); its scores are not current.")
        item.setToolTip(0, tip + (f"\n{error}" if error else ""))

    def item_for(self, run_id: int) -> QTreeWidgetItem | None:
        for index in range(self.topLevelItemCount()):
            item = self.topLevelItem(index)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def checked_ids(self) -> set[int]:
        return {self.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.topLevelItemCount())
                if self.topLevelItem(i).checkState(0) == Qt.CheckState.Checked}

    def set_checked(self, run_id: int, checked: bool = True) -> None:
        item = self.item_for(run_id)
        if item is not None:
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)


class ResultsPage(QWidget):
    """Plot, run list, candidate table and the selected candidate, for the open project."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.results: dict[int, RunResults] = {}
        self._shown: set[int] = set()
        self._new_rows: list[CandidateResult] = []
        self._changed: set[int] = set()
        self._dirty_runs: set[int] = set()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(FLUSH_MS)
        self._flush_timer.timeout.connect(self.flush)

        self.summary = QLabel()
        self.summary.setObjectName("resultsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.export_prompt_button = QPushButton("Export best prompt…")
        self.export_prompt_button.setToolTip("Save the best prompt named above (the one you "
                                             "marked, else the pick of your runs) as a text, "
                                             "Markdown, JSON or YAML file.")
        self.export_prompt_button.clicked.connect(self.export_prompt)
        self.export_report_button = QPushButton("Export report…")
        self.export_report_button.setToolTip("Save every prompt of the ticked runs as a "
                                             "spreadsheet (CSV), or the plot as a picture.")
        self.export_report_button.clicked.connect(self.export_report)
        self.scoring_note = notice_label("scoringNote")
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.export_prompt_button, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(self.export_report_button, 0, Qt.AlignmentFlag.AlignTop)

        self.run_list = RunList()
        self.run_list.itemChanged.connect(lambda *_: self._shown_runs_changed())
        self.again_button = QPushButton("Run again")
        self.again_button.setObjectName("runAgain")
        self.again_button.setToolTip("Start the selected run again with the same method, "
                                     "settings, limits and seed.")
        self.again_button.clicked.connect(self.run_again)
        self.run_list.currentItemChanged.connect(lambda *_: self._update_again_button())
        state.runs.started.connect(lambda *_: self._update_again_button())
        state.runs.ended.connect(lambda *_: self._update_again_button())
        runs_box = QWidget()
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_layout.addWidget(self.run_list, 1)
        runs_layout.addWidget(self.again_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.plot = TrajectoryPlot()
        self.plot.candidate_clicked.connect(self.select_candidate)
        self.save_plot_button = QPushButton("Save picture…")
        self.save_plot_button.setToolTip("Save the plot as a PNG picture.")
        self.save_plot_button.clicked.connect(self.save_plot)
        self.plot.options.addWidget(self.save_plot_button)

        self.model = CandidatesModel(self)
        self.proxy = CandidatesFilter(self)
        self.proxy.setSourceModel(self.model)
        self.search = QLineEdit()
        self.search.setObjectName("candidateSearch")
        self.search.setPlaceholderText("Search the instructions…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(150)
        self.search.textChanged.connect(self._filter_changed)
        self.operation_filter = QComboBox()
        self.operation_filter.setObjectName("operationFilter")
        self.operation_filter.setToolTip("Show only prompts made in one way.")
        self.operation_filter.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.operation_filter.setMinimumContentsLength(16)
        self.operation_filter.currentIndexChanged.connect(self._filter_changed)
        self.count_label = QLabel()
        self.compare_button = QPushButton("Compare selected")
        self.compare_button.setToolTip("Select two prompts (Ctrl+click) to see them side by "
                                       "side.")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self._compare_selected)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.operation_filter)
        filters.addWidget(self.count_label)
        filters.addWidget(self.compare_button)

        self.table = QTableView()
        self.table.setObjectName("candidateTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(DEV, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 8)
        table_header = self.table.horizontalHeader()
        table_header.setMinimumSectionSize(34)
        table_header.setHighlightSections(False)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.viewport().installEventFilter(self)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(filters)
        table_layout.addWidget(self.table, 1)

        self.detail = CandidateDetail(state)
        self.detail.chosen_changed.connect(self._chosen_changed)
        self.detail.compare_requested.connect(self.compare)
        self.detail.export_requested.connect(self._export_candidate)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(runs_box)
        top.addWidget(self.plot)
        top.setStretchFactor(1, 1)
        top.setSizes([300, 760])
        self.bottom = bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(table_box)
        bottom.addWidget(self.detail)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        self._laid_out = False
        self._stale = False
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([330, 470])
        self.splitter.setChildrenCollapsible(False)

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(header)
        content_layout.addWidget(self.scoring_note)
        content_layout.addWidget(self.splitter, 1)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("resultsEmpty")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMargin(40)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)

        state.project_changed.connect(self.reload)
        state.candidates_changed.connect(self._runs_changed)
        state.settings_changed.connect(self._settings_changed)
        state.examples_changed.connect(self._scores_changed)
        state.runs.started.connect(self._run_started)
        state.runs.event.connect(self._on_event)
        state.runs.ended.connect(self._run_ended)
        self.reload()

    def showEvent(self, event: QShowEvent) -> None:
        """Catch up with edited examples; size the columns once the table knows its real
        width."""
        super().showEvent(event)
        if self._stale:
            self._refresh_stale()
        if not self._laid_out:
            self._laid_out = True
            width = self.bottom.width()
            self.bottom.setSizes([int(width * 0.56), width - int(width * 0.56)])
            self._fit_columns()

    # -- the project's runs -----------------------------------------------------------

    def reload(self) -> None:
        """Start afresh for the open project: its runs, the newest one shown."""
        self._flush_timer.stop()
        self.results.clear()
        self._new_rows.clear()
        self._changed.clear()
        self._dirty_runs.clear()
        project = self.state.project
        runs = project.runs() if project is not None else []
        self._shown = {runs[-1].id} if runs else set()
        self._fill_run_list(runs)
        self._show_runs()

    def _settings_changed(self) -> None:
        """The template, metric or labels may have changed: which scores are current, and
        so the best prompt, may have changed with them."""
        project = self.state.project
        if project is not None:
            self._fill_run_list(project.runs())
        self._update_summary()
        self._show_selected_again()

    def _show_selected_again(self) -> None:
        """The template or the instruction changed: the prompt shown may read otherwise."""
        result = self.detail.result
        if result is not None:
            run = self.results.get(result.run_id or -1)
            self.detail.show_candidate(result, run.candidates if run else None)

    def _scores_changed(self) -> None:
        """Examples were edited or deleted, and their scores with them: read the finished
        runs again (a running run keeps following its events), now if the page is in view,
        else when it comes into view."""
        for run_id in [i for i, r in self.results.items() if r.status != "running"]:
            del self.results[run_id]
        self._stale = True
        if self.isVisible():
            self._refresh_stale()

    def _refresh_stale(self) -> None:
        self._stale = False
        if self.state.project is not None:
            self._fill_run_list(self.state.project.runs())
            self._show_runs()

    def _runs_changed(self) -> None:
        """A run was created or ended: list the runs again, keeping what is ticked."""
        project = self.state.project
        if project is not None:
            self._fill_run_list(project.runs())
            self._update_summary()

    def selected_run_id(self) -> int | None:
        item = self.run_list.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def _update_again_button(self) -> None:
        self.again_button.setEnabled(self.selected_run_id() is not None
                                     and not self.state.runs.running)

    def run_again(self) -> int | None:
        """Ask, then start the selected run again; the new run's id, or None."""
        run_id, project = self.selected_run_id(), self.state.project
        if run_id is None or project is None:
            return None
        note = runner.again_note(project, project.run(run_id))
        if not messages.ask(self, "Run again", f"Start run {run_id} again? {note}",
                            yes="Run again"):
            return None
        try:
            return self.state.runs.again(run_id)
        except Exception as error:  # a missing model file, a bad setting: said, not raised
            messages.show_error(self, error)
            return None

    def _fill_run_list(self, runs: list[Run]) -> None:
        project = self.state.project
        scores: dict[int, tuple[float | None, float | None]] = {}
        for run in runs:
            if run.id in self.results:
                results = self.results[run.id]
                scores[run.id] = (results.best_score("dev"), results.test_score)
            elif project is not None and run.best_candidate_id is not None and run.choice:
                choice = Choice.from_json(run.choice)
                scores[run.id] = (choice.score(run.best_candidate_id, "dev"),
                                  choice.score(run.best_candidate_id, "test"))
            elif project is not None and run.best_candidate_id is not None:
                # A run finished before runs recorded their choice (schema 4).
                scores[run.id] = tuple(project.mean_score(  # type: ignore[assignment]
                    run.best_candidate_id, split, model=run.task_model_id,
                    scoring=run.scoring)[0] for split in ("dev", "test"))
        current = project.scoring().key if project is not None else None
        earlier = {r.id for r in runs if r.scoring is not None and r.scoring != current}
        self.run_list.fill(runs, scores, self._shown, earlier)
        for run_id in self._shown & set(self.results):
            if self.results[run_id].status == "running":
                self.run_list.update_run(self.results[run_id])
        self.stack.setCurrentIndex(1 if runs else 0)

    def _shown_runs_changed(self) -> None:
        checked = self.run_list.checked_ids()
        if checked != self._shown:
            self._shown = checked
            self._show_runs()

    def _load(self, run_id: int) -> RunResults | None:
        project = self.state.project
        if project is None:
            return None
        if run_id not in self.results:
            try:
                self.results[run_id] = RunResults.load(project, run_id)
            except Exception as exc:
                messages.show_error(self, exc)
                return None
        return self.results[run_id]

    def shown_runs(self) -> list[RunResults]:
        return [r for run_id in sorted(self._shown) if (r := self._load(run_id)) is not None]

    def _show_runs(self) -> None:
        """Fill the table and the plot with the ticked runs, keeping the selection."""
        selected = self.detail.result.id if self.detail.result else None
        runs = self.shown_runs()
        self._new_rows.clear()
        self._changed.clear()
        candidates = [c for r in runs for c in sorted(r.candidates.values(), key=lambda c: c.id)]
        chosen = self.state.project.chosen_candidate() if self.state.project else None
        self.model.set_candidates(candidates, self._run_picks(runs),
                                  chosen.id if chosen else None)
        self.plot.show_runs(runs)
        self._fit_columns()
        self._fill_operation_filter(candidates)
        self._update_count()
        self._update_summary()
        if selected is not None and self.model.row_of(selected) is not None:
            self.select_candidate(selected)
        else:
            self.detail.show_candidate(None)

    def _fit_columns(self) -> None:
        """Each column as wide as its widest likely text, measured from a sample rather
        than by asking every row (a long run has thousands); the instruction gets the room
        left."""
        candidates = self.model.candidates()
        samples = {
            ID: str(max((c.id for c in candidates), default=0)),
            DEV: self.model.widest_score("dev"), TEST: self.model.widest_score("test"),
            TRAIN: self.model.widest_score("train"), BEST: "★ yours, run's pick",
            MADE_BY: max((c.made_by for c in candidates), key=len, default=""),
            STEP: str(max((c.step for c in candidates), default=0)),
            FROM: "#0000, #0000 …", WORDS: "000", TOKENS: "0000",
            RUN: str(max((c.run_id or 0 for c in candidates), default=0)),
        }
        header = self.table.horizontalHeader()
        for column, sample in samples.items():
            header.resizeSection(column, max(header.sectionSizeHint(column),
                                             self._cell_width(sample)))
        self._fit_instruction()

    def _cell_width(self, text: str) -> int:
        return self.table.fontMetrics().horizontalAdvance(text) + 14

    def _widen_scores(self) -> None:
        """Make room for a bracketed row count that appeared during a run."""
        header = self.table.horizontalHeader()
        for column, split in SCORE_COLUMNS.items():
            needed = self._cell_width(self.model.widest_score(split))
            if needed > header.sectionSize(column):
                header.resizeSection(column, needed)

    def _fit_instruction(self) -> None:
        """Keep the scores in view beside the instruction; the rest scrolls."""
        header = self.table.horizontalHeader()
        beside = sum(header.sectionSize(c) for c in (ID, DEV, TEST, TRAIN, BEST))
        room = self.table.viewport().width() - beside - 2
        header.resizeSection(INSTRUCTION, max(220, min(room, 600)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_instruction()
        return super().eventFilter(watched, event)

    @staticmethod
    def _run_picks(runs: list[RunResults]) -> set[int]:
        return {r.best_candidate_id for r in runs if r.best_candidate_id is not None}

    # -- a run as it goes -------------------------------------------------------------

    def _run_started(self, run_id: int) -> None:
        """A run (or a resumed one, which replays its history as events) starts empty."""
        project = self.state.project
        if project is None:
            return
        results = RunResults.empty(project.run(run_id))
        results.status = "running"
        self.results[run_id] = results
        self._shown.add(run_id)
        self._fill_run_list(project.runs())
        self._show_runs()

    def _on_event(self, event: Event) -> None:
        """Follow an engine event in memory; the timer passes it on to the views."""
        results = self.results.get(event.run_id)
        project = self.state.project
        if results is None or project is None:
            return
        known = len(results.candidates)
        candidate_id = results.apply(event, lookup=project.candidate)
        if candidate_id is not None and event.run_id in self._shown:
            if len(results.candidates) > known:
                self._new_rows.append(results.candidates[candidate_id])
            else:
                self._changed.add(candidate_id)
        if candidate_id is not None or isinstance(event, (StepStarted, RunFinished)):
            self._dirty_runs.add(event.run_id)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Pass what changed since the last flush on to the table, plot and run list."""
        self._flush_timer.stop()
        if self._new_rows or self._changed:
            if self._new_rows:
                self.model.add(self._new_rows)
                self._new_rows = []
                self._fill_operation_filter(self.model.candidates())
            if self._changed:
                self.model.refresh(self._changed)
                self._changed = set()
            self._widen_scores()
        for run_id in self._dirty_runs:
            if run_id in self.results:
                self.run_list.update_run(self.results[run_id])
            if run_id in self._shown:
                self.plot.redraw(run_id)
        if self._dirty_runs:
            self._dirty_runs = set()
            self._update_count()
            self._update_summary(live=True)
            self.detail.update_scores()

    def _run_ended(self, run_id: int, status: str) -> None:
        """Read the run again from the project, where its scores are complete."""
        self.flush()
        self.results.pop(run_id, None)
        if self.state.project is None:
            return
        self._fill_run_list(self.state.project.runs())
        if run_id in self._shown:
            self._show_runs()
            self.detail.reload_answers()

    # -- the table and the detail pane ------------------------------------------------

    def _fill_operation_filter(self, candidates: list[CandidateResult]) -> None:
        operations = sorted({c.operation for c in candidates}, key=reports.operation_name)
        current = self.operation_filter.currentData()
        present = [self.operation_filter.itemData(i)
                   for i in range(1, self.operation_filter.count())]
        if present == operations:
            return
        self.operation_filter.blockSignals(True)
        self.operation_filter.clear()
        self.operation_filter.addItem("Made in any way", None)
        for operation in operations:
            self.operation_filter.addItem(reports.operation_name(operation), operation)
        self.operation_filter.setCurrentIndex(max(0, self.operation_filter.findData(current)))
        self.operation_filter.blockSignals(False)

    def _filter_changed(self) -> None:
        self.proxy.set_text(self.search.text())
        self.proxy.set_operation(self.operation_filter.currentData())
        self._update_count()

    def _update_count(self) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        self.count_label.setText(f"{total} prompts" if shown == total
                                 else f"{shown} of {total} prompts")

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        candidate_id = current.data(CANDIDATE_ROLE)
        result = self._result(candidate_id)
        if result is None or result is self.detail.result:  # the same row, moved by a sort
            return
        run = self.results.get(result.run_id or -1)
        self.detail.show_candidate(result, run.candidates if run else None)
        self.state.candidate_selected.emit(candidate_id)

    def _selection_changed(self, *_: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        self.compare_button.setEnabled(len(rows) == 2)

    def _result(self, candidate_id: int) -> CandidateResult | None:
        row = self.model.row_of(candidate_id)
        return self.model.candidate(row) if row is not None else None

    def select_candidate(self, candidate_id: int) -> None:
        """Select a candidate in the table (clearing a filter that hides it)."""
        row = self.model.row_of(candidate_id)
        if row is None:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            self.search.clear()
            self.operation_filter.setCurrentIndex(0)
            index = self.proxy.mapFromSource(self.model.index(row, 0))
        self.table.selectionModel().setCurrentIndex(
            index, self.table.selectionModel().SelectionFlag.ClearAndSelect
            | self.table.selectionModel().SelectionFlag.Rows)
        self.table.scrollTo(index)

    def _chosen_changed(self) -> None:
        project = self.state.project
        chosen = project.chosen_candidate() if project is not None else None
        self.model.set_marks(self._run_picks(self.shown_runs()), chosen.id if chosen else None)
        self._update_summary()

    def compare(self, candidate_id: int, other_id: int | None = None) -> CompareDialog | None:
        """Open a side-by-side view of a candidate and another one (by default the prompt
        it came from, else the run's best, else the candidate before it)."""
        project = self.state.project
        if project is None:
            return None
        candidates = self.model.candidates()
        if other_id is None:
            other_id = self.detail.parent_id if (
                self.detail.result and self.detail.result.id == candidate_id) else None
        if other_id is None:
            picks = self._run_picks(self.shown_runs()) - {candidate_id}
            others = [c.id for c in candidates if c.id != candidate_id]
            other_id = min(picks) if picks else (others[0] if others else candidate_id)
        dialog = CompareDialog(project, candidates, other_id, candidate_id, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _compare_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if len(rows) == 2:
            first, second = sorted(index.data(CANDIDATE_ROLE) for index in rows)
            self.compare(second, first)

    # -- the summary line -------------------------------------------------------------

    def _update_summary(self, live: bool = False) -> None:
        project = self.state.project
        if project is None:
            self.summary.setText("")
            return
        running = [r for r in self.results.values() if r.status == "running"]
        if running:
            run = running[0]
            step = f"step {run.step} of {run.steps}, " if run.steps else ""
            best = run.best_score("train")
            best_text = f"; best training score so far {best:.2f}" if best is not None else ""
            self.summary.setText(f"<b>Run {run.run_id} is going</b> ({step}"
                                 f"{len(run.candidates)} prompts so far{best_text}). "
                                 "The plot and the table follow it.")
            return
        if live:
            return
        try:
            best = best_prompt(project)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        # The best prompt's own run is explained in its reason already.
        told = best.run.id if best is not None and best.source == OLD_SCORING else None
        notice = scoring_notice(project, [r for r in project.runs()
                                          if r.id in self._shown and r.id != told])
        self.scoring_note.setText(notice)
        self.scoring_note.setVisible(bool(notice))
        if best is None:
            self.summary.setText("No prompt has been scored yet.")
            return
        candidate = best.candidate
        text = " ".join(candidate.instruction.split())
        if len(text) > 140:
            text = text[:139] + "…"
        demos = len(candidate.demo_ids)
        shown = f" with {demos} example{'s' if demos != 1 else ''}" if demos else ""
        self.summary.setText(
            f"<b>Best prompt: #{candidate.id}</b>{shown} ({best.scores_text()}) — "
            f"“{html.escape(text)}”<br>{html.escape(best.why)}")

    # -- export (also in the File menu) -----------------------------------------------

    def export_prompt(self) -> Path | None:
        """Save the best prompt: the one marked as best, else the best by dev score."""
        project = self.state.project
        if project is None:
            return None
        return export_dialogs.export_prompt(self, project)

    def _export_candidate(self, candidate_id: int) -> Path | None:
        project = self.state.project
        if project is None:
            return None
        return export_dialogs.export_prompt(self, project, project.candidate(candidate_id))

    def export_report(self) -> Path | None:
        """Save the ticked runs' prompts as a CSV file, or the plot as a PNG picture."""
        project = self.state.project
        if project is None:
            return None
        self.flush()
        return export_dialogs.export_report(self, project, self.shown_runs(), self.plot)

    def save_plot(self) -> Path | None:
        project = self.state.project
        if project is None:
            return None
        return export_dialogs.export_plot(self, project, self.plot)
