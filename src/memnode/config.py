"""The node's configuration: one documented object, presets, one flag and one env var per field.

Precedence: command-line flag, then environment variable ``MEMNODE_<FIELD>``, then the
preset (``--preset local|lan|kubernetes``, default ``local``). Validated at start: a bad
value is a clear error, never a silent fallback.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from federation.config import PRESETS
from memnode.client import DEFAULT_PORT

DEFAULT_ADDR = f"127.0.0.1:{DEFAULT_PORT}"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memnode"


def split_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NodeConfig(BaseModel):
    """Everything ``memnode serve`` needs. Each field is one flag and one env var."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory the node owns: Chroma, event log, identity key. "
        "Never shared between two processes.",
    )
    listen: str = Field(
        DEFAULT_ADDR,
        description="HOST:PORT for the client gRPC API (port 0 picks a free port). "
        "Loopback by default: expose it only where clients are trusted.",
    )
    embedder: str = Field(
        "minilm",
        description="Embedding model: minilm (all-MiniLM-L6-v2, sentence-transformers), "
        "minilm-int8 (same model, int8 ONNX: fast start, small memory), "
        "test-hash (deterministic test embedder, no semantics).",
    )
    metrics_listen: str = Field(
        "", description="HOST:PORT of the HTTP port: Prometheus /metrics, the status "
        "dashboard at / and its /status.json; empty disables it."
    )
    dashboard_sample_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often the dashboard samples replication "
        "throughput and convergence; it keeps the last 120 samples (10 minutes at 5 s)."
    )
    metadata_key_file: Path | None = Field(
        None,
        description="File with the federation's metadata HMAC key. Else $MEMNODE_METADATA_KEY, "
        "else a development default (logged as such).",
    )
    master_key_file: Path | None = Field(
        None, description="File with the master key (base64 of 32 bytes) that wraps each "
        "memory's data key. Else $MEMNODE_MASTER_KEY, else DATA_DIR/master.key (made on "
        "first start; it guards copies of the store's files, not of the whole directory).",
    )
    encrypt_at_rest: bool = Field(
        True, description="Encrypt own memories' text and metadata on disk. A store keeps "
        "the mode it was created with; off only to measure what encryption costs.",
    )
    max_text_bytes: int = Field(
        64 * 1024, ge=1, description="Largest memory text accepted, in UTF-8 bytes."
    )
    max_batch_items: int = Field(
        1000, ge=1, description="Most memories in one RememberBatch / stream message."
    )
    max_recall_k: int = Field(1000, ge=1, description="Largest k a recall may ask for.")
    ephemeral_ttl_seconds: float = Field(
        3600.0, gt=0, description="Default lifetime of an EPHEMERAL memory."
    )
    ephemeral_max_items: int = Field(
        10_000, ge=1, description="Most EPHEMERAL memories held at once (in RAM)."
    )
    redact_pii: bool = Field(
        True, description="Redact PII before storage unless a request opts out."
    )
    sync: Literal["full", "normal"] = Field(
        "full",
        description="SQLite synchronous mode of the log. full: an acknowledged write "
        "survives power loss; normal: survives a process crash only, faster.",
    )
    chroma: Literal["process", "inline"] = Field(
        "process", description="Where Chroma runs. process: a child process of the "
        "node's own (Chroma's writes hold Python's lock for their whole duration; in "
        "the node's process they stall every request for as long as an index batch "
        "takes); inline: in the node's process (about 50 MB less memory).",
    )
    index_batch_max: int = Field(
        500, ge=1, le=100_000, description="Most changes the indexer moves from the tail "
        "into Chroma in one batch (Chroma's per-call cost falls with batch size: 7 ms "
        "for one vector, 0.76 ms each in batches of 100, on 2 cores).",
    )
    index_batch_window_seconds: float = Field(
        5.0, ge=0, le=86_400, description="How long the indexer lets changes gather "
        "before a batch smaller than --index-batch-max. Writes are visible at once "
        "either way; longer windows make bigger, cheaper batches (at 20 writes/s on 16 "
        "nodes, 5 s instead of 1 s cut Chroma's CPU per replicated entry 2-3x).",
    )
    index_tail_max_items: int = Field(
        20_000, ge=1, description="Most unindexed changes held in RAM (own and "
        "replicas). Past it, writers wait for the indexer (backpressure). A new node's "
        "catch-up fills it faster than Chroma indexes: up to this many arrive at the "
        "network's pace.",
    )
    index_tail_max_bytes: int = Field(
        64 << 20, ge=1 << 16, description="Most bytes of unindexed changes held in RAM "
        "(vectors, text, metadata; approximate). Past it, writers wait.",
    )
    index_backpressure_seconds: float = Field(
        5.0, ge=0, description="How long a client write waits for room in a full tail "
        "before RESOURCE_EXHAUSTED. Replication waits as long as it takes.",
    )
    grpc_workers: int = Field(16, ge=1, description="Threads serving gRPC requests.")
    max_watchers: int = Field(
        8, ge=0, description="Watch streams open at once; one more gets "
        "RESOURCE_EXHAUSTED. Each holds one of --grpc-workers while open: keep it below.",
    )
    sidecar: Literal["embedded", "external", "off"] = Field(
        "embedded",
        description="embedded: the federation sidecar runs in this process (it needs "
        "--federation DIR or --insecure, else the node runs alone); external: a "
        "`memnode sidecar` process reaches this node on --replica-listen; off: no "
        "replication.",
    )
    replica_listen: str = Field(
        "127.0.0.1:7421",
        description="HOST:PORT of the node-local Replica API, served with --sidecar "
        "external only. Loopback (or unix:PATH) only: it can write replicas.",
    )
    restore_without_peers: bool = Field(
        False,
        description="A node restored from a backup refuses writes until a peer tells it "
        "how far its own origin went (so it never reuses a seq). Set this to write at "
        "once from the backup's head: only for a node that has no peers.",
    )
    health_probe_seconds: float = Field(
        2.0, gt=0, description="How often health is re-checked and, while writes fail "
        "(e.g. a full disk), retried: the node recovers by itself within this time.",
    )
    min_free_bytes: int = Field(
        4 * 1024 * 1024, ge=0, description="After a full disk, writes resume once the "
        "data directory's filesystem has this much free space again (and a probe write "
        "works); a failed write with less than this free counts as a full disk.",
    )
    replica_workers: int = Field(
        8, ge=2, description="Threads serving the Replica API to an external sidecar "
        "(its event watch holds one for as long as it runs).",
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight requests may finish."
    )
    client_auth: Literal["auto", "none", "token"] = Field(
        "auto",
        description="Client authentication on --listen. token: every call needs a bearer "
        "token of this node (`memnode token issue`); none: anyone who reaches the port "
        "reads and writes. auto: none on a loopback address, token on any other.",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Start with --client-auth none on a non-loopback address (logged as "
        "a warning); without it such a node refuses to start.",
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) of the client API: serve TLS with "
        "--tls-key. Clients then need --tls-ca.",
    )
    tls_key: Path | None = Field(None, description="PEM private key of --tls-cert.")
    audit: bool = Field(
        True, description="Write the audit trail of client calls (who, when, what, why; "
        "never text) into DATA_DIR/audit: `memnode audit` reads and verifies it.",
    )
    audit_max_bytes: int = Field(
        256 << 20, ge=4096, description="Retention: the oldest audit segments are dropped "
        "whole while the trail is larger than this (segments of 1/8 of it, at most 16 MiB).",
    )
    audit_max_days: float = Field(
        90.0, ge=0, description="Retention: audit segments that ended more than this many "
        "days ago are dropped (0: no age limit).",
    )
    audit_fsync_seconds: float = Field(
        1.0, gt=0, le=3600, description="How often the audit trail is fsynced (its entries "
        "reach the OS within 50 ms; requests never wait for either).",
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        split_hostport(value)
        return value

    @field_validator("replica_listen")
    @classmethod
    def _check_replica(cls, value: str) -> str:
        if value.startswith("unix:"):
            return value
        host, _ = split_hostport(value)
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the Replica API is node-local: use a loopback address or unix:PATH")
        return value

    @field_validator("metrics_listen")
    @classmethod
    def _check_metrics(cls, value: str) -> str:
        if value:
            split_hostport(value)
        return value

    @model_validator(mode="after")
    def _check_security(self) -> NodeConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        host, _ = split_hostport(self.listen)
        if (self.client_auth == "none" and not is_loopback(host)
                and not self.allow_unauthenticated):
            raise ValueError(
                f"--client-auth none on {self.listen}, not a loopback address, lets anyone "
                "who reaches the port read every memory's text: use --client-auth token "
                "(and --tls-cert/--tls-key), or give --allow-unauthenticated to accept it")
        return self

    @model_validator(mode="after")
    def _check_watchers(self) -> NodeConfig:
        if self.max_watchers >= self.grpc_workers:
            raise ValueError(f"--max-watchers {self.max_watchers} must be below --grpc-workers "
                             f"{self.grpc_workers}: each Watch stream holds a worker")
        return self

    @property
    def auth_mode(self) -> Literal["none", "token"]:
        """client_auth with auto resolved by the listen address."""
        if self.client_auth != "auto":
            return self.client_auth
        return "none" if is_loopback(split_hostport(self.listen)[0]) else "token"

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> NodeConfig:
        """local: loopback only. lan: same (the node API stays local; the sidecar meets
        peers). kubernetes: listen on all interfaces of the pod, metrics on :9420, the
        sidecar in its own container."""
        base: dict[str, Any] = {}
        if name == "kubernetes":
            base = {"listen": f"0.0.0.0:{DEFAULT_PORT}", "metrics_listen": "0.0.0.0:9420",
                    "data_dir": Path("/data"), "sidecar": "external"}
        elif name not in PRESETS:
            raise ValueError(f"unknown preset {name!r} ({', '.join(PRESETS)})")
        return cls(**{**base, **overrides})


M = TypeVar("M", bound=BaseModel)


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, model: type[BaseModel],
                         env_prefix: str, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of ``model``, with the field's description as help."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        env = f"{env_prefix}{name.upper()}"
        help_text = f"{info.description} [env {env}]"
        if info.annotation is bool:
            parser.add_argument(_flag(name), dest=name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        elif info.annotation == list[str]:
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            parser.add_argument(_flag(name), dest=name, default=None, action="append",
                                metavar=str(extra.get("metavar", "HOST:PORT")), help=help_text)
        else:
            parser.add_argument(_flag(name), dest=name, default=None, metavar=name.upper(),
                                help=help_text)


#: FederationConfig fields with no flag of their own here: the tick is SidecarConfig's
#: ``--tick-ms``; skipping signature checks is for the simulator only.
_CORE_SKIP = ("tick_ms", "insecure_skip_signature_verification")


def add_core_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of the replication core's FederationConfig (``--FIELD``, env
    ``MEMNODE_FIELD``), replacing the preset's value; help from the field's docstring."""
    from dataclasses import fields

    from federation.config import FederationConfig, field_docs

    docs = field_docs()
    group = parser.add_argument_group("replication core (defaults from --preset)")
    for f in fields(FederationConfig):
        if f.name in _CORE_SKIP:
            continue
        group.add_argument(_flag(f.name), dest=f"core_{f.name}", default=None, metavar="N",
                           help=f"{docs.get(f.name, '')} [env MEMNODE_{f.name.upper()}]")


def core_overrides(args: argparse.Namespace, env: Mapping[str, str] | None = None
                   ) -> dict[str, int]:
    """The FederationConfig fields given as flags or env vars (flags first)."""
    from dataclasses import fields

    from federation.config import FederationConfig

    env = os.environ if env is None else env
    out: dict[str, int] = {}
    for f in fields(FederationConfig):
        if f.name in _CORE_SKIP:
            continue
        raw = getattr(args, f"core_{f.name}", None)
        if raw is None:
            raw = env.get(f"MEMNODE_{f.name.upper()}")
        if raw is None:
            continue
        try:
            out[f.name] = int(raw)
        except ValueError:
            raise ValueError(f"invalid configuration: {_flag(f.name)}: {raw!r} is not an "
                             "integer") from None
    return out


def config_from_args(model: type[M], args: argparse.Namespace, env_prefix: str,
                     env: Mapping[str, str] | None = None, preset: M | None = None) -> M:
    """Flags over env vars over the preset; raises ValueError with every problem listed."""
    env = os.environ if env is None else env
    values: dict[str, Any] = preset.model_dump() if preset is not None else {}
    for name in model.model_fields:
        flag_value = getattr(args, name, None)
        if flag_value is not None:
            values[name] = flag_value
        elif f"{env_prefix}{name.upper()}" in env:
            values[name] = env[f"{env_prefix}{name.upper()}"]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{_flag(str(e['loc'][0]))}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ") for e in exc.errors()
        )
        raise ValueError(f"invalid configuration: {problems}") from exc
