"""What a user waits for before the first answer: the command line starting, the model
file's header checked, the model loaded, and its speed timed (once per model and machine,
before the first run's estimate). Feeds docs/performance.md, "Before the first answer".

    python benchmarks/startup.py [--model FILE.gguf] [--repeats 3]

Each figure is the median of `--repeats` tries; the header is read from a fresh process
each time (a process remembers it), the timing runs on a model loaded once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptstudio.llm import throughput
from promptstudio.llm.bundled import bundled_model_path
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.local import LocalBackend


def in_child(code: str) -> float:
    """Seconds a fresh Python process spends on `code` (its own clock, so the interpreter's
    start is left out)."""
    timed = ("import time; started = time.perf_counter()\n" + code
             + "\nprint(time.perf_counter() - started)")
    done = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    return float(done.stdout.strip().splitlines()[-1])


def median_of(repeats: int, measure) -> float:
    return statistics.median(measure() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = args.model or bundled_model_path()

    cli = median_of(args.repeats, lambda: in_child("import promptstudio.cli"))
    header = median_of(args.repeats, lambda: in_child(
        f"from promptstudio.llm.gguf import inspect_gguf; inspect_gguf({str(model)!r})"))
    load = median_of(args.repeats, lambda: in_child(
        "from promptstudio.llm.config import ModelConfig\n"
        "from promptstudio.llm.local import LocalBackend\n"
        f"LocalBackend(ModelConfig(path={str(model)!r})).load()"))

    backend = LocalBackend(ModelConfig(path=str(model)))
    backend.load()
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        rates = throughput.measure(backend.engine(), backend.model_id, backend.n_threads)
        timings.append(time.perf_counter() - started)
    backend.close()

    print(f"model: {model.name}, {backend.n_threads} threads")
    print(f"importing the command line: {cli:.2f} s")
    print(f"checking the file's header: {header:.2f} s")
    print(f"loading the model (header included): {load:.2f} s")
    print(f"timing its speed: {statistics.median(timings):.1f} s "
          f"(prompt batches {sorted(rates.prompt)}, sequences {sorted(rates.generation)})")
    print(f"rates: prompt {rates.prompt}, generation {rates.generation} tokens/s")


if __name__ == "__main__":
    main()
