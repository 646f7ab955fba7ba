"""The batched engine against the plain path, on the real bundled model."""

from __future__ import annotations

import pytest
from task_data import data_rows

from promptstudio.llm.base import BackendError, Cancelled, CancelToken, GenerationParams
from promptstudio.llm.engine import LlamaEngine

pytestmark = pytest.mark.model

TEMPLATE = ("Instruction: Write the plural of the word.\n\n"
            "Input: cat\nOutput: cats\n\nInput: box\nOutput: boxes\n\n"
            "Input: city\nOutput: cities\n\nInput: {word}\nOutput:")
GREEDY = GenerationParams(max_tokens=12, first_line_only=True)


@pytest.fixture(scope="module")
def engine(bundled_model):
    engine = LlamaEngine(str(bundled_model), n_ctx=2048, n_threads=2, n_seq_max=5)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def words():
    return [row["input"] for row in data_rows("plurals", "test", 24)]


def _plain_completions(model_path, prompts: list[str]) -> list[str]:
    """The plain way: llama-cpp-python's high-level class, one prompt at a time."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(model_path), n_ctx=2048, n_threads=2,
                            verbose=False)
    try:
        return [llama.create_completion(p, max_tokens=12, temperature=0.0, stop=["\n"],
                                        repeat_penalty=1.0)["choices"][0]["text"]
                for p in prompts]
    finally:
        llama.close()


def test_batched_generation_matches_the_plain_path(engine, words, bundled_model):
    prompts = [TEMPLATE.format(word=w) for w in words]
    batched = engine.generate(prompts, GREEDY)
    assert len(batched) == len(prompts), "more prompts than sequences are queued, not lost"
    plain = _plain_completions(bundled_model, prompts)
    ours = [o.text.split("\n")[0].strip() for o in batched]
    theirs = [t.strip() for t in plain]
    agree = sum(a == b for a, b in zip(ours, theirs))
    # Rounding differs between batch shapes; a near-tie may flip, rarely (see engine.py).
    assert agree >= len(prompts) - 1, list(zip(words, ours, theirs))
    assert all(o.prompt_tokens > 30 and 1 <= o.completion_tokens <= 12 for o in batched)


def test_one_prompt_at_a_time_gives_the_same_answers_as_a_batch(engine, words):
    prompts = [TEMPLATE.format(word=w) for w in words[:8]]
    batched = [o.text for o in engine.generate(prompts, GREEDY)]
    engine.reset()
    single = [engine.generate([p], GREEDY)[0].text for p in prompts]
    assert sum(a.strip() == b.strip() for a, b in zip(batched, single)) >= 7


def test_the_shared_prefix_is_decoded_once_and_kept_between_calls(engine, words):
    engine.reset()
    prompts = [TEMPLATE.format(word=w) for w in words[:8]]
    before = engine.fed_tokens
    first = engine.generate(prompts[:4], GREEDY)
    fed_first = engine.fed_tokens - before
    prompt_tokens = sum(o.prompt_tokens for o in first)
    assert fed_first < prompt_tokens / 2, "the demonstrations were not repeated per prompt"
    prefix = len(engine._prefix)
    assert prefix > 30
    before = engine.fed_tokens
    second = engine.generate(prompts[4:], GREEDY)
    fed_second = engine.fed_tokens - before
    own_tokens = sum(o.prompt_tokens - prefix + o.completion_tokens for o in second)
    assert fed_second <= own_tokens, "the second call started from the kept prefix"


def test_a_small_context_queues_sequences_instead_of_failing(bundled_model, words):
    engine = LlamaEngine(str(bundled_model), n_ctx=256, n_threads=2, n_seq_max=9)
    try:
        prompts = [TEMPLATE.format(word=w) for w in words[:12]]
        outcomes = engine.generate(prompts, GREEDY)
        assert all(o.text.strip() for o in outcomes)
        with pytest.raises(BackendError, match="context"):
            engine.generate(["word " * 400], GREEDY)
        assert engine.generate(prompts[:2], GREEDY)[0].text == outcomes[0].text
    finally:
        engine.close()


def test_batched_scores_match_one_by_one_scores(engine):
    reviews = [row["input"] for row in data_rows("sentiment", "test", 10)]
    items = [(f"Review: {r}\nSentiment:", [" positive", " negative", " rather mixed"])
             for r in reviews]
    batched = [scored.continuations for scored in engine.score(items)]
    single = [engine.score([item])[0].continuations for item in items]
    for a, b in zip(batched, single):
        assert [n for _, n in a] == [n for _, n in b]
        assert [n for _, n in a][:2] == [1, 1] and a[2][1] >= 2
        for (total_a, _), (total_b, _) in zip(a, b):
            # llama.cpp's kernels round differently for other batch shapes; on this 4-bit
            # model that moves a continuation's log-probability by up to 0.5 nats (measured
            # over 40 reviews on both builds, docs/performance.md). A wrong position or a
            # lost token would be off by several nats.
            assert total_a == pytest.approx(total_b, abs=0.6)
    picks_a = [max(range(2), key=lambda i: a[i][0]) for a in batched]
    picks_b = [max(range(2), key=lambda i: b[i][0]) for b in single]
    assert sum(x == y for x, y in zip(picks_a, picks_b)) >= 9


def test_cancelling_leaves_the_engine_usable(engine, words):
    prompts = [TEMPLATE.format(word=w) for w in words[:6]]
    expected = [o.text for o in engine.generate(prompts, GREEDY)]
    cancel = CancelToken()
    calls = {"n": 0}
    original = engine._decode

    def decode_then_cancel():
        calls["n"] += 1
        original()
        if calls["n"] == 2:
            cancel.cancel()

    engine._decode = decode_then_cancel
    try:
        with pytest.raises(Cancelled):
            engine.generate(prompts, GREEDY, cancel)
    finally:
        del engine._decode
    again = [o.text for o in engine.generate(prompts, GREEDY)]
    assert sum(a == b for a, b in zip(again, expected)) >= 5


def test_sampling_is_reproducible_with_a_seed(engine):
    params = GenerationParams(temperature=0.9, top_p=0.9, max_tokens=10, seed=3)
    prompt = "Three ideas for a birthday party:"
    twins = engine.generate([prompt, prompt], params)
    assert twins[0].text != twins[1].text, "prompt i samples with seed + i"
    # Sampling magnifies rounding differences between batch shapes, so reproducibility is
    # checked from the same engine state.
    engine.reset()
    first = engine.generate([prompt], params)[0].text
    engine.reset()
    assert engine.generate([prompt], params)[0].text == first
    others = set()
    for seed in (4, 5, 6):
        engine.reset()
        others.add(engine.generate([prompt], GenerationParams(
            temperature=0.9, top_p=0.9, max_tokens=10, seed=seed))[0].text)
    assert others - {first}, "other seeds give other samples"


def test_a_call_answers_the_same_whatever_ran_before_it(engine, words):
    prompts = [TEMPLATE.format(word=w) for w in words[:10]]
    engine.reset()
    fresh = engine.generate(prompts, GREEDY)
    engine.generate([TEMPLATE.format(word=w) for w in words[10:20]], GREEDY)
    engine.score([("Review: fine.\nSentiment:", [" positive", " negative"])])
    engine.generate(prompts[:3], GREEDY)
    again = engine.generate(prompts, GREEDY)
    assert [o.text for o in again] == [o.text for o in fresh]
