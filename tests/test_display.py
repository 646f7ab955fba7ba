"""The real window on a real X display (Xvfb), and plain words where there is no display.

`make test` installs Xvfb and xdotool on Debian/Ubuntu (packaging/test-deps.sh). Elsewhere,
the test that needs them is skipped with the reason in the summary; on a Debian/Ubuntu machine
it fails instead, since `make test` should have installed them.
"""

from __future__ import annotations

import configparser
import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptstudio import workflows
from promptstudio.gui import display
from promptstudio.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60
PLUGIN_DUMP = "Available platform plugins"


def gui_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptstudio", "gui", *args]


def bare_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without any display, with its own data and settings folders."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XAUTHORITY")}
    env.update(PROMPTSTUDIO_HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), **extra)
    return env


# -- no display -----------------------------------------------------------------------------


def test_without_a_display_the_window_says_so_in_plain_words(tmp_path):
    done = subprocess.run(gui_command(), env=bare_environment(tmp_path), cwd=ROOT, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 2
    assert "there is no display here" in done.stderr
    assert "promptstudio --help" in done.stderr
    assert PLUGIN_DUMP not in done.stderr and "Traceback" not in done.stderr


def test_a_display_that_does_not_answer_is_named(tmp_path):
    done = subprocess.run(gui_command(), env=bare_environment(tmp_path, DISPLAY=":97"),
                          cwd=ROOT, text=True, capture_output=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "the display ':97' does not answer" in done.stderr
    assert PLUGIN_DUMP not in done.stderr and "Traceback" not in done.stderr


def test_offscreen_needs_no_display():
    assert display.problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def test_a_missing_x11_library_is_named_with_the_package_that_brings_it():
    """The loader's own complaint, from a real failed load, becomes an install command."""
    with pytest.raises(OSError) as failed:
        ctypes.CDLL("libxcb-promptstudio-test.so.7")
    said = display.library_message(str(failed.value))
    assert "libxcb-promptstudio-test.so.7" in said
    assert "sudo apt install libxcb-promptstudio-test7 libxcb-cursor0" in said


@pytest.mark.parametrize(("library", "package"), [
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libEGL.so.1", "libegl1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
])
def test_debian_package_names_follow_debian_naming(library, package):
    assert display.debian_package(library) == package


def test_qt_xcb_plugin_loads_here():
    """What `make run` installs is what the xcb plugin needs: it loads, nothing missing."""
    plugin = display.xcb_plugin()
    assert plugin is not None and plugin.is_file()
    assert display.missing_library_problem(plugin) is None


# -- the real window on Xvfb ----------------------------------------------------------------


def _needs(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    if shutil.which("dpkg-query"):
        pytest.fail(f"{tool} is not installed; `make test` installs it "
                    "(packaging/test-deps.sh)")
    pytest.skip(f"{tool} is not installed and this system has no apt to install it: the "
                "window was not tried on an X display")


@contextlib.contextmanager
def virtual_display() -> Iterator[str]:
    """An Xvfb server on a free display number; its name, such as ':12'."""
    xvfb = _needs("Xvfb")
    read_end, write_end = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0",
                               "1400x1000x24", "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def xdotool(*args: str, env: dict[str, str], timeout: float = START_SECONDS) -> str:
    done = subprocess.run([_needs("xdotool"), *args], env=env, text=True,
                          capture_output=True, timeout=timeout)
    assert done.returncode == 0, f"xdotool {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def test_the_real_window_opens_a_project_on_an_x_display_and_answers_keys(tmp_path):
    env = bare_environment(tmp_path, QT_QPA_PLATFORM="xcb")
    project, _ = workflows.create_sample_project(
        Workspace(tmp_path / "home" / "projects"), "product_reviews", "reviews")
    project.close()
    with virtual_display() as name:
        env["DISPLAY"] = name
        app = subprocess.Popen(gui_command("reviews"), env=env, cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            window = xdotool("search", "--sync", "--onlyvisible", "--name",
                             "^reviews — PromptStudio$", env=env).splitlines()[0]
            geometry = xdotool("getwindowgeometry", "--shell", window, env=env)
            size = dict(line.split("=") for line in geometry.splitlines())
            assert int(size["WIDTH"]) > 600 and int(size["HEIGHT"]) > 400
            xdotool("windowfocus", "--sync", window, env=env)
            xdotool("key", "--clearmodifiers", "ctrl+q", env=env)  # File > Quit
            _, err = app.communicate(timeout=START_SECONDS)
        finally:
            if app.poll() is None:
                app.kill()
                app.communicate()
        assert app.returncode == 0, err
    saved = configparser.ConfigParser()
    saved.read(tmp_path / "config" / "PromptStudio" / "PromptStudio.conf")
    assert saved.get("General", "lastProject").endswith("reviews.sqlite")
    assert saved.has_option("General", "geometry"), "quitting went through the close path"
