"""A backend wrapper that never makes the same model call twice.

Every call is keyed by backend kind, model, parameters and prompt; the answer is kept in the
project's `llm_call` table, so it survives restarts and a resumed run re-spends nothing.
Greedy decoding ignores the seed, so at temperature 0 the seed is left out of the key.

A batched answer depends on the prompts asked beside it (llama.cpp rounds differently for
different batches), so when a call finds only part of its prompts stored (a run killed in
the middle of the call) it asks the model the whole call again, in its original shape:
the missing answers are then the ones an uninterrupted call would have given. The stored
answers are kept and compared with the fresh ones; `mismatches` lists any that differ.
Prompts asked alone (`GenerationParams.alone_after`) do not depend on their neighbours,
and only the missing ones are asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Protocol

from promptstudio.llm.base import (
    Backend,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
    ResultCallback,
)

if TYPE_CHECKING:
    from promptstudio.llm.chat import ChatTemplate


class CallStore(Protocol):
    """Where cached calls live (a `promptstudio.store.Project` is one)."""

    def cached_call(self, key: str) -> dict | None: ...

    def store_call(self, key: str, record: dict) -> None: ...


def call_key(backend: str, model: str, op: str, params: dict, prompt: str,
             extra: Sequence[str] = ()) -> str:
    payload = json.dumps([backend, model, op, params, prompt, list(extra)],
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _key_params(params: GenerationParams, index: int) -> dict:
    """The parameters that decide prompt `index`'s answer (see GenerationParams)."""
    data = params.as_dict()
    if params.temperature == 0:
        data["seed"] = None
        data["top_p"] = None
    else:
        data["seed"] = params.seed + index
    return data


