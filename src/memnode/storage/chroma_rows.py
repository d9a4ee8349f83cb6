"""Chroma's rows as the node's records and hits (:mod:`memnode.storage.chroma` makes
the calls, this reads what they return).

Own memories: with a sealer (encryption at rest) text and user metadata come out of
``_sealed`` under the memory's data key, and a row whose key is gone (forgotten since)
is left out; a store kept in clear holds them in ``documents`` and the metadata.
Replicas: shared metadata as stored (TEAM values are keyed hashes). Reserved keys
(:data:`RESERVED`) are the store's own: privacy, timestamps, origin, the sealed blob.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from federation.events import origin_of
from memnode.node.domain import Hit, LocalRecord, Metadata, Privacy, ReplicaRecord, cosine_score

if TYPE_CHECKING:
    from memnode.storage.atrest import Sealer

__all__ = ["RESERVED", "local_hits", "local_records", "replica_hits", "replica_records",
           "split_meta"]

RESERVED = ("_privacy", "_created", "_updated", "_origin", "_sealed")


def split_meta(raw: Mapping[str, Any] | None) -> tuple[Metadata, dict[str, Any]]:
    user: Metadata = {}
    reserved: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        (reserved if key in RESERVED else user)[key] = value
    return user, reserved


def _open(sealer: Sealer | None, ids: Sequence[str], docs: Sequence[str | None],
          metas: Sequence[Mapping[str, Any] | None]) -> list[tuple[str, Metadata] | None]:
    """Each row's (text, user metadata); sealed: None for one whose key is gone."""
    if sealer is None:
        return [(doc or "", split_meta(meta)[0]) for doc, meta in zip(docs, metas,
                                                                        strict=True)]
    keys = sealer.keys(ids)
    return [sealer.open(keys[mid], mid, str(meta["_sealed"]))
            if mid in keys and meta and "_sealed" in meta else None
            for mid, meta in zip(ids, metas, strict=True)]


def local_hits(sealer: Sealer | None, res: Any) -> list[Hit]:
    """A query of own memories (``documents``, ``metadatas``, ``distances``) as hits."""
    hits = []
    opened = _open(sealer, res["ids"][0], res["documents"][0], res["metadatas"][0])
    for mid, clear, meta, dist in zip(
        res["ids"][0], opened, res["metadatas"][0], res["distances"][0], strict=True,
    ):
        if clear is None:
            continue
        reserved = split_meta(meta)[1]
        hits.append(
            Hit(
                id=mid,
                origin=origin_of(mid),
                score=cosine_score(1.0 - float(dist)),
                privacy=Privacy(reserved.get("_privacy", Privacy.PRIVATE)),
                local=True,
                created_at_ms=int(reserved.get("_created", 0)),
                text=clear[0],
                metadata=clear[1],
            )
        )
    return hits


def replica_hits(res: Any) -> list[Hit]:
    """A query of replicas (``metadatas``, ``distances``) as hits."""
    hits = []
    for mid, meta, dist in zip(
        res["ids"][0], res["metadatas"][0], res["distances"][0], strict=True
    ):
        user, reserved = split_meta(meta)
        hits.append(
            Hit(
                id=mid,
                origin=str(reserved.get("_origin", origin_of(mid))),
                score=cosine_score(1.0 - float(dist)),
                privacy=Privacy(reserved.get("_privacy", Privacy.TEAM)),
                local=False,
                created_at_ms=int(reserved.get("_created", 0)),
                metadata=user,
            )
        )
    return hits


def local_records(sealer: Sealer | None, got: Mapping[str, Any]) -> list[LocalRecord]:
    """A ``get`` of own memories (with embeddings) as records."""
    out = []
    embeddings = got["embeddings"]
    opened = _open(sealer, got["ids"], got["documents"], got["metadatas"])
    for i, mid in enumerate(got["ids"]):
        clear = opened[i]
        if clear is None:
            continue
        reserved = split_meta(got["metadatas"][i])[1]
        out.append(
            LocalRecord(
                id=mid,
                text=clear[0],
                embedding=np.asarray(embeddings[i], dtype=np.float32),
                metadata=clear[1],
                privacy=Privacy(reserved.get("_privacy", Privacy.PRIVATE)),
                created_at_ms=int(reserved.get("_created", 0)),
                updated_at_ms=int(reserved.get("_updated", 0)),
            )
        )
    return out


def replica_records(got: Mapping[str, Any]) -> list[ReplicaRecord]:
    """A ``get`` of replicas (with embeddings) as records."""
    out = []
    embeddings = got["embeddings"]
    for i, mid in enumerate(got["ids"]):
        user, reserved = split_meta(got["metadatas"][i])
        out.append(
            ReplicaRecord(
                id=mid,
                origin=str(reserved.get("_origin", "")),
                embedding=np.asarray(embeddings[i], dtype=np.float32),
                metadata=user,
                privacy=Privacy(reserved.get("_privacy", Privacy.TEAM)),
                created_at_ms=int(reserved.get("_created", 0)),
                updated_at_ms=int(reserved.get("_updated", 0)),
            )
        )
    return out
