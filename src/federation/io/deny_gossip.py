"""The CA-signed deny list beside the replication core (the sidecar's part of it).

Outbound, a denied member gets no pushes, digests or events, and its stream is closed
(the inbound half is the transport's authorizer, :func:`~federation.io.denylist.make_authorizer`).
Outgoing digests are stamped with the version held; a peer whose digest shows an older
one is sent the signed list (again at most every ``resend_seconds`` while it still says
so); a list received is verified and adopted by :class:`~federation.io.denylist.DenyList`.
Used by the core thread only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from federation.io.denylist import DenyList
from federation.messages import Digest, Message, SignedDenyList
from federation.ports import Transport

log = logging.getLogger("federation.sidecar")

RESEND_SECONDS = 5.0


class Held(Protocol):
    """A signed document a member holds: its version and bytes (0 / None: none)."""

    @property
    def version(self) -> int: ...
    @property
    def payload(self) -> bytes | None: ...


class DocGossip:
    """Sends the signed document ``held`` to a peer whose digest shows an older version
    (``theirs``), again at most every ``resend_seconds`` while it still does. Shared by
    the deny list and the erasure orders."""

    def __init__(self, held: Held | None, transport: Transport,
                 message: Callable[[str, int, bytes], Message],
                 theirs: Callable[[Digest], int], resend_seconds: float = RESEND_SECONDS
                 ) -> None:
        self.held = held
        self.transport = transport
        self._message = message
        self._theirs = theirs
        self.resend_seconds = resend_seconds
        self._sent: dict[str, tuple[int, float]] = {}  # peer -> (version, when)

    def share(self, own_id: str, peer: str, digest: Digest,
              holds_back: Callable[[str], bool]) -> None:
        held = self.held
        if held is None or not digest.address or self._theirs(digest) >= held.version:
            return
        payload, version = held.payload, held.version
        last = self._sent.get(peer)
        now = time.monotonic()
        if payload is None or (last is not None and last[0] == version
                               and now - last[1] < self.resend_seconds):
            return
        if holds_back(peer):
            return
        self._sent[peer] = (version, now)
        self.transport.send(peer, digest.address, self._message(own_id, version, payload))


class DenyGossip:
    def __init__(self, deny: DenyList | None, transport: Transport,
                 resend_seconds: float = RESEND_SECONDS) -> None:
        self.deny = deny
        self.transport = transport
        self.resend_seconds = resend_seconds
        self.messages_denied = 0  # not sent: the peer is on the deny list
        self._seen: set[str] = set()
        self._gossip = DocGossip(deny, transport, SignedDenyList,
                                 lambda d: d.deny_version, resend_seconds)

    @property
    def version(self) -> int:
        return self.deny.version if self.deny is not None else 0

    @property
    def rejected(self) -> int:
        """Signed deny lists (from peers or the local file) rejected: bad signature,
        unsigned or malformed."""
        return self.deny.rejected if self.deny is not None else 0

    def lists(self, node_id: str) -> bool:
        """Is ``node_id`` on the list (never admitted, whatever discovery proposes)?"""
        return self.deny is not None and node_id in self.deny

    def offer(self, payload: bytes, sender: str) -> None:
        if self.deny is not None:
            self.deny.offer(payload, f"peer {sender}")

    def holds_back(self, peer: str) -> bool:
        """True if nothing may be sent to ``peer`` (counted; its stream closed once)."""
        if not self.lists(peer):
            return False
        self.messages_denied += 1
        if peer not in self._seen:
            self._seen.add(peer)
            self.transport.forget_peer(peer)
            log.warning("peer %s is on the deny list: nothing more is sent to it", peer)
        return True

    def stamp(self, digest: Digest) -> Digest:
        return replace(digest, deny_version=self.version) if self.version else digest

    def share(self, own_id: str, peer: str, digest: Digest) -> None:
        """Send our signed list to ``peer`` if its digest shows an older one."""
        self._gossip.share(own_id, peer, digest, self.holds_back)
