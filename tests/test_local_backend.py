"""The local llama.cpp backend on the real bundled model."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from promptstudio.llm.base import (
    BackendError,
    Cancelled,
    CancelToken,
    GenerationParams,
    ModelFileError,
)
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.local import LocalBackend

pytestmark = pytest.mark.model

FEW_SHOT = (
    "Instruction: Write the first letter of the word.\n\n"
    "Input: garden\nOutput: g\n\nInput: river\nOutput: r\n\nInput: lemon\nOutput: l\n\n"
    "Input: {word}\nOutput:"
)


def test_greedy_generation_is_deterministic_and_counted(local_backend):
    params = GenerationParams(max_tokens=12)
    prompts = [FEW_SHOT.format(word="planet"), FEW_SHOT.format(word="window")]
    before = local_backend.stats.snapshot()
    first = local_backend.generate(prompts, params)
    second = local_backend.generate(prompts, params)
    assert [g.text for g in first] == [g.text for g in second]
    assert first[0].text.strip().startswith("p")
    assert first[1].text.strip().startswith("w")
    assert all(g.prompt_tokens > 20 and 0 < g.completion_tokens <= 12 for g in first)
    after = local_backend.stats.snapshot()
    assert after["calls"] - before["calls"] == 4
    assert after["completion_tokens"] > before["completion_tokens"]


def test_stop_sequences_and_first_line_cut_generation_short(local_backend):
    prompt = FEW_SHOT.format(word="orange")
    free = local_backend.generate([prompt], GenerationParams(max_tokens=24))[0]
    assert "\n" in free.text, "without a stop the base model runs on into new examples"
    stopped = local_backend.generate([prompt], GenerationParams(max_tokens=24, stop=("\n",)))[0]
    assert "\n" not in stopped.text and stopped.text.strip() == "o"
    first_line = local_backend.generate(
        [prompt], GenerationParams(max_tokens=24, first_line_only=True))[0]
    assert first_line.text.strip() == "o"
    assert first_line.completion_tokens < free.completion_tokens


def test_sampling_with_a_seed_is_reproducible(local_backend):
    params = GenerationParams(temperature=1.0, top_p=0.95, max_tokens=10, seed=7)
    prompt = "A short story about a lighthouse keeper:"
    assert (local_backend.generate([prompt], params)[0].text
            == local_backend.generate([prompt], params)[0].text)


def _manual_logprobs(model_path, text_tokens: list[int], start: int) -> list[float]:
    """Log-probabilities of text_tokens[start:], computed the plain way: a fresh context fed
    the prompt, then one token at a time, reading the last logits before each token."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(model_path), n_ctx=256, n_threads=2,
                            logits_all=False, verbose=False)
    values = []
    try:
        llama.eval(text_tokens[:start])
        for position in range(start, len(text_tokens)):
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1), shape=(llama.n_vocab(),)
            ).astype(np.float64)
            log_z = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
            values.append(float(logits[text_tokens[position]] - log_z))
            llama.eval([text_tokens[position]])
    finally:
        llama.close()
    return values


# llama.cpp's kernels round differently for different batch shapes (one token, a chunk,
# many sequences), and the bundled 4-bit 270M model amplifies that: the same log-probability
# computed through differently split decodes differs by up to ~0.3 nats (measured; see
# docs/performance.md). A wrong token or a misplaced boundary is off by several nats.
NOISE = 0.35


def test_score_matches_a_manual_computation(local_backend, bundled_model):
    prompt = "Review: the soup was cold and the waiter ignored us.\nSentiment:"
    continuations = [" negative", " positive", " mostly negative overall"]
    scores = local_backend.score(prompt, continuations)
    for text, score in zip(continuations, scores):
        full = local_backend.tokenize(prompt + text)
        start = len(local_backend.tokenize(prompt))
        assert full[:start] == local_backend.tokenize(prompt)
        expected = _manual_logprobs(bundled_model, full, start)
        assert score.n_tokens == len(expected) == len(full) - start
        assert score.total_logprob == pytest.approx(sum(expected), abs=NOISE * len(expected))
        assert score.mean_logprob == pytest.approx(sum(expected) / len(expected), abs=NOISE)


def test_score_handles_a_token_that_straddles_the_boundary(local_backend, bundled_model):
    """'Sentiment: ' + 'positive' is the same text as 'Sentiment:' + ' positive'; the space
    and the word are one token, and it must be scored whole, whichever side holds the space."""
    with_space = local_backend.score("Review: a delight.\nSentiment: ", ["positive"])[0]
    without = local_backend.score("Review: a delight.\nSentiment:", [" positive"])[0]
    assert with_space.n_tokens == without.n_tokens == 1
    assert with_space.total_logprob == pytest.approx(without.total_logprob, abs=1e-4)
    full = local_backend.tokenize("Review: a delight.\nSentiment: positive")
    prompt_ids = local_backend.tokenize("Review: a delight.\nSentiment: ")
    assert full[:len(prompt_ids)] != prompt_ids, "the trailing space merged into the next token"
    expected = _manual_logprobs(bundled_model, full, len(full) - 1)
    assert with_space.total_logprob == pytest.approx(expected[0], abs=NOISE)


