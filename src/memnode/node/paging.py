"""Paging over a node's memories: ephemeral, then own persisted, then (mesh) replicas."""

from __future__ import annotations

from dataclasses import dataclass

from memnode.node import validation
from memnode.node.domain import LocalRecord, ReplicaRecord
from memnode.node.ephemeral import EphemeralStore
from memnode.storage.chroma import ChromaStore


@dataclass(frozen=True)
class Page:
    local: list[LocalRecord]
    replicas: list[ReplicaRecord]
    next_token: str


def page(ephemeral: EphemeralStore, store: ChromaStore, page_size: int, token: str, *,
         mesh: bool = False) -> Page:
    size = min(page_size or 100, 1000)
    phase, offset = _parse_token(token)
    phases = ["e", "l", "r"] if mesh else ["e", "l"]
    local: list[LocalRecord] = []
    replicas: list[ReplicaRecord] = []
    while phase and len(local) + len(replicas) < size:
        want = size - len(local) - len(replicas)
        got: list[LocalRecord] | list[ReplicaRecord]
        if phase == "e":
            got = ephemeral.records()[offset : offset + want]
            local += got
        elif phase == "l":
            got = store.list_local(offset, want)
            local += got
        else:
            got = store.list_replicas(offset, want)
            replicas += got
        offset += len(got)
        if len(got) < want:  # this phase is exhausted: on to the next
            following = phases.index(phase) + 1
            phase = phases[following] if following < len(phases) else ""
            offset = 0
    return Page(local, replicas, f"{phase}:{offset}" if phase else "")


def _parse_token(token: str) -> tuple[str, int]:
    if not token:
        return "e", 0
    phase, _, offset = token.partition(":")
    if phase not in ("e", "l", "r") or not offset.isdigit():
        raise validation.InvalidArgument(f"bad page token {token!r}")
    return phase, int(offset)
