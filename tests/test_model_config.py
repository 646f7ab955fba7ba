"""Model choices: parsing what the user types, saving them, and building backends."""

from __future__ import annotations

import pytest

from promptstudio.llm.config import ModelConfig, parse_model_spec, physical_cores
from promptstudio.llm.factory import make_backend
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.server import ServerBackend


@pytest.mark.parametrize(("spec", "kind", "path", "url", "model"), [
    ("bundled", "local", None, None, None),
    ("BUNDLED", "local", None, None, None),
    ("/models/mistral-7b.Q4_K_M.gguf", "local", "/models/mistral-7b.Q4_K_M.gguf", None, None),
    ("http://127.0.0.1:8080/v1", "server", None, "http://127.0.0.1:8080/v1", None),
    ("https://gpu.example:8000/v1#qwen2.5-7b", "server", None, "https://gpu.example:8000/v1",
     "qwen2.5-7b"),
])
def test_model_specs(spec, kind, path, url, model):
    config = parse_model_spec(spec)
    assert (config.kind, config.path, config.base_url, config.model) == (kind, path, url, model)


def test_unknown_spec_says_what_is_accepted():
    with pytest.raises(ValueError, match="bundled.*gguf.*http"):
        parse_model_spec("my favourite model")


def test_settings_carry_over_and_the_api_key_is_not_saved():
    base = ModelConfig(n_threads=3, n_ctx=8192, api_key="secret")
    server = parse_model_spec("http://localhost:11434/v1#llama3", base)
    assert server.n_threads == 3 and server.n_ctx == 8192
    saved = server.to_dict()
    assert "api_key" not in saved
    assert ModelConfig.from_dict(saved) == ModelConfig(**{**saved, "api_key": None})
    assert ModelConfig.from_dict({"kind": "local", "unknown_future_setting": 1}).is_bundled


def test_make_backend_builds_each_kind(bundled_model):
    server = make_backend(parse_model_spec("http://127.0.0.1:9/v1"))
    assert isinstance(server, ServerBackend)
    server.close()
    for spec in ("bundled", str(bundled_model)):
        local = make_backend(parse_model_spec(spec))
        assert isinstance(local, LocalBackend) and local.path == bundled_model, spec
        local.close()
    with pytest.raises(ValueError, match="Unknown model kind"):
        make_backend(ModelConfig(kind="cloud"))  # type: ignore[arg-type]
    assert physical_cores() >= 1


def test_describe_names_the_model():
    assert ModelConfig().describe().endswith("(bundled)")
    assert parse_model_spec("/x/tiny.gguf").describe() == "tiny.gguf"
    assert "at http://h:1/v1" in parse_model_spec("http://h:1/v1#m").describe()
