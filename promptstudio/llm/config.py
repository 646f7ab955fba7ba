"""Which model to run and how: the settings a project stores for its task and optimizer models."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

BackendKind = Literal["local", "server"]


def physical_cores() -> int:
    """Physical cores: llama.cpp gets slower, not faster, on hyper-threads."""
    try:
        pairs = set()
        physical = core = None
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and core is not None:
                    pairs.add((physical, core))
                    physical = core = None
        if core is not None:
            pairs.add((physical, core))
        if pairs:
            return len(pairs)
    except OSError:
        pass
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class ModelConfig:
    """A model choice. `local` with no path is the bundled model.

    Local: `path` (a GGUF file), `n_ctx`, `n_threads` (0 = all physical cores).
    Server: `base_url` (OpenAI-compatible, e.g. http://127.0.0.1:8080/v1), `model`,
    `api_key`, `concurrency` (requests in flight), `timeout` seconds, `retries`.
    Both: `prompt_format`, how prompts reach the model (`chat.FORMATS`): `auto` decides by
    the model (`chat.prompt_format_of`).
    """

    kind: BackendKind = "local"
    path: str | None = None
    n_ctx: int = 4096
    n_threads: int = 0
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    concurrency: int = 4
    timeout: float = 120.0
    retries: int = 3
    prompt_format: str = "auto"

    @property
    def is_bundled(self) -> bool:
        return self.kind == "local" and not self.path

    def describe(self) -> str:
        if self.kind == "server":
            return f"{self.model or 'default model'} at {self.base_url}"
        if self.is_bundled:
            from promptstudio.llm.bundled import BUNDLED_MODEL_NAME

            return f"{BUNDLED_MODEL_NAME} (bundled)"
        return os.path.basename(self.path or "")

    def without_key(self) -> ModelConfig:
        """The model choice as the project stores it: API keys never go into project
        files (`to_dict`)."""
        return replace(self, api_key=None)

    def to_dict(self) -> dict:
        """Settings worth saving; the API key is kept out of project files on purpose."""
        data = asdict(self)
        data.pop("api_key")
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


def parse_model_spec(spec: str, base: ModelConfig | None = None) -> ModelConfig:
    """A model choice from one string, as typed on the command line.

    `bundled`, a path to a `.gguf` file, or a server URL `http(s)://host:port[/v1][#model]`.
    Settings of `base` that the string does not name (threads, context size, timeouts) carry
    over.
    """
    base = base or ModelConfig()
    spec = spec.strip()
    if spec.lower() == "bundled":
        return replace(base, kind="local", path=None)
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        return replace(base, kind="server", base_url=url, model=model or None, path=None)
    if spec.lower().endswith(".gguf") or os.path.sep in spec:
        return replace(base, kind="local", path=os.path.abspath(os.path.expanduser(spec)))
    raise ValueError(
        f"Cannot tell what model {spec!r} is. Give 'bundled', a .gguf file, or a server "
        "address such as http://127.0.0.1:8080/v1#model-name."
    )
