"""Build the PromptStudio app: `make package` on Linux, `py packaging\\build.py` on Windows,
`python3 packaging/build.py` on macOS.

1. A separate build environment, build/package-venv (the development .venv is not touched).
2. llama-cpp-python compiled for any x86-64 CPU with AVX2 (2013 on), not just this one, by
   packaging/llama_build.py: the same rules, and the same cached wheel, as the development
   venv and CI use.
3. The project installed into it normally (not editable), with PyInstaller.
4. PyInstaller with packaging/promptstudio.spec: dist/PromptStudio/ (dist/PromptStudio.app on
   macOS), one folder, windowed.
5. Debug symbols stripped from Python's own libraries; the duplicate llama.cpp libraries
   turned into links. The bundled model, as a plain file, into dist/PromptStudio/models/
   (Contents/Resources/models in the .app), with the Gemma notice.
6. On Linux: the desktop-entry installer and a README beside the executable, and the tarball
   dist/PromptStudio-VERSION-linux-x86_64.tar.gz. Windows and macOS installers are made by
   packaging/windows/promptstudio.iss and packaging/macos/make-dmg.sh on those systems.

Options: --skip-deps (keep the build environment's requirements), --no-archive.
Environment: PROMPTSTUDIO_CMAKE_ARGS replaces the CPU flags (see packaging/llama_build.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import llama_build  # packaging/llama_build.py: the one set of rules for compiling llama.cpp

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
VENV = BUILD / "package-venv"
MODEL_CACHE = BUILD / "model"
DIST = ROOT / "dist"
APP_NAME = "PromptStudio"
SPEC = ROOT / "packaging" / "promptstudio.spec"

GEMMA_NOTICE = """\
The model file in this folder is Gemma 3 270M (instruction tuned), quantized to Q4_K_M.
Gemma is provided under and subject to the Gemma Terms of Use found at
ai.google.dev/gemma/terms
"""


def say(text: str) -> None:
    print(f"[build] {text}", flush=True)


def run(*command: str | Path, env: dict | None = None, cwd: Path = ROOT) -> None:
    printable = " ".join(str(part) for part in command)
    say(printable if len(printable) < 300 else printable[:300] + " ...")
    subprocess.run([str(part) for part in command], check=True, env=env, cwd=cwd)


def venv_python() -> Path:
    if sys.platform == "win32":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def prepare_environment() -> None:
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)
        run(venv_python(), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    llama_build.install(venv_python())
    # The project and its other requirements; the llama-cpp-python just installed satisfies
    # the pin, so pip keeps it. --no-build-isolation is not used: setuptools builds the
    # project in its own environment as usual.
    run(venv_python(), "-m", "pip", "install", "--quiet", f"{ROOT}[package]")


def install_project() -> None:
    """The project as it is now: PyInstaller bundles the installed copy, not the source."""
    run(venv_python(), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
        str(ROOT))


def show_llama_build() -> str:
    code = ("import llama_cpp; print(llama_cpp.llama_print_system_info().decode().strip())")
    out = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True,
                         check=True, cwd=BUILD).stdout.strip()
    say(f"llama.cpp in the build: {out}")
    return out


def model_file() -> Path:
    """The bundled GGUF, assembled once into build/model/ by the project's own code."""
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from pathlib import Path; "
            "from promptstudio.llm.bundled import bundled_model_path; "
            "print(bundled_model_path(Path(sys.argv[1])))")
    out = subprocess.run([str(venv_python()), "-c", code, str(MODEL_CACHE)],
                         capture_output=True, text=True, check=True, cwd=BUILD).stdout
    return Path(out.strip().splitlines()[-1])


