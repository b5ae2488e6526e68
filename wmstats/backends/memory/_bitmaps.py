"""Row sets of a memory snapshot: bitmaps (Python ints, bit ``r`` for row ``r``),
small sorted arrays of rows (:data:`Posting`), a filtered result laid out in
one sort order (:class:`Walk`), paged with popcounts; and the per-row values
themselves (:class:`Rows`), copied a chunk at a time on a write.
"""

from __future__ import annotations

import collections
import itertools
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, Generic, TypeAlias, TypeVar

__all__ = ["Posting", "rows_to_bitmap", "row_string", "bitmap_rows", "as_bitmap", "Walk",
           "positions", "Rows"]

_ONE: Final = re.compile("1")
T = TypeVar("T")
_SHIFT: Final = 10
_CHUNK: Final = 1 << _SHIFT
_MASK: Final = _CHUNK - 1
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


class Rows(Generic[T]):
    """An immutable sequence of one value per row, in chunks of 1,024 rows, so that a
    copy with a few rows replaced (:meth:`replaced`) shares every other chunk: it costs
    a chunk per changed row plus a pointer per chunk, not a pointer per row."""

    __slots__ = ("_chunks", "_n")

    def __init__(self, values: Iterable[T] = ()) -> None:
        items = list(values)
        self._n = len(items)
        self._chunks: list[list[T]] = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, row: int) -> T:
        if row < 0:
            row += self._n
            if row < 0:
                raise IndexError("row out of range")
        return self._chunks[row >> _SHIFT][row & _MASK]

    def __iter__(self) -> Iterator[T]:
        return itertools.chain.from_iterable(self._chunks)

    def span(self, start: int, stop: int) -> list[T]:
        """The values of rows ``start`` .. ``stop - 1`` (within range)."""
        if not 0 <= start <= stop <= self._n:
            raise IndexError(f"rows {start}..{stop} out of range")
        out: list[T] = []
        while start < stop:
            at, offset = start >> _SHIFT, start & _MASK
            end = min(stop - start + offset, _CHUNK)
            out += self._chunks[at][offset:end]
            start += end - offset
        return out

    def replaced(self, values: Mapping[int, T]) -> Rows[T]:
        """A copy with ``values`` (row -> value) in place of the rows' values."""
        chunks = list(self._chunks)
        copied: set[int] = set()
        for row, value in values.items():
            if not 0 <= row < self._n:
                raise IndexError(f"row {row} out of range")
            at = row >> _SHIFT
            if at not in copied:
                chunks[at] = list(chunks[at])
                copied.add(at)
            chunks[at][row & _MASK] = value
        made: Rows[T] = Rows.__new__(Rows)
        made._chunks = chunks
        made._n = self._n
        return made
