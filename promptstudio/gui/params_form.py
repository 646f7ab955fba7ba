"""Every setting of one optimization method, editable, beside the paper's default.

The form is built from the method itself: its preset gives the settings and their types,
`method.paper` the defaults to compare with, and `optimize.describe` the words. A setting
changed from the preset shows its label in bold, so the user sees what they departed from.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from promptstudio.optimize.method import Method, Setting, setting

LARGEST = 10_000_000


def notice_label(object_name: str, text: str = "") -> QLabel:
    """A banner that asks for attention (a run locks the page; scores are from earlier
    settings): wrapped, on a pale yellow band, hidden until there is something to say."""
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setStyleSheet("padding: 4px 8px; background: #fff4d6; color: #5c4400;")
    label.hide()
    return label


def hint_label(text: str = "") -> QLabel:
    """Secondary text: smaller, in the palette's placeholder colour, wrapped."""
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    palette = label.palette()
    palette.setColor(label.foregroundRole(), palette.color(palette.ColorRole.PlaceholderText))
    label.setPalette(palette)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.92)
    label.setFont(font)
    return label


def shown(value: object) -> str:
    """A setting's value as the user reads and writes it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if value == "":
        return "(built in)"
    return str(value)


class _Field:
    """One setting's editor: reads and writes the setting's value in its own type."""

    def __init__(self, widget: QWidget, read: Callable[[], object],
                 write: Callable[[object], None]) -> None:
        self.widget, self.read, self.write = widget, read, write


def _editor(value: object, setting: Setting, changed: Callable[..., None]) -> _Field:
    if setting.choices:
        combo = QComboBox()
        combo.addItems(list(setting.choices))
        combo.currentTextChanged.connect(changed)
        return _Field(combo, combo.currentText, lambda v: combo.setCurrentText(str(v)))
    if isinstance(value, bool):
        box = QCheckBox()
        box.toggled.connect(changed)
        return _Field(box, box.isChecked, lambda v: box.setChecked(bool(v)))
    if isinstance(value, int):
        spin = QSpinBox()
        spin.setRange(0, LARGEST)
        spin.setGroupSeparatorShown(True)
        spin.valueChanged.connect(changed)
        return _Field(spin, spin.value, lambda v: spin.setValue(int(v)))  # type: ignore[arg-type]
    if isinstance(value, float):
        real = QDoubleSpinBox()
        real.setRange(0.0, 1.0 if 0.0 <= value <= 1.0 else float(LARGEST))
        real.setDecimals(2)
        real.setSingleStep(0.05)
        real.valueChanged.connect(changed)
        return _Field(real, real.value, lambda v: real.setValue(float(v)))  # type: ignore[arg-type]
    if isinstance(value, list):
        line = QLineEdit()
        line.setPlaceholderText("numbers separated by commas")
        line.textChanged.connect(changed)
        return _Field(line, lambda: _numbers(line.text(), setting.label),
                      lambda v: line.setText(shown(v)))
    text = QPlainTextEdit()
    text.setPlaceholderText("Empty: the built-in one")
    text.setTabChangesFocus(True)
    text.setFixedHeight(text.fontMetrics().lineSpacing() * 4 + 12)
    text.textChanged.connect(changed)
    return _Field(text, text.toPlainText, lambda v: text.setPlainText(str(v)))


def _numbers(text: str, label: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"“{label}” takes whole numbers separated by commas, "
                         f"such as 4, 8, 16; not “{text}”.") from None


class ParamsForm(QWidget):
    """The settings of the chosen method and preset; `overrides()` is what the user changed."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._outer = QVBoxLayout(self)
        self._outer.setContentsMargins(0, 0, 0, 0)
        self._body: QWidget | None = None
        self.method: Method | None = None
        self.preset = "quick"
        self.fields: dict[str, _Field] = {}
        self.labels: dict[str, QLabel] = {}
        self._filling = False

    def show_method(self, method: Method, preset: str) -> None:
        """Rebuild the form for `method`, filled with `preset`'s values."""
        self.method, self.preset = method, preset
        self._clear()
        self._body = QWidget()
        self.grid = QGridLayout(self._body)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(12)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(1, 1)
        self._outer.addWidget(self._body)
        params = method.presets[preset]
        row = 0
        heading = "In the paper" if method.paper else ""
        for column, text in ((0, "Setting"), (1, "Value"), (2, heading)):
            title = QLabel(f"<b>{text}</b>")
            self.grid.addWidget(title, row, column)
        row += 1
        if not method.paper:
            self.grid.addWidget(hint_label(
                "No paper defines this method; its settings are PromptStudio's own."),
                row, 0, 1, 3)
            row += 1
        for name, value in params.items():
            described = setting(method.name, name)
            label = QLabel(described.label)
            label.setToolTip(described.text)
            field = _editor(value, described, lambda *_, n=name: self._edited(n))
            field.widget.setToolTip(described.text)
            field.widget.setObjectName(f"param_{name}")
            label.setBuddy(field.widget)
            paper = hint_label(shown(method.paper[name]) if name in method.paper else "")
            paper.setWordWrap(False)
            tall = isinstance(field.widget, QPlainTextEdit)
            align = Qt.AlignmentFlag.AlignTop if tall else Qt.AlignmentFlag.AlignVCenter
            self.grid.addWidget(label, row, 0, align)
            self.grid.addWidget(field.widget, row, 1)
            self.grid.addWidget(paper, row, 2, align)
            description = hint_label(described.text)
            self.grid.addWidget(description, row + 1, 0, 1, 3)
            self.grid.setRowMinimumHeight(row + 2, 8)
            row += 3
            self.fields[name], self.labels[name] = field, label
        self.reset()

    def reset(self) -> None:
        """Back to the preset's values."""
        if self.method is None:
            return
        self._filling = True
        try:
            for name, value in self.method.presets[self.preset].items():
                self.fields[name].write(value)
                self._mark(name, False)
        finally:
            self._filling = False
        self.changed.emit()

    def values(self) -> dict:
        """Every setting as the run will use it; ValueError with a plain message for text
        that is not a valid value."""
        return {name: field.read() for name, field in self.fields.items()}

    def overrides(self) -> dict:
        """The settings that differ from the preset."""
        if self.method is None:
            return {}
        preset = self.method.presets[self.preset]
        return {name: value for name, value in self.values().items() if value != preset[name]}

    def set_value(self, name: str, value: object) -> None:
        self.fields[name].write(value)

    def _edited(self, name: str) -> None:
        if self._filling or self.method is None or name not in self.fields:
            return
        try:
            differs = self.fields[name].read() != self.method.presets[self.preset][name]
        except ValueError:
            differs = True
        self._mark(name, differs)
        self.changed.emit()

    def _mark(self, name: str, differs: bool) -> None:
        label = self.labels[name]
        font = QFont(label.font())
        font.setBold(differs)
        label.setFont(font)

    def _clear(self) -> None:
        if self._body is not None:
            self._outer.removeWidget(self._body)
            self._body.deleteLater()
            self._body = None
        self.fields.clear()
        self.labels.clear()
