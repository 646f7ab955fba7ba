"""The projects sidebar: every project of the workspace, and what can be done with them.

Each project shows its size and its best score so far, so the list doubles as a summary
of the user's work. With no projects yet, the sidebar offers the bundled samples, the
quickest way to see what the app does. The window's File menu calls the public methods
here (new, open a file, open recent, export), so the sidebar owns the recent-projects list.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from promptstudio import workflows
from promptstudio.gui import messages
from promptstudio.gui.import_dialog import DETAIL_ROLE, TwoLineDelegate
from promptstudio.gui.new_project_dialog import NewProjectDialog
from promptstudio.gui.state import AppState
from promptstudio.store.workspace import PROJECT_SUFFIX

RECENT_KEY = "recentProjects"
LAST_KEY = "lastProject"
RECENT_KEPT = 8
PATH_ROLE = Qt.ItemDataRole.UserRole
PROJECT_FILES = f"PromptStudio projects (*{PROJECT_SUFFIX});;All files (*)"


def ask_name(parent: QWidget, title: str, label: str, text: str) -> str | None:
    """A name typed by the user, or None if they cancelled (tests stand in for this)."""
    name, accepted = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Normal, text)
    return name.strip() if accepted and name.strip() else None


def describe_project(overview: workflows.ProjectOverview) -> str:
    """The line under a project's name: its size and best score."""
    count = "1 example" if overview.examples == 1 else f"{overview.examples:,} examples"
    if overview.best_score is None:
        return f"{count} · not scored yet"
    return f"{count} · best {overview.best_score:.0%} on {overview.best_split}"


class ChoiceCard(QFrame):
    """A button that wraps its words: a bold title over a line that explains it."""

    clicked = Signal()

    def __init__(self, title: str, detail: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "ChoiceCard { border: 1px solid palette(mid); border-radius: 6px; "
            "background: palette(base); }"
            "ChoiceCard:hover, ChoiceCard:focus { border-color: palette(highlight); }")
        self.title_label = QLabel(title)
        self.title_label.setWordWrap(True)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setStyleSheet("color: palette(link);")
        detail_label = QLabel(detail)
        detail_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(2)
        layout.addWidget(self.title_label)
        layout.addWidget(detail_label)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def text(self) -> str:
        return self.title_label.text()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
        else:
            super().keyPressEvent(event)


