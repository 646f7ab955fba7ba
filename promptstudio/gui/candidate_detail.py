"""One candidate in full: its prompt, what changed from the prompt it came from, how it was
made, and the model's answer to every example it was scored on.

The pane reads the candidate from the project when it is selected (a few small queries);
it never runs a model. Its buttons copy the prompt, make it the project's starting
instruction, mark it as the best one (the one export uses), open a side-by-side comparison
and export it. `CompareDialog` shows two candidates next to each other with their diff.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from promptstudio import diffing, reports, workflows
from promptstudio.gui import messages
from promptstudio.gui.state import AppState
from promptstudio.optimize.describe import clip
from promptstudio.reports import AnswerRow, CandidateResult
from promptstudio.store.project import Project
from promptstudio.store.records import Candidate

Index = QModelIndex | QPersistentModelIndex
TOP = QModelIndex()

RIGHT_COLOR = QColor("#1b7a1b")
WRONG_COLOR = QColor("#b42318")
OUTCOMES = (("all", "All answers"), ("wrong", "Wrong answers"), ("right", "Right answers"))
SPLIT_CHOICES = ((None, "All splits"), ("dev", "Dev"), ("test", "Test"), ("train", "Train"))
SPLIT_ORDER = {"dev": 0, "test": 1, "train": 2}


def scores_line(candidate: CandidateResult) -> str:
    """'Dev 0.83 (6 examples) · Test 0.75 (4) · Train 0.70 (16)', or why there is none."""
    parts = []
    for split in ("dev", "test", "train"):
        score = candidate.score(split)
        if score is not None:
            count = candidate.examples(split)
            unit = f" example{'s' if count != 1 else ''}" if not parts else ""
            parts.append(f"{split.capitalize()} {score:.2f} ({count}{unit})")
    return " · ".join(parts) or "Not scored yet."


def _fixed_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def _page(body: str) -> str:
    return f"<html><body style='margin:4px'>{body}</body></html>"


# -- the answers table -------------------------------------------------------------------


class AnswersModel(QAbstractTableModel):
    """The task model's answers to the examples a candidate was scored on."""

    COLUMNS = ("Split", "Input", "Expected", "Model's answer", "Score")
    SPLIT, INPUT, EXPECTED, ANSWER, SCORE = range(5)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[AnswerRow] = []

    def set_rows(self, rows: Sequence[AnswerRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, row: int) -> AnswerRow:
        return self._rows[row]

    def rows(self) -> list[AnswerRow]:
        return list(self._rows)

    def rowCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if (role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal
                and 0 <= section < len(self.COLUMNS)):
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        answer, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == self.SCORE:
                return f"{'✓' if answer.right else '✗'} {answer.score:.2f}"
            return (answer.split, answer.input, answer.expected,
                    answer.answer or "(nothing)", "")[column]
        if role == Qt.ItemDataRole.UserRole:
            if column == self.SPLIT:
                return SPLIT_ORDER.get(answer.split, 3) * 1_000_000 + answer.example_id
            return answer.score if column == self.SCORE else self.data(index)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.ANSWER:
                return f"The model's whole reply:\n{answer.raw_output.strip() or '(nothing)'}"
            if column in (self.INPUT, self.EXPECTED):
                return (answer.input, answer.expected)[column - self.INPUT]
        if role == Qt.ItemDataRole.ForegroundRole and column == self.SCORE:
            return RIGHT_COLOR if answer.right else WRONG_COLOR
        return None


class AnswersFilter(QSortFilterProxyModel):
    """Keeps right or wrong answers, of one split or all."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.outcome = "all"
        self.split: str | None = None
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_outcome(self, outcome: str) -> None:
        self.beginFilterChange()
        self.outcome = outcome
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_split(self, split: str | None) -> None:
        self.beginFilterChange()
        self.split = split
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, AnswersModel) or source_row >= model.rowCount():
            return True
        answer = model.row(source_row)
        if self.split is not None and answer.split != self.split:
            return False
        return (self.outcome == "all" or (self.outcome == "right") == answer.right)


# -- the pane ----------------------------------------------------------------------------


class CandidateDetail(QWidget):
    """The selected candidate: prompt, changes, story and answers, with its actions."""

    chosen_changed = Signal()  # the user marked or unmarked a prompt as the best
    compare_requested = Signal(int)
    export_requested = Signal(int)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.candidate: Candidate | None = None
        self.result: CandidateResult | None = None
        self.prompt_text = ""
        self.parent_id: int | None = None

        self.title = QLabel()
        self.title.setObjectName("candidateTitle")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.scores = QLabel()
        self.scores.setObjectName("candidateScores")
        self.other_scores = QLabel()
        self.other_scores.setObjectName("otherScores")
        self.other_scores.setWordWrap(True)
        self.other_scores.setStyleSheet("color: #555;")
        self.other_scores.hide()

        self.copy_button = QPushButton("Copy prompt")
        self.copy_button.setToolTip("Copy the whole prompt, as the model sees it.")
        self.use_button = QPushButton("Use as starting prompt")
        self.use_button.setToolTip("Make this instruction the project's starting "
                                   "instruction, for the next runs.")
        self.best_button = QPushButton("Mark as best")
        self.best_button.setToolTip("Export this prompt as the project's best one, whatever "
                                    "the scores say.")
        self.compare_button = QPushButton("Compare…")
        self.compare_button.setToolTip("Show this prompt and another side by side.")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save this prompt as a file.")
        self.copy_button.clicked.connect(self.copy_prompt)
        self.use_button.clicked.connect(self.use_as_start)
        self.best_button.clicked.connect(self.toggle_best)
        self.compare_button.clicked.connect(self._ask_to_compare)
        self.export_button.clicked.connect(self._ask_to_export)
        for button in (self.best_button, self.use_button, self.copy_button,
                       self.compare_button, self.export_button):
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        buttons = QVBoxLayout()
        buttons.setSpacing(4)
        for row in ((self.best_button, self.use_button),
                    (self.copy_button, self.compare_button, self.export_button)):
            line = QHBoxLayout()
            for button in row:
                line.addWidget(button)
            line.addStretch(1)
            buttons.addLayout(line)

        self.prompt_view = QPlainTextEdit()
        self.prompt_view.setObjectName("promptView")
        self.prompt_view.setReadOnly(True)
        self.prompt_view.setFont(_fixed_font())
        prompt_note = QLabel("This is the whole prompt the model reads; {input} marks where "
                             "each example's input goes.")
        prompt_note.setWordWrap(True)
        set_muted(prompt_note)
        prompt_tab = QWidget()
        prompt_layout = QVBoxLayout(prompt_tab)
        prompt_layout.addWidget(prompt_note)
        prompt_layout.addWidget(self.prompt_view, 1)

        self.diff_summary = QLabel()
        self.diff_summary.setWordWrap(True)
        self.diff_view = QTextBrowser()
        self.diff_view.setObjectName("diffView")
        self.diff_view.setFont(_fixed_font())
        diff_tab = QWidget()
        diff_layout = QVBoxLayout(diff_tab)
        diff_layout.addWidget(self.diff_summary)
        diff_layout.addWidget(self.diff_view, 1)

        self.story_view = QTextBrowser()
        self.story_view.setObjectName("storyView")

        self.answers = AnswersModel(self)
        self.answers_filter = AnswersFilter(self)
        self.answers_filter.setSourceModel(self.answers)
        self.outcome_choice = QComboBox()
        for key, text in OUTCOMES:
            self.outcome_choice.addItem(text, key)
        self.outcome_choice.currentIndexChanged.connect(
            lambda: self._filter_answers())
        self.split_choice = QComboBox()
        for split, text in SPLIT_CHOICES:
            self.split_choice.addItem(text, split)
        self.split_choice.currentIndexChanged.connect(lambda: self._filter_answers())
        self.answers_count = QLabel()
        self.answers_view = QTableView()
        self.answers_view.setObjectName("answersView")
        self.answers_view.setModel(self.answers_filter)
        self.answers_view.setSortingEnabled(True)
        self.answers_view.setWordWrap(True)
        self.answers_view.setAlternatingRowColors(True)
        self.answers_view.verticalHeader().hide()
        self.answers_view.verticalHeader().setDefaultSectionSize(
            self.answers_view.fontMetrics().height() + 8)
        self.answers_view.sortByColumn(AnswersModel.SPLIT, Qt.SortOrder.AscendingOrder)
        self.answers_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.answers_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column in (AnswersModel.INPUT, AnswersModel.EXPECTED, AnswersModel.ANSWER):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        for column in (AnswersModel.SPLIT, AnswersModel.SCORE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        answer_filters = QHBoxLayout()
        answer_filters.addWidget(QLabel("Show"))
        answer_filters.addWidget(self.outcome_choice)
        answer_filters.addWidget(self.split_choice)
        answer_filters.addStretch(1)
        self.answers_count.setWordWrap(True)
        answers_tab = QWidget()
        answers_layout = QVBoxLayout(answers_tab)
        answers_layout.addLayout(answer_filters)
        answers_layout.addWidget(self.answers_count)
        answers_layout.addWidget(self.answers_view, 1)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(prompt_tab, "Prompt")
        self.tabs.addTab(diff_tab, "Changes")
        self.tabs.addTab(self.story_view, "How it was made")
        self.tabs.addTab(answers_tab, "Answers")

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addWidget(self.title)
        content_layout.addWidget(self.scores)
        content_layout.addWidget(self.other_scores)
        content_layout.addLayout(buttons)
        content_layout.addWidget(self.tabs, 1)

        empty = QLabel("Select a prompt in the table, or click a point in the plot, to see "
                       "it in full: what changed from the prompt it came from, how it was "
                       "made, and the model's answers.")
        empty.setObjectName("detailEmpty")
        set_muted(empty)
        empty.setWordWrap(True)
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.stack = QStackedWidget()
        self.stack.addWidget(empty)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    # -- showing a candidate ----------------------------------------------------------

    def show_candidate(self, result: CandidateResult | None,
                       known: dict[int, CandidateResult] | None = None) -> None:
        """Show a candidate (None: the empty note); `known` gives its relatives' scores."""
        project = self.state.project
        if result is None or project is None:
            self.candidate = self.result = None
            self.stack.setCurrentIndex(0)
            return
        try:
            self.candidate = project.candidate(result.id)
            card = workflows.prompt_card(project, self.candidate)
        except Exception as exc:
            self.candidate = self.result = None
            self.stack.setCurrentIndex(0)
            messages.show_error(self, exc)
            return
        self.result = result
        self.prompt_text = card["prompt"]
        self.prompt_view.setPlainText(self.prompt_text)
        self.update_scores()
        self._show_other_scores(project)
        self._show_changes(project)
        self._show_story(project, known or {})
        self.reload_answers()
        self.update_chosen()
        self.stack.setCurrentIndex(1)

    def update_scores(self) -> None:
        """Refresh the title and scores (a running search may have scored it again)."""
        result = self.result
        if result is None:
            return
        where = f"run {result.run_id}, step {result.step}" if result.run_id else "by hand"
        self.title.setText(f"<b>Prompt #{result.id}</b> · {html.escape(result.made_by)} · "
                           f"{where}")
        self.scores.setText(scores_line(result))

    def _show_other_scores(self, project: Project) -> None:
        """Its scores on other models or under other scoring settings, which the line
        above leaves out: history, not current."""
        lines = reports.other_scores(project, self.candidate.id)
        self.other_scores.setText("Also scored: " + "; ".join(lines) + "." if lines else "")
        self.other_scores.setVisible(bool(lines))

    def update_chosen(self) -> None:
        project = self.state.project
        chosen = project.chosen_candidate() if project is not None else None
        is_chosen = chosen is not None and self.candidate is not None and (
            chosen.id == self.candidate.id)
        self.best_button.setText("Unmark as best" if is_chosen else "Mark as best")

    def reload_answers(self) -> None:
        project = self.state.project
        if project is None or self.candidate is None:
            self.answers.set_rows([])
        else:
            self.answers.set_rows(reports.answer_rows(project, self.candidate.id))
        self._filter_answers()

    def _filter_answers(self) -> None:
        self.answers_filter.set_outcome(self.outcome_choice.currentData())
        self.answers_filter.set_split(self.split_choice.currentData())
        rows = self.answers.rows()
        right = sum(1 for row in rows if row.right)
        shown = self.answers_filter.rowCount()
        if not rows:
            text = "No answers stored yet: this prompt has not been scored."
        else:
            text = f"{right} of {len(rows)} answers right."
            if shown != len(rows):
                text += f" Showing {shown}." if shown else " None to show with this choice."
        self.answers_count.setText(text)
        self.tabs.setTabText(3, f"Answers ({len(rows)})" if rows else "Answers")

    def _show_changes(self, project: Project) -> None:
        """The diff against the parent most like it (OPRO's have many parents)."""
        candidate = self.candidate
        assert candidate is not None
        self.parent_id = None
        if not candidate.parent_ids:
            self.diff_summary.setText("This prompt was not made from another one, so there "
                                      "is nothing to compare it with.")
            self.diff_view.setHtml(_page(diffing.to_html(
                [(diffing.EQUAL, self.prompt_text)])))
            return
        parents = [project.candidate(i) for i in candidate.parent_ids]
        index = diffing.closest(candidate.instruction, [p.instruction for p in parents])
        parent = parents[index or 0]
        self.parent_id = parent.id
        parent_prompt = workflows.prompt_card(project, parent)["prompt"]
        spans = diffing.diff_words(parent_prompt, self.prompt_text)
        if len(parents) == 1:
            source = f"prompt #{parent.id}, the one it was made from"
        else:
            source = (f"prompt #{parent.id}, the most similar of the {len(parents)} prompts "
                      "it was made from")
        self.diff_summary.setText(
            f"Compared with {source}: {diffing.describe(spans)} Removed words are struck "
            "out in red, added words are in green.")
        self.diff_view.setHtml(_page(diffing.to_html(spans)))

    def _show_story(self, project: Project, known: dict[int, CandidateResult]) -> None:
        assert self.candidate is not None
        parts = []
        for section in reports.provenance(project, self.candidate, known):
            parts.append(f"<h4 style='margin-bottom:2px'>{html.escape(section.title)}</h4>")
            if section.text:
                text = html.escape(section.text).replace("\n", "<br>")
                parts.append(f"<p style='margin-top:0'>{text}</p>")
            if section.lines:
                items = "".join(f"<li>{html.escape(line)}</li>" for line in section.lines)
                parts.append(f"<ul style='margin-top:0'>{items}</ul>")
        self.story_view.setHtml(_page("".join(parts)))

    # -- actions ----------------------------------------------------------------------

    def copy_prompt(self) -> None:
        if self.candidate is None:
            return
        QGuiApplication.clipboard().setText(self.prompt_text)
        self.state.status.emit(f"Copied prompt #{self.candidate.id}.")

    def use_as_start(self) -> None:
        project, candidate = self.state.project, self.candidate
        if project is None or candidate is None:
            return
        settings = project.settings
        changes = {key: value for key, value in workflows.starting_prompt_of(candidate).items()
                   if getattr(settings, key) != value}
        if not changes:
            self.state.status.emit(f"Prompt #{candidate.id} is already the starting prompt.")
            return
        current = settings.instruction
        what = ("instruction and layout" if "template" in changes or "demo_format" in changes
                else "instruction")
        replaces = (f"It replaces “{clip(current, 80) or '(empty)'}”"
                    if "instruction" in changes else "The instruction stays the same")
        layout = (f", and the examples are written as {candidate.meta['layout']}"
                  if what != "instruction" else "")
        if not messages.ask(
                self, "Use as starting prompt",
                f"Make prompt #{candidate.id}'s {what} the project's starting "
                f"{what}?\n\n{replaces}{layout}. Runs you start from now on begin from it. "
                "(Each run picks its own examples to show the model.)",
                yes="Use it", no="Cancel"):
            return
        try:
            self.state.update_settings(**changes)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        self.state.status.emit(f"The starting {what} is now prompt #{candidate.id}'s.")

    def _ask_to_compare(self) -> None:
        if self.candidate is not None:
            self.compare_requested.emit(self.candidate.id)

    def _ask_to_export(self) -> None:
        if self.candidate is not None:
            self.export_requested.emit(self.candidate.id)

    def toggle_best(self) -> None:
        project, candidate = self.state.project, self.candidate
        if project is None or candidate is None:
            return
        chosen = project.chosen_candidate()
        unmark = chosen is not None and chosen.id == candidate.id
        try:
            project.choose_candidate(None if unmark else candidate.id)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        self.update_chosen()
        self.state.status.emit(
            f"Prompt #{candidate.id} is no longer marked as best; export takes the best "
            "dev score." if unmark else
            f"Prompt #{candidate.id} is marked as best; export uses it.")
        self.chosen_changed.emit()


# -- side by side ------------------------------------------------------------------------


class CompareDialog(QDialog):
    """Two candidates next to each other: their prompts, scores, and what differs."""

    def __init__(self, project: Project, candidates: Sequence[CandidateResult],
                 left_id: int, right_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare prompts")
        self.setObjectName("compareDialog")
        self.project = project
        self.candidates = {c.id: c for c in candidates}
        self.prompts: dict[int, str] = {}
        self.left_choice, self.right_choice = QComboBox(), QComboBox()
        self.left_view, self.right_view = QTextBrowser(), QTextBrowser()
        self.left_scores, self.right_scores = QLabel(), QLabel()
        for choice in (self.left_choice, self.right_choice):
            for candidate in sorted(self.candidates.values(), key=lambda c: c.id):
                text = clip(candidate.instruction, 60) or "(empty)"
                choice.addItem(f"#{candidate.id} · {text}", candidate.id)
            choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            choice.setMinimumContentsLength(30)
        for view in (self.left_view, self.right_view):
            view.setFont(_fixed_font())
        for label in (self.left_scores, self.right_scores):
            label.setWordWrap(True)
        self.diff_summary = QLabel()
        self.diff_summary.setWordWrap(True)
        self.diff_view = QTextBrowser()
        self.diff_view.setObjectName("compareDiff")
        self.diff_view.setFont(_fixed_font())

        grid = QGridLayout()
        grid.addWidget(QLabel("<b>First prompt</b>"), 0, 0)
        grid.addWidget(QLabel("<b>Second prompt</b>"), 0, 1)
        grid.addWidget(self.left_choice, 1, 0)
        grid.addWidget(self.right_choice, 1, 1)
        grid.addWidget(self.left_scores, 2, 0)
        grid.addWidget(self.right_scores, 2, 1)
        grid.addWidget(self.left_view, 3, 0)
        grid.addWidget(self.right_view, 3, 1)
        grid.setRowStretch(3, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid, 3)
        layout.addWidget(QLabel("<b>What changes from the first to the second</b>"))
        layout.addWidget(self.diff_summary)
        layout.addWidget(self.diff_view, 2)
        layout.addWidget(close)

        self.left_choice.setCurrentIndex(max(0, self.left_choice.findData(left_id)))
        self.right_choice.setCurrentIndex(max(0, self.right_choice.findData(right_id)))
        self.left_choice.currentIndexChanged.connect(self.refresh)
        self.right_choice.currentIndexChanged.connect(self.refresh)
        self.resize(1000, 700)
        self.refresh()

    def _prompt(self, candidate_id: int) -> str:
        if candidate_id not in self.prompts:
            candidate = self.project.candidate(candidate_id)
            self.prompts[candidate_id] = workflows.prompt_card(self.project, candidate)["prompt"]
        return self.prompts[candidate_id]

    def refresh(self) -> None:
        left, right = self.left_choice.currentData(), self.right_choice.currentData()
        if left is None or right is None:
            return
        try:
            old, new = self._prompt(left), self._prompt(right)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        for view, scores, candidate_id, text in ((self.left_view, self.left_scores, left, old),
                                                 (self.right_view, self.right_scores, right,
                                                  new)):
            view.setPlainText(text)
            candidate = self.candidates[candidate_id]
            scores.setText(f"{candidate.made_by} · {scores_line(candidate)}")
        spans = diffing.diff_words(old, new)
        self.diff_summary.setText(diffing.describe(spans))
        self.diff_view.setHtml(_page(diffing.to_html(spans)))


def set_muted(widget: QWidget) -> None:
    """Grey text for notes that explain rather than inform."""
    palette = widget.palette()
    palette.setColor(QPalette.ColorRole.WindowText,
                     palette.color(QPalette.ColorRole.PlaceholderText))
    widget.setPalette(palette)
