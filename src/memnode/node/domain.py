"""Plain data of the node: privacy levels, metadata, memories, hits. No I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from federation.events import ModelId

__all__ = ["Privacy", "MetaValue", "Metadata", "ModelId", "LocalRecord", "ReplicaRecord", "Hit"]

MetaValue = str | int | float | bool
Metadata = dict[str, MetaValue]
Vector = npt.NDArray[np.float32]


class Privacy(enum.IntEnum):
    """How far a memory travels (values equal memnode.v1.Privacy)."""

    EPHEMERAL = 1
    PRIVATE = 2
    TEAM = 3
    PUBLIC = 4

    @property
    def replicated(self) -> bool:
        return self in (Privacy.TEAM, Privacy.PUBLIC)

    @classmethod
    def parse(cls, name: str) -> Privacy:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(p.name.lower() for p in cls)
            raise ValueError(f"unknown privacy level {name!r} (choose from {choices})") from None


@dataclass
class LocalRecord:
    """A memory written on this node: the only place its text exists."""

    id: str
    text: str
    embedding: Vector
    metadata: Metadata
    privacy: Privacy
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int = 0  # EPHEMERAL only


@dataclass
class ReplicaRecord:
    """Another node's memory as it reaches this node: no text, shared metadata only."""

    id: str
    origin: str
    embedding: Vector
    metadata: Metadata
    privacy: Privacy
    created_at_ms: int
    updated_at_ms: int


def cosine_score(similarity: float) -> float:
    """A cosine similarity as clients see it: float rounding (1.0000001 for a vector
    against itself, or 1 - distance from the index) clamped into [-1, 1]."""
    return min(1.0, max(-1.0, float(similarity)))


@dataclass
class Hit:
    id: str
    origin: str
    score: float
    privacy: Privacy
    local: bool
    created_at_ms: int
    text: str = ""
    metadata: Metadata = field(default_factory=dict)
