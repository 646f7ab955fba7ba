"""How llama-cpp-python is compiled, for the development venv, CI and the packaged app alike.

llama-cpp-python builds llama.cpp from source when it is installed. Left to itself it builds
for the CPU of the machine at hand (`GGML_NATIVE`): on a Xeon with AMX that turns on llama.cpp's
AMX matrix kernels, which crash (SIGSEGV in `ggml_backend_amx_mul_mat`) on the first decode of
the bundled model. Turning the AMX options off does not help while `GGML_NATIVE` is on, since
`-march=native` enables AMX anyway. So every build names its instruction sets: a baseline
every supported CPU has, the same whichever machine compiles it. On x86-64 that is AVX2 + FMA
+ F16C + BMI2: Intel Haswell (2013) and AMD Zen (2017) onwards. The speed this costs on an
AVX-512 machine was measured (docs/performance.md, "Build").

pip's wheel cache is keyed by the source archive, not by CMAKE_ARGS, and would hand back a
copy compiled with other flags; so the wheel is built here, with pip's cache off, once, into
a folder of ours whose name covers the version, the flags and the Python, and installed from
there.

    python packaging/llama_build.py install [--python PATH]   # build once, install if needed
    python packaging/llama_build.py wheel [--python PATH]     # build once, print the wheel

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

X86_64_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON "
                     "-DGGML_F16C=ON -DGGML_BMI2=ON")
ARM64_CMAKE_ARGS = "-DGGML_NATIVE=OFF"
MAC_ARM64_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_METAL=ON -DCMAKE_OSX_ARCHITECTURES=arm64"
MARKER = ".llama-cpp-build.json"
"""Written into a venv once its llama-cpp-python is ours: which build it holds."""


def say(text: str) -> None:
    print(f"[llama.cpp] {text}", flush=True)


def pinned_version() -> str:
    """The llama-cpp-python version pinned in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'"llama-cpp-python==([^"]+)"', text)
    if not found:
        raise SystemExit("pyproject.toml does not pin llama-cpp-python with ==")
    return found.group(1)


def cmake_args() -> str:
    """The CPU flags for this platform; PROMPTSTUDIO_CMAKE_ARGS replaces them (an ARM Linux
    build, a GPU build of one's own)."""
    override = os.environ.get("PROMPTSTUDIO_CMAKE_ARGS")
    if override is not None:
        return override
    if platform.machine().lower() in ("x86_64", "amd64"):
        return X86_64_CMAKE_ARGS
    if sys.platform == "darwin":
        return MAC_ARM64_CMAKE_ARGS
    return ARM64_CMAKE_ARGS


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


def build_key(python: Path) -> dict[str, str]:
    return {"version": pinned_version(), "cmake_args": cmake_args(),
            "python": python_tag(python)}


def wheel(python: Path) -> Path:
    """The llama-cpp-python wheel built with `cmake_args()`, compiled on first use only."""
    key = build_key(python)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_folder() / f"llama-cpp-python-{key['version']}-{digest}"
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    say(f"Compiling llama-cpp-python {key['version']} with CMAKE_ARGS={key['cmake_args']!r} "
        "(several minutes, once)")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    env = dict(os.environ, CMAKE_ARGS=key["cmake_args"])
    subprocess.run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-cache-dir", "--no-binary", "llama-cpp-python", "-w", str(partial),
                    f"llama-cpp-python=={key['version']}"], env=env, check=True)
    (partial / "build.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


def install(python: Path) -> Path:
    """Put our build into the venv of `python`, replacing any other build of it there."""
    built = wheel(python)
    prefix = subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    marker = Path(prefix) / MARKER
    wanted = {"wheel": str(built), "size": built.stat().st_size}
    try:
        current = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = None
    if current != wanted:
        say(f"Installing {built.name} from {built.parent}")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--force-reinstall",
                        "--no-deps", str(built)], check=True)
        # Its own requirements (numpy, jinja2, ...), without touching it again.
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(built)],
                       check=True)
        marker.write_text(json.dumps(wanted), encoding="utf-8")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("install", "wheel"))
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="the venv's Python (default: this one)")
    args = parser.parse_args(argv)
    built = install(args.python) if args.action == "install" else wheel(args.python)
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
