"""Start the window: `promptstudio` with no arguments, `promptstudio gui`, or the built app."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from promptstudio import applog
from promptstudio.gui import display
from promptstudio.paths import APP_NAME, resource

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None, project: str | None = None) -> int:
    """Show the window, with `project` (a name or a project file) open, else the last one.

    Where no window can be shown, say why in plain words and return 2, before Qt is
    started: Qt itself would print its list of plugins and abort.
    """
    log_path = applog.setup()
    problem = display.problem()
    if problem is not None:
        log.error(problem)
        print(problem, file=sys.stderr)
        return 2
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from promptstudio.gui import theme
    from promptstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("promptstudio")  # matches resources/promptstudio.desktop
    app.setWindowIcon(QIcon(str(resource("icons", "promptstudio-256.png"))))
    settings = QSettings()
    theme.apply(app, settings)
    window = MainWindow(settings=settings)
    window.statusBar().showMessage(f"Log file: {log_path}", 5000)
    window.show()
    if project:
        window.sidebar.open_path(project)
    else:
        window.sidebar.restore_last_project()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
