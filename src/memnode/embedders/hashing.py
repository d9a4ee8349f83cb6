"""A deterministic bag-of-hashed-words embedder: TESTS ONLY (no semantics)."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Final

import numpy as np

from federation.events import ModelId
from memnode.embedders.base import (
    _FINGERPRINT_HEX,
    MINILM_DIM,
    BatchEmbedder,
    Vectors,
    _normalize_rows,
)
from memnode.errors import InvalidArgument

HASH_ALGORITHM: Final = "memnode-test-hash-v1"
_HASH_PERSON: Final = b"memnode-hash-v1"  # blake2b personalisation, <= 16 bytes
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 16)
def _word_vector(word: str, dim: int) -> Vectors:
    """A pseudo-random unit vector for ``word``: blake2b in counter mode, int16 lanes.

    Derived from hashlib alone (not numpy's RNG, whose streams may change between
    versions), so every machine and version computes the same vector.
    """
    data = word.encode("utf-8")
    blocks = -(-2 * dim // 64)
    raw = b"".join(
        hashlib.blake2b(
            i.to_bytes(4, "little") + data, digest_size=64, person=_HASH_PERSON
        ).digest()
        for i in range(blocks)
    )
    v = np.frombuffer(raw, dtype="<i2", count=dim).astype(np.float32) + np.float32(0.5)
    v /= np.linalg.norm(v)
    v.setflags(write=False)
    return v


class HashEmbedder(BatchEmbedder):
    """A deterministic TEST embedder: NO semantics beyond shared words.

    Each text is the normalised sum of one pseudo-random unit vector per lowercased
    word token (``\\w+``), each vector seeded by blake2b of the word. Texts that share
    words are closer; synonyms and paraphrases are not. A text with no word token maps
    to the vector of the empty word. Loads nothing, imports only numpy and hashlib:
    for unit tests and benchmark harness nodes that must not load a model. Never use
    it for real memories: its vectors are incompatible with every real model (the
    ``ModelId`` differs, so nodes refuse to mix them).
    """

    NAME: Final = "test-hash"

    def __init__(self, dim: int = MINILM_DIM) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 65_536:
            raise InvalidArgument(f"dim must be an int in [1, 65536], got {dim!r}")
        seed = f"{HASH_ALGORITHM}/dim={dim}".encode()
        fingerprint = hashlib.blake2b(seed, digest_size=_FINGERPRINT_HEX // 2).hexdigest()
        self._model = ModelId(self.NAME, dim, fingerprint)

    def _embed(self, items: list[str]) -> Vectors:
        dim = self._model.dim
        out = np.zeros((len(items), dim), dtype=np.float32)
        for row, text in zip(out, items, strict=True):
            for word in _WORD.findall(text.lower()) or [""]:
                row += _word_vector(word, dim)
        return _normalize_rows(out)


# -------------------------------------------------------------------- registry

#: Registry name -> factory (no arguments). ``load_embedder`` is the way in.
