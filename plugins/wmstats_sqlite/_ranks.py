"""Rank marks: the name at about every :data:`STEP`-th position of the name order
of one snapshot, so that a deep page of every workflow in name order starts its
walk of the name index at a mark instead of at the first entry.

sqlite walks an index entry by entry up to an ``OFFSET`` (about 54 ns an entry:
27 ms for ``idx=500000``).  With the marks, the page at ``idx`` is the page at
``idx - position of the mark`` of the names ``>=`` the mark (``<`` the next mark,
descending): a walk of at most a segment, whatever ``idx``.

Marks belong to one snapshot id (``meta.snapshot``, new on every write of any
process: a write by another process on the same file makes them stale, and they
are built again, :func:`build`).  A write by the store that holds them carries
them to its new snapshot (:meth:`RankMarks.moved`): an insert or delete changes
only the count of the segment its name falls in.  They are built again once a
segment holds more than :data:`_DRIFT` times :data:`STEP` names.
"""

from __future__ import annotations

import bisect
import itertools
import sqlite3
from collections.abc import Collection
from typing import Final

__all__ = ["STEP", "RankMarks", "build", "present"]

#: Names between two marks when they are built.
STEP: Final = 1024
#: A segment that grows beyond this many times :data:`STEP` names (inserts into
#: one part of the name order) has the marks built again.
_DRIFT: Final = 4


class RankMarks:
    """Marks of one snapshot: segment ``i`` holds the names from ``starts[i]`` up
    to the next start (segment 0 also every name before ``starts[0]``), and there
    are ``counts[i]`` of them.  Never changed once made (readers of other threads
    share it): :meth:`moved` makes a new one.

    :param step: the ``STEP`` it was built with (how far a segment may drift).
    """

    def __init__(self, snapshot: str, starts: list[str], counts: list[int], step: int) -> None:
        self.snapshot = snapshot
        self.starts = starts
        self.counts = counts
        self.step = step
        #: ``firsts[i]``: the position of the first name of segment ``i``; the last
        #: entry is how many names there are.
        self.firsts = [0, *itertools.accumulate(counts)]

    @property
    def total(self) -> int:
        """How many names the marks count."""
        return self.firsts[-1]

    def balanced(self) -> bool:
        """Whether no segment has drifted beyond :data:`_DRIFT` times the step."""
        return max(self.counts, default=0) <= _DRIFT * self.step

    def seek(self, idx: int, descending: bool) -> tuple[str | None, int]:
        """Where the walk to position ``idx`` (``0 <= idx < total``) of the order
        starts: a bound (``None``: none) and the offset from it.  Ascending, the
        bound is the segment's start (names ``>=`` it); descending, the next
        segment's start (names ``<`` it)."""
        position = self.total - 1 - idx if descending else idx
        segment = bisect.bisect_right(self.firsts, position) - 1
        if descending:
            if segment + 1 == len(self.starts):
                return None, idx
            return self.starts[segment + 1], self.firsts[segment + 1] - 1 - position
        if segment == 0:
            return None, idx
        return self.starts[segment], position - self.firsts[segment]

    def moved(self, snapshot: str, removed: Collection[str], added: Collection[str]
              ) -> RankMarks:
        """The marks of ``snapshot``: this snapshot without the names ``removed``
        (each one present here) and with the names ``added`` (each one absent
        here)."""
        counts = list(self.counts)
        for names, change in ((removed, -1), (added, 1)):
            for name in names:
                counts[max(0, bisect.bisect_right(self.starts, name) - 1)] += change
        return RankMarks(snapshot, self.starts, counts, self.step)


def build(con: sqlite3.Connection, snapshot: str, step: int = STEP) -> RankMarks:
    """The marks of the snapshot ``con`` reads (``snapshot`` is its id): one walk
    of the name index, a statement per ``step`` names."""
    starts: list[str] = []
    counts: list[int] = []
    found = con.execute("SELECT RequestName FROM workflow ORDER BY RequestName LIMIT 1"
                        ).fetchone()
    while found is not None:
        starts.append(found[0])
        found = con.execute("SELECT RequestName FROM workflow WHERE RequestName >= ? "
                            "ORDER BY RequestName LIMIT 1 OFFSET ?",
                            (starts[-1], step)).fetchone()
        if found is not None:
            counts.append(step)
    if starts:
        last: int = con.execute("SELECT COUNT(*) FROM workflow WHERE RequestName >= ?",
                                (starts[-1],)).fetchone()[0]
        counts.append(last)
    return RankMarks(snapshot, starts, counts, step)


def present(con: sqlite3.Connection, names: Collection[str], batch: int) -> set[str]:
    """Which of ``names`` are workflows of the snapshot ``con`` reads."""
    wanted = list(names)
    found: set[str] = set()
    for start in range(0, len(wanted), batch):
        chunk = wanted[start:start + batch]
        found.update(name for (name,) in con.execute(
            f"SELECT RequestName FROM workflow WHERE RequestName IN "
            f"({', '.join('?' for _ in chunk)})", chunk))
    return found
