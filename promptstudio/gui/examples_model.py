"""The examples table: a project's rows, read from its database a page at a time.

The model keeps only the ids of the rows it shows (a hundred thousand ints is nothing) and
reads the rows themselves in pages as the view asks for them, keeping the pages it read
last. Every change (an edited cell, added, deleted or re-split rows) goes through the
project first and then onto an undo stack, so Ctrl+Z puts back exactly what was there,
ids and scores included.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QUndoCommand, QUndoStack

from promptstudio import workflows
from promptstudio.dataio import Row
from promptstudio.store.project import ExampleBackup, Project
from promptstudio.store.records import Example

PAGE_SIZE = 256
PAGES_KEPT = 64
SHOWN_CHARACTERS = 400
LARGE_CHANGE = 2_000  # more rows than this changing at once: reset the view instead
COLUMNS = ("input", "output", "split")
HEADERS = {"input": "Input", "output": "Expected output", "split": "Split"}
HEADER_TIPS = {
    "input": "What the model reads.",
    "output": "The right answer. Other accepted answers show when you point at a cell.",
    "split": "train: examples to learn from; dev: used to compare prompts; "
             "test: kept back for a final check.",
}

Index = QModelIndex | QPersistentModelIndex
TOP = QModelIndex()  # the invisible root of a table's rows


class ExamplesModel(QAbstractTableModel):
    """The open project's examples, with an undo stack for every change made through it."""

    changed = Signal()  # rows were changed, added, deleted or moved through this model
    failed = Signal(object)  # the project refused a change: the exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.split: str | None = None
        self.editable = True
        self.undo_stack = QUndoStack(self)
        self._ids: list[int] = []
        self._pages: OrderedDict[int, dict[int, Example]] = OrderedDict()

    # -- what is shown -----------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show another project; its undo history starts empty."""
        self.project = project
        self.undo_stack.clear()
        self.reload()

    def set_split(self, split: str | None) -> None:
        """Show only one split's rows, or every row (None)."""
        if split != self.split:
            self.split = split
            self.reload()

    def reload(self) -> None:
        """Read the rows' ids again, for changes made elsewhere (another page, a run)."""
        self.beginResetModel()
        self._ids = self.project.example_ids(self.split) if self.project else []
        self._pages.clear()
        self.endResetModel()

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, example_id: int) -> int | None:
        row = bisect_left(self._ids, example_id)
        return row if row < len(self._ids) and self._ids[row] == example_id else None

    def example(self, row: int) -> Example | None:
        """The example shown on `row`, read with its page when not read yet."""
        page = row // PAGE_SIZE
        if page not in self._pages:
            ids = self._ids[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
            assert self.project is not None
            self._pages[page] = {e.id: e for e in self.project.examples(ids=ids)}
            if len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        return self._pages[page].get(self._ids[row])

    # -- the Qt model ------------------------------------------------------------------

    def rowCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole,
                        Qt.ItemDataRole.ToolTipRole):
            return None
        example = self.example(index.row())
        if example is None:
            return None
        column = COLUMNS[index.column()]
        text = getattr(example, column)
        if role == Qt.ItemDataRole.EditRole:
            return text
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(example, column)
        return _one_line(text)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[COLUMNS[section]]
            if role == Qt.ItemDataRole.ToolTipRole:
                return HEADER_TIPS[COLUMNS[section]]
        if (orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(self._ids)):
            return str(section + 1)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self.editable:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: Index, value: object, role: int = Qt.ItemDataRole.EditRole
                ) -> bool:
        if (role != Qt.ItemDataRole.EditRole or not index.isValid() or not self.editable
                or self.project is None):
            return False
        column = COLUMNS[index.column()]
        example = self.example(index.row())
        if example is None or str(value).strip() == getattr(example, column):
            return False
        return self.edit(example.id, **{column: str(value)})

    # -- changes, each one undoable -----------------------------------------------------

    def edit(self, example_id: int, **changes: str) -> bool:
        """Change one row's input, output or split. False (and `failed`) when refused."""
        names = {"input": "input", "output": "expected output", "split": "split"}
        what = " and ".join(names[key] for key in changes)
        command = _Edit(self, example_id, changes, f"Edit {what} of row {example_id}")
        return self._push(command)

    def add(self, rows: Sequence[Row], split: str | None = None) -> list[int]:
        """Add rows (each to `split`, or its own); returns their ids."""
        command = _Add(self, rows, split)
        return command.ids if self._push(command) else []

    def record_added(self, ids: Sequence[int], text: str) -> None:
        """Put rows already added (by an import on a worker thread) on the undo stack."""
        self.undo_stack.push(_Added(self, list(ids), text))

    def example_ids(self, rows: Sequence[int]) -> list[int]:
        """The ids of the examples shown at these positions."""
        return sorted({self._ids[row] for row in rows if 0 <= row < len(self._ids)})

    def delete_rows(self, rows: Sequence[int]) -> None:
        """Delete the rows shown at these positions."""
        ids = self.example_ids(rows)
        if ids:
            self._push(_Delete(self, ids))

    def resplit(self, shares: Mapping[str, float], seed: int) -> bool:
        """Deal every row anew to train, dev and test, in these proportions."""
        return self._push(_Resplit(self, dict(shares), seed))

    def _push(self, command: _Change) -> bool:
        """Make the change now, and keep it for undo only if the project accepted it."""
        try:
            command.apply()
        except Exception as exc:  # the project's refusal, in words for the user
            self.failed.emit(exc)
            return False
        self.undo_stack.push(command)
        return True

    def _changed(self, example_ids: Sequence[int] = ()) -> None:
        """Bring the view up to date after a change to the project's rows."""
        assert self.project is not None
        new_ids = self.project.example_ids(self.split)
        self._pages.clear()
        self._move_to(new_ids)
        for example_id in example_ids:
            row = self.row_of(example_id)
            if row is not None:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        self.changed.emit()

    def _move_to(self, new_ids: list[int]) -> None:
        """Remove and insert rows so the view keeps its place; reset for large changes."""
        old_set, new_set = set(self._ids), set(new_ids)
        if len(old_set ^ new_set) > LARGE_CHANGE:
            self.beginResetModel()
            self._ids = new_ids
            self.endResetModel()
            return
        for start, end in reversed(_runs([i not in new_set for i in self._ids])):
            self.beginRemoveRows(QModelIndex(), start, end - 1)
            del self._ids[start:end]
            self.endRemoveRows()
        for start, end in _runs([i not in old_set for i in new_ids]):
            self.beginInsertRows(QModelIndex(), start, end - 1)
            self._ids[start:start] = new_ids[start:end]
            self.endInsertRows()


