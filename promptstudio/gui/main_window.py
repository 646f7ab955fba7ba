"""The main window: projects on the left, the open project's pages on the right.

The pages follow the user's path through a project: describe the task and its data,
choose the models, run an optimization, read the results. The window itself only lays
them out, owns the menus and shortcuts, remembers its geometry, and closes cleanly.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QWidget

from promptstudio.gui import dialogs, messages
from promptstudio.gui.data_page import TaskDataPage
from promptstudio.gui.model_page import ModelPage
from promptstudio.gui.projects import ProjectsSidebar
from promptstudio.gui.results_page import ResultsPage
from promptstudio.gui.run_page import RunPage
from promptstudio.gui.state import AppState

CLOSE_WAIT_MS = 30_000


class MainWindow(QMainWindow):
    def __init__(self, state: AppState | None = None, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state or AppState(parent=self)
        if self.state.parent() is None:
            self.state.setParent(self)
        self.settings = settings or QSettings()
        self.setWindowTitle("PromptStudio")
        self.setObjectName("mainWindow")

        self.sidebar = ProjectsSidebar(self.state)
        self.task_page = TaskDataPage(self.state)
        self.model_page = ModelPage(self.state)
        self.run_page = RunPage(self.state)
        self.results_page = ResultsPage(self.state)
        self.pages = QTabWidget()
        self.pages.setDocumentMode(True)
        self.pages.addTab(self.task_page, "&1 Task && data")
        self.pages.addTab(self.model_page, "&2 Models")
        self.pages.addTab(self.run_page, "&3 Run")
        self.pages.addTab(self.results_page, "&4 Results")

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(self.pages)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 1000])
        self.setCentralWidget(self.splitter)

        self._status = QLabel()
        self.statusBar().addPermanentWidget(self._status)
        self.state.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.state.project_changed.connect(self._project_changed)
        self._build_menus()
        self._restore()
        self._project_changed()

    # -- menus and shortcuts ------------------------------------------------------------

    def _action(self, menu, text: str, slot, shortcut: QKeySequence | str | None = None,
                name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        if name:
            action.setObjectName(name)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&New project…", self.sidebar.new_project,
                     QKeySequence.StandardKey.New, "newProject")
        self._action(file, "&Open project file…", self.sidebar.open_project_file,
                     QKeySequence.StandardKey.Open, "openProject")
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(
            lambda: self.sidebar.fill_recent_menu(self.recent_menu))
        file.addSeparator()
        self.export_prompt_action = self._action(
            file, "&Export best prompt…", self.results_page.export_prompt, "Ctrl+E",
            "exportPrompt")
        self._action(file, "Export run &report…", self.results_page.export_report, None,
                     "exportReport")
        self._action(file, "Export whole &project…", self.sidebar.export_project, None,
                     "exportProject")
        file.addSeparator()
        self._action(file, "&Preferences…", lambda: dialogs.show_preferences(self),
                     QKeySequence.StandardKey.Preferences, "preferences")
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit, "quit")

        run = bar.addMenu("&Run")
        self.run_action = self._action(run, "&Start run", self.run_page.start_run, "F5",
                                       "startRun")
        self.pause_action = self._action(run, "&Pause", self.run_page.pause_run, "F6",
                                         "pauseRun")
        self.stop_action = self._action(run, "S&top", self.run_page.stop_run, "Esc",
                                        "stopRun")

        view = bar.addMenu("&View")
        for index in range(self.pages.count()):
            title = self.pages.tabText(index).replace("&&", "\0").replace("&", "")
            self._action(view, title.replace("\0", "&&"),
                         lambda _=False, i=index: self.pages.setCurrentIndex(i),
                         f"Ctrl+{index + 1}")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", lambda: dialogs.show_shortcuts(self),
                     QKeySequence.StandardKey.HelpContents, "shortcuts")
        self._action(help_menu, "&About PromptStudio", lambda: dialogs.show_about(self), None,
                     "about")

    def shortcuts(self) -> list[tuple[str, str]]:
        """Every action with a shortcut, for the Help dialog."""
        found = []
        for action in self.findChildren(QAction):
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
                found.append((text.rstrip("…"), keys))
        return sorted(set(found))

    # -- state --------------------------------------------------------------------------

    def _project_changed(self) -> None:
        project = self.state.project
        self.setWindowTitle(f"{project.name} — PromptStudio" if project else "PromptStudio")
        self.pages.setEnabled(project is not None)
        if project is not None:
            self.settings.setValue("lastProject", str(project.path))

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        splitter = self.settings.value("splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state.runs.running and not messages.ask(
                self, "A run is going",
                "A run is still going. Pause it and quit? You can resume it next time.",
                yes="Pause and quit", no="Keep running"):
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("splitter", self.splitter.saveState())
        self.statusBar().showMessage("Stopping…")
        self.state.shutdown(CLOSE_WAIT_MS)
        event.accept()
