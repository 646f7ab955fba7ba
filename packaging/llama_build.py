"""How llama-cpp-python is compiled, for the development venv, CI and the packaged app alike.

llama-cpp-python builds llama.cpp from source when it is installed. Left to itself it builds
for the CPU of the machine at hand (`GGML_NATIVE`): on a Xeon with AMX that turns on llama.cpp's
AMX matrix kernels, which crash (SIGSEGV in `ggml_backend_amx_mul_mat`) on the first decode of
the bundled model. Turning the AMX options off does not help while `GGML_NATIVE` is on, since
`-march=native` enables AMX anyway. And a native build runs only on CPUs like the one that
built it. So every build names its instruction sets, the same whichever machine compiles it.

On x86-64 there are two **variants**, and the app chooses one when it starts
(`promptstudio/llm/native.py`):

- `avx2`, the baseline every supported CPU has: AVX2 + FMA + F16C + BMI2, Intel Haswell
  (2013) and AMD Zen (2017) onwards. It is installed as llama-cpp-python itself.
- `avx512`, for CPUs with AVX-512 at the Ice Lake level (F, CD, VL, BW, DQ, VBMI, VNNI):
  Ice Lake and Tiger Lake laptops, Sapphire Rapids and later Xeons, AMD Zen 4 and Zen 5.
  Never AMX. Measured 35-50 % faster than the baseline on such a CPU, as fast as a native
  build (docs/performance.md, "Build"). Its libraries go beside the baseline's, in
  `llama_cpp/lib-avx512/`.

Elsewhere (ARM, Apple Silicon) there is one variant.

pip's wheel cache is keyed by the source archive, not by CMAKE_ARGS, and would hand back a
copy compiled with other flags; so each wheel is built here, with pip's cache off, once, into
a folder of ours whose name covers the version, the flags and the Python, and installed from
there.

    python packaging/llama_build.py install [--python PATH]   # build once, install if needed
    python packaging/llama_build.py wheel [--python PATH]     # build once, print the wheels

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

X86_64_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON "
                     "-DGGML_F16C=ON -DGGML_BMI2=ON")
X86_64_AVX512_CMAKE_ARGS = (X86_64_CMAKE_ARGS + " -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON "
                            "-DGGML_AVX512_VNNI=ON")
ARM64_CMAKE_ARGS = "-DGGML_NATIVE=OFF"
MAC_ARM64_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_METAL=ON -DCMAKE_OSX_ARCHITECTURES=arm64"
MARKER = ".llama-cpp-build.json"
"""Written into a venv once its llama-cpp-python is ours: which wheels it holds."""
VARIANT_FOLDER = "lib-{}"
"""Where a variant's libraries go inside the installed `llama_cpp` package."""


def say(text: str) -> None:
    print(f"[llama.cpp] {text}", flush=True)


def pinned_version() -> str:
    """The llama-cpp-python version pinned in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'"llama-cpp-python==([^"]+)"', text)
    if not found:
        raise SystemExit("pyproject.toml does not pin llama-cpp-python with ==")
    return found.group(1)


def variants() -> dict[str, str]:
    """CPU flags by variant, the baseline first. PROMPTSTUDIO_CMAKE_ARGS replaces them all
    with one build of one's own (an ARM Linux build, a GPU build)."""
    override = os.environ.get("PROMPTSTUDIO_CMAKE_ARGS")
    if override is not None:
        return {"custom": override}
    if platform.machine().lower() in ("x86_64", "amd64"):
        return {"avx2": X86_64_CMAKE_ARGS, "avx512": X86_64_AVX512_CMAKE_ARGS}
    if sys.platform == "darwin":
        return {"default": MAC_ARM64_CMAKE_ARGS}
    return {"default": ARM64_CMAKE_ARGS}


def cache_folder() -> Path:
    """Where built wheels are kept between venvs and clones: PROMPTSTUDIO_WHEEL_CACHE, else
    the user's cache folder."""
    chosen = os.environ.get("PROMPTSTUDIO_WHEEL_CACHE")
    if chosen:
        return Path(chosen)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "PromptStudio" / "Cache" / "wheels"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "PromptStudio" / "wheels"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "promptstudio" / "wheels"


def python_tag(python: Path) -> str:
    code = "import sys, platform; print(sys.version_info[:2], platform.machine())"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def build_key(python: Path, cmake_args: str) -> dict[str, str]:
    return {"version": pinned_version(), "cmake_args": cmake_args,
            "python": python_tag(python)}


def wheel(python: Path, cmake_args: str) -> Path:
    """The llama-cpp-python wheel built with these flags, compiled on first use only."""
    key = build_key(python, cmake_args)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_folder() / f"llama-cpp-python-{key['version']}-{digest}"
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    say(f"Compiling llama-cpp-python {key['version']} with CMAKE_ARGS={cmake_args!r} "
        "(several minutes, once)")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = dict(os.environ, CMAKE_ARGS=cmake_args)
    subprocess.run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-cache-dir", "--no-binary", "llama-cpp-python", "-w", str(partial),
                    f"llama-cpp-python=={key['version']}"], env=env, check=True)
    (partial / "build.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


def wheels(python: Path) -> dict[str, Path]:
    return {name: wheel(python, args) for name, args in variants().items()}


def install(python: Path) -> dict[str, Path]:
    """Put our builds into the venv of `python`: the baseline as llama-cpp-python itself,
    every other variant's libraries beside its own; any other build of it is replaced."""
    built = wheels(python)
    prefix = _ask(python, "import sys; print(sys.prefix)")
    marker = Path(prefix) / MARKER
    wanted = {name: {"wheel": str(w), "size": w.stat().st_size} for name, w in built.items()}
    try:
        current = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current == wanted:
        return built
    baseline, *others = built.items()
    say(f"Installing {baseline[1].name} ({baseline[0]}) from {baseline[1].parent}")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--force-reinstall",
                    "--no-deps", str(baseline[1])], check=True)
    # Its own requirements (numpy, jinja2, ...), without touching it again.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(baseline[1])],
                   check=True)
    package = Path(_ask(python, "import importlib.util; "
                                "print(importlib.util.find_spec('llama_cpp').origin)")).parent
    for name, variant_wheel in others:
        say(f"Adding the {name} libraries from {variant_wheel.parent}")
        _add_variant(package, name, variant_wheel)
    marker.write_text(json.dumps(wanted), encoding="utf-8")
    return built


def _add_variant(package: Path, name: str, variant_wheel: Path) -> None:
    """Unpack a variant wheel's `llama_cpp/lib/` into `llama_cpp/lib-NAME/`, and list the
    files in the installed package's RECORD, so that uninstalling removes them too."""
    target = package / VARIANT_FOLDER.format(name)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    added = []
    with zipfile.ZipFile(variant_wheel) as archive:
        for member in archive.infolist():
            if member.filename.startswith("llama_cpp/lib/") and not member.is_dir():
                destination = target / Path(member.filename).name
                destination.write_bytes(archive.read(member))
                destination.chmod(0o755)
                added.append(destination)
    records = list(package.parent.glob("llama_cpp_python-*.dist-info/RECORD"))
    if records:
        with records[0].open("a", encoding="utf-8") as record:
            for path in added:
                record.write(f"{path.relative_to(package.parent).as_posix()},,\n")


def _ask(python: Path, code: str) -> str:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("install", "wheel"))
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="the venv's Python (default: this one)")
    args = parser.parse_args(argv)
    built = install(args.python) if args.action == "install" else wheels(args.python)
    for name, path in built.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
