"""Membership: who the peers are and whether they are alive, by gossiped heartbeats.

Every node raises its own heartbeat every tick and carries it in its digests, with
up to ``max_digest_members`` third-party heartbeats (round-robin over its ALIVE
members). A member is *heard of* when a digest carries a higher (incarnation,
heartbeat) for it, or when it sends us anything directly.

States and timers (ticks, FederationConfig)::

    ALIVE --(not heard of for suspect_after)--> SUSPECT --(not heard of for dead_after)--> DEAD
      ^                                                                                   |
      +---------- heard of again (higher heartbeat or incarnation, or direct contact) ----+
    DEAD --(dead for reap_after)--> reaped (forgotten; a tombstone of its last heartbeat is
                                    kept for reap_after more ticks so stale gossip of it
                                    does not bring it back)

- ALIVE and SUSPECT members are "live": gossip, rumors and anti-entropy go to them.
- DEAD members get nothing but one retry digest every ``dead_retry_ticks``.
- A (re)join - a new member, a higher incarnation (its sidecar restarted), or news of
  a DEAD member - is reported so the engine can start an exchange at once when the
  evidence is direct (see FederationCore). News of a SUSPECT member just makes it
  ALIVE again (it was only slow to be heard of).

Timers are bucketed by due tick and re-checked lazily, so a tick costs O(members
whose timer is due), not O(members).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from federation.config import FederationConfig
from federation.messages import MemberHeartbeat
from federation.versions import VersionVector


class MemberState(enum.Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


class Member:
    __slots__ = (
        "node_id",
        "address",
        "incarnation",
        "heartbeat",
        "state",
        "last_heard",
        "state_since",
        "next_retry",
        "due",
        "version_vector",
        "digest_tick",
        "_entry",
    )

    def __init__(self, node_id: str, address: str, incarnation: int, heartbeat: int, now: int):
        self.node_id = node_id
        self.address = address
        self.incarnation = incarnation
        self.heartbeat = heartbeat
        self.state = MemberState.ALIVE
        self.last_heard = now
        self.state_since = now
        self.next_retry = 0
        self.due = 0
        self.version_vector: VersionVector | None = None
        """The member's version vector from its last digest (None: never received)."""
        self.digest_tick = -1
        self._entry: MemberHeartbeat | None = None

    def entry(self) -> MemberHeartbeat:
        """This member as a digest entry (cached until its heartbeat changes)."""
        e = self._entry
        if (
            e is None
            or e.heartbeat != self.heartbeat
            or e.incarnation != self.incarnation
            or e.address != self.address
        ):
            e = self._entry = MemberHeartbeat(
                self.node_id, self.incarnation, self.heartbeat, self.address
            )
        return e


@dataclass
class MembershipChanges:
    """What a tick changed; ``retry`` lists dead members due for a retry digest."""

    suspected: list[str] = field(default_factory=list)
    died: list[str] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)


