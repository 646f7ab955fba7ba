"""The score plot: how each shown run's scores moved, step by step.

Per run, in its own colour: the best score so far and the step's average on dev and on
train, every candidate's scores as points (hover one to read its prompt, click it to
select it), and the test score of the run's pick as a star and a dotted line. Several runs
can be drawn over each other to compare methods. The page decides when to redraw (a few
times a second at most during a run); a redraw recomputes one run's trajectory from data
in memory and reads nothing from the database.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from promptstudio.reports import RunResults, Trajectory

RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
              "#e377c2")
SYMBOLS = {"train": "o", "dev": "d", "test": "star"}
SIZES = {"train": 7, "dev": 10, "test": 17}
EXPORT_SIZE = QSize(1000, 520)
TEST_OFFSET = 0.4
"""How far right of a run's last step its test score is drawn."""
JITTER = 0.3
"""How far apart (in steps) points of one step spread, so that equal scores stay apart."""

LINE_STYLES = {
    ("best", "dev"): (Qt.PenStyle.SolidLine, 2.6, "Best so far (dev)"),
    ("best", "train"): (Qt.PenStyle.DashLine, 2.0, "Best so far (train)"),
    ("mean", "dev"): (Qt.PenStyle.DashDotLine, 1.2, "Step average (dev)"),
    ("mean", "train"): (Qt.PenStyle.DotLine, 1.4, "Step average (train)"),
}


def run_color(run_id: int) -> QColor:
    """A run keeps its colour whichever other runs are shown."""
    return QColor(RUN_COLORS[(run_id - 1) % len(RUN_COLORS)])


def _with_alpha(color: QColor, alpha: int) -> QColor:
    faded = QColor(color)
    faded.setAlpha(alpha)
    return faded


def _jitter(candidate_id: int) -> float:
    return ((candidate_id * 0.6180339887) % 1.0 - 0.5) * JITTER


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


