"""What every optimization method provides, and the registry of methods by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from promptstudio.optimize.context import RunContext


@dataclass(frozen=True)
class Sizes:
    """How many examples each split holds, for projecting a run's cost."""

    train: int
    dev: int
    test: int


class Method:
    """One optimization method. Subclasses fill in the class attributes and `optimize`.

    `presets` maps quick / standard / thorough to complete parameter sets; `paper` holds
    the paper's (or its official code's) defaults with the same keys, shown beside the
    settings so the user can see where a preset departs from the paper.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    """What it does, when to choose it and what it costs, in plain words for the GUI."""
    presets: ClassVar[dict[str, dict]]
    paper: ClassVar[dict]
    needs_capable_writer: ClassVar[bool] = False
    """Whether it asks the optimizer model to follow a request (critique, rewrite), which a
    small base model cannot; then `asks_the_writer` says what, for the warning."""
    asks_the_writer: ClassVar[str] = ""

    @property
    def short_title(self) -> str:
        """'APE' from 'APE: instructions induced from examples'."""
        return self.title.split(":")[0]

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """About how many model calls the search will make (task and optimizer model)."""
        raise NotImplementedError

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        """How many of those calls ask the optimizer model to write: each reads a long
        meta-prompt and writes many tokens, so it costs far more than a task answer."""
        return 0

    def optimize(self, ctx: RunContext, params: dict) -> None:
        """Search, creating and scoring candidates through `ctx`. May set
        `ctx.finalists`; otherwise the best-scoring candidates on train are the finalists."""
        raise NotImplementedError


_REGISTRY: dict[str, Method] = {}


def register(method: type[Method]) -> type[Method]:
    _REGISTRY[method.name] = method()
    return method


def method_named(name: str) -> Method:
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(methods())}.")
    return _REGISTRY[name]


def method_title(name: str) -> str:
    """A method's title for people, or its name when no such method exists (an old run)."""
    try:
        return method_named(name).title
    except ValueError:
        return name


def methods() -> list[str]:
    _load_all()
    return list(_REGISTRY)


def _load_all() -> None:
    from promptstudio.optimize import ape, demos, opro, pe2, protegi  # noqa: F401
