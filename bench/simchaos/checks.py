"""The real drill's checks (bench/chaos/checks.py: same names, same meaning), read
straight from every simulated node's core and durable store after the last heal.

- ``eventually_vectors_agree``: within ``agree_rounds`` rounds of the last heal, every
  node is up, none is still restoring, every version vector is the same, and it covers
  every origin's last acknowledged seq (except operations lost with a wiped disk); the
  rounds and simulated seconds it took are the time to agree.
- ``finally_no_write_lost``: every acknowledged, not forgotten write is live on every
  node (core and store) as its last acknowledged version.
- ``finally_no_duplicates``: every node holds exactly the ledger's live memories, none
  the ledger does not know, and its store holds what its core holds.
- ``finally_no_resurrection``: every acknowledged forget is gone from every node.
- ``finally_updates_agree``: each memory is the same event (seq, metadata) everywhere,
  and its metadata ``v`` is its last acknowledged update's.
- ``finally_no_seq_reused``: no two different events under one (origin, seq) were ever
  applied by any node, nor held by any origin's log at the end (a restored origin
  that wrote before learning its own seq would show here).

Restores (``windows``: node -> (backup tick, wipe tick)), as in the real drill: an
operation acknowledged on a node between its backup and its wipe may be lost with the
disk if it had not replicated; it must then be lost everywhere alike (counted), else
everywhere as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.chaos.checks import Check, Windows, lost_with_disk
from federation.events import Event, EventKind

if TYPE_CHECKING:
    from bench.simchaos.drill import SimDrill


def _required(drill: SimDrill, windows: Windows) -> dict[str, int]:
    """origin id -> the seq its vector entry must reach: its last acknowledged
    operation's, ignoring those that may have been lost with a wiped disk."""
    need: dict[str, int] = {}
    for i, ops in drill.ledger.top_seq.items():
        seqs = [seq for t, seq in ops if not lost_with_disk(windows, i, t)]
        if seqs:
            need[drill.sim.nodes[i].node_id] = max(seqs)
    return need


def eventually_vectors_agree(drill: SimDrill, windows: Windows, agree_rounds: int) -> Check:
    sim = drill.sim
    need = _required(drill, windows)
    start, interval = sim.now, sim.config.anti_entropy_interval_ticks
    why = ""
    for _ in range(agree_rounds * interval + 1):
        why = _disagreement(drill, need)
        if not why:
            ticks = sim.now - start
            vv = sim.nodes[0].core.version_vector()
            return Check("eventually_vectors_agree", True, {
                "ticks": ticks, "rounds": round(ticks / interval, 2),
                "simulated_seconds": round(ticks * sim.config.tick_ms / 1000, 2),
                "origins": len(vv), "events": sum(vv.values())})
        sim.step()
    ticks = sim.now - start
    return Check("eventually_vectors_agree", False,
                 {"ticks": ticks, "rounds": round(ticks / interval, 2)}, [why])


def _disagreement(drill: SimDrill, need: dict[str, int]) -> str:
    nodes = drill.sim.nodes
    first = nodes[0].core.version_vector()
    for origin, seq in need.items():
        if first.get(origin, 0) < seq:
            return f"node 0 has {origin[:12]} at {first.get(origin, 0)}, acknowledged {seq}"
    for node in nodes:
        if not node.up or node.core.restoring:
            return f"node {node.index} {'restoring' if node.up else 'down'}"
        if node.core.version_vector() != first:
            return f"node {node.index}'s vector differs from node 0's"
    return ""


def _short(mid: str) -> str:
    origin, _, local = mid.partition("/")
    return f"{origin[:8]}../{local}"


def _held(drill: SimDrill) -> list[dict[str, Event]]:
    return [{e.memory_id: e for e in node.core.live_entries()} for node in drill.sim.nodes]


def _stored(drill: SimDrill, i: int, mid: str) -> Event | None:
    store = drill.sim.nodes[i].store
    return store.replicas.get(mid) or store.own.get(mid)


def _alive_in_store(drill: SimDrill, i: int, mid: str) -> bool:
    s = _stored(drill, i, mid)
    return s is not None and s.kind is not EventKind.FORGET


def finally_checks(drill: SimDrill, windows: Windows) -> list[Check]:
    held = _held(drill)
    return [finally_no_write_lost(drill, windows, held),
            finally_no_duplicates(drill, held),
            finally_no_resurrection(drill, windows, held),
            finally_updates_agree(drill, windows, held),
            finally_no_seq_reused(drill)]


