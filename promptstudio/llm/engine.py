"""Batched inference on llama.cpp: shared prefixes, many sequences per decode.

Evaluating a prompt candidate means running the same instruction and demonstrations in
front of hundreds of inputs. A plain loop feeds the model one example at a time, so each
generation step computes a single token and the machine sits mostly idle. This engine:

- decodes the part that all prompts share (the prefix) once, as sequence 0, and keeps it
  between calls, so the next batch of the same candidate starts from it;
- starts every prompt as its own sequence that branches off the prefix (a unified KV cache
  lets the branch share the prefix's cells instead of copying them);
- packs the remaining prompt tokens of many sequences, and one new token of every
  sequence that is generating, into each `llama_decode` call (continuous batching);
- reads only the logits it needs: the last position of each prompt, or the positions of a
  continuation whose log-probability is wanted.

Greedy decoding picks the arg-max of the logits, as llama.cpp's greedy sampler does.
Results can differ from a one-at-a-time loop in rare near-ties, because llama.cpp's kernels
round differently for different batch shapes; `benchmarks/eval_speed.py` counts such cases.
"""

from __future__ import annotations

import ctypes
import logging
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from promptstudio.llm.base import BackendError, CancelToken, GenerationParams, ModelFileError
from promptstudio.parsing import first_line_complete

PREFIX_SEQ = 0
MAX_OUTPUTS = 128


def has_amx_kernels() -> bool:
    """Whether the llama.cpp library loaded here was compiled with its AMX kernels."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def log_normalizer(logits: np.ndarray) -> float:
    """log(sum(exp(logits))), computed stably: log p(token) = logits[token] - this."""
    peak = float(logits.max())
    return peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))


@dataclass
class _Job:
    """One sequence's work: tokens still to feed, and what to do with the logits it wants."""

    pending: list[int]
    position: int
    reserve: int
    wants: Callable[[int], bool]
    consume: Callable[[_Job, int, np.ndarray], None]
    seq_id: int = -1
    done: bool = False


@dataclass
class GenerationOutcome:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ScoredPrompt:
    """One prompt's scoring: its length in tokens, and (total log-probability, token
    count) of each continuation."""

    prompt_tokens: int
    continuations: list[tuple[float, int]]


@dataclass
class _Generation:
    """The state of one prompt being completed."""

    params: GenerationParams
    prompt_tokens: int
    rng: np.random.Generator | None
    tokens: list[int] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    text: str = ""


