"""The self-test's window check: can this copy of Qt open PromptStudio's main window?

Run as a child process by `promptstudio.selftest` (`python -m promptstudio.gui.selfcheck`, or
the built app's hidden `--gui-check`), with QT_QPA_PLATFORM=offscreen and a scratch data
folder. It creates the main window as the app does, lets it draw, grabs it as an image, and
prints one JSON line: {"ok": true, "qt": ..., "width": ..., ...} or {"ok": false, "error": ...}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

SETTLE_S = 0.5


def check_window(settle_s: float = SETTLE_S) -> dict:
    """Open the main window, let it draw for `settle_s` seconds, and describe what happened."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QCoreApplication, QSettings, qVersion
    from PySide6.QtGui import QImageReader
    from PySide6.QtWidgets import QApplication, QStyleFactory

    from promptstudio.gui import theme
    from promptstudio.gui.main_window import MainWindow
    from promptstudio.paths import APP_NAME

    app = QApplication.instance() or QApplication([APP_NAME])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    with tempfile.TemporaryDirectory(prefix="promptstudio-guicheck-") as scratch:
        settings = QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)
        theme.apply(app, settings)
        window = MainWindow(settings=settings)
        window.show()
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            QCoreApplication.processEvents()
            time.sleep(0.02)
        image = window.grab().toImage()
        charts = _check_charts()
        report = {
            "ok": bool(window.isVisible() and not image.isNull()),
            "platform": app.platformName(),
            "qt": qVersion(),
            "pyside": pyside_version,
            "width": image.width(),
            "height": image.height(),
            "charts": charts,
            "styles": list(QStyleFactory.keys()),
            "image_formats": sorted(bytes(f.data()).decode() for f in
                                    QImageReader.supportedImageFormats()),
        }
        if not report["ok"]:
            report["error"] = "the window was not shown, or drew nothing"
    return report


def _check_charts() -> str:
    """The results page draws with pyqtgraph, which imports parts of Qt on its own (QtOpenGL
    through importlib): a built app that lacks them fails only when a chart is first shown."""
    import pyqtgraph

    plot = pyqtgraph.PlotWidget()
    plot.plot([0, 1, 2], [0.2, 0.5, 0.4])
    plot.resize(320, 200)
    if plot.grab().isNull():
        raise RuntimeError("a pyqtgraph chart drew nothing")
    plot.deleteLater()
    return f"pyqtgraph {pyqtgraph.__version__}"


def main() -> int:
    try:
        report = check_window()
    except Exception as exc:  # any failure is the answer, reported as JSON
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    # Leave without Qt's teardown: a window's worker threads must not turn a good answer
    # into a crash at exit.
    os._exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
