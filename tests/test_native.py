"""Which llama.cpp build runs: never a native one, never AMX, the fastest the CPU can run.

The venv holds the builds `packaging/llama_build.py` made: the AVX2 baseline in
`llama_cpp/lib/` and, on x86-64, the AVX-512 variant in `llama_cpp/lib-avx512/`. These tests
read their machine code, and run the real model on the baseline even where the CPU would
get the faster variant, so both are exercised on an AVX-512 machine.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from promptstudio.llm import native

X86_64 = platform.machine() == "x86_64"
ICE_LAKE = dict.fromkeys(native.NEEDS["avx512"], True)


def test_a_cpu_with_ice_lake_avx512_gets_the_avx512_build():
    assert native.best_variant(ICE_LAKE, {"avx512"}) == "avx512"


@pytest.mark.parametrize("missing", ["AVX512VBMI", "AVX512VNNI", "AVX512F"])
def test_a_cpu_without_every_instruction_of_a_variant_keeps_the_baseline(missing):
    """Skylake-X and Cascade Lake have AVX-512 but not VBMI: the baseline, not a crash."""
    assert native.best_variant({**ICE_LAKE, missing: False}, {"avx512"}) == "avx2"


def test_a_variant_that_is_not_installed_is_never_chosen():
    assert native.best_variant(ICE_LAKE, set()) == "avx2"


def test_this_process_loaded_the_build_chosen_for_this_cpu():
    import llama_cpp

    features = llama_cpp.llama_print_system_info().decode()
    installed = set(native.variant_folders())
    expected = os.environ.get(native.VARIANT_VARIABLE) or native.best_variant(
        native.cpu_features(), installed)
    assert native.loaded_variant() == expected
    assert ("AVX512 = 1" in features) == (expected == "avx512"), features
    assert "AMX" not in features, features


@pytest.mark.skipif(not X86_64, reason="the variants are x86-64 builds")
def test_both_x86_builds_are_installed():
    assert set(native.variant_folders()) == {"avx512"}
    for folder in (native.package_folder() / "lib", native.variant_folders()["avx512"]):
        assert (folder / "libllama.so").is_file() and (folder / "libggml-cpu.so").is_file()


def _machine_code(library: Path) -> str:
    objdump = shutil.which("objdump")
    assert objdump, "objdump (binutils, which compiling llama.cpp needs) is not installed"
    return subprocess.run([objdump, "-d", "--no-show-raw-insn", str(library)],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not X86_64, reason="x86-64 instructions")
def test_the_baseline_holds_no_avx512_and_no_build_holds_amx():
    """The compiled code itself, not only what the library says of itself."""
    baseline = _machine_code(native.package_folder() / "lib" / "libggml-cpu.so")
    assert "vfmadd" in baseline, "the baseline has AVX2/FMA code"
    assert "%zmm" not in baseline and "{%k" not in baseline, "AVX-512 code in the baseline"
    assert "%tmm" not in baseline and "ldtilecfg" not in baseline, "AMX code in the baseline"
    wide = _machine_code(native.variant_folders()["avx512"] / "libggml-cpu.so")
    assert "%zmm" in wide, "the AVX-512 variant has AVX-512 code"
    assert "%tmm" not in wide and "ldtilecfg" not in wide, "AMX code in the AVX-512 variant"


LOADED = """
import json, llama_cpp
from promptstudio.llm import native
print(json.dumps({"variant": native.loaded_variant(),
                  "features": llama_cpp.llama_print_system_info().decode()}))
"""


@pytest.mark.model
@pytest.mark.skipif(not X86_64, reason="the variants are x86-64 builds")
def test_the_baseline_runs_the_real_model_when_asked_for(bundled_model, tmp_path):
    """PROMPTSTUDIO_LLAMA_VARIANT=avx2 keeps the baseline even on an AVX-512 CPU: it loads,
    and the model check's child (the real engine) passes on it."""
    env = {k: v for k, v in os.environ.items() if k not in ("LLAMA_CPP_LIB_PATH",
                                                           "MTMD_CPP_LIB")}
    env[native.VARIANT_VARIABLE] = "avx2"
    done = subprocess.run([sys.executable, "-c", LOADED], env=env, capture_output=True,
                          text=True, timeout=60)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["variant"] == "avx2" and "AVX512" not in loaded["features"]
    check = subprocess.run([sys.executable, "-m", "promptstudio.llm.loadcheck",
                            str(bundled_model), "--n-ctx", "512", "--sequences", "3",
                            "--report", str(tmp_path / "report.json")],
                           env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-2000:]
    assert json.loads((tmp_path / "report.json").read_text()) == {"ok": True}
