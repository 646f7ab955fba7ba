"""Does a prompt's answer depend on the prompts asked beside it? And what does asking alone cost?

On one task of the shared suite (instruction, 3 examples, N test rows), with the bundled
model:

  batched  the engine's normal path: all rows of a call share a prefix and decode together;
  alone    `GenerationParams.alone_after`: each row by itself after the candidate's prefix.

For each path it compares calls of N, of 3 and of 1 (in reverse order), bit for bit, for
label log-probabilities and greedy answers, and times the call of N; then 16 sampled replies
asked in one call against four calls of 4 with the seeds the call cache gives them.

`--probe` adds the measurements behind docs/performance.md's explanation: the last logits
of one prompt decoded in other ways (split at other points; after another sequence's cells;
with llama.cpp's repacked weights on and off).

    python benchmarks/batch_invariance.py [--task antonyms] [--rows 40] [--probe]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import promptstudio.llm  # noqa: E402,F401 - chooses the llama.cpp build first
from promptstudio.llm.base import GenerationParams  # noqa: E402
from promptstudio.llm.bundled import bundled_model_path  # noqa: E402
from promptstudio.llm.engine import LlamaEngine  # noqa: E402


def load(data: Path, task: str, rows: int) -> tuple[str, list[dict]]:
    def read(split: str) -> list[dict]:
        lines = (data / task / f"{split}.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    head = "Write the answer.\n\n" + "".join(
        f"Input: {d['input']}\nOutput: {d['output']}\n\n" for d in read("train")[:3]) + "Input:"
    return head, read("test")[:rows]


def compare(engine: LlamaEngine, head: str, rows: list[dict], alone: bool) -> None:
    n = len(rows)
    after = len(head) if alone else None
    prompts = [f"{head} {r['input']}\nOutput:" for r in rows]
    items = [(p, [" " + r["output"], " none"]) for p, r in zip(prompts, rows)]
    greedy = GenerationParams(temperature=0.0, max_tokens=12, stop=("\n",), alone_after=after)

    def scores(chunks: list[list]) -> list:
        return [s.continuations for c in chunks for s in engine.score(c, None, after)]

    def texts(chunks: list[list]) -> list:
        return [o.text for c in chunks for o in engine.generate(c, greedy)]

    for name, ask in (("label log-probabilities", scores), ("greedy answers", texts)):
        started = time.perf_counter()
        whole = ask([items if ask is scores else prompts])
        seconds = time.perf_counter() - started
        each = items if ask is scores else prompts
        ones = ask([[x] for x in each[::-1]])[::-1]
        threes = ask([each[i:i + 3] for i in range(0, n, 3)])
        print(f"  {name}: call of {n} against calls of 1: "
              f"{sum(a != b for a, b in zip(whole, ones))} of {n} differ; calls of 3 against "
              f"calls of 1: {sum(a != b for a, b in zip(threes, ones))} differ; the call of "
              f"{n} took {seconds:.2f} s")
    sampled = GenerationParams(temperature=0.9, max_tokens=50, seed=7, alone_after=after)
    together = [o.text for o in engine.generate([head] * 16, sampled)]
    fours = [o.text for k in range(4) for o in engine.generate(
        [head] * 4, GenerationParams(temperature=0.9, max_tokens=50, seed=7 + 4 * k,
                                     alone_after=after))]
    print(f"  16 sampled replies in one call against 4 calls of 4: "
          f"{sum(a == b for a, b in zip(together, fours))} of 16 identical")


def probe(head: str, rows: list[dict]) -> None:
    """Last logits of one prompt, decoded in other ways, against decoding it whole, with
    llama.cpp's repacked weights on and off."""
    from llama_cpp import _internals

    original = _internals.LlamaModel.__init__
    for repack in (True, False):
        def model_init(self, *, path_model, params, verbose=True, repack=repack):
            params.use_extra_bufts = repack
            original(self, path_model=path_model, params=params, verbose=verbose)

        _internals.LlamaModel.__init__ = model_init
        try:
            engine = LlamaEngine(str(bundled_model_path()), n_ctx=4096, n_seq_max=5)
        finally:
            _internals.LlamaModel.__init__ = original
        print(f"  repacked weights {'on' if repack else 'off'}:")
        for name, difference in decode_ways(engine, head, rows).items():
            print(f"    {name}: largest logit difference {difference:.3f}")
        engine.close()


def decode_ways(engine: LlamaEngine, head: str, rows: list[dict]) -> dict[str, float]:
    import numpy as np

    lib = engine._lib
    t = engine.tokenize(f"{head} {rows[0]['input']}\nOutput:")
    u = engine.tokenize(f"{head} {rows[1]['input']} and a few more words\nOutput:")
    n, k = len(t), len(engine.tokenize(head)) - 1

    def last(batches: list[list[tuple]], copy: bool = False) -> np.ndarray:
        engine.reset()
        for i, entries in enumerate(batches):
            if copy and i == 1:
                lib.llama_memory_seq_cp(engine._memory, 0, 1, 0, k)
                lib.llama_memory_seq_cp(engine._memory, 0, 2, 0, k)
            engine._set_batch(entries)
            engine._decode()
        index = max(i for i, e in enumerate(batches[-1]) if e[3])
        return engine._logits(index).copy()

    whole = last([[(t[i], i, 0, i == n - 1) for i in range(n)]])
    prefix = [(t[i], i, 0, False) for i in range(k)]
    own = [(t[i], i, 1, i == n - 1) for i in range(k, n)]
    other = [(u[i], i, 2, False) for i in range(k, len(u))]
    ways = {
        "split before the last token": last([[(t[i], i, 0, False) for i in range(n - 1)],
                                             [(t[n - 1], n - 1, 0, True)]]),
        "split after the examples": last([prefix, [(t[i], i, 0, i == n - 1)
                                                   for i in range(k, n)]]),
        "its rows first, then another sequence's": last([prefix, own + other], True),
        "after another sequence's rows": last([prefix, other + own], True),
        "one token at a time": last([[(t[i], i, 0, i == n - 1)] for i in range(n)]),
    }
    return {name: float(np.abs(logits - whole).max()) for name, logits in ways.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="antonyms")
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "bench"))
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args()
    head, rows = load(Path(args.data), args.task, args.rows)
    engine = LlamaEngine(str(bundled_model_path()), n_ctx=4096, n_seq_max=17)
    for alone in (False, True):
        print(f"{args.task}, {len(rows)} rows, {'alone' if alone else 'batched'}:")
        compare(engine, head, rows, alone)
    engine.close()
    if args.probe:
        print("Why (the last logits of one prompt against decoding it whole):")
        probe(head, rows)


if __name__ == "__main__":
    main()