def finally_no_write_lost(drill: SimDrill, windows: Windows,
                          held: list[dict[str, Event]]) -> Check:
    missing: list[str] = []
    checked = with_disk = undone = 0
    for w in drill.ledger.writes.values():
        if w.forgotten:
            continue
        checked += 1
        if lost_with_disk(windows, w.origin, w.t) and all(w.id not in h for h in held):
            with_disk += 1
            continue
        # an update acknowledged in a restore's window may be undone with the disk
        ok_seqs = set(w.seqs) if lost_with_disk(windows, w.origin, w.t_change) else {w.seq}
        seqs = set()
        for i, h in enumerate(held):
            e, s = h.get(w.id), _stored(drill, i, w.id)
            if e is None or e.seq not in ok_seqs or s is None or s.seq != e.seq:
                missing.append(f"{_short(w.id)} (node {w.origin}, seq {w.seq}) on node {i}: "
                               f"core {e.seq if e else None}, store {s.seq if s else None}")
            else:
                seqs.add(e.seq)
        if seqs and seqs != {w.seq}:
            undone += 1
    return Check("finally_no_write_lost", not missing,
                 {"writes_checked": checked, "lost": len(missing),
                  "lost_with_disk": with_disk, "updates_undone_with_disk": undone},
                 missing)


def finally_no_duplicates(drill: SimDrill, held: list[dict[str, Event]]) -> Check:
    led = drill.ledger
    live = {mid for mid, w in led.writes.items() if not w.forgotten}
    dups: list[str] = []
    for i, h in enumerate(held):
        unknown = [m for m in h if m not in led.writes]
        dups += [f"{m[:20]} on node {i}: never acknowledged" for m in unknown[:5]]
        node = drill.sim.nodes[i]
        foreign = {m for m in h if not m.startswith(node.node_id + "/")}
        if set(node.store.replicas) != foreign:
            extra = set(node.store.replicas) ^ foreign
            dups.append(f"node {i}: store and core differ on {len(extra)} replicas")
        count = node.core.replica.live_count()
        if count != len(h):
            dups.append(f"node {i}: live_count {count}, {len(h)} live entries")
    return Check("finally_no_duplicates", not dups,
                 {"duplicated": len(dups), "live_memories": len(live)}, dups)


def finally_no_resurrection(drill: SimDrill, windows: Windows,
                            held: list[dict[str, Event]]) -> Check:
    forgotten = [w for w in drill.ledger.writes.values() if w.forgotten]
    back: list[str] = []
    undone = 0
    for w in forgotten:
        where = [i for i, h in enumerate(held) if w.id in h or _alive_in_store(drill, i, w.id)]
        if not where:
            continue
        if lost_with_disk(windows, w.origin, w.t_change) and len(where) == len(held):
            undone += 1
        else:
            back += [f"{_short(w.id)} (forgotten at seq {w.forget_seq}) on node {i}"
                     for i in where[:5]]
    return Check("finally_no_resurrection", not back,
                 {"forgets_checked": len(forgotten), "resurrected": len(back),
                  "forgets_undone_with_disk": undone}, back)


def finally_updates_agree(drill: SimDrill, windows: Windows,
                          held: list[dict[str, Event]]) -> Check:
    bad: list[str] = []
    checked = 0
    for w in drill.ledger.writes.values():
        own = held[w.origin].get(w.id)
        if w.forgotten or own is None:
            continue  # finally_no_write_lost reports it
        checked += 1
        v = own.metadata.get("v")
        floor = 0 if lost_with_disk(windows, w.origin, w.t_change) else w.version
        if not isinstance(v, int) or not floor <= v <= w.version:
            bad.append(f"{_short(w.id)} on its origin: v={v!r}, acknowledged {w.version}")
        for i, h in enumerate(held):
            e = h.get(w.id)
            if e is not None and (e.seq, e.metadata) != (own.seq, own.metadata):
                bad.append(f"{_short(w.id)} on node {i}: seq {e.seq} {e.metadata}, origin's "
                           f"seq {own.seq} {own.metadata}")
    return Check("finally_updates_agree", not bad,
                 {"memories_checked": checked, "disagreeing": len(bad)}, bad)


def finally_no_seq_reused(drill: SimDrill) -> Check:
    reg = drill.registry
    for node in drill.sim.nodes:  # the origins' own logs, at the end
        for e in node.store.own.values():
            reg.event(e)
        for e in node.store.tombstones.values():
            reg.event(e)
    return Check("finally_no_seq_reused", not reg.reused,
                 {"events_seen": len(reg.seen), "restores": len(drill.restores),
                  "reused": len(reg.reused)}, reg.reused)
