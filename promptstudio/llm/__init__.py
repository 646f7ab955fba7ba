"""Model backends: local llama.cpp and OpenAI-compatible servers, behind one interface
(`llm/factory.make_backend` makes one for a model choice).

Importing this package chooses which build of llama.cpp the process will load (`native`),
before anything can import llama-cpp-python.
"""

from promptstudio.llm.native import choose_library

choose_library()

from promptstudio.llm.base import (  # noqa: E402
    Backend,
    BackendError,
    CallStats,
    Cancelled,
    CancelToken,
    ContinuationScore,
    Generation,
    GenerationParams,
    ModelFileError,
    ScoringUnsupported,
    ServerError,
)
from promptstudio.llm.config import ModelConfig  # noqa: E402

__all__ = [
    "Backend",
    "BackendError",
    "CallStats",
    "CancelToken",
    "Cancelled",
    "ContinuationScore",
    "Generation",
    "GenerationParams",
    "ModelConfig",
    "ModelFileError",
    "ScoringUnsupported",
    "ServerError",
]
