"""The memory estimate for a GGUF model, and how free memory is read on each system."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from promptstudio.llm import memory
from promptstudio.llm.engine import MAX_OUTPUTS
from promptstudio.llm.gguf import GGUFInfo, inspect_gguf
from promptstudio.llm.memory import (
    MemoryCheck,
    MemoryNeed,
    available_memory,
    check_memory,
    format_bytes,
    kv_cache_bytes,
    memory_needed,
    parse_vm_stat,
    vocabulary_size,
)

GIB = 2**30


def header(**metadata: object) -> GGUFInfo:
    return GGUFInfo(Path("model.gguf"), 1_000_000_000, 3, 10,
                    {"general.architecture": "llama", **metadata})


GEMMA_LIKE = header(**{
    "llama.block_count": 18, "llama.embedding_length": 640, "llama.feed_forward_length": 2048,
    "llama.attention.head_count": 4, "llama.attention.head_count_kv": 1,
    "llama.attention.key_length": 256, "llama.attention.value_length": 256,
    "llama.context_length": 32768, "tokenizer.ggml.tokens": "<array of 262144>",
})


def test_kv_cache_counts_only_the_key_value_heads() -> None:
    # 18 layers x 4096 positions x 1 head x (256 + 256) values x 2 bytes.
    assert kv_cache_bytes(GEMMA_LIKE, 4096) == 18 * 4096 * 512 * 2
    assert kv_cache_bytes(GEMMA_LIKE, 8192) == 2 * kv_cache_bytes(GEMMA_LIKE, 4096)


def test_kv_cache_without_explicit_sizes_uses_the_embedding_per_head() -> None:
    plain = header(**{"llama.block_count": 32, "llama.embedding_length": 4096,
                      "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8})
    # Each of 8 key/value heads is 4096 / 32 = 128 wide.
    assert kv_cache_bytes(plain, 1000) == 32 * 1000 * 8 * 256 * 2


def test_a_header_without_attention_sizes_still_gets_an_estimate() -> None:
    odd = header(**{"llama.block_count": 10, "llama.embedding_length": 100})
    assert kv_cache_bytes(odd, 10) == 10 * 10 * 200 * 2
    assert kv_cache_bytes(header(), 4096) == 0


def test_vocabulary_comes_from_the_token_list_or_the_header() -> None:
    assert vocabulary_size(GEMMA_LIKE) == 262144
    assert vocabulary_size(header(**{"llama.vocab_size": 32000})) == 32000
    assert vocabulary_size(header()) == 0


def test_need_adds_weights_cache_and_buffers() -> None:
    need = memory_needed(GEMMA_LIKE, 4096)
    assert need.weights == 1_000_000_000
    assert need.kv_cache == kv_cache_bytes(GEMMA_LIKE, 4096)
    assert need.buffers > 262144 * MAX_OUTPUTS * 4
    assert need.total == need.weights + need.kv_cache + need.buffers
    assert memory_needed(GEMMA_LIKE, 0).n_ctx == 32768  # 0 means the model's own context


def test_check_says_whether_it_fits_in_plain_words() -> None:
    need = MemoryNeed(weights=3 * GIB, kv_cache=GIB, buffers=0, n_ctx=4096)
    roomy = MemoryCheck(need, 16 * GIB)
    assert roomy.fits and not roomy.tight
    assert roomy.describe() == ("Needs about 4.3 GB of memory with a 4,096-token context; "
                                "17.2 GB is free now.")
    tight = MemoryCheck(need, int(4.5 * GIB))
    assert tight.fits and tight.tight
    assert "closing other programs will help" in tight.describe()
    short = MemoryCheck(need, 2 * GIB)
    assert short.fits is False
    assert "but only 2.1 GB is free now" in short.describe()
    assert "smaller model" in short.describe()
    unknown = MemoryCheck(need, None)
    assert unknown.fits is None
    assert "does not say how much is free" in unknown.describe()


def test_check_memory_takes_the_free_memory_given() -> None:
    check = check_memory(GEMMA_LIKE, 4096, available=123)
    assert check.available == 123 and check.fits is False


def test_meminfo_gives_the_available_memory(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:        1000 kB\n"
                       "MemAvailable:   20000000 kB\n")
    assert available_memory(meminfo) == 20000000 * 1024
    old_kernel = tmp_path / "old"
    old_kernel.write_text("MemFree: 100 kB\nBuffers: 10 kB\nCached: 50 kB\n")
    assert available_memory(old_kernel) == 160 * 1024


def test_without_proc_the_fallbacks_answer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(memory.os, "sysconf",
                        lambda name: {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[name])
    assert available_memory(tmp_path / "absent") == 4096 * 1000

    def unsupported(name: str) -> int:
        raise ValueError(name)

    monkeypatch.setattr(memory.os, "sysconf", unsupported)
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(memory, "_from_vm_stat", lambda: 42)
    assert available_memory(tmp_path / "absent") == 42
    monkeypatch.setattr(memory.sys, "platform", "plan9")
    assert available_memory(tmp_path / "absent") is None


def test_vm_stat_output_is_read() -> None:
    text = textwrap.dedent("""\
        Mach Virtual Memory Statistics: (page size of 16384 bytes)
        Pages free:                               10000.
        Pages active:                            200000.
        Pages inactive:                           30000.
        Pages speculative:                         1000.
        Pages purgeable:                            500.
        """)
    assert parse_vm_stat(text) == 16384 * (10000 + 30000 + 1000 + 500)
    assert parse_vm_stat("nonsense") is None


def test_this_machine_reports_free_memory() -> None:
    assert (available_memory() or 0) > 0


def test_sizes_read_like_a_file_manager() -> None:
    assert format_bytes(253_113_024) == "253 MB"
    assert format_bytes(1_400_000_000) == "1.4 GB"
    assert format_bytes(2_600) == "3 kB"
    assert format_bytes(12) == "12 bytes"


def resident_bytes_after_loading(model: Path) -> int:
    """Memory a fresh process gains by loading the model the way the app does."""
    script = textwrap.dedent(f"""
        import llama_cpp, numpy
        from promptstudio.llm.config import ModelConfig
        from promptstudio.llm.local import LocalBackend
        from promptstudio.llm.base import GenerationParams

        def resident():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) * 1024

        before = resident()
        backend = LocalBackend(ModelConfig(path={str(model)!r}))
        backend.generate(["Hello"] * 8, GenerationParams(max_tokens=8))
        backend.score("Great film. Sentiment:", [" positive", " negative"])
        print(resident() - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=300)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.model
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_the_estimate_covers_what_the_bundled_model_really_takes(bundled_model: Path) -> None:
    need = memory_needed(inspect_gguf(bundled_model), 4096)
    used = resident_bytes_after_loading(bundled_model)
    assert used <= need.total <= 2 * used
