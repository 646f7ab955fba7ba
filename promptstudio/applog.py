"""The app's log file: in a windowed app there is no console, so everything goes here.

A built app on Windows or macOS may start with `sys.stdout` and `sys.stderr` set to None;
anything that prints (llama.cpp's loader, a stray warning) would then crash it. `setup`
points them at the log file as well. A crash in native code (llama.cpp, Qt) leaves no
Python exception to log, so `faulthandler` writes every thread's stack to `crashes.log`
beside it when the process dies of a fatal signal.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading
from pathlib import Path

from promptstudio.paths import app_home

_configured: Path | None = None


def log_file() -> Path:
    folder = app_home() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "promptstudio.log"


def setup(level: int = logging.INFO) -> Path:
    """Log to a rotating file in the data folder, and catch what would otherwise be lost."""
    global _configured
    if _configured is not None:
        return _configured
    path = log_file()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    stream = None
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            stream = stream or open(path.with_suffix(".console.log"), "a",  # noqa: SIM115
                                    encoding="utf-8", buffering=1)
            setattr(sys, name, stream)
    crashes = open(path.with_name("crashes.log"), "a", encoding="utf-8")  # noqa: SIM115
    faulthandler.enable(crashes, all_threads=True)  # the file stays open for the process
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value,
                                                      args.exc_traceback)
    _configured = path
    return path


def _log_uncaught(kind, value, traceback) -> None:
    logging.getLogger("promptstudio").error("Uncaught exception", exc_info=(kind, value,
                                                                            traceback))
