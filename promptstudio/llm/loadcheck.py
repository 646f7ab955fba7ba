"""The first time a model file is used on this computer, try it in a child process.

llama.cpp is native code. A kernel that is wrong for this CPU (AMX on some Xeons did exactly
that) or a file it misreads kills the whole process, window included, with no Python
exception to catch. So before a model file is loaded into PromptStudio's own process for the
first time, a child process loads it and decodes a few tokens through the same engine, with
the same settings. If the child dies, the user is told which model file failed, that the
fault is in llama.cpp and not in their project, and what to try. A pass is remembered per
model file, llama.cpp build and machine (in the data folder), so the check runs once.

The child is `python -m promptstudio.llm.loadcheck`, or the built app with `CHECK_FLAG`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from promptstudio.llm.base import BackendError, GenerationParams, ModelFileError
from promptstudio.paths import app_home, is_frozen

CHECK_FLAG = "--check-model"
"""The built app's hidden argument that runs the check (see packaging/launcher.py)."""
RECORD_FILE = "model-checks.json"
TIMEOUT_S = 600
"""A large model on a slow disk may take minutes to page in; longer than this is a failure."""
TRIAL_PROMPTS = ("Input: cat\nOutput: cats\nInput: dog\nOutput:",
                 "Question: What colour is the sky on a clear day?\nAnswer:")
TRIAL_TOKENS = 4

log = logging.getLogger(__name__)
_checking = threading.Lock()


class ModelCrashError(BackendError):
    """llama.cpp died while trying a model file in a child process."""


@dataclass(frozen=True)
class Trial:
    """How to load the model: the settings the app's own engine will use."""

    path: Path
    n_ctx: int
    n_threads: int
    n_seq_max: int

    def arguments(self) -> list[str]:
        return [str(self.path), "--n-ctx", str(self.n_ctx), "--threads", str(self.n_threads),
                "--sequences", str(self.n_seq_max)]


# -- in the app's process -----------------------------------------------------------------


def ensure_model_runs(trial: Trial, *, again: bool = False) -> None:
    """Raise `ModelCrashError` (or `ModelFileError`) unless this model file is known to run
    here; try it in a child process the first time, or every time when `again`."""
    key = check_key(trial.path)
    with _checking:  # threads loading the same model at once wait for one check
        if key in _passed() and not again:
            return
        seconds = check_in_child(trial)
        _remember(key, trial.path, seconds)


def check_in_child(trial: Trial, timeout: float = TIMEOUT_S) -> float:
    """Load the model and decode a few tokens in a child process; the seconds it took."""
    started = time.perf_counter()
    log.info("Trying the model file %s in a child process", trial.path)
    try:
        with tempfile.TemporaryDirectory(prefix="promptstudio-check-") as folder:
            report = Path(folder) / "report.json"
            done = subprocess.run(child_command(trial, report), capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  errors="replace")
            reported = _reported_error(report)
    except subprocess.TimeoutExpired as exc:
        raise ModelCrashError(
            f"The model file {trial.path.name} did not load and answer within "
            f"{timeout / 60:.0f} minutes when PromptStudio tried it. It may be too large for "
            "this computer's memory or disk speed. Choose a smaller model file (a smaller "
            "model, or a stronger quantization such as Q4_K_M)."
        ) from exc
    seconds = time.perf_counter() - started
    if done.returncode == 0:
        return seconds
    log.warning("The model check of %s ended with status %s; its output:\n%s\n%s",
                trial.path, done.returncode, done.stdout[-4000:], done.stderr[-4000:])
    if reported is not None:
        raise ModelFileError(reported)
    raise ModelCrashError(crash_message(trial.path, done.returncode))


def child_command(trial: Trial, report: Path) -> list[str]:
    """The command that runs the check, in a built app or from source. The child writes
    an ordinary error to `report` (a windowed app on Windows may have no stdout at all)."""
    arguments = [*trial.arguments(), "--report", str(report)]
    if is_frozen():
        return [sys.executable, CHECK_FLAG, *arguments]
    return [sys.executable, "-m", "promptstudio.llm.loadcheck", *arguments]


def crash_message(path: Path, returncode: int) -> str:
    """What a dead child means for the user: which model, whose fault, what to try."""
    how = _how_it_died(returncode)
    if how == "killed":
        return (f"The model file {path.name} could not be tried: the system stopped the "
                "process that was loading it, which usually means the computer ran out of "
                "memory. Your project is safe. Close other programs, or choose a smaller "
                "model file (a smaller model, or a stronger quantization such as Q4_K_M).")
    return (f"llama.cpp, the engine that runs local models, crashed ({how}) while trying the "
            f"model file {path.name} in a separate process, so PromptStudio did not load it. "
            "The fault is in llama.cpp or in this model file on this computer, not in your "
            "project, which is safe. Choose another model file (another quantization of the "
            "same model, or the bundled model) or a model server. If the bundled model does "
            "this too, run `PromptStudio --self-test` and send its output and the log file "
            "when you ask for help.")


