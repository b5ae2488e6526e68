""":class:`SqliteStore`: connections, transactions and caches around the reads of
:mod:`wmstats_sqlite._queries` and the writes of :mod:`wmstats_sqlite._writes`.
"""

from __future__ import annotations

import collections
import os
import sqlite3
import threading
import typing
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Final

import ujson

from wmstats.backends.codec import decode_line
from wmstats.query import Filter, Page, Query, Scalar, budget, field_spec
from wmstats.schema import Agent, Summary, Workflow, WorkflowBundle
from wmstats.store import (
    Checkpoint,
    EncodedPage,
    SourceEntry,
    Store,
    StoreError,
    StoreOptionError,
)
from wmstats_sqlite import _ranks, _writes
from wmstats_sqlite._jobs import SqliteJobs
from wmstats_sqlite._queries import Queries, project_lines, regexp
from wmstats_sqlite._warm import FileWarmer
from wmstats_sqlite._schema import (
    BATCH,
    MIGRATES_FROM,
    SCHEMA_VERSION,
    TEXT_FTS,
    Layout,
    older,
)

__all__ = ["SqliteStore"]

#: Match counts remembered per store (keyed by snapshot id and filters).
_COUNT_CACHE: Final = 256
#: distinct/aggregate answers remembered per store (keyed by snapshot id and query).
_RESULT_CACHE: Final = 64
#: Rows of each index ANALYZE samples (``PRAGMA analysis_limit``).
_ANALYSIS_LIMIT: Final = 2000
#: Rows a stream reads at a time (at most): about 0.7 MB of JSON text, what one
#: stream holds besides its page cache, whatever the ``batch_size`` asked.
_STREAM_ROWS: Final = 256
#: sqlite VM instructions between two looks at the request's time budget.
_BUDGET_STEPS: Final = 1000
_T = typing.TypeVar("_T")


