"""The store contract, the backend registry and :func:`open_store`.

A store holds one *snapshot*: per workflow a
:class:`~wmstats.schema.WorkflowBundle` (its :class:`~wmstats.schema.Workflow`
plus the records of :data:`~wmstats.schema.BUNDLE_PARTS`: sites, tasks, task-sites,
datasets, parentage, status history), plus the
:class:`~wmstats.schema.Agent` records.  Queries, :meth:`Store.distinct` and
:meth:`Store.aggregate` run over the Workflow records with the semantics of
:mod:`wmstats.query` (whose pure functions are the reference).

Contract for backends (the conformance suite :mod:`wmstats.testing.store_suite`
checks it):

* The abstract methods are the (bulk) primitives; single-item helpers
  (:meth:`Store.get`, :meth:`Store.upsert`, :meth:`Store.delete`,
  :meth:`Store.count`, :meth:`Store.summary`, :meth:`Store.get_agent`,
  :meth:`Store.stream`) and :meth:`Store.get_parts` are built on them and may be
  overridden for speed.
* :meth:`Store.replace` swaps the whole snapshot atomically: readers see the old
  snapshot or the new one, never a mix; if the iterables raise part way, the
  exception propagates and the previous snapshot stays whole and readable.
* :meth:`Store.apply` applies upserts (a bundle replaces every record of its
  workflow) and deletes (unknown names are ignored) atomically.
* Every successful write returns a new :attr:`Store.snapshot_id` (an opaque string,
  compare it for equality only); a failed write leaves it unchanged.
* Readers may run in several threads while one writer writes.
* Within one snapshot a workflow name is unique; when the same name comes twice in
  one write, the later bundle wins.
* A store that persists (:attr:`Store.keeps_checkpoints`) keeps a source's
  :class:`Checkpoint` and :class:`SourceEntry` records with the snapshot they
  describe, written in the same transaction (:meth:`Store.replace_from_source`,
  :meth:`Store.apply_from_source`), so that a restarted source resumes from
  there; any other write (:meth:`Store.replace`, :meth:`Store.apply`) drops them,
  as the snapshot no longer is the source's alone.  Stores that cannot persist
  (memory) inherit defaults that write the data and keep nothing.
* **Job records** (:class:`~wmstats.schema.WorkflowJobs`: the
  :class:`~wmstats.schema.JobGroup` and :class:`~wmstats.schema.JobSample`
  records of one workflow, from :mod:`wmstats.jobs`) are kept beside the
  snapshot, with the same rules: :meth:`Store.replace_jobs` swaps all of them
  atomically, :meth:`Store.apply_jobs` upserts (a workflow's job records replace
  all its previous ones) and deletes atomically, and every successful job write
  returns a new :attr:`Store.jobs_snapshot_id`.  Job writes leave
  :attr:`Store.snapshot_id` as it is (jobs change far more often than workflows,
  and a workflow write would drop cached indexes); a workflow's job records are
  independent of its bundle: they may exist for a workflow the snapshot does not
  hold.  The records come back in the order they were given.
* **Writes are observable**: :meth:`Store.add_listener` registers a
  :class:`StoreListener` told about every successful write of this store object
  (the cache server keeps its alerts up to date with it).  Backends need nothing
  for it: the base class wraps their ``replace``, ``apply``,
  ``replace_from_source``, ``apply_from_source``, ``replace_jobs`` and
  ``apply_jobs`` (each write is reported once, also when one of them calls
  another).  Writes made by other processes (another server on the same sqlite
  file or CouchDB database) are not seen: compare snapshot ids.

Backends are found by name (:func:`load_backend`, the :data:`STORES` registry of
:mod:`wmstats.plugins`): the built-in ``memory`` backend, then the
``wmstats.backends`` entry point group.  Each backend class
takes typed keyword options; :func:`open_store` builds one from a URL::

    open_store("memory://")
    open_store("sqlite:///var/lib/wmstats/wmstats.db?timeout=30")
    open_store("couchdb://user:secret@localhost:5984/wmstats_cache", timeout=10)
"""

from __future__ import annotations

import abc
import contextlib
import functools
import threading
import types
import typing
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs

