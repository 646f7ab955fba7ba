"""Local models through llama.cpp: the bundled Gemma or any GGUF file.

A llama.cpp context is not thread-safe, so each thread that calls the backend gets its own
`LlamaEngine` (the weights are memory-mapped and shared; a second engine costs only its KV
cache). See `engine.py` for how prompts are batched.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from promptstudio.llm import throughput
from promptstudio.llm.base import (
    Backend,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
    ModelFileError,
    ResultCallback,
    Stopwatch,
)
from promptstudio.llm.chat import CHAT, ChatTemplate, file_format, file_template
from promptstudio.llm.config import ModelConfig, physical_cores
from promptstudio.llm.engine import GenerationOutcome, LlamaEngine
from promptstudio.llm.gguf import inspect_gguf
from promptstudio.llm.loadcheck import Trial, ensure_model_runs
from promptstudio.llm.throughput import Throughput

PARALLEL_SEQUENCES = 16
"""Sequences decoded together: generation throughput on 2 cores levels off at 16-32."""


class LocalBackend(Backend):
    """llama.cpp in this process. Loading happens on first use, in the calling thread."""

    kind = "local"

    def __init__(self, config: ModelConfig | None = None,
                 parallel: int = PARALLEL_SEQUENCES) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        if self.config.is_bundled:
            from promptstudio.llm.bundled import bundled_model_path

            self.path = bundled_model_path()
        else:
            self.path = Path(self.config.path or "").expanduser()
        self.info = inspect_gguf(self.path)
        self.n_threads = self.config.n_threads or physical_cores()
        self.parallel = max(1, parallel)
        # Several rounds of sequences per call keep the batch full while early finishers
        # leave; results still reach the caller one by one as they finish.
        self.preferred_batch = 8 * self.parallel
        self._local = threading.local()
        self._engines: list[LlamaEngine] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def trial(self) -> Trial:
        """How each thread's engine loads the model: what the first-use check tries."""
        return Trial(self.path, self.config.n_ctx, self.n_threads, self.parallel + 1)

    @property
    def model_id(self) -> str:
        return f"local:{self.path.name}:{self.info.size_bytes}"

    @property
    def prompt_format(self) -> str:
        """`chat.CHAT` when prompts reach the model through its chat template."""
        return file_format(self.config.prompt_format, self.info.metadata)

    @functools.cached_property
    def chat_template(self) -> ChatTemplate | None:
        """The file's chat template with the model's begin and end tokens; None for a
        text model."""
        if self.prompt_format != CHAT:
            return None
        template = file_template(self.path)
        if template is None:
            raise ModelFileError(
                f"The model file {self.path.name} has no chat template, so it cannot be "
                "asked in the chat format. Set its prompt format to text on the Models page "
                "(or with: promptstudio config NAME --task-format text).")
        return template

    def engine(self) -> LlamaEngine:
        """This thread's engine, loaded on first use (after the model file has once been
        tried in a child process on this machine: `loadcheck`)."""
        if self._closed:
            raise RuntimeError("This model backend was closed.")
        engine = getattr(self._local, "engine", None)
        if engine is None:
            trial = self.trial
            ensure_model_runs(trial)
            engine = LlamaEngine(str(trial.path), n_ctx=trial.n_ctx, n_threads=trial.n_threads,
                                 n_seq_max=trial.n_seq_max, chat=self.prompt_format == CHAT)
            self._local.engine = engine
            with self._lock:
                self._engines.append(engine)
        return engine

    def load(self) -> None:
        """Load the model in this thread now, so the first call is not the slow one."""
        self.engine()

    def release_thread(self) -> None:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            return
        self._local.engine = None
        with self._lock:
            self._engines = [e for e in self._engines if e is not engine]
        with contextlib.suppress(Exception):
            engine.close()

    def close(self) -> None:
        """Free every thread's engine; call when no thread is using the backend any more."""
        self._closed = True
        with self._lock:
            engines, self._engines = self._engines, []
        for engine in engines:
            with contextlib.suppress(Exception):
                engine.close()

    def throughput(self, cancel: CancelToken | None = None) -> Throughput:
        """This model's measured speed on this machine (measured once, then remembered)."""
        known = throughput.cached(self.model_id, self.n_threads)
        if known is None:
            known = throughput.measure(self.engine(), self.model_id, self.n_threads,
                                       cancel=cancel)
            throughput.remember(known)
        return known

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self.engine().tokenize(text, add_bos)

    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None,
                 on_result: ResultCallback | None = None) -> list[Generation]:
        if not prompts:
            return []
        results: dict[int, Generation] = {}
        started = time.perf_counter()

        def finished(index: int, outcome: GenerationOutcome) -> None:
            # Sequences run side by side, so each is charged the mean time so far.
            seconds = (time.perf_counter() - started) / (len(results) + 1)
            generation = Generation(outcome.text, outcome.prompt_tokens,
                                    outcome.completion_tokens, seconds)
            results[index] = generation
            self.stats.add(outcome.prompt_tokens, outcome.completion_tokens, seconds)
            if on_result is not None:
                on_result(index, generation)

        self.engine().generate(prompts, params, cancel, on_done=finished)
        return [results[i] for i in range(len(prompts))]

    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        return self.score_batch([(prompt, continuations)], cancel)[0]

    def score_batch(self, items: Sequence[tuple[str, Sequence[str]]],
                    cancel: CancelToken | None = None, alone_after: int | None = None,
                    ) -> list[list[ContinuationScore]]:
        if not items:
            return []
        with Stopwatch() as watch:
            scored = self.engine().score(items, cancel, alone_after)
        results = []
        for (_, continuations), item in zip(items, scored):
            results.append([ContinuationScore(text, total, total / n if n else 0.0, n)
                            for text, (total, n) in zip(continuations, item.continuations)])
            self.stats.add(item.prompt_tokens, 0, watch.seconds / len(items))
        return results
