"""The in-memory store (the default backend, ``memory://``).

Layout of one snapshot (immutable once built, swapped atomically on every
write):

* the :class:`~wmstats.schema.Workflow` records in a list sorted by
  ``RequestName`` (so a row number is also the rank in the default order), their
  strings and string tuples interned so that statuses, campaigns, sites... are
  stored once;
* every other record of a bundle packed into one positional JSON blob per
  workflow (:mod:`wmstats.backends.codec`, zlib-compressed by default), decoded
  only by :meth:`MemoryStore.get_many`;
* per workflow, its :class:`~wmstats.schema.WorkflowSite` counters summed per
  value of each WorkflowSite field an aggregate groups by (``Site``, ``Agent``:
  see :data:`wmstats.aggregates.AGGREGATES`) in a sparse integer array;
* built lazily and cached per snapshot: per field inverted indexes
  (value -> bitmap of rows, a Python ``int``, or a small array of rows), sort
  orders per sort spec, and the unfiltered aggregates and distinct counts.

A filtered query ANDs/ORs bitmaps (no scan of the records), counts with
``int.bit_count`` and picks the page's rows in sort order without touching the
rest; glob and regex filters test each *distinct* value of the field once.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import operator
import re
import threading
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final, TypeAlias

from wmstats.aggregates import AGGREGATES, BY_KEY
from wmstats.backends.codec import decode_bundle, encode_parts
from wmstats.query import (
    RANGE_OPS,
    SORT_SEPARATOR,
    Filter,
    Page,
    Query,
    QueryError,
    Scalar,
    field_specs,
    make_summary,
)
from wmstats.schema import COUNTER_FIELDS, Agent, Summary, Workflow, WorkflowBundle
from wmstats.store import Store

__all__ = ["MemoryStore"]

_N_COUNTERS: Final = len(COUNTER_FIELDS)
_COUNTERS: Final[Callable[[Any], tuple[int, ...]]] = operator.attrgetter(*COUNTER_FIELDS)
_GETTERS: Final[tuple[Callable[[Any], int], ...]] = tuple(
    operator.attrgetter(name) for name in COUNTER_FIELDS)
_ONE: Final = re.compile("1")
#: Results at most this large are sorted directly instead of walking a sort order.
_SMALL: Final = 2048
#: Sort orders (and filtered results laid out in one) kept per snapshot.
_MAX_ORDERS: Final = 8
#: Filter results kept per snapshot.
_MAX_MATCHES: Final = 64
#: Filtered aggregates of fields with at most this many values are answered from
#: the field's index (bitmap intersections) instead of a pass over the rows.
_FEW_VALUES: Final = 64
_STRING_FIELDS: Final = tuple(
    name for name, spec in field_specs().items() if spec.kind == "str")

SortSpec: TypeAlias = "tuple[tuple[str, str], ...]"
#: A bitmap of rows, or a sorted array of rows.
Posting: TypeAlias = "int | array[int]"


# --------------------------------------------------------------------------- bitmaps


def _rows_to_bitmap(rows: Sequence[int], n: int) -> int:
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


def _row_string(bitmap: int, n: int) -> str:
    """``'0'``/``'1'`` per row, index = row."""
    return bin(bitmap)[:1:-1].ljust(n, "0")


def _bitmap_rows(bitmap: int) -> list[int]:
    """The set rows of a bitmap, ascending."""
    return [m.start() for m in _ONE.finditer(bin(bitmap)[:1:-1])]


def _as_bitmap(posting: Posting, n: int) -> int:
    return posting if isinstance(posting, int) else _rows_to_bitmap(posting, n)


class _Walk:
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


def _positions(walk: _Walk, total: int, idx: int, limit: int | None) -> Iterator[int]:
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


# --------------------------------------------------------------------------- snapshot


class _Order:
    """Rows in one sort order, with the lazily built helpers that use it."""

    __slots__ = ("rows", "kind", "_rank", "_getter", "values")

    def __init__(self, rows: Sequence[int], kind: str) -> None:
        self.rows = rows
        #: "asc" (row order), "desc" (reverse row order) or "other".
        self.kind = kind
        self._rank: array[int] | None = None
        self._getter: Callable[[str], tuple[str, ...]] | None = None
        #: For single-field orders: the field's sort values in this order.
        self.values: list[Any] | None = None

    def rank(self) -> array[int]:
        if self._rank is None:
            rank = array("i", bytes(4 * len(self.rows)))
            for pos, row in enumerate(self.rows):
                rank[row] = pos
            self._rank = rank
        return self._rank

    def permute(self, row_chars: str) -> str:
        """A row-indexed string rearranged into this order."""
        if self.kind == "asc":
            return row_chars
        if self.kind == "desc":
            return row_chars[::-1]
        if self._getter is None:
            self._getter = operator.itemgetter(*self.rows)
        assert self._getter is not None
        return "".join(self._getter(row_chars))


class _Snapshot:
    """One immutable snapshot and its lazily built indexes."""

    def __init__(self, sid: str, workflows: list[Workflow], blobs: list[bytes],
                 sums: list[Sequence[int] | None], agents: dict[str, Agent],
                 vocab: list[str], vocab_ids: dict[str, int], sum_fields: tuple[str, ...],
                 names: list[str] | None = None) -> None:
        self.sid = sid
        self.workflows = workflows
        self.names = [w.RequestName for w in workflows] if names is None else names
        self.blobs = blobs
        #: Per row: sparse [kind*2**31 + id, mask, non-zero counters...] of the sums per
        #: site, per agent... (see _encode_sums).
        self.sums = sums
        self.agents = agents
        #: Site and agent names by id; append-only, shared with later snapshots.
        self.vocab = vocab
        self.vocab_ids = vocab_ids
        #: The WorkflowSite fields summed per value (a sum's kind is the index).
        self.sum_fields = sum_fields
        self.n = len(workflows)
        self._lock = threading.RLock()
        self._postings: dict[str, dict[Any, Posting]] = {}
        #: postings as bitmaps, for the fields of filtered aggregates with few values
        self._bitmaps: dict[str, dict[Any, int]] = {}
        self._columns: list[list[int]] | None = None
        self._orders: collections.OrderedDict[SortSpec, _Order] = collections.OrderedDict()
        self._aggregates: dict[str, list[Summary]] = {}
        self._agg_state: dict[str, _AggState] = {}
        self._distinct: dict[str, list[tuple[Scalar, int]]] = {}
        #: Recent filter results (bitmaps) and their layouts in a sort order.
        self._matches: collections.OrderedDict[tuple[Filter, ...], int] = \
            collections.OrderedDict()
        self._walks: collections.OrderedDict[tuple[tuple[Filter, ...], SortSpec], _Walk] = \
            collections.OrderedDict()

    # ------------------------------------------------------------------ indexes

    def postings(self, field: str) -> dict[Any, Posting]:
        with self._lock:
            found = self._postings.get(field)
            if found is not None:
                return found
            groups: dict[Any, list[int]] = {}
            get = operator.attrgetter(field)
            if field_specs()[field].many:
                for row, values in enumerate(map(get, self.workflows)):
                    for value in (set(values) if len(values) > 1 else values):
                        groups.setdefault(value, []).append(row)
            else:
                for row, value in enumerate(map(get, self.workflows)):
                    groups.setdefault(value, []).append(row)
            threshold = max(64, self.n // 32)
            built: dict[Any, Posting] = {
                value: _rows_to_bitmap(rows, self.n) if len(rows) >= threshold
                else array("i", rows)
                for value, rows in groups.items()
            }
            self._postings[field] = built
            return built

    def order(self, spec: SortSpec) -> _Order:
        with self._lock:
            found = self._orders.get(spec)
            if found is not None:
                self._orders.move_to_end(spec)
                return found
            built = self._build_order(spec)
            self._orders[spec] = built
            while len(self._orders) > _MAX_ORDERS:
                self._orders.popitem(last=False)
            return built

    def _build_order(self, spec: SortSpec) -> _Order:
        n = self.n
        first, direction = spec[0]
        if first == "RequestName":
            if direction == "asc":
                return _Order(range(n), "asc")
            return _Order(range(n - 1, -1, -1), "desc")
        if all(direction == "desc" for _name, direction in spec):
            # Exactly the reverse of the all-ascending order: reuse it.
            ascending = self.order(tuple((name, "asc") for name, _direction in spec))
            return _Order(array("i", reversed(ascending.rows)), "other")
        rows = list(range(n))
        first_column: list[Any] = []
        for name, direction in reversed(spec):
            if name == "RequestName":
                rows = list(range(n)) if direction == "asc" else list(range(n - 1, -1, -1))
                continue
            first_column = self._sort_column(name)
            rows.sort(key=first_column.__getitem__, reverse=direction == "desc")
        order = _Order(array("i", rows), "other")
        if spec == ((first, "asc"), ("RequestName", "asc")):
            # Kept for range filters on this field (bisect over the sorted values).
            order.values = [first_column[r] for r in rows]
        return order

    def _sort_column(self, name: str) -> list[Any]:
        get = operator.attrgetter(name)
        if field_specs()[name].many:
            return [SORT_SEPARATOR.join(v) for v in map(get, self.workflows)]
        return list(map(get, self.workflows))

    # ------------------------------------------------------------------ filters

    def match(self, filters: tuple[Filter, ...]) -> int | None:
        """The bitmap of rows matching every filter (``None``: no filter, all rows)."""
        if not filters:
            return None
        with self._lock:
            found = self._matches.get(filters)
            if found is not None:
                self._matches.move_to_end(filters)
                return found
        result: int | None = None
        for flt in filters:
            bitmap = self._filter_bitmap(flt)
            result = bitmap if result is None else result & bitmap
            if result == 0:
                break
        assert result is not None
        with self._lock:
            self._matches[filters] = result
            while len(self._matches) > _MAX_MATCHES:
                self._matches.popitem(last=False)
        return result

    def walk(self, filters: tuple[Filter, ...], spec: SortSpec, bitmap: int) -> _Walk:
        """The matches of ``filters`` (``bitmap``) laid out in the order ``spec``."""
        key = (filters, spec)
        with self._lock:
            found = self._walks.get(key)
            if found is not None:
                self._walks.move_to_end(key)
                return found
        walk = _Walk(self.order(spec).permute(_row_string(bitmap, self.n)))
        with self._lock:
            self._walks[key] = walk
            while len(self._walks) > _MAX_ORDERS:
                self._walks.popitem(last=False)
        return walk

    def _filter_bitmap(self, flt: Filter) -> int:
        n = self.n
        if flt.op in RANGE_OPS:
            return self._range_bitmap(flt)
        if flt.field == "RequestName":
            if flt.op == "eq":
                rows = []
                for value in flt.values:
                    row = bisect.bisect_left(self.names, value)
                    if row < n and self.names[row] == value:
                        rows.append(row)
                return _rows_to_bitmap(sorted(set(rows)), n)
            match = flt.matcher()
            return _rows_to_bitmap(
                list(itertools.compress(range(n), map(match, self.names))), n)
        postings = self.postings(flt.field)
        if flt.op == "eq":
            keys: Iterable[Any] = [v for v in flt.values if v in postings]
        else:
            keys = filter(flt.matcher(), postings)
        bitmap = 0
        small: list[int] = []
        for key in keys:
            posting = postings[key]
            if isinstance(posting, int):
                bitmap |= posting
            else:
                small.extend(posting)
        if small:
            bitmap |= _rows_to_bitmap(small, n)
        return bitmap

    def _range_bitmap(self, flt: Filter) -> int:
        order = self.order(((flt.field, "asc"), ("RequestName", "asc")))
        values = order.values
        assert values is not None
        bound = flt.values[0]
        lo, hi = 0, self.n
        if flt.op == "gt":
            lo = bisect.bisect_right(values, bound)
        elif flt.op == "ge":
            lo = bisect.bisect_left(values, bound)
        elif flt.op == "lt":
            hi = bisect.bisect_left(values, bound)
        else:
            hi = bisect.bisect_right(values, bound)
        if lo >= hi:
            return 0
        return _rows_to_bitmap(order.rows[lo:hi], self.n)

    # ------------------------------------------------------------------ query

    def select(self, query: Query) -> tuple[Iterator[int], int]:
        """The rows of the query's page, in order, and the total match count."""
        n = self.n
        spec = query.sort_spec()
        bitmap = self.match(query.filters)
        total = n if bitmap is None else bitmap.bit_count()
        idx, limit = query.idx, query.limit
        if limit == 0 or idx >= total:
            return iter(()), total
        end = None if limit is None else idx + limit
        if bitmap is None:
            return iter(self.order(spec).rows[idx:end]), total
        if total <= _SMALL:
            rows = _bitmap_rows(bitmap)
            first, direction = spec[0]
            if first == "RequestName":
                if direction == "desc":
                    rows.reverse()
            else:
                rows.sort(key=self.order(spec).rank().__getitem__)
            return iter(rows[idx:end]), total
        rows_in_order = self.order(spec).rows
        walk = self.walk(query.filters, spec, bitmap)
        return (rows_in_order[p] for p in _positions(walk, total, idx, limit)), total

    # ------------------------------------------------------------------ counts

    def distinct(self, field: str, query: Query | None) -> list[tuple[Scalar, int]]:
        filters = () if query is None else query.filters
        if not filters:
            # Computed outside the lock (other readers go on); cached per snapshot.
            found = self._distinct.get(field)
            if found is None:
                found = self._distinct.setdefault(field, self._count_values(field, None))
            return found
        return self._count_values(field, self.match(filters))

    def _count_values(self, field: str, bitmap: int | None) -> list[tuple[Scalar, int]]:
        if field == "RequestName":
            names: Iterable[str] = (self.names if bitmap is None
                                    else (self.names[r] for r in _bitmap_rows(bitmap)))
            return [(name, 1) for name in names]
        if bitmap == 0:
            return []
        postings = self.postings(field)
        counts: list[tuple[Scalar, int]] = []
        if bitmap is None:
            for value, posting in postings.items():
                counts.append((value, posting.bit_count() if isinstance(posting, int)
                               else len(posting)))
        elif len(postings) <= 64:
            for value, posting in postings.items():
                count = (_as_bitmap(posting, self.n) & bitmap).bit_count()
                if count:
                    counts.append((value, count))
        else:
            tally: dict[Any, int] = {}
            get = operator.attrgetter(field)
            many = field_specs()[field].many
            for row in _bitmap_rows(bitmap):
                value = get(self.workflows[row])
                for v in (set(value) if many else (value,)):
                    tally[v] = tally.get(v, 0) + 1
            counts = list(tally.items())
        counts.sort(key=operator.itemgetter(0))
        return counts

    def aggregate(self, by: str, query: Query | None) -> list[Summary]:
        filters = () if query is None else query.filters
        if not filters:
            # Computed outside the lock (other readers go on); cached per snapshot,
            # and carried over to the next snapshot by MemoryStore.apply.
            found = self._aggregates.get(by)
            if found is None:
                state = self._agg_state.get(by)
                if state is None:
                    state = _AggState()
                    state.add(by, self.items(range(self.n)), self.vocab, self.sum_fields, 1)
                    state = self._agg_state.setdefault(by, state)
                found = self._aggregates.setdefault(by, state.summaries(by))
            return found
        bitmap = self.match(filters)
        if bitmap is not None and bitmap.bit_count() == self.n:
            return self.aggregate(by, None)  # every row matches: the cached answer
        if not BY_KEY[by].sums_sites and bitmap:
            if len(self.postings(BY_KEY[by].field)) <= _FEW_VALUES:
                return self._aggregate_few(by, bitmap)
        state = _AggState()
        state.add(by, self.items(_bitmap_rows(bitmap) if bitmap else []), self.vocab,
                  self.sum_fields, 1)
        return state.summaries(by)

    def bitmaps(self, field: str) -> dict[Any, int]:
        """The postings of a field as bitmaps (kept per snapshot: for fields with
        few values, at most ``n / 8`` bytes each)."""
        with self._lock:
            found = self._bitmaps.get(field)
        if found is None:
            n = self.n
            found = {value: _as_bitmap(posting, n)
                     for value, posting in self.postings(field).items()}
            with self._lock:
                found = self._bitmaps.setdefault(field, found)
        return found

    def counter_columns(self) -> list[list[int]]:
        """Per counter of :data:`COUNTER_FIELDS`, its value in each row (built once
        per snapshot, when a filtered aggregate first needs it)."""
        with self._lock:
            found = self._columns
        if found is None:
            found = [list(map(get, self.workflows)) for get in _GETTERS]
            with self._lock:
                if self._columns is None:
                    self._columns = found
                found = self._columns
        return found

    def _aggregate_few(self, by: str, bitmap: int) -> list[Summary]:
        """A filtered aggregate of a field with few values (status, type, team...)
        from its index: workflows by status are bitmap intersections counted with
        ``int.bit_count``; counters are summed over :meth:`counter_columns`."""
        columns = self.counter_columns()
        statuses = list(self.bitmaps("RequestStatus").items())
        values = self.bitmaps(BY_KEY[by].field)
        out = []
        for value in sorted(values):
            rows = values[value] & bitmap
            if not rows:
                continue
            by_status = {}
            for status, status_rows in statuses:
                count = (rows & status_rows).bit_count()
                if count:
                    by_status[status] = count
            # One tuple per counter column, not one per row: fast, and no garbage
            # collection passes (which, over the heap of a big snapshot, take a second).
            picked = _bitmap_rows(rows)
            if len(picked) == 1:
                sums = [column[picked[0]] for column in columns]
            else:
                pick = operator.itemgetter(*picked)
                sums = [sum(pick(column)) for column in columns]
            out.append(make_summary(by, value, sums, by_status))
        return out

    def items(self, rows: Iterable[int]) -> Iterator[tuple[Workflow, Sequence[int] | None]]:
        """(workflow, packed site/agent sums) of some rows."""
        workflows, sums = self.workflows, self.sums
        return ((workflows[row], sums[row]) for row in rows)


