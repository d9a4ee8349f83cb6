"""The node's configuration: one documented object, presets, one flag and one env var per field.

Precedence: command-line flag, then environment variable ``MEMNODE_<FIELD>``, then the
preset (``--preset local|lan|kubernetes``, default ``local``). Validated at start: a bad
value is a clear error, never a silent fallback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
        "", description="HOST:PORT for Prometheus /metrics; empty disables the endpoint."
    )
    metadata_key_file: Path | None = Field(
        None,
        description="File with the federation's metadata HMAC key. Else $MEMNODE_METADATA_KEY, "
        "else a development default (logged as such).",
    )
    max_text_bytes: int = Field(
        64 * 1024, ge=1, description="Largest memory text accepted, in UTF-8 bytes."
    )
    max_batch_items: int = Field(
        1000, ge=1, description="Most memories in one RememberBatch / stream message."
    )
    max_metadata_keys: int = Field(64, ge=0, description="Most metadata keys per memory.")
    max_metadata_value_bytes: int = Field(
        1024, ge=1, description="Longest metadata key or string value, in UTF-8 bytes."
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
    grpc_workers: int = Field(16, ge=1, description="Threads serving gRPC requests.")
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
        "works).",
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, how long in-flight requests may finish."
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

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> NodeConfig:
        """local: loopback only. lan: same (the node API stays local; the sidecar meets
        peers). kubernetes: listen on all interfaces of the pod, metrics on :9420, the
        sidecar in its own container."""
        base: dict[str, Any] = {}
        if name == "kubernetes":
            base = {"listen": f"0.0.0.0:{DEFAULT_PORT}", "metrics_listen": "0.0.0.0:9420",
                    "data_dir": Path("/data"), "sidecar": "external"}
        elif name not in ("local", "lan"):
            raise ValueError(f"unknown preset {name!r} (local, lan, kubernetes)")
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
            f"{_flag(str(e['loc'][0])) if e['loc'] else ''}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid configuration: {problems}") from exc
