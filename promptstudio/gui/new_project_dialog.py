"""A new project: a name, and rows from the user's file or pasted text (the import panel
of `import_dialog`), or one of the samples that ship with the app."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from promptstudio import dataio, workflows
from promptstudio.gui import messages
from promptstudio.gui.import_dialog import (
    DETAIL_ROLE,
    ERROR_RED,
    RowsSource,
    TwoLineDelegate,
    section,
)
from promptstudio.gui.scoring import ScoringEditor
from promptstudio.gui.state import AppState
from promptstudio.gui.workers import JobState

SAMPLE_ROLE = Qt.ItemDataRole.UserRole + 2


class NewProjectDialog(QDialog):
    """A new project from the user's own rows (a file or pasted) or from a bundled sample."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.created: str | None = None
        self._named_by_user = False
        self.setObjectName("newProjectDialog")
        self.setWindowTitle("New project")

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("projectName")
        self.name_edit.setPlaceholderText("For example: Support emails")
        self.name_edit.textEdited.connect(self._name_edited)
        self.name_problem = QLabel()
        self.name_problem.setStyleSheet(f"color: {ERROR_RED};")
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name:"))
        name_row.addWidget(self.name_edit, 1)

        self.source = RowsSource(state.jobs)
        self.source.changed.connect(self._source_changed)
        self.sample_list = QListWidget()
        self.sample_list.setObjectName("sampleList")
        self.sample_list.setItemDelegate(TwoLineDelegate(self.sample_list))
        for sample in workflows.samples():
            item = QListWidgetItem(sample.title)
            item.setData(SAMPLE_ROLE, sample.id)
            item.setData(DETAIL_ROLE, sample.task_description)
            item.setToolTip(sample.task_description)
            self.sample_list.addItem(item)
        self.sample_list.currentItemChanged.connect(self._sample_changed)
        samples_page = QWidget()
        samples_layout = QVBoxLayout(samples_page)
        samples_intro = QLabel("A small ready-made task to see how PromptStudio works. "
                               "You can edit its rows and settings afterwards.")
        samples_intro.setWordWrap(True)
        samples_layout.addWidget(samples_intro)
        samples_layout.addWidget(self.sample_list, 1)

        self.scoring = ScoringEditor()
        self.scoring.calibrate_box.hide()  # a setting of the project, on its Task page
        self.scoring.metricChosen.connect(self._scoring_chosen)
        self.scoring.labelsEdited.connect(self._scoring_chosen)
        self._scored_by_user = False
        rows_page = QWidget()
        rows_layout = QVBoxLayout(rows_page)
        rows_layout.addWidget(self.source, 1)
        rows_layout.addWidget(section("How answers are scored"))
        rows_layout.addWidget(self.scoring)

        self.tabs = QTabWidget()
        self.tabs.addTab(rows_page, "Your examples")
        self.tabs.addTab(samples_page, "A ready-made sample")
        self.tabs.currentChanged.connect(self._update_button)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = self.buttons.addButton("Create project",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setObjectName("createButton")
        self.buttons.accepted.connect(self.create)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(name_row)
        layout.addWidget(self.name_problem)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.buttons)
        self.resize(800, 660)
        self.busy = False
        self._update_button()

    def reject(self) -> None:
        if not self.busy:  # a project being made is finished, then opened
            super().reject()

    @property
    def using_sample(self) -> bool:
        return self.tabs.currentIndex() == 1

    def choose_sample(self, sample_id: str) -> None:
        self.tabs.setCurrentIndex(1)
        for row in range(self.sample_list.count()):
            if self.sample_list.item(row).data(SAMPLE_ROLE) == sample_id:
                self.sample_list.setCurrentRow(row)

    def _name_edited(self) -> None:
        self._named_by_user = bool(self.name_edit.text().strip())
        self._update_button()

    def _suggest_name(self, wanted: str) -> None:
        if not self._named_by_user and wanted:
            self.name_edit.setText(workflows.free_project_name(self.state.workspace, wanted))

    def _source_changed(self) -> None:
        path = self.source.source
        if path and path != dataio.PASTED_TEXT:
            self._suggest_name(Path(path).stem.replace("_", " ").strip())
        if self.source.imported is not None and not self._scored_by_user:
            self.scoring.set_scoring(*workflows.suggest_scoring(self.source.imported.rows))
        self._update_button()

    def _scoring_chosen(self) -> None:
        self._scored_by_user = True
        self._update_button()

    def _sample_changed(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self._suggest_name(item.text())
        self._update_button()

    def _update_button(self) -> None:
        problem = workflows.name_problem(self.state.workspace, self.name_edit.text())
        self.name_problem.setText(problem if self.name_edit.text().strip() else "")
        self.name_problem.setVisible(bool(self.name_problem.text()))
        has_rows = (self.sample_list.currentItem() is not None if self.using_sample
                    else self.source.ready and not self.scoring.problem())
        self.create_button.setEnabled(not problem and has_rows and not self.busy)

    def create(self) -> None:
        """Create the project on a worker thread, then open it."""
        if not self.create_button.isEnabled():
            return
        name = self.name_edit.text().strip()
        workspace = self.state.workspace
        if self.using_sample:
            sample_id = self.sample_list.currentItem().data(SAMPLE_ROLE)

            def make() -> tuple:
                return workflows.create_sample_project(workspace, sample_id, name)
        else:
            imported, source, split = (self.source.imported, self.source.source,
                                       self.source.split)
            metric, labels = self.scoring.chosen_metric(), self.scoring.chosen_labels()

            def make() -> tuple:
                return workflows.create_project_from_rows(workspace, name, imported, source,
                                                          split=split, metric=metric,
                                                          labels=labels)

        def work(_: JobState) -> object:
            project, report = make()
            project.close()
            return report

        def done(report: object) -> None:
            self.busy = False
            self.created = name
            self.state.projects_listed.emit()
            try:
                self.state.open_project(name)
            except Exception as exc:
                messages.show_error(self.parentWidget() or self, exc)
            self.state.status.emit(report.describe())  # type: ignore[attr-defined]
            self.accept()

        def failed(exc: BaseException) -> None:
            self.busy = False
            self.create_button.setText("Create project")
            self._update_button()
            messages.show_error(self, exc)

        self.busy = True
        self.create_button.setEnabled(False)
        self.create_button.setText("Creating…")
        self.state.jobs.start(f"Creating {name}", work, on_done=done, on_error=failed)