def _consecutive_runs(indices: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _describe(scores: Sequence[ContinuationScore]) -> str:
    return "; ".join(f"{s.continuation!r}: {s.total_logprob:.4f}" for s in scores)


class CachedBackend(Backend):
    """Answers from the store when it can, from `inner` when it must."""

    def __init__(self, inner: Backend, store: CallStore) -> None:
        super().__init__()
        self.inner = inner
        self.store = store
        self.kind = inner.kind
        self.preferred_batch = inner.preferred_batch
        self.notices = inner.notices
        self.on_mismatch: Callable[[str, str, str], None] | None = None
        """Told (prompt, stored answer, fresh answer) when asking a call again gives
        another answer than the one stored."""
        self.mismatches = 0

    def _mismatch(self, prompt: str, stored: str, fresh: str) -> None:
        self.mismatches += 1
        if self.on_mismatch is not None:
            self.on_mismatch(prompt, stored, fresh)

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def prompt_format(self) -> str:  # type: ignore[override]
        return self.inner.prompt_format

    @property
    def chat_template(self) -> ChatTemplate | None:  # type: ignore[override]
        return self.inner.chat_template

    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None,
                 on_result: ResultCallback | None = None) -> list[Generation]:
        keys = [call_key(self.kind, self.model_id, "generate", _key_params(params, i), p)
                for i, p in enumerate(prompts)]
        results: list[Generation | None] = []
        for key in keys:
            hit = self.store.cached_call(key)
            if hit is None:
                results.append(None)
                continue
            generation = Generation(hit["text"], hit["prompt_tokens"],
                                    hit["completion_tokens"], 0.0, cached=True)
            results.append(generation)
            self.stats.add(generation.prompt_tokens, generation.completion_tokens, 0.0,
                           cached=True)
        missing = [i for i, result in enumerate(results) if result is None]
        together = bool(missing) and params.alone_after is None
        if on_result is not None and not together:
            for index, generation in enumerate(results):
                if generation is not None:
                    on_result(index, generation)

        def store(index: int, generation: Generation) -> None:
            """Keep each fresh answer the moment it exists, so a crash loses none."""
            results[index] = generation
            self.store.store_call(keys[index], {
                "op": "generate", "backend": self.kind, "model": self.model_id,
                "params": params.as_dict(), "prompt": prompts[index],
                "response": {"text": generation.text,
                             "prompt_tokens": generation.prompt_tokens,
                             "completion_tokens": generation.completion_tokens},
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "seconds": generation.seconds,
            })
            self.stats.add(generation.prompt_tokens, generation.completion_tokens,
                           generation.seconds)
            if on_result is not None:
                on_result(index, generation)

        if together:
            self._ask_again(prompts, params, cancel, results, store, on_result)
            return results  # type: ignore[return-value]
        # A sampled prompt's seed depends on its place in the call, so each unbroken run of
        # missing places is asked on its own, starting from its own seed.
        runs = [missing] if params.temperature == 0 else _consecutive_runs(missing)
        for run in runs:
            self.inner.generate(
                [prompts[i] for i in run],
                replace(params, seed=params.seed + run[0]) if params.temperature else params,
                cancel, lambda position, generation, run=run: store(run[position], generation))
        return results  # type: ignore[return-value]

    def _ask_again(self, prompts: Sequence[str], params: GenerationParams,
                   cancel: CancelToken | None, results: list[Generation | None],
                   store: Callable[[int, Generation], None],
                   on_result: ResultCallback | None) -> None:
        """Ask the whole call in its original shape and store the missing answers. The
        caller gets the fresh answers: after a kill they equal the stored ones; a stored
        answer that differs was asked in another call's company (it stays stored, first
        come, and the difference is reported)."""
        stored = list(results)

        def arrived(index: int, generation: Generation) -> None:
            before = stored[index]
            if before is None:
                store(index, generation)
                return
            if before.text != generation.text:
                self._mismatch(prompts[index], before.text, generation.text)
            results[index] = generation
            if on_result is not None:
                on_result(index, generation)

        self.inner.generate(prompts, params, cancel, arrived)

    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        return self.score_batch([(prompt, continuations)], cancel)[0]

    def score_batch(self, items: Sequence[tuple[str, Sequence[str]]],
                    cancel: CancelToken | None = None, alone_after: int | None = None,
                    ) -> list[list[ContinuationScore]]:
        how = {} if alone_after is None else {"alone_after": alone_after}
        keys = [call_key(self.kind, self.model_id, "score", how, prompt, continuations)
                for prompt, continuations in items]
        results: list[list[ContinuationScore] | None] = []
        for key in keys:
            hit = self.store.cached_call(key)
            results.append(None if hit is None else
                           [ContinuationScore(**item) for item in hit["scores"]])
            if hit is not None:
                self.stats.add(0, 0, 0.0, cached=True)
        missing = [i for i, result in enumerate(results) if result is None]
        if not missing:
            return results  # type: ignore[return-value]
        asked = missing if alone_after is not None else list(range(len(items)))
        before = self.inner.stats.snapshot()
        fresh = self.inner.score_batch([items[i] for i in asked], cancel, alone_after)
        after = self.inner.stats.snapshot()
        prompt_tokens = (after["prompt_tokens"] - before["prompt_tokens"]) // len(asked)
        seconds = (after["seconds"] - before["seconds"]) / len(asked)
        for i, scores in zip(asked, fresh):
            prompt, continuations = items[i]
            if results[i] is not None:  # asked again for the call's shape: as generate does
                if results[i] != scores:
                    self._mismatch(prompt, _describe(results[i]), _describe(scores))
                results[i] = scores
                continue
            results[i] = scores
            self.store.store_call(keys[i], {
                "op": "score", "backend": self.kind, "model": self.model_id,
                "params": how, "prompt": prompt,
                "response": {"continuations": list(continuations),
                             "scores": [asdict(s) for s in scores]},
                "prompt_tokens": prompt_tokens, "seconds": seconds,
            })
            self.stats.add(prompt_tokens, 0, seconds)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.inner.close()
