"""PyInstaller hook for llama-cpp-python: its shared libraries, which it opens with ctypes.

`llama_cpp` loads `llama_cpp/lib/libllama.so` (`llama.dll`, `libllama.dylib`) by path, so
PyInstaller's import analysis never sees them. On x86-64 the AVX-512 build's libraries sit
beside them in `llama_cpp/lib-avx512/` (packaging/llama_build.py), collected the same way;
`promptstudio/llm/native.py` picks one of the two when the app starts.

The wheel holds each Linux library three times (libggml.so, libggml.so.0,
libggml.so.0.25.3: wheels cannot hold symlinks); only the
name ctypes opens and the soname other libraries link against are needed, so the fully
versioned copies are left out.
"""

import re
from pathlib import Path

from PyInstaller.utils.hooks import collect_dynamic_libs

_FULLY_VERSIONED = re.compile(r"\.so\.\d+\.\d+")

binaries = [(source, dest) for source, dest in collect_dynamic_libs("llama_cpp")
            if not _FULLY_VERSIONED.search(Path(source).name)]

# The OpenAI-compatible server needs FastAPI and uvicorn, which the app does not ship.
excludedimports = ["llama_cpp.server"]
