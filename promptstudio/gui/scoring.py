"""Choosing how answers are scored: a metric, and the labels when the metric needs them.

The same few controls appear on the Task page, where every change is saved, and in the new
project dialog, where they are read when the project is made; both listen to the signals.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from promptstudio.gui.template_editor import PROBLEM_RED
from promptstudio.metrics import METRICS, lacks_labels


def parse_labels(text: str) -> tuple[str, ...]:
    """Labels typed as "positive, negative", each once, in the order typed."""
    return tuple(dict.fromkeys(label.strip() for label in text.split(",") if label.strip()))


class ScoringEditor(QWidget):
    """A metric list with its explanation, and a labels line shown for the label metric."""

    metricChosen = Signal(str)
    labelsEdited = Signal(tuple)
    calibrateToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None, caption: QLabel | None = None) -> None:
        super().__init__(parent)
        self.metric_combo = QComboBox()
        self.metric_combo.setObjectName("metric")
        for metric in METRICS.values():
            self.metric_combo.addItem(metric.name, metric.id)
            self.metric_combo.setItemData(self.metric_combo.count() - 1, metric.explanation,
                                          Qt.ItemDataRole.ToolTipRole)
        self.metric_combo.activated.connect(self._metric_chosen)
        self.metric_help = QLabel()
        self.metric_help.setObjectName("metricHelp")
        self.metric_help.setWordWrap(True)

        self.labels_edit = QLineEdit()
        self.labels_edit.setObjectName("labels")
        self.labels_edit.setPlaceholderText("positive, negative")
        self.labels_edit.editingFinished.connect(self._labels_edited)
        self.labels_help = QLabel()
        self.labels_help.setWordWrap(True)
        self.calibrate_box = QCheckBox("Correct for the model's leaning toward some labels "
                                       "(calibration)")
        self.calibrate_box.setObjectName("calibrate")
        self.calibrate_box.setToolTip(
            "Before choosing, divide each label's likelihood by how likely the model finds "
            "it when the input says nothing at all (\"N/A\", nothing, \"[MASK]\"), so a "
            "label it favours whatever the input is does not win by default (Zhao et al., "
            "Calibrate Before Use). Costs three extra scorings per prompt.")
        self.calibrate_box.toggled.connect(self.calibrateToggled.emit)
        self.labels_row = QWidget()
        labels_layout = QVBoxLayout(self.labels_row)
        labels_layout.setContentsMargins(0, 0, 0, 0)
        labels_layout.addWidget(caption or QLabel("Labels (the answers the model chooses from)"))
        labels_layout.addWidget(self.labels_edit)
        labels_layout.addWidget(self.labels_help)
        labels_layout.addWidget(self.calibrate_box)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.metric_combo)
        layout.addWidget(self.metric_help)
        layout.addSpacing(6)
        layout.addWidget(self.labels_row)
        self._show_metric()

    def chosen_metric(self) -> str:
        return self.metric_combo.currentData()

    def chosen_labels(self) -> tuple[str, ...]:
        return parse_labels(self.labels_edit.text())

    def problem(self) -> str:
        """Why these choices cannot be used yet, or "" when they can."""
        if lacks_labels(self.chosen_metric(), self.chosen_labels()):
            return "Type at least two labels, separated by commas."
        return ""

    def set_scoring(self, metric: str, labels: tuple[str, ...], calibrate: bool = False
                    ) -> None:
        """Show stored choices without announcing them as the user's."""
        self.metric_combo.setCurrentIndex(max(0, self.metric_combo.findData(metric)))
        if not self.labels_edit.hasFocus():
            self.labels_edit.setText(", ".join(labels))
        self.calibrate_box.blockSignals(True)
        self.calibrate_box.setChecked(calibrate)
        self.calibrate_box.blockSignals(False)
        self._show_metric()

    def _metric_chosen(self) -> None:
        self._show_metric()
        self.metricChosen.emit(self.chosen_metric())

    def _labels_edited(self) -> None:
        labels = self.chosen_labels()
        self.labels_edit.setText(", ".join(labels))
        self._show_metric()
        self.labelsEdited.emit(labels)

    def _show_metric(self) -> None:
        metric = METRICS[self.chosen_metric()]
        self.metric_help.setText(metric.explanation)
        self.labels_row.setVisible(metric.needs_labels)
        problem = self.problem()
        if problem:
            self.labels_help.setStyleSheet(f"color: {PROBLEM_RED};")
            self.labels_help.setText(problem)
        else:
            self.labels_help.setStyleSheet("")
            self.labels_help.setText("Separated by commas. Each row's expected output "
                                     "should be one of them.")