from wmstats.aggregates import BY_KEY, Aggregate
from wmstats.plugins import PluginErrors, PluginRegistry
from wmstats.query import (
    Filter,
    Page,
    Query,
    QueryError,
    Scalar,
    make_projector,
    make_summary,
)
from wmstats.schema import (
    BUNDLE_PARTS,
    COUNTER_FIELDS,
    Agent,
    Summary,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
)
from wmstats.serialize import json_bytes

__all__ = [
    "Store",
    "Checkpoint",
    "SourceEntry",
    "StoreListener",
    "EncodedPage",
    "EncodedRuns",
    "StoreError",
    "UnknownBackendError",
    "MissingBackendError",
    "StoreOptionError",
    "ENTRY_POINT_GROUP",
    "STORES",
    "BACKENDS",
    "KNOWN_PLUGINS",
    "load_backend",
    "available_backends",
    "open_store",
    "parse_store_url",
    "coerce_options",
    # re-exported from wmstats.query for store users
    "Query",
    "Filter",
    "Page",
    "Summary",
    "QueryError",
]

#: Entry point group that plugins register their store classes in.
ENTRY_POINT_GROUP: Final = "wmstats.backends"


class StoreError(Exception):
    """Base class of the errors raised by stores and the registry."""


class UnknownBackendError(StoreError, LookupError):
    """No backend of that name is built in or registered."""


class MissingBackendError(StoreError, ImportError):
    """A known backend whose plugin is not installed (or fails to import)."""


class StoreOptionError(StoreError, ValueError):
    """A bad store URL or option."""


def _frozen_sequences(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen
class Checkpoint:
    """How far a source got: what a restarted source resumes from.

    :param source: who wrote it, with the options that shape the data (a source
        uses only a checkpoint of its own identity).
    :param sequences: upstream database -> last applied sequence (opaque strings).
    """

    source: str
    sequences: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_sequences)


@attrs.frozen
class SourceEntry:
    """One item of a source's kept state, stored with the snapshot (opaque to stores).

    :param key: unique within the source (e.g. the upstream database and document id).
    :param group: what the source looks entries up by (e.g. the workflow name).
    :param data: the source's bytes.
    """

    key: str
    group: str
    data: bytes = b""


class StoreListener:
    """Told about every successful write of the stores it listens to
    (:meth:`Store.add_listener`).  Every method does nothing by default; they run in
    the writing thread, after the write, and must not raise (a listener that does is
    logged by the caller's exception and the write stays done).
    """

    def replacing(self, store: Store) -> Callable[[WorkflowBundle], None] | None:
        """A replace starts: return a function called with each bundle as the store
        reads it (or ``None`` to ignore them)."""
        return None

    def replaced(self, store: Store, snapshot_id: str, agents: Sequence[Agent]) -> None:
        """A replace succeeded (the bundles were given to :meth:`replacing`'s function)."""

    def replace_failed(self, store: Store) -> None:
        """A replace failed: forget the bundles seen since :meth:`replacing`."""

    def applied(self, store: Store, snapshot_id: str, upserts: Sequence[WorkflowBundle],
                deletes: Sequence[str], agents: Sequence[Agent],
                deleted_agents: Sequence[str]) -> None:
        """An :meth:`Store.apply` succeeded."""

    def jobs_written(self, store: Store, jobs_snapshot_id: str,
                     upserts: Sequence[WorkflowJobs] | None, deletes: Sequence[str]) -> None:
        """A job write succeeded; ``upserts`` is ``None`` for a :meth:`Store.replace_jobs`
        (every workflow's job records changed)."""


#: Stores whose write is being reported in this thread (so that a backend calling
#: its base class's write reports once).
_WRITING = threading.local()


def _listeners(store: Store) -> list[StoreListener]:
    found: list[StoreListener] = store.__dict__.get("_store_listeners", [])
    return found


@contextlib.contextmanager
def _outermost(store: Store) -> Iterator[bool]:
    """Whether this is the outermost reported write of ``store`` in this thread."""
    active: set[int] = getattr(_WRITING, "stores", None) or set()
    _WRITING.stores = active
    key = id(store)
    if key in active:
        yield False
        return
    active.add(key)
    try:
        yield True
    finally:
        active.discard(key)