def run_pyinstaller() -> None:
    # Not from the repository root: there the source tree's `promptstudio` (which has no
    # `resources` inside) would shadow the installed package that PyInstaller must see.
    run(venv_python(), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--workpath", BUILD / "pyinstaller", "--distpath", DIST, SPEC, cwd=BUILD)


def strip_python() -> None:
    """Python built from source (pyenv) keeps its debug symbols in libpython and the standard
    library's extension modules, ~20 MB of them: strip those. Only those: PyInstaller's own
    strip option also strips libraries that auditwheel has patched (numpy's OpenBLAS), and
    they then fail to load ("ELF load command address/offset not page-aligned")."""
    strip = shutil.which("strip")
    if not strip or not sys.platform.startswith("linux"):
        return
    internal = app_folder() / "_internal"
    targets = [p for p in (*internal.glob("libpython3*.so*"),
                           *internal.glob("python3*/lib-dynload/*.so"))
               if p.is_file() and not p.is_symlink()]
    if targets:
        subprocess.run([strip, "--strip-unneeded", *map(str, targets)], check=True)


def dedupe_libraries() -> None:
    """llama_cpp/lib (and each variant's lib-NAME) holds libllama.so (opened by ctypes) and
    libllama.so.0 (the soname other libraries link against) as two equal files; make the
    second a link to the first."""
    if sys.platform == "win32":
        return
    for lib in app_folder().rglob("llama_cpp/lib*/*.so.*"):
        plain = lib.with_name(lib.name.split(".so")[0] + ".so")
        if (not lib.is_symlink() and plain.is_file() and not plain.is_symlink()
                and plain.read_bytes() == lib.read_bytes()):
            lib.unlink()
            lib.symlink_to(plain.name)


LLAMA_LIBRARY = re.compile(r"^(lib)?(ggml|llama|mtmd)[\w.-]*\.(so[.\d]*|dylib|dll)$")


def remove_top_level_llama_libraries() -> None:
    """llama.cpp's libraries belong in llama_cpp/lib and llama_cpp/lib-avx512 only, each
    build finding its own through its RUNPATH ($ORIGIN). PyInstaller also places a copy or a
    link of one build's at the top of _internal/, which its bootloader puts on
    LD_LIBRARY_PATH, searched before RUNPATH: the other build's libllama would then load
    that build's libggml-cpu (AVX-512 code on an AVX2-only CPU, an illegal instruction)."""
    internal = app_folder() / "_internal"
    if sys.platform == "darwin" or not internal.is_dir():
        return
    for entry in internal.iterdir():
        if LLAMA_LIBRARY.match(entry.name) and (entry.is_symlink() or entry.is_file()):
            entry.unlink()


def app_folder() -> Path:
    return DIST / f"{APP_NAME}.app" if sys.platform == "darwin" else DIST / APP_NAME


def models_folder() -> Path:
    if sys.platform == "darwin":
        return app_folder() / "Contents" / "Resources" / "models"
    return app_folder() / "models"


def place_model(model: Path) -> None:
    folder = models_folder()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.name
    target.unlink(missing_ok=True)
    try:
        os.link(model, target)  # same disk: no second 250 MB copy
    except OSError:
        shutil.copy2(model, target)
    (folder / "NOTICE.txt").write_text(GEMMA_NOTICE, encoding="utf-8")
    say(f"Model placed at {target}")


def linux_extras() -> None:
    folder = app_folder()
    for name in ("install-desktop-entry.sh", "README.txt"):
        shutil.copy2(ROOT / "packaging" / "linux" / name, folder / name)
    (folder / "install-desktop-entry.sh").chmod(0o755)


def make_tarball() -> Path:
    machine = platform.machine().lower().replace("amd64", "x86_64")
    target = DIST / f"{APP_NAME}-{project_version()}-linux-{machine}.tar.gz"
    say(f"Writing {target.name}")
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
        archive.add(app_folder(), arcname=APP_NAME)
    partial.replace(target)
    return target


def folder_size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def size_report(folder: Path, top: int = 12) -> dict:
    """Total size and the biggest parts, grouped the way a reader thinks of them."""
    groups: dict[str, int] = {}
    rules = [
        ("model (GGUF)", lambda p: p.suffix == ".gguf"),
        ("llama.cpp libraries", lambda p: "llama_cpp" in p.parts),
        ("ICU (Qt's Unicode tables)", lambda p: p.name.startswith("libicu")),
        ("Qt plugins", lambda p: "plugins" in p.parts and "PySide6" in p.parts),
        ("Qt translations", lambda p: "translations" in p.parts and "PySide6" in p.parts),
        ("Qt libraries", lambda p: "PySide6" in p.parts and "Qt6" in p.name),
        ("PySide6 bindings", lambda p: "PySide6" in p.parts or "shiboken6" in p.parts),
        ("numpy", lambda p: p.parts and p.parts[0].startswith("numpy")),
        ("Python runtime", lambda p: p.name.startswith(("libpython", "base_library"))
         or "lib-dynload" in p.parts or p.name == "PYZ.pyz" or p.name == APP_NAME),
        ("system libraries", lambda p: ".so" in p.name and len(p.parts) <= 2),
    ]
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(folder)
        parts = relative.parts[1:] if relative.parts[0] == "_internal" else relative.parts
        inner = Path(*parts)
        name = next((label for label, test in rules if test(inner)), "other")
        groups[name] = groups.get(name, 0) + path.stat().st_size
    total = sum(groups.values())
    biggest = sorted(
        ((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*")
         if p.is_file() and not p.is_symlink()), key=lambda item: -item[1])[:top]
    return {"total": total, "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "biggest": biggest}


def glibc_floor(folder: Path) -> str | None:
    """The newest glibc symbol version any bundled ELF file asks for: the oldest Linux the
    build runs on (glibc is the one library a Linux app cannot bring along)."""
    objdump = shutil.which("objdump")
    if not objdump or not sys.platform.startswith("linux"):
        return None
    newest = (0, 0)
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.suffix == ".gguf":
            continue
        with path.open("rb") as handle:
            if handle.read(4) != b"\x7fELF":
                continue
        symbols = subprocess.run([objdump, "-T", str(path)], capture_output=True,
                                 text=True).stdout
        for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", symbols):
            newest = max(newest, (int(major), int(minor)))
    return f"{newest[0]}.{newest[1]}"


def print_size(report: dict, archive: Path | None) -> None:
    mb = 1e6
    say(f"Size of {app_folder().name}: {report['total'] / mb:.0f} MB")
    for name, size in report["groups"].items():
        say(f"  {name:<22}{size / mb:8.1f} MB")
    say("Biggest files:")
    for name, size in report["biggest"]:
        say(f"  {size / mb:8.1f} MB  {name}")
    if archive:
        say(f"Archive {archive.name}: {archive.stat().st_size / mb:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-deps", action="store_true",
                        help="keep build/package-venv's requirements as they are (the "
                             "project itself is always reinstalled)")
    parser.add_argument("--no-archive", action="store_true", help="no tarball")
    args = parser.parse_args(argv)
    started = time.monotonic()
    BUILD.mkdir(exist_ok=True)
    if not args.skip_deps:
        prepare_environment()
    install_project()
    show_llama_build()
    model = model_file()
    run_pyinstaller()
    strip_python()
    dedupe_libraries()
    remove_top_level_llama_libraries()
    place_model(model)
    archive = None
    if sys.platform.startswith("linux"):
        linux_extras()
        if not args.no_archive:
            archive = make_tarball()
    report = size_report(app_folder())
    report["glibc"] = glibc_floor(app_folder())
    report["archive"] = archive.stat().st_size if archive else None
    (DIST / "size.json").write_text(json.dumps(report, indent=1))
    print_size(report, archive)
    if report["glibc"]:
        say(f"Needs glibc {report['glibc']} or newer.")
    say(f"Built {app_folder()} in {time.monotonic() - started:.0f} s.")
    if sys.platform == "win32":
        say("Installer: iscc packaging\\windows\\promptstudio.iss (Inno Setup 6)")
    elif sys.platform == "darwin":
        say("Disk image: bash packaging/macos/make-dmg.sh (signs and notarizes if asked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
