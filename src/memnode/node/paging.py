"""Paging over a node's memories: ephemeral, then own persisted, then (mesh) replicas.

Keyset paging by memory id in each phase: a page token is the phase and the last id
given, so a memory forgotten meanwhile shifts nothing and every memory held from the
first page to the last is listed exactly once. Persisted ids come from the log's listing
(:mod:`memnode.storage.listing`), written with each change when it is durable; the
records from the index tail, else Chroma. A write made while paging may be listed or
not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from memnode.node import validation
from memnode.node.domain import LocalRecord, MetaValue, ReplicaRecord
from memnode.node.ephemeral import EphemeralStore
from memnode.storage.tail import match_local, match_replica
from memnode.storage.visible import VisibleStore

#: The phases in order: ephemeral, own persisted, replicas.
_PHASES = ("e", "l", "r")
#: Ids of the log's listing after the given one: (replicas?, last id, limit) -> ids.
ListedIds = Callable[[bool, str, int], list[str]]


@dataclass(frozen=True)
class Page:
    local: list[LocalRecord]
    replicas: list[ReplicaRecord]
    next_token: str


def page(ephemeral: EphemeralStore, visible: VisibleStore, listed: ListedIds,
         page_size: int, token: str, *, mesh: bool = False,
         where: tuple[Mapping[str, MetaValue], Mapping[str, Sequence[MetaValue]]] = ({}, {}),
         ) -> Page:
    """``where``: only memories whose metadata equals it (own: clear values; replicas:
    any of the values given per key), matched as recall does; a page may then hold
    fewer than ``page_size`` memories."""
    size = min(page_size or 100, 1000)
    own_match, replica_match = match_local(where[0]), match_replica(where[1])
    phases = _PHASES if mesh else _PHASES[:2]
    phase, last = _parse_token(token, phases)
    local: list[LocalRecord] = []
    replicas: list[ReplicaRecord] = []
    while phase and len(local) + len(replicas) < size:
        want = size - len(local) - len(replicas)
        if phase == "e":
            got = sorted((r for r in ephemeral.records() if r.id > last), key=lambda r: r.id)
            ids = [r.id for r in got[:want]]
            local += [r for r in got[:want] if own_match(r)]
        else:
            ids = listed(phase == "r", last, want)
            if phase == "l":
                held = visible.get_local_many(ids)
                local += [held[i] for i in ids if i in held and own_match(held[i])]
            else:
                got_replicas = visible.get_replica_many(ids)
                replicas += [got_replicas[i] for i in ids
                             if i in got_replicas and replica_match(got_replicas[i])]
        if len(ids) < want:  # exhausted: on to the next phase
            following = phases.index(phase) + 1 if phase in phases else len(phases)
            phase = phases[following] if following < len(phases) else ""
            last = ""
        else:
            last = ids[-1]
    return Page(local, replicas, f"{phase}:{last}" if phase else "")


def _parse_token(token: str, phases: tuple[str, ...]) -> tuple[str, str]:
    """A token of this listing's scope: replica pages are refused to a local listing
    (whose scope is what authorisation checked), and a token from before keyset paging
    (phase and offset) is refused, not read as an id."""
    if not token:
        return "e", ""
    phase, colon, last = token.partition(":")
    if phase in phases and colon:
        try:
            if last:
                validation.memory_id(last)
            return phase, last
        except validation.InvalidArgument:
            pass
    raise validation.InvalidArgument(f"bad page token {token!r} for this listing "
                                     "(start again without one)")
