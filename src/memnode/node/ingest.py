"""From what a client sends to records ready to store: validate, redact PII, embed.

All or nothing: the first bad item raises (naming its index in a batch) before anything
is embedded or written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from federation.events import ModelId
from memnode.config import NodeConfig
from memnode.embedders import Embedder
from memnode.errors import InvalidArgument
from memnode.node import validation
from memnode.node.domain import LocalRecord, Metadata, Privacy, Vector
from memnode.node.metrics import NodeMetrics
from memnode.node.redact import redact


@dataclass
class RememberInput:
    """One memory as a client sends it (validated here)."""

    text: bytes | str
    metadata: Mapping[str, object] = field(default_factory=dict)
    privacy: int = 0  # 0 = TEAM
    keep_pii: bool = False
    ttl_seconds: float = 0.0
    embedding: bytes = b""
    embedding_model: ModelId | None = None  # the model ``embedding`` came from, declared


@dataclass(frozen=True)
class RememberResult:
    id: str
    redactions: int


@dataclass(frozen=True)
class Prepared:
    records: list[LocalRecord]
    redactions: list[int]


@dataclass(frozen=True)
class _Item:
    text: str
    privacy: Privacy
    metadata: Metadata
    vector: Vector | None
    ttl_seconds: float
    redactions: int


def _check(item: RememberInput, cfg: NodeConfig, limits: validation.MetadataLimits,
           model: ModelId) -> _Item:
    raw = item.text.encode() if isinstance(item.text, str) else item.text
    text = validation.decode_text(raw, cfg.max_text_bytes)
    level = validation.privacy(item.privacy)
    meta = validation.metadata(item.metadata, limits)
    vec = None
    if item.embedding:
        vec = validation.embedding(item.embedding, model.dim)
        validation.embedding_model(item.embedding_model, model, level)
    if item.ttl_seconds and level != Privacy.EPHEMERAL:
        raise InvalidArgument("ttl_seconds applies to EPHEMERAL only")
    return _Item(text, level, meta, vec, item.ttl_seconds, 0)


def _redact_values(metadata: Metadata) -> tuple[Metadata, dict[str, int]]:
    """PII redacted from the string values of PUBLIC metadata, as from the text."""
    out: Metadata = {}
    found: dict[str, int] = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            value, spans = redact(value)
            for kind, count in spans.items():
                found[kind] = found.get(kind, 0) + count
        out[key] = value
    return out, found


def prepare(items: Sequence[RememberInput], cfg: NodeConfig, limits: validation.MetadataLimits,
            embedder: Embedder, metrics: NodeMetrics, now_ms: int, new_id: Callable[[], str]
            ) -> Prepared:
    validation.batch_size(len(items), cfg.max_batch_items)
    checked: list[_Item] = []
    for n, item in enumerate(items):
        try:
            ok = _check(item, cfg, limits, embedder.model)
        except InvalidArgument as exc:
            prefix = f"item {n}: " if len(items) > 1 else ""
            raise InvalidArgument(prefix + str(exc)) from None
        if cfg.redact_pii and not item.keep_pii:
            text, found = redact(ok.text)
            meta = ok.metadata
            if ok.privacy == Privacy.PUBLIC:  # these values travel to every peer in clear
                meta, in_meta = _redact_values(ok.metadata)
                for kind, count in in_meta.items():
                    found[kind] = found.get(kind, 0) + count
            for kind, count in found.items():
                metrics.redactions.labels(kind=kind).inc(count)
            ok = _Item(text, ok.privacy, meta, ok.vector, ok.ttl_seconds,
                       sum(found.values()))
        checked.append(ok)
    to_embed = [i for i, c in enumerate(checked) if c.vector is None]
    vectors: dict[int, Vector] = {}
    if to_embed:
        started = time.perf_counter()
        embedded = embedder.embed([checked[i].text for i in to_embed])
        metrics.embed_seconds.observe(time.perf_counter() - started)
        vectors = dict(zip(to_embed, embedded, strict=True))
    records = []
    for i, c in enumerate(checked):
        expires = 0
        if c.privacy == Privacy.EPHEMERAL:
            expires = now_ms + int(1000 * (c.ttl_seconds or cfg.ephemeral_ttl_seconds))
        vec = c.vector if c.vector is not None else vectors[i]
        records.append(LocalRecord(new_id(), c.text, vec, c.metadata, c.privacy, now_ms,
                                   now_ms, expires))
    return Prepared(records, [c.redactions for c in checked])
