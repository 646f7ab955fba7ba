"""Which build of llama.cpp this process loads: the fastest one this CPU can run.

PromptStudio carries llama.cpp compiled twice on x86-64 (packaging/llama_build.py): the
baseline for any CPU with AVX2, in `llama_cpp/lib/`, and a build for CPUs with AVX-512 at the
Ice Lake level, in `llama_cpp/lib-avx512/`, which runs the bundled model 35-50 % faster where
the CPU has it (docs/performance.md, "Build"). Neither is a native build, and neither has
llama.cpp's AMX kernels, which crash on the bundled model.

llama-cpp-python opens its library when `llama_cpp` is first imported, from the folder named
by `LLAMA_CPP_LIB_PATH` if set. So `choose_library` must run before that import: the package
`promptstudio.llm` calls it when it is imported, and every use of llama.cpp goes through it.
`PROMPTSTUDIO_LLAMA_VARIANT=avx2` keeps the baseline; a `LLAMA_CPP_LIB_PATH` set by the
user is left alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

VARIANT_VARIABLE = "PROMPTSTUDIO_LLAMA_VARIANT"
BASELINE = "avx2"
NEEDS = {
    "avx512": ("AVX2", "FMA3", "F16C", "AVX512F", "AVX512CD", "AVX512VL", "AVX512BW",
               "AVX512DQ", "AVX512VBMI", "AVX512VNNI"),
}
"""What each variant's code uses, by numpy's names for CPU features; the CPU (and the
operating system, which must save the AVX-512 registers) must have all of them."""


def cpu_features() -> dict[str, bool]:
    """The CPU's features as numpy detected them at run time, on any operating system."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def package_folder() -> Path | None:
    """The installed `llama_cpp` package, found without importing it."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def variant_folders() -> dict[str, Path]:
    """The builds installed beside the baseline, by variant name."""
    package = package_folder()
    if package is None:
        return {}
    return {folder.name.removeprefix("lib-"): folder
            for folder in sorted(package.glob("lib-*")) if folder.is_dir()}


def best_variant(features: dict[str, bool], installed: set[str]) -> str:
    """The fastest installed variant whose instructions this CPU has."""
    for name, needed in NEEDS.items():
        if name in installed and all(features.get(feature) for feature in needed):
            return name
    return BASELINE


def choose_library() -> str:
    """Point llama-cpp-python at the build for this CPU; the variant chosen. Too late once
    llama.cpp is loaded: then it says which build that one is."""
    if "llama_cpp.llama_cpp" in sys.modules or os.environ.get("LLAMA_CPP_LIB_PATH"):
        return loaded_variant()
    folders = variant_folders()
    wanted = os.environ.get(VARIANT_VARIABLE)
    chosen = wanted if wanted else best_variant(cpu_features(), set(folders))
    if chosen in folders:
        os.environ["LLAMA_CPP_LIB_PATH"] = str(folders[chosen])
        os.environ["MTMD_CPP_LIB"] = str(folders[chosen])
        return chosen
    return BASELINE


def loaded_variant() -> str:
    """The variant whose libraries this process uses (or will, once llama_cpp loads)."""
    path = os.environ.get("LLAMA_CPP_LIB_PATH")
    if not path:
        return BASELINE
    name = Path(path).name
    return name.removeprefix("lib-") if name.startswith("lib-") else f"custom ({path})"