class ProjectsSidebar(QWidget):
    """The workspace's projects: open, create, rename, duplicate, export and delete them."""

    def __init__(self, state: AppState, parent: QWidget | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._settings = settings
        self.setObjectName("projectsSidebar")

        title = QLabel("Projects")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)
        self.new_button = QPushButton("New…")
        self.new_button.setObjectName("newProjectButton")
        self.new_button.setToolTip("Create a project from your own examples or a sample")
        self.new_button.clicked.connect(self.new_project)
        self.more_button = QToolButton()
        self.more_button.setObjectName("projectActions")
        self.more_button.setText("⋯")
        self.more_button.setToolTip("Rename, duplicate, export or delete the selected project")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.more_button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
        self.more_button.setMenu(QMenu(self.more_button))
        self.more_button.menu().aboutToShow.connect(
            lambda: self._fill_actions_menu(self.more_button.menu(), self.selected_name()))
        header = QHBoxLayout()
        header.addWidget(title, 1)
        header.addWidget(self.new_button)
        header.addWidget(self.more_button)

        self.list = QListWidget()
        self.list.setObjectName("projectList")
        self.list.setItemDelegate(TwoLineDelegate(self.list))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemClicked.connect(self._item_chosen)
        self.list.itemActivated.connect(self._item_chosen)
        self._add_shortcut("F2", self.rename_project)
        self._add_shortcut(QKeySequence.StandardKey.Delete, self.delete_project)

        self.empty = self._empty_state()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.list)
        self.stack.addWidget(self.empty)

        self.open_file_button = QPushButton("Open a project file…")
        self.open_file_button.setObjectName("openProjectFile")
        self.open_file_button.setFlat(True)
        self.open_file_button.setToolTip(f"Open a {PROJECT_SUFFIX} project file from "
                                         "another folder")
        self.open_file_button.clicked.connect(self.open_project_file)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.addLayout(header)
        self.unreadable: list = []
        self.unreadable_button = QPushButton()
        self.unreadable_button.setObjectName("unreadableFiles")
        self.unreadable_button.setFlat(True)
        self.unreadable_button.setStyleSheet("color: #8a3b00; text-align: left;")
        self.unreadable_button.clicked.connect(self.explain_unreadable)
        self.unreadable_button.hide()

        layout.addWidget(self.stack, 1)
        layout.addWidget(self.unreadable_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.open_file_button, 0, Qt.AlignmentFlag.AlignLeft)

        state.projects_listed.connect(self.refresh)
        state.candidates_changed.connect(self.refresh)
        state.examples_changed.connect(self._open_project_changed)
        state.project_changed.connect(self._project_changed)
        self.refresh()

    # -- what is shown -------------------------------------------------------------------

    @property
    def settings(self) -> QSettings:
        """The window's settings file when there is one (the tests' is temporary)."""
        if self._settings is not None:
            return self._settings
        window_settings = getattr(self.window(), "settings", None)
        if isinstance(window_settings, QSettings):
            return window_settings
        self._settings = QSettings()
        return self._settings

    def _empty_state(self) -> QWidget:
        panel = QWidget()
        panel.setObjectName("noProjects")
        text = QLabel("No projects yet.\n\nA project holds the examples of one task and the "
                      "prompts tried on it. Start with a sample to see how it works, or "
                      "bring your own examples.")
        text.setWordWrap(True)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(text)
        self.sample_buttons: list[ChoiceCard] = []
        for sample in workflows.samples():
            card = ChoiceCard(f"Try a sample: {sample.title}", sample.task_description)
            card.setObjectName(f"sample_{sample.id}")
            card.clicked.connect(lambda s=sample.id: self.create_sample(s))
            layout.addWidget(card)
            self.sample_buttons.append(card)
        own = ChoiceCard("Use your own examples", "From a CSV, TSV or JSON file, or rows "
                         "pasted from a spreadsheet.")
        own.setObjectName("ownExamples")
        own.clicked.connect(self.new_project)
        layout.addWidget(own)
        layout.addStretch(1)
        return panel

    def refresh(self) -> None:
        """List the workspace's projects again, keeping the open one selected."""
        try:
            overviews, self.unreadable = workflows.project_overviews(self.state.workspace)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        overviews.sort(key=lambda overview: overview.name.casefold())
        count = len(self.unreadable)
        self.unreadable_button.setText(
            f"{count} file{'s' if count != 1 else ''} could not be opened…")
        self.unreadable_button.setToolTip("\n".join(bad.path.name for bad in self.unreadable))
        self.unreadable_button.setVisible(bool(count))
        self.list.blockSignals(True)
        self.list.clear()
        for overview in overviews:
            item = QListWidgetItem(overview.name)
            item.setData(PATH_ROLE, str(overview.path))
            self._describe(item, overview)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.stack.setCurrentWidget(self.list if overviews else self.empty)
        self._select_open_project()

    def explain_unreadable(self) -> None:
        """Say which files of the projects folder could not be opened, and why."""
        if self.unreadable:
            messages.show_error(
                self, workflows.unreadable_text(self.unreadable),
                f"Files in {self.state.workspace.folder} that could not be opened")

    def _open_project_changed(self) -> None:
        """Update only the open project's line (its rows changed; the others did not)."""
        project = self.state.project
        if project is None:
            return
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(PATH_ROLE) == str(project.path):
                self._describe(item, workflows.overview_of(project))

    def _describe(self, item: QListWidgetItem, overview: workflows.ProjectOverview) -> None:
        item.setData(DETAIL_ROLE, describe_project(overview))
        item.setToolTip(f"{overview.name}\n{describe_project(overview)}\n{overview.path}")

    def _select_open_project(self) -> None:
        path = str(self.state.project.path) if self.state.project else None
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(PATH_ROLE) == path:
                self.list.setCurrentItem(item)
                return
        self.list.clearSelection()
        self.list.setCurrentItem(None)

    def _project_changed(self) -> None:
        project = self.state.project
        if project is not None:
            self._remember(project.path)
        self.refresh()  # also finds projects made meanwhile by the command line

    def names(self) -> list[str]:
        return [self.list.item(row).text() for row in range(self.list.count())]

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.text() if item is not None else None

    # -- opening -------------------------------------------------------------------------

    def _item_chosen(self, item: QListWidgetItem) -> None:
        path = item.data(PATH_ROLE)
        if self.state.project is None or str(self.state.project.path) != path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Open a project file; any trouble is told to the user."""
        if self.state.runs.running:
            messages.show_error(self, "A run is going. Pause or stop it before opening "
                                      "another project.")
            self._select_open_project()
            return False
        try:
            self.state.open_project(Path(path))
        except Exception as exc:
            messages.show_error(self, exc)
            self._select_open_project()
            return False
        return True

    def open_project_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project file", "", PROJECT_FILES)
        if path:
            self.open_path(path)

    def restore_last_project(self) -> None:
        """Open the project that was open last time, if it is still there."""
        last = self.settings.value(LAST_KEY)
        if last and Path(str(last)).exists() and self.state.project is None:
            self.open_path(str(last))

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = [p for p in self._recent() if Path(p).exists()]
        for path in recent:
            action = menu.addAction(Path(path).stem)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if not recent:
            none = menu.addAction("No recent projects")
            none.setEnabled(False)
            return
        menu.addSeparator()
        menu.addAction("Clear this list", lambda: self.settings.setValue(RECENT_KEY, []))

    def _recent(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            return [value] if value else []
        return [str(path) for path in value or []]

    def _remember(self, path: Path) -> None:
        recent = [str(path), *(p for p in self._recent() if p != str(path))]
        self.settings.setValue(RECENT_KEY, recent[:RECENT_KEPT])

    def _forget(self, path: Path, replacement: Path | None = None) -> None:
        """Drop a project from the recent list, or put its new path in its place."""
        recent = []
        for known in self._recent():
            if known != str(path):
                recent.append(known)
            elif replacement is not None:
                recent.append(str(replacement))
        self.settings.setValue(RECENT_KEY, recent)

    # -- creating ------------------------------------------------------------------------

    def new_project(self) -> NewProjectDialog:
        """Open the new-project dialog (without blocking); the project opens once made."""
        dialog = NewProjectDialog(self.state, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def create_sample(self, sample_id: str) -> bool:
        """Create a sample project under a free name and open it (samples are small)."""
        title = next(s.title for s in workflows.samples() if s.id == sample_id)
        name = workflows.free_project_name(self.state.workspace, title)
        try:
            project, report = workflows.create_sample_project(self.state.workspace, sample_id,
                                                              name)
            project.close()
        except Exception as exc:
            messages.show_error(self, exc)
            return False
        self.state.projects_listed.emit()
        self.state.status.emit(report.describe())
        return self.open_path(project.path)

    # -- changing ------------------------------------------------------------------------

    def _fill_actions_menu(self, menu: QMenu, name: str | None) -> None:
        menu.clear()
        for text, slot, keys in (("Open", self._open_selected, None),
                                 ("Rename…", self.rename_project, "F2"),
                                 ("Duplicate…", self.duplicate_project, None),
                                 ("Export a copy…", self._export_selected, None),
                                 ("Delete…", self.delete_project, "Del")):
            action = QAction(text, menu)
            action.setEnabled(name is not None)
            if keys:
                action.setShortcut(QKeySequence(keys))
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction("New project…", self.new_project)
        menu.addAction("Open a project file…", self.open_project_file)

    def _context_menu(self, position) -> None:
        item = self.list.itemAt(position)
        if item is not None:
            self.list.setCurrentItem(item)
        menu = QMenu(self)
        self._fill_actions_menu(menu, item.text() if item else None)
        menu.exec(self.list.viewport().mapToGlobal(position))

    def _add_shortcut(self, keys: str | QKeySequence.StandardKey, slot) -> None:
        action = QAction(self.list)
        action.setShortcut(QKeySequence(keys))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        action.triggered.connect(slot)
        self.list.addAction(action)

    def _open_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._item_chosen(item)

    def _selected_path(self) -> Path | None:
        item = self.list.currentItem()
        return Path(item.data(PATH_ROLE)) if item is not None else None

    def _is_open(self, path: Path | None) -> bool:
        return (path is not None and self.state.project is not None
                and Path(self.state.project.path) == path)

    def _busy_with(self, path: Path | None, doing: str) -> bool:
        """True (after telling the user) when a run is using this project."""
        if self._is_open(path) and self.state.runs.running:
            messages.show_error(self, f"A run is going in this project. Pause or stop it "
                                      f"before you {doing} the project.")
            return True
        return False

    def rename_project(self) -> None:
        name, path = self.selected_name(), self._selected_path()
        if name is None or self._busy_with(path, "rename"):
            return
        new_name = ask_name(self, "Rename project", "New name:", name)
        if new_name is None or new_name == name:
            return
        was_open = self._is_open(path)
        try:
            if was_open:
                self.state.close_project()
            new_path = self.state.workspace.rename(name, new_name)
        except Exception as exc:
            messages.show_error(self, exc)
            if was_open and path is not None:
                self.open_path(path)
            self.refresh()
            return
        if path is not None:
            self._forget(path, new_path)
        self.state.projects_listed.emit()
        if was_open:
            self.open_path(new_path)

    def duplicate_project(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        suggestion = workflows.free_project_name(self.state.workspace, f"{name} copy")
        new_name = ask_name(self, "Duplicate project", "Name of the copy:", suggestion)
        if new_name is None:
            return
        try:
            self.state.workspace.duplicate(name, new_name)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        self.state.projects_listed.emit()
        self.state.status.emit(f"Made a copy of {name} named {new_name}.")

    def delete_project(self) -> None:
        name, path = self.selected_name(), self._selected_path()
        if name is None or self._busy_with(path, "delete"):
            return
        if not messages.ask(self, "Delete project",
                            f"Delete the project “{name}” with all its examples, runs and "
                            "results? This cannot be undone.",
                            yes="Delete", no="Keep it"):
            return
        try:
            if self._is_open(path):
                self.state.close_project()
            self.state.workspace.delete(name)
        except Exception as exc:
            messages.show_error(self, exc)
            return
        if path is not None:
            self._forget(path)
        self.state.projects_listed.emit()
        self.state.status.emit(f"Deleted the project {name}.")

    # -- exporting -----------------------------------------------------------------------

    def export_project(self) -> None:
        """Save a copy of the open project's file, for moving it to another computer."""
        if self.state.project is None:
            messages.show_error(self, "Open a project first, then export it.")
            return
        self._export(Path(self.state.project.path), self.state.project.name)

    def _export_selected(self) -> None:
        path, name = self._selected_path(), self.selected_name()
        if path is not None and name is not None:
            self._export(path, name)

    def _export(self, path: Path, name: str) -> None:
        suggested = str(Path.home() / (path.stem + PROJECT_SUFFIX))
        chosen, _ = QFileDialog.getSaveFileName(
            self, f"Export {name}", suggested, PROJECT_FILES,
            options=QFileDialog.Option.DontConfirmOverwrite)
        if not chosen:
            return
        target = Path(chosen)
        if target.suffix != PROJECT_SUFFIX:
            target = target.with_name(target.name + PROJECT_SUFFIX)
        if target.resolve() == path.resolve():
            messages.show_error(self, "That is the project's own file. Choose another place "
                                      "or name for the copy.")
            return
        if target.exists() and not messages.ask(
                self, "Replace file", f"{target.name} already exists in {target.parent}. "
                "Replace it with this project?", yes="Replace", no="Cancel"):
            return
        partial = target.with_name(target.name + ".partial")
        workspace = self.state.workspace

        def work(_) -> Path:
            partial.unlink(missing_ok=True)
            try:
                workspace.export_file(str(path), partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            return target

        self.state.jobs.start(
            f"Exporting {name}", work,
            on_done=lambda _: self.state.status.emit(f"Saved a copy of {name} as {target}."),
            on_error=lambda exc: messages.show_error(self, exc))