class Membership:
    def __init__(
        self,
        node_id: str,
        address: str,
        incarnation: int,
        config: FederationConfig,
        rng: random.Random,
    ) -> None:
        self.node_id = node_id
        self.address = address
        self.incarnation = incarnation
        self.heartbeat = 0
        self._config = config
        self._rng = rng
        self._members: dict[str, Member] = {}
        self._live: list[str] = []
        self._live_pos: dict[str, int] = {}
        self._timers: dict[int, list[str]] = {}
        self._reaped: dict[str, tuple[int, int, int]] = {}  # id -> (inc, hb, expires)
        self._cursor = 0

    # queries -----------------------------------------------------------------------
    def get(self, node_id: str) -> Member | None:
        return self._members.get(node_id)

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def live_ids(self) -> list[str]:
        return list(self._live)

    def live_count(self) -> int:
        return len(self._live)

    def counts(self) -> dict[MemberState, int]:
        out = {state: 0 for state in MemberState}
        for m in self._members.values():
            out[m.state] += 1
        return out

    def live_version_vectors(self) -> list[VersionVector]:
        """The last known vector of every live member that has sent us one. Members we
        never heard from directly (proposed by discovery or gossip) do not hold back
        tombstone collection: if they lack a collected tombstone, the GC floor makes
        them reconcile (see federation.replica)."""
        members = self._members
        out = []
        for node_id in self._live:
            vv = members[node_id].version_vector
            if vv is not None:
                out.append(vv)
        return out

    # timers ------------------------------------------------------------------------
    def _schedule(self, m: Member, due: int) -> None:
        m.due = due
        self._timers.setdefault(due, []).append(m.node_id)

    def _add_live(self, node_id: str) -> None:
        if node_id not in self._live_pos:
            self._live_pos[node_id] = len(self._live)
            self._live.append(node_id)

    def _remove_live(self, node_id: str) -> None:
        pos = self._live_pos.pop(node_id, None)
        if pos is None:
            return
        last = self._live.pop()
        if last != node_id:
            self._live[pos] = last
            self._live_pos[last] = pos

    def _set_alive(self, m: Member, now: int) -> None:
        m.state = MemberState.ALIVE
        m.state_since = now
        self._add_live(m.node_id)
        self._schedule(m, m.last_heard + self._config.suspect_after_ticks)

    def tick(self, now: int) -> MembershipChanges:
        """Advance to tick ``now`` (called once per tick, in order)."""
        self.heartbeat += 1
        changes = MembershipChanges()
        due = self._timers.pop(now, None)
        if not due:
            return changes
        c = self._config
        for node_id in due:
            m = self._members.get(node_id)
            if m is None:
                expiry = self._reaped.get(node_id)
                if expiry is not None and expiry[2] <= now:
                    del self._reaped[node_id]
                continue
            if m.due != now:
                continue
            silent = now - m.last_heard
            if m.state is MemberState.ALIVE:
                if silent >= c.suspect_after_ticks:
                    m.state, m.state_since = MemberState.SUSPECT, now
                    changes.suspected.append(node_id)
                    self._schedule(m, m.last_heard + c.dead_after_ticks)
                else:
                    self._schedule(m, m.last_heard + c.suspect_after_ticks)
            elif m.state is MemberState.SUSPECT:
                if silent >= c.dead_after_ticks:
                    m.state, m.state_since = MemberState.DEAD, now
                    self._remove_live(node_id)
                    changes.died.append(node_id)
                    m.next_retry = now + c.dead_retry_ticks
                    self._schedule(m, min(m.next_retry, now + c.reap_after_ticks))
                else:
                    self._schedule(m, m.last_heard + c.dead_after_ticks)
            elif now - m.state_since >= c.reap_after_ticks:
                del self._members[node_id]
                self._reaped[node_id] = (m.incarnation, m.heartbeat, now + c.reap_after_ticks)
                self._timers.setdefault(now + c.reap_after_ticks, []).append(node_id)
                changes.reaped.append(node_id)
            else:
                if now >= m.next_retry:
                    changes.retry.append(node_id)
                    m.next_retry = now + c.dead_retry_ticks
                self._schedule(m, min(m.next_retry, m.state_since + c.reap_after_ticks))
        return changes

    # observations ------------------------------------------------------------------
    def _admit(self, node_id: str, address: str, inc: int, hb: int, now: int) -> Member:
        m = Member(node_id, address, inc, hb, now)
        self._members[node_id] = m
        self._add_live(node_id)
        self._schedule(m, now + self._config.suspect_after_ticks)
        return m

    def discovered(self, node_id: str, address: str, now: int) -> bool:
        """Discovery (after the transport proved the peer's identity) proposes a peer.
        True when it is new or was not alive: the engine starts an exchange."""
        if node_id == self.node_id:
            return False
        m = self._members.get(node_id)
        if m is None:
            self._reaped.pop(node_id, None)
            self._admit(node_id, address, 0, 0, now)
            return True
        if address:
            m.address = address
        # not alive: contact it at once (it stays suspect/dead until it answers)
        return m.state is not MemberState.ALIVE

    def observe_direct(
        self, node_id: str, incarnation: int, heartbeat: int, address: str, now: int
    ) -> bool:
        """A digest from the member itself. True on a join or rejoin (new member, new
        incarnation, or back from DEAD)."""
        if node_id == self.node_id:
            return False
        m = self._members.get(node_id)
        if m is None:
            self._reaped.pop(node_id, None)
            self._admit(node_id, address, incarnation, heartbeat, now)
            return True
        rejoined = incarnation > m.incarnation or m.state is MemberState.DEAD
        if (incarnation, heartbeat) > (m.incarnation, m.heartbeat):
            m.incarnation, m.heartbeat = incarnation, heartbeat
        if address:
            m.address = address
        m.last_heard = now
        if m.state is not MemberState.ALIVE:
            self._set_alive(m, now)
        return rejoined

    def observe_contact(self, node_id: str, now: int) -> bool:
        """Any other message from a known member: it is alive. True if it was DEAD (a
        rejoin); a SUSPECT that speaks merely refutes the suspicion."""
        m = self._members.get(node_id)
        if m is None:
            return False
        m.last_heard = now
        if m.state is MemberState.ALIVE:
            return False
        was_dead = m.state is MemberState.DEAD
        self._set_alive(m, now)
        return was_dead

    def observe_gossip(self, entries: Iterable[MemberHeartbeat], now: int) -> list[str]:
        """Third-party heartbeats. Returns DEAD members that came back (indirect
        rejoins)."""
        back: list[str] = []
        for e in entries:
            if e.node_id == self.node_id:
                continue
            key = (e.incarnation, e.heartbeat)
            m = self._members.get(e.node_id)
            if m is None:
                record = self._reaped.get(e.node_id)
                if record is not None and key <= record[:2]:
                    continue
                if len(self._members) >= self._config.max_members:
                    continue
                self._reaped.pop(e.node_id, None)
                self._admit(e.node_id, e.address, e.incarnation, e.heartbeat, now)
            elif key > (m.incarnation, m.heartbeat):
                m.incarnation, m.heartbeat = key
                m.last_heard = now
                if e.address:
                    m.address = e.address
                if m.state is not MemberState.ALIVE:
                    if m.state is MemberState.DEAD:
                        back.append(m.node_id)
                    self._set_alive(m, now)
        return back

    # choices -----------------------------------------------------------------------
    def sample_live(self, k: int, exclude: Iterable[str] = ()) -> list[str]:
        """Up to ``k`` distinct random live members not in ``exclude``. O(k)."""
        live = self._live
        excluded = set(exclude)
        n = len(live)
        if k <= 0 or n == 0:
            return []
        if n <= k + len(excluded):
            candidates = [x for x in live if x not in excluded]
            if len(candidates) <= k:
                return candidates
            return self._rng.sample(candidates, k)
        picked: list[str] = []
        seen: set[str] = set()
        while len(picked) < k:
            x = live[self._rng.randrange(n)]
            if x in excluded or x in seen:
                continue
            seen.add(x)
            picked.append(x)
        return picked

    def gossip_entries(self) -> tuple[MemberHeartbeat, ...]:
        """Third-party heartbeats for the next digest: round-robin over live members,
        ALIVE ones only. Relaying a suspect's stale heartbeat would re-admit it where it
        was already reaped (zombies); relaying only members heard of within
        ``suspect_after_ticks`` stops news of a silent member everywhere soon after it
        falls silent."""
        live = self._live
        k = self._config.max_digest_members
        n = len(live)
        if n == 0 or k == 0:
            return ()
        if n <= k:
            ids = live
        else:
            start = self._cursor % n
            ids = live[start : start + k]
            if len(ids) < k:
                ids = ids + live[: k - len(ids)]
            self._cursor = start + k
        members = self._members
        alive = MemberState.ALIVE
        return tuple(m.entry() for m in (members[i] for i in ids) if m.state is alive)