class SqliteStore(SqliteJobs, Store):
    """Workflows and agents in one sqlite database file.

    One connection per thread; writes are serialized by a lock (and, across
    processes, by sqlite's own write lock).  Pages and streams of records are read
    as the JSON text stored for each record (:meth:`query_encoded`), never decoded.

    Memory is bounded by the connections' page caches: ``cache_kb`` for each
    reading connection (one per thread that reads: a server's worker threads, and
    one per open :meth:`stream`), ``write_cache_kb`` for the connection that writes,
    while it writes (then it shrinks back to ``cache_kb``).  The file's pages are
    otherwise in the kernel's page cache, which reads go through.

    :param path: the database file (created if missing).
    :param timeout: seconds to wait for another process's write lock.
    :param cache_kb: page cache of each reading connection, in KiB.
    :param write_cache_kb: page cache of the writing connection during a write, in
        KiB (a whole-snapshot replace builds its indexes in it).
    :param compress: zlib-compress the per-workflow blobs.
    :param synchronous: sqlite ``synchronous`` pragma (``NORMAL`` is safe with WAL).
    """

    backend: ClassVar[str] = "sqlite"
    keeps_checkpoints: ClassVar[bool] = True

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0,
                 cache_kb: int = 4096, write_cache_kb: int = 32768, compress: bool = True,
                 synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreOptionError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, "
                                   f"got {synchronous!r}")
        self.path = Path(path)
        self._timeout = timeout
        self._cache_kb = int(cache_kb)
        self._write_cache_kb = int(write_cache_kb)
        if self._cache_kb < 0 or self._write_cache_kb < 0:
            raise StoreOptionError("cache_kb and write_cache_kb must be >= 0")
        self._compress = compress
        self._synchronous = synchronous.upper()
        self._layout = Layout()
        self._sql = Queries(self._layout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._counts: collections.OrderedDict[tuple[str, tuple[Filter, ...]], int] = \
            collections.OrderedDict()
        self._results: collections.OrderedDict[tuple[Any, ...], object] = \
            collections.OrderedDict()
        #: the rank marks of the name order of one snapshot (built by the first deep
        #: page of every workflow in name order, carried by this store's writes)
        self._marks: _ranks.RankMarks | None = None
        self._marks_lock = threading.Lock()
        self._closed = False
        #: what :meth:`warm` started (``None``: not asked)
        self.warmer: FileWarmer | None = None
        self._reads = _Reads()
        try:
            con = self._connection()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the sqlite database {path!r}: {exc}") from exc
        #: the layout of a file written by an older version, until replace() rebuilds it
        self._stale: str | None = None
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(self._layout.create_meta)
                version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if version is None or version[0] == SCHEMA_VERSION:
                    _writes.create(con, self._layout, fresh=version is None)
                elif version[0] in MIGRATES_FROM:
                    _writes.migrate(con, self._layout, version[0])
                elif older(version[0]):
                    self._stale = str(version[0])
                else:
                    raise StoreOptionError(f"{self.path} has sqlite store layout "
                                           f"{version[0]}, newer than this version's "
                                           f"{SCHEMA_VERSION}: use a newer wmstats")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        if url.netloc:
            raise StoreOptionError(f"sqlite URLs take no host: {url.geturl()!r} (use "
                                   f"sqlite:///relative.db or sqlite:////abs/path.db)")
        path = urllib.parse.unquote(url.path)
        if path.startswith("/"):
            path = path[1:]
        if not path:
            raise StoreOptionError(f"sqlite URL without a file path: {url.geturl()!r}")
        return {"path": path}

    # ------------------------------------------------------------------ connections

    def _connection(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is not None:
            return con
        if self._closed:
            raise sqlite3.ProgrammingError("the store is closed")
        con = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                              check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={self._synchronous}")
        con.execute(f"PRAGMA cache_size=-{self._cache_kb}")
        con.execute("PRAGMA temp_store=MEMORY")
        _prepare(con)
        self._local.con = con
        with self._lock:
            self._connections.append(con)
        return con

    def warm(self) -> None:
        """Read the database file (and its WAL) once in the background, into the
        kernel's page cache, unless it takes more than 3/4 of the memory available
        (:class:`~wmstats_sqlite._warm.FileWarmer`): the first queries after a
        restart then find their pages in memory instead of reading them from disk
        one at a time.  It waits while a read of this store is under way (the
        disk is theirs first).  Once per store; :meth:`close` stops it."""
        with self._lock:
            if self.warmer is None and not self._closed:
                self.warmer = FileWarmer([self.path, Path(f"{self.path}-wal")],
                                         busy=self._reads.busy)

    @property
    def warming(self) -> bool:
        warmer = self.warmer
        return warmer is not None and not warmer.done.is_set()

    def close(self) -> None:
        """Close every connection (of every thread); stop :meth:`warm`'s reading."""
        with self._lock:
            self._closed = True  # no warm() after this
            warmer = self.warmer
        if warmer is not None:
            warmer.close()
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()

    def _check_layout(self, con: sqlite3.Connection) -> None:
        """Refuse to read a file of an older layout (unless another process has
        rebuilt it meanwhile)."""
        if self._stale is None:
            return
        version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is not None and version[0] == SCHEMA_VERSION:
            self._stale = None
            return
        raise StoreError(f"{self.path} has the sqlite store layout {self._stale} of an older "
                         f"wmstats; this version needs {SCHEMA_VERSION}: replace the whole "
                         f"snapshot (wmstats load --store sqlite:///{self.path} ..., or "
                         f"serve with --mock or --source) to rebuild it")

    def _writing(self) -> _WriteCache:
        """``with``: this thread's connection, its page cache grown for a write."""
        return _WriteCache(self._connection(), self._write_cache_kb, self._cache_kb)

    def _read(self) -> _ReadTransaction:
        return _ReadTransaction(self._connection(), self._check_layout, self._reads)

    # ------------------------------------------------------------------ writes

    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        return self._replace(bundles, agents, None, ())

    def replace_from_source(self, checkpoint: Checkpoint, bundles: Iterable[WorkflowBundle],
                            agents: Iterable[Agent] = (),
                            entries: Iterable[SourceEntry] = ()) -> str:
        return self._replace(bundles, agents, checkpoint, entries)

    def _replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent],
                 checkpoint: Checkpoint | None, entries: Iterable[SourceEntry]) -> str:
        with self._write_lock, self._writing() as con:
            layout = self._layout
            con.execute("BEGIN IMMEDIATE")
            try:
                if self._stale is not None:
                    _writes.drop_older(con, layout)
                for statement in layout.drop_indexes:
                    con.execute(statement)
                for table in ("workflow", "workflow_value", "workflow_doc", "site_sum",
                              "agent", "source_entry"):
                    con.execute(f"DELETE FROM {table}")
                con.execute(f"DROP TABLE IF EXISTS {TEXT_FTS}")  # faster than deleting
                con.execute(layout.create_text_fts)
                _writes.insert(con, layout, bundles, compress=self._compress)
                _writes.rebuild_trigrams(con)
                _writes.insert_agents(con, agents)
                for statement in layout.indexes:
                    con.execute(statement)
                # Statistics from a sample of each index: enough for the planner, and
                # seconds instead of minutes at a million workflows.
                con.execute(f"PRAGMA analysis_limit={_ANALYSIS_LIMIT}")
                con.execute("ANALYZE")
                _writes.drop_checkpoint(con)
                if checkpoint is not None:
                    _writes.write_entries(con, entries)
                    _writes.keep_checkpoint(con, checkpoint)
                sid = _writes.finish(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self._stale = None
            return sid

    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        return self._apply(upserts, deletes, agents, deleted_agents, None, (), ())

    def apply_from_source(self, checkpoint: Checkpoint, upserts: Iterable[WorkflowBundle] = (),
                          deletes: Iterable[str] = (), *, agents: Iterable[Agent] = (),
                          deleted_agents: Iterable[str] = (),
                          entries: Iterable[SourceEntry] = (),
                          deleted_entries: Iterable[str] = ()) -> str:
        return self._apply(upserts, deletes, agents, deleted_agents, checkpoint, entries,
                           deleted_entries)

    def _apply(self, upserts: Iterable[WorkflowBundle], deletes: Iterable[str],
               agents: Iterable[Agent], deleted_agents: Iterable[str],
               checkpoint: Checkpoint | None, entries: Iterable[SourceEntry],
               deleted_entries: Iterable[str]) -> str:
        with self._write_lock, self._writing() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                self._check_layout(con)
                upserts = list(upserts)
                deletes = list(deletes)
                marks = self._marks
                if marks is not None and marks.snapshot != self._meta(con)[0]:
                    marks = None  # another process wrote since: built again when read
                touched = {b.workflow.RequestName for b in upserts} | set(deletes)
                before = set() if marks is None else _ranks.present(con, touched, BATCH)
                counts = _writes.TrigramCounts()
                _writes.delete(con, [b.workflow.RequestName for b in upserts], counts)
                _writes.insert(con, self._layout, upserts, compress=self._compress,
                               counts=counts)
                _writes.delete(con, deletes, counts)
                _writes.count_trigrams(con, counts)
                _writes.insert_agents(con, agents)
                con.executemany("DELETE FROM agent WHERE url = ?",
                                [(url,) for url in deleted_agents])
                if checkpoint is None:
                    _writes.drop_checkpoint(con)
                else:
                    _writes.write_entries(con, entries, deleted_entries)
                    _writes.keep_checkpoint(con, checkpoint)
                sid = _writes.finish(con)
                if marks is not None:
                    after = _ranks.present(con, touched, BATCH)
                    marks = marks.moved(sid, before - after, after - before)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if marks is not None:
                with self._lock:
                    self._marks = marks
            return sid

    def checkpoint(self) -> Checkpoint | None:
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'checkpoint'").fetchone()
        if row is None:
            return None
        kept = ujson.loads(row[0])
        return Checkpoint(kept["source"], kept["sequences"])

    def source_entries(self, *, keys: Iterable[str] = (),
                       groups: Iterable[str] = ()) -> list[SourceEntry]:
        found: dict[str, SourceEntry] = {}
        with self._read() as con:
            for column, wanted in (("key", list(dict.fromkeys(keys))),
                                   ("grp", list(dict.fromkeys(groups)))):
                for start in range(0, len(wanted), BATCH):
                    chunk = wanted[start:start + BATCH]
                    marks = ", ".join("?" for _ in chunk)
                    for key, group, data in con.execute(
                            f"SELECT key, grp, data FROM source_entry "
                            f"WHERE {column} IN ({marks})", chunk):
                        found[key] = SourceEntry(key, group, bytes(data))
        return list(found.values())

    # ------------------------------------------------------------------ reads

    @property
    def snapshot_id(self) -> str:
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'snapshot'").fetchone()
        return str(row[0])

    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        wanted = list(dict.fromkeys(names))
        with self._read() as con:
            return self._sql.bundles(con, wanted)

    def get_parts(self, names: Iterable[str],
                  parts: Collection[str]) -> dict[str, WorkflowBundle]:
        super().get_parts((), parts)  # ValueError for an unknown part
        wanted = list(dict.fromkeys(names))
        with self._read() as con:
            return self._sql.bundles(con, wanted, frozenset(parts))

    def query(self, query: Query = Query()) -> Page:
        with self._read() as con:
            sid, total, lines = self._page(con, query)
        workflows = tuple(decode_line(line) for line in lines)
        return Page(workflows, total, query.idx, query.limit, sid, query.fields)

    def query_encoded(self, query: Query = Query()) -> EncodedPage:
        """The page's records as their stored JSON text (masked here when the
        query has a field mask)."""
        with self._read() as con:
            sid, total, lines = self._page(con, query)
        return EncodedPage(project_lines(lines, query.fields), total, sid)

    def _page(self, con: sqlite3.Connection, query: Query) -> tuple[str, int, list[bytes]]:
        snapshot, count = self._meta(con)
        total = self._count(con, snapshot, count, query.filters)
        if query.limit == 0 or query.idx >= total:
            return snapshot, total, []
        rows = self._marked_rows(con, snapshot, total, query)
        if rows is None:
            rows = self._sql.page_rows(con, query, total, count,
                                       lambda f: self._count(con, snapshot, count, (f,)))
        return snapshot, total, self._sql.lines(con, rows)

    def _marked_rows(self, con: sqlite3.Connection, snapshot: str, total: int, query: Query
                     ) -> list[int] | None:
        """The rows of a deep page of every workflow in name order (no filter,
        ``idx`` at least a step of the rank marks), its walk started at a rank
        mark (:mod:`wmstats_sqlite._ranks`); ``None`` for other pages."""
        name, direction = query.sort_spec()[0]
        if query.filters or name != "RequestName" or query.idx < _ranks.STEP:
            return None
        with self._marks_lock:  # one walk builds them, the other threads wait for it
            marks = self._marks
            if marks is None or marks.snapshot != snapshot or not marks.balanced():
                # Once per snapshot for every later deep page: a walk of the whole
                # name index (~0.1 s at 1,000,000 names with the index cached, more
                # when read from disk) that the first request's budget must not cut
                # short, or no deep page would succeed before the cache is warm.
                with budget.unbudgeted():
                    marks = _ranks.build(con, snapshot, _ranks.STEP)
                with self._lock:
                    self._marks = marks
        if marks.total != total:  # never expected: the snapshot id names the data
            return None
        descending = direction == "desc"
        bound, offset = marks.seek(query.idx, descending)
        return self._sql.name_rows(con, descending, bound, offset,
                                   -1 if query.limit is None else query.limit)

    @staticmethod
    def _meta(con: sqlite3.Connection) -> tuple[str, int]:
        """The snapshot id and the workflow count."""
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN "
                                "('snapshot', 'count')").fetchall())
        return meta["snapshot"], int(meta["count"])

    def _count(self, con: sqlite3.Connection, snapshot: str, count: int,
               filters: tuple[Filter, ...]) -> int:
        """How many workflows match; remembered per (snapshot, filters)."""
        if not filters:
            return count
        key = (snapshot, filters)
        with self._lock:
            found = self._counts.get(key)
            if found is not None:
                self._counts.move_to_end(key)
                return found
        total = self._sql.count(con, filters, count)
        with self._lock:
            self._counts[key] = total
            while len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
        return total

    def stream(self, query: Query = Query(), batch_size: int = 1000) -> Iterator[Workflow]:
        """Every record of ``query``, read from one snapshot (one read transaction)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        return (decode_line(line) for lines in self._stream(query, batch_size)
                for line in lines)

    def stream_encoded(self, query: Query = Query(), batch_size: int = 1000
                       ) -> Iterator[bytes]:
        """Every record of ``query`` as its stored JSON text, from one snapshot."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        return (line for lines in self._stream(query, batch_size)
                for line in project_lines(lines, query.fields))

    def _stream(self, query: Query, batch_size: int) -> Iterator[list[bytes]]:
        # A dedicated connection: the generator may be consumed slowly, or
        # interleaved with other queries of this thread.
        budget.check()
        con = _prepare(sqlite3.connect(self.path, timeout=self._timeout,
                                       isolation_level=None, check_same_thread=False))
        con.execute(f"PRAGMA cache_size=-{self._cache_kb}")
        try:
            con.execute("BEGIN")
            self._check_layout(con)
            self._reads.enter()
            try:
                yield from self._sql.stream(con, query, min(batch_size, _STREAM_ROWS))
            finally:
                self._reads.leave()
        except sqlite3.OperationalError:
            budget.check()  # interrupted by the progress handler: the budget is spent
            raise
        finally:
            con.close()

    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        field_spec(field)  # QueryError for an unknown field
        filters = () if query is None else query.filters
        return list(self._cached(("distinct", field, filters),
                                 lambda con: self._sql.distinct(con, field, filters)))

    def aggregate(self, by: str, query: Query | None = None) -> list[Summary]:
        agg = self.aggregate_of(by)
        filters = () if query is None else query.filters
        return list(self._cached(("aggregate", by, filters),
                                 lambda con: self._sql.aggregate(con, agg, filters)))

    def _cached(self, key: tuple[Any, ...], compute: Callable[[sqlite3.Connection], _T]) -> _T:
        """``compute(con)`` in a read transaction, remembered per snapshot id (the
        answers of distinct and aggregate depend on nothing else)."""
        with self._read() as con:
            snapshot = con.execute("SELECT value FROM meta WHERE key = 'snapshot'").fetchone()[0]
            full = (snapshot, *key)
            with self._lock:
                if full in self._results:
                    self._results.move_to_end(full)
                    return typing.cast(_T, self._results[full])
            value = compute(con)
        with self._lock:
            self._results[full] = value
            while len(self._results) > _RESULT_CACHE:
                self._results.popitem(last=False)
        return value

    def get_agents(self, urls: Iterable[str] | None = None) -> list[Agent]:
        with self._read() as con:
            return self._sql.agents(con, urls)

    def count(self, query: Query | None = None) -> int:
        with self._read() as con:
            snapshot, count = self._meta(con)
            return self._count(con, snapshot, count, () if query is None else query.filters)


