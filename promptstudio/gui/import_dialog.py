"""Bringing examples in: from a file or pasted rows, with a preview and a column mapping.

Reading happens in two steps, as in `dataio`: the file (or pasted text) becomes a table,
shown as it is; then the user says which column is the input, which the expected output,
and optionally which holds other accepted answers and the split. Every choice updates a
dry run of the import, so the user sees how many rows will arrive, where they go and what
will be skipped before anything is written. The same panel serves a new project and
"import more rows" on the data page.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from promptstudio import dataio, workflows
from promptstudio.dataio import DataError, ImportResult, Table
from promptstudio.errors import user_message
from promptstudio.gui import messages
from promptstudio.gui.state import AppState
from promptstudio.gui.workers import Jobs, JobState
from promptstudio.store.project import Project

PREVIEW_ROWS = 100
NO_COLUMN = "(none)"
FILE_FILTER = "Examples (*.csv *.tsv *.txt *.jsonl *.ndjson *.json);;All files (*)"
INPUT_GUESSES = ("input", "question", "text", "prompt", "review", "sentence", "query",
                 "source", "word", "x")
OUTPUT_GUESSES = ("output", "answer", "label", "target", "expected", "response", "class",
                  "category", "plural", "y")
SPLIT_CHOICES = (
    (None, "Deal them at random: 80% train, 20% dev"),
    ("train", "All in train (examples to learn from)"),
    ("dev", "All in dev (to compare prompts on)"),
    ("test", "All in test (kept back for a final check)"),
)
SPLITS_EXPLAINED = ("Train rows are shown to the optimizer and used as worked examples; dev "
                    "rows score the prompts it tries; test rows are kept back for a final, "
                    "honest check.")
ERROR_RED = "#b3261e"
ROLE_TINT = QColor(29, 111, 184, 30)

Index = QModelIndex | QPersistentModelIndex
TOP = QModelIndex()
DETAIL_ROLE = Qt.ItemDataRole.UserRole + 1


class TwoLineDelegate(QStyledItemDelegate):
    """Draws an item as its name in bold over a quieter line of details (DETAIL_ROLE)."""

    PADDING = 6

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        height = option.fontMetrics.height()
        return QSize(160, 2 * height + 3 * self.PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter,
                              option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        group = QPalette.ColorGroup.Normal
        text_role = (QPalette.ColorRole.HighlightedText if selected
                     else QPalette.ColorRole.Text)
        rect = option.rect.adjusted(self.PADDING + 2, self.PADDING, -self.PADDING, 0)
        line = option.fontMetrics.height()
        painter.save()
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(option.palette.color(group, text_role))
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        painter.drawText(QRect(rect.left(), rect.top(), rect.width(), line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight,
                                                          rect.width()))
        painter.setFont(option.font)
        detail_colour = option.palette.color(group, text_role)
        if not selected:
            detail_colour = option.palette.color(group, QPalette.ColorRole.PlaceholderText)
        painter.setPen(detail_colour)
        detail = str(index.data(DETAIL_ROLE) or "")
        painter.drawText(QRect(rect.left(), rect.top() + line + self.PADDING // 2,
                               rect.width(), line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         option.fontMetrics.elidedText(detail, Qt.TextElideMode.ElideRight,
                                                       rect.width()))
        painter.restore()


class PreviewModel(QAbstractTableModel):
    """The first rows of a table as read, with the chosen role of each column in its header."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.table: Table | None = None
        self.roles: dict[str, str] = {}

    def set_table(self, table: Table | None) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def set_roles(self, roles: dict[str, str]) -> None:
        """Which column plays which part, as {column name: "input"}."""
        self.roles = roles
        if self.rowCount() and self.columnCount():
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.columnCount() - 1)
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1,
                                                               self.columnCount() - 1))

    def rowCount(self, parent: Index = TOP) -> int:
        if parent.isValid() or self.table is None:
            return 0
        return min(len(self.table.records), PREVIEW_ROWS)

    def columnCount(self, parent: Index = TOP) -> int:
        if parent.isValid() or self.table is None:
            return 0
        return len(self.table.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if self.table is None or not index.isValid():
            return None
        column = self.table.columns[index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and column in self.roles:
            return ROLE_TINT
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        value = self.table.records[index.row()].get(column)
        text = "" if value is None else value if isinstance(value, str) else str(value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return text[:2_000]
        return text.replace("\n", " ⏎ ")[:200]

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if self.table is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            if 0 <= section < self.rowCount():
                return str(self.table.lines[section])
            return None
        if not 0 <= section < len(self.table.columns):
            return None
        column = self.table.columns[section]
        role_name = self.roles.get(column)
        return f"{column}\n→ {role_name}" if role_name else f"{column}\n"


class RowsSource(QWidget):
    """Where new rows come from (a file or pasted text) and which column is which.

    `imported` holds the rows a dry run read with the current choices (None while nothing
    usable is chosen), and `error` the reason when the choices cannot work.
    """

    changed = Signal()

    def __init__(self, jobs: Jobs, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self.into: Project | None = None
        """The project the rows go into, to count those it has already; None: a new one."""
        self.table: Table | None = None
        self.imported: ImportResult | None = None
        self.error = ""
        self.loading = False
        self._reading = 0  # the latest file read; older reads that finish late are ignored
        self._path: Path | None = None
        self._file_read: tuple[Table | None, str] = (None, "")

        self.from_file = QRadioButton("From a file")
        self.from_paste = QRadioButton("Paste rows")
        self.from_file.setChecked(True)
        modes = QButtonGroup(self)
        modes.addButton(self.from_file)
        modes.addButton(self.from_paste)
        mode_row = QHBoxLayout()
        mode_row.addWidget(self.from_file)
        mode_row.addWidget(self.from_paste)
        mode_row.addStretch(1)

        self.choose_button = QPushButton("Choose a file…")
        self.choose_button.setObjectName("chooseFile")
        self.choose_button.clicked.connect(self.choose_file)
        self.file_label = QLabel("No file chosen yet.")
        self.file_label.setObjectName("fileLabel")
        file_hint = QLabel("CSV, TSV, JSON Lines or JSON, with the column names in the first "
                           "row. From a spreadsheet, use Save As “CSV UTF-8”.")
        file_hint.setWordWrap(True)
        file_page = QWidget()
        file_layout = QGridLayout(file_page)
        file_layout.setContentsMargins(0, 0, 0, 0)
        file_layout.addWidget(self.choose_button, 0, 0)
        file_layout.addWidget(self.file_label, 0, 1)
        file_layout.addWidget(file_hint, 1, 0, 1, 2)
        file_layout.setColumnStretch(1, 1)

        self.paste_edit = QPlainTextEdit()
        self.paste_edit.setObjectName("pasteEdit")
        self.paste_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.paste_edit.setPlaceholderText(
            "Copy cells from a spreadsheet and paste them here, with the column names on the "
            "first line, for example:\n\ninput\toutput\nThe kettle works well.\tpositive\n"
            "It broke in a week.\tnegative")
        self.paste_edit.setMaximumHeight(130)
        self._paste_timer = QTimer(self, singleShot=True, interval=400)
        self._paste_timer.timeout.connect(self._read_pasted)
        self.paste_edit.textChanged.connect(self._paste_timer.start)

        self.file_page = file_page
        self.paste_edit.hide()
        self.from_file.toggled.connect(self._mode_changed)

        self.input_combo = QComboBox()
        self.output_combo = QComboBox()
        self.answers_combo = QComboBox()
        self.split_combo = QComboBox()
        for name, combo in (("inputColumn", self.input_combo),
                            ("outputColumn", self.output_combo),
                            ("answersColumn", self.answers_combo),
                            ("splitColumn", self.split_combo)):
            combo.setObjectName(name)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.setMinimumContentsLength(10)
            combo.currentIndexChanged.connect(lambda _: self._dry_run())
        self.answers_combo.setToolTip("A column of other answers that also count as right, "
                                      "separated by “|”.")
        self.split_combo.setToolTip(SPLITS_EXPLAINED)
        mapping = QGridLayout()
        mapping.addWidget(QLabel("Input (what the model reads):"), 0, 0)
        mapping.addWidget(self.input_combo, 0, 1)
        mapping.addWidget(QLabel("Expected output (the right answer):"), 0, 2)
        mapping.addWidget(self.output_combo, 0, 3)
        mapping.addWidget(QLabel("Other accepted answers (optional):"), 1, 0)
        mapping.addWidget(self.answers_combo, 1, 1)
        mapping.addWidget(QLabel("Split (optional):"), 1, 2)
        mapping.addWidget(self.split_combo, 1, 3)
        mapping.setColumnStretch(1, 1)
        mapping.setColumnStretch(3, 1)

        self.preview_model = PreviewModel(self)
        self.preview = QTableView()
        self.preview.setObjectName("preview")
        self.preview.setModel(self.preview_model)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview.setWordWrap(False)
        self.preview.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.preview.horizontalHeader().setStretchLastSection(True)
        self.preview.verticalHeader().setDefaultSectionSize(
            self.preview.fontMetrics().height() + 8)
        self.preview.setMinimumHeight(150)

        self.put_combo = QComboBox()
        self.put_combo.setObjectName("putRowsIn")
        for split, text in SPLIT_CHOICES:
            self.put_combo.addItem(text, split)
        self.put_combo.setToolTip(SPLITS_EXPLAINED)
        self.put_combo.currentIndexChanged.connect(lambda _: self._dry_run())
        put_row = QHBoxLayout()
        put_row.addWidget(QLabel("Put the rows in:"))
        put_row.addWidget(self.put_combo, 1)

        self.report_label = QLabel()
        self.report_label.setObjectName("importReport")
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.mapping_title = section("Which column is which?")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(mode_row)
        layout.addWidget(self.file_page)
        layout.addWidget(self.paste_edit)
        layout.addWidget(self.mapping_title)
        layout.addLayout(mapping)
        layout.addWidget(self.preview, 1)
        layout.addLayout(put_row)
        layout.addWidget(self.report_label)
        self._fill_columns()
        self._dry_run()

    # -- choosing the rows ---------------------------------------------------------------

    @property
    def source(self) -> str:
        """Where the rows came from, as stored with each row."""
        if self.from_paste.isChecked():
            return dataio.PASTED_TEXT
        return str(self._path) if self._path else ""

    @property
    def split(self) -> str | None:
        return self.put_combo.currentData()

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file of examples",
                                              str(self._path.parent if self._path else ""),
                                              FILE_FILTER)
        if path:
            self.load_file(path)

    def load_file(self, path: str | Path) -> None:
        """Read a file on a worker thread; the preview fills in when it is read."""
        self.from_file.setChecked(True)
        self._path = Path(path)
        self._reading += 1
        reading = self._reading
        self.loading = True
        self.file_label.setText(f"Reading {self._path.name}…")
        self._set_table(None, "")
        name = self._path.name

        def finish(table: Table | None, error: str, label: str) -> None:
            if isValid(self) and reading == self._reading:  # not closed, not superseded
                self.loading = False
                self._file_read = (table, error)
                self.file_label.setText(label)
                if self.from_file.isChecked():
                    self._set_table(table, error)

        def done(table: object) -> None:
            assert isinstance(table, Table)
            finish(table, "", f"{name} — {_rows(len(table.records))}")

        def failed(exc: BaseException) -> None:
            finish(None, user_message(exc), name)

        self.changed.emit()
        self._jobs.start(f"Reading {self._path.name}", lambda _: dataio.read_table(path),
                         on_done=done, on_error=failed)

    def set_pasted_text(self, text: str) -> None:
        """Use pasted rows (read at once, not after the usual pause in typing)."""
        self.from_paste.setChecked(True)
        self.paste_edit.setPlainText(text)
        self._paste_timer.stop()
        self._read_pasted()

    def _read_pasted(self) -> None:
        text = self.paste_edit.toPlainText()
        if not text.strip():
            self._set_table(None, "")
            return
        try:
            self._set_table(dataio.parse_pasted(text), "")
        except DataError as exc:
            self._set_table(None, str(exc))

    def _mode_changed(self) -> None:
        self.file_page.setVisible(self.from_file.isChecked())
        self.paste_edit.setVisible(self.from_paste.isChecked())
        if self.from_paste.isChecked():
            self.paste_edit.setFocus()
            self._read_pasted()
        else:
            self._set_table(*self._file_read)

    def _set_table(self, table: Table | None, error: str) -> None:
        self.table = table
        self.preview_model.set_table(table)
        self._fill_columns()
        self._dry_run(error)
        if table is not None:
            self.preview.resizeColumnsToContents()
            for column in range(self.preview_model.columnCount()):
                self.preview.setColumnWidth(column, min(self.preview.columnWidth(column), 320))

    def _fill_columns(self) -> None:
        columns = self.table.columns if self.table else []
        guesses = (_guess(columns, INPUT_GUESSES, 0), _guess(columns, OUTPUT_GUESSES, 1),
                   "answers" if "answers" in columns else NO_COLUMN,
                   "split" if "split" in columns else NO_COLUMN)
        combos = (self.input_combo, self.output_combo, self.answers_combo, self.split_combo)
        for combo, guess, optional in zip(combos, guesses, (False, False, True, True)):
            combo.blockSignals(True)
            combo.clear()
            if optional:
                combo.addItem(NO_COLUMN)
            combo.addItems(columns)
            combo.setCurrentText(guess)
            combo.setEnabled(bool(columns))
            combo.blockSignals(False)

    # -- the dry run ---------------------------------------------------------------------

    def mapping(self) -> dict[str, str | None]:
        """The column chosen for each part: input, output, answers and split."""
        def chosen(combo: QComboBox) -> str | None:
            text = combo.currentText()
            return None if text in ("", NO_COLUMN) else text

        return {"input": chosen(self.input_combo), "output": chosen(self.output_combo),
                "answers": chosen(self.answers_combo), "split": chosen(self.split_combo)}

    def set_mapping(self, input: str, output: str, answers: str | None = None,
                    split: str | None = None) -> None:
        """Choose the columns (what the user does with the four lists)."""
        for combo, name in ((self.input_combo, input), (self.output_combo, output),
                            (self.answers_combo, answers or NO_COLUMN),
                            (self.split_combo, split or NO_COLUMN)):
            combo.blockSignals(True)
            combo.setCurrentText(name)
            combo.blockSignals(False)
        self._dry_run()

    def _dry_run(self, error: str = "") -> None:
        self.imported = None
        self.error = error
        mapping = self.mapping()
        self.preview_model.set_roles({column: role for role, column in (
            ("input", mapping["input"]), ("expected output", mapping["output"]),
            ("other answers", mapping["answers"]), ("split", mapping["split"])) if column})
        first_choice = ("As the split column says, if every row has one; else 80% train, "
                        "20% dev" if mapping["split"] else SPLIT_CHOICES[0][1])
        self.put_combo.setItemText(0, first_choice)
        if self.table is not None and not self.error:
            self.error, self.imported = self._read_rows(self.table, mapping)
        self._show_report()
        self.changed.emit()

    def _read_rows(self, table: Table, mapping: dict[str, str | None]
                   ) -> tuple[str, ImportResult | None]:
        if mapping["input"] == mapping["output"]:
            return ("The input and the expected output are the same column. Choose the "
                    "column that holds the right answers as the expected output."), None
        if mapping["answers"] is None and "answers" in table.columns:
            # to_rows would use a column named "answers" on its own; the user said no.
            table = Table([c for c in table.columns if c != "answers"], table.records,
                          table.source, table.lines)
        try:
            imported = dataio.to_rows(table, mapping["input"] or "", mapping["output"] or "",
                                      mapping["answers"], mapping["split"])
        except DataError as exc:
            return str(exc), None
        if not imported.rows:
            return ("There is nothing to import: every row's input is empty. Choose the "
                    "column that holds the inputs."), None
        return "", imported

    def _show_report(self) -> None:
        if self.error:
            self.report_label.setStyleSheet(f"color: {ERROR_RED};")
            self.report_label.setText(self.error)
        elif self.imported is not None:
            name = Path(self.source).name if self.source != dataio.PASTED_TEXT else self.source
            report = workflows.plan_import(self.imported, name, split=self.split,
                                           project=self.into)
            self.report_label.setStyleSheet("")
            self.report_label.setText(report.describe().replace("Imported", "Ready to import",
                                                                1))
        else:
            self.report_label.setStyleSheet("")
            self.report_label.setText("Choose a file above." if self.from_file.isChecked()
                                      else "Paste your rows above.")

    @property
    def ready(self) -> bool:
        return self.imported is not None and not self.loading


class ImportDialog(QDialog):
    """Import more rows into the open project; the data page makes the import undoable."""

    imported = Signal(object, list)  # the ImportReport, and the new rows' ids

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName("importDialog")
        name = state.project.name if state.project else ""
        self.setWindowTitle(f"Import more rows into {name}")
        self.source = RowsSource(state.jobs)
        self.source.into = state.project
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setObjectName("importButton")
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)
        self.source.changed.connect(self._update_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source, 1)
        layout.addWidget(self.buttons)
        self.resize(780, 600)
        self.busy = False
        self._update_button()

    def reject(self) -> None:
        if not self.busy:  # an import under way finishes; the dialog closes when it has
            super().reject()

    def _update_button(self) -> None:
        self.import_button.setEnabled(self.source.ready and not self.busy)

    def start_import(self) -> None:
        project = self.state.project
        imported = self.source.imported
        if project is None or imported is None:
            return
        source, split = self.source.source, self.source.split
        self.import_button.setEnabled(False)
        self.import_button.setText("Importing…")
        self.busy = True

        def work(_: JobState) -> tuple:
            try:
                return workflows.add_rows(project, imported, source, split=split)
            finally:
                project.close()  # this worker thread's connection only

        def done(result: object) -> None:
            self.busy = False
            report, ids = result  # type: ignore[misc]
            self.imported.emit(report, ids)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.busy = False
            self.import_button.setText("Import")
            self._update_button()
            messages.show_error(self, exc)

        self.state.jobs.start("Importing rows", work, on_done=done, on_error=failed)


def _guess(columns: list[str], names: tuple[str, ...], position: int) -> str:
    lowered = {column.lower(): column for column in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    if not columns:
        return ""
    return columns[min(position, len(columns) - 1)]


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def section(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
