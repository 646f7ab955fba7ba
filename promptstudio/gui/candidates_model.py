"""The candidate table: every prompt the shown runs tried, with its scores.

`CandidatesModel` lists `reports.CandidateResult`s, which the results page keeps up to date
from the run's events; the page tells the model which rows appeared or changed, at most a
few times a second. `CandidatesFilter` sorts on raw numbers and filters by words in the
instruction and by the way a candidate was made.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QFont

from promptstudio.reports import CandidateResult

SORT_ROLE = Qt.ItemDataRole.UserRole
CANDIDATE_ROLE = Qt.ItemDataRole.UserRole + 1

Index = QModelIndex | QPersistentModelIndex
TOP = QModelIndex()

COLUMNS = ("#", "Instruction", "Dev", "Test", "Train", "Best", "Made by", "Step", "From",
           "Words", "Tokens", "Run")
(ID, INSTRUCTION, DEV, TEST, TRAIN, BEST, MADE_BY, STEP, FROM, WORDS, TOKENS,
 RUN) = range(len(COLUMNS))
SCORE_COLUMNS = {DEV: "dev", TEST: "test", TRAIN: "train"}
NUMBER_COLUMNS = {ID, RUN, STEP, DEV, TEST, TRAIN, WORDS, TOKENS}

HEADER_TIPS = {
    ID: "The candidate's number in this project.",
    RUN: "The run that made it.",
    STEP: "The step (round) of the run that made it.",
    MADE_BY: "How the candidate was made.",
    FROM: "The candidates it was made from.",
    DEV: "Mean score on the dev examples, which check the best prompt (1 = all right). "
         "Only the search's best prompt, the start and the prompts that check it are "
         "scored on all of dev; ProTeGi also scores its prompts on a third of it. A count "
         "in brackets says a score covers fewer rows than the table's fullest score in that "
         "column.",
    TEST: "Score on the held-out test examples; only the run's best prompt and the "
          "starting prompt are tested.",
    TRAIN: "Mean score on the training examples it was tried on during the search; a "
           "count in brackets as for dev.",
    WORDS: "Length of the instruction in words.",
    TOKENS: "Tokens the task model reads for one example with this prompt (its "
            "instruction, its examples and the input).",
    BEST: "The run's pick, and the prompt you marked as best (export uses yours).",
    INSTRUCTION: "The instruction; select a row to see the whole prompt.",
}


class CandidatesModel(QAbstractTableModel):
    """Candidates of the shown runs, one per row, in the order they were added."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[CandidateResult] = []
        self._row_of: dict[int, int] = {}
        self._run_picks: set[int] = set()
        self._chosen_id: int | None = None
        self._sort_column: int | None = None
        self._descending = False
        self._fullest: dict[str, int] = {}

    # -- what the page tells it -------------------------------------------------------

    def set_candidates(self, candidates: Iterable[CandidateResult], run_picks: Iterable[int],
                       chosen_id: int | None) -> None:
        self.beginResetModel()
        self._run_picks, self._chosen_id = set(run_picks), chosen_id
        self._rows = self._ordered(candidates)
        self._row_of = {c.id: row for row, c in enumerate(self._rows)}
        self._count_fullest()
        self.endResetModel()

    def add(self, candidates: Sequence[CandidateResult]) -> None:
        fresh = [c for c in candidates if c.id not in self._row_of]
        if not fresh:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        for candidate in fresh:
            self._row_of[candidate.id] = len(self._rows)
            self._rows.append(candidate)
        self.endInsertRows()
        if self._count_fullest():
            self.refresh_all()
        self.resort()

    def refresh(self, candidate_ids: Iterable[int]) -> None:
        """Say that these candidates' scores changed: one signal per block of neighbouring
        rows, so that a sorted view re-sorts those rows only."""
        if self._count_fullest():
            self.refresh_all()
            return
        blocks: list[list[int]] = []
        for row in sorted({self._row_of[i] for i in candidate_ids if i in self._row_of}):
            if blocks and row == blocks[-1][-1] + 1:
                blocks[-1].append(row)
            else:
                blocks.append([row])
        for block in blocks:
            self.dataChanged.emit(self.index(block[0], 0),
                                  self.index(block[-1], len(COLUMNS) - 1))
        self.resort()

    def refresh_all(self) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._rows) - 1, len(COLUMNS) - 1))
        self.resort()

    def widest_score(self, split: str) -> str:
        """A text as wide as the widest score of `split` the table shows."""
        fullest = self._fullest.get(split, 0)
        partial = any(0 < c.examples(split) < fullest for c in self._rows)
        return f"0.00 ({fullest})" if partial else "0.00"

    def _count_fullest(self) -> bool:
        """Note the most rows any listed score of each split covers; True if that changed
        (then every partial score's bracketed count may have changed too)."""
        fullest = {split: max((c.examples(split) for c in self._rows), default=0)
                   for split in SCORE_COLUMNS.values()}
        changed, self._fullest = fullest != self._fullest, fullest
        return changed

    def set_marks(self, run_picks: Iterable[int], chosen_id: int | None) -> None:
        changed = self._run_picks ^ set(run_picks) | {self._chosen_id, chosen_id}
        self._run_picks, self._chosen_id = set(run_picks), chosen_id
        self.refresh(i for i in changed if i is not None)

    # -- sorting, done here in one Python sort rather than row by row by the proxy -------

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column = column if 0 <= column < len(COLUMNS) else None
        self._descending = order == Qt.SortOrder.DescendingOrder
        self.resort()

    def resort(self) -> None:
        """Put the rows back in the chosen order; selections follow their candidates."""
        ordered = self._ordered(self._rows)
        if ordered == self._rows:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        kept = [(self._rows[i.row()].id, i.column()) for i in persistent]
        self._rows = ordered
        self._row_of = {c.id: row for row, c in enumerate(self._rows)}
        self.changePersistentIndexList(
            persistent, [self.index(self._row_of[i], column) for i, column in kept])
        self.layoutChanged.emit()

    def _ordered(self, candidates: Iterable[CandidateResult]) -> list[CandidateResult]:
        """By the sort column (ties: oldest first), else as the runs made them."""
        ordered = sorted(candidates, key=lambda c: (c.run_id or 0, c.id))
        if self._sort_column is None:
            return ordered
        column = self._sort_column

        def key(candidate: CandidateResult) -> Any:
            return self._sort_value(candidate, column)

        return sorted(ordered, key=key, reverse=self._descending)

    def candidate(self, row: int) -> CandidateResult:
        return self._rows[row]

    def row_of(self, candidate_id: int) -> int | None:
        return self._row_of.get(candidate_id)

    def candidates(self) -> list[CandidateResult]:
        return list(self._rows)

    # -- QAbstractTableModel ----------------------------------------------------------

    def rowCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = TOP) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        candidate, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(candidate, column)
        if role == SORT_ROLE:
            return self._sort_value(candidate, column)
        if role == CANDIDATE_ROLE:
            return candidate.id
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(candidate, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = (Qt.AlignmentFlag.AlignRight if column in NUMBER_COLUMNS
                    else Qt.AlignmentFlag.AlignLeft)
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and candidate.id == self._chosen_id:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def _text(self, candidate: CandidateResult, column: int) -> str:
        if column in SCORE_COLUMNS:
            split = SCORE_COLUMNS[column]
            score = candidate.score(split)
            if score is None:
                return ""
            count = candidate.examples(split)
            partial = count < self._fullest.get(split, 0)
            return f"{score:.2f} ({count})" if partial else f"{score:.2f}"
        if column == TOKENS:
            return "" if candidate.prompt_tokens is None else f"{candidate.prompt_tokens:.0f}"
        if column == BEST:
            return self._marks(candidate)
        if column == INSTRUCTION:
            return " ".join(candidate.instruction.split()) or "(no instruction)"
        return {ID: f"{candidate.id}", RUN: f"{candidate.run_id or ''}",
                STEP: f"{candidate.step}", MADE_BY: candidate.made_by,
                FROM: ", ".join(f"#{p}" for p in candidate.parent_ids[:3])
                + (" …" if len(candidate.parent_ids) > 3 else ""),
                WORDS: f"{candidate.words}"}[column]

    def _marks(self, candidate: CandidateResult) -> str:
        marks = []
        if candidate.id == self._chosen_id:
            marks.append("★ yours")
        if candidate.id in self._run_picks:
            marks.append("run's pick")
        return ", ".join(marks)

    def _sort_value(self, candidate: CandidateResult, column: int) -> object:
        if column in SCORE_COLUMNS:
            score = candidate.score(SCORE_COLUMNS[column])
            return -1.0 if score is None else score
        if column == TOKENS:
            return candidate.prompt_tokens or 0.0
        if column == BEST:
            return (2 if candidate.id == self._chosen_id else 0) + (
                1 if candidate.id in self._run_picks else 0)
        if column in (ID, RUN, STEP, WORDS):
            return {ID: candidate.id, RUN: candidate.run_id or 0, STEP: candidate.step,
                    WORDS: candidate.words}[column]
        return self._text(candidate, column).casefold()

    def _tip(self, candidate: CandidateResult, column: int) -> str | None:
        if column in SCORE_COLUMNS:
            split = SCORE_COLUMNS[column]
            score = candidate.score(split)
            if score is None:
                return f"Not scored on {split} examples."
            count = candidate.examples(split)
            return f"{score:.3f} on {count} {split} example{'s' if count != 1 else ''}"
        if column == INSTRUCTION:
            return textwrap.fill(candidate.instruction, 80)
        if column == FROM and candidate.parent_ids:
            return "Made from " + ", ".join(f"#{p}" for p in candidate.parent_ids)
        return None


class CandidatesFilter(QSortFilterProxyModel):
    """Keeps the rows whose instruction (or number) holds the search text and, if one is
    picked, that were made in one way. Sorting is passed on to `CandidatesModel`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._operation: str | None = None
        self.setDynamicSortFilter(True)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if isinstance(model, CandidatesModel):
            model.sort(column, order)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_operation(self, operation: str | None) -> None:
        self.beginFilterChange()
        self._operation = operation or None
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, CandidatesModel) or source_row >= model.rowCount():
            return True
        candidate = model.candidate(source_row)
        if self._operation is not None and candidate.operation != self._operation:
            return False
        if not self._text:
            return True
        return (self._text in candidate.instruction.casefold()
                or self._text.lstrip("#") == str(candidate.id))
