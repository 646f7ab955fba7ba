"""The Task and data page: what the model should do, and the examples it is judged on.

On the left, the task: a description, the starting instruction, the prompt template and
how answers are scored. Each is saved when the user leaves the field, never on every
keystroke. On the right, the rows: a table that reads the database a page at a time, so
a hundred thousand rows scroll as easily as ten, with add, edit, delete, import and
re-split, all undoable. While a run is going both sides are locked, since the run reads
them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from promptstudio import dataio, workflows
from promptstudio.dataio import SPLITS, Row
from promptstudio.gui import messages
from promptstudio.gui.examples_model import COLUMNS, ExamplesModel
from promptstudio.gui.import_dialog import SPLITS_EXPLAINED, ImportDialog
from promptstudio.gui.params_form import notice_label
from promptstudio.gui.scoring import ScoringEditor
from promptstudio.gui.state import AppState
from promptstudio.gui.template_editor import (
    PROBLEM_RED,
    ChatPlacementEditor,
    FinishingTextEdit,
    TemplateEditor,
)
from promptstudio.gui.workers import JobState
from promptstudio.llm.chat import CHAT

DATA_FILES = "CSV (*.csv);;TSV (*.tsv);;JSON Lines (*.jsonl);;JSON (*.json)"
Index = QModelIndex | QPersistentModelIndex


RESCORED = ("Scores will be recomputed the next time they are needed; past runs keep their "
            "scores under the old settings.")
SCORE_NOTE = ("Changing the template, the metric or the labels changes how prompts are "
              "scored. " + RESCORED)


def split_counts_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = " · ".join(f"{counts.get(split, 0):,} {split}" for split in SPLITS)
    return f"{total:,} {'example' if total == 1 else 'examples'}: {parts}"


class TaskDataPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("taskDataPage")
        self._saving = False
        self._announcing = False
        self.model = ExamplesModel(self)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_task_panel())
        splitter.addWidget(self._build_examples_panel())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([420, 620])
        self.splitter = splitter
        self.lock_note = notice_label("lockNote", "A run is going: the task and its rows are "
                                                  "locked until it ends.")
        self.no_project = QLabel("No project is open.\n\nChoose one in the list on the left, "
                                 "or create one with New….")
        self.no_project.setObjectName("noProjectOpen")
        self.no_project.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_project.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(splitter)
        self.stack.addWidget(self.no_project)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.lock_note)
        layout.addWidget(self.stack, 1)

        self.model.changed.connect(self._model_changed)
        self.model.failed.connect(lambda exc: messages.show_error(self, exc))
        state.project_changed.connect(self._project_changed)
        state.settings_changed.connect(self._settings_changed)
        state.examples_changed.connect(self._examples_changed_elsewhere)
        state.candidates_changed.connect(self._update_score_note)
        state.runs.started.connect(lambda _: self._set_locked(True))
        state.runs.ended.connect(lambda *_: self._set_locked(False))
        self._project_changed()

    # -- building ------------------------------------------------------------------------

    def _build_task_panel(self) -> QWidget:
        self.description_edit = FinishingTextEdit(lines=3)
        self.description_edit.setObjectName("taskDescription")
        self.description_edit.setPlaceholderText(
            "In your own words, what should the model do? For example: Read a customer "
            "review and say whether it is positive or negative.")
        self.description_edit.editingFinished.connect(
            lambda: self._save(task_description=self.description_edit.toPlainText().strip()))

        self.instruction_edit = FinishingTextEdit(lines=3)
        self.instruction_edit.setObjectName("instruction")
        self.instruction_edit.setPlaceholderText(
            "The first instruction to try; the optimizer improves on it. For example: Say "
            "whether the review is positive or negative.")
        self.instruction_edit.editingFinished.connect(
            lambda: self._save(instruction=self.instruction_edit.toPlainText().strip()))

        self.template_editor = TemplateEditor()
        self.template_editor.editingFinished.connect(self._save_template)
        self.chat_caption = _caption("The task model is a chat model: it gets messages, not the "
                                     "template above (whose example format serves examples "
                                     "written in the message)")
        self.chat_placement = ChatPlacementEditor()
        self.chat_placement.placementChosen.connect(self._save_chat_placement)

        self.score_note = QLabel(SCORE_NOTE)
        self.score_note.setObjectName("scoreNote")
        self.score_note.setWordWrap(True)
        self.score_note.setStyleSheet("color: #5c4400;")
        self.score_note.hide()

        self.scoring = ScoringEditor(
            caption=_caption("Labels (the answers the model chooses from)"))
        self.scoring.metricChosen.connect(lambda metric: self._save(metric=metric))
        self.scoring.labelsEdited.connect(lambda labels: self._save(labels=labels))
        self.scoring.calibrateToggled.connect(lambda on: self._save(calibrate=on))

        form = QWidget()
        form.setObjectName("taskForm")
        layout = QVBoxLayout(form)
        layout.setContentsMargins(12, 10, 12, 12)
        layout.addWidget(_title("Task"))
        layout.addWidget(_caption("What should the model do?"))
        layout.addWidget(self.description_edit)
        layout.addSpacing(6)
        layout.addWidget(_caption("Starting instruction"))
        layout.addWidget(self.instruction_edit)
        layout.addSpacing(6)
        layout.addWidget(self.score_note)
        layout.addWidget(_caption("Prompt template (how each prompt is put together)"))
        layout.addWidget(self.template_editor)
        layout.addSpacing(6)
        layout.addWidget(self.chat_caption)
        layout.addWidget(self.chat_placement)
        layout.addSpacing(6)
        layout.addWidget(_caption("How answers are scored"))
        layout.addWidget(self.scoring)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setObjectName("taskPanel")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(form)
        scroll.setMinimumWidth(340)
        self.task_panel = scroll
        return scroll

    def _build_examples_panel(self) -> QWidget:
        panel = QWidget()
        panel.setObjectName("examplesPanel")
        self.examples_panel = panel

        self.split_filter = QComboBox()
        self.split_filter.setObjectName("splitFilter")
        self.split_filter.setToolTip(SPLITS_EXPLAINED)
        self.split_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for split in (None, *SPLITS):
            self.split_filter.addItem("", split)
        self.split_filter.currentIndexChanged.connect(
            lambda _: self.model.set_split(self.split_filter.currentData()))
        header = QHBoxLayout()
        header.addWidget(_title("Examples"))
        header.addStretch(1)
        header.addWidget(QLabel("Show:"))
        header.addWidget(self.split_filter)

        stack = self.model.undo_stack
        self.undo_action = stack.createUndoAction(panel, "Undo")
        self.undo_action.setShortcuts([QKeySequence("Ctrl+Z")])
        self.redo_action = stack.createRedoAction(panel, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.add_action = QAction("Add row…", panel)
        self.add_action.setToolTip("Type in a new example")
        self.add_action.triggered.connect(self.add_row)
        self.delete_action = QAction("Delete", panel)
        self.delete_action.setToolTip("Delete the selected rows (Delete key; Ctrl+Z brings "
                                      "them back)")
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.triggered.connect(self.delete_selected)
        self.import_action = QAction("Import more…", panel)
        self.import_action.setToolTip("Add rows from a file or from pasted text")
        self.import_action.triggered.connect(self.import_more)
        self.resplit_action = QAction("Re-split…", panel)
        self.resplit_action.setToolTip("Deal every row again into train, dev and test")
        self.resplit_action.triggered.connect(self.resplit)
        self.export_action = QAction("Export…", panel)
        self.export_action.setToolTip("Save the rows shown to a CSV, TSV or JSON file")
        self.export_action.triggered.connect(self.export_rows)
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            panel.addAction(action)
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.undo_action.setToolTip("Undo the last change to the rows (Ctrl+Z)")
        self.redo_action.setToolTip("Redo it (Ctrl+Shift+Z)")

        toolbar = QToolBar()
        toolbar.setObjectName("examplesToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in (self.add_action, self.delete_action, None, self.undo_action,
                       self.redo_action, None, self.import_action, self.resplit_action,
                       self.export_action):
            if action is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(action)

        self.table = QTableView()
        self.table.setObjectName("examplesTable")
        self.table.setModel(self.model)
        self.table.setItemDelegate(ExampleDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed
                                   | QAbstractItemView.EditTrigger.SelectedClicked)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.addAction(self.delete_action)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        columns = self.table.horizontalHeader()
        columns.setSectionResizeMode(COLUMNS.index("input"), QHeaderView.ResizeMode.Stretch)
        columns.setSectionResizeMode(COLUMNS.index("output"),
                                     QHeaderView.ResizeMode.Interactive)
        columns.setSectionResizeMode(COLUMNS.index("split"), QHeaderView.ResizeMode.Fixed)
        columns.resizeSection(COLUMNS.index("output"), 180)
        columns.resizeSection(COLUMNS.index("split"), 70)
        columns.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

        self.counts_label = QLabel()
        self.counts_label.setObjectName("splitCounts")
        hint = QLabel("Double-click a cell to change it. Ctrl+Z undoes any change to the rows.")
        hint.setWordWrap(True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.import_report = QLabel()
        self.import_report.setObjectName("lastImport")
        self.import_report.setWordWrap(True)
        self.import_report.hide()

        layout = QVBoxLayout(panel)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.addLayout(header)
        layout.addWidget(hint)
        layout.addWidget(toolbar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.counts_label)
        self.overlap_note = notice_label("overlapNote")
        layout.addWidget(self.overlap_note)
        layout.addWidget(self.import_report)
        return panel

    # -- the project ---------------------------------------------------------------------

    def _project_changed(self) -> None:
        project = self.state.project
        self.stack.setCurrentWidget(self.splitter if project else self.no_project)
        self.model.set_project(project)
        self.import_report.hide()
        self.template_editor.show_note("")
        self._load_settings()
        self._update_counts()
        self._set_locked(self.state.runs.running)

    def _settings_changed(self) -> None:
        if not self._saving:
            self._load_settings()

    def _load_settings(self) -> None:
        project = self.state.project
        if project is None:
            for edit in (self.description_edit, self.instruction_edit):
                edit.set_text_quietly("")
            return
        settings = project.settings
        self._update_score_note()
        self.description_edit.set_text_quietly(settings.task_description)
        self.instruction_edit.set_text_quietly(settings.instruction)
        self.template_editor.set_template(settings.prompt_template)
        self.scoring.set_scoring(settings.metric, settings.labels, settings.calibrate)
        self._load_chat_placement()

    def _save_chat_placement(self, instruction_place: str, demo_place: str) -> None:
        self._save(instruction_place=instruction_place, demo_place=demo_place)
        self._load_chat_placement()

    def _load_chat_placement(self) -> None:
        """Where a chat model's messages put the prompt: shown for a chat task model only."""
        project = self.state.project
        scoring = project.scoring() if project is not None else None
        chat = scoring is not None and scoring.prompt_format == CHAT
        self.chat_caption.setVisible(chat)
        self.chat_placement.setVisible(chat)
        if chat:
            settings = project.settings
            template = workflows.chat_prompt_template(settings.task_model, scoring)
            self.chat_placement.set_placement(settings.instruction_place,
                                              settings.demo_place, template)

    def _update_score_note(self) -> None:
        """Say what changing the scoring does once there are scores it would leave behind."""
        project = self.state.project
        self.score_note.setVisible(project is not None and project.has_evaluations())

    def _save(self, **changes: object) -> bool:
        """Save changed settings; False (after telling the user) when they were refused."""
        project = self.state.project
        if project is None:
            return False
        current = project.settings
        changes = {key: value for key, value in changes.items()
                   if getattr(current, key) != value}
        if not changes:
            return True
        scoring = project.scoring().key
        self._saving = True
        try:
            self.state.update_settings(**changes)
        except Exception as exc:
            messages.show_error(self, exc)
            return False
        finally:
            self._saving = False
        rescored = project.scoring().key != scoring and project.has_evaluations()
        self.state.status.emit("Saved. " + RESCORED if rescored else "Saved.")
        return True

    def _save_template(self) -> None:
        template = self.template_editor.template()
        if template.fatal_problems():
            self.template_editor.show_note("Not saved yet: fix the problem marked ✖ first. "
                                           "Until then, runs use the last saved template.")
            return
        if self._save(template=template.text, demo_format=template.demo_format):
            self.template_editor.show_note("")

    # -- the rows ------------------------------------------------------------------------

    def _model_changed(self) -> None:
        self._update_counts()
        self._announcing = True
        try:
            self.state.examples_changed.emit()
        finally:
            self._announcing = False

    def _examples_changed_elsewhere(self) -> None:
        if not self._announcing:
            self.model.reload()
            self._update_counts()

    def _update_counts(self) -> None:
        project = self.state.project
        counts = project.split_counts() if project else dict.fromkeys(SPLITS, 0)
        self.counts_label.setText(split_counts_text(counts))
        note = workflows.overlap_note(project) if project else ""
        self.overlap_note.setText(note)
        self.overlap_note.setVisible(bool(note))
        names = {None: "All rows", "train": "Train", "dev": "Dev", "test": "Test"}
        total = sum(counts.values())
        for index in range(self.split_filter.count()):
            split = self.split_filter.itemData(index)
            count = total if split is None else counts[split]
            self.split_filter.setItemText(index, f"{names[split]} ({count:,})")

    def _set_locked(self, locked: bool) -> None:
        self.model.editable = not locked
        self.lock_note.setVisible(locked)
        self.task_panel.setEnabled(not locked)
        for action in (self.add_action, self.delete_action, self.import_action,
                       self.resplit_action):
            action.setEnabled(not locked)
        if locked:
            self.undo_action.setEnabled(False)
            self.redo_action.setEnabled(False)
        else:
            self.undo_action.setEnabled(self.model.undo_stack.canUndo())
            self.redo_action.setEnabled(self.model.undo_stack.canRedo())

    def selected_rows(self) -> list[int]:
        return sorted(index.row() for index in self.table.selectionModel().selectedRows())

    def delete_selected(self) -> None:
        if self.model.editable:
            rows = self.selected_rows()
            if rows:
                note = workflows.demonstration_note(self.state.project,
                                                    self.model.example_ids(rows))
                if note and not messages.ask(self, "Delete rows", f"{note} Delete anyway?",
                                             yes="Delete"):
                    return
                self.model.delete_rows(rows)
                self.state.status.emit(f"Deleted {len(rows)} rows. Ctrl+Z brings them back."
                                       if len(rows) > 1 else
                                       "Deleted a row. Ctrl+Z brings it back.")

    def add_row(self) -> AddRowDialog | None:
        if self.state.project is None:
            return None
        dialog = AddRowDialog(self.split_filter.currentData() or "train", self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.row_ready.connect(self._add_typed_row)
        dialog.open()
        return dialog

    def _add_typed_row(self, row: Row) -> None:
        ids = self.model.add([row])
        if ids:
            row_number = self.model.row_of(ids[0])
            if row_number is not None:
                self.table.scrollTo(self.model.index(row_number, 0))
                self.table.selectRow(row_number)

    def import_more(self) -> ImportDialog | None:
        if self.state.project is None:
            return None
        dialog = ImportDialog(self.state, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.imported.connect(self._imported)
        dialog.open()
        return dialog

    def _imported(self, report: workflows.ImportReport, ids: list[int]) -> None:
        self.model.record_added(ids, f"Import {len(ids)} rows")
        self.import_report.setText(report.describe())
        self.import_report.show()
        self.state.status.emit(report.describe())

    def resplit(self) -> ResplitDialog | None:
        project = self.state.project
        if project is None:
            return None
        dialog = ResplitDialog(sum(project.split_counts().values()), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._resplit(dialog.shares(), dialog.seed()))
        dialog.open()
        return dialog

    def _resplit(self, shares: dict[str, float], seed: int) -> None:
        total = len(self.state.project.example_ids()) if self.state.project else 0
        if not messages.ask(
                self, "Re-split the rows",
                f"Deal all {total:,} rows again into train, dev and test? Rows will move "
                "between splits, so scores measured before are not comparable with new "
                "ones. Ctrl+Z undoes it.", yes="Re-split", no="Cancel"):
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            done = self.model.resplit(shares, seed)
        finally:
            QApplication.restoreOverrideCursor()
        if done and self.state.project is not None:
            counts = self.state.project.split_counts()
            self.state.status.emit(f"Re-split: {split_counts_text(counts)}.")

    def export_rows(self) -> None:
        project = self.state.project
        if project is None:
            return
        split = self.model.split
        which = "all rows" if split is None else f"the {split} rows"
        chosen, chosen_filter = QFileDialog.getSaveFileName(
            self, f"Export {which}", str(Path.home() / f"{project.path.stem}.csv"),
            DATA_FILES)
        if not chosen:
            return
        path = Path(chosen)
        if not path.suffix:
            path = path.with_suffix("." + chosen_filter.split("*.")[-1].rstrip(")"))

        def work(_: JobState) -> Path:
            try:
                return workflows.export_data(project, path, split=split)
            finally:
                project.close()

        self.state.jobs.start(
            "Exporting rows", work,
            on_done=lambda _: self.state.status.emit(f"Saved {which} to {path}."),
            on_error=lambda exc: messages.show_error(self, exc))


class _CellTextEdit(QPlainTextEdit):
    """A cell editor for text that may span lines: Enter saves, Shift+Enter adds a line.

    Esc belongs to the editor (it cancels the edit), not to the window's Esc shortcut.
    """

    finished = Signal()

    def event(self, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.finished.emit()
            return
        super().keyPressEvent(event)


class ExampleDelegate(QStyledItemDelegate):
    """Edits text cells in a small multi-line box and the split with a list of splits."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: Index) -> QWidget:
        if COLUMNS[index.column()] == "split":
            combo = QComboBox(parent)
            combo.addItems(SPLITS)
            combo.activated.connect(lambda _: self._finish(combo))
            return combo
        editor = _CellTextEdit(parent)
        editor.setTabChangesFocus(True)
        editor.setToolTip("Enter saves; Shift+Enter starts a new line; Esc cancels.")
        editor.finished.connect(lambda: self._finish(editor))
        return editor

    def _finish(self, editor: QWidget) -> None:
        self.commitData.emit(editor)
        self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        value = str(index.data(Qt.ItemDataRole.EditRole) or "")
        if isinstance(editor, QComboBox):
            editor.setCurrentText(value)
        elif isinstance(editor, QPlainTextEdit):
            editor.setPlainText(value)
            editor.selectAll()

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText())
        elif isinstance(editor, QPlainTextEdit):
            model.setData(index, editor.toPlainText())

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: Index) -> None:
        rect = option.rect
        if isinstance(editor, QPlainTextEdit):
            rect = rect.adjusted(0, 0, 0, 3 * option.fontMetrics.lineSpacing())
        editor.setGeometry(rect)


class AddRowDialog(QDialog):
    """Type in one example: its input, expected output, other answers and split."""

    row_ready = Signal(object)  # a dataio.Row

    def __init__(self, split: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a row")
        self.setObjectName("addRowDialog")
        self.input_edit = QPlainTextEdit()
        self.input_edit.setObjectName("newInput")
        self.input_edit.setTabChangesFocus(True)
        self.input_edit.setFixedHeight(self.input_edit.fontMetrics().lineSpacing() * 4 + 12)
        self.output_edit = QLineEdit()
        self.output_edit.setObjectName("newOutput")
        self.answers_edit = QLineEdit()
        self.answers_edit.setPlaceholderText("Optional, separated by |")
        self.split_combo = QComboBox()
        self.split_combo.addItems(SPLITS)
        self.split_combo.setCurrentText(split)
        self.split_combo.setToolTip(SPLITS_EXPLAINED)
        self.problem = QLabel()
        self.problem.setStyleSheet(f"color: {PROBLEM_RED};")
        form = QFormLayout()
        form.addRow("Input:", self.input_edit)
        form.addRow("Expected output:", self.output_edit)
        form.addRow("Also accepted:", self.answers_edit)
        form.addRow("Split:", self.split_combo)
        self.split_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.addButton("Add", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.add)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.resize(520, self.sizeHint().height())

    def add(self) -> None:
        input_text = self.input_edit.toPlainText().strip()
        output = self.output_edit.text().strip()
        if not input_text or not output:
            self.problem.setText("Type both the input and the expected output.")
            return
        others = [a.strip() for a in self.answers_edit.text().split(dataio.ANSWER_SEPARATOR)]
        answers = tuple(dict.fromkeys([output, *(a for a in others if a)]))
        self.row_ready.emit(Row(input_text, output, answers, self.split_combo.currentText()))
        self.accept()


class ResplitDialog(QDialog):
    """Choose the shares of train, dev and test, and a seed, for dealing the rows again."""

    def __init__(self, total: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Re-split the rows")
        self.setObjectName("resplitDialog")
        self.total = total
        intro = QLabel(f"All {total:,} rows are shuffled and dealt again in these "
                       f"proportions. {SPLITS_EXPLAINED}")
        intro.setWordWrap(True)
        self.spins: dict[str, QSpinBox] = {}
        form = QFormLayout()
        for split, share in zip(SPLITS, (70, 15, 15)):
            spin = QSpinBox()
            spin.setRange(0, 100)
            spin.setSuffix(" %")
            spin.setValue(share)
            spin.valueChanged.connect(self._preview)
            self.spins[split] = spin
            form.addRow(f"{split.title()}:", spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 1_000_000)
        self.seed_spin.setToolTip("The same seed deals the rows the same way again.")
        self.seed_spin.valueChanged.connect(self._preview)
        form.addRow("Seed:", self.seed_spin)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.preview = QLabel()
        self.preview.setObjectName("resplitPreview")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.addButton("Re-split…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(buttons)
        self.resize(460, self.sizeHint().height())
        self._preview()

    def shares(self) -> dict[str, float]:
        return {split: float(spin.value()) for split, spin in self.spins.items()}

    def set_shares(self, train: int, dev: int, test: int) -> None:
        for spin, value in zip(self.spins.values(), (train, dev, test)):
            spin.setValue(value)

    def seed(self) -> int:
        return self.seed_spin.value()

    def _preview(self) -> None:
        shares = self.shares()
        if sum(shares.values()) <= 0:
            self.preview.setText("Give at least one split a share above zero.")
            self.ok_button.setEnabled(False)
            return
        counts = Counter(dataio.split_rows(self.total, shares, self.seed()))
        self.preview.setText("Gives " + split_counts_text(dict(counts)).split(": ", 1)[1]
                             + ".")
        self.ok_button.setEnabled(True)


def _title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.15)
    label.setFont(font)
    return label


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
