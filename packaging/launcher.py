"""The built app's entry point (PyInstaller runs this file as the program).

    PromptStudio                      opens the window
    PromptStudio --self-test [--json] checks the installation and prints a report
    PromptStudio COMMAND ...          any `promptstudio` command (list, eval, optimize, ...)
    PromptStudio --check-model FILE   (internal) tries a model file, in the child process
                                      that promptstudio.llm.loadcheck starts

The app is built windowed: on Windows and macOS it may start with no stdout or stderr at all.
`applog.setup()` therefore runs first, before anything can print: it points missing streams
and uncaught exceptions at the log file in the data folder, so the app never dies for want
of a console.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback


def _attach_console() -> None:
    """On Windows, a windowed program started from a terminal gets no output streams; borrow
    the terminal's so that `--self-test` and the commands print where the user typed them."""
    if sys.platform != "win32" or sys.stdout is not None:
        return
    try:
        import ctypes

        if ctypes.windll.kernel32.AttachConsole(-1):  # ATTACH_PARENT_PROCESS
            sys.stdout = open("CONOUT$", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
            sys.stderr = open("CONOUT$", "w", encoding="utf-8", buffering=1)  # noqa: SIM115
    except (OSError, AttributeError):
        pass


def _window_only(argv: list[str]) -> bool:
    # macOS Finder used to pass a process serial number (-psn_0_12345) to apps it starts.
    return all(arg.startswith("-psn_") for arg in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not _window_only(argv):
        _attach_console()

    from promptstudio import applog

    try:
        applog.setup()
    except OSError:  # an unwritable data folder must not stop the app (or its self-test)
        for name in ("stdout", "stderr"):
            if getattr(sys, name) is None:
                setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115
    try:
        return _run(argv)
    except Exception:
        # Logged by name (the log file), and shown when there is a terminal to show it in.
        logging.getLogger("promptstudio").exception("PromptStudio stopped on an error")
        if sys.stderr is not None and not getattr(sys.stderr, "closed", False):
            traceback.print_exc()
        return 1


def _run(argv: list[str]) -> int:
    from promptstudio.llm.loadcheck import CHECK_FLAG
    from promptstudio.selftest import GUI_CHECK_FLAG

    if argv[:1] == [GUI_CHECK_FLAG]:
        from promptstudio.gui import selfcheck

        return selfcheck.main()
    if argv[:1] == [CHECK_FLAG]:
        from promptstudio.llm import loadcheck

        return loadcheck.main(argv[1:])
    if _window_only(argv):
        from promptstudio.gui.app import main as gui_main

        return gui_main([])
    from promptstudio.launch import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
