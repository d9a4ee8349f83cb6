"""What the core hands its driver: :class:`Ready` (messages to send and effects to make
durable, taken with ``ready()`` and acknowledged with ``advance()``), and the
:class:`PeerStatus` of each member it knows."""

from __future__ import annotations

from dataclasses import dataclass, field

from federation.effects import Effect
from federation.membership import MemberState
from federation.messages import Message


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send to peer ``to`` at its last known ``address`` ("" if unknown)."""

    to: str
    address: str
    message: Message


@dataclass
class Ready:
    messages: list[Outgoing] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.messages or self.effects)


@dataclass(frozen=True)
class PeerStatus:
    node_id: str
    address: str
    state: MemberState
    incarnation: int
    heartbeat: int
    last_heard_tick: int
    events_behind: int | None
    """Seqs of ours the peer's last digest did not cover (None: no digest yet)."""
