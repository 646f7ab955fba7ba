"""packaging/llama_build.py: one set of flags for every build, and a cache that knows them.

pip's own wheel cache ignores CMAKE_ARGS and would hand back a wheel compiled with other
flags; these tests check that ours does not: other flags, another folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def llama_build(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("llama_build",
                                                  ROOT / "packaging" / "llama_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("PROMPTSTUDIO_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.delenv("PROMPTSTUDIO_CMAKE_ARGS", raising=False)
    return module


def fake_wheel(llama_build, python: Path) -> Path:
    """Put a wheel where a build with the current flags would have left it."""
    key = llama_build.build_key(python)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = llama_build.cache_folder() / f"llama-cpp-python-{key['version']}-{digest}"
    folder.mkdir(parents=True)
    wheel = folder / f"llama_cpp_python-{key['version']}-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    return wheel


def test_x86_64_is_built_for_avx2_never_for_this_machine(llama_build, monkeypatch):
    monkeypatch.setattr(llama_build.platform, "machine", lambda: "x86_64")
    flags = llama_build.cmake_args().split()
    assert "-DGGML_NATIVE=OFF" in flags
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"} <= set(flags)
    assert not any("AVX512" in flag or "AMX" in flag for flag in flags)


def test_the_pinned_version_is_the_one_in_pyproject(llama_build):
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"llama-cpp-python=={llama_build.pinned_version()}"' in text


def test_a_wheel_built_with_these_flags_is_used_without_compiling(llama_build, monkeypatch):
    python = Path(sys.executable)
    monkeypatch.setattr(llama_build, "python_tag", lambda python: "(3, 11) x86_64")
    wheel = fake_wheel(llama_build, python)
    commands = []
    monkeypatch.setattr(llama_build.subprocess, "run", lambda *a, **k: commands.append(a))
    assert llama_build.wheel(python) == wheel
    assert commands == [], "nothing was compiled"


def test_other_flags_never_find_that_wheel(llama_build, monkeypatch):
    python = Path(sys.executable)
    monkeypatch.setattr(llama_build, "python_tag", lambda python: "(3, 11) x86_64")
    wheel = fake_wheel(llama_build, python)
    monkeypatch.setenv("PROMPTSTUDIO_CMAKE_ARGS", "-DGGML_NATIVE=ON")
    other = llama_build.build_key(python)
    assert other["cmake_args"] == "-DGGML_NATIVE=ON"
    folders = sorted(p.name for p in llama_build.cache_folder().iterdir())
    assert folders == [wheel.parent.name]
    builds = []

    def pretend_to_build(command, **kwargs):
        builds.append(kwargs["env"]["CMAKE_ARGS"])
        target = Path(command[command.index("-w") + 1])
        target.mkdir(parents=True, exist_ok=True)
        (target / "llama_cpp_python-0-py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(llama_build.subprocess, "run", pretend_to_build)
    built = llama_build.wheel(python)
    assert builds == ["-DGGML_NATIVE=ON"], "the other flags were compiled, not looked up"
    assert built.parent != wheel.parent
    assert json.loads((built.parent / "build.json").read_text())["cmake_args"] == \
        "-DGGML_NATIVE=ON"


def test_the_venv_holds_the_wheel_that_llama_build_installed():
    """`make test` installs llama.cpp through llama_build.py, which marks the venv."""
    marker = Path(sys.prefix) / ".llama-cpp-build.json"
    assert marker.is_file(), "this venv's llama-cpp-python was not installed by llama_build"
    installed = json.loads(marker.read_text())
    assert Path(installed["wheel"]).name.startswith("llama_cpp_python-")
