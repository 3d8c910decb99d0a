"""Sequence sets: normalized once, fast membership and resolution, the same answers as the RFC 3501 definition.

A 64 KiB ``UID SEARCH UID`` set on a 10,000-message mailbox used to cost O(messages × ranges) with a re-sort on
every ``contains()``. The costs here are counted in comparisons, never in seconds.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols.imap import grammar as g


class _Counter:
    comparisons = 0


class CountingInt(int):
    """An int that counts every ordering comparison it takes part in (either side)."""

    def _count(self) -> None:
        _Counter.comparisons += 1

    def __lt__(self, other: object) -> bool:
        self._count()
        return int(self) < other  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        self._count()
        return int(self) <= other  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        self._count()
        return int(self) > other  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        self._count()
        return int(self) >= other  # type: ignore[operator]

    __hash__ = int.__hash__


def _counted(f: object, *args: object) -> tuple[object, int]:
    _Counter.comparisons = 0
    result = f(*args)  # type: ignore[operator]
    return result, _Counter.comparisons


def _disjoint_set(n: int) -> g.SequenceSet:
    """Every other number from 1 to 2n: n disjoint ranges, written in descending order (so sorting matters)."""
    text = b",".join(b"%d" % i for i in range(2 * n - 1, 0, -2))
    assert len(text) < 65536
    return g.parse_sequence_set(text)


def test_sequence_set_is_not_quadratic() -> None:
    n = 10_000
    seqset = _disjoint_set(n)
    assert len(seqset.normalized) == n  # normalized once, at parse time
    uids = [CountingInt(u) for u in range(1, 2 * n + 1, 2)]  # every range names one UID
    selected, cost = _counted(seqset.select_uids, uids)
    assert selected == list(range(n))
    assert cost <= 8 * (len(uids) + n)  # a merge-join; O(n × m) would be 10^8
    uids = [CountingInt(u) for u in range(2, 2 * n + 1, 2)]  # no range names any UID
    selected, cost = _counted(seqset.select_uids, uids)
    assert selected == []
    assert cost <= 8 * (len(uids) + n)


def test_contains_bisects() -> None:
    seqset = _disjoint_set(10_000)
    for probe in (1, 2, 9_999, 10_000, 19_999, 20_000, 30_000):
        found, cost = _counted(seqset.contains, CountingInt(probe), 20_000)
        assert found == (probe % 2 == 1 and probe < 20_000)
        assert cost <= 2 * 15 + 4  # O(log ranges): one bisection, the "*" bounds and one end


def test_small_set_on_a_big_mailbox_gallops() -> None:
    uids = [CountingInt(u) for u in range(1, 100_001)]
    selected, cost = _counted(g.parse_sequence_set(b"500:*").select_uids, uids)
    assert selected == list(range(499, 100_000))
    assert cost <= 120  # two gallops of O(log messages) each, not one comparison per message (10^5)


def test_select_seqs_costs_the_result() -> None:
    seqset = g.parse_sequence_set(b"1:*")
    assert seqset.select_seqs(5) == [1, 2, 3, 4, 5]
    assert seqset.select_seqs(0) == []
    try:
        g.parse_sequence_set(b"1:*").select_seqs(10, limit=9)
    except g.ParseError:
        pass
    else:
        raise AssertionError("limit not enforced")


def test_star_semantics() -> None:
    s = g.parse_sequence_set(b"9:*")
    assert s.contains(5, 5) and not s.contains(4, 5)  # n:* with n > largest names the largest
    assert s.select_seqs(5) == [5]
    assert s.select_uids([1, 3, 5]) == [2]
    assert g.parse_sequence_set(b"*").select_seqs(3) == [3]
    assert g.parse_sequence_set(b"*:2,7").resolve(4) == [(2, 4), (7, 7)]
    assert g.parse_sequence_set(b"1:3,4:6,5").normalized == ((1, 6),)
    assert g.parse_sequence_set(b"3,1:2").highest_explicit == 3
    assert g.parse_sequence_set(b"*").highest_explicit == 0
    assert g.parse_sequence_set(b"2:*") == g.SequenceSet(((2, None),))


# --- agreement with the definition ----------------------------------------------------------------------------------
_number = st.one_of(st.none(), st.integers(1, 60))
_ranges = st.lists(st.tuples(_number, _number), min_size=1, max_size=12)
_uids = st.lists(st.integers(1, 80), max_size=40, unique=True).map(sorted)


def _naive_contains(ranges: tuple[g.Range, ...], n: int, largest: int) -> bool:
    for lo, hi in ranges:
        a = largest if lo is None else lo
        b = largest if hi is None else hi
        if min(a, b) <= n <= max(a, b):
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(_ranges, _uids, st.integers(0, 70))
def test_fast_methods_agree_with_the_definition(ranges: list[g.Range], uids: list[int], count: int) -> None:
    s = g.SequenceSet(tuple(ranges))
    largest = uids[-1] if uids else 0
    assert s.select_uids(uids) == [i for i, u in enumerate(uids) if _naive_contains(s.ranges, u, largest)]
    assert s.select_seqs(count) == [n for n in range(1, count + 1) if _naive_contains(s.ranges, n, count)]
    assert s.numbers(count) == s.select_seqs(count)
    for n in range(0, 75):
        assert s.contains(n, count) == _naive_contains(s.ranges, n, count)
    resolved = s.resolve(count)
    assert all(a <= b for a, b in resolved)
    assert all(b + 1 < c for (_a, b), (c, _d) in itertools.pairwise(resolved))  # sorted, disjoint, not adjacent
    covered = {n for a, b in resolved for n in range(a, b + 1)}
    assert covered == {n for n in range(0, 80) if _naive_contains(s.ranges, n, count)}
