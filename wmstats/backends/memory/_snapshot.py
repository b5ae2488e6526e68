"""One immutable snapshot of the memory store and its lazily built indexes:
inverted indexes per field, sort orders, filter results, cached aggregates and
distinct counts.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import operator
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, TypeAlias

from wmstats.aggregates import BY_KEY
from wmstats.backends.codec import PartsDictionary
from wmstats.backends.memory._bitmaps import (
    Posting,
    Rows,
    Walk,
    as_bitmap,
    bitmap_rows,
    positions,
    row_string,
    rows_to_bitmap,
)
from wmstats.backends.memory._sums import AggState
from wmstats.query import (
    RANGE_OPS,
    SORT_SEPARATOR,
    Filter,
    Query,
    Scalar,
    field_specs,
    make_summary,
)
from wmstats.schema import COUNTER_FIELDS, Agent, Summary, Workflow

__all__ = ["SMALL", "SortSpec", "Order", "Snapshot"]

_GETTERS: Final[tuple[Callable[[Any], int], ...]] = tuple(
    operator.attrgetter(name) for name in COUNTER_FIELDS)
#: Results at most this large are sorted directly instead of walking a sort order.
SMALL: Final = 2048
#: Sort orders (and filtered results laid out in one) kept per snapshot.
_MAX_ORDERS: Final = 8
#: Filter results kept per snapshot.
_MAX_MATCHES: Final = 64
#: Filtered aggregates of fields with at most this many values are answered from
#: the field's index (bitmap intersections) instead of a pass over the rows.
_FEW_VALUES: Final = 64

SortSpec: TypeAlias = "tuple[tuple[str, str], ...]"


class Order:
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


class Snapshot:
    """One immutable snapshot and its lazily built indexes."""

    def __init__(self, sid: str, workflows: Rows[Workflow], blobs: Rows[bytes],
                 sums: Rows[Sequence[int] | None], agents: dict[str, Agent],
                 vocab: list[str], vocab_ids: dict[str, int], sum_fields: tuple[str, ...],
                 names: list[str], lines: Rows[bytes],
                 dictionary: PartsDictionary | None = None) -> None:
        self.sid = sid
        #: Per row (rows sorted by name): the workflow, its name, its JSON text
        #: (encoded once when it was written), its other records (a blob) and its
        #: packed sums.  Writes share the chunks of :class:`Rows` they do not change.
        self.workflows = workflows
        self.names = names
        self.lines = lines
        self.blobs = blobs
        #: The dictionary the blobs were compressed with (``None``: none); blobs
        #: made with it are read with it.
        self.dictionary = dictionary
        #: Per row: sparse [kind, id, mask (2 items), non-zero counters...] of the sums
        #: per site, per agent... (see encode_sums).
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
        self._orders: collections.OrderedDict[SortSpec, Order] = collections.OrderedDict()
        self._aggregates: dict[str, list[Summary]] = {}
        self.agg_state: dict[str, AggState] = {}
        self._distinct: dict[str, list[tuple[Scalar, int]]] = {}
        #: Recent filter results (bitmaps) and their layouts in a sort order.
        self._matches: collections.OrderedDict[tuple[Filter, ...], int] = \
            collections.OrderedDict()
        self._walks: collections.OrderedDict[tuple[tuple[Filter, ...], SortSpec], Walk] = \
            collections.OrderedDict()

    def carry_over(self, old: Snapshot, rows: Sequence[int]) -> None:
        """Take over ``old``'s indexes and cached results that the rewrite of
        ``rows`` left valid; patch the inverted indexes of the fields it changed.

        ``self`` must hold the same workflows in the same rows as ``old`` except at
        ``rows`` (an update in place: no workflow added or removed), so the cost is
        per changed row and field, not per row of the snapshot.  Whatever depends
        on a changed field (a sort order, a filter result, a distinct count) is left
        behind and rebuilt when next asked for.
        """
        assert self.n == old.n
        before, after = old.workflows, self.workflows
        changed = {name for name in field_specs()
                   if any(getattr(before[r], name) != getattr(after[r], name) for r in rows)}
        with old._lock:
            postings = dict(old._postings)
            bitmaps = dict(old._bitmaps)
            orders = list(old._orders.items())
            matches = list(old._matches.items())
            walks = list(old._walks.items())
            distinct = dict(old._distinct)
            columns = old._columns
        for field, index in postings.items():
            if field in changed:
                index = _patched(index, field, rows, before, after, self.n)
            self._postings[field] = index
        self._bitmaps = {f: b for f, b in bitmaps.items() if f not in changed}
        if not changed.intersection(COUNTER_FIELDS):
            self._columns = columns
        for spec, order in orders:
            if not changed.intersection(name for name, _ in spec):
                self._orders[spec] = order
        for filters, bitmap in matches:
            if not changed.intersection(f.field for f in filters):
                self._matches[filters] = bitmap
        for (filters, spec), walk in walks:
            if not changed.intersection(itertools.chain((f.field for f in filters),
                                                        (name for name, _ in spec))):
                self._walks[(filters, spec)] = walk
        self._distinct = {f: d for f, d in distinct.items() if f not in changed}

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
                value: rows_to_bitmap(rows, self.n) if len(rows) >= threshold
                else array("i", rows)
                for value, rows in groups.items()
            }
            self._postings[field] = built
            return built

    def order(self, spec: SortSpec) -> Order:
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

    def _build_order(self, spec: SortSpec) -> Order:
        n = self.n
        first, direction = spec[0]
        if first == "RequestName":
            if direction == "asc":
                return Order(range(n), "asc")
            return Order(range(n - 1, -1, -1), "desc")
        if all(direction == "desc" for _name, direction in spec):
            # Exactly the reverse of the all-ascending order: reuse it.
            ascending = self.order(tuple((name, "asc") for name, _direction in spec))
            return Order(array("i", reversed(ascending.rows)), "other")
        rows = list(range(n))
        first_column: list[Any] = []
        for name, direction in reversed(spec):
            if name == "RequestName":
                rows = list(range(n)) if direction == "asc" else list(range(n - 1, -1, -1))
                continue
            first_column = self._sort_column(name)
            rows.sort(key=first_column.__getitem__, reverse=direction == "desc")
        order = Order(array("i", rows), "other")
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

    def walk(self, filters: tuple[Filter, ...], spec: SortSpec, bitmap: int) -> Walk:
        """The matches of ``filters`` (``bitmap``) laid out in the order ``spec``."""
        key = (filters, spec)
        with self._lock:
            found = self._walks.get(key)
            if found is not None:
                self._walks.move_to_end(key)
                return found
        walk = Walk(self.order(spec).permute(row_string(bitmap, self.n)))
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
                return rows_to_bitmap(sorted(set(rows)), n)
            match = flt.matcher()
            return rows_to_bitmap(
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
            bitmap |= rows_to_bitmap(small, n)
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
        return rows_to_bitmap(order.rows[lo:hi], self.n)

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
        if total <= SMALL:
            rows = bitmap_rows(bitmap)
            first, direction = spec[0]
            if first == "RequestName":
                if direction == "desc":
                    rows.reverse()
            else:
                rows.sort(key=self.order(spec).rank().__getitem__)
            return iter(rows[idx:end]), total
        rows_in_order = self.order(spec).rows
        walk = self.walk(query.filters, spec, bitmap)
        return (rows_in_order[p] for p in positions(walk, total, idx, limit)), total

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
                                    else (self.names[r] for r in bitmap_rows(bitmap)))
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
                count = (as_bitmap(posting, self.n) & bitmap).bit_count()
                if count:
                    counts.append((value, count))
        else:
            tally: dict[Any, int] = {}
            get = operator.attrgetter(field)
            many = field_specs()[field].many
            for row in bitmap_rows(bitmap):
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
                state = self.agg_state.get(by)
                if state is None:
                    state = AggState()
                    state.add(by, self.items(range(self.n)), self.vocab, self.sum_fields, 1)
                    state = self.agg_state.setdefault(by, state)
                found = self._aggregates.setdefault(by, state.summaries(by))
            return found
        bitmap = self.match(filters)
        if bitmap is not None and bitmap.bit_count() == self.n:
            return self.aggregate(by, None)  # every row matches: the cached answer
        if not BY_KEY[by].sums_sites and bitmap:
            if len(self.postings(BY_KEY[by].field)) <= _FEW_VALUES:
                return self._aggregate_few(by, bitmap)
        state = AggState()
        state.add(by, self.items(bitmap_rows(bitmap) if bitmap else []), self.vocab,
                  self.sum_fields, 1)
        return state.summaries(by)

    def bitmaps(self, field: str) -> dict[Any, int]:
        """The postings of a field as bitmaps (kept per snapshot: for fields with
        few values, at most ``n / 8`` bytes each)."""
        with self._lock:
            found = self._bitmaps.get(field)
        if found is None:
            n = self.n
            found = {value: as_bitmap(posting, n)
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
            picked = bitmap_rows(rows)
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


def _patched(index: dict[Any, Posting], field: str, rows: Sequence[int],
             before: Rows[Workflow], after: Rows[Workflow], n: int) -> dict[Any, Posting]:
    """A copy of one field's inverted index with ``rows`` moved from their values in
    ``before`` to those in ``after`` (postings that empty are dropped)."""
    many = field_specs()[field].many
    get = operator.attrgetter(field)
    out = dict(index)
    for row in rows:
        old_value, new_value = get(before[row]), get(after[row])
        if old_value == new_value:
            continue
        old_keys = set(old_value) if many else {old_value}
        new_keys = set(new_value) if many else {new_value}
        for key in old_keys - new_keys:
            posting = out[key]
            if isinstance(posting, int):
                posting ^= 1 << row  # the row is in the old value's posting
                if posting:
                    out[key] = posting
                else:
                    del out[key]
            else:
                rest = array("i", posting)
                rest.pop(bisect.bisect_left(rest, row))
                if rest:
                    out[key] = rest
                else:
                    del out[key]
        for key in new_keys - old_keys:
            found = out.get(key)
            if found is None:
                out[key] = array("i", (row,))
            elif isinstance(found, int):
                out[key] = found | (1 << row)
            else:
                grown = array("i", found)
                grown.insert(bisect.bisect_left(grown, row), row)
                out[key] = grown
    return out
