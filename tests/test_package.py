"""The built app (`make package-test`): builds dist/PromptStudio/ and runs the real program.

Slow (a build takes minutes, the first one also compiles llama.cpp), so these run only when
asked for with `-m slow`; without it tests/conftest.py deselects them, so `make test` leaves
them out. They need what packaging/build-deps.sh installs (Xvfb, objdump), which `make
package-test` runs first. PROMPTSTUDIO_SKIP_BUILD=1 tests the app already in dist/ without
rebuilding it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
APP = DIST / "PromptStudio"
EXE = APP / "PromptStudio"
MODEL = APP / "models" / "gemma-3-270m-q4_k_m.gguf"
SIZE_BUDGET_MB = 600
ALIVE_AFTER_S = 5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"),
                       reason="the Linux build; Windows and macOS are built on those systems"),
]


@pytest.fixture(scope="module", autouse=True)
def build():
    if os.environ.get("PROMPTSTUDIO_SKIP_BUILD") != "1":
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py")], cwd=ROOT,
                       check=True, timeout=3600)
    assert EXE.exists(), "the build did not produce dist/PromptStudio/PromptStudio"


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """What a double-click gives: no Python, no virtualenv, no project on any path."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), **extra}


def self_test(home: Path, platform_name: str = "offscreen",
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in bare_env(
        home, QT_QPA_PLATFORM=platform_name, **(env or {})).items()), str(EXE),
        "--self-test", "--json"], capture_output=True, text=True, timeout=600, cwd=home)


