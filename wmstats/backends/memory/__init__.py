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

The package's parts: ``_bitmaps`` (row sets and their paging), ``_snapshot`` (one
snapshot and its indexes), ``_sums`` (WorkflowSite sums and aggregate totals);
this module holds the store (writes, interning, snapshot swaps).
"""

from __future__ import annotations

import bisect
import operator
import threading
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Final

from wmstats.backends.codec import decode_bundle, encode_parts
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
from wmstats.schema import Agent, Summary, Workflow, WorkflowBundle
from wmstats.store import Store

__all__ = ["MemoryStore"]

_STRING_FIELDS: Final = tuple(
    name for name, spec in field_specs().items() if spec.kind == "str")
_TUPLE_FIELDS: Final = tuple(
    name for name, spec in field_specs().items() if spec.kind == "str" and spec.many)


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
        self.sum_fields = sum_fields()
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
                      encode_sums(bundle, vocab_ids, vocab, self.sum_fields))

    def _build_snapshot(self, entries: dict[str, _Entry], agents: dict[str, Agent],
                        vocab: list[str], vocab_ids: dict[str, int]) -> Snapshot:
        names = sorted(entries)
        ordered = [entries[name] for name in names]
        return Snapshot(self._next_id(), [e.workflow for e in ordered],
                         [e.blob for e in ordered], [e.sums for e in ordered],
                         agents, vocab, vocab_ids, self.sum_fields)

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
            snap = Snapshot(self._next_id(), workflows, blobs, sums, agent_map, vocab,
                             vocab_ids, self.sum_fields, names)
            # Carry the unfiltered aggregates over: take away the old versions of the
            # changed workflows, add the new ones.
            if changed:
                gone = [row for row in (bisect.bisect_left(old.names, name)
                                        for name in changed)
                        if row < old.n and old.names[row] in changed]
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
                found[name] = decode_bundle(snap.workflows[row], snap.blobs[row], only)
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