class _AggState:
    """Running totals of one aggregation: counters and workflows by status, per value."""

    __slots__ = ("counters", "statuses")

    def __init__(self) -> None:
        self.counters: dict[str, list[int]] = {}
        self.statuses: dict[str, dict[str, int]] = {}

    def copy(self) -> _AggState:
        other = _AggState()
        other.counters = {k: list(v) for k, v in self.counters.items()}
        other.statuses = {k: dict(v) for k, v in self.statuses.items()}
        return other

    def add(self, by: str, items: Iterable[tuple[Workflow, Sequence[int] | None]],
            vocab: list[str], sum_fields: tuple[str, ...], sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) the contributions of some workflows.

        :param sum_fields: the snapshot's :attr:`_Snapshot.sum_fields`.
        """
        agg = BY_KEY[by]
        get = operator.attrgetter(agg.field)
        scalar = not field_specs()[agg.field].many
        counters, statuses = self.counters, self.statuses
        from_sums = agg.site_field is not None
        kind = sum_fields.index(agg.site_field) if agg.site_field is not None else -1
        zero = [0] * _N_COUNTERS
        for wf, packed in items:
            value = get(wf)
            values: tuple[Any, ...] = (
                (value,) if scalar else (tuple(set(value)) if len(value) > 1 else value))
            status = wf.RequestStatus
            for v in values:
                by_status = statuses.get(v)
                if by_status is None:
                    by_status = statuses[v] = {}
                    counters[v] = list(zero)
                left = by_status.get(status, 0) + sign
                if left:
                    by_status[status] = left
                else:
                    del by_status[status]
                    if not by_status:
                        del statuses[v]
                        del counters[v]
            if from_sums:
                if packed is None:
                    continue
                for key_kind, key, sums in _decode_sums(packed):
                    name = vocab[key]
                    if key_kind == kind and name in values and name in counters:
                        acc = counters[name]
                        for i, count in enumerate(sums):
                            if count:
                                acc[i] += sign * count
            else:
                own = _COUNTERS(wf)
                for v in values:
                    totals = counters.get(v)
                    if totals is not None:
                        for i, count in enumerate(own):
                            if count:
                                totals[i] += sign * count

    def summaries(self, by: str) -> list[Summary]:
        return [make_summary(by, v, self.counters[v], self.statuses[v])
                for v in sorted(self.statuses)]


# --------------------------------------------------------------------------- encoding


def _sum_fields() -> tuple[str, ...]:
    """The :class:`~wmstats.schema.WorkflowSite` fields whose values some aggregate
    sums counters over (``Site``, ``Agent``), from the aggregate table."""
    return tuple(dict.fromkeys(a.site_field for a in AGGREGATES if a.site_field is not None))


def _encode_sums(bundle: WorkflowBundle, vocab_ids: dict[str, int], vocab: list[str],
                 fields: tuple[str, ...]) -> Sequence[int] | None:
    """Per value of each of ``fields``, a bundle's WorkflowSite counters summed,
    sparsely packed.

    Each entry: ``kind << 31 | id`` (kind: the index in ``fields``; id: the value's
    in ``vocab``), a bit mask of the non-zero counters, then those counters.
    """
    if not bundle.sites or not fields:
        return None
    getters = [operator.attrgetter(name) for name in fields]
    sums: dict[tuple[int, str], list[int]] = {}
    for ws in bundle.sites:
        counts = _COUNTERS(ws)
        for key in enumerate(get(ws) for get in getters):
            acc = sums.get(key)
            sums[key] = list(counts) if acc is None else list(map(operator.add, acc, counts))
    packed: list[int] = []
    for (kind, name), totals in sums.items():
        ident = vocab_ids.get(name)
        if ident is None:
            ident = vocab_ids[name] = len(vocab)
            vocab.append(name)
        mask = 0
        nonzero = []
        for i, count in enumerate(totals):
            if count:
                mask |= 1 << i
                nonzero.append(count)
        packed.extend((kind << 31 | ident, mask, *nonzero))
    for typecode in ("i", "q"):
        try:
            return array(typecode, packed)
        except OverflowError:
            continue
    return tuple(packed)


def _decode_sums(packed: Sequence[int]) -> Iterator[tuple[int, int, list[int]]]:
    i = 0
    end = len(packed)
    while i < end:
        head, mask = packed[i], packed[i + 1]
        i += 2
        counts = [0] * _N_COUNTERS
        j = 0
        while mask:
            if mask & 1:
                counts[j] = packed[i]
                i += 1
            mask >>= 1
            j += 1
        yield head >> 31, head & 0x7FFFFFFF, counts


class _Interner:
    """Share equal strings and string tuples between records."""

    def __init__(self) -> None:
        self.table: dict[Any, Any] = {}

    def workflow(self, wf: Workflow) -> Workflow:
        table = self.table
        changes: dict[str, Any] = {}
        for name in _STRING_FIELDS:
            value = getattr(wf, name)
            shared = table.setdefault(value, value)
            if shared is not value:
                changes[name] = shared
        for name in _TUPLE_FIELDS:
            value = getattr(wf, name)
            if not value:
                continue
            shared = table.get(value)
            if shared is None:
                shared = tuple(table.setdefault(v, v) for v in value)
                table[shared] = shared
            if shared is not value:
                changes[name] = shared
        if not changes:
            return wf
        # Frozen attrs instance: replacing a value by an equal, shared one is not
        # observable, and much cheaper than attrs.evolve.
        for name, value in changes.items():
            object.__setattr__(wf, name, value)
        return wf


_TUPLE_FIELDS: Final = tuple(
    name for name, spec in field_specs().items() if spec.kind == "str" and spec.many)


class _Entry:
    __slots__ = ("workflow", "blob", "sums")

    def __init__(self, workflow: Workflow, blob: bytes, sums: Sequence[int] | None) -> None:
        self.workflow = workflow
        self.blob = blob
        self.sums = sums


# --------------------------------------------------------------------------- the store


class MemoryStore(Store):
    """Workflows and agents held in this process (the default backend).

    Safe for any number of reader threads while one thread writes.

    :param compress: zlib-compress the per-workflow blobs (smaller, slower writes).
    :param intern: share equal strings between workflow records.
    """

    backend: ClassVar[str] = "memory"

    def __init__(self, *, compress: bool = True, intern: bool = True) -> None:
        self._compress = compress
        self._intern = intern
        self._write_lock = threading.Lock()
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = 0
        self._interner = _Interner()
        #: read from the aggregate table once, when the store is made
        self._sum_fields = _sum_fields()
        self._snap = self._build_snapshot({}, {}, [], {})

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    def _encode(self, bundle: WorkflowBundle, vocab_ids: dict[str, int],
                vocab: list[str]) -> _Entry:
        workflow = bundle.workflow
        if self._intern:
            workflow = self._interner.workflow(workflow)
        return _Entry(workflow, encode_parts(bundle, compress=self._compress),
                      _encode_sums(bundle, vocab_ids, vocab, self._sum_fields))

    def _build_snapshot(self, entries: dict[str, _Entry], agents: dict[str, Agent],
                        vocab: list[str], vocab_ids: dict[str, int]) -> _Snapshot:
        names = sorted(entries)
        ordered = [entries[name] for name in names]
        return _Snapshot(self._next_id(), [e.workflow for e in ordered],
                         [e.blob for e in ordered], [e.sums for e in ordered],
                         agents, vocab, vocab_ids, self._sum_fields)

    # ------------------------------------------------------------------ writes

    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        with self._write_lock:
            saved = self._interner
            self._interner = _Interner()
            try:
                vocab: list[str] = []
                vocab_ids: dict[str, int] = {}
                entries = {b.workflow.RequestName: self._encode(b, vocab_ids, vocab)
                           for b in bundles}
                agent_map = {a.AgentURL: a for a in agents}
            except BaseException:
                self._interner = saved
                raise
            snap = self._build_snapshot(entries, agent_map, vocab, vocab_ids)
            self._snap = snap
            return snap.sid

    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        with self._write_lock:
            old = self._snap
            # The vocabulary is append-only: the old snapshot ignores new ids.
            vocab = old.vocab
            vocab_ids = old.vocab_ids
            changed: dict[str, _Entry | None] = {}
            for bundle in upserts:
                changed[bundle.workflow.RequestName] = self._encode(bundle, vocab_ids, vocab)
            for name in deletes:
                changed[name] = None
            agent_map = dict(old.agents)
            for agent in agents:
                agent_map[agent.AgentURL] = agent
            for url in deleted_agents:
                agent_map.pop(url, None)
            names, workflows, blobs, sums = old.names, old.workflows, old.blobs, old.sums
            if changed:
                # Rows are sorted by name: keep the unchanged ones in order, append
                # the new entries and merge (two sorted runs: a linear timsort).
                keep = [row for row, name in enumerate(names) if name not in changed]
                added = sorted(((name, entry) for name, entry in changed.items()
                                if entry is not None), key=operator.itemgetter(0))
                names = [names[r] for r in keep] + [name for name, _ in added]
                workflows = [workflows[r] for r in keep] + [e.workflow for _, e in added]
                blobs = [blobs[r] for r in keep] + [e.blob for _, e in added]
                sums = [sums[r] for r in keep] + [e.sums for _, e in added]
                if added:
                    order = sorted(range(len(names)), key=names.__getitem__)
                    names = [names[r] for r in order]
                    workflows = [workflows[r] for r in order]
                    blobs = [blobs[r] for r in order]
                    sums = [sums[r] for r in order]
            snap = _Snapshot(self._next_id(), workflows, blobs, sums, agent_map, vocab,
                             vocab_ids, self._sum_fields, names)
            # Carry the unfiltered aggregates over: take away the old versions of the
            # changed workflows, add the new ones.
            if changed:
                gone = [row for row in (bisect.bisect_left(old.names, name)
                                        for name in changed)
                        if row < old.n and old.names[row] in changed]
                new_items = [(e.workflow, e.sums) for e in changed.values() if e is not None]
            for by, state in list(old._agg_state.items()):
                if changed:
                    state = state.copy()
                    state.add(by, old.items(gone), vocab, self._sum_fields, -1)
                    state.add(by, new_items, vocab, self._sum_fields, 1)
                snap._agg_state[by] = state
            self._snap = snap
            return snap.sid

    # ------------------------------------------------------------------ reads

    @property
    def snapshot_id(self) -> str:
        return self._snap.sid

    def __len__(self) -> int:
        return self._snap.n

    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        snap = self._snap
        found: dict[str, WorkflowBundle] = {}
        for name in names:
            row = bisect.bisect_left(snap.names, name)
            if row < snap.n and snap.names[row] == name:
                found[name] = decode_bundle(snap.workflows[row], snap.blobs[row])
        return found

    def query(self, query: Query = Query()) -> Page:
        snap = self._snap
        rows, total = snap.select(query)
        workflows = snap.workflows
        return Page(tuple(workflows[r] for r in rows), total, query.idx, query.limit,
                    snap.sid, query.fields)

    def stream(self, query: Query = Query(), batch_size: int = 1000) -> Iterator[Workflow]:
        """Every record of ``query`` from one snapshot (writes do not disturb it)."""
        snap = self._snap
        rows, _total = snap.select(query)
        workflows = snap.workflows
        return (workflows[r] for r in rows)

    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        spec = field_specs().get(field)
        if spec is None or not spec.filterable:
            raise QueryError(field, "unknown field" if spec is None
                             else "field cannot be counted")
        return list(self._snap.distinct(field, query))

    def aggregate(self, by: str, query: Query | None = None) -> list[Summary]:
        self.aggregate_of(by)
        return list(self._snap.aggregate(by, query))

    def summary(self, by: str, value: str, query: Query | None = None) -> Summary:
        if query is None or not query.filters:
            self.aggregate_of(by)
            items = self._snap.aggregate(by, None)
            pos = bisect.bisect_left([s.Value for s in items], value)
            if pos < len(items) and items[pos].Value == value:
                return items[pos]
            return make_summary(by, value, [0] * _N_COUNTERS, {})
        return super().summary(by, value, query)

    def get_agents(self, urls: Iterable[str] | None = None) -> list[Agent]:
        agents = self._snap.agents
        if urls is None:
            return [agents[url] for url in sorted(agents)]
        return [agents[url] for url in sorted(set(urls)) if url in agents]
