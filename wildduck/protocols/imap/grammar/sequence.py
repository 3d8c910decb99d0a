"""IMAP sequence sets (RFC 3501 §9 ``sequence-set``), normalized once when parsed.

A set is kept as its sorted, merged concrete ranges plus the bounds of the ranges that involve ``*``. ``$`` (RFC 5182
SEARCHRES: the result the last ``SEARCH RETURN (SAVE)`` kept) is a set of its own, :attr:`SequenceSet.last_result`;
the session substitutes the kept UIDs (:meth:`SequenceSet.of_numbers`) before resolving it. ``*`` means
the largest number in use at the time of use, so those ranges resolve only then: ``n:*`` is ``n..largest`` or, when
``n`` is larger, ``largest..n`` (it still names the largest, RFC 3501 §6.4.8). Membership is a bisection
(O(log ranges)); resolving a set against a mailbox is a merge-join (O(messages + ranges)).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from wildduck.protocols.imap.grammar.args import ParseError

#: a range (lo, hi) as written; None stands for "*" (the largest number in use)
Range = tuple[int | None, int | None]

_MAX_NUMBER = 0xFFFFFFFF
_NO_LOW = _MAX_NUMBER + 1  # star bounds of a set whose only "*" ranges are "*" itself


def _normalize(ranges: Sequence[Range]) -> tuple[tuple[tuple[int, int], ...], tuple[int, int] | None]:
    """The sorted, merged concrete ranges, and (lowest, highest) number in the ranges with a "*" (or None)."""
    concrete: list[tuple[int, int]] = []
    star_lo, star_hi, has_star = _NO_LOW, 0, False
    for lo, hi in ranges:
        if lo is None or hi is None:
            has_star = True
            other = hi if lo is None else lo
            if other is not None:
                star_lo, star_hi = min(star_lo, other), max(star_hi, other)
        else:
            concrete.append((lo, hi) if lo <= hi else (hi, lo))
    return _merge(sorted(concrete)), ((star_lo, star_hi) if has_star else None)


def _merge(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted ranges with overlapping and adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _gallop(seq: Sequence[int], x: int, lo: int, *, right: bool) -> int:
    """``bisect_left(seq, x, lo)`` (``bisect_right`` if ``right``) by exponential search from ``lo``: O(log d)
    comparisons, d being the distance from ``lo`` to the answer."""
    n = len(seq)
    bound, step = lo, 1
    while bound < n and (seq[bound] <= x if right else seq[bound] < x):
        lo = bound + 1
        bound += step
        step *= 2
    return (bisect_right if right else bisect_left)(seq, x, lo, min(bound, n))


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set.

    Attributes:
        ranges: the ranges as written (None for "*"), in the client's order.
        normalized: the concrete ranges (no "*"), ascending, disjoint and non-adjacent.
        star: (lowest, highest) number in the ranges that involve "*", or None when there are none; the union of
            those ranges is ``min(lowest, largest) .. max(highest, largest)``.
        last_result: the set is ``$`` (RFC 5182): the saved search result, whatever the command's form (UIDs or
            sequence numbers); ``ranges`` is empty.
    """

    ranges: tuple[Range, ...]
    last_result: bool = False
    normalized: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)
    star: tuple[int, int] | None = field(init=False, repr=False, compare=False)
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    @classmethod
    def of_numbers(cls, numbers: Sequence[int]) -> SequenceSet:
        """The set of exactly these numbers (ascending or not), as merged ranges: ``[1, 2, 3, 7]`` is ``1:3,7``."""
        return cls(tuple(_merge([(n, n) for n in sorted(numbers)])))

    def __post_init__(self) -> None:
        normalized, star = _normalize(self.ranges)
        object.__setattr__(self, "normalized", normalized)
        object.__setattr__(self, "star", star)
        object.__setattr__(self, "_starts", tuple(lo for lo, _hi in normalized))

    @property
    def highest_explicit(self) -> int:
        """The largest number written in the set (0 if it names only ``*``): a sequence set naming a message
        number above the mailbox's count is invalid (RFC 3501 §9)."""
        top = self.normalized[-1][1] if self.normalized else 0
        return max(top, self.star[1]) if self.star is not None else top

    def _star_range(self, largest: int) -> tuple[int, int] | None:
        if self.star is None:
            return None
        return min(self.star[0], largest), max(self.star[1], largest)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Concrete ascending, disjoint (lo, hi) ranges with "*" = ``largest``; reversed ranges are normalized.

        Args:
            largest: the number "*" stands for (the highest UID or the message count).

        Returns:
            The merged ranges, in O(ranges). Numbers above ``largest`` are kept (they name nothing).
        """
        star = self._star_range(largest)
        if star is None:
            return list(self.normalized)
        i = bisect_left(self._starts, star[0])
        return list(_merge([*self.normalized[:i], star, *self.normalized[i:]]))

    def contains(self, n: int, largest: int) -> bool:
        """Whether the set names ``n`` when "*" is ``largest``, in O(log ranges).

        Args:
            n: a sequence number or UID.
            largest: the number "*" stands for.
        """
        star = self._star_range(largest)
        if star is not None and star[0] <= n <= star[1]:
            return True
        i = bisect_right(self._starts, n) - 1
        return i >= 0 and n <= self.normalized[i][1]

    def select_uids(self, uids: Sequence[int]) -> list[int]:
        """The positions in ``uids`` of the UIDs the set names, read as a UID set ("*" = ``uids[-1]``).

        Args:
            uids: the mailbox's UIDs, strictly ascending.

        Returns:
            0-based indexes into ``uids``, ascending. A merge-join: O(len(uids) + ranges) comparisons at most,
            O(ranges · log len(uids)) when the set is small.
        """
        if not uids:
            return []
        largest = uids[-1]
        out: list[int] = []
        pos, n = 0, len(uids)
        for lo, hi in self.resolve(largest):
            if lo > largest:
                break
            start = _gallop(uids, lo, pos, right=False)
            pos = _gallop(uids, hi, start, right=True)
            out.extend(range(start, pos))
            if pos >= n:
                break
        return out

    def select_seqs(self, count: int, limit: int = 1_000_000) -> list[int]:
        """The message sequence numbers 1..``count`` the set names ("*" = ``count``), ascending and unique.

        Args:
            count: the number of messages in the mailbox.
            limit: the most numbers to return.

        Returns:
            The numbers, in O(result + ranges).

        Raises:
            ParseError: the set names more than ``limit`` messages.
        """
        if count <= 0:
            return []
        out: list[int] = []
        for lo, hi in self.resolve(count):
            if lo > count:
                break
            lo, hi = max(lo, 1), min(hi, count)
            if len(out) + hi - lo + 1 > limit:
                raise ParseError("sequence set too large")
            out.extend(range(lo, hi + 1))
        return out

    def numbers(self, largest: int, limit: int = 1_000_000) -> list[int]:
        """Every number in the set from 1 to ``largest`` (at most ``limit``), ascending and unique.

        The same as :meth:`select_seqs`.
        """
        return self.select_seqs(largest, limit)


_SEQ_NUM = re.compile(rb"^(?:[1-9][0-9]{0,9}|\*)$")


#: ``$``, the saved search result (RFC 5182 ``seq-last-command``)
LAST_RESULT = SequenceSet((), last_result=True)


def parse_sequence_set(text: bytes) -> SequenceSet:
    """Parse ``sequence-set`` (RFC 3501 §9), or ``$`` (RFC 5182: only on its own, never inside a list or range).

    Raises:
        ParseError: the text is not a sequence set, or a number is over 2^32 - 1.
    """
    if text == b"$":
        return LAST_RESULT
    ranges: list[Range] = []
    for part in text.split(b","):
        lo, sep, hi = part.partition(b":")
        if not _SEQ_NUM.match(lo) or (sep and not _SEQ_NUM.match(hi)):
            raise ParseError(f"invalid sequence set {text[:64]!r}")
        a = None if lo == b"*" else int(lo)
        b = (None if hi == b"*" else int(hi)) if sep else a
        if (a is not None and a > _MAX_NUMBER) or (b is not None and b > _MAX_NUMBER):
            raise ParseError("sequence number out of range")
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))