class LlamaEngine:
    """A llama.cpp model and a multi-sequence context, used from one thread only."""

    def __init__(self, model_path: str, *, n_ctx: int = 8192, n_threads: int = 2,
                 n_seq_max: int = 16, n_batch: int = 256, chat: bool = False) -> None:
        """`chat`: prompts are texts rendered by the model's chat template. They carry their
        own special tokens, written as text, and their own begin token where the template
        puts one; so they are tokenized as llama-cpp-python tokenizes a chat prompt: special
        tokens parsed, no begin token added."""
        import llama_cpp
        from llama_cpp import _internals

        # llama.cpp logs every load step to stderr; failures reach us as return codes.
        logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)
        self._lib = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        if has_amx_kernels():
            # llama.cpp's AMX kernels crash on the first decode of the bundled model
            # (SIGSEGV in ggml_backend_amx_mul_mat). Our own builds leave them out
            # (packaging/llama_build.py); a llama-cpp-python compiled natively on an AMX
            # machine has them, and they are reached only through the "extra" weight
            # buffers, so those stay off.
            model_params.use_extra_bufts = False
        try:
            self.model = _internals.LlamaModel(path_model=model_path, params=model_params,
                                               verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load the model file {model_path} ({exc}). The file "
                "may be damaged, or made for a newer llama.cpp than this PromptStudio has."
            ) from exc
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        # One cache for all sequences, so a branch shares its prefix's cells; and full-size
        # sliding-window caches, so a prefix stays usable however long it is.
        params.kv_unified = True
        params.swa_full = True
        # Flash attention on the CPU shifts log-probabilities by up to ~0.25 nats against the
        # plain path (measured on the bundled model), enough to flip close labels.
        params.flash_attn_type = 0
        # Logits rows one decode may return; the worst case is what llama.cpp reserves
        # memory for (a row is the vocabulary: 1 MB for Gemma), so keep it to what we use.
        params.n_outputs_max = MAX_OUTPUTS
        params.no_perf = True
        try:
            self.context = _internals.LlamaContext(model=self.model, params=params,
                                                   verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            self.model.close()
            raise ModelFileError(
                f"llama.cpp could not make room to run the model file {model_path} with a "
                f"context of {n_ctx} tokens ({exc}). Lower the context size in the model's "
                "settings, or close other programs to free memory."
            ) from exc
        self.n_ctx = min(n_ctx, llama_cpp.llama_n_ctx(self.context.ctx))
        self.n_batch = n_batch
        self.n_seq_max = min(n_seq_max, llama_cpp.llama_n_seq_max(self.context.ctx))
        self.n_vocab = self.model.n_vocab()
        self._memory = llama_cpp.llama_get_memory(self.context.ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._prefix: list[int] = []
        self.fed_tokens = 0
        """Tokens run through the model so far (prompt and generated): for benchmarks."""
        self._pieces: dict[int, bytes] = {}
        self._piece_buffer = ctypes.create_string_buffer(256)
        self.chat = chat

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self.context.close()
        self.model.close()

    # -- tokens -----------------------------------------------------------------------

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        # A token covers at least one byte, so this buffer always suffices (the wrapper's
        # own tokenize allocates the whole training context, 32k tokens, on every call).
        data = text.encode("utf-8")
        size = len(data) + 2
        buffer = (self._lib.llama_token * size)()
        n = self._lib.llama_tokenize(self.model.vocab, data, len(data), buffer, size,
                                     add_bos and not self.chat, self.chat)
        if n < 0:
            raise BackendError(f"Could not tokenize a text of {len(data)} bytes.")
        return list(buffer[:n])

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            n = self._lib.llama_token_to_piece(self.model.vocab, token, self._piece_buffer,
                                               len(self._piece_buffer), 0, False)
            cached = self._piece_buffer.raw[:max(n, 0)]
            self._pieces[token] = cached
        return cached

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self.model.vocab, token))

    # -- the prefix -------------------------------------------------------------------

    def _use_prefix(self, prefix: list[int]) -> None:
        """Make sequence 0 hold exactly `prefix`.

        A prefix is kept only when the next call wants exactly the same one; otherwise the
        cache is cleared and the prefix decoded from position 0. Extending a kept prefix
        would be cheaper, but llama.cpp rounds differently when a text is decoded in other
        chunks, and then the same call could answer differently depending on what ran
        before it. This way a call's results depend on its own prompts only.
        """
        if prefix == self._prefix:
            return
        self.reset()
        for start in range(0, len(prefix), self.n_batch):
            chunk = prefix[start:start + self.n_batch]
            self._set_batch([(token, start + i, PREFIX_SEQ, False)
                             for i, token in enumerate(chunk)])
            self._decode()
        self._prefix = list(prefix)

    def _check_fits(self, n_tokens: int) -> None:
        """llama.cpp aborts the process on some overlong inputs, so refuse them first."""
        if n_tokens > self.n_ctx:
            raise BackendError(
                f"A prompt needs {n_tokens} tokens but the model's context holds {self.n_ctx}. "
                "Shorten the prompt or use fewer demonstrations, or raise the context size "
                "in Model settings."
            )

    def reset(self) -> None:
        self._lib.llama_memory_clear(self._memory, True)
        self._prefix = []

    # -- decoding ---------------------------------------------------------------------

    def _set_batch(self, entries: list[tuple[int, int, int, bool]]) -> None:
        batch = self._batch
        batch.n_tokens = len(entries)
        for i, (token, position, seq_id, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = logits

    def _decode(self) -> None:
        self.fed_tokens += self._batch.n_tokens
        code = self._lib.llama_decode(self.context.ctx, self._batch)
        if code != 0:
            # The cache is in an unknown state after a failed decode: start clean next time.
            self.reset()
            raise BackendError(
                f"llama.cpp could not process a batch (code {code}); the prompts may be too "
                "long for the context size. Raise the context size in Model settings."
            )

    def _logits(self, index: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self.context.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _run(self, jobs: Sequence[_Job], cancel: CancelToken | None) -> None:
        """Feed every job, many sequences per decode, until all are done."""
        queue = deque(jobs)
        active: list[_Job] = []
        free_ids = list(range(self.n_seq_max - 1, 0, -1))
        if not free_ids:
            raise ValueError("The engine needs n_seq_max >= 2: one sequence holds the prefix.")
        used = len(self._prefix)
        try:
            while queue or active:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                while queue and free_ids and used + queue[0].reserve <= self.n_ctx:
                    job = queue.popleft()
                    job.seq_id = free_ids.pop()
                    self._lib.llama_memory_seq_cp(self._memory, PREFIX_SEQ, job.seq_id, 0,
                                                  len(self._prefix))
                    used += job.reserve
                    active.append(job)
                if not active:
                    self._check_fits(queue[0].reserve + len(self._prefix))
                entries, wanted = self._pack(active)
                self._set_batch(entries)
                self._decode()
                for index, job, position in wanted:
                    job.consume(job, position, self._logits(index))
                for job in [j for j in active if j.done]:
                    self._lib.llama_memory_seq_rm(self._memory, job.seq_id, -1, -1)
                    free_ids.append(job.seq_id)
                    used -= job.reserve
                    active.remove(job)
        finally:
            for job in active:
                self._lib.llama_memory_seq_rm(self._memory, job.seq_id, -1, -1)

    def _pack(self, active: list[_Job]) -> tuple[list, list]:
        """Fill one batch: first one token of each generating sequence, then prompt tokens."""
        entries: list[tuple[int, int, int, bool]] = []
        wanted: list[tuple[int, _Job, int]] = []
        for job in sorted(active, key=lambda j: len(j.pending)):
            while job.pending and len(entries) < self.n_batch:
                logits = job.wants(job.position)
                if logits and len(wanted) == MAX_OUTPUTS:
                    break
                if logits:
                    wanted.append((len(entries), job, job.position))
                entries.append((job.pending.pop(0), job.position, job.seq_id, logits))
                job.position += 1
        return entries, wanted

    # -- the machine's limits ---------------------------------------------------------

    def prompt_rate(self, batch_size: int, repeats: int = 3, prefix: int = 0) -> float:
        """Tokens per second for prompt processing in batches of `batch_size` tokens, with
        `prefix` tokens already in the cache for the batch to attend to (every example of a
        candidate attends to its instruction and demonstrations). The median decode counts,
        so that another program's burst on the processor does not set the rate."""
        import time

        batch_size = min(batch_size, self.n_batch)
        token = self.tokenize("the quick brown fox jumps over a lazy dog ")[1]
        self.reset()
        self._use_prefix([token] * prefix)
        times = []
        for repeat in range(repeats + 1):
            self._lib.llama_memory_seq_cp(self._memory, PREFIX_SEQ, 1, 0, prefix)
            self._set_batch([(token, prefix + i, 1, i == batch_size - 1)
                             for i in range(batch_size)])
            started = time.perf_counter()
            self._decode()
            if repeat:  # the first decode warms caches up and is not counted
                times.append(time.perf_counter() - started)
            self._lib.llama_memory_seq_rm(self._memory, 1, -1, -1)
        self.reset()
        return batch_size / statistics.median(times)

    def generation_rate(self, n_sequences: int, steps: int = 16) -> float:
        """Tokens per second summed over `n_sequences` sequences generating one token each
        per decode, after a short shared prompt (from the median decode, as above)."""
        import time

        n_sequences = min(n_sequences, self.n_seq_max - 1)
        self.reset()
        prompt = self.tokenize("Once upon a time, in a small village by the sea,")
        self._use_prefix(prompt)
        for seq in range(1, n_sequences + 1):
            self._lib.llama_memory_seq_cp(self._memory, PREFIX_SEQ, seq, 0, len(prompt))
        token = prompt[-1]
        times = []
        for step in range(steps + 1):
            position = len(prompt) + step
            self._set_batch([(token, position, seq, True) for seq in range(1, n_sequences + 1)])
            started = time.perf_counter()
            self._decode()
            for index in range(n_sequences):
                int(np.argmax(self._logits(index)))
            if step:
                times.append(time.perf_counter() - started)
        self.reset()
        return n_sequences / statistics.median(times)

    # -- generation -------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], params: GenerationParams,
                 cancel: CancelToken | None = None,
                 on_done: Callable[[int, GenerationOutcome], None] | None = None,
                 ) -> list[GenerationOutcome]:
        """Complete every prompt; `on_done(index, outcome)` hears of each as it finishes.

        With `params.alone_after` set, each prompt runs by itself after its own first
        `alone_after` characters (see `_own_prefixes`), in order: its answer then depends on
        the prompt alone, not on the prompts asked beside it."""
        token_lists = [self.tokenize(p) for p in prompts]
        self._check_fits(max(len(t) for t in token_lists) + 1)
        outcomes: dict[int, GenerationOutcome] = {}
        if params.alone_after is None:
            shared = min(len(t) for t in token_lists) - 1
            for tokens in token_lists[1:]:
                shared = min(shared, common_prefix_length(token_lists[0], tokens))
            self._use_prefix(token_lists[0][:shared])
            self._run(self._generation_jobs(token_lists, range(len(prompts)), shared, params,
                                            outcomes, on_done), cancel)
        else:
            owns = self._own_prefixes(prompts, token_lists, params.alone_after)
            for index, (tokens, shared) in enumerate(zip(token_lists, owns)):
                self._use_prefix(tokens[:shared])
                self._run(self._generation_jobs([tokens], [index], shared, params, outcomes,
                                                on_done), cancel)
        return [outcomes[i] for i in range(len(prompts))]

    def _own_prefixes(self, prompts: Sequence[str], token_lists: Sequence[list[int]],
                      chars: int) -> list[int]:
        """How many of each prompt's tokens are its first `chars` characters (at least one
        token is left to feed): a count that depends on the prompt alone. The prompts of
        one candidate share that text, so it is tokenized once."""
        heads: dict[str, list[int]] = {}
        counts = []
        for prompt, tokens in zip(prompts, token_lists):
            head = prompt[:chars]
            if head not in heads:
                heads[head] = self.tokenize(head)
            counts.append(min(len(tokens) - 1, common_prefix_length(tokens, heads[head])))
        return counts

    def _generation_jobs(self, token_lists: Sequence[list[int]], indices: Sequence[int],
                         shared: int, params: GenerationParams,
                         outcomes: dict[int, GenerationOutcome],
                         on_done: Callable[[int, GenerationOutcome], None] | None,
                         ) -> list[_Job]:
        """Jobs that complete these prompts, each branching off a prefix of `shared`
        tokens; a sampled prompt's random numbers come from the seed plus its index."""

        def finish(index: int, state: _Generation) -> None:
            outcomes[index] = GenerationOutcome(state.text, state.prompt_tokens,
                                                len(state.tokens))
            if on_done is not None:
                on_done(index, outcomes[index])

        jobs = []
        for index, tokens in zip(indices, token_lists):
            state = _Generation(params, len(tokens),
                                np.random.default_rng(params.seed + index)
                                if params.temperature > 0 else None)
            if params.max_tokens <= 0:
                finish(index, state)
                continue
            last = len(tokens) - 1

            def consume(job: _Job, position: int, logits: np.ndarray,
                        state: _Generation = state, index: int = index) -> None:
                self._step(job, state, logits)
                if job.done:
                    finish(index, state)

            # Generation stops where the context ends, as llama-cpp-python's own does.
            state.params = replace(params, max_tokens=min(params.max_tokens,
                                                          self.n_ctx - len(tokens)))
            jobs.append(_Job(
                pending=tokens[shared:], position=shared,
                reserve=len(tokens) - shared + state.params.max_tokens,
                wants=lambda position, last=last: position >= last, consume=consume,
            ))
        return jobs

    def _step(self, job: _Job, state: _Generation, logits: np.ndarray) -> None:
        """Choose the next token of a generating sequence, and decide if it is finished."""
        params = state.params
        token = self._choose(logits, params, state.rng)
        state.tokens.append(token)
        if self.is_end(token):
            job.done = True
        else:
            state.raw += self.piece(token)
            state.text = state.raw.decode("utf-8", errors="ignore")
            cut = min((state.text.find(s) for s in params.stop if s in state.text),
                      default=-1)
            if cut >= 0:
                state.text = state.text[:cut]
                job.done = True
            elif params.first_line_only and first_line_complete(state.text):
                job.done = True
        if len(state.tokens) >= params.max_tokens:
            job.done = True
        if not job.done:
            job.pending = [token]

    @staticmethod
    def _choose(logits: np.ndarray, params: GenerationParams,
                rng: np.random.Generator | None) -> int:
        if params.temperature <= 0 or rng is None:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / params.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if params.top_p < 1.0:
            # The nucleus sits among the most likely few hundred tokens; sorting all 262k
            # on every step costs more than the model's own step on this machine.
            top = min(len(probs), 512)
            candidates = np.argpartition(-probs, top - 1)[:top]
            order = candidates[np.argsort(-probs[candidates])]
            cumulative = np.cumsum(probs[order])
            keep = order[:int(np.searchsorted(cumulative, params.top_p)) + 1]
            kept = probs[keep] / probs[keep].sum()
            return int(keep[rng.choice(len(keep), p=kept)])
        return int(rng.choice(len(probs), p=probs))

    # -- scoring ----------------------------------------------------------------------

    def score(self, items: Sequence[tuple[str, Sequence[str]]],
              cancel: CancelToken | None = None, alone_after: int | None = None,
              ) -> list[ScoredPrompt]:
        """For each (prompt, continuations): (total log-probability, token count) of each.

        "prompt + continuation" is tokenized as one text; the continuation's tokens are those
        after the longest run that agrees with the prompt's own tokens (a token that spans
        the boundary belongs to the continuation). Continuations whose scored tokens all
        come right after the same position share one sequence and one logits row.
        With `alone_after`, each prompt is scored by itself after its first `alone_after`
        characters, as `generate` does.
        """
        plans = []
        prompt_lists = []
        for prompt, continuations in items:
            prompt_ids = self.tokenize(prompt)
            fulls = [self.tokenize(prompt + c) for c in continuations]
            starts = [common_prefix_length(prompt_ids, ids) for ids in fulls]
            plans.append((fulls, starts, len(prompt_ids)))
            prompt_lists.append(prompt_ids)
        every = [ids for fulls, _, _ in plans for ids in fulls]
        self._check_fits(max(len(ids) for ids in every))
        results: list[list[list[float]]] = [[[] for _ in fulls] for fulls, _, _ in plans]
        if alone_after is None:
            self._score_together(list(range(len(plans))), plans, results, cancel)
        else:
            owns = self._own_prefixes([prompt for prompt, _ in items], prompt_lists,
                                      alone_after)
            for item, own in enumerate(owns):
                self._score_together([item], plans, results, cancel, limit=own)
        return [ScoredPrompt(prompt_tokens,
                             [(float(sum(values)), len(values)) for values in per_item])
                for (_, _, prompt_tokens), per_item in zip(plans, results)]

    def _score_together(self, chosen: list[int], plans: list, results: list,
                        cancel: CancelToken | None, limit: int | None = None) -> None:
        """Score the chosen items in one run of jobs, branching off the longest prefix
        they all share (no longer than `limit` tokens)."""
        every = [ids for item in chosen for ids in plans[item][0]]
        shared = min(start - 1 for item in chosen for start in plans[item][1])
        for ids in every[1:]:
            shared = min(shared, common_prefix_length(every[0], ids))
        if limit is not None:
            shared = min(shared, limit)
        self._use_prefix(every[0][:shared])
        jobs = []
        for item in chosen:
            fulls, starts, _ = plans[item]
            for group in _branch_groups(fulls, starts):
                jobs.append(self._score_job(group, fulls, starts, results[item], shared))
        self._run(jobs, cancel)

    def _score_job(self, group: list[int], fulls: list[list[int]], starts: list[int],
                   sink: list[list[float]], shared: int) -> _Job:
        """A sequence that feeds the longest member of `group` and scores every member."""
        longest = max(group, key=lambda c: len(fulls[c]))
        tokens = fulls[longest]
        first = min(starts[c] for c in group) - 1

        def consume(job: _Job, position: int, logits: np.ndarray) -> None:
            log_z = None
            for c in group:
                ids = fulls[c]
                if starts[c] - 1 <= position < len(ids) - 1:
                    log_z = log_normalizer(logits) if log_z is None else log_z
                    sink[c].append(float(logits[ids[position + 1]]) - log_z)
            if position >= len(tokens) - 2:
                job.done = True

        pending = tokens[shared:len(tokens) - 1]
        return _Job(pending=pending, position=shared, reserve=len(pending),
                    wants=lambda position: position >= first, consume=consume,
                    done=not pending)


def _branch_groups(fulls: list[list[int]], starts: list[int]) -> list[list[int]]:
    """Continuations that can share one sequence: those whose fed tokens are a prefix of
    another's. Labels that differ only in their last token (the usual case) share one."""
    groups: list[list[int]] = []
    for c in sorted(range(len(fulls)), key=lambda c: -len(fulls[c])):
        fed = fulls[c][:-1]
        for group in groups:
            leader = fulls[group[0]][:-1]
            if leader[:len(fed)] == fed:
                group.append(c)
                break
        else:
            groups.append([c])
    return groups
