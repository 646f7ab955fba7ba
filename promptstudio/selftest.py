"""`promptstudio --self-test`: does this copy of PromptStudio work on this computer?

For users and for support: it checks, in order, that the shipped resources are there, that
the data folder can be written, that SQLite works (create, write, WAL, integrity check), that
the bundled model is found whole and loads (first in a child process, so that a crash inside
llama.cpp is reported as this check's failure), that it answers a few rows of a bundled sample,
and that the window can be drawn (offscreen, in a child process, so that a broken Qt cannot
take the report down with it). It prints one line per check and exits 0 when all pass, 1
otherwise, with the reason. With `--json` the report goes to stderr and stdout gets one JSON
object: each check's status, the seconds it took, and what it found.

Nothing here imports Qt; the window check runs `promptstudio.gui.selfcheck` in a child.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from promptstudio.paths import app_home, is_frozen, resource

SAMPLE_ID = "product_reviews"
SAMPLE_ROWS = 4
SAMPLE_DEMOS = 3
GUI_TIMEOUT_S = 90
GUI_CHECK_FLAG = "--gui-check"
"""The built app's hidden argument that runs the window check (see packaging/launcher.py)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("promptstudio")
    except PackageNotFoundError:
        return "unknown"


VERSION = _version()


class CheckFailed(Exception):
    """A check found something wrong; the message says what, in words a user can act on."""


@dataclass
class CheckResult:
    name: str
    status: str = "ok"  # "ok", "failed" or "skipped"
    seconds: float = 0.0
    detail: str = ""
    facts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_json(self) -> dict:
        return {"status": self.status, "ok": self.ok, "seconds": round(self.seconds, 3),
                "detail": self.detail, **self.facts}


@dataclass
class Context:
    """What the checks share: a scratch folder, and the model once it is found."""

    scratch: Path
    model_path: Path | None = None
    backend: object | None = None
    facts: dict = field(default_factory=dict)


# -- the checks -------------------------------------------------------------------------


def check_resources(ctx: Context) -> str:
    meta = resource("meta_prompts")
    prompts = sorted(p.name for p in meta.glob("*.txt")) if meta.is_dir() else []
    if not prompts:
        raise CheckFailed(f"The meta-prompts are missing from {meta}. Reinstall PromptStudio.")
    empty = [name for name in prompts if not (meta / name).read_text(encoding="utf-8").strip()]
    if empty:
        raise CheckFailed(f"Some meta-prompts are empty: {', '.join(empty)}. Reinstall.")
    from promptstudio import workflows

    try:
        samples = workflows.samples()
    except (OSError, ValueError, KeyError) as exc:
        raise CheckFailed(f"The bundled samples cannot be read ({exc}). Reinstall.") from exc
    missing = [s.id for s in samples if not s.path.is_file()]
    if not samples or missing:
        raise CheckFailed(f"Bundled sample files are missing: {', '.join(missing) or 'all'}.")
    ctx.facts.update(meta_prompts=len(prompts), samples=[s.id for s in samples])
    return f"{len(prompts)} meta-prompts, {len(samples)} samples in {resource()}"


def check_data_folder(ctx: Context) -> str:
    try:
        home = app_home()
        probe = home / f".selftest-{os.getpid()}"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise CheckFailed(f"The data folder cannot be written ({exc}). Check its "
                          "permissions and that the disk is not full.") from exc
    free_gb = shutil.disk_usage(home).free / 1e9
    ctx.facts.update(data_folder=str(home), free_gb=round(free_gb, 1))
    detail = f"{home} ({free_gb:.1f} GB free)"
    if free_gb < 0.5:
        raise CheckFailed(f"Less than 0.5 GB is free in {home}; projects may not be saved.")
    return detail


