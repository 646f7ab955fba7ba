"""A quick look inside a GGUF file before llama.cpp is asked to load it.

llama.cpp reports a bad file with a terse message on stderr; users pick files by hand, so
we check the things that go wrong in practice (wrong file, unfinished download) ourselves
and say so in words, naming the file.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from promptstudio.llm.base import ModelFileError

GGUF_MAGIC = b"GGUF"

# Value types of GGUF metadata, by their numeric code: (struct format, size) for scalars.
_SCALARS = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 8
"""ggml tensors have at most 4 dimensions; more than this is a damaged header."""
_BLOCK = 1 << 20
"""Bytes read at a time when passing a long list of strings."""


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size_bytes: int
    version: int
    tensor_count: int
    metadata: dict[str, object]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None


class _Reader:
    """Reads a header whose counts and lengths may be damaged: nothing is read or skipped
    past the end of the file, so a wild count costs neither memory nor time."""

    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self.handle, self.path, self.size = handle, path, size

    def _ensure(self, size: int) -> None:
        if size < 0 or self.handle.tell() + size > self.size:
            raise ModelFileError(
                f"The model file {self.path} ends too early: it is truncated "
                "(an unfinished download or copy). Download or copy it again."
            )

    def take(self, size: int) -> bytes:
        self._ensure(size)
        return self.handle.read(size)

    def skip(self, size: int) -> None:
        self._ensure(size)
        self.handle.seek(size, 1)

    def count(self, count: int, least_bytes_each: int) -> int:
        """A count of items that each take at least that many bytes, if the file can hold
        them all."""
        self._ensure(count * least_bytes_each)
        return count

    def scalar(self, code: int) -> object:
        fmt, size = _SCALARS[code]
        return struct.unpack(fmt, self.take(size))[0]

    def string(self) -> str:
        length = self._string_length(struct.unpack("<Q", self.take(8))[0])
        return self.take(length).decode("utf-8", errors="replace")

    def _string_length(self, length: int) -> int:
        if length > 1 << 24:
            raise ModelFileError(
                f"The model file {self.path} is damaged (a name is {length} bytes long).")
        return length

    def skip_strings(self, count: int) -> None:
        """Pass `count` strings, reading their lengths from blocks of the file rather than
        with a read each: a vocabulary holds up to 262,144 of them (Gemma's), and two reads
        each made checking that header take 1.4 s instead of 0.3 (benchmarks/startup.py)."""
        position = block_start = self.handle.tell()
        block = b""
        for _ in range(count):
            offset = position - block_start
            if offset + 8 > len(block):
                self.handle.seek(position)
                self._ensure(8)
                block, block_start, offset = self.handle.read(_BLOCK), position, 0
            position += 8 + self._string_length(struct.unpack_from("<Q", block, offset)[0])
        self.handle.seek(block_start)
        self.skip(position - block_start)

    def value(self, code: int) -> object:
        if code in _SCALARS:
            return self.scalar(code)
        if code == _STRING:
            return self.string()
        if code == _ARRAY:
            item_code, count = struct.unpack("<IQ", self.take(12))
            if item_code in _SCALARS:
                # Long arrays (token scores) are skipped, not decoded: we only pass them by.
                self.skip(_SCALARS[item_code][1] * count)
                return f"<array of {count}>"
            if item_code == _STRING:
                self.skip_strings(self.count(count, 8))  # a string is at least its length
                return f"<array of {count}>"
            for _ in range(self.count(count, 8)):
                self.value(item_code)
            return f"<array of {count}>"
        raise ModelFileError(
            f"The model file {self.path} is damaged (unknown value type {code}).")


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Read a GGUF file's header and check the file holds all its tensor data.

    Raises `ModelFileError` with a plain message when the file is missing, is not GGUF,
    or is shorter than its own header says. Reading a header walks the whole vocabulary,
    so the answer is remembered while the file is unchanged.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"The model file {path} does not exist. Choose another file.")
    if not path.is_file():
        raise ModelFileError(f"{path} is a folder, not a model file. Choose a .gguf file.")
    stat = path.stat()
    return _inspect(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _inspect(path: Path, size: int, mtime_ns: int) -> GGUFInfo:
    with path.open("rb") as handle:
        magic = handle.read(4)
        if magic != GGUF_MAGIC:
            raise ModelFileError(
                f"{path} is not a GGUF model file (it does not start with 'GGUF'). "
                "PromptStudio runs models in the GGUF format used by llama.cpp."
            )
        reader = _Reader(handle, path, size)
        version, tensor_count, kv_count = struct.unpack("<IQQ", reader.take(20))
        reader.count(kv_count, 8 + 4 + 1)  # a name, a type, the smallest value
        reader.count(tensor_count, 8 + 4 + 4 + 8)  # a name, dimensions, a type, an offset
        if version < 2:
            raise ModelFileError(
                f"{path} uses GGUF version {version}, which is too old. Convert it anew."
            )
        metadata: dict[str, object] = {}
        for _ in range(kv_count):
            key = reader.string()
            code = struct.unpack("<I", reader.take(4))[0]
            metadata[key] = reader.value(code)
        last_offset = 0
        for _ in range(tensor_count):
            reader.string()
            n_dims = struct.unpack("<I", reader.take(4))[0]
            if n_dims > _MAX_DIMS:
                raise ModelFileError(
                    f"The model file {path} is damaged (a tensor has {n_dims} dimensions).")
            reader.skip(8 * n_dims + 4)
            last_offset = max(last_offset, struct.unpack("<Q", reader.take(8))[0])
        alignment = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT) or 1)
        data_start = -(-handle.tell() // alignment) * alignment
    if tensor_count and size <= data_start + last_offset:
        raise ModelFileError(
            f"The model file {path} is truncated: it has {size:,} bytes but its tensors "
            f"reach past byte {data_start + last_offset:,}. Download or copy it again."
        )
    return GGUFInfo(path, size, version, tensor_count, metadata)


def token_texts(path: str | Path, ids: Sequence[int]) -> dict[int, str]:
    """The vocabulary's text of the tokens `ids` (a chat template's begin and end tokens),
    read from the file's token list without loading the model; ids the file does not hold
    are left out."""
    info = inspect_gguf(path)
    return dict(_token_texts(info.path, info.size_bytes, tuple(sorted(set(ids)))))


@functools.lru_cache(maxsize=16)
def _token_texts(path: Path, size: int, ids: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    wanted = set(ids)
    found: list[tuple[int, str]] = []
    with path.open("rb") as handle:
        reader = _Reader(handle, path, size)
        handle.read(4)
        _, _, kv_count = struct.unpack("<IQQ", reader.take(20))
        for _ in range(kv_count):
            key = reader.string()
            code = struct.unpack("<I", reader.take(4))[0]
            if key != "tokenizer.ggml.tokens" or code != _ARRAY:
                reader.value(code)
                continue
            item_code, count = struct.unpack("<IQ", reader.take(12))
            if item_code != _STRING:
                break
            last = min(reader.count(count, 8), max(wanted, default=-1) + 1)
            for index in range(last):
                text = reader.string()
                if index in wanted:
                    found.append((index, text))
            break
    return tuple(found)