class StepAxis(pg.AxisItem):
    """Whole steps only: a step is a round of the search, never a fraction of one."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size)
                  if spacing >= 1]
        if levels:
            return levels
        return [(1.0, list(range(math.ceil(minVal), math.floor(maxVal) + 1)))]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list[str]:
        return [str(round(v)) for v in values]


class TrajectoryPlot(QWidget):
    """Score trajectories of one or more runs, with a legend and display options."""

    candidate_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: dict[int, RunResults] = {}
        self.scatters: dict[int, pg.ScatterPlotItem] = {}
        self._curves: dict[int, dict[tuple[str, str], pg.PlotDataItem]] = {}
        self._test_lines: dict[int, pg.InfiniteLine] = {}
        self._test_labels: dict[int, pg.TextItem] = {}
        self._styles: dict[int, dict] = {}
        self.spots: dict[int, list[tuple[int, str]]] = {}

        self.plot_widget = pg.PlotWidget(axisItems={"bottom": StepAxis("bottom")})
        self.plot_widget.setObjectName("scorePlot")
        self.plot_widget.setMinimumHeight(220)
        self.plot_item = self.plot_widget.getPlotItem()
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.plot_item.setLabel("bottom", "Step")
        self.plot_item.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot_item.setLabel("left", "Score")
        self.plot_item.showGrid(x=False, y=True, alpha=0.18)
        self.plot_item.setYRange(-0.03, 1.1, padding=0)
        self.plot_item.setMouseEnabled(x=False, y=False)  # it follows the runs; no panning
        self.plot_item.getViewBox().setLimits(yMin=-0.05, yMax=1.12)
        self.plot_item.getAxis("left").setTicks(
            [[(v / 4, f"{v / 4:g}") for v in range(5)]])
        self.legend = pg.LegendItem(verSpacing=-4, labelTextSize="8pt")
        self.plot_item.layout.addItem(self.legend, 2, 3)  # right of the plot area
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.plot_item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        self._empty_note = pg.TextItem("", anchor=(0.5, 0.5))
        self.plot_item.addItem(self._empty_note, ignoreBounds=True)

        self.show_train = QCheckBox("Training scores")
        self.show_dev = QCheckBox("Dev scores")
        self.show_means = QCheckBox("Step averages")
        options = QHBoxLayout()
        options.setContentsMargins(0, 0, 0, 0)
        for box, tip in ((self.show_dev, "Scores on the dev examples, which choose the best "
                                         "prompt."),
                         (self.show_train, "Scores on the training examples the search tried "
                                           "each prompt on."),
                         (self.show_means, "The average score of the prompts each step "
                                           "made.")):
            box.setChecked(True)
            box.setToolTip(tip)
            box.toggled.connect(self._options_changed)
            options.addWidget(box)
        options.addStretch(1)
        self.options = options

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(options)
        self._apply_palette()

    # -- what to show -----------------------------------------------------------------

    def show_runs(self, runs: Sequence[RunResults]) -> None:
        """Draw these runs (and no others)."""
        wanted = {results.run_id: results for results in runs}
        for run_id in list(self.runs):
            if run_id not in wanted:
                self._remove(run_id)
        for run_id, results in wanted.items():
            if run_id not in self.scatters:
                self._add(run_id)
            self.runs[run_id] = results
        self._fill_legend()
        self.redraw_all()

    def _options_changed(self) -> None:
        self._fill_legend()
        self.redraw_all()

    def redraw_all(self) -> None:
        for run_id in self.runs:
            self._draw(run_id)
        self._update_range()

    def redraw(self, run_id: int) -> None:
        """Redraw one run from its data in memory (its trajectory is recomputed)."""
        if run_id in self.runs:
            self._draw(run_id)
            self._update_range()

    def save_png(self, path: str | Path) -> Path:
        """The plot with its legend as a PNG picture of a standard size, whatever the size
        on screen: drawn by an unseen copy of this plot, with the same runs and options."""
        copy = TrajectoryPlot()
        copy.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
        for mine, its in ((self.show_train, copy.show_train), (self.show_dev, copy.show_dev),
                          (self.show_means, copy.show_means)):
            its.setChecked(mine.isChecked())
        copy.resize(EXPORT_SIZE)
        copy.show_runs(list(self.runs.values()))
        copy.show()
        try:
            if not copy.plot_widget.grab().save(str(path), "PNG"):
                raise OSError(f"Could not write the picture to {path}.")
        finally:
            copy.close()
            copy.deleteLater()
        return Path(path)

    # -- drawing ----------------------------------------------------------------------

    def _add(self, run_id: int) -> None:
        color = run_color(run_id)
        curves = {}
        for key, (style, width, _) in LINE_STYLES.items():
            pen = pg.mkPen(color, width=width, style=style)
            curve = pg.PlotDataItem(pen=pen, connect="finite")
            curve.setZValue(1 if key[0] == "best" else 0)
            self.plot_item.addItem(curve)
            curves[key] = curve
        self._curves[run_id] = curves
        scatter = pg.ScatterPlotItem(hoverable=True, tip=partial(self._tip, run_id),
                                     hoverSize=13,
                                     hoverPen=pg.mkPen(self._text_color(), width=1.5))
        scatter.setZValue(2)
        scatter.sigClicked.connect(
            lambda _item, points, *_, run_id=run_id: self._clicked(run_id, points))
        self.plot_item.addItem(scatter)
        self.scatters[run_id] = scatter
        line = pg.InfiniteLine(angle=0, movable=False,
                               pen=pg.mkPen(color, width=1.2, style=Qt.PenStyle.DotLine))
        line.setVisible(False)
        self.plot_item.addItem(line, ignoreBounds=True)
        self._test_lines[run_id] = line
        label = pg.TextItem("", color=color, anchor=(0, 0.5),
                            fill=pg.mkBrush(_with_alpha(self._base_color(), 230)))
        self.plot_item.addItem(label, ignoreBounds=True)
        self._test_labels[run_id] = label

    def _remove(self, run_id: int) -> None:
        for curve in self._curves.pop(run_id, {}).values():
            self.plot_item.removeItem(curve)
        for item in (self.scatters.pop(run_id, None), self._test_lines.pop(run_id, None),
                     self._test_labels.pop(run_id, None)):
            if item is not None:
                self.plot_item.removeItem(item)
        self.runs.pop(run_id, None)
        self.spots.pop(run_id, None)

    def _draw(self, run_id: int) -> None:
        results = self.runs[run_id]
        path = results.trajectory()
        shown = {"train": self.show_train.isChecked(), "dev": self.show_dev.isChecked()}
        for (kind, split), curve in self._curves[run_id].items():
            series = (path.best_so_far if kind == "best" else path.step_mean)[split]
            visible = shown[split] and (kind == "best" or self.show_means.isChecked())
            if visible and path.steps:
                curve.setData(path.steps, _nan(series), connect="finite")
            else:
                curve.setData([], [])
        self._draw_points(results, path, shown)
        line, label = self._test_lines[run_id], self._test_labels[run_id]
        line.setVisible(path.test_score is not None)
        if path.test_score is not None:
            line.setValue(path.test_score)
        if path.test_score is not None and len(self.runs) == 1:
            label.setText(f"test {path.test_score:.2f}")
            label.setPos(self._test_x(run_id, path) + 0.12, path.test_score)
        else:  # with several runs the labels would cover each other; the stars tell
            label.setText("")

    def _draw_points(self, results: RunResults, path: Trajectory,
                     shown: dict[str, bool]) -> None:
        """All of a run's points in one call, with brushes and pens shared between points
        (pyqtgraph draws each distinct style once)."""
        style = self._style(results.run_id)
        spots = [(p.candidate_id, p.split) for p in path.points if shown[p.split]]
        xs = [p.step + _jitter(p.candidate_id) for p in path.points if shown[p.split]]
        ys = [p.score for p in path.points if shown[p.split]]
        best = results.best_candidate_id
        if path.test_score is not None and best is not None:
            spots.append((best, "test"))
            xs.append(self._test_x(results.run_id, path))
            ys.append(path.test_score)
        splits = [split for _, split in spots]
        self.spots[results.run_id] = spots
        self.scatters[results.run_id].setData(
            x=np.array(xs, dtype=float), y=np.array(ys, dtype=float),
            symbol=[SYMBOLS[split] for split in splits],
            brush=[style[split] for split in splits],
            pen=[style["star pen" if split == "test" else "pen"] for split in splits],
            size=np.array([SIZES[split] for split in splits], dtype=float),
            data=np.arange(len(spots)))

    def _test_x(self, run_id: int, path: Trajectory) -> float:
        """Right of the run's last step, and a little further right for each run drawn
        before it, so that two runs' stars never hide each other."""
        return path.last_step + TEST_OFFSET + 0.15 * sorted(self.runs).index(run_id)

    def _style(self, run_id: int) -> dict:
        """The brushes and pens of a run's points, made once."""
        if run_id not in self._styles:
            color = run_color(run_id)
            self._styles[run_id] = {
                "train": pg.mkBrush(_with_alpha(color, 120)),
                "dev": pg.mkBrush(_with_alpha(color, 220)),
                "test": pg.mkBrush(color),
                "pen": pg.mkPen(self._base_color(), width=0.8),
                "star pen": pg.mkPen(self._text_color(), width=1.0),
            }
        return self._styles[run_id]

    def spot(self, run_id: int, index: int) -> tuple[int, str]:
        """The candidate id and split of a run's point (as its `data()` numbers it)."""
        return self.spots[run_id][index]

    def _update_range(self) -> None:
        steps = [s for results in self.runs.values() for s in
                 (c.step for c in results.candidates.values() if c.scores)]
        if not steps:
            self._empty_note.setText("Scores appear here as soon as a run scores its first "
                                     "prompt.")
            self._empty_note.setColor(self._text_color())
            self._empty_note.setPos(0, 0.5)
            self.plot_item.setXRange(-1, 1, padding=0)
            return
        self._empty_note.setText("")
        tested = any(r.test_score is not None for r in self.runs.values())
        self.plot_item.setXRange(min(steps) - 0.5, max(steps) + (1.3 if tested else 0.6),
                                 padding=0)

    def _fill_legend(self) -> None:
        self.legend.clear()
        neutral = self._text_color()
        self.legend.setLabelTextColor(neutral)  # for the labels added below
        for run_id, results in sorted(self.runs.items()):
            self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(run_color(run_id), width=4)),
                                f"Run {run_id}: {results.short_title}")
        shown = {"train": self.show_train.isChecked(), "dev": self.show_dev.isChecked()}
        for (kind, split), (style, width, name) in LINE_STYLES.items():
            if shown[split] and (kind == "best" or self.show_means.isChecked()):
                self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(neutral, width=width,
                                                                 style=style)), name)
        for split, name in (("train", "A prompt's training score"),
                            ("dev", "A prompt's dev score"),
                            ("test", "Test score of the run's pick")):
            if not shown.get(split, True):
                continue
            sample = pg.ScatterPlotItem(symbol=SYMBOLS[split], brush=pg.mkBrush(neutral),
                                        pen=pg.mkPen(None), size=9)
            self.legend.addItem(sample, name)

    # -- hover and click --------------------------------------------------------------

    def _tip(self, run_id: int, x: float, y: float, data: object) -> str:
        candidate_id, split = self.spot(run_id, int(data))  # type: ignore[call-overload]
        results = self.runs.get(run_id)
        candidate = results.candidates.get(candidate_id) if results else None
        if candidate is None:
            return f"#{candidate_id}"
        if split == "test":
            head = f"Test score of run {run_id}'s pick, #{candidate_id}: {y:.2f}"
        else:
            head = (f"#{candidate_id} · {candidate.made_by} · step {candidate.step}\n"
                    f"{split} score {y:.2f} on {candidate.examples(split)} examples")
        lines = textwrap.wrap(candidate.instruction, 60) or ["(empty instruction)"]
        if len(lines) > 6:
            lines = [*lines[:6], "…"]
        return head + "\n" + "\n".join(lines)

    def _clicked(self, run_id: int, points: Sequence) -> None:
        if len(points):
            self.candidate_clicked.emit(self.spot(run_id, int(points[0].data()))[0])

    # -- colours ----------------------------------------------------------------------

    def _text_color(self) -> QColor:
        """The theme's text colour (of an enabled widget: the page may be disabled while no
        project is open, and the plot must not keep its greyed colours)."""
        return self.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)

    def _base_color(self) -> QColor:
        return self.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)

    def _apply_palette(self) -> None:
        self.plot_widget.setBackground(self._base_color())
        text = self._text_color()
        for name in ("left", "bottom"):
            axis = self.plot_item.getAxis(name)
            axis.setPen(QPen(_with_alpha(text, 140)))
            axis.setTextPen(QPen(text))

    def changeEvent(self, event) -> None:  # a theme switch changes the palette
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and hasattr(self, "plot_item"):
            self._styles.clear()
            self._apply_palette()
            self._fill_legend()
            self.redraw_all()