def check_database(ctx: Context) -> str:
    path = ctx.scratch / "selftest.sqlite"
    try:
        conn = sqlite3.connect(path)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CheckFailed(f"SQLite cannot use write-ahead logging here (mode {mode}); "
                                  "is the data folder on a network drive?")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            with conn:
                conn.executemany("INSERT INTO t (body) VALUES (?)",
                                 [(f"row {i} ✓",) for i in range(100)])
            count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            has_json = conn.execute("SELECT json_extract('{\"a\": 1}', '$.a')").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CheckFailed(f"SQLite does not work in {ctx.scratch}: {exc}.") from exc
    if count != 100 or check != "ok" or has_json != 1:
        raise CheckFailed(f"SQLite gave wrong answers (rows {count}, integrity {check!r}).")
    ctx.facts["sqlite"] = sqlite3.sqlite_version
    return f"SQLite {sqlite3.sqlite_version}: create, write, WAL, JSON and integrity check ok"


def check_model(ctx: Context) -> str:
    from promptstudio.llm import bundled
    from promptstudio.llm.base import BackendError

    try:
        path = bundled.bundled_model_path()
        if path.name == bundled.BUNDLED_MODEL_FILE:
            bundled.verify_bundled_model(path)
    except BackendError as exc:
        raise CheckFailed(str(exc)) from exc
    try:
        import llama_cpp

        from promptstudio.llm.loadcheck import ensure_model_runs
        from promptstudio.llm.local import LocalBackend
        from promptstudio.llm.native import loaded_variant
    except (ImportError, OSError) as exc:
        raise CheckFailed(f"llama.cpp cannot be loaded on this computer ({exc}). "
                          "Reinstall PromptStudio.") from exc
    try:
        backend = LocalBackend()
        # Tried in a child process every time, remembered or not: a crash inside llama.cpp
        # must fail this check, not end the self-test without a report.
        ensure_model_runs(backend.trial, again=True)
        backend.load()
    except (BackendError, OSError, RuntimeError, ValueError) as exc:
        raise CheckFailed(str(exc)) from exc
    ctx.model_path, ctx.backend = path, backend
    system = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    # "CPU : SSE3 = 1 | AVX2 = 1 | ...": the features llama.cpp was built to use.
    features = [part.split("=")[0].split(":")[-1].strip() for part in system.split("|")
                if part.strip().endswith("= 1")]
    build = loaded_variant()
    ctx.facts.update(model_path=str(path), model_bytes=path.stat().st_size,
                     llama_cpp=llama_cpp.__version__, llama_build=build, cpu_features=features)
    return (f"{path.name} ({path.stat().st_size / 1e6:.0f} MB, checksum ok) from "
            f"{path.parent}; llama.cpp {llama_cpp.__version__} ({build} build), CPU: "
            f"{' '.join(features)}")


def check_evaluation(ctx: Context) -> str:
    if ctx.backend is None:
        raise SkipCheck("needs the model")
    from promptstudio import workflows
    from promptstudio.store.workspace import Workspace

    workspace = Workspace(ctx.scratch / "projects")
    project, _ = workflows.create_sample_project(workspace, SAMPLE_ID)
    try:
        sample = next(s for s in workflows.samples() if s.id == SAMPLE_ID)
        result = workflows.evaluate_instruction(
            project, ctx.backend, sample.instruction, demos=SAMPLE_DEMOS, split="dev",
            limit=SAMPLE_ROWS)
    finally:
        project.close()
    answers = [e.answer for e in result.evaluations]
    ctx.facts.update(rows=result.n, accuracy=round(result.score, 3), answers=answers)
    if result.n != SAMPLE_ROWS or not any(a.strip() for a in answers):
        raise CheckFailed(f"The model gave {result.n} answers for {SAMPLE_ROWS} rows: "
                          f"{answers!r}.")
    if result.score <= 0:
        raise CheckFailed(f"The model answered every sample row wrongly ({answers!r}); "
                          "its arithmetic may be broken on this CPU.")
    return (f"{result.n} rows of {sample.title!r} with {SAMPLE_DEMOS} demonstrations: "
            f"accuracy {result.score:.2f}")


def gui_check_command() -> list[str]:
    """How to start the window check in a child process, in a built app or from source."""
    if is_frozen():
        return [sys.executable, GUI_CHECK_FLAG]
    return [sys.executable, "-m", "promptstudio.gui.selfcheck"]


