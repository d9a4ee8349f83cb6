"""The simulator's "disk": a node's durable state, built only from its effects."""

from __future__ import annotations

from collections.abc import Iterable

from federation.effects import (
    DeleteReplica,
    DropTombstone,
    Effect,
    KeepErasures,
    OriginMarks,
    OwnSeqLearned,
    UpsertReplica,
)
from federation.events import Event
from federation.replica import RestartState


class SimStore:
    """A node's durable state, built only from the effects it was asked to persist
    (plus its own events, which the node logs before calling local_event). A restored
    node's own events taken back from peers go to its own log, as the node's do."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.replicas: dict[str, Event] = {}
        self.tombstones: dict[str, Event] = {}
        self.own: dict[str, Event] = {}  # own compacted log: memory id -> newest event
        self.own_seq = 0
        self.marks: dict[str, OriginMarks] = {}
        self.erasure_record = b""
        self.restoring = False
        """Restored from a backup and not yet told our own seq (OwnSeqLearned): a restart
        must come back restoring, as the node's log stays marked until then."""

    def own_event(self, event: Event) -> None:
        self.own[event.memory_id] = event
        self.own_seq = event.seq

    def apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, UpsertReplica):
                event = effect.event
                if event.origin == self.node_id:  # taken back by a restore
                    self.own[event.memory_id] = event
                else:
                    self.replicas[event.memory_id] = event
            elif isinstance(effect, DeleteReplica):
                self.replicas.pop(effect.memory_id, None)
                self.own.pop(effect.memory_id, None)
                if effect.forget is not None:
                    self.tombstones[effect.memory_id] = effect.forget
            elif isinstance(effect, DropTombstone):
                self.tombstones.pop(effect.memory_id, None)
                own = self.own.get(effect.memory_id)
                if own is not None and own.seq == effect.seq:
                    del self.own[effect.memory_id]
            elif isinstance(effect, OwnSeqLearned):
                self.own_seq = max(self.own_seq, effect.watermark)
                self.restoring = False
            elif isinstance(effect, KeepErasures):
                self.erasure_record = effect.record
            else:
                self.marks[effect.origin] = effect

    def snapshot(self) -> SimStore:
        """A copy of this store as it is now: a backup (events are immutable)."""
        copy = SimStore(self.node_id)
        copy.replicas, copy.tombstones = dict(self.replicas), dict(self.tombstones)
        copy.own, copy.own_seq, copy.marks = dict(self.own), self.own_seq, dict(self.marks)
        copy.restoring, copy.erasure_record = self.restoring, self.erasure_record
        return copy

    def restart_state(self) -> RestartState:
        events = [*self.replicas.values(), *self.tombstones.values(), *self.own.values()]
        own = self.marks.get(self.node_id)
        marks = [m for o, m in self.marks.items() if o != self.node_id]
        marks.append(OriginMarks(self.node_id, self.own_seq, own.gc_floor if own else 0, None))
        return RestartState(events, marks, erasure_record=self.erasure_record)