def _prepare(con: sqlite3.Connection) -> sqlite3.Connection:
    """Register ``REGEXP`` on a new connection, and let sqlite stop any statement
    once the request's time budget is spent (:mod:`wmstats.query.budget`): the
    progress handler interrupts it, and the store raises
    :class:`~wmstats.query.QueryTimeoutError`."""
    con.create_function("regexp", 2, regexp, deterministic=True)
    con.set_progress_handler(budget.expired, _BUDGET_STEPS)
    return con


class _WriteCache:
    """``with``: a connection whose page cache is ``size`` KiB inside, ``after`` KiB
    after (sqlite frees the pages beyond a smaller cache)."""

    def __init__(self, con: sqlite3.Connection, size: int, after: int) -> None:
        self.con, self.size, self.after = con, size, after

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute(f"PRAGMA cache_size=-{self.size}")
        return self.con

    def __exit__(self, *exc_info: object) -> None:
        self.con.execute(f"PRAGMA cache_size=-{self.after}")


class _Reads:
    """How many read transactions are open (the warming waits while any is)."""

    __slots__ = ("_lock", "_open")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    def enter(self) -> None:
        with self._lock:
            self._open += 1

    def leave(self) -> None:
        with self._lock:
            self._open -= 1

    def busy(self) -> bool:
        return self._open > 0


class _ReadTransaction:
    """``with``: one read transaction, so every statement sees the same snapshot.

    A read starts only within the request's time budget, and a statement that the
    budget interrupted raises :class:`~wmstats.query.QueryTimeoutError`.

    :param check: called with the connection inside the transaction, first (it
        raises to refuse the read).
    """

    def __init__(self, con: sqlite3.Connection,
                 check: Callable[[sqlite3.Connection], None], reads: _Reads) -> None:
        self.con = con
        self.nested = con.in_transaction
        self.check = check
        self.reads = reads

    def __enter__(self) -> sqlite3.Connection:
        budget.check()
        if not self.nested:
            self.con.execute("BEGIN")
        try:
            self.check(self.con)
        except BaseException:
            if not self.nested:
                self.con.execute("ROLLBACK")
            raise
        self.reads.enter()
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.reads.leave()
        if not self.nested and self.con.in_transaction:
            self.con.execute("COMMIT")
        if isinstance(exc, sqlite3.OperationalError):
            budget.check()  # interrupted by the progress handler: the budget is spent
