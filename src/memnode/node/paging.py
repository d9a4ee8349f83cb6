"""Paging over a node's memories: ephemeral, then own persisted, then (mesh) replicas.

Persisted memories are Chroma's rows (those the index tail shadows left out), then the
tail's records. A listing first lets the indexer move the tail into Chroma (``settle``,
at most SETTLE_SECONDS), so every memory written before it started is listed once; a
write made while paging may be listed or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from memnode.node import validation
from memnode.node.domain import LocalRecord, MetaValue, ReplicaRecord
from memnode.node.ephemeral import EphemeralStore
from memnode.storage.tail import match_local, match_replica
from memnode.storage.visible import VisibleStore

#: How long a new listing waits for the indexer to move the tail into Chroma.
SETTLE_SECONDS = 5.0
#: The phases in order: ephemeral, own in Chroma, own in the tail, replicas likewise.
_PHASES = ("e", "l", "m", "r", "s")


@dataclass(frozen=True)
class Page:
    local: list[LocalRecord]
    replicas: list[ReplicaRecord]
    next_token: str


def page(ephemeral: EphemeralStore, visible: VisibleStore, page_size: int, token: str, *,
         mesh: bool = False, settle: Callable[[], object] = lambda: None,
         where: tuple[Mapping[str, MetaValue], Mapping[str, Sequence[MetaValue]]] = ({}, {}),
         ) -> Page:
    """``where``: only memories whose metadata equals it (own: clear values; replicas:
    any of the values given per key), matched as recall does; a page may then hold
    fewer than ``page_size`` memories."""
    size = min(page_size or 100, 1000)
    own_match, replica_match = match_local(where[0]), match_replica(where[1])
    phase, offset = _parse_token(token)
    if not token:
        settle()
    phases = _PHASES if mesh else _PHASES[:3]
    local: list[LocalRecord] = []
    replicas: list[ReplicaRecord] = []
    while phase and len(local) + len(replicas) < size:
        want = size - len(local) - len(replicas)
        if phase == "e":
            got = ephemeral.records()[offset : offset + want]
            local += [r for r in got if own_match(r)]
            offset += len(got)
            exhausted = len(got) < want
        else:
            rows, offset, exhausted = visible.list_page(phase, offset, want)
            if phase in ("l", "m"):
                local += [r for r in rows if own_match(r)]  # type: ignore[misc]
            else:
                replicas += [r for r in rows if replica_match(r)]  # type: ignore[misc]
        if exhausted:  # on to the next phase
            following = phases.index(phase) + 1 if phase in phases else len(phases)
            phase = phases[following] if following < len(phases) else ""
            offset = 0
    return Page(local, replicas, f"{phase}:{offset}" if phase else "")


def _parse_token(token: str) -> tuple[str, int]:
    if not token:
        return "e", 0
    phase, _, offset = token.partition(":")
    if phase not in _PHASES or not offset.isdigit():
        raise validation.InvalidArgument(f"bad page token {token!r}")
    return phase, int(offset)
