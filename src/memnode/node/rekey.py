"""Re-publishing this node's TEAM metadata when the current metadata key changes.

Replicas of a TEAM memory hold its metadata hashed under the key that was current
when its origin last wrote it. When the current key changes
(:mod:`federation.io.keyring`: ``memnode federation key use``), the origin signs an
UPDATE event for each of its own live TEAM memories with metadata (same text,
embedding and metadata: only the hashes change), in batches of :data:`BATCH` per
commit, so every replica ends up hashed under the new key and the old key can be
retired.

The log's meta ``metadata_key_published`` holds the fingerprint of the key every own
event is hashed under; a pass starts when it differs from the current key (looked at
every second, and at start: a node that was down during the switch catches up), and
sets it when done. A pass interrupted by a crash or by another key change starts over
(some memories are then published twice: harmless). A data directory from before
rotation existed counts as published under the key in force when it first starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from federation.events import EventKind, SharedPrivacy
from memnode.errors import NotFound
from memnode.node.commits import Overlay, Staged
from memnode.node.domain import Privacy

if TYPE_CHECKING:
    from memnode.node.node import Node

log = logging.getLogger("memnode.node.rekey")

META = "metadata_key_published"
BATCH = 256
_SCAN = 1000


class Republisher:
    """The background thread that keeps own TEAM metadata hashed under the current key."""

    def __init__(self, node: Node, *, interval: float = 1.0) -> None:
        self.node = node
        self.interval = interval
        self.republished = 0  # UPDATE events signed to re-publish, since start
        self.pending = 0  # memories left in the pass under way (0: none)
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memnode-rekey", daemon=True)
        if node.log.meta(META) is None:
            node.log.set_meta(META, node.metakey.fingerprint())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        last = ""  # the last failure logged: a lasting one is logged once
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # a full disk, a restore: try again later
                self.failures += 1
                self.pending = 0
                (log.warning if str(exc) != last else log.debug)(
                    "re-publishing TEAM metadata under the new key failed: %s; retrying "
                    "every %.0f s", exc, self.interval)
                last = str(exc)
            self._stop.wait(self.interval)

    def step(self) -> int:
        """One pass if the current key is not the one published; memories re-published."""
        node = self.node
        keys = node.metakey.keys()
        fingerprint = keys.fingerprint()
        if node.log.meta(META) == fingerprint or node.restore.active:
            return 0
        todo = self._candidates()
        log.info("metadata key %d (fingerprint %s) is current: re-publishing the TEAM "
                    "metadata of %d own memories", keys.current_id, fingerprint, len(todo))
        done = 0
        for start in range(0, len(todo), BATCH):
            self.pending = len(todo) - start
            if self._stop.is_set() or node.metakey.fingerprint() != fingerprint:
                self.pending = 0
                return done  # stopped, or the key changed again: the next pass starts over
            done += self._publish(todo[start:start + BATCH])
        node.log.set_meta(META, fingerprint)
        self.pending = 0
        log.info("TEAM metadata of %d own memories re-published under key %d", done,
                    keys.current_id)
        return done

    def _candidates(self) -> list[str]:
        """Own memories whose newest event so far is a TEAM PUT or UPDATE with metadata."""
        node = self.node
        with node._write_lock:  # a group signed under the old key is committed by now
            end = node.log.watermark(node.node_id)
        wanted: dict[str, bool] = {}  # local id -> its newest event so far qualifies
        after = 0
        while after < end:
            run = node.log.run_after(node.node_id, after, _SCAN, 1 << 30)
            for e in run.events:
                if e.seq <= end:
                    wanted[e.local_id] = (e.kind != EventKind.FORGET and bool(e.metadata)
                                          and e.privacy == SharedPrivacy.TEAM)
            if run.through_seq <= after:
                break
            after = run.through_seq
        return [f"{node.node_id}/{local_id}" for local_id, ok in wanted.items() if ok]

    def _publish(self, ids: list[str]) -> int:
        node = self.node

        def write(overlay: Overlay) -> tuple[Staged, int]:
            # under the write lock: read here, or a user's update meanwhile would be undone
            held = node.visible.get_local_many([i for i in ids if i not in overlay])
            records = []
            for memory_id in ids:
                if memory_id in overlay:  # changed by an earlier write of this group
                    try:
                        record = node._own_record(memory_id, overlay)
                    except NotFound:
                        continue
                elif memory_id in held:
                    record = held[memory_id]
                else:
                    continue  # forgotten meanwhile
                if record.privacy == Privacy.TEAM and record.metadata:
                    records.append(record)
            events = [node._event(EventKind.UPDATE, r) for r in records]
            return Staged(puts=records, events=events,
                          changed={r.id for r in records}), len(records)

        count: int = node._commits.submit(write)
        self.republished += count
        return count


class KeyCollector(Collector):
    """The metadata keys and their re-publishing, for /metrics (see docs/OPERATIONS.md)."""

    def __init__(self, node: Node, republisher: Republisher) -> None:
        self._node = node
        self._republisher = republisher

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        key_file = self._node.metakey
        keys = key_file.keys()
        current = GaugeMetricFamily("memnode_metadata_key_current", "Id of the metadata key "
                                    "that hashes new TEAM metadata", labels=["fingerprint"])
        current.add_metric([keys.fingerprint()], keys.current_id)
        yield current
        yield GaugeMetricFamily("memnode_metadata_keys_held", "Metadata keys held (all "
                                "matched by --where)", value=len(keys.ids))
        reloads = CounterMetricFamily("memnode_metadata_key_reloads", "New versions of the "
                                      "metadata key file adopted or refused", labels=["result"])
        reloads.add_metric(["ok"], key_file.reloads)
        reloads.add_metric(["rejected"], key_file.rejected)
        yield reloads
        r = self._republisher
        yield CounterMetricFamily("memnode_metadata_republished", "Own TEAM memories "
                                  "re-published under a new current key", value=r.republished)
        published = self._node.log.meta(META) == keys.fingerprint()
        yield GaugeMetricFamily("memnode_metadata_republish_pending", "Own memories not yet "
                                "re-published under the current key (-1: a pass is due)",
                                value=0 if published else (r.pending or -1))
