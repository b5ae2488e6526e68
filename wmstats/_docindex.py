"""A compact map from document ids to small integers (12 bytes per document).

:class:`DocIndex` keeps, for every document a source has seen, which group it
counts in, without keeping the document id itself: the key is the id's 64-bit
hash, the value a 32-bit group number.  Most entries live in two sorted arrays
(8 + 4 bytes each); recent changes go to a small dict that is merged into the
arrays when it grows past a fraction of them, so a million documents take about
12 MB instead of the ~150 MB of a ``dict`` of id strings.

Two ids with the same 64-bit hash share an entry: with a million documents the
chance that any two collide is about 3 in 100 million (the price of not keeping
the ids).  Hashes are Python's own (:func:`hash` of the id string), so an index
lives in one process.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from typing import Final

__all__ = ["DocIndex"]

#: A value meaning "deleted" in the overlay.
_GONE: Final = -1
#: The overlay is merged into the arrays once it holds this many entries...
_MIN_OVERLAY: Final = 65_536


class DocIndex:
    """Document id -> non-negative ``int`` below 2**31, in about 12 bytes per entry."""

    __slots__ = ("_keys", "_values", "_overlay", "_size")

    def __init__(self) -> None:
        self._keys: array[int] = array("q")
        self._values: array[int] = array("i")
        #: hash -> value, or _GONE for a key deleted from the arrays
        self._overlay: dict[int, int] = {}
        self._size = 0

    @staticmethod
    def key(doc_id: str) -> int:
        """The 64-bit key of a document id."""
        return hash(doc_id)

    def __len__(self) -> int:
        return self._size

    def _base(self, key: int) -> int | None:
        keys = self._keys
        pos = bisect.bisect_left(keys, key)
        if pos < len(keys) and keys[pos] == key:
            return self._values[pos]
        return None

    def get(self, doc_id: str) -> int | None:
        """The value of ``doc_id``, or ``None``."""
        key = hash(doc_id)
        found = self._overlay.get(key)
        if found is not None:
            return None if found == _GONE else found
        return self._base(key)

    def set(self, doc_id: str, value: int) -> None:
        """Map ``doc_id`` to ``value`` (0 <= value < 2**31)."""
        if not 0 <= value < 2**31:
            raise ValueError(f"value out of range: {value}")
        key = hash(doc_id)
        old = self._overlay.get(key)
        if old is None:
            old = self._base(key)
        elif old == _GONE:
            old = None
        if old is None:
            self._size += 1
        self._overlay[key] = value
        self._maybe_merge()

    def delete(self, doc_id: str) -> int | None:
        """Remove ``doc_id``; returns its value, or ``None`` if it was not there."""
        key = hash(doc_id)
        found = self._overlay.get(key)
        if found == _GONE:
            return None
        base = self._base(key)
        if found is None:
            if base is None:
                return None
            found = base
        self._size -= 1
        if base is None:
            del self._overlay[key]
        else:
            self._overlay[key] = _GONE
        self._maybe_merge()
        return found

    def _maybe_merge(self) -> None:
        if len(self._overlay) >= max(_MIN_OVERLAY, len(self._keys) // 2):
            self.compact()

    def compact(self) -> None:
        """Merge the recent changes into the sorted arrays."""
        overlay = self._overlay
        if not overlay:
            return
        keys, values = self._keys, self._values
        new_keys: array[int] = array("q")
        new_values: array[int] = array("i")
        start = 0
        for key in sorted(overlay):
            pos = bisect.bisect_left(keys, key, start)
            new_keys.extend(keys[start:pos])
            new_values.extend(values[start:pos])
            start = pos
            if pos < len(keys) and keys[pos] == key:
                start = pos + 1  # replaced or deleted
            value = overlay[key]
            if value != _GONE:
                new_keys.append(key)
                new_values.append(value)
        new_keys.extend(keys[start:])
        new_values.extend(values[start:])
        self._keys, self._values = new_keys, new_values
        self._overlay = {}

    def values(self) -> Iterable[int]:
        """Every value (in no particular order)."""
        overlay = self._overlay
        for key, value in zip(self._keys, self._values):
            if key not in overlay:
                yield value
        for value in overlay.values():
            if value != _GONE:
                yield value

    def nbytes(self) -> int:
        """Bytes held by the arrays and (roughly) the overlay."""
        overlay = len(self._overlay)
        return (self._keys.buffer_info()[1] * self._keys.itemsize
                + self._values.buffer_info()[1] * self._values.itemsize
                + overlay * 100)