def _how_it_died(returncode: int) -> str:
    if returncode < 0:  # POSIX: killed by a signal
        number = -returncode
        if number == signal.SIGKILL:
            return "killed"
        names = {signal.SIGSEGV: "a memory access fault, SIGSEGV",
                 signal.SIGILL: "an instruction this processor does not have, SIGILL",
                 signal.SIGABRT: "it aborted, SIGABRT",
                 signal.SIGBUS: "a bus error, SIGBUS",
                 signal.SIGFPE: "an arithmetic fault, SIGFPE"}
        with contextlib.suppress(ValueError):
            return names.get(number) or signal.Signals(number).name
        return f"signal {number}"
    windows = {0xC0000005: "a memory access fault", 0xC000001D: "an illegal instruction",
               0xC0000409: "a stack buffer overrun", 0xC00000FD: "a stack overflow",
               3: "it aborted"}
    return windows.get(returncode & 0xFFFFFFFF, f"exit status {returncode}")


def _reported_error(report: Path) -> str | None:
    """The message of an ordinary error the child reported, such as a damaged file."""
    try:
        said = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(said["error"]) if isinstance(said, dict) and said.get("error") else None


# -- what was checked ---------------------------------------------------------------------


def check_key(path: Path) -> str:
    """The model file (as it is now), the llama.cpp build and the machine, as one key."""
    import llama_cpp

    stat = path.stat()
    library = Path(llama_cpp.__file__).parent / "lib"
    build = sorted((p.name, p.stat().st_size) for p in library.glob("*") if p.is_file())
    parts = {
        "model": [str(path.resolve()), stat.st_size, stat.st_mtime_ns],
        "llama_cpp": [llama_cpp.__version__, build,
                      llama_cpp.llama_print_system_info().decode(errors="replace")],
        "machine": [platform.system(), platform.machine(), _cpu()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cpu() -> str:
    """The processor's model and features, as the system names them."""
    wanted: dict[str, str] = {}
    with (contextlib.suppress(OSError),
          open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info):
        for line in info:
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "flags", "Features", "CPU implementer", "CPU part"):
                wanted.setdefault(key, value.strip())
            elif not key and wanted:
                break
    return json.dumps(wanted, sort_keys=True) if wanted else platform.processor()


def _record_path() -> Path:
    return app_home() / RECORD_FILE


def _passed() -> dict[str, dict]:
    try:
        data = json.loads(_record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(key: str, path: Path, seconds: float) -> None:
    records = _passed()
    records[key] = {"model": str(path), "seconds": round(seconds, 2),
                    "checked": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = _record_path()
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        partial.write_text(json.dumps(records, indent=1), encoding="utf-8")
        os.replace(partial, target)
    except OSError:  # an unwritable data folder only means the check runs again next time
        log.warning("Could not record the model check in %s", target, exc_info=True)
        partial.unlink(missing_ok=True)


# -- in the child -------------------------------------------------------------------------


def run_trial(trial: Trial) -> None:
    """Load the model as the app will and decode a few tokens, in this process."""
    from promptstudio.llm.engine import LlamaEngine

    engine = LlamaEngine(str(trial.path), n_ctx=trial.n_ctx, n_threads=trial.n_threads,
                         n_seq_max=trial.n_seq_max)
    try:
        engine.generate(list(TRIAL_PROMPTS), GenerationParams(max_tokens=TRIAL_TOKENS))
    finally:
        engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The child: exit 0 when the model ran, 1 with the error in the report when it failed
    in a way Python could catch (a crash needs no help to be noticed)."""
    import argparse

    parser = argparse.ArgumentParser(prog="promptstudio.llm.loadcheck")
    parser.add_argument("path", type=Path)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--report", type=Path, help="where to write the outcome as JSON")
    args = parser.parse_args(argv)
    try:
        run_trial(Trial(args.path, args.n_ctx, args.threads, args.sequences))
        outcome = {"ok": True}
    except BackendError as exc:
        outcome = {"ok": False, "error": str(exc)}
    except Exception as exc:  # reported in words rather than taken for a crash
        outcome = {"ok": False, "error": f"PromptStudio could not try the model file "
                                         f"{args.path.name} ({type(exc).__name__}: {exc})."}
    if args.report is not None:
        args.report.write_text(json.dumps(outcome), encoding="utf-8")
    print(json.dumps(outcome), flush=True)
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
