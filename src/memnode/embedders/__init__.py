"""Text embedders: one port, two real adapters and a deterministic test twin.

    Embedder (Protocol)            model: ModelId, embed(texts) -> float32 (n, dim)
    ├── SentenceTransformerEmbedder  "minilm"       all-MiniLM-L6-v2, fp32, torch (DEFAULT)
    ├── OnnxEmbedder                 "minilm-int8"  the same model, int8 ONNX, no torch
    └── HashEmbedder                 "test-hash"    bag of hashed words: TESTS ONLY

Every ``embed`` returns a C-contiguous float32 array of shape ``(len(texts), dim)``
whose rows have unit L2 norm (so cosine similarity is a dot product); an empty input
gives shape ``(0, dim)``. ``model`` is the :class:`~federation.events.ModelId`
(name, dimension, weights fingerprint) that travels with every replicated vector:
nodes never mix vectors of different ``ModelId``.

Importing this module is cheap: torch, sentence_transformers, onnxruntime and
tokenizers are imported inside the adapters' constructors, never here. Each real
adapter checks its weights file's sha256 at load (once per process) and refuses any
other file with :class:`EmbedderError`; the fingerprint is that hash's first 16 hex
digits. ``embed`` is safe to call from several threads at once (see each adapter).
"""

from __future__ import annotations

from collections.abc import Callable

from memnode.embedders.base import DEFAULT_EMBEDDER, MINILM_DIM, Embedder, file_sha256
from memnode.embedders.hashing import HashEmbedder
from memnode.embedders.minilm import SentenceTransformerEmbedder
from memnode.embedders.onnx import OnnxEmbedder
from memnode.errors import EmbedderError, InvalidArgument

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "MINILM_DIM",
    "Embedder",
    "EmbedderError",
    "HashEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "file_sha256",
    "load_embedder",
]


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm": SentenceTransformerEmbedder,
    "minilm-int8": OnnxEmbedder,
    "test-hash": HashEmbedder,
}


def load_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """Build the embedder registered as ``name`` (loads its model: may take seconds).

    Raises :class:`~memnode.errors.InvalidArgument` for an unknown name and
    :class:`EmbedderError` if the model cannot be loaded or fails its integrity check.
    """
    factory = EMBEDDERS.get(name)
    if factory is None:
        known = ", ".join(sorted(EMBEDDERS))
        raise InvalidArgument(f"unknown embedder {name!r}; known embedders: {known}")
    return factory()