def test_score_ranks_the_right_label_first_on_easy_reviews(local_backend):
    shots = ("Review: I hated it, a total waste of time.\nSentiment: negative\n\n"
             "Review: Lovely, warm and funny.\nSentiment: positive\n\n")
    easy = {
        "An absolute joy from start to finish, I loved it.": " positive",
        "Dreadful, boring and far too long. I want my money back.": " negative",
        "A wonderful, heartfelt film with brilliant acting.": " positive",
        "The worst meal I have ever eaten; rude staff too.": " negative",
    }
    for review, right in easy.items():
        prompt = f"{shots}Review: {review}\nSentiment:"
        scores = local_backend.score(prompt, [" positive", " negative"])
        best = max(scores, key=lambda s: s.mean_logprob)
        assert best.continuation == right, review


def test_generation_can_be_cancelled_between_tokens(local_backend):
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        local_backend.generate(["Once upon a time"], GenerationParams(max_tokens=50), cancel)
    # The backend stays usable after a cancelled call.
    assert local_backend.generate([FEW_SHOT.format(word="apple")],
                                  GenerationParams(max_tokens=4))[0].text.strip()


def test_each_thread_gets_its_own_model_instance(local_backend):
    seen: dict[str, object] = {}

    def work(name: str) -> None:
        seen[name] = local_backend.engine()
        seen[name + "-text"] = local_backend.generate(
            [FEW_SHOT.format(word="tiger")], GenerationParams(max_tokens=4))[0].text

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["t0"] is not seen["t1"]
    assert seen["t0"] is not local_backend.engine()
    assert seen["t0-text"] == seen["t1-text"]


def test_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nothing-here.gguf"
    with pytest.raises(ModelFileError, match="nothing-here.gguf.*does not exist"):
        LocalBackend(ModelConfig(path=str(missing)))


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("these are my shopping notes, not a model")
    with pytest.raises(ModelFileError, match="notes.gguf is not a GGUF model file"):
        LocalBackend(ModelConfig(path=str(fake)))


def test_a_truncated_model_is_a_clear_error(tmp_path, bundled_model):
    cut = tmp_path / "half.gguf"
    with bundled_model.open("rb") as source, cut.open("wb") as target:
        target.write(source.read(bundled_model.stat().st_size // 2))
    with pytest.raises(ModelFileError, match="half.gguf is truncated"):
        LocalBackend(ModelConfig(path=str(cut)))
    header_only = tmp_path / "header.gguf"
    with bundled_model.open("rb") as source, header_only.open("wb") as target:
        target.write(source.read(1000))
    with pytest.raises(ModelFileError, match="header.gguf.*(truncated|ends too early)"):
        LocalBackend(ModelConfig(path=str(header_only)))


def test_any_gguf_file_can_be_chosen(tmp_path, bundled_model):
    copy = tmp_path / "my model.gguf"
    shutil.copyfile(bundled_model, copy)
    backend = LocalBackend(ModelConfig(path=str(copy), n_ctx=512, n_threads=1))
    try:
        assert backend.model_id.startswith("local:my model.gguf:")
        assert backend.generate([FEW_SHOT.format(word="cat")],
                                GenerationParams(max_tokens=3))[0].text.strip().startswith("c")
    finally:
        backend.close()


def test_a_prompt_longer_than_the_context_is_a_clear_error(tmp_path, bundled_model):
    backend = LocalBackend(ModelConfig(path=str(bundled_model), n_ctx=64, n_threads=1))
    try:
        with pytest.raises(BackendError, match="200 tokens|context holds 64"):
            backend.generate(["word " * 200], GenerationParams(max_tokens=4))
    finally:
        backend.close()


@pytest.mark.model
def test_a_thread_frees_its_copy_of_the_model_before_it_ends(bundled_model):
    backend = LocalBackend()
    held: list[int] = []
    try:
        def use_and_release() -> None:
            backend.generate(["Hello"], GenerationParams(max_tokens=2))
            held.append(len(backend._engines))
            backend.release_thread()

        worker = threading.Thread(target=use_and_release)
        worker.start()
        worker.join()
        assert held == [1], "the thread loaded a copy of its own"
        assert backend._engines == []
        reply = backend.generate(["Hello"], GenerationParams(max_tokens=2))[0]
        assert reply.completion_tokens > 0 and len(backend._engines) == 1, "usable after"
    finally:
        backend.close()
