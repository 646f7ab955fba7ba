"""The LLM call cache: an identical call is never made twice, and it survives a reopen."""

from __future__ import annotations

from scripted import ScriptedBackend

from promptstudio.llm.base import GenerationParams
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
    second = cached.generate(["b", "a", "c"], params)
    assert inner.prompts == ["a", "b", "c"]
    assert [g.text for g in second] == ["B", "A", "C"]
    assert [g.cached for g in second] == [True, True, False]
    assert not any(g.cached for g in first)
    assert cached.stats.snapshot()["calls"] == 3
    assert cached.stats.snapshot()["cached_calls"] == 2


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
    """Prompt i of a call samples with seed + i; a call half answered from the cache must
    ask the rest with the seeds they would have had."""
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

    from promptstudio.llm.base import Generation

    cached = CachedBackend(SeedEcho(), _project(tmp_path))
    params = GenerationParams(temperature=1.0, seed=100)
    cached.generate(["p", "p"], params)
    answers = cached.generate(["p"] * 5, params)
    assert [g.text for g in answers] == [f"p@{100 + i}" for i in range(5)]
    assert seen[2:] == [("p", 102), ("p", 103), ("p", 104)]
    assert [g.cached for g in answers] == [True, True, False, False, False]