def _report_replace(fn: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(fn)
    def replace(self: Store, bundles: Iterable[WorkflowBundle],
                agents: Iterable[Agent] = ()) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, bundles, agents)
        with _outermost(self) as outer:
            if not outer:
                return fn(self, bundles, agents)
            sinks = [sink for sink in (lst.replacing(self) for lst in listeners) if sink]
            agent_list = list(agents)

            def seen() -> Iterator[WorkflowBundle]:
                for bundle in bundles:
                    for sink in sinks:
                        sink(bundle)
                    yield bundle
            try:
                sid = fn(self, seen(), agent_list)
            except BaseException:
                for listener in listeners:
                    listener.replace_failed(self)
                raise
            for listener in listeners:
                listener.replaced(self, sid, agent_list)
            return sid
    setattr(replace, "_reports", True)  # noqa: B010
    return replace


def _report_apply(fn: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(fn)
    def apply(self: Store, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (),
              *, agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, upserts, deletes, agents=agents, deleted_agents=deleted_agents)
        with _outermost(self) as outer:
            if not outer:
                return fn(self, upserts, deletes, agents=agents, deleted_agents=deleted_agents)
            ups, dels = list(upserts), list(deletes)
            ags, gone = list(agents), list(deleted_agents)
            sid = fn(self, ups, dels, agents=ags, deleted_agents=gone)
            for listener in listeners:
                listener.applied(self, sid, ups, dels, ags, gone)
            return sid
    setattr(apply, "_reports", True)  # noqa: B010
    return apply


def _report_replace_jobs(fn: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(fn)
    def replace_jobs(self: Store, jobs: Iterable[WorkflowJobs]) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, jobs)
        with _outermost(self) as outer:
            sid = fn(self, jobs)
            if outer:
                for listener in listeners:
                    listener.jobs_written(self, sid, None, ())
            return sid
    setattr(replace_jobs, "_reports", True)  # noqa: B010
    return replace_jobs


def _report_apply_jobs(fn: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(fn)
    def apply_jobs(self: Store, upserts: Iterable[WorkflowJobs] = (),
                   deletes: Iterable[str] = ()) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, upserts, deletes)
        with _outermost(self) as outer:
            if not outer:
                return fn(self, upserts, deletes)
            ups, dels = list(upserts), list(deletes)
            sid = fn(self, ups, dels)
            for listener in listeners:
                listener.jobs_written(self, sid, ups, dels)
            return sid
    setattr(apply_jobs, "_reports", True)  # noqa: B010
    return apply_jobs


def _report_replace_from_source(fn: Callable[..., str]) -> Callable[..., str]:
    # Reported as a replace: the checkpoint and the entries are the source's business.
    @functools.wraps(fn)
    def replace_from_source(self: Store, checkpoint: Checkpoint,
                            bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = (),
                            entries: Iterable[SourceEntry] = ()) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, checkpoint, bundles, agents, entries)
        with _outermost(self) as outer:
            if not outer:
                return fn(self, checkpoint, bundles, agents, entries)
            sinks = [sink for sink in (lst.replacing(self) for lst in listeners) if sink]
            agent_list = list(agents)

            def seen() -> Iterator[WorkflowBundle]:
                for bundle in bundles:
                    for sink in sinks:
                        sink(bundle)
                    yield bundle
            try:
                sid = fn(self, checkpoint, seen(), agent_list, entries)
            except BaseException:
                for listener in listeners:
                    listener.replace_failed(self)
                raise
            for listener in listeners:
                listener.replaced(self, sid, agent_list)
            return sid
    setattr(replace_from_source, "_reports", True)  # noqa: B010
    return replace_from_source


def _report_apply_from_source(fn: Callable[..., str]) -> Callable[..., str]:
    # Reported as an apply (the entries are passed on as they are).
    @functools.wraps(fn)
    def apply_from_source(self: Store, checkpoint: Checkpoint,
                          upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (),
                          *, agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = (),
                          entries: Iterable[SourceEntry] = (),
                          deleted_entries: Iterable[str] = ()) -> str:
        listeners = _listeners(self)
        if not listeners:
            return fn(self, checkpoint, upserts, deletes, agents=agents,
                      deleted_agents=deleted_agents, entries=entries,
                      deleted_entries=deleted_entries)
        with _outermost(self) as outer:
            if not outer:
                return fn(self, checkpoint, upserts, deletes, agents=agents,
                          deleted_agents=deleted_agents, entries=entries,
                          deleted_entries=deleted_entries)
            ups, dels = list(upserts), list(deletes)
            ags, gone = list(agents), list(deleted_agents)
            sid = fn(self, checkpoint, ups, dels, agents=ags, deleted_agents=gone,
                     entries=entries, deleted_entries=deleted_entries)
            for listener in listeners:
                listener.applied(self, sid, ups, dels, ags, gone)
            return sid
    setattr(apply_from_source, "_reports", True)  # noqa: B010
    return apply_from_source


