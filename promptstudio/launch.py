"""The `promptstudio` command: the command line, whose `gui` command opens the window.

The one module above both the command line and the window, so that the command line never
imports Qt and the window stays optional (`promptstudio list` works where no display is).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from promptstudio import cli

    return cli.main(argv, open_window=open_window)


def open_window(project: str | None) -> int:
    from promptstudio.gui.app import main as gui_main

    return gui_main([], project=project)
