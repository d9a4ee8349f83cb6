"""The sidecar's configuration: one documented object; flags and env vars map to it.

Precedence: flag, then ``MEMNODE_<FIELD>`` (lists comma-separated), then the preset.
The replication core's fields (federation.config.FederationConfig) come from the
preset (local / lan / kubernetes, the same name as the node's preset), each of them
replaceable by its own flag and env var (``core``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from federation.config import DEFAULT_PRESET, FederationConfig, Preset
from federation.config import preset as core_preset

DEFAULT_GOSSIP_PORT = 7422
DEFAULT_REPLICA_ADDR = "127.0.0.1:7421"


def _check_hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


class SidecarConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    gossip_listen: str = Field(
        f"127.0.0.1:{DEFAULT_GOSSIP_PORT}",
        description="HOST:PORT where peers reach this sidecar (port 0 picks a free port).",
    )
    advertise: str = Field(
        "", description="HOST:PORT peers should dial, when it differs from --gossip-listen "
        "(e.g. a pod's DNS name). Default: the listen address with its bound port.",
    )
    peer: list[str] = Field(
        default_factory=list,
        description="A peer's gossip HOST:PORT (repeatable). Peers found are remembered "
        "and gossiped, so one live peer is enough to join.",
    )
    discover: list[str] = Field(
        default_factory=list,
        description="Find peers: zeroconf (mDNS on the LAN, zeroconf:IP[,IP] pins the "
        "interfaces), dns:NAME[:PORT] (the A/AAAA records of e.g. a Kubernetes headless "
        "Service, re-resolved). Repeatable, combines with --peer; env: separated by "
        "spaces or ';'.", json_schema_extra={"metavar": "SPEC"},
    )
    dns_interval_seconds: float = Field(
        5.0, gt=0, description="How often --discover dns:NAME is resolved again.",
    )
    insecure: bool = Field(
        False, description="Speak plaintext to peers. For tests and captures only: "
        "anyone on the network can read embeddings and inject nothing but noise "
        "(events stay signed).",
    )
    federation: Path | None = Field(
        None, description="Directory with this node's federation credentials "
        "(CA certificate, node certificate and key, metadata key).",
    )
    preset: Preset = Field(
        DEFAULT_PRESET, description="Timers and fanout of the replication core "
        "(local: a few nodes on one host; lan: tens of nodes; kubernetes: patient).",
    )
    core: dict[str, int] = Field(
        default_factory=dict, description="Fields of the replication core's "
        "FederationConfig that replace the preset's (each is a flag and an env var).",
    )
    tick_ms: int = Field(0, ge=0, description="Override the preset's tick length (ms).")
    transport_queue: int = Field(
        1024, ge=1, description="Messages queued per peer before the newest are dropped "
        "(anti-entropy repairs what is dropped; more holds longer bursts in memory).",
    )
    transport_workers: int = Field(
        64, ge=1, description="Threads serving inbound gossip streams (one per peer "
        "stream while it is open: keep above the number of peers).",
    )
    replica_timeout_seconds: float = Field(
        30.0, gt=0, description="How long one call of the node's Replica API may take "
        "(memnode sidecar --node) before the sidecar gives up on it and rebuilds.",
    )
    identify_interval_seconds: float = Field(
        30.0, gt=0, description="How often static peers are asked who they are again "
        "(finds a peer that came back with a new identity at the same address).",
    )

    @field_validator("gossip_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _check_hostport(value)

    @field_validator("advertise")
    @classmethod
    def _advertise(cls, value: str) -> str:
        return _check_hostport(value) if value else value

    @field_validator("discover", mode="before")
    @classmethod
    def _discover(cls, value: object) -> object:
        if isinstance(value, str):  # an env var: zeroconf:IP,IP holds commas itself
            value = [p for p in value.replace(";", " ").split() if p]
        if isinstance(value, list):
            from federation.io.discovery import parse_discover

            for item in value:
                parse_discover(str(item), DEFAULT_GOSSIP_PORT)  # ValueError on a bad one
        return value

    @field_validator("peer", mode="before")
    @classmethod
    def _peers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list):
            for item in value:
                _check_hostport(str(item))
        return value

    def core_config(self) -> FederationConfig:
        overrides = dict(self.core)
        if self.tick_ms:
            overrides["tick_ms"] = self.tick_ms
        return core_preset(self.preset, **overrides)
