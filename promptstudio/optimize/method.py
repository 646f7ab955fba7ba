"""What every optimization method provides, and the registry of methods by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from promptstudio.optimize.context import RunContext
    from promptstudio.store.project import Project
    from promptstudio.store.records import Candidate


FINALISTS = 4
"""Candidates a search hands on to the final choice (`runner.choose`)."""
DEFAULT_DEMOS = 3
"""Demonstrations the starting prompt shows, drawn from train with the run's seed."""


@dataclass(frozen=True)
class Setting:
    """One setting of a method: a short label, what it does, and its allowed values when
    it is a choice among words."""

    label: str
    text: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One way a candidate is made, in plain words: its name in the table, the phrase the
    run's log uses, and the story the candidate's detail tells."""

    label: str
    log: str
    story: str


COMMON_OPERATIONS = {
    "start": Operation("Starting prompt", "your starting prompt",
                       "The project's starting instruction, with examples drawn at random "
                       "from the training rows."),
    "manual": Operation("Entered by hand", "entered by hand", "Entered by hand."),
    "paraphrase": Operation("Reworded", "a rewording",
                            "The optimizer model reworded an earlier prompt, keeping its "
                            "meaning."),
    "ablation": Operation("Your instruction with the new examples",
                          "your instruction with the new examples",
                          "To tell what made the gain, the run scored your own instruction "
                          "with the examples the best prompt shows."),
    "bare": Operation("The same examples, no instruction",
                      "the best prompt's examples with no instruction",
                      "To tell whether the words of the best prompt made its gain, the run "
                      "scored its examples with no instruction at all."),
}
"""Ways of making a candidate that belong to no one method."""


@dataclass(frozen=True)
class Section:
    """A titled part of a candidate's story: a paragraph and, maybe, a list of lines."""

    title: str
    text: str = ""
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sizes:
    """What a run's cost depends on besides its settings, for projecting it: how many
    examples each split holds, how the optimizer model is asked to write
    (`writing.BASE` or `PAPER`), and whether the method follows another in the run."""

    train: int
    dev: int
    test: int
    writer: str = "paper"
    follows: bool = False


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
    order: ClassVar[int] = 99
    """Where the method stands in the Run page's list: simplest and cheapest first."""
    settings: ClassVar[dict[str, Setting]] = {}
    """Each setting in plain words, by its key in `presets`."""
    operations: ClassVar[dict[str, Operation]] = {}
    """The ways its candidates are made, by the `operation` they are stored with."""
    meta_prompts: ClassVar[tuple[str, ...]] = ()
    """The meta-prompts it writes with (`resources/meta_prompts/<name>.txt`)."""
    needs_capable_writer: ClassVar[bool] = False
    """Whether it asks the optimizer model to follow a request (critique, rewrite), which a
    small base model cannot; then `asks_the_writer` says what, for the warning."""
    asks_the_writer: ClassVar[str] = ""

    @property
    def short_title(self) -> str:
        """'APE' from 'APE: instructions induced from examples', 'ProTeGi' from 'ProTeGi
        (textual gradients)': the title without its gloss."""
        return self.title.split(":")[0].split(" (")[0]

    def projected_calls(self, params: dict, sizes: Sizes) -> int:
        """About how many model calls the search will make (task and optimizer model)."""
        raise NotImplementedError

    def projected_optimizer_calls(self, params: dict, sizes: Sizes) -> int:
        """How many of those calls ask the optimizer model to write: each reads a long
        meta-prompt and writes many tokens, so it costs far more than a task answer."""
        return 0

    def story(self, project: Project, candidate: Candidate,
              known: Mapping[int, Any]) -> list[Section]:
        """What the method stored about how it made `candidate`, told in sections (the
        critique behind an edit, the history the optimizer model was shown). `known`
        holds the run's other candidates as the results page has them, by id."""
        return []

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


def short_title(name: str) -> str:
    """A method's short title, or its name when no such method exists (an old run)."""
    try:
        return method_named(name).short_title
    except ValueError:
        return name


def methods() -> list[str]:
    """The methods' names, in the order the Run page lists them."""
    _load_all()
    return sorted(_REGISTRY, key=lambda name: (_REGISTRY[name].order, name))


def setting(method: str, name: str) -> Setting:
    """The plain-words description of one setting; a bare one for a setting not described."""
    try:
        known = method_named(method).settings.get(name)
    except ValueError:
        known = None
    return known or Setting(name.replace("_", " ").capitalize(), "")


def owner(operation_name: str) -> Method | None:
    """The method that makes candidates with this operation, if one does."""
    _load_all()
    return next((m for m in _REGISTRY.values() if operation_name in m.operations), None)


def operation(name: str) -> Operation:
    """How a candidate stored with operation `name` was made; a bare description for an
    operation no method declares (a run of an older version)."""
    method = owner(name)
    if method is not None:
        return method.operations[name]
    if name in COMMON_OPERATIONS:
        return COMMON_OPERATIONS[name]
    words = name.replace("-", " ")
    return Operation(words.capitalize(), words, words.capitalize() + ".")


def meta_prompt_names() -> list[str]:
    """Every meta-prompt a method writes with, each once."""
    _load_all()
    return list(dict.fromkeys(n for method in _REGISTRY.values() for n in method.meta_prompts))


_loaded = False


def _load_all() -> None:
    """Import every module of this package once. A method registers itself when its module
    is imported (`register`), so adding a method is adding its module, nothing else."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    import promptstudio.optimize as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