def test_the_built_self_test_passes_with_no_python_around(tmp_path):
    done = self_test(tmp_path)
    print(done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["built_app"] is True
    checks = report["checks"]
    assert all(check["status"] == "ok" for check in checks.values()), checks
    # The model came from beside the executable, not from a data folder or a package.
    assert checks["model"]["model_path"] == str(MODEL)
    # The data folder is the platform's, under the HOME it was given.
    assert checks["data folder"]["data_folder"] == str(tmp_path / ".local/share/PromptStudio")
    # Portable llama.cpp: the build for this CPU's level (AVX-512 where it has it), never AMX.
    from promptstudio.llm import native

    expected = native.best_variant(native.cpu_features(), {"avx512"})
    assert checks["model"]["llama_build"] == expected
    features = checks["model"]["cpu_features"]
    assert "AVX2" in features and not [f for f in features if f.startswith("AMX")]
    assert ("AVX512" in features) == (expected == "avx512"), features
    assert checks["window"]["window"]["platform"] == "offscreen"
    assert (tmp_path / ".local/share/PromptStudio/logs/promptstudio.log").exists()


def test_the_built_app_loads_each_build_whole(tmp_path):
    """Asked for the baseline (as on a CPU without AVX-512), the app loads the baseline's
    libraries only: no copy of either build at the top of _internal/ can slip in."""
    internal = APP / "_internal"
    assert not [p.name for p in internal.iterdir() if p.name.startswith(("libggml", "libllama"))]
    done = self_test(tmp_path, env={"PROMPTSTUDIO_LLAMA_VARIANT": "avx2"})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    model = report["checks"]["model"]
    assert model["status"] == "ok" and model["llama_build"] == "avx2", model
    assert not [f for f in model["cpu_features"] if f.startswith(("AVX512", "AMX"))]


def test_without_its_models_folder_the_app_fails_and_says_why(tmp_path):
    hidden = APP / "models.hidden"
    (APP / "models").rename(hidden)
    try:
        done = self_test(tmp_path)
    finally:
        hidden.rename(APP / "models")
    assert done.returncode == 1
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == ["model"]
    assert "Unpack the whole PromptStudio download again" in report["checks"]["model"]["detail"]


def run_window_for_a_while(tmp_path: Path, **env: str) -> tuple[int | None, str]:
    log = tmp_path / "window.out"
    with log.open("w") as out:
        process = subprocess.Popen(["env", "-i", *(f"{k}={v}" for k, v in bare_env(
            tmp_path, **env).items()), str(EXE)], stdout=out, stderr=subprocess.STDOUT,
            cwd=tmp_path, start_new_session=True)
        try:
            time.sleep(ALIVE_AFTER_S)
            status = process.poll()
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    return status, log.read_text(errors="replace")


def test_the_window_stays_open_offscreen(tmp_path):
    status, output = run_window_for_a_while(tmp_path, QT_QPA_PLATFORM="offscreen")
    assert status is None, f"the app exited with {status}: {output}"


@pytest.fixture
def x_display(tmp_path):
    xvfb = shutil.which("Xvfb")
    assert xvfb, "Xvfb is not installed: run packaging/build-deps.sh (make package-test does)"
    display = f":{90 + os.getpid() % 100}"
    server = subprocess.Popen([xvfb, display, "-screen", "0", "1280x1024x24", "-nolisten",
                               "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    assert server.poll() is None, f"Xvfb did not start on display {display}"
    yield display
    server.terminate()
    server.wait(timeout=10)


def test_the_window_opens_on_x11(tmp_path, x_display):
    """The xcb plugin and the X libraries it needs were bundled."""
    done = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in bare_env(
        tmp_path, DISPLAY=x_display, QT_QPA_PLATFORM="xcb").items()), str(EXE),
        "--gui-check"], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["platform"] == "xcb", done.stdout + done.stderr
    status, output = run_window_for_a_while(tmp_path, DISPLAY=x_display)
    assert status is None, f"the app exited with {status}: {output}"


def test_the_build_is_lean(capsys):
    files = [p for p in APP.rglob("*") if p.is_file() and not p.is_symlink()]
    total = sum(p.stat().st_size for p in files)
    names = {p.name for p in files}
    with capsys.disabled():
        print(f"\ndist/PromptStudio: {total / 1e6:.0f} MB in {len(files)} files")
        for path in sorted(files, key=lambda p: -p.stat().st_size)[:10]:
            print(f"  {path.stat().st_size / 1e6:7.1f} MB  {path.relative_to(APP)}")
    assert total < SIZE_BUDGET_MB * 1e6
    assert MODEL.stat().st_size == 253_113_024
    # Qt modules the app does not use were left out, and the model's package too.
    unwanted = re.compile(r"Qt6(Qml|Quick|WebEngine|3D|Multimedia|Pdf|Designer)|"
                          r"gemma-3-270m-q4_k_m\.gguf\.part|libqgtk3|libqeglfs")
    assert not [name for name in names if unwanted.search(name)]
    internal = APP / "_internal"
    assert (internal / "llama_cpp" / "lib" / "libllama.so").exists()
    assert not list((internal / "llama_cpp" / "lib").glob("*.so.0.*"))
    for plugin in ("platforms/libqxcb.so", "platforms/libqoffscreen.so",
                   "platforms/libqwayland.so", "imageformats/libqsvg.so"):
        assert list(internal.rglob(plugin)), plugin
    assert (internal / "promptstudio" / "resources" / "samples" / "samples.json").exists()
    assert (internal / "promptstudio" / "resources" / "icons" / "promptstudio-256.png").exists()


def test_the_baseline_has_no_avx512_and_no_build_has_amx():
    objdump = shutil.which("objdump")
    assert objdump, "objdump is not installed: run packaging/build-deps.sh (binutils)"
    package = APP / "_internal" / "llama_cpp"
    baseline = list((package / "lib").glob("libggml-cpu.so*"))
    wide = list((package / "lib-avx512").glob("libggml-cpu.so*"))
    assert baseline and wide, "a llama.cpp CPU library is missing from the build"
    for lib in [*baseline, *wide]:
        code = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(lib)],
                              capture_output=True, text=True, check=True).stdout
        assert "%tmm" not in code and "ldtilecfg" not in code, f"AMX code in {lib}"
        if lib in baseline:
            assert "%zmm" not in code and "{%k" not in code, f"AVX-512 code in {lib}"


def test_the_tarball_holds_the_app():
    [archive] = DIST.glob("PromptStudio-*-linux-x86_64.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"PromptStudio/PromptStudio", "PromptStudio/install-desktop-entry.sh",
            "PromptStudio/README.txt", "PromptStudio/models/NOTICE.txt",
            "PromptStudio/models/gemma-3-270m-q4_k_m.gguf"} <= names


def test_the_built_app_finds_every_method(tmp_path):
    """Methods are found by importing the package's modules (`method._load_all`), which a
    frozen app must support as the source tree does."""
    from promptstudio.optimize.method import method_named, methods

    done = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in bare_env(tmp_path).items()),
                           str(EXE), "methods"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in methods():
        assert f"(`--method {name}`)" in done.stdout, method_named(name).title
