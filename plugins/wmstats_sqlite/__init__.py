"""The sqlite store backend (``sqlite:///relative.db``, ``sqlite:////abs/path.db``).

Standard library :mod:`sqlite3`, one database file in WAL mode, so any number of
readers (threads or processes) read while one writer writes.

Tables:

``workflow``
    one row per workflow: ``row`` (integer key) and one column per scalar
    :class:`~wmstats.schema.Workflow` field; tuple fields hold their elements
    joined by ``"\\x1f"`` (their sort key).  Indexes ``(Field, RequestName)`` on
    the fields people filter and sort on (:data:`INDEXED_FIELDS`).
``workflow_value``
    one row per element of a tuple field: ``(field, value, row)``, the primary
    key, so "any element matches" filters are index lookups.
``workflow_doc``
    the workflow record (positional JSON) and the bundle's other records (one
    blob, :mod:`wmstats.backends.codec`: sites, tasks, task-sites, datasets,
    parentage, status history), read only for the page returned and by
    :meth:`SqliteStore.get_many`.
``site_sum``
    per workflow and per aggregate that sums WorkflowSite records (``site``,
    ``agent``: see :data:`wmstats.aggregates.AGGREGATES`), the workflow's
    WorkflowSite counters summed per value (``agg``, ``name``): what those
    aggregates add up.
``agent``, ``meta``
    agent records (JSON); the layout version, the snapshot id, the workflow
    count and the aggregates ``site_sum`` holds (when the aggregate table
    changes, ``site_sum`` is rebuilt from the stored records on opening).

A file of an older layout is opened but cannot be read: :meth:`SqliteStore.replace`
rebuilds it in the current layout.  A file of a newer layout is refused.

Filters, sort, paging, distinct and aggregates are all SQL with bound
parameters (column names come only from the schema whitelist); regular
expressions go through a registered ``REGEXP`` function, wildcards through
``GLOB`` with ``[`` escaped.  A whole-snapshot replace runs in one transaction
(indexes dropped, rows rewritten, indexes rebuilt, ``ANALYZE``): a failure
rolls back and the previous snapshot stays as it was.
"""

from __future__ import annotations

import collections
import os
import re
import sqlite3
import threading
import typing
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import ujson