def _runs(marked: Sequence[bool]) -> list[tuple[int, int]]:
    """The [start, end) ranges of consecutive marked positions, in order."""
    runs, start = [], None
    for position, flag in enumerate(marked):
        if flag and start is None:
            start = position
        elif not flag and start is not None:
            runs.append((start, position))
            start = None
    if start is not None:
        runs.append((start, len(marked)))
    return runs


def _one_line(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\n", " ⏎ ")
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def _tooltip(example: Example, column: str) -> str:
    if column == "split":
        return HEADER_TIPS["split"]
    text = getattr(example, column)
    if len(text) > 2_000:
        text = text[:2_000] + "…"
    if column == "output" and len(example.answers) > 1:
        others = " | ".join(a for a in example.answers if a != example.output)
        text += f"\n\nAlso accepted: {others}"
    return text


# -- the undo stack's commands ------------------------------------------------------------


class _Change(QUndoCommand):
    """A change made once by `apply`, then undone and redone from the undo stack.

    The stack calls `redo` when the command is pushed; the change is already made by then,
    so that first call does nothing.
    """

    def __init__(self, model: ExamplesModel, text: str) -> None:
        super().__init__(text)
        self.model = model
        self._pushed = False

    @property
    def project(self) -> Project:
        assert self.model.project is not None
        return self.model.project

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError

    def touched(self) -> Sequence[int]:
        return ()

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True
            self.model._changed(self.touched())
            return
        self._guarded(self.apply)

    def undo(self) -> None:
        self._guarded(self.revert)

    def _guarded(self, change: Callable[[], None]) -> None:
        try:
            change()
        except Exception as exc:
            self.model.failed.emit(exc)
        self.model._changed(self.touched())


class _Edit(_Change):
    def __init__(self, model: ExamplesModel, example_id: int, changes: dict[str, str],
                 text: str) -> None:
        super().__init__(model, text)
        self.example_id = example_id
        self.changes = changes
        self.backup = ExampleBackup()

    def apply(self) -> None:
        self.backup = self.project.update_example(self.example_id, **self.changes)

    def revert(self) -> None:
        self.project.restore_examples(self.backup)

    def touched(self) -> Sequence[int]:
        return (self.example_id,)


class _Added(_Change):
    """Rows already in the project; undo deletes them, redo brings them back."""

    def __init__(self, model: ExamplesModel, ids: list[int], text: str) -> None:
        super().__init__(model, text)
        self.ids = ids
        self.backup = ExampleBackup()

    def apply(self) -> None:
        self.project.restore_examples(self.backup)

    def revert(self) -> None:
        self.backup = self.project.delete_examples(self.ids)

    def touched(self) -> Sequence[int]:
        return self.ids


class _Add(_Added):
    def __init__(self, model: ExamplesModel, rows: Sequence[Row], split: str | None) -> None:
        super().__init__(model, [], "Add a row" if len(rows) == 1 else f"Add {len(rows)} rows")
        self.rows = list(rows)
        self.split = split

    def apply(self) -> None:
        if self.ids:
            super().apply()
        else:
            self.ids = self.project.add_examples(self.rows, self.split, source="typed in")


class _Delete(_Change):
    def __init__(self, model: ExamplesModel, ids: list[int]) -> None:
        text = "Delete a row" if len(ids) == 1 else f"Delete {len(ids)} rows"
        super().__init__(model, text)
        self.ids = ids
        self.backup = ExampleBackup()

    def apply(self) -> None:
        self.backup = self.project.delete_examples(self.ids)

    def revert(self) -> None:
        self.project.restore_examples(self.backup)


class _Resplit(_Change):
    def __init__(self, model: ExamplesModel, shares: dict[str, float], seed: int) -> None:
        super().__init__(model, "Re-split the rows")
        self.shares = shares
        self.seed = seed
        self.before: dict[int, str] = {}

    def apply(self) -> None:
        self.before = self.project.example_splits()
        workflows.resplit(self.project, self.shares, self.seed)

    def revert(self) -> None:
        self.project.set_splits(self.before)
