"""The backend for a model choice. It sits apart from the choice itself (`config.py`),
which the project store keeps: storing a choice needs neither llama.cpp nor HTTP."""

from __future__ import annotations

from promptstudio.llm.base import Backend
from promptstudio.llm.config import ModelConfig
from promptstudio.llm.local import LocalBackend
from promptstudio.llm.server import ServerBackend


def make_backend(config: ModelConfig) -> Backend:
    """The backend for a model choice. Local models load lazily, once per thread."""
    if config.kind == "server":
        return ServerBackend(config)
    if config.kind == "local":
        return LocalBackend(config)
    raise ValueError(f"Unknown model kind {config.kind!r}: use 'local' or 'server'.")