from wmstats.aggregates import AGGREGATES
from wmstats.backends.codec import (
    decode_bundle,
    decode_workflow,
    encode_parts,
    encode_workflow,
    record_from_values,
)
from wmstats.query import (
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
from wmstats.serialize import json_dumps
from wmstats.store import Store, StoreError, StoreOptionError

__all__ = ["SqliteStore", "INDEXED_FIELDS", "SCHEMA_VERSION"]

#: Bumped when the table layout changes (see the module docstring for older files).
#: 3: ``site_sum`` keyed by aggregate.  4: the status history is a bundle part
#: (RequestTransition records), no longer a Workflow field.
SCHEMA_VERSION: Final = "4"
#: Workflow columns with an ``(field, RequestName)`` index.
INDEXED_FIELDS: Final = (
    "RequestStatus", "RequestType", "SubRequestType", "Campaign", "Group", "Requestor",
    "PrepID", "CMSSWVersion", "InputDataset", "RequestPriority", "RequestDate",
    "StatusTime", "AgentUpdate",
)
_BATCH: Final = 500
#: Match counts remembered per store (keyed by snapshot id and filters).
_COUNT_CACHE: Final = 256
#: distinct/aggregate answers remembered per store (keyed by snapshot id and query).
_RESULT_CACHE: Final = 64
_T = typing.TypeVar("_T")
_N: Final = len(COUNTER_FIELDS)


def _columns() -> tuple[str, ...]:
    """Workflow columns: every field that filters can name, in schema order."""
    return tuple(name for name, spec in field_specs().items() if spec.filterable)


def _quote(name: str) -> str:
    # Only schema field names get here (validated by Filter/Query); quoting keeps
    # reserved words such as "Group" usable.
    assert name.isidentifier(), name
    return f'"{name}"'


def _regexp(pattern: str, value: object) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def _glob(pattern: str) -> str:
    """Our glob (only ``*`` and ``?`` special) as an sqlite GLOB pattern."""
    return pattern.replace("[", "[[]")


#: :meth:`_Sql.where`: let sqlite pick the filter that drives the query.
ANY_DRIVER: Final = object()


class _Sql:
    """SQL text shared by every connection of one store (built once)."""

    def __init__(self) -> None:
        specs = field_specs()
        self.columns = _columns()
        self.many = tuple(name for name in self.columns if specs[name].many)
        self.field_ids = {name: i for i, name in enumerate(self.columns)}
        cols = ", ".join(_quote(c) for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.insert_workflow = f"INSERT INTO workflow (row, {cols}) VALUES (?, {marks})"
        counters = ", ".join(f"c{i}" for i in range(_N))
        self.insert_sum = (f"INSERT INTO site_sum (row, agg, name, {counters}) "
                           f"VALUES (?, ?, ?, {', '.join('?' for _ in range(_N))})")
        #: (aggregate key, WorkflowSite field, Workflow field) of the aggregates
        #: that sum WorkflowSite records, read from the table when the store is made.
        self.site_sums = tuple((a.key, a.site_field, a.field) for a in AGGREGATES
                               if a.site_field is not None)
        self.site_sum_keys = ",".join(key for key, _site, _field in self.site_sums)
        self.sum_columns = ", ".join(f"SUM(s.c{i})" for i in range(_N))
        self.workflow_sums = ", ".join(f"SUM(w.{_quote(c)})" for c in COUNTER_FIELDS)
        col_defs = ", ".join(
            f"{_quote(name)} {'TEXT' if specs[name].kind == 'str' else 'INTEGER'} NOT NULL"
            for name in self.columns)
        self.create_meta = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                            "value TEXT NOT NULL)")
        self.create = [
            self.create_meta,
            f"CREATE TABLE IF NOT EXISTS workflow (row INTEGER PRIMARY KEY, {col_defs})",
            "CREATE UNIQUE INDEX IF NOT EXISTS workflow_name ON workflow (RequestName)",
            "CREATE TABLE IF NOT EXISTS workflow_value (field INTEGER NOT NULL, "
            "value NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (field, value, row)) "
            "WITHOUT ROWID",
            "DROP INDEX IF EXISTS workflow_value_row",
            "CREATE INDEX IF NOT EXISTS workflow_value_by_row ON workflow_value (row, field)",
            "CREATE TABLE IF NOT EXISTS workflow_doc (row INTEGER PRIMARY KEY, "
            "doc TEXT NOT NULL, parts BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS site_sum (row INTEGER NOT NULL, agg TEXT NOT NULL, "
            f"name TEXT NOT NULL, {', '.join(f'c{i} INTEGER NOT NULL' for i in range(_N))}, "
            f"PRIMARY KEY (row, agg, name)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS agent (url TEXT PRIMARY KEY, doc TEXT NOT NULL)",
        ]
        self.indexes = [
            f"CREATE INDEX IF NOT EXISTS workflow_by_{name} ON workflow "
            f"({_quote(name)}, RequestName)" for name in INDEXED_FIELDS
        ]
        self.drop_indexes = [f"DROP INDEX IF EXISTS workflow_by_{name}"
                             for name in INDEXED_FIELDS]

    # ------------------------------------------------------------------ filters

    def condition(self, flt: Filter, drive: bool = True) -> tuple[str, list[Any]]:
        """SQL for one filter on the workflow table aliased ``w``.

        :param drive: whether sqlite may drive the query from this filter's index.
            ``False`` writes it as a per-row test instead (a unary ``+`` on the
            column; an ``EXISTS`` probe of the primary key for tuple fields).
        """
        spec = flt.spec
        if spec.many:
            inner, params = self._value_condition("v.value", flt)
            params = [self.field_ids[flt.field], *params]
            if drive:
                return (f"w.row IN (SELECT v.row FROM workflow_value v WHERE v.field = ? "
                        f"AND ({inner}))", params)
            return (f"EXISTS (SELECT 1 FROM workflow_value v WHERE v.field = ? "
                    f"AND v.row = w.row AND ({inner}))", params)
        return self._value_condition(f"{'' if drive else '+'}w.{_quote(flt.field)}", flt)

    @staticmethod
    def _value_condition(column: str, flt: Filter) -> tuple[str, list[Any]]:
        values = list(flt.values)
        if flt.op == "eq":
            if len(values) == 1:
                return f"{column} = ?", values
            return f"{column} IN ({', '.join('?' for _ in values)})", values
        if flt.op == "glob":
            return (" OR ".join(f"{column} GLOB ?" for _ in values),
                    [_glob(str(v)) for v in values])
        if flt.op == "re":
            return " OR ".join(f"{column} REGEXP ?" for _ in values), values
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[flt.op]
        return f"{column} {symbol} ?", values

    def where(self, filters: Sequence[Filter], driver: Filter | None | object = ANY_DRIVER,
              sort_field: str = "") -> tuple[str, list[Any]]:
        """The WHERE clause of the filters (AND).

        :param driver: the one filter whose index may drive the query; ``None``
            for none (walk the sort order); :data:`ANY_DRIVER` to let sqlite choose.
        :param sort_field: filters on this field stay indexable (they narrow the
            walk of the sort order's own index).
        """
        if not filters:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        for flt in filters:
            sql, values = self.condition(flt, driver is ANY_DRIVER or flt is driver
                                         or flt.field == sort_field)
            parts.append(f"({sql})")
            params.extend(values)
        return " WHERE " + " AND ".join(parts), params

    @staticmethod
    def ordered_by_index(query: Query) -> bool:
        """Whether an index holds the query's order (one field, then RequestName,
        both in one direction)."""
        spec = query.sort_spec()
        if spec[0][0] == "RequestName":
            return True
        return (len(spec) == 2 and spec[0][0] in INDEXED_FIELDS and spec[1][0] == "RequestName"
                and spec[0][1] == spec[1][1])

    @staticmethod
    def order_by(query: Query) -> str:
        return " ORDER BY " + ", ".join(
            f"w.{_quote(name)} {'DESC' if direction == 'desc' else 'ASC'}"
            for name, direction in query.sort_spec())

    # ------------------------------------------------------------------ rows

    def workflow_row(self, row: int, wf: Workflow) -> list[Any]:
        values: list[Any] = [row]
        for name in self.columns:
            value = getattr(wf, name)
            if isinstance(value, tuple):
                value = SORT_SEPARATOR.join(value)
            values.append(value)
        return values

    def value_rows(self, row: int, wf: Workflow) -> Iterator[tuple[int, str, int]]:
        for name in self.many:
            field_id = self.field_ids[name]
            for value in set(getattr(wf, name)):
                yield field_id, value, row

    def sum_rows(self, row: int, bundle: WorkflowBundle) -> list[list[Any]]:
        """Per aggregate of :attr:`site_sums`, the WorkflowSite counters summed per
        value; only for the values the workflow holds (a site in ``Workflow.Sites``,
        an agent in ``Workflow.Agents``: what :func:`wmstats.query.summarize` counts)."""
        if not self.site_sums or not bundle.sites:
            return []
        sums: dict[tuple[str, str], list[int]] = {}
        wf = bundle.workflow
        held = [(key, site_field, frozenset(getattr(wf, field)))
                for key, site_field, field in self.site_sums]
        for ws in bundle.sites:
            counts = [getattr(ws, name) for name in COUNTER_FIELDS]
            for key, site_field, values in held:
                value = getattr(ws, site_field)
                if value not in values:
                    continue
                acc = sums.get((key, value))
                if acc is None:
                    sums[key, value] = counts[:]
                else:
                    for i, count in enumerate(counts):
                        acc[i] += count
        return [[row, key, name, *counts] for (key, name), counts in sums.items()]


class SqliteStore(Store):
    """Workflows and agents in one sqlite database file.

    One connection per thread; writes are serialized by a lock (and, across
    processes, by sqlite's own write lock).

    :param path: the database file (created if missing).
    :param timeout: seconds to wait for another process's write lock.
    :param cache_kb: page cache per connection, in KiB.
    :param compress: zlib-compress the per-workflow blobs.
    :param synchronous: sqlite ``synchronous`` pragma (``NORMAL`` is safe with WAL).
    :param cache_workflows: decoded workflow records kept in this process (LRU;
        0 disables).  A row number always holds the same content, so the cache
        never needs invalidating.
    """

    backend: ClassVar[str] = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0,
                 cache_kb: int = 32768, compress: bool = True,
                 synchronous: str = "NORMAL", cache_workflows: int = 10_000) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreOptionError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, "
                                   f"got {synchronous!r}")
        self.path = Path(path)
        self._timeout = timeout
        self._cache_kb = cache_kb
        self._compress = compress
        self._synchronous = synchronous.upper()
        self._sql = _Sql()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._counts: collections.OrderedDict[tuple[str, tuple[Filter, ...]], int] = \
            collections.OrderedDict()
        self._results: collections.OrderedDict[tuple[Any, ...], object] = \
            collections.OrderedDict()
        self._cache_size = cache_workflows
        self._decoded: collections.OrderedDict[int, Workflow] = collections.OrderedDict()
        self._closed = False
        try:
            con = self._connection()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the sqlite database {path!r}: {exc}") from exc
        #: the layout of a file written by an older version, until replace() rebuilds it
        self._stale: str | None = None
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(self._sql.create_meta)
                version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if version is None or version[0] == SCHEMA_VERSION:
                    self._create(con, fresh=version is None)
                elif _older(version[0]):
                    self._stale = str(version[0])
                else:
                    raise StoreOptionError(f"{self.path} has sqlite store layout "
                                           f"{version[0]}, newer than this version's "
                                           f"{SCHEMA_VERSION}: use a newer wmstats")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _create(self, con: sqlite3.Connection, fresh: bool) -> None:
        """Create the tables (``fresh``: and the meta rows) of the current layout; bring
        ``site_sum`` up to the aggregate table.  In the caller's write transaction."""
        sql = self._sql
        for statement in (*sql.create, *sql.indexes):
            con.execute(statement)
        if fresh:
            con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                            [("schema", SCHEMA_VERSION), ("snapshot", _new_id()),
                             ("count", "0"), ("site_sums", sql.site_sum_keys)])
        con.execute("INSERT OR IGNORE INTO meta (key, value) SELECT 'next_row', "
                    "COALESCE(MAX(row), 0) + 1 FROM workflow")
        stored = con.execute("SELECT value FROM meta WHERE key = 'site_sums'").fetchone()
        if stored is None or stored[0] != sql.site_sum_keys:
            self._rebuild_site_sums(con)

    def _rebuild_site_sums(self, con: sqlite3.Connection) -> None:
        """Recompute ``site_sum`` from the stored bundles (the aggregate table has
        changed since the file was written); a new snapshot id, as answers change."""
        sql = self._sql
        con.execute("DELETE FROM site_sum")
        cursor = con.execute("SELECT row, doc, parts FROM workflow_doc")
        while True:
            found = cursor.fetchmany(_BATCH)
            if not found:
                break
            con.executemany(sql.insert_sum, [
                s for row, doc, parts in found
                for s in sql.sum_rows(row, decode_bundle(decode_workflow(doc), parts))])
        con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        [("site_sums", sql.site_sum_keys), ("snapshot", _new_id())])

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
        con.execute(f"PRAGMA cache_size=-{int(self._cache_kb)}")
        con.execute("PRAGMA temp_store=MEMORY")
        con.create_function("regexp", 2, _regexp, deterministic=True)
        self._local.con = con
        with self._lock:
            self._connections.append(con)
        return con

    def close(self) -> None:
        """Close every connection (of every thread)."""
        with self._lock:
            self._closed = True
            for con in self._connections:
                con.close()
            self._connections.clear()

    def _read(self) -> _ReadTransaction:
        return _ReadTransaction(self._connection(), self._check_layout)

    # ------------------------------------------------------------------ writes

    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        with self._write_lock:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
            try:
                if self._stale is not None:
                    self._drop_stale(con)
                for statement in self._sql.drop_indexes:
                    con.execute(statement)
                for table in ("workflow", "workflow_value", "workflow_doc", "site_sum",
                              "agent"):
                    con.execute(f"DELETE FROM {table}")
                self._insert(con, bundles, {})
                self._insert_agents(con, agents)
                for statement in self._sql.indexes:
                    con.execute(statement)
                con.execute("ANALYZE")
                sid = self._finish_write(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self._stale = None
            return sid

    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        with self._write_lock:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
            try:
                self._check_layout(con)
                upserts = list(upserts)
                self._delete(con, [b.workflow.RequestName for b in upserts])
                self._insert(con, upserts, {})
                self._delete(con, deletes)
                self._insert_agents(con, agents)
                con.executemany("DELETE FROM agent WHERE url = ?",
                                [(url,) for url in deleted_agents])
                sid = self._finish_write(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return sid

    def _drop_stale(self, con: sqlite3.Connection) -> None:
        """Drop every table of an older layout and create the current ones."""
        version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None or version[0] != SCHEMA_VERSION:
            tables = [name for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
                "AND name NOT LIKE 'sqlite_%'")]
            for table in tables:
                con.execute(f"DROP TABLE {_quote(table)}")
            con.execute("DELETE FROM meta")
            self._create(con, fresh=True)

    def _finish_write(self, con: sqlite3.Connection) -> str:
        sid = _new_id()
        count = con.execute("SELECT COUNT(*) FROM workflow").fetchone()[0]
        con.executemany("UPDATE meta SET value = ? WHERE key = ?",
                        [(sid, "snapshot"), (str(count), "count")])
        return sid

    @staticmethod
    def _delete(con: sqlite3.Connection, names: Iterable[str]) -> None:
        params = [(name,) for name in names]
        for table in ("workflow_value", "workflow_doc", "site_sum"):
            con.executemany(f"DELETE FROM {table} WHERE row IN "
                            f"(SELECT row FROM workflow WHERE RequestName = ?)", params)
        con.executemany("DELETE FROM workflow WHERE RequestName = ?", params)

    def _insert(self, con: sqlite3.Connection, bundles: Iterable[WorkflowBundle],
                rows: dict[str, int]) -> None:
        """Insert bundles under new row numbers.

        Row numbers come from a counter that never goes back (``meta.next_row``),
        so one row number always stands for the same content: the decoded
        workflow cache is keyed by it.
        """
        sql = self._sql
        next_row = int(con.execute("SELECT value FROM meta WHERE key = 'next_row'")
                       .fetchone()[0])
        batch: list[tuple[int, WorkflowBundle]] = []

        def flush() -> None:
            con.executemany(sql.insert_workflow,
                            [sql.workflow_row(row, b.workflow) for row, b in batch])
            con.executemany("INSERT INTO workflow_value (field, value, row) VALUES (?, ?, ?)",
                            [v for row, b in batch for v in sql.value_rows(row, b.workflow)])
            con.executemany("INSERT INTO workflow_doc (row, doc, parts) VALUES (?, ?, ?)",
                            [(row, encode_workflow(b.workflow),
                              encode_parts(b, compress=self._compress)) for row, b in batch])
            con.executemany(sql.insert_sum,
                            [s for row, b in batch for s in sql.sum_rows(row, b)])
            batch.clear()

        for bundle in bundles:
            name = bundle.workflow.RequestName
            if name in rows:
                # A second bundle for one name: the later wins.
                flush()
                self._delete(con, [name])
            rows[name] = next_row
            batch.append((next_row, bundle))
            next_row += 1
            if len(batch) >= _BATCH:
                flush()
        flush()
        con.execute("UPDATE meta SET value = ? WHERE key = 'next_row'", (str(next_row),))

    @staticmethod
    def _insert_agents(con: sqlite3.Connection, agents: Iterable[Agent]) -> None:
        con.executemany(
            "INSERT OR REPLACE INTO agent (url, doc) VALUES (?, ?)",
            ((a.AgentURL, json_dumps(_agent_values(a))) for a in agents))

    # ------------------------------------------------------------------ reads

    @property
    def snapshot_id(self) -> str:
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'snapshot'").fetchone()
        return str(row[0])

    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, WorkflowBundle] = {}
        with self._read() as con:
            for start in range(0, len(wanted), _BATCH):
                chunk = wanted[start:start + _BATCH]
                marks = ", ".join("?" for _ in chunk)
                for doc, parts in con.execute(
                        f"SELECT d.doc, d.parts FROM workflow w JOIN workflow_doc d "
                        f"ON d.row = w.row WHERE w.RequestName IN ({marks})", chunk):
                    workflow = decode_workflow(doc)
                    found[workflow.RequestName] = decode_bundle(workflow, parts)
        return found

    def query(self, query: Query = Query()) -> Page:
        with self._read() as con:
            sid, total, workflows = self._page(con, query)
        return Page(tuple(workflows), total, query.idx, query.limit, sid, query.fields)

    def _page(self, con: sqlite3.Connection, query: Query) -> tuple[str, int, list[Workflow]]:
        sql = self._sql
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN "
                                "('snapshot', 'count')").fetchall())
        snapshot, count = meta["snapshot"], int(meta["count"])
        total = self._count(con, snapshot, count, query.filters)
        if query.limit == 0 or query.idx >= total:
            return snapshot, total, []
        limit = -1 if query.limit is None else query.limit
        # When many rows match, walking the sort order's index and testing each row
        # finds the page sooner than sorting every match: steer sqlite to it.
        # Otherwise let the most selective filter drive, and test the others per row.
        wanted = query.idx + (total if query.limit is None else query.limit)
        driver: Filter | None | object = ANY_DRIVER
        if sql.ordered_by_index(query) and total * total > wanted * count:
            driver = None
        elif len(query.filters) > 1:
            driver = min(query.filters, key=lambda f: self._count(con, snapshot, count, (f,)))
        where, params = sql.where(query.filters, driver, query.sort_spec()[0][0])
        rows = [r for (r,) in con.execute(
            f"SELECT w.row FROM workflow w{where}{sql.order_by(query)} LIMIT ? OFFSET ?",
            [*params, limit, query.idx])]
        return snapshot, total, self._workflows(con, rows)

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
        where, params = self._sql.where(filters)
        total: int = con.execute(f"SELECT COUNT(*) FROM workflow w{where}", params).fetchone()[0]
        with self._lock:
            self._counts[key] = total
            while len(self._counts) > _COUNT_CACHE:
                self._counts.popitem(last=False)
        return total

    def _workflows(self, con: sqlite3.Connection, rows: list[int]) -> list[Workflow]:
        """The workflows of these rows, from the decoded-workflow cache or the table."""
        cache = self._decoded
        found: dict[int, Workflow] = {}
        with self._lock:
            for row in rows:
                hit = cache.get(row)
                if hit is not None:
                    cache.move_to_end(row)
                    found[row] = hit
        missing = [r for r in rows if r not in found]
        for start in range(0, len(missing), _BATCH):
            chunk = missing[start:start + _BATCH]
            marks = ", ".join("?" for _ in chunk)
            for row, doc in con.execute(
                    f"SELECT row, doc FROM workflow_doc WHERE row IN ({marks})", chunk):
                found[row] = decode_workflow(doc)
        if missing and self._cache_size:
            with self._lock:
                for row in missing:
                    cache[row] = found[row]
                while len(cache) > self._cache_size:
                    cache.popitem(last=False)
        return [found[r] for r in rows]

    def stream(self, query: Query = Query(), batch_size: int = 1000) -> Iterator[Workflow]:
        """Every record of ``query``, read from one snapshot (one read transaction)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        return self._stream(query, batch_size)

    def _stream(self, query: Query, batch_size: int) -> Iterator[Workflow]:
        sql = self._sql
        # A dedicated connection: the generator may be consumed slowly, or
        # interleaved with other queries of this thread.
        con = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                              check_same_thread=False)
        con.create_function("regexp", 2, _regexp, deterministic=True)
        try:
            con.execute("BEGIN")
            self._check_layout(con)
            where, params = sql.where(query.filters)
            limit = -1 if query.limit is None else query.limit
            cursor = con.execute(
                f"SELECT d.doc FROM workflow w JOIN workflow_doc d ON d.row = w.row"
                f"{where}{sql.order_by(query)} LIMIT ? OFFSET ?", [*params, limit, query.idx])
            while True:
                docs = cursor.fetchmany(batch_size)
                if not docs:
                    break
                for (doc,) in docs:
                    yield decode_workflow(doc)
        finally:
            con.close()

    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        spec = field_specs().get(field)
        if spec is None or not spec.filterable:
            raise QueryError(field, "unknown field" if spec is None
                             else "field cannot be counted")
        filters = () if query is None else query.filters
        where, params = self._sql.where(filters)
        if spec.many:
            cond = " AND " + where[len(" WHERE "):] if where else ""
            join = " JOIN workflow w ON w.row = v.row" if where else ""
            statement = (f"SELECT v.value, COUNT(*) FROM workflow_value v{join} "
                         f"WHERE v.field = ?{cond} GROUP BY v.value ORDER BY v.value")
            params = [self._sql.field_ids[field], *params]
        else:
            column = f"w.{_quote(field)}"
            statement = (f"SELECT {column}, COUNT(*) FROM workflow w{where} "
                         f"GROUP BY {column} ORDER BY {column}")

        def compute(con: sqlite3.Connection) -> list[tuple[Scalar, int]]:
            found = con.execute(statement, params).fetchall()
            if spec.kind == "bool":
                return [(bool(value), count) for value, count in found]
            return [(value, count) for value, count in found]

        return list(self._cached(("distinct", field, filters), compute))

    def aggregate(self, by: str, query: Query | None = None) -> list[Summary]:
        self.aggregate_of(by)
        filters = () if query is None else query.filters
        return list(self._cached(("aggregate", by, filters),
                                 lambda con: self._aggregate(con, by, filters)))

    def _aggregate(self, con: sqlite3.Connection, by: str,
                   filters: tuple[Filter, ...]) -> list[Summary]:
        sql = self._sql
        agg = self.aggregate_of(by)
        field = agg.field
        where, params = sql.where(filters)
        cond = " AND " + where[len(" WHERE "):] if where else ""
        if field_specs()[field].many:
            key = "v.value"
            source = ("workflow_value v JOIN workflow w ON w.row = v.row "
                      "WHERE v.field = ?" + cond)
            key_params = [sql.field_ids[field], *params]
        else:
            key = f"w.{_quote(field)}"
            source = "workflow w" + where
            key_params = list(params)
        statuses: dict[str, dict[str, int]] = {}
        counters: dict[str, list[int]] = {}
        for value, status, count in con.execute(
                f"SELECT {key}, w.RequestStatus, COUNT(*) FROM {source} "
                f"GROUP BY {key}, w.RequestStatus", key_params):
            statuses.setdefault(value, {})[status] = count
        if agg.sums_sites:
            # site_sum holds only the values the workflow holds (see _Sql.sum_rows),
            # so no membership test is needed.
            join = " JOIN workflow w ON w.row = s.row" if where else ""
            found = con.execute(f"SELECT s.name, {sql.sum_columns} FROM site_sum s{join} "
                                f"WHERE s.agg = ?{cond} GROUP BY s.name", [by, *params])
        else:
            found = con.execute(f"SELECT {key}, {sql.workflow_sums} FROM {source} "
                                f"GROUP BY {key}", key_params)
        for value, *sums in found:
            counters[value] = sums
        zero = [0] * _N
        return [make_summary(by, value, counters.get(value, zero), statuses[value])
                for value in sorted(statuses)]

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
            if urls is None:
                found = con.execute("SELECT doc FROM agent ORDER BY url").fetchall()
            else:
                wanted = sorted(set(urls))
                found = []
                for start in range(0, len(wanted), _BATCH):
                    chunk = wanted[start:start + _BATCH]
                    found.extend(con.execute(
                        f"SELECT doc FROM agent WHERE url IN ({', '.join('?' for _ in chunk)})"
                        f" ORDER BY url", chunk).fetchall())
        return [record_from_values(Agent, ujson.loads(doc)) for (doc,) in found]

    def count(self, query: Query | None = None) -> int:
        with self._read() as con:
            meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN "
                                    "('snapshot', 'count')").fetchall())
            return self._count(con, meta["snapshot"], int(meta["count"]),
                               () if query is None else query.filters)


def _agent_values(agent: Agent) -> list[Any]:
    from wmstats.backends.codec import record_values
    return record_values(agent)


def _new_id() -> str:
    return uuid.uuid4().hex


def _older(version: str) -> bool:
    """Whether a stored layout version is older than :data:`SCHEMA_VERSION`."""
    return version.isdigit() and int(version) < int(SCHEMA_VERSION)


class _ReadTransaction:
    """``with``: one read transaction, so every statement sees the same snapshot.

    :param check: called with the connection inside the transaction, first (it
        raises to refuse the read).
    """

    def __init__(self, con: sqlite3.Connection,
                 check: Callable[[sqlite3.Connection], None]) -> None:
        self.con = con
        self.nested = con.in_transaction
        self.check = check

    def __enter__(self) -> sqlite3.Connection:
        if not self.nested:
            self.con.execute("BEGIN")
        try:
            self.check(self.con)
        except BaseException:
            if not self.nested:
                self.con.execute("ROLLBACK")
            raise
        return self.con

    def __exit__(self, *exc_info: object) -> None:
        if not self.nested and self.con.in_transaction:
            self.con.execute("COMMIT")