#: The writes reported to listeners: method name -> its wrapper.
_REPORTED: Final[dict[str, Callable[[Callable[..., str]], Callable[..., str]]]] = {
    "replace": _report_replace, "apply": _report_apply,
    "replace_from_source": _report_replace_from_source,
    "apply_from_source": _report_apply_from_source,
    "replace_jobs": _report_replace_jobs, "apply_jobs": _report_apply_jobs}


@attrs.frozen
class EncodedPage:
    """One page of a query's result as JSON text (:meth:`Store.query_encoded`).

    :param lines: each workflow of the page as compact JSON text (an object, no
        newline), with the query's field mask applied.
    :param total: how many workflows match the filters (all pages).
    :param snapshot: the snapshot id the page was read from.
    """

    lines: Sequence[bytes]
    total: int
    snapshot: str = ""


@attrs.frozen
class EncodedRuns:
    """Every workflow of one snapshot as JSON text, in runs (:meth:`Store.encoded_runs`).

    :param runs: ``(key, lines)`` pairs in the default order (by name): ``lines`` the
        run's workflows as in :meth:`Store.query_encoded` without a field mask; ``key``
        names the run (its first workflow's name).  A run's line objects stay the same
        objects until one of its workflows changes, and runs are cut where the content
        says (not at fixed row numbers), so that a write changes only the runs it touches.
    :param snapshot: the snapshot id the runs were read from.
    """

    runs: Sequence[tuple[str, Sequence[bytes]]]
    snapshot: str = ""

    @property
    def total(self) -> int:
        """How many workflows the runs hold."""
        return sum(len(lines) for _key, lines in self.runs)


