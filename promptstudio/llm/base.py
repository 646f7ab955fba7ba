"""The one interface every model backend offers: generate text, score continuations.

Everything above this layer (evaluation, optimizers, the GUI) talks to a `Backend`
and never to llama.cpp or HTTP directly, so a local GGUF file and a vLLM cluster are
interchangeable.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptstudio.llm.chat import ChatTemplate

class BackendError(RuntimeError):
    """A model backend failed in a way the user can act on; the message says how."""


class ModelFileError(BackendError):
    """A model file is missing, truncated or not a GGUF file."""


class ServerError(BackendError):
    """An OpenAI-compatible server could not be reached or answered badly."""


class ScoringUnsupported(BackendError):
    """The backend cannot return log-probabilities of given text."""


class Cancelled(Exception):
    """Raised inside a backend call when its `CancelToken` was set."""


class CancelToken:
    """A flag that long-running work checks between tokens (cooperative cancellation)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings. Temperature 0 means greedy decoding, hence deterministic.

    Prompt i of one `generate` call samples with seed `seed + i`, so asking for n samples
    of one prompt is one call with the prompt n times.

    `first_line_only` lets a backend stop as soon as the first non-blank line is complete:
    unlike a "\n" stop string, it does not cut a reply that opens with a blank line.
    Backends that cannot watch the text as it grows may ignore it.

    `alone_after` asks a local model to run each prompt by itself, after its first
    `alone_after` characters (kept in the cache from one prompt to the next when they are
    the same): its answer then depends on that prompt only, not on the prompts asked
    beside it. Batched prompts share llama.cpp's matrix products and attention sums, whose
    rounding depends on the batch (docs/performance.md, "Answers that do not depend on the
    batch"). A server batches as it likes and ignores it.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()
    seed: int = 0
    first_line_only: bool = False
    alone_after: int | None = None

    def as_dict(self) -> dict:
        data = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "first_line_only": self.first_line_only,
        }
        if self.alone_after is not None:  # absent otherwise: older cache keys stay valid
            data["alone_after"] = self.alone_after
        return data


@dataclass(frozen=True)
class Generation:
    """One prompt's completion with what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float = 0.0
    cached: bool = False


@dataclass(frozen=True)
class ContinuationScore:
    """Log-probability of a continuation given a prompt, summed and per token."""

    continuation: str
    total_logprob: float
    mean_logprob: float
    n_tokens: int


@dataclass
class CallStats:
    """Running totals of a backend's calls; safe to update from several threads."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, prompt_tokens: int, completion_tokens: int, seconds: float,
            cached: bool = False) -> None:
        with self._lock:
            if cached:
                self.cached_calls += 1
            else:
                self.calls += 1
                self.prompt_tokens += prompt_tokens
                self.completion_tokens += completion_tokens
                self.seconds += seconds

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "calls": self.calls,
                "cached_calls": self.cached_calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "tokens": self.prompt_tokens + self.completion_tokens,
                "seconds": round(self.seconds, 3),
            }


ResultCallback = Callable[[int, Generation], None]


class Backend(ABC):
    """A language model that can complete prompts and score continuations.

    `model_id` names the weights (not the settings), and is part of every cache key.
    Calls check `cancel` between tokens and raise `Cancelled` when it is set.
    """

    kind: str = "abstract"
    preferred_batch: int = 1
    """How many prompts one `generate` call handles well (server: its concurrency)."""
    prompt_format: str = "text"
    """"chat" when prompts are rendered through the model's chat template (`chat.py`)."""
    chat_template: ChatTemplate | None = None
    """The model's chat template, for a chat model."""

    def __init__(self) -> None:
        self.stats = CallStats()
        self.notices: list[str] = []
        """What the user should know about how the model was asked (a fallback taken),
        each said once; a run writes new ones to its log."""

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @abstractmethod
    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None,
                 on_result: ResultCallback | None = None) -> list[Generation]:
        """Complete each prompt; results are in the order of `prompts`.

        `on_result(index, generation)` is called as each prompt finishes, in whatever order
        they finish, so callers can keep finished work even if the call is cancelled.
        """

    @abstractmethod
    def score(self, prompt: str, continuations: Sequence[str],
              cancel: CancelToken | None = None) -> list[ContinuationScore]:
        """Log-probability of each continuation directly after `prompt`."""

    def score_batch(self, items: Sequence[tuple[str, Sequence[str]]],
                    cancel: CancelToken | None = None, alone_after: int | None = None,
                    ) -> list[list[ContinuationScore]]:
        """`score` for many prompts at once; backends that can batch them override this.
        `alone_after` as in `GenerationParams`: here each prompt is scored alone anyway."""
        return [self.score(prompt, continuations, cancel) for prompt, continuations in items]

    def release_thread(self) -> None:  # noqa: B027 - most backends hold nothing per thread
        """Free what the calling thread holds (a local model's copy in memory); the
        backend stays usable and loads again when this or another thread needs it. Worker
        threads call it before they end, or their memory would outlive them."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model; the backend may not be used afterwards."""


class Stopwatch:
    """`with Stopwatch() as watch: ...; watch.seconds`"""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def model_name(model: str | None) -> str:
    """A model as evaluations name it ('local:FILE:SIZE', 'server:URL#NAME'), shortly."""
    if not model:
        return "unknown model"
    kind, _, rest = model.partition(":")
    if kind == "local":
        return rest.rsplit(":", 1)[0]
    if kind == "server":
        url, _, name = rest.partition("#")
        return f"{name} at {url}"
    return rest or model
