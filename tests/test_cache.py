"""The LLM call cache: an identical call is never made twice, and it survives a reopen."""

from __future__ import annotations

from scripted import ScriptedBackend

from promptstudio.llm.base import Generation, GenerationParams
from promptstudio.llm.cache import CachedBackend
from promptstudio.store.project import Project
from promptstudio.store.records import ProjectSettings


def _project(tmp_path) -> Project:
    return Project.create(tmp_path / "cache.sqlite", ProjectSettings(name="cache"))


def test_a_repeated_call_is_answered_from_the_cache(tmp_path):
    inner = ScriptedBackend(lambda prompt: prompt.upper())
    cached = CachedBackend(inner, _project(tmp_path))
    params = GenerationParams(max_tokens=5)
    first = cached.generate(["a", "b"], params)
    again = cached.generate(["a", "b"], params)
    assert inner.prompts == ["a", "b"]
    assert [g.text for g in again] == ["A", "B"]
    assert [g.cached for g in again] == [True, True]
    assert not any(g.cached for g in first)
    assert cached.stats.snapshot()["calls"] == 2
    assert cached.stats.snapshot()["cached_calls"] == 2


def test_a_call_found_in_part_is_asked_whole_in_its_own_shape(tmp_path):
    """A batched answer depends on its batchmates, so the missing answers must come from
    the call as it was planned, not from a smaller call of what is missing."""
    inner = ScriptedBackend(lambda prompt: prompt.upper())
    cached = CachedBackend(inner, _project(tmp_path))
    params = GenerationParams(max_tokens=5)
    cached.generate(["a", "b"], params)
    answers = cached.generate(["b", "a", "c"], params)
    assert inner.prompts == ["a", "b", "b", "a", "c"]
    assert [g.text for g in answers] == ["B", "A", "C"]
    assert cached.mismatches == 0
    cached.generate(["b", "a", "c"], params)
    assert len(inner.prompts) == 5, "a call found whole is not asked again"


def test_an_answer_that_changes_with_its_batch_is_reported(tmp_path):
    class BatchSensitive(ScriptedBackend):
        def generate(self, prompts, params, cancel=None, on_result=None):
            results = []
            for index, prompt in enumerate(prompts):
                results.append(Generation(f"{prompt} in {len(prompts)}", 1, 1))
                if on_result is not None:
                    on_result(index, results[-1])
            return results

    cached = CachedBackend(BatchSensitive(), _project(tmp_path))
    seen: list[tuple[str, str, str]] = []
    cached.on_mismatch = lambda *difference: seen.append(difference)
    params = GenerationParams(max_tokens=5)
    cached.generate(["a"], params)
    answers = cached.generate(["a", "b"], params)
    assert [g.text for g in answers] == ["a in 2", "b in 2"], "the call's own answers"
    assert seen == [("a", "a in 1", "a in 2")]
    assert cached.mismatches == 1


def test_prompts_asked_alone_ask_only_what_is_missing(tmp_path):
    inner = ScriptedBackend(lambda prompt: prompt.upper())
    cached = CachedBackend(inner, _project(tmp_path))
    params = GenerationParams(max_tokens=5, alone_after=0)
    cached.generate(["a", "b"], params)
    answers = cached.generate(["b", "a", "c"], params)
    assert inner.prompts == ["a", "b", "c"]
    assert [g.cached for g in answers] == [True, True, False]
    cached.generate(["a"], GenerationParams(max_tokens=5))
    assert inner.prompts[-1] == "a", "asked alone or together are different calls"


def test_greedy_calls_ignore_the_seed_but_sampled_calls_do_not(tmp_path):
    inner = ScriptedBackend(lambda prompt: "x")
    cached = CachedBackend(inner, _project(tmp_path))
    cached.generate(["p"], GenerationParams(seed=1))
    cached.generate(["p"], GenerationParams(seed=2))
    assert len(inner.prompts) == 1
    cached.generate(["p"], GenerationParams(temperature=0.8, seed=1))
    cached.generate(["p"], GenerationParams(temperature=0.8, seed=2))
    cached.generate(["p"], GenerationParams(temperature=0.8, seed=2))
    assert len(inner.prompts) == 3


def test_other_parameters_or_models_are_different_calls(tmp_path):
    project = _project(tmp_path)
    inner = ScriptedBackend(lambda prompt: "x")
    cached = CachedBackend(inner, project)
    cached.generate(["p"], GenerationParams(max_tokens=5))
    cached.generate(["p"], GenerationParams(max_tokens=6))
    cached.generate(["p"], GenerationParams(max_tokens=5, stop=("\n",)))
    assert len(inner.prompts) == 3

    class OtherModel(ScriptedBackend):
        @property
        def model_id(self) -> str:
            return "scripted:other"

    other = OtherModel(lambda prompt: "y")
    answer = CachedBackend(other, project).generate(["p"], GenerationParams(max_tokens=5))
    assert answer[0].text == "y"


def test_scores_are_cached_and_the_cache_survives_reopening(tmp_path):
    project = _project(tmp_path)
    inner = ScriptedBackend(scores={"yes": -0.5, "no": -2.0})
    first = CachedBackend(inner, project).score("Q:", [" yes", " no"])
    project.close()
    reopened = Project.open(project.path)
    again = CachedBackend(inner, reopened).score("Q:", [" yes", " no"])
    assert len(inner.scored) == 1
    assert again == first
    assert reopened.cache_size() == 1


def test_sampled_prompts_keep_their_seeds_when_only_some_are_cached(tmp_path):
    """Prompt i of a call samples with seed + i: a call half answered from the cache asks
    the whole call again with the same seeds; asked alone, only the rest, with the seeds
    they would have had."""
    seen: list[tuple[str, int]] = []

    class SeedEcho(ScriptedBackend):
        def generate(self, prompts, params, cancel=None, on_result=None):
            results = []
            for index, prompt in enumerate(prompts):
                seen.append((prompt, params.seed + index))
                results.append(Generation(f"{prompt}@{params.seed + index}", 1, 1))
                if on_result is not None:
                    on_result(index, results[-1])
            return results

    for alone_after, asked in ((None, list(range(100, 105))), (0, [102, 103, 104])):
        seen.clear()
        cached = CachedBackend(SeedEcho(), _project(tmp_path / str(alone_after)))
        params = GenerationParams(temperature=1.0, seed=100, alone_after=alone_after)
        cached.generate(["p", "p"], params)
        answers = cached.generate(["p"] * 5, params)
        assert [g.text for g in answers] == [f"p@{100 + i}" for i in range(5)]
        assert seen[2:] == [("p", seed) for seed in asked]
        assert cached.mismatches == 0


def test_scores_found_in_part_are_asked_whole(tmp_path):
    inner = ScriptedBackend(scores={"yes": -0.5, "no": -2.0})
    cached = CachedBackend(inner, _project(tmp_path))
    cached.score_batch([("Q1:", [" yes"])])
    cached.score_batch([("Q1:", [" yes"]), ("Q2:", [" no"])])
    assert len(inner.scored) == 3
    cached.score_batch([("Q1:", [" yes"]), ("Q3:", [" no"])], alone_after=0)
    cached.score_batch([("Q1:", [" yes"]), ("Q3:", [" no"])], alone_after=0)
    assert len(inner.scored) == 5, "alone: both are new keys, asked once"