class Store(abc.ABC):
    """A snapshot of workflows and agents, with queries and aggregates.

    Subclasses implement the abstract (bulk) methods, take their options as typed
    keyword arguments, and override :meth:`url_options` to map a URL's host/path
    part to those options.
    """

    #: The name the backend is registered under.
    backend: ClassVar[str] = ""
    #: Whether :meth:`replace_from_source` and :meth:`apply_from_source` keep the
    #: checkpoint and the entries, so that a restarted source resumes from them.
    keeps_checkpoints: ClassVar[bool] = False
    #: Whether the store keeps the :class:`~wmstats.schema.Workflow` objects it is
    #: given (not copies or encodings only), so that a writer that keeps them too
    #: shares them instead of holding a second record (the CouchDB source does).
    keeps_records: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make the subclass's writes observable (see :class:`StoreListener`)."""
        super().__init_subclass__(**kwargs)
        for name, wrap in _REPORTED.items():
            method = getattr(cls, name, None)  # also those of a mixin
            if (callable(method) and not getattr(method, "__isabstractmethod__", False)
                    and not getattr(method, "_reports", False)):
                setattr(cls, name, wrap(method))

    def add_listener(self, listener: StoreListener) -> None:
        """Tell ``listener`` about every successful write of this store object."""
        listeners = self.__dict__.setdefault("_store_listeners", [])
        if listener not in listeners:
            listeners.append(listener)

    def remove_listener(self, listener: StoreListener) -> None:
        """Stop telling ``listener`` (no error if it was not listening)."""
        listeners = _listeners(self)
        if listener in listeners:
            listeners.remove(listener)

    # ------------------------------------------------------------------ building

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """Keyword options given by a URL's user, password, host, port and path.

        The query string is handled by :func:`open_store`.  The default accepts a
        bare ``scheme://`` only.

        :raises StoreOptionError: for URL parts the backend does not understand.
        """
        if url.netloc or url.path not in ("", "/"):
            raise StoreOptionError(f"{cls.backend or cls.__name__} store URLs take no "
                                   f"host or path: {url.geturl()!r}")
        return {}

    def close(self) -> None:
        """Release resources (connections, files).  The default does nothing."""

    def warm(self) -> None:
        """Start bringing what reads will need into memory, in the background, so
        that the first requests of a server just started are as fast as the later
        ones (the cache server calls it once the store is open).  Returns at once;
        :meth:`close` stops it.  The default does nothing (nothing to bring in)."""

    @property
    def warming(self) -> bool:
        """Whether what :meth:`warm` started is still under way."""
        return False

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    @abc.abstractmethod
    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        """Replace the whole snapshot with these workflows and agents, atomically.

        :param bundles: every workflow of the new snapshot (consumed once).
        :param agents: every agent of the new snapshot.
        :returns: the new snapshot id.
        """

    @abc.abstractmethod
    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        """Insert or replace some workflows and agents, delete others, atomically.

        Deletes are applied after upserts.

        :param upserts: bundles that replace every record of their workflow.
        :param deletes: names of workflows to remove (unknown names are ignored).
        :param agents: agent records to insert or replace.
        :param deleted_agents: agent URLs to remove.
        :returns: the new snapshot id.
        """

    # ------------------------------------------------------------------ source checkpoints

    def replace_from_source(self, checkpoint: Checkpoint, bundles: Iterable[WorkflowBundle],
                            agents: Iterable[Agent] = (),
                            entries: Iterable[SourceEntry] = ()) -> str:
        """:meth:`replace`, keeping ``checkpoint`` and ``entries`` with the new snapshot
        (atomically: all of it or nothing).

        :param entries: every entry of the source's state; consumed after
            ``bundles`` and ``agents``, so that the source may produce them as it
            produces the bundles.
        :returns: the new snapshot id.

        The default (a store that cannot persist) calls :meth:`replace` and keeps
        neither.
        """
        return self.replace(bundles, agents)

    def apply_from_source(self, checkpoint: Checkpoint, upserts: Iterable[WorkflowBundle] = (),
                          deletes: Iterable[str] = (), *, agents: Iterable[Agent] = (),
                          deleted_agents: Iterable[str] = (),
                          entries: Iterable[SourceEntry] = (),
                          deleted_entries: Iterable[str] = ()) -> str:
        """:meth:`apply`, and in the same transaction: the kept checkpoint becomes
        ``checkpoint``, ``entries`` are inserted or replaced (by key) and the entries
        keyed ``deleted_entries`` removed (unknown keys are ignored).

        The default (a store that cannot persist) calls :meth:`apply` only.
        """
        return self.apply(upserts, deletes, agents=agents, deleted_agents=deleted_agents)

    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint kept with the current snapshot (``None``: none, or dropped by
        a write that was not the source's).  The default keeps none."""
        return None

    def source_entries(self, *, keys: Iterable[str] = (),
                       groups: Iterable[str] = ()) -> list[SourceEntry]:
        """The kept entries with one of these keys or in one of these groups (each
        entry once, in no particular order).  The default keeps none."""
        return []

    # ------------------------------------------------------------------ reads

    @property
    @abc.abstractmethod
    def snapshot_id(self) -> str:
        """The id of the current snapshot; it changes with every write."""

    @abc.abstractmethod
    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        """The bundles of the named workflows that exist, by name."""

    @abc.abstractmethod
    def query(self, query: Query = Query()) -> Page:
        """One page of the workflows matching ``query``, and the total match count."""

    @abc.abstractmethod
    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        """Each value of a Workflow field with the number of (matching) workflows holding it.

        Tuple fields count each element; sorted by value.  See
        :func:`wmstats.query.distinct_values`.

        :raises QueryError: for a field that cannot be counted.
        """

    @abc.abstractmethod
    def aggregate(self, by: str, query: Query | None = None) -> list[Summary]:
        """Job counters and workflow counts per value of ``by``.

        :param by: the key of one of :data:`wmstats.aggregates.AGGREGATES`
            (``site``, ``campaign``, ``agent``, ``release``, ``status``, ``type``,
            ``team``); the counters are summed as in :func:`wmstats.query.summarize`.
        :param query: only workflows matching its filters take part (its paging
            and sort are ignored).
        :raises QueryError: for an unknown ``by`` or a bad filter.
        """

    @abc.abstractmethod
    def get_agents(self, urls: Iterable[str] | None = None) -> list[Agent]:
        """Agent records sorted by URL: all of them, or those of the given URLs."""

    # ------------------------------------------------------------------ job records

    @abc.abstractmethod
    def replace_jobs(self, jobs: Iterable[WorkflowJobs]) -> str:
        """Replace every workflow's job records with these, atomically.

        :param jobs: the job records of each workflow that has some (consumed once;
            when a workflow comes twice the later one wins).
        :returns: the new :attr:`jobs_snapshot_id`.
        """

    @abc.abstractmethod
    def apply_jobs(self, upserts: Iterable[WorkflowJobs] = (),
                   deletes: Iterable[str] = ()) -> str:
        """Replace the job records of some workflows, delete those of others, atomically.

        Deletes are applied after upserts; a :class:`~wmstats.schema.WorkflowJobs`
        with no records deletes that workflow's.

        :param upserts: each replaces every job record of its workflow.
        :param deletes: workflows whose job records go (unknown names are ignored).
        :returns: the new :attr:`jobs_snapshot_id`.
        """

    @property
    @abc.abstractmethod
    def jobs_snapshot_id(self) -> str:
        """The id of the current job records; it changes with every job write."""

    @abc.abstractmethod
    def get_jobs(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        """The job records of the named workflows that have some, by name."""

    def jobs(self, name: str) -> WorkflowJobs | None:
        """The job records of one workflow, or ``None`` when it has none."""
        return self.get_jobs([name]).get(name)

    # ------------------------------------------------------------------ helpers

    def get(self, name: str) -> WorkflowBundle | None:
        """The bundle of one workflow, or ``None``."""
        return self.get_many([name]).get(name)

    def get_parts(self, names: Iterable[str],
                  parts: Collection[str]) -> dict[str, WorkflowBundle]:
        """The bundles of the named workflows that exist, by name, holding at least the
        given parts of :data:`~wmstats.schema.BUNDLE_PARTS` (the others may be empty).

        For readers that need a few parts of many workflows (the WMCore-compatible
        API); backends that can decode less than a whole bundle override it.  The
        default reads whole bundles.

        :raises ValueError: for a name that is not a bundle part.
        """
        unknown = sorted(set(parts) - set(BUNDLE_PARTS))
        if unknown:
            raise ValueError(f"not bundle parts: {', '.join(unknown)} "
                             f"(known: {', '.join(BUNDLE_PARTS)})")
        return self.get_many(names)

    def get_agent(self, url: str) -> Agent | None:
        """One agent's record, or ``None``."""
        found = self.get_agents([url])
        return found[0] if found else None

    def upsert(self, bundle: WorkflowBundle) -> str:
        """Insert or replace one workflow; returns the new snapshot id."""
        return self.apply(upserts=[bundle])

    def delete(self, name: str) -> str:
        """Delete one workflow (no error if unknown); returns the new snapshot id."""
        return self.apply(deletes=[name])

    def count(self, query: Query | None = None) -> int:
        """How many workflows match ``query``'s filters (all workflows if ``None``)."""
        filters = () if query is None else query.filters
        return self.query(Query(filters=filters, limit=0)).total

    def summary(self, by: str, value: str, query: Query | None = None) -> Summary:
        """The summary of one value of an aggregate (one site, campaign, agent...).

        A value no workflow holds gets an all-zero summary.

        :raises QueryError: for an unknown ``by`` or a bad filter.
        """
        field = self.aggregate_of(by).field
        base = query if query is not None else Query()
        narrowed = base.where(field, "eq", value)
        for item in self.aggregate(by, narrowed):
            if item.Value == value:
                return item
        return make_summary(by, value, [0] * len(COUNTER_FIELDS), {})

    @staticmethod
    def aggregate_of(by: str) -> Aggregate:
        """The aggregate named ``by``, from :data:`wmstats.aggregates.AGGREGATES`.

        Backends read what to group and sum from it, never from the name itself.

        :raises QueryError: for an unknown name (the message lists the known ones).
        """
        found = BY_KEY.get(by)
        if found is None:
            raise QueryError("by", f"unknown aggregation {by!r} "
                                   f"(known: {', '.join(sorted(BY_KEY))})")
        return found

    def stream(self, query: Query = Query(), batch_size: int = 1000) -> Iterator[Workflow]:
        """Every record of ``query`` (honouring its ``idx`` and ``limit``), page by page.

        Backends should override this to read one consistent snapshot; this default
        pages through :meth:`query`, so concurrent writes may shift records between
        pages.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        idx = query.idx
        remaining = query.limit
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            page = self.query(attrs.evolve(query, idx=idx, limit=size))
            yield from page.records
            if len(page.records) < size:
                return
            idx += len(page.records)
            if remaining is not None:
                remaining -= len(page.records)


    def query_encoded(self, query: Query = Query()) -> EncodedPage:
        """:meth:`query` with each record as JSON text (the query's field mask applied),
        what a server writes.

        The text is :func:`wmstats.serialize.json_bytes` of the record's dict
        (:func:`wmstats.query.make_projector`).  This default encodes the page of
        :meth:`query`; a backend that keeps its records encoded answers from them.
        """
        page = self.query(query)
        project = make_projector(query.fields)
        return EncodedPage([json_bytes(project(r)) for r in page.records], page.total,
                           page.snapshot)

    def stream_encoded(self, query: Query = Query(), batch_size: int = 1000
                       ) -> Iterator[bytes]:
        """:meth:`stream` with each record as JSON text, as in :meth:`query_encoded`."""
        project = make_projector(query.fields)
        return (json_bytes(project(r)) for r in self.stream(query, batch_size))

    def encoded_runs(self) -> EncodedRuns | None:
        """Every workflow as JSON text in runs whose line objects are kept while they do
        not change (:class:`EncodedRuns`), so that what is derived from a run (its
        compressed form: :class:`wmstats.stream.FrameCache`) can be kept with it; or
        ``None`` when this store does not keep its records' text (this default)."""
        return None

# --------------------------------------------------------------------------- registry

#: The store backends: ``memory`` built in, the others from the ``wmstats.backends``
#: entry points (see :mod:`wmstats.plugins` for the rules they share with sources).
STORES: Final[PluginRegistry[Store]] = PluginRegistry(
    "store backend", ENTRY_POINT_GROUP, Store,
    PluginErrors(StoreError, UnknownBackendError, MissingBackendError, StoreOptionError),
    builtins={"memory": "wmstats.backends.memory:MemoryStore"},
    known={"sqlite": "wmstats_sqlite", "couchdb": "wmstats_couchdb"})

#: Built-in backends: name -> ``"module:Class"`` (read-only).
BACKENDS: Final[Mapping[str, str]] = STORES.builtins
#: Backends shipped as plugins: name -> the distribution/package that provides it.
KNOWN_PLUGINS: Final[Mapping[str, str]] = STORES.known


def load_backend(name: str) -> type[Store]:
    """The store class registered under ``name`` (:meth:`PluginRegistry.load
    <wmstats.plugins.PluginRegistry.load>`).

    Built-ins are looked up first; the ``wmstats.backends`` entry points are read
    only for other names.

    :raises UnknownBackendError: when no backend has that name.
    :raises MissingBackendError: when the backend is known but its plugin is not
        installed or fails to import.
    """
    return STORES.load(name)


def available_backends() -> dict[str, str]:
    """Every backend name -> ``"module:Class"``: built-ins and installed plugins."""
    return STORES.available()


def parse_store_url(url: str) -> tuple[str, urllib.parse.SplitResult]:
    """The backend name (URL scheme) and the parsed URL.

    :raises StoreOptionError: for a string that is not a ``scheme://...`` URL.
    """
    return STORES.parse_url(url)


def coerce_options(cls: type[Store], raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn string options (a URL query) into typed keyword arguments of ``cls``
    (the rules are in :mod:`wmstats.plugins`).

    :raises StoreOptionError: for an unknown option or a value of the wrong type.
    """
    return STORES.coerce_options(cls, raw)


def open_store(url: str = "memory://", **options: Any) -> Store:
    """Open a store from a URL; keyword options override those in the URL.

    ``memory://``, ``sqlite:///relative.db`` / ``sqlite:////abs/path.db``...
    (see each backend), ``couchdb://user:pass@host:port/dbname?opt=value``.
    Query string options are converted to the types of the backend's keyword
    arguments.

    :raises UnknownBackendError, MissingBackendError: see :func:`load_backend`.
    :raises StoreOptionError: for a bad URL or option.
    """
    return STORES.open(url, **options)
