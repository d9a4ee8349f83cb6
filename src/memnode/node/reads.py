"""The node's reads: recall, get and list, over the ephemeral store, the visible store
(index tail and Chroma) and, for the mesh scope, the replicas.

Reads run concurrently with each other and with the write path (memnode.node.node): they
take no write lock. A ``where`` filter is checked as metadata is on a write
(:func:`memnode.node.subject.wanted`); own memories match it in clear, replicas by the
value in clear (PUBLIC) or its keyed hash (TEAM).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memnode.errors import NotFound
from memnode.node import paging, subject, validation
from memnode.node.domain import Hit, LocalRecord, Metadata, MetaValue, ReplicaRecord
from memnode.node.paging import Page

if TYPE_CHECKING:
    from memnode.node.node import Node

__all__ = ["Recall", "get", "page", "recall"]


@dataclass(frozen=True)
class Recall:
    hits: list[Hit]
    embed_seconds: float
    search_seconds: float


def recall(node: Node, query: str, k: int, *, mesh: bool,
           where: Mapping[str, object] | None, embedding: bytes) -> Recall:
    """The ``k`` nearest memories to ``query`` (or to ``embedding``, given instead)."""
    cfg = node.config
    k = validation.recall_k(k, cfg.max_recall_k)
    wanted: Metadata = subject.wanted(node, where)
    started = time.perf_counter()
    if embedding:
        vec = validation.embedding(embedding, node.model.dim)
    else:
        validation.decode_text(query.encode(), cfg.max_text_bytes, what="query")
        vec = node.embedder.embed([query])[0]
    embedded = time.perf_counter()
    node.metrics.embed_seconds.observe(embedded - started)
    hits = node.visible.query(vec, k, include_replicas=mesh, where_local=wanted,
                              where_replica=_replica_where(node, wanted))
    extra = node.ephemeral.query(vec, k, wanted)
    if extra:
        hits = sorted(hits + extra, key=lambda h: h.score, reverse=True)[:k]
    return Recall(hits, embedded - started, time.perf_counter() - embedded)


def get(node: Node, memory_id: str) -> LocalRecord | ReplicaRecord:
    validation.memory_id(memory_id)
    found = (node.ephemeral.get(memory_id) or node.visible.get_local(memory_id)
             or node.visible.get_replica(memory_id))
    if found is None:
        raise NotFound(f"no memory {memory_id}")
    return found


def page(node: Node, page_size: int, token: str, *, mesh: bool,
         where: Mapping[str, object] | None) -> Page:
    wanted = subject.wanted(node, where)
    return paging.page(node.ephemeral, node.visible, node.log.listing_after, page_size,
                       token, mesh=mesh, where=(wanted, _replica_where(node, wanted)))


def _replica_where(node: Node, wanted: Metadata) -> dict[str, list[MetaValue]]:
    """What a replica may hold for each wanted value: clear or keyed hash."""
    return {key: node.metakey.match_values(value) for key, value in wanted.items()}
