"""The CA-signed erasure orders beside the replication core (the sidecar's part).

Like the deny list (:mod:`federation.io.deny_gossip`): outgoing digests carry the version
of the orders held, a peer whose digest shows an older one is sent the signed bytes, and
what peers send is verified against our CA (:class:`~federation.io.erasesign.ErasureList`)
and adopted if newer. Unlike the deny list, the orders reach the core
(:meth:`~federation.engine.FederationCore.erase`): it erases what they cover and refuses
it from then on, and the node keeps the signed orders in its log (``KeepErasures``), so a
restarted sidecar enforces them at once (:meth:`ErasureGossip.restored`) and gossips them.
Used by the core thread, except :meth:`offer` (any thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from federation.engine import FederationCore
from federation.io.deny_gossip import DocGossip
from federation.io.erasesign import ErasureList
from federation.messages import Digest, SignedErasures
from federation.ports import Transport
from federation.replica import RestartState

log = logging.getLogger("federation.sidecar")


class ErasureGossip:
    def __init__(self, erasures: ErasureList | None, transport: Transport) -> None:
        self.erasures = erasures
        self._gossip = DocGossip(erasures, transport, SignedErasures,
                                 lambda d: d.erasure_version)

    @property
    def version(self) -> int:
        return self.erasures.version if self.erasures is not None else 0

    @property
    def rejected(self) -> int:
        """Signed erasure orders rejected: bad signature, unsigned or malformed."""
        return self.erasures.rejected if self.erasures is not None else 0

    def offer(self, payload: bytes, sender: str) -> None:
        if self.erasures is not None:
            self.erasures.offer(payload, f"peer {sender}")

    def restored(self, restart: RestartState) -> RestartState:
        """The node's restart state with the orders its log keeps, to build a core."""
        if self.erasures is None:
            return restart
        signed = self.erasures.restored(restart.erasure_record)
        return replace(restart, erasures=signed.orders if signed else ())

    def feed(self, core: FederationCore) -> None:
        """Orders adopted since the core last had them: to the core."""
        signed = self.erasures.take() if self.erasures is not None else None
        if signed is not None:
            core.erase(signed.orders, signed.payload)

    def stamp(self, digest: Digest) -> Digest:
        return replace(digest, erasure_version=self.version) if self.version else digest

    def share(self, own_id: str, peer: str, digest: Digest,
              holds_back: Callable[[str], bool]) -> None:
        self._gossip.share(own_id, peer, digest, holds_back)
