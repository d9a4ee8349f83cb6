"""One documented configuration for the federation core, with presets.

Time is counted in *ticks*: the adapter calls ``FederationCore.tick()`` every
``tick_ms`` milliseconds, and every timer below is a number of ticks. The presets
differ only where they must:

- :meth:`FederationConfig.local` - a few nodes on one machine (demo, tests): short
  ticks and timers, fanout 2 (with 3 nodes that is every peer).
- :meth:`FederationConfig.lan` - tens of nodes on a LAN (the default).
- :meth:`FederationConfig.kubernetes` - pods that are rescheduled and whose network
  stalls during rollouts: slower anti-entropy, more patient failure detection.

Batch and validation limits are the same in every preset on purpose: they are
checked on *receive* too, so two peers with different presets must agree on them.

Failure detection is gossip-style (van Renesse et al. 1998): a member is heard of
when a digest carries a higher heartbeat for it (from itself or relayed by a third
party, ``max_digest_members`` entries per digest) or when it sends us anything. In a
mesh of N members each entry is relayed about every ``N / max_digest_members``
digests, so ``suspect_after_ticks`` must grow with that ratio; the presets are sized
for meshes of up to about ``max_digest_members`` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from federation.errors import ConfigError


@dataclass(frozen=True)
class FederationConfig:
    # --- time -----------------------------------------------------------------------
    tick_ms: int = 100
    """Wall-clock length of one tick (used by the adapter's timer only). Shorter ticks
    detect failures and start anti-entropy sooner at the cost of more wake-ups."""

    # --- anti-entropy ---------------------------------------------------------------
    anti_entropy_interval_ticks: int = 10
    """A digest exchange with ``anti_entropy_peers`` random live peers every this many
    ticks. It bounds how long a rumor's residue (nodes the push missed) lasts; each
    exchange costs two digests of O(origins) bytes when in sync."""
    anti_entropy_peers: int = 1
    """Peers contacted per anti-entropy round. More peers: faster repair after loss,
    proportionally more digests."""
    max_batch_events: int = 512
    """Most events in one EventBatch message (sent and accepted). Bigger batches mean
    fewer messages and more memory per message."""
    max_batch_bytes: int = 1 << 20
    """Most bytes (size model of federation.sizes) of one EventBatch, sent and
    accepted. Must stay under the transport's message limit (gRPC: 4 MiB)."""
    max_events_per_exchange: int = 8192
    """Most events streamed (as several batches) in answer to one digest. A peer
    that lacks more gets the rest at its next exchange: this bounds the work one
    digest can ask of us, at the cost of more rounds for a big catch-up."""
    inflight_timeout_ticks: int = 20
    """Events sent to a peer are assumed in flight for this long: a digest from that
    peer that crosses them on the wire is not answered with them again. Too short:
    duplicate catch-up traffic on slow links; too long: a lost batch is resent late."""

    # --- push-on-write (rumors) -------------------------------------------------------
    fanout: int = 3
    """A new local event is pushed to this many live peers at once, and every peer
    forwards an event that was new to it to this many others. Messages per write are
    about N * fanout; the share of nodes a rumor misses is about exp(-fanout)
    (anti-entropy repairs them)."""
    rumor_max_hops: int = 10
    """A rumor is not forwarded beyond this many hops. About log(N)/log(fanout) hops
    reach everyone; fewer hops leave more residue for anti-entropy."""
    push_direct_max: int = 32
    """While a node has at most this many live peers, its new events go straight to
    every one of them: one hop, each peer receives each event once (N - 1 messages per
    write) and no anti-entropy round is waited for; a receiver forwards only to live
    peers the pusher did not name (its view may hold more). Past it, rumor mongering as
    above (``fanout`` peers who forward: about N * fanout messages, a residue of
    exp(-fanout) for anti-entropy). 0: always rumor mongering; fanout 0 turns pushing
    off either way."""

    # --- out-of-order buffer ----------------------------------------------------------
    max_buffered_per_origin: int = 1024
    """Events (and event-less runs) held per origin while a gap below them is filled.
    On overflow the furthest ones are dropped and counted; anti-entropy re-sends them.
    Memory bound: origins * this * event size."""

    # --- membership -------------------------------------------------------------------
    suspect_after_ticks: int = 50
    """A member whose heartbeat has not increased for this long becomes suspect. It is
    still contacted (so it can refute). Heartbeats travel in digests, so this must be
    at least 2 anti-entropy intervals (validated); too short: false suspicions in big
    meshes."""
    dead_after_ticks: int = 300
    """A member not heard of for this long is dead: no more gossip or rumors to it,
    only a retry digest every ``dead_retry_ticks``, and it no longer holds back
    tombstone collection (this is the GC horizon; see docs of ReplicaState.gc)."""
    reap_after_ticks: int = 3000
    """A member dead for this long is forgotten, so departed peers do not grow state
    without bound. A reaped member that comes back simply joins again: its digest, or
    discovery proposing it again (discovery adapters re-propose peers periodically),
    makes it a member."""
    dead_retry_ticks: int = 100
    """Period of the retry digest sent to each dead member (they may have healed)."""
    max_digest_members: int = 32
    """Third-party heartbeats carried in one digest (round-robin over live members),
    besides the sender's own. More: faster failure detection in big meshes and
    bigger digests (about 40 bytes each)."""
    max_members: int = 4096
    """Most members tracked. Members learned from gossip beyond it are ignored
    (discovered peers are always admitted): a partial view for very large meshes."""

    # --- tombstones -------------------------------------------------------------------
    tombstone_gc_interval_ticks: int = 600
    """How often causally stable tombstones (covered by every live member's version
    vector) are collected. Cost per run: O(members * origins + tombstones)."""

    # --- restore ------------------------------------------------------------------------
    restore_wait_ticks: int = 100
    """A node restored from a backup writes again once every origin its backup knew has
    sent a digest, or this long after the first digest (federation.restore). Longer:
    fewer seqs reused when a peer holding our latest events is cut off; writes stay
    refused meanwhile."""
    restore_asks_per_round: int = 16
    """While restoring, each anti-entropy round also sends a digest to this many of the
    live origins the restore still waits for (their replies end the wait). Without it
    the wait lasts until each has happened to pick us: about N ln N / 2 rounds in an
    N-node mesh. More: a shorter restore at N/this rounds, a burst of digests."""

    # --- validation limits (same in every preset) ---------------------------------------
    max_embedding_dim: int = 4096
    """Largest accepted embedding dimension (float32 values)."""
    max_metadata_entries: int = 64
    """Most metadata entries of one replicated memory."""
    max_metadata_key_bytes: int = 128
    """Longest metadata key (UTF-8 bytes) that replicates."""
    max_metadata_value_bytes: int = 1024
    """Longest metadata string value (UTF-8 bytes) that replicates."""
    max_local_id_bytes: int = 256
    """Longest local part of a memory id."""
    max_event_bytes: int = 64 * 1024
    """Largest accepted event (size model). Bigger events are rejected as oversized."""

    # --- simulator only -----------------------------------------------------------------
    insecure_skip_signature_verification: bool = False
    """NEVER in production. Lets the simulator run thousands of nodes without paying
    an Ed25519 verification per event per node. Every other check still runs."""

    # ----------------------------------------------------------------------------------
    @classmethod
    def local(cls, **overrides: Any) -> FederationConfig:
        """A few nodes on one host: 50 ms ticks, exchanges every 0.5 s, fanout 2."""
        base = cls(
            tick_ms=50,
            anti_entropy_interval_ticks=10,
            fanout=2,
            rumor_max_hops=3,
            suspect_after_ticks=40,
            dead_after_ticks=200,
            reap_after_ticks=1200,
            dead_retry_ticks=40,
            inflight_timeout_ticks=20,
            tombstone_gc_interval_ticks=200,
        )
        return base.with_(**overrides)

    @classmethod
    def lan(cls, **overrides: Any) -> FederationConfig:
        """Tens of nodes on a LAN: 100 ms ticks, exchanges every second (the default)."""
        return cls().with_(**overrides)

    @classmethod
    def kubernetes(cls, **overrides: Any) -> FederationConfig:
        """Pods behind a headless Service: exchanges every 2 s, patient timers
        (rollouts stall the network for seconds, rescheduled pods keep their id)."""
        base = cls(
            anti_entropy_interval_ticks=20,
            suspect_after_ticks=100,
            dead_after_ticks=600,
            inflight_timeout_ticks=40,
        )
        return base.with_(**overrides)

    def with_(self, **overrides: Any) -> FederationConfig:
        """A copy with some fields replaced, validated."""
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown federation config fields: {sorted(unknown)}")
        config = replace(self, **overrides)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError when a value cannot work."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "insecure_skip_signature_verification":
                if not isinstance(value, bool):
                    raise ConfigError(f"{f.name} must be a bool")
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{f.name} must be a non-negative int, not {value!r}")
        positive = (
            "tick_ms", "anti_entropy_interval_ticks", "max_batch_events", "max_batch_bytes",
            "max_events_per_exchange", "suspect_after_ticks", "dead_after_ticks",
            "reap_after_ticks", "dead_retry_ticks", "max_members", "max_embedding_dim",
            "max_event_bytes", "tombstone_gc_interval_ticks", "max_buffered_per_origin",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.dead_after_ticks <= self.suspect_after_ticks:
            raise ConfigError("dead_after_ticks must exceed suspect_after_ticks")
        if self.suspect_after_ticks < 2 * self.anti_entropy_interval_ticks:
            # heartbeats travel in digests: a member cannot be heard of more than about
            # once per interval, so a shorter timer suspects healthy members
            raise ConfigError("suspect_after_ticks must be >= 2 * anti_entropy_interval_ticks")
        if self.max_batch_bytes < self.max_event_bytes + 1024:
            raise ConfigError("max_batch_bytes must hold at least one largest event")
        if self.max_events_per_exchange < self.max_batch_events:
            raise ConfigError("max_events_per_exchange must be >= max_batch_events")


#: The presets, in one place: every component takes one of these names.
Preset = Literal["local", "lan", "kubernetes"]
PRESETS: tuple[Preset, ...] = ("local", "lan", "kubernetes")
DEFAULT_PRESET: Preset = "local"


def preset(name: str, **overrides: Any) -> FederationConfig:
    """The named preset (see :data:`PRESETS`) with some fields replaced, validated."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} ({', '.join(PRESETS)})")
    factory = {"local": FederationConfig.local, "lan": FederationConfig.lan,
               "kubernetes": FederationConfig.kubernetes}[name]
    return factory(**overrides)


def field_docs() -> dict[str, str]:
    """Each field's docstring (the text under it above), for flags' help."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(FederationConfig)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs
