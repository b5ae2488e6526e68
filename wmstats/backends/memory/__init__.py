"""The in-memory store (the default backend, ``memory://``).

Layout of one snapshot (immutable once built, swapped atomically on every
write):

* the :class:`~wmstats.schema.Workflow` records in a list sorted by
  ``RequestName`` (so a row number is also the rank in the default order), their
  strings and string tuples interned so that statuses, campaigns, sites... are
  stored once;
* each record as the JSON text a server writes (its line), encoded once per
  write; the values of :data:`~._held.HELD_FIELDS` (output datasets and LFN
  bases: long paths, each workflow's own) are held only there, and read back
  from it when read (:class:`~._held.HeldWorkflow`);
* every other record of a bundle packed into one positional JSON blob per
  workflow (:mod:`wmstats.backends.codec`), decoded only by
  :meth:`MemoryStore.get_many`; compressed by default, with a
  :class:`~wmstats.backends.codec.PartsDictionary` made from the first bundles of
  each :meth:`MemoryStore.replace` (or of the first :meth:`MemoryStore.apply`
  that has enough of them): ~2.15 kB a production-sized mock workflow instead of
  ~2.9 kB with zlib alone;
* per workflow, its :class:`~wmstats.schema.WorkflowSite` counters summed per
  value of each WorkflowSite field an aggregate groups by (``Site``, ``Agent``:
  see :data:`wmstats.aggregates.AGGREGATES`) in a sparse integer array;
* the job records beside the snapshot (``_jobs``: one compressed blob per
  workflow, swapped on every job write, keyed by the row's own name string);
* built lazily and cached per snapshot: per field inverted indexes
  (value -> bitmap of rows, a Python ``int``, or a small array of rows), sort
  orders per sort spec, and the unfiltered aggregates and distinct counts.

A filtered query ANDs/ORs bitmaps (no scan of the records), counts with
``int.bit_count`` and picks the page's rows in sort order without touching the
rest; glob and regex filters test each *distinct* value of the field once.

The package's parts: ``_bitmaps`` (row sets and their paging), ``_snapshot`` (one
snapshot and its indexes), ``_sums`` (WorkflowSite sums and aggregate totals),
``_held`` (the records that keep some values only in their line), ``_jobs`` (the
job records); this module holds the store (writes, interning, snapshot swaps).
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
import uuid
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final

from wmstats._procfs import trim_heap
from wmstats.backends.codec import PartsDictionary, decode_bundle, encode_line, encode_parts
from wmstats.backends.memory._jobs import MemoryJobs
from wmstats.backends.memory._bitmaps import Rows
from wmstats.backends.memory._held import hold
from wmstats.backends.memory._snapshot import Snapshot
from wmstats.backends.memory._sums import N_COUNTERS, encode_sums, sum_fields
from wmstats.query import (
    Page,
    Query,
    QueryError,
    Scalar,
    field_spec,
    field_specs,
    make_summary,
)
from wmstats.schema import BUNDLE_PARTS, Agent, Summary, Workflow, WorkflowBundle
from wmstats.store import EncodedPage, EncodedRuns, Store

__all__ = ["MemoryStore"]

#: Fields whose values are (nearly) one per workflow: interning them would share
#: nothing and cost a table entry each (at 100,000 production-sized mock
#: workflows, most of the table's ~20 MiB).
_UNIQUE_FIELDS: Final = frozenset(
    {"RequestName", "PrepID", "OutputDatasets", "OutputModulesLFNBases", "RequestDate",
     "StatusTime"})
_STRING_FIELDS: Final = tuple(
    name for name, spec in field_specs().items()
    if spec.kind == "str" and not spec.many and name not in _UNIQUE_FIELDS)
#: Writes that add or remove at most this many workflows insert and delete rows in
#: place (each a move of the row lists); more are merged in one pass.
_FEW_MOVES: Final = 64
#: Integer fields: their values above 256 (smaller ones are shared by Python
#: already) are shared too, 32 bytes each.
_INT_FIELDS: Final = tuple(
    name for name, spec in field_specs().items()
    if spec.kind == "int" and name not in _UNIQUE_FIELDS)
_TUPLE_FIELDS: Final = tuple(
    name for name, spec in field_specs().items()
    if spec.kind == "str" and spec.many and name not in _UNIQUE_FIELDS)
#: :meth:`MemoryStore.encoded_runs` starts a run at each workflow whose name's CRC-32
#: is a multiple of this (so runs hold this many workflows on average, wherever they
#: are in the store), and after :data:`RUN_MAX` workflows without such a name.
RUN_ROWS: Final = 4096
RUN_MAX: Final = 4 * RUN_ROWS


def run_starts(names: Sequence[str]) -> list[int]:
    """The first row of each run of :meth:`MemoryStore.encoded_runs` over ``names``
    (sorted): where a run starts depends on the names there, not on row numbers, so
    adding or removing a workflow moves no run boundary but its own run's."""
    starts = [0] if names else []
    last = 0
    crc32 = zlib.crc32
    for row in range(1, len(names)):
        if crc32(names[row].encode("utf-8", "surrogatepass")) % RUN_ROWS == 0 \
                or row - last >= RUN_MAX:
            starts.append(row)
            last = row
    return starts


