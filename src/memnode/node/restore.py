"""A node restored from a backup: it learns its own seq from its peers before writing.

``memnode restore`` marks the log (meta ``restore`` = ``learning``). While it is marked,
the node refuses writes (UNAVAILABLE, "restoring: learning own seq from peers"), tells
its sidecar it is restoring (``hello``), and the replication core takes back the node's
own signed events above the backup's head from its peers (federation.replica). They
come back as own memories; the text of those written after the backup is lost (text
never left the node): they are stored with an empty text, listed in the log
(``lost_texts``), counted (``memnode_restore_lost_texts_total``), logged, and shown by
``memnode status``. The core ends the restore with an OwnSeqLearned effect once a
peer's digest showed how far our origin went and the log holds that far; the node then
writes on from its log's head + 1, never reusing a seq a peer holds.

``--restore-without-peers`` ends the restore at start, for a node that has no peers
(or none that will come back): it then continues from the backup's own head.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from federation.effects import DeleteReplica, Effect, UpsertReplica
from federation.events import Event, SharedPrivacy
from memnode.errors import Unavailable
from memnode.node.domain import LocalRecord, Privacy
from memnode.node.metrics import NodeMetrics
from memnode.storage.eventlog import EventLog

log = logging.getLogger("memnode.restore")

META = "restore"
LEARNING = "learning"


class RestoreState:
    def __init__(self, event_log: EventLog, metrics: NodeMetrics, *,
                 without_peers: bool) -> None:
        self._log = event_log
        self._metrics = metrics
        self.active = event_log.meta(META) == LEARNING
        if self.active and without_peers:
            log.warning("restored node started with --restore-without-peers: writing on "
                        "from own seq %d without asking peers; a seq a peer already "
                        "holds would be reused (its events dropped as duplicates)",
                        event_log.watermark(event_log.meta("node_id") or ""))
            event_log.set_meta(META, "done: --restore-without-peers")
            self.active = False
        elif self.active:
            log.warning("restored from a backup: refusing writes until a peer tells this "
                        "node how far its own origin went")

    def refusal_message(self) -> str | None:
        if not self.active:
            return None
        return ("restoring: learning own seq from peers (writes resume once a peer has "
                "answered; a node without peers starts with --restore-without-peers)")

    def refuse(self) -> None:
        message = self.refusal_message()
        if message is not None:
            raise Unavailable(message)

    def finished(self) -> None:
        self.active = False
        log.warning("restore done: own seq %s; %d own memories came back without text",
                    self._log.meta(META), self._log.count_lost_texts())

    def lost_texts(self) -> int:
        return self._log.count_lost_texts()

    def own_records(self, effects: Sequence[Effect], own_origin: str,
                    local: Callable[[str], LocalRecord | None]
                    ) -> tuple[dict[str, LocalRecord], list[tuple[str, int]]]:
        """The own memories the effects bring back, as records to store, and which of
        them have lost their text (memory id, seq). ``local``: the record held now."""
        records: dict[str, LocalRecord] = {}
        lost: list[tuple[str, int]] = []
        for effect in effects:
            if isinstance(effect, DeleteReplica) and effect.memory_id.startswith(
                    own_origin + "/"):
                records.pop(effect.memory_id, None)
                lost = [(m, s) for m, s in lost if m != effect.memory_id]
            if not isinstance(effect, UpsertReplica) or effect.event.origin != own_origin:
                continue
            event = effect.event
            held = records.get(event.memory_id) or local(event.memory_id)
            record = _taken_back(event, held)
            records[event.memory_id] = record
            if held is None:
                lost.append((event.memory_id, event.seq))
        for memory_id, seq in lost:
            self._metrics.restore_lost_texts.inc()
            log.warning("own memory %s (seq %d) came back from a peer without its text "
                        "(written after the backup): stored with an empty text", memory_id,
                        seq)
        return records, lost


def _taken_back(event: Event, held: LocalRecord | None) -> LocalRecord:
    """An own event taken back: embedding and shared metadata from the event; text,
    clear TEAM metadata and creation time from the record held, if any (TEAM metadata
    travels as keyed hashes, which are no use as clear values)."""
    public = event.privacy is SharedPrivacy.PUBLIC
    metadata: Mapping[str, object] = (dict(event.metadata) if public
                                      else dict(held.metadata) if held else {})
    return LocalRecord(
        id=event.memory_id,
        text=held.text if held else "",
        embedding=np.frombuffer(event.embedding, dtype="<f4").astype(np.float32),
        metadata=dict(metadata),  # type: ignore[arg-type]
        privacy=Privacy(int(event.privacy)),
        created_at_ms=held.created_at_ms if held else event.timestamp_ms,
        updated_at_ms=event.timestamp_ms,
    )


def touches_own(effects: Sequence[Effect], node_id: str) -> bool:
    for effect in effects:
        if isinstance(effect, UpsertReplica) and effect.event.origin == node_id:
            return True
        if isinstance(effect, DeleteReplica) and effect.memory_id.startswith(node_id + "/"):
            return True
    return False

