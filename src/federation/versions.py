"""Version vectors: per origin, the highest contiguous seq a replica has.

A replica with ``vv[o] = n`` holds the effect of every event of origin ``o`` with
seq <= n (possibly compacted: superseded events and collected tombstones leave no
trace but the watermark). Absent origins and 0 are the same thing; zeros are never
stored, so equal vectors compare equal.

Merge is the pointwise max (a join-semilattice: commutative, associative,
idempotent); :meth:`VersionVector.meet` is the pointwise min, used for causal
stability (what every member has).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping


class Ordering(enum.Enum):
    EQUAL = "equal"
    BEFORE = "before"  # self < other: other has everything self has, and more
    AFTER = "after"  # self > other
    CONCURRENT = "concurrent"  # each has something the other lacks


class VersionVector(Mapping[str, int]):
    """An immutable map origin -> watermark (seq >= 1)."""

    __slots__ = ("_v",)

    def __init__(self, entries: Mapping[str, int] | Iterable[tuple[str, int]] = ()) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        v: dict[str, int] = {}
        for origin, seq in items:
            if seq < 0:
                raise ValueError(f"negative seq {seq} for origin {origin!r}")
            if seq:
                v[origin] = max(seq, v.get(origin, 0))
        self._v = v

    # Mapping protocol ------------------------------------------------------------
    def __getitem__(self, origin: str) -> int:
        return self._v[origin]

    def __iter__(self) -> Iterator[str]:
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def get(self, origin: str, default: int = 0) -> int:  # type: ignore[override]
        return self._v.get(origin, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VersionVector):
            return self._v == other._v
        if isinstance(other, Mapping):
            return self._v == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._v.items()))

    def __repr__(self) -> str:
        return f"VersionVector({self._v!r})"

    # lattice ---------------------------------------------------------------------
    def merge(self, other: Mapping[str, int]) -> VersionVector:
        """Pointwise max."""
        merged = dict(self._v)
        for origin, seq in other.items():
            if seq > merged.get(origin, 0):
                merged[origin] = seq
        return VersionVector(merged)

    def meet(self, other: Mapping[str, int]) -> VersionVector:
        """Pointwise min (absent = 0)."""
        return VersionVector(
            {o: min(s, other.get(o, 0)) for o, s in self._v.items() if other.get(o, 0)}
        )

    def dominates(self, other: Mapping[str, int]) -> bool:
        """True when self has everything other has (self >= other pointwise)."""
        return all(self._v.get(o, 0) >= s for o, s in other.items())

    def compare(self, other: Mapping[str, int]) -> Ordering:
        ge = self.dominates(other)
        le = all(other.get(o, 0) >= s for o, s in self._v.items())
        if ge and le:
            return Ordering.EQUAL
        if ge:
            return Ordering.AFTER
        if le:
            return Ordering.BEFORE
        return Ordering.CONCURRENT


def missing(mine: Mapping[str, int], theirs: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """What ``theirs`` lacks of ``mine``: origin -> (after_seq, through_seq) ranges.

    Cost O(len(mine)): this is the whole work of an in-sync digest exchange.
    """
    out: dict[str, tuple[int, int]] = {}
    for origin, seq in mine.items():
        have = theirs.get(origin, 0)
        if seq > have:
            out[origin] = (have, seq)
    return out


def stable(vectors: Iterable[Mapping[str, int]]) -> VersionVector:
    """The meet of several vectors: what every one of them has (empty if none given)."""
    result: VersionVector | None = None
    for vector in vectors:
        vv = vector if isinstance(vector, VersionVector) else VersionVector(vector)
        result = vv if result is None else result.meet(vv)
        if not result:
            break
    return result if result is not None else VersionVector()