class _Interner:
    """Share equal strings, string tuples and integers between records."""

    def __init__(self) -> None:
        self.table: dict[Any, Any] = {}
        #: apart from the strings: 1 == 1.0 == True
        self.ints: dict[int, int] = {}

    def workflow(self, wf: Workflow) -> Workflow:
        table = self.table
        changes: dict[str, Any] = {}
        ints = self.ints
        for name in _INT_FIELDS:
            value = getattr(wf, name)
            if type(value) is int and value > 256:
                number = ints.setdefault(value, value)
                if number is not value:
                    changes[name] = number
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


class _Entry:
    __slots__ = ("workflow", "line", "blob", "sums")

    def __init__(self, workflow: Workflow, line: bytes, blob: bytes,
                 sums: Sequence[int] | None) -> None:
        self.workflow = workflow
        self.line = line
        self.blob = blob
        self.sums = sums


_Row = tuple[Workflow, bytes, "Sequence[int] | None", bytes]


def _moved(names: list[str], rows: list[_Row], found: dict[str, int],
           changed: dict[str, _Entry | None]
           ) -> tuple[list[str], Rows[Workflow], Rows[bytes], Rows[Sequence[int] | None],
                      Rows[bytes]]:
    """The rows once ``changed`` (name -> entry, ``None`` to delete) is applied, some
    of them added or removed (``found``: the rows of the changed names that exist)."""
    names = list(names)
    if len(changed) <= _FEW_MOVES:
        # Deleted and replaced rows go, the new entries are inserted at their place.
        for row in sorted(found.values(), reverse=True):
            del names[row], rows[row]
        for name in sorted(n for n, e in changed.items() if e is not None):
            entry = changed[name]
            assert entry is not None
            row = bisect.bisect_left(names, name)
            names.insert(row, name)
            rows.insert(row, (entry.workflow, entry.blob, entry.sums, entry.line))
    else:
        # Many: keep the unchanged rows, add the new entries and sort once.
        kept = [(name, row) for name, row in zip(names, rows) if name not in changed]
        kept += [(name, (e.workflow, e.blob, e.sums, e.line)) for name, e in changed.items()
                 if e is not None]
        kept.sort(key=operator.itemgetter(0))
        names = [name for name, _ in kept]
        rows = [row for _, row in kept]
    return (names, Rows(r[0] for r in rows), Rows(r[1] for r in rows),
            Rows(r[2] for r in rows), Rows(r[3] for r in rows))


# --------------------------------------------------------------------------- the store


