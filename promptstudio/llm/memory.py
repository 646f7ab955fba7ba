"""Will this model fit? The memory a GGUF model needs, against the memory the computer has free.

Users pick model files by hand, and a model that does not fit makes the whole computer
crawl instead of failing with a message. So before anything is loaded we add up what
llama.cpp will take: the weights (the file, memory-mapped), the KV cache for the chosen
context size (from the layer and head sizes in the file's header), the logits rows the
engine reserves, and working buffers. The result is an upper estimate: llama.cpp touches
some of its reserved buffers only when they are used.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from promptstudio.llm.engine import MAX_OUTPUTS
from promptstudio.llm.gguf import GGUFInfo

KV_BYTES_PER_VALUE = 2
"""llama.cpp keeps keys and values as 16-bit floats unless told otherwise."""
FLOAT_BYTES = 4
BATCH_TOKENS = 256
"""Tokens per decode, as `LlamaEngine` sets `n_batch`: it sizes the working buffers."""
RUNTIME_BYTES = 64 * 2**20
"""llama.cpp's own fixed needs: graph, thread pools, small tables."""
TIGHT_FRACTION = 0.8
"""Above this share of the free memory, other programs will start to get squeezed."""

_ARRAY_COUNT = re.compile(r"<array of (\d+)>")


@dataclass(frozen=True)
class MemoryNeed:
    """What loading a model with a given context size takes, in bytes."""

    weights: int
    kv_cache: int
    buffers: int
    n_ctx: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.buffers


@dataclass(frozen=True)
class MemoryCheck:
    """A model's needs against what is free now; `available` is None where it is unknown."""

    need: MemoryNeed
    available: int | None

    @property
    def fits(self) -> bool | None:
        if self.available is None:
            return None
        return self.need.total <= self.available

    @property
    def tight(self) -> bool:
        """It fits, but leaves little for everything else."""
        return bool(self.fits) and self.need.total > TIGHT_FRACTION * (self.available or 0)

    def describe(self) -> str:
        """One or two sentences for the user: what it needs, what is free, what to do."""
        needs = (f"Needs about {format_bytes(self.need.total)} of memory with a "
                 f"{self.need.n_ctx:,}-token context")
        if self.available is None:
            return needs + " (this computer does not say how much is free)."
        free = f"{format_bytes(self.available)} is free now"
        if not self.fits:
            return (f"{needs}, but only {free}. Close other programs, choose a smaller "
                    "context size, or choose a smaller model.")
        if self.tight:
            return f"{needs}; {free}. It fits, but closing other programs will help."
        return f"{needs}; {free}."


def _int(metadata: dict[str, object], key: str) -> int | None:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def vocabulary_size(info: GGUFInfo) -> int:
    """Tokens in the model's vocabulary: the header's own count, else its token list's."""
    size = _int(info.metadata, f"{info.architecture}.vocab_size")
    if size:
        return size
    match = _ARRAY_COUNT.fullmatch(str(info.metadata.get("tokenizer.ggml.tokens", "")))
    return int(match.group(1)) if match else 0


def kv_cache_bytes(info: GGUFInfo, n_ctx: int) -> int:
    """Keys and values for `n_ctx` positions in every layer.

    Grouped-query attention keeps fewer key/value heads than query heads; the header says
    how many. A model without attention sizes in its header (a state-space model, say)
    counts one embedding-sized key and value per layer, which is the usual upper bound.
    """
    meta, arch = info.metadata, info.architecture
    layers = _int(meta, f"{arch}.block_count") or 0
    embedding = _int(meta, f"{arch}.embedding_length") or 0
    heads = _int(meta, f"{arch}.attention.head_count")
    kv_heads = _int(meta, f"{arch}.attention.head_count_kv") or heads
    head_size = embedding // heads if heads else 0
    key_length = _int(meta, f"{arch}.attention.key_length") or head_size
    value_length = _int(meta, f"{arch}.attention.value_length") or head_size
    per_position = (kv_heads * (key_length + value_length) if kv_heads and key_length
                    else 2 * embedding)
    return layers * n_ctx * per_position * KV_BYTES_PER_VALUE


def buffer_bytes(info: GGUFInfo, n_ctx: int) -> int:
    """Logits rows the engine reserves, attention scores and activations for one batch."""
    meta, arch = info.metadata, info.architecture
    heads = _int(meta, f"{arch}.attention.head_count") or 1
    width = max(_int(meta, f"{arch}.embedding_length") or 0,
                _int(meta, f"{arch}.feed_forward_length") or 0)
    logits = vocabulary_size(info) * MAX_OUTPUTS * FLOAT_BYTES
    working = BATCH_TOKENS * FLOAT_BYTES * (heads * n_ctx + 4 * width)
    return logits + working + RUNTIME_BYTES


def memory_needed(info: GGUFInfo, n_ctx: int) -> MemoryNeed:
    """The memory a model takes once loaded; `n_ctx` 0 means the model's own context."""
    n_ctx = n_ctx or info.context_length or 4096
    return MemoryNeed(info.size_bytes, kv_cache_bytes(info, n_ctx), buffer_bytes(info, n_ctx),
                      n_ctx)


def check_memory(info: GGUFInfo, n_ctx: int, available: int | None = None) -> MemoryCheck:
    """`info`'s needs against `available` bytes (by default, what is free right now)."""
    return MemoryCheck(memory_needed(info, n_ctx),
                       available if available is not None else available_memory())


# -- what the computer has free ------------------------------------------------------------


def available_memory(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """Bytes that programs can take now without pushing others out; None if unknown.

    Linux says so in /proc/meminfo (MemAvailable counts reclaimable caches too); Windows
    through GlobalMemoryStatusEx; other Unix systems through sysconf or, on macOS, vm_stat.
    """
    found = _from_meminfo(Path(meminfo))
    if found is None and sys.platform == "win32":
        found = _from_windows()
    if found is None:
        found = _from_sysconf()
    if found is None and sys.platform == "darwin":
        found = _from_vm_stat()
    return found


def _from_meminfo(path: Path) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) * 1024  # /proc/meminfo counts in KiB
    if "MemAvailable" in fields:
        return fields["MemAvailable"]
    if "MemFree" in fields:  # kernels before 3.14
        return fields["MemFree"] + fields.get("Cached", 0) + fields.get("Buffers", 0)
    return None


def _from_sysconf() -> int | None:
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _from_windows() -> int | None:
    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong),
                    ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong),
                    ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    try:
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullAvailPhys)
    except (AttributeError, OSError):
        pass
    return None


def _from_vm_stat() -> int | None:
    """macOS: free, inactive and purgeable pages are what a new program can have."""
    try:
        text = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_vm_stat(text)


def parse_vm_stat(text: str) -> int | None:
    page = re.search(r"page size of (\d+) bytes", text)
    counts = dict(re.findall(r"^Pages (free|inactive|speculative|purgeable):\s+(\d+)", text,
                             re.MULTILINE))
    if not page or "free" not in counts:
        return None
    return int(page.group(1)) * sum(int(n) for n in counts.values())


def format_bytes(count: int) -> str:
    """Sizes as people read them: '253 MB', '1.4 GB' (powers of 1000, as file managers show)."""
    if count >= 10**9:
        return f"{count / 10**9:.1f} GB"
    if count >= 10**6:
        return f"{count / 10**6:.0f} MB"
    if count >= 10**3:
        return f"{count / 10**3:.0f} kB"
    return f"{count} bytes"