def check_window(ctx: Context) -> str:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PROMPTSTUDIO_HOME=str(ctx.scratch / "gui-home"))
    try:
        done = subprocess.run(gui_check_command(), env=env, capture_output=True, text=True,
                              timeout=GUI_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"The window did not open within {GUI_TIMEOUT_S} s.") from exc
    except OSError as exc:
        raise CheckFailed(f"Could not start the window check: {exc}.") from exc
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if done.returncode != 0 or not report.get("ok"):
        said = report.get("error") or _tail(done.stderr) or f"exit status {done.returncode}"
        raise CheckFailed(f"The window cannot be drawn: {said}")
    ctx.facts["window"] = report
    return (f"main window and a chart drawn offscreen ({report.get('width')}x"
            f"{report.get('height')}, Qt {report.get('qt')}, {report.get('charts')}, "
            f"styles: {', '.join(report.get('styles', []))})")


def _tail(text: str, lines: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


class SkipCheck(Exception):
    """A check that cannot run because an earlier one failed."""


CHECKS: dict[str, Callable[[Context], str]] = {
    "resources": check_resources,
    "data folder": check_data_folder,
    "database": check_database,
    "model": check_model,
    "evaluation": check_evaluation,
    "window": check_window,
}


# -- running and reporting --------------------------------------------------------------


def run(names: Sequence[str] | None = None,
        on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run the checks (all by default) and return their results; never raises."""
    results = []
    with tempfile.TemporaryDirectory(prefix="promptstudio-selftest-") as scratch:
        ctx = Context(Path(scratch))
        try:
            for name in names or list(CHECKS):
                result = _run_one(name, CHECKS[name], ctx)
                results.append(result)
                if on_result:
                    on_result(result)
        finally:
            close = getattr(ctx.backend, "close", None)
            if close:
                with contextlib.suppress(Exception):
                    close()
    return results


def _run_one(name: str, check: Callable[[Context], str], ctx: Context) -> CheckResult:
    result = CheckResult(name)
    before = dict(ctx.facts)
    started = time.perf_counter()
    try:
        result.detail = check(ctx)
    except SkipCheck as exc:
        result.status, result.detail = "skipped", str(exc)
    except CheckFailed as exc:
        result.status, result.detail = "failed", str(exc)
    except Exception as exc:  # a bug or a broken install: report it, do not crash
        result.status, result.detail = "failed", f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    result.facts = {k: v for k, v in ctx.facts.items() if before.get(k) != v}
    return result


def summary(results: Sequence[CheckResult], seconds: float) -> dict:
    failed = [r for r in results if r.status == "failed"]
    return {
        "ok": not failed and bool(results),
        "version": VERSION,
        "seconds": round(seconds, 3),
        "built_app": is_frozen(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "failed": [r.name for r in failed],
        "reason": "; ".join(f"{r.name}: {r.detail}" for r in failed),
        "checks": {r.name: r.as_json() for r in results},
    }


def _line(result: CheckResult) -> str:
    mark = {"ok": "ok", "failed": "FAILED", "skipped": "skipped"}[result.status]
    return f"  {mark:<8}{result.name:<13}{result.seconds:6.1f} s  {result.detail}"


def main(json_output: bool = False, names: Sequence[str] | None = None) -> int:
    """Print the report; 0 when every check passed, 1 otherwise."""
    out = sys.stderr if json_output else sys.stdout
    started = time.perf_counter()
    print(f"PromptStudio {VERSION} self-test ({'built app' if is_frozen() else 'from source'}, "
          f"{platform.system()} {platform.machine()})", file=out, flush=True)
    results = run(names, on_result=lambda r: print(_line(r), file=out, flush=True))
    report = summary(results, time.perf_counter() - started)
    with contextlib.suppress(Exception):
        from promptstudio import applog

        report["log_file"] = str(applog.log_file())
    if report["ok"]:
        print(f"All {len(results)} checks passed in {report['seconds']:.1f} s.", file=out)
    else:
        print(f"Self-test FAILED: {report['reason']}", file=out)
    if report.get("log_file"):
        print(f"Log file: {report['log_file']}", file=out, flush=True)
    if json_output:
        print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(json_output="--json" in sys.argv[1:]))
