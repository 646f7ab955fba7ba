"""Start the window: `promptstudio` with no arguments, `promptstudio gui`, or the built app."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from promptstudio import applog
from promptstudio.paths import APP_NAME, resource


def main(argv: Sequence[str] | None = None) -> int:
    log_path = applog.setup()
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
    window.sidebar.restore_last_project()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
