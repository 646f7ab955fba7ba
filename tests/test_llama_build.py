"""packaging/llama_build.py: the same flags for every build, and a cache that knows them.

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


def load_llama_build():
    spec = importlib.util.spec_from_file_location("llama_build",
                                                  ROOT / "packaging" / "llama_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def llama_build(monkeypatch, tmp_path):
    """The module, with an empty wheel cache of its own and the default flags."""
    monkeypatch.setenv("PROMPTSTUDIO_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.delenv("PROMPTSTUDIO_CMAKE_ARGS", raising=False)
    module = load_llama_build()
    monkeypatch.setattr(module, "python_tag", lambda python: "(3, 11) x86_64")
    return module


def fake_wheel(llama_build, cmake_args: str) -> Path:
    """Put a wheel where a build with these flags would have left it."""
    key = llama_build.build_key(Path(sys.executable), cmake_args)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = llama_build.cache_folder() / f"llama-cpp-python-{key['version']}-{digest}"
    folder.mkdir(parents=True)
    wheel = folder / f"llama_cpp_python-{key['version']}-py3-none-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    return wheel


def test_x86_64_gets_an_avx2_baseline_and_an_avx512_variant_never_native(llama_build,
                                                                          monkeypatch):
    monkeypatch.setattr(llama_build.platform, "machine", lambda: "x86_64")
    variants = llama_build.variants()
    assert list(variants) == ["avx2", "avx512"], "the baseline comes first"
    baseline, wide = (set(flags.split()) for flags in variants.values())
    assert "-DGGML_NATIVE=OFF" in baseline and "-DGGML_NATIVE=OFF" in wide
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"} <= baseline
    assert not any("AVX512" in flag for flag in baseline)
    assert wide - baseline == {"-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON",
                               "-DGGML_AVX512_VNNI=ON"}
    assert not any("AMX" in flag for flag in baseline | wide)


def test_own_flags_replace_the_variants(llama_build, monkeypatch):
    monkeypatch.setenv("PROMPTSTUDIO_CMAKE_ARGS", "-DGGML_NATIVE=OFF -DGGML_METAL=OFF")
    assert llama_build.variants() == {"custom": "-DGGML_NATIVE=OFF -DGGML_METAL=OFF"}


def test_the_pinned_version_is_the_one_in_pyproject(llama_build):
    text = (ROOT / "pyproject.toml").read_text()
    assert f'"llama-cpp-python=={llama_build.pinned_version()}"' in text


def test_a_wheel_built_with_these_flags_is_used_without_compiling(llama_build, monkeypatch):
    wheel = fake_wheel(llama_build, llama_build.X86_64_CMAKE_ARGS)
    commands = []
    monkeypatch.setattr(llama_build.subprocess, "run", lambda *a, **k: commands.append(a))
    assert llama_build.wheel(Path(sys.executable), llama_build.X86_64_CMAKE_ARGS) == wheel
    assert commands == [], "nothing was compiled"


def test_other_flags_never_find_that_wheel(llama_build, monkeypatch):
    wheel = fake_wheel(llama_build, llama_build.X86_64_CMAKE_ARGS)
    builds = []

    def pretend_to_build(command, **kwargs):
        builds.append(kwargs["env"]["CMAKE_ARGS"])
        target = Path(command[command.index("-w") + 1])
        target.mkdir(parents=True, exist_ok=True)
        (target / "llama_cpp_python-0-py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(llama_build.subprocess, "run", pretend_to_build)
    built = llama_build.wheel(Path(sys.executable), llama_build.X86_64_AVX512_CMAKE_ARGS)
    assert builds == [llama_build.X86_64_AVX512_CMAKE_ARGS], "compiled, not looked up"
    assert built.parent != wheel.parent
    assert json.loads((built.parent / "build.json").read_text())["cmake_args"] == \
        llama_build.X86_64_AVX512_CMAKE_ARGS


def test_the_venv_holds_the_wheels_that_llama_build_installed():
    """`make test` installs llama.cpp through llama_build.py, which marks the venv."""
    llama_build = load_llama_build()
    marker = Path(sys.prefix) / llama_build.MARKER
    assert marker.is_file(), "this venv's llama-cpp-python was not installed by llama_build"
    installed = json.loads(marker.read_text())
    assert list(installed) == list(llama_build.variants())
    assert all(Path(w["wheel"]).is_file() for w in installed.values())
