"""Row sets of a memory snapshot: bitmaps (Python ints, bit ``r`` for row ``r``),
small sorted arrays of rows (:data:`Posting`), and a filtered result laid out in
one sort order (:class:`Walk`), paged with popcounts.
"""

from __future__ import annotations

import collections
import itertools
import re
from array import array
from collections.abc import Iterator, Sequence
from typing import Final, TypeAlias

__all__ = ["Posting", "rows_to_bitmap", "row_string", "bitmap_rows", "as_bitmap", "Walk",
           "positions"]

_ONE: Final = re.compile("1")
#: A bitmap of rows, or a sorted array of rows.
Posting: TypeAlias = "int | array[int]"


def rows_to_bitmap(rows: Sequence[int], n: int) -> int:
    """A bitmap (bit ``r`` set for each row ``r``)."""
    k = len(rows)
    if k == 0:
        return 0
    if k * 16 < n:
        bits = bytearray((n >> 3) + 1)
        for r in rows:
            bits[r >> 3] |= 1 << (r & 7)
        return int.from_bytes(bits, "little")
    chars = bytearray(b"0") * n
    collections.deque(map(chars.__setitem__, rows, itertools.repeat(49)), maxlen=0)
    chars.reverse()
    return int(chars, 2)


def row_string(bitmap: int, n: int) -> str:
    """``'0'``/``'1'`` per row, index = row."""
    return bin(bitmap)[:1:-1].ljust(n, "0")


def bitmap_rows(bitmap: int) -> list[int]:
    """The set rows of a bitmap, ascending."""
    return [m.start() for m in _ONE.finditer(bin(bitmap)[:1:-1])]


def as_bitmap(posting: Posting, n: int) -> int:
    return posting if isinstance(posting, int) else rows_to_bitmap(posting, n)


class Walk:
    """A filtered result laid out in one sort order: ``'1'`` per matching position."""

    __slots__ = ("chars", "_bits")

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self._bits: int | None = None

    def bits(self) -> int:
        """The same as an int (bit ``p`` = position ``p``), for popcounts."""
        if self._bits is None:
            self._bits = int(self.chars[::-1], 2)
        return self._bits


def positions(walk: Walk, total: int, idx: int, limit: int | None) -> Iterator[int]:
    """Positions of the ``'1'`` characters number ``idx`` .. ``idx+limit-1``."""
    chars = walk.chars
    if idx >= total:
        return iter(())
    want = total - idx if limit is None else min(limit, total - idx)
    if idx == 0:
        start = 0
    else:
        # Binary search the position of the idx-th one with popcounts.
        bits = walk.bits()
        lo, hi = 0, len(chars)
        while lo < hi:
            mid = (lo + hi) // 2
            if (bits & ((1 << mid) - 1)).bit_count() >= idx + 1:
                hi = mid
            else:
                lo = mid + 1
        start = lo - 1
    return (m.start() for m in itertools.islice(_ONE.finditer(chars, start), want))
