"""Version vectors: merge is a join (commutative, associative, idempotent)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from federation.versions import Ordering, VersionVector, missing, stable

ORIGINS = ["a", "b", "c", "d"]
vectors = st.dictionaries(st.sampled_from(ORIGINS), st.integers(0, 20)).map(VersionVector)


@given(vectors, vectors)
def test_merge_is_commutative(x: VersionVector, y: VersionVector) -> None:
    assert x.merge(y) == y.merge(x)


@given(vectors, vectors, vectors)
def test_merge_is_associative(x: VersionVector, y: VersionVector, z: VersionVector) -> None:
    assert x.merge(y).merge(z) == x.merge(y.merge(z))


@given(vectors)
def test_merge_is_idempotent(x: VersionVector) -> None:
    assert x.merge(x) == x


@given(vectors, vectors)
def test_merge_is_the_least_upper_bound(x: VersionVector, y: VersionVector) -> None:
    m = x.merge(y)
    assert m.dominates(x) and m.dominates(y)
    for origin in ORIGINS:
        assert m.get(origin) == max(x.get(origin), y.get(origin))


@given(vectors, vectors)
def test_meet_is_the_greatest_lower_bound(x: VersionVector, y: VersionVector) -> None:
    m = x.meet(y)
    assert x.dominates(m) and y.dominates(m)
    assert m == y.meet(x)
    assert stable([x, y]) == m


@given(vectors, vectors)
def test_compare_agrees_with_dominates(x: VersionVector, y: VersionVector) -> None:
    order = x.compare(y)
    assert (order is Ordering.EQUAL) == (x == y)
    assert (order in (Ordering.EQUAL, Ordering.AFTER)) == x.dominates(y)
    assert (order in (Ordering.EQUAL, Ordering.BEFORE)) == y.dominates(x)
    flipped = {Ordering.AFTER: Ordering.BEFORE, Ordering.BEFORE: Ordering.AFTER}
    assert y.compare(x) is flipped.get(order, order)


@given(vectors, vectors)
def test_missing_is_exactly_what_the_other_lacks(
    mine: VersionVector, theirs: VersionVector
) -> None:
    gaps = missing(mine, theirs)
    for origin in ORIGINS:
        if mine.get(origin) > theirs.get(origin):
            assert gaps[origin] == (theirs.get(origin), mine.get(origin))
        else:
            assert origin not in gaps
    # after receiving the gaps they dominate us
    filled = theirs.merge({o: hi for o, (_, hi) in gaps.items()})
    assert filled.dominates(mine)


def test_zero_entries_are_absent() -> None:
    assert VersionVector({"a": 0, "b": 2}) == VersionVector({"b": 2})
    assert len(VersionVector({"a": 0})) == 0
    assert VersionVector({"b": 2}) == {"b": 2, "a": 0}