class MemoryStore(MemoryJobs, Store):
    """Workflows and agents held in this process (the default backend).

    Safe for any number of reader threads while one thread writes.

    :param compress: compress the per-workflow blobs (smaller, slower writes).
    :param intern: share equal strings between workflow records.
    """

    backend: ClassVar[str] = "memory"
    keeps_records: ClassVar[bool] = True

    def __init__(self, *, compress: bool = True, intern: bool = True) -> None:
        self._compress = compress
        self._intern = intern
        self._write_lock = threading.Lock()
        self._prefix = uuid.uuid4().hex[:12]
        self._counter = 0
        self._interner = _Interner()
        #: read from the aggregate table once, when the store is made
        self.sum_fields = sum_fields()
        self._snap = self._build_snapshot({}, {}, [], {}, None)
        #: the names list run_starts last read, and its result
        self._runs: tuple[list[str], list[int]] = ([], [])

    def _shared_name(self, name: str) -> str:
        names = self._snap.names
        row = bisect.bisect_left(names, name)
        return names[row] if row < len(names) and names[row] == name else name

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    def _encode(self, bundle: WorkflowBundle, vocab_ids: dict[str, int],
                vocab: list[str], dictionary: PartsDictionary | None) -> _Entry:
        workflow = bundle.workflow
        if self._intern:
            workflow = self._interner.workflow(workflow)
        # A copy: orjson's result keeps the capacity of its write buffer (several
        # times the text), which a long-lived line must not hold.
        line = bytes(memoryview(encode_line(workflow)))
        return _Entry(hold(workflow, line), line,
                      encode_parts(bundle, compress=self._compress, dictionary=dictionary),
                      encode_sums(bundle, vocab_ids, vocab, self.sum_fields))

    def _dictionary(self, bundles: Iterator[WorkflowBundle]
                    ) -> tuple[PartsDictionary | None, Iterator[WorkflowBundle]]:
        """A dictionary made from the first of ``bundles`` (``None``: not compressing,
        or too few bundles with parts to learn from), and all the bundles again."""
        if not self._compress:
            return None, bundles
        first = list(itertools.islice(bundles, PartsDictionary.TRAIN_BUNDLES))
        again = itertools.chain(first, bundles)
        if sum(1 for b in first if any(getattr(b, attr) for attr in BUNDLE_PARTS)) < 8:
            return None, again
        return PartsDictionary.train(first), again

    def _build_snapshot(self, entries: dict[str, _Entry], agents: dict[str, Agent],
                        vocab: list[str], vocab_ids: dict[str, int],
                        dictionary: PartsDictionary | None) -> Snapshot:
        names = sorted(entries)
        ordered = [entries[name] for name in names]
        return Snapshot(self._next_id(), Rows(e.workflow for e in ordered),
                         Rows(e.blob for e in ordered), Rows(e.sums for e in ordered),
                         agents, vocab, vocab_ids, self.sum_fields, names,
                         Rows(e.line for e in ordered), dictionary)

    # ------------------------------------------------------------------ writes

    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        with self._write_lock:
            saved = self._interner
            self._interner = _Interner()
            try:
                vocab: list[str] = []
                vocab_ids: dict[str, int] = {}
                dictionary, items = self._dictionary(iter(bundles))
                entries = {b.workflow.RequestName: self._encode(b, vocab_ids, vocab, dictionary)
                           for b in items}
                agent_map = {a.AgentURL: a for a in agents}
            except BaseException:
                self._interner = saved
                raise
            snap = self._build_snapshot(entries, agent_map, vocab, vocab_ids, dictionary)
            self._snap = snap
            del entries, saved
            if "_jobs_shelf" in self.__dict__:
                self._job_shelf().share_names()
        # The bundles were freed between the blobs kept: give those pages back.
        trim_heap()
        return snap.sid

    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        with self._write_lock:
            old = self._snap
            # The vocabulary is append-only: the old snapshot ignores new ids.
            vocab = old.vocab
            vocab_ids = old.vocab_ids
            # Blobs keep the dictionary they were made with: one made at the first
            # write with enough bundles, until the next replace.
            dictionary = old.dictionary
            items: Iterator[WorkflowBundle] = iter(upserts)
            if dictionary is None:
                dictionary, items = self._dictionary(items)
            changed: dict[str, _Entry | None] = {}
            for bundle in items:
                changed[bundle.workflow.RequestName] = self._encode(bundle, vocab_ids, vocab,
                                                                    dictionary)
            for name in deletes:
                changed[name] = None
            agent_map = dict(old.agents)
            for agent in agents:
                agent_map[agent.AgentURL] = agent
            for url in deleted_agents:
                agent_map.pop(url, None)
            names = old.names
            workflows, blobs, sums, lines = old.workflows, old.blobs, old.sums, old.lines
            # Rows of the changed names that exist (bisect: the names are sorted).
            found: dict[str, int] = {}
            for name in changed:
                row = bisect.bisect_left(names, name)
                if row < old.n and names[row] == name:
                    found[name] = row
            in_place = all(entry is not None and name in found
                           for name, entry in changed.items())
            if changed and in_place:
                # Updates only (the usual live change): every row keeps its place, so
                # the names are shared, the other rows copied a chunk at a time where
                # they change, and every index the change did not touch carries over.
                at = {found[name]: entry for name, entry in changed.items()
                      if entry is not None}
                for row, entry in at.items():
                    # The name kept in the names list, not a second equal string
                    # (frozen attrs instance: not observable, as in _Interner).
                    object.__setattr__(entry.workflow, "RequestName", names[row])
                workflows = workflows.replaced({r: e.workflow for r, e in at.items()})
                blobs = blobs.replaced({r: e.blob for r, e in at.items()})
                sums = sums.replaced({r: e.sums for r, e in at.items()})
                lines = lines.replaced({r: e.line for r, e in at.items()})
            elif changed:
                # Workflows added or removed: rows move, so the indexes are rebuilt as
                # they are needed.
                names, workflows, blobs, sums, lines = _moved(
                    names, [(w, b, u, t) for w, b, u, t in zip(workflows, blobs, sums, lines)],
                    found, changed)
            snap = Snapshot(self._next_id(), workflows, blobs, sums, agent_map, vocab,
                             vocab_ids, self.sum_fields, names, lines, dictionary)
            if not changed:
                snap.carry_over(old, ())
            elif in_place:
                snap.carry_over(old, sorted(found.values()))
            # Carry the unfiltered aggregates over: take away the old versions of the
            # changed workflows, add the new ones.
            if changed:
                gone = list(found.values())
                new_items = [(e.workflow, e.sums) for e in changed.values() if e is not None]
            for by, state in list(old.agg_state.items()):
                if changed:
                    state = state.copy()
                    state.add(by, old.items(gone), vocab, self.sum_fields, -1)
                    state.add(by, new_items, vocab, self.sum_fields, 1)
                snap.agg_state[by] = state
            self._snap = snap
            return snap.sid

    # ------------------------------------------------------------------ reads

    @property
    def snapshot_id(self) -> str:
        return self._snap.sid

    def __len__(self) -> int:
        return self._snap.n

    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        return self._bundles(names, None)

    def get_parts(self, names: Iterable[str],
                  parts: Collection[str]) -> dict[str, WorkflowBundle]:
        super().get_parts((), parts)  # ValueError for an unknown part
        return self._bundles(names, frozenset(parts))

    def _bundles(self, names: Iterable[str],
                 only: Collection[str] | None) -> dict[str, WorkflowBundle]:
        snap = self._snap
        found: dict[str, WorkflowBundle] = {}
        for name in names:
            row = bisect.bisect_left(snap.names, name)
            if row < snap.n and snap.names[row] == name:
                found[name] = decode_bundle(snap.workflows[row], snap.blobs[row], only,
                                            snap.dictionary)
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

    def query_encoded(self, query: Query = Query()) -> EncodedPage:
        if query.fields is not None:
            return super().query_encoded(query)
        snap = self._snap
        rows, total = snap.select(query)
        lines = snap.lines
        return EncodedPage([lines[r] for r in rows], total, snap.sid)

    def stream_encoded(self, query: Query = Query(), batch_size: int = 1000
                       ) -> Iterator[bytes]:
        """Every record of ``query`` as JSON text from one snapshot: the text kept
        since the record was written (field masks are encoded here)."""
        if query.fields is not None:
            return super().stream_encoded(query, batch_size)
        snap = self._snap
        rows, _total = snap.select(query)
        return map(snap.lines.__getitem__, rows)

    def encoded_runs(self) -> EncodedRuns:
        """Every workflow's JSON text kept since it was written, in runs of about
        :data:`RUN_ROWS` (:func:`run_starts`)."""
        snap = self._snap
        names, starts = self._runs
        if names is not snap.names:
            # Updates in place share the names list: the runs are cut again only
            # when workflows were added or removed.
            starts = run_starts(snap.names)
            self._runs = (snap.names, starts)
        lines = snap.lines
        bounds = zip(starts, [*starts[1:], snap.n])
        return EncodedRuns([(snap.names[a], lines.span(a, b)) for a, b in bounds], snap.sid)

    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        field_spec(field)  # QueryError for an unknown field
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
            return make_summary(by, value, [0] * N_COUNTERS, {})
        return super().summary(by, value, query)

    def get_agents(self, urls: Iterable[str] | None = None) -> list[Agent]:
        agents = self._snap.agents
        if urls is None:
            return [agents[url] for url in sorted(agents)]
        return [agents[url] for url in sorted(set(urls)) if url in agents]
