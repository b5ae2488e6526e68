""":class:`CouchStore`: the wmstats store contract over CouchDB's HTTP API.

Layout
------
* A *base* database (the name the user gives) holds one pointer document,
  ``wmstats-snapshot``: the name of the current *snapshot database*.
* Each snapshot database (``<base>__<time><random>``) holds one document per
  workflow, a meta document (agents) and a design document with one view
  (see :mod:`wmstats_couchdb._docs`).
* :meth:`CouchStore.replace` writes a new snapshot database, builds its view,
  then switches the pointer: readers see the old snapshot or the new one, and a
  failure half way leaves the old one untouched (the new database is dropped).
  The previous snapshot database is kept for ``keep_snapshots`` more replaces, so
  that readers in other processes can finish what they started.
* Job records live in a database of their own, named by the pointer document
  ``wmstats-jobs`` of the base database (see :mod:`wmstats_couchdb._jobs`).
* :meth:`CouchStore.apply` writes into the current snapshot with ``_bulk_docs``;
  conflicts (409) are resolved by fetching the current revisions and retrying
  (the last writer wins).

Queries
-------
CouchDB evaluates them; the client never reads the whole database:

* the default listing (no filter, ``RequestName`` order) pages through
  ``_all_docs`` (``skip``/``limit``) and takes the total from ``doc_count``;
* equality filters on the fields of the aggregates
  (:data:`wmstats.aggregates.AGGREGATES`: ``RequestStatus``, ``RequestType``,
  ``Campaigns``, ``CMSSWVersions``, ``Teams``, ``Sites``, ``Agents``) read key
  ranges of the view;
* every other filter is a Mango ``_find`` selector (no ``_index``, no ``limit``
  tricks, which pouchdb-server gets wrong) returning only the fields needed;
  regular expressions and wildcards, whose dialects differ between servers,
  are decided on the client over those fields, with the same RE2 and wildcard
  predicates as every backend (:mod:`wmstats.query.match`, which also check the
  request's time budget);
* sorting (exact Python order, ``RequestName`` tie-break) is done on the client
  over the matching names and sort fields, then only the page's documents are
  read;
* aggregates and unfiltered distinct counts of those indexed fields are
  ``_sum`` reductions of the view (``group_level``);
* a snapshot database whose design document is older than this code's
  (:data:`wmstats_couchdb._docs.VIEW_VERSION`), or misses an aggregate of the
  table, gets the new one the first time it is read.
"""

from __future__ import annotations

import contextlib
import operator
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from wmstats.query import (
    SORT_SEPARATOR,
    TIE_BREAK,
    Filter,
    Page,
    Query,
    Scalar,
    field_spec,
    field_specs,
    make_summary,
)
from wmstats.schema import COUNTER_FIELDS, Agent, Summary, Workflow, WorkflowBundle
from wmstats.store import Store, StoreError, StoreOptionError
from wmstats_couchdb import _docs
from wmstats_couchdb._http import CouchClient, CouchError, quote, redact
from wmstats_couchdb._jobs import CouchJobs

__all__ = ["CouchStore", "CouchError"]

T = TypeVar("T")

#: CouchDB's rule for database names.
_DB_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_$()+-/")
_MAX_DB_NAME: Final = 200
_RETRIES: Final = 8
#: ``_find`` needs a limit (CouchDB's default is 25); this one means "all".
_FIND_LIMIT: Final = 2**31 - 1


def _check_db_name(name: str) -> str:
    if not name or not ("a" <= name[0] <= "z") or not set(name) <= _DB_NAME_CHARS:
        raise StoreOptionError(f"bad CouchDB database name {name!r}: it must start with a "
                               f"lowercase letter and hold only a-z, 0-9 and _$()+-/")
    if len(name) > _MAX_DB_NAME:
        raise StoreOptionError(f"CouchDB database name longer than {_MAX_DB_NAME} "
                               f"characters: {name!r}")
    return name


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds new readers back."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _predicates(filters: Sequence[Filter]) -> list[tuple[str, bool, Callable[[Scalar], bool]]]:
    return [(f.field, f.spec.many, f.matcher()) for f in filters]


def _matching(rows: Iterable[dict[str, Any]], filters: Sequence[Filter]) -> list[dict[str, Any]]:
    """The rows (field dicts) matching every filter, with the reference semantics."""
    checks = _predicates(filters)
    if not checks:
        return list(rows)
    out = []
    for row in rows:
        for field, many, match in checks:
            value = row[field]
            if many:
                if not any(map(match, value)):
                    break
            elif not match(value):
                break
        else:
            out.append(row)
    return out


def _sort_rows(rows: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    """Sort like :func:`wmstats.query.sort_records`, over field dicts."""
    for name, direction in reversed(query.sort_spec()):
        key: Callable[[dict[str, Any]], Any] = operator.itemgetter(name)
        if field_specs()[name].many:
            key = _joined(name)
        rows.sort(key=key, reverse=direction == "desc")
    return rows


def _joined(name: str) -> Callable[[dict[str, Any]], str]:
    def key(row: dict[str, Any]) -> str:
        return SORT_SEPARATOR.join(row[name])
    return key


def _selector(filters: Sequence[Filter]) -> dict[str, Any]:
    """A Mango selector matching at least the documents that match ``filters``.

    Equality and ranges are exact; wildcards and regular expressions are left to
    the client (their dialects differ between CouchDB, pouchdb and Python).
    """
    conditions: list[dict[str, Any]] = [{"wmstats": {"$in": list(_docs.FORMATS)}}]
    ops = {"gt": "$gt", "ge": "$gte", "lt": "$lt", "le": "$lte"}
    for flt in filters:
        if flt.op == "eq":
            cond: dict[str, Any] = {"$in": list(flt.values)}
            conditions.append({flt.field: {"$elemMatch": cond} if flt.spec.many else cond})
        elif flt.op in ops:
            conditions.append({flt.field: {ops[flt.op]: flt.values[0]}})
    return {"$and": conditions}


def _summaries(by: str, rows: Iterable[tuple[str, str, Sequence[int]]]) -> list[Summary]:
    """Summaries from ``(value, status, [workflows, counters...])`` partial sums."""
    counters: dict[str, list[int]] = {}
    statuses: dict[str, dict[str, int]] = {}
    for value, status, sums in rows:
        acc = counters.setdefault(value, [0] * len(COUNTER_FIELDS))
        for i, n in enumerate(sums[1:]):
            acc[i] += int(n)
        by_status = statuses.setdefault(value, {})
        by_status[status] = by_status.get(status, 0) + int(sums[0])
    return [make_summary(by, v, counters[v], statuses[v]) for v in sorted(counters)]


class CouchStore(CouchJobs, Store):
    """A store in CouchDB (or anything speaking its HTTP API, e.g. pouchdb-server).

    URL form: ``couchdb://user:password@host:port/database?option=value``; the
    options are the keyword arguments below (``scheme=https`` for TLS).

    :param database: the base database name (created if missing, with ``create``).
    :param host: server host.
    :param port: server port.
    :param username: user for Basic auth (or in ``server_url``).
    :param password: its password.
    :param scheme: ``http`` or ``https``.
    :param server_url: ``http(s)://[user:password@]host:port``; overrides ``scheme``,
        ``host`` and ``port``.
    :param timeout: seconds to wait for any single answer.
    :param build_timeout: seconds to wait for a new snapshot's view to build.
    :param batch_size: documents per ``_bulk_docs`` / ``_all_docs`` request.
    :param gzip: ask for gzip responses (helps off loopback, costs CPU on it).
    :param refresh: seconds a reader trusts its idea of the current snapshot
        database before reading the pointer again (another process may replace it).
    :param keep_snapshots: previous snapshot databases kept after a replace.
    :param fetch_limit: most candidate documents read to finish a query on the
        client; above it the query is handed to ``_find`` or the view instead.
    :param create: create the base database and an empty snapshot if missing.
    """

    backend = "couchdb"

    def __init__(self, database: str = "wmstats", *, host: str = "127.0.0.1",
                 port: int = 5984, username: str | None = None, password: str | None = None,
                 scheme: str = "http", server_url: str | None = None, timeout: float = 60.0,
                 build_timeout: float = 3600.0, batch_size: int = 500, gzip: bool = False,
                 refresh: float = 1.0, keep_snapshots: int = 1, fetch_limit: int = 2000,
                 create: bool = True) -> None:
        self.database = _check_db_name(database)
        if server_url is not None:
            parts = urllib.parse.urlsplit(server_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise StoreOptionError(f"server_url must be http(s)://host:port, got "
                                       f"{redact(server_url)!r}")
            if username is None and parts.username is not None:
                username = urllib.parse.unquote(parts.username)
                password = urllib.parse.unquote(parts.password or "")
            scheme, host = parts.scheme, parts.hostname
            port = parts.port or (443 if scheme == "https" else 5984)
        if scheme not in ("http", "https"):
            raise StoreOptionError(f"scheme must be http or https, got {scheme!r}")
        if batch_size < 1 or keep_snapshots < 0 or fetch_limit < 0:
            raise StoreOptionError("batch_size must be >= 1, keep_snapshots and "
                                   "fetch_limit >= 0")
        netloc = f"[{host}]" if ":" in host else host
        self.server = f"{scheme}://{netloc}:{port}"
        auth = (username, password or "") if username is not None else None
        self.build_timeout = build_timeout
        self.batch_size = batch_size
        self.refresh = refresh
        self.keep_snapshots = keep_snapshots
        self.fetch_limit = fetch_limit
        self.client = CouchClient(self.server, auth=auth, timeout=timeout, gzip=gzip)
        self._lock = _ReadWriteLock()
        self._pointer_lock = threading.Lock()
        self._current: str | None = None
        self._checked_at = 0.0
        #: snapshot databases whose design document is known to be current
        self._design_ok: set[str] = set()
        try:
            self._open(create)
        except BaseException:
            self.client.close()
            raise

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """``couchdb://user:password@host:port/database`` -> keyword options."""
        options: dict[str, Any] = {}
        try:
            port = url.port
        except ValueError as exc:
            raise StoreOptionError(f"bad port in {redact(url.geturl())!r}: {exc}") from None
        if url.hostname:
            options["host"] = url.hostname
        if port is not None:
            options["port"] = port
        if url.username is not None:
            options["username"] = urllib.parse.unquote(url.username)
            options["password"] = urllib.parse.unquote(url.password or "")
        name = urllib.parse.unquote(url.path.lstrip("/"))
        if name:
            options["database"] = name
        return options

    def __repr__(self) -> str:
        return f"CouchStore({self.server}/{self.database})"

    def close(self) -> None:
        """Close the HTTP sessions."""
        self.client.close()

    # ------------------------------------------------------------------ snapshots

    def _open(self, create: bool) -> None:
        base = quote(self.database)
        if create:
            try:
                self.client.request("PUT", f"/{base}")
            except CouchError as exc:
                if exc.status != 412:  # 412: it exists already
                    raise
        pointer = self.client.request("GET", f"/{base}/{_docs.POINTER_ID}", ok_missing=True)
        if pointer is None:
            if not create:
                raise StoreError(f"{self.server}/{self.database} holds no wmstats snapshot")
            snapshot = self._new_snapshot()
            try:
                self._write_meta(snapshot, [], 0)
            except BaseException:
                self._drop(snapshot)
                raise
            self._switch(snapshot)
        else:
            self._remember(str(pointer["database"]))

    def _remember(self, snapshot: str) -> None:
        self._current = snapshot
        self._checked_at = time.monotonic()

    def _snapshot_db(self, force: bool = False) -> str:
        """The current snapshot database (re-read after ``refresh`` seconds)."""
        with self._pointer_lock:
            if (force or self._current is None
                    or time.monotonic() - self._checked_at >= self.refresh):
                pointer = self.client.request(
                    "GET", f"/{quote(self.database)}/{_docs.POINTER_ID}", ok_missing=True)
                if pointer is None:
                    raise StoreError(f"{self.server}/{self.database}: the snapshot pointer "
                                     f"is gone (database deleted?)")
                self._remember(str(pointer["database"]))
            assert self._current is not None
            return self._current

    def _read(self, fn: Callable[[str], T]) -> T:
        """Run ``fn(snapshot_db)``; once more with a fresh pointer if the database is gone."""
        with self._lock.reading():
            db = self._snapshot_db()
            try:
                self._check_design(db)
                return fn(db)
            except CouchError as exc:
                if not exc.missing_database:
                    raise
            db = self._snapshot_db(force=True)
            self._check_design(db)
            return fn(db)

    def _check_design(self, db: str) -> None:
        """Bring the design document of ``db`` up to :data:`_docs.VIEW_VERSION`
        and the aggregate table, once.

        A snapshot database written by an older wmstats has an older view (one
        missing aggregation keys); it is rewritten and the view rebuilt (waiting
        up to ``build_timeout``).  A newer version is left alone (see
        :func:`_docs.design_is_current`).
        """
        if db in self._design_ok:
            return
        path = f"/{quote(db)}/{_docs.DESIGN_ID}"
        for _attempt in range(_RETRIES):
            doc = self.client.request("GET", path, ok_missing=True)
            if _docs.design_is_current(doc):
                break
            new = _docs.design_doc()
            if doc is not None:
                new["_rev"] = doc["_rev"]
            try:
                self.client.request("PUT", path, body=new)
            except CouchError as exc:
                if exc.status == 409:
                    continue
                raise
            self._warm(db)
            break
        else:
            raise CouchError(409, "conflict", "could not update the design document",
                             "PUT", path)
        self._design_ok.add(db)

    def _new_snapshot(self) -> str:
        stamp = f"{time.time_ns() // 1_000_000:013d}{secrets.token_hex(3)}"
        name = f"{self.database}__{stamp}"
        if len(name) > 238:
            raise StoreOptionError(f"database name too long for snapshots: {self.database!r}")
        path = f"/{quote(name)}"
        self.client.request("PUT", path)
        try:
            self.client.request("PUT", f"{path}/{_docs.DESIGN_ID}", body=_docs.design_doc())
        except BaseException:
            self._drop(name)
            raise
        self._design_ok.add(name)
        return name

    def _drop(self, snapshot: str) -> None:
        with contextlib.suppress(CouchError):
            self.client.request("DELETE", f"/{quote(snapshot)}", ok_missing=True)

    def _switch(self, snapshot: str) -> None:
        """Point the base database at ``snapshot``; drop snapshots beyond the kept ones."""
        path = f"/{quote(self.database)}/{_docs.POINTER_ID}"
        for _attempt in range(_RETRIES):
            old = self.client.request("GET", path, ok_missing=True)
            history: list[str] = []
            doc: dict[str, Any] = {"database": snapshot, "updated": time.time()}
            if old is not None:
                history = [*old.get("history", ()), str(old["database"])]
                doc["_rev"] = old["_rev"]
            keep = history[len(history) - self.keep_snapshots:] if self.keep_snapshots else []
            doc["history"] = keep
            try:
                self.client.request("PUT", path, body=doc)
            except CouchError as exc:
                if exc.status == 409:
                    continue
                raise
            with self._pointer_lock:
                self._remember(snapshot)
            for name in history[:len(history) - len(keep)]:
                if name != snapshot:
                    self._drop(name)
            return
        raise CouchError(409, "conflict", "could not update the snapshot pointer", "PUT", path)

    def _info(self, db: str) -> dict[str, Any]:
        info: dict[str, Any] = self.client.request("GET", f"/{quote(db)}")
        return info

    @staticmethod
    def _snapshot_of(db: str, info: Mapping[str, Any]) -> str:
        return f"{db}@{info['update_seq']}"

    @property
    def snapshot_id(self) -> str:
        """``<snapshot database>@<its update_seq>``: changes with every write."""
        return self._read(lambda db: self._snapshot_of(db, self._info(db)))

    # ------------------------------------------------------------------ low-level writes

    def _revs(self, db: str, ids: Sequence[str]) -> dict[str, str]:
        """Current revisions of the live documents among ``ids``."""
        revs: dict[str, str] = {}
        for start in range(0, len(ids), self.batch_size):
            answer = self.client.request("POST", f"/{quote(db)}/_all_docs",
                                         body={"keys": list(ids[start:start + self.batch_size])})
            for row in answer["rows"]:
                value = row.get("value")
                if value and not value.get("deleted"):
                    revs[row["id"]] = value["rev"]
        return revs

    def _bulk(self, db: str, docs: Sequence[dict[str, Any]]) -> None:
        """Write documents; on conflicts fetch the current revisions and retry."""
        pending = list(docs)
        for _attempt in range(_RETRIES):
            answer = self.client.request("POST", f"/{quote(db)}/_bulk_docs",
                                         body={"docs": pending}, timeout=self.build_timeout)
            conflicts = []
            for doc, result in zip(pending, answer):
                error = result.get("error")
                if error is None:
                    continue
                if error == "conflict":
                    conflicts.append(doc)
                elif error == "not_found" and doc.get("_deleted"):
                    continue  # someone else deleted it first
                else:
                    raise CouchError(400, str(error), str(result.get("reason", "")),
                                     "POST", f"/{db}/_bulk_docs {doc['_id']}")
            if not conflicts:
                return
            revs = self._revs(db, [d["_id"] for d in conflicts])
            pending = []
            for doc in conflicts:
                rev = revs.get(doc["_id"])
                if rev is not None:
                    doc["_rev"] = rev
                elif doc.get("_deleted"):
                    continue  # already gone
                else:
                    doc.pop("_rev", None)
                pending.append(doc)
            if not pending:
                return
        raise CouchError(409, "conflict", f"documents still in conflict after {_RETRIES} "
                                          f"attempts: {[d['_id'] for d in pending][:5]}",
                         "POST", f"/{db}/_bulk_docs")

    def _write_meta(self, db: str, agents: Iterable[Agent], generation: int) -> None:
        doc = _docs.meta_doc(agents, generation)
        self._bulk(db, [doc])

    def _read_meta(self, db: str) -> dict[str, Any] | None:
        meta: dict[str, Any] | None = self.client.request(
            "GET", f"/{quote(db)}/{_docs.META_ID}", ok_missing=True)
        return meta

    def _warm(self, db: str) -> None:
        """Build the view now, so the first reader after the switch does not wait."""
        self.client.request("GET", f"/{quote(db)}{_docs.VIEW_PATH}",
                            params={"reduce": False, "limit": 1}, timeout=self.build_timeout)

    # ------------------------------------------------------------------ writes

    def replace(self, bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = ()) -> str:
        """Write a new snapshot database, build its view, then switch the pointer."""
        snapshot = self._new_snapshot()
        try:
            batch: dict[str, dict[str, Any]] = {}
            for bundle in bundles:
                doc = _docs.workflow_doc(bundle)
                batch.pop(doc["_id"], None)  # the later one wins, in order
                batch[doc["_id"]] = doc
                if len(batch) >= self.batch_size:
                    self._bulk(snapshot, list(batch.values()))
                    batch = {}
            if batch:
                self._bulk(snapshot, list(batch.values()))
            self._write_meta(snapshot, {a.AgentURL: a for a in agents}.values(), 0)
            self._warm(snapshot)
        except BaseException:
            self._drop(snapshot)
            raise
        with self._lock.writing():
            self._switch(snapshot)
            return self._snapshot_of(snapshot, self._info(snapshot))

    def apply(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (), *,
              agents: Iterable[Agent] = (), deleted_agents: Iterable[str] = ()) -> str:
        """Upsert and delete workflows (and agents) in the current snapshot.

        Every iterable is read before anything is written.  Other threads of this
        process see all of it or none of it; other processes may see it land
        workflow by workflow (CouchDB has no multi-document transactions).
        """
        wanted: dict[str, WorkflowBundle] = {}
        for bundle in upserts:
            wanted[bundle.workflow.RequestName] = bundle
        gone = list(dict.fromkeys(deletes))
        new_agents = {a.AgentURL: a for a in agents}
        gone_agents = set(deleted_agents)
        for name in gone:
            wanted.pop(name, None)
        docs = [_docs.workflow_doc(b) for b in wanted.values()]
        with self._lock.writing():
            db = self._snapshot_db(force=True)
            revs = self._revs(db, [*(d["_id"] for d in docs), *map(_docs.doc_id, gone)])
            for doc in docs:
                if doc["_id"] in revs:
                    doc["_rev"] = revs[doc["_id"]]
            docs.extend({"_id": _docs.doc_id(n), "_rev": revs[_docs.doc_id(n)], "_deleted": True}
                        for n in gone if _docs.doc_id(n) in revs)
            for start in range(0, len(docs), self.batch_size):
                self._bulk(db, docs[start:start + self.batch_size])
            self._update_meta(db, new_agents, gone_agents)
            return self._snapshot_of(db, self._info(db))

    def _update_meta(self, db: str, new: Mapping[str, Agent], gone: set[str]) -> None:
        """Bump the generation and change agents (read-modify-write, retried on conflict)."""
        path = f"/{quote(db)}/{_docs.META_ID}"
        for _attempt in range(_RETRIES):
            meta = self._read_meta(db)
            agents = {a.AgentURL: a for a in _docs.agents_from_meta(meta)}
            agents.update(new)
            for url in gone:
                agents.pop(url, None)
            doc = _docs.meta_doc(agents.values(),
                                 int(meta.get("generation", 0)) + 1 if meta else 1)
            if meta is not None:
                doc["_rev"] = meta["_rev"]
            try:
                self.client.request("PUT", path, body=doc)
                return
            except CouchError as exc:
                if exc.status != 409:
                    raise
        raise CouchError(409, "conflict", "could not update the meta document", "PUT", path)

    # ------------------------------------------------------------------ low-level reads

    def _view(self, db: str, **params: Any) -> list[dict[str, Any]]:
        answer = self.client.request("GET", f"/{quote(db)}{_docs.VIEW_PATH}", params=params,
                                     timeout=self.build_timeout)
        rows: list[dict[str, Any]] = answer["rows"]
        return rows

    def _view_range(self, db: str, prefix: list[Any], **params: Any) -> list[dict[str, Any]]:
        """View rows whose key starts with ``prefix`` (its last element a string).

        The end key is the prefix with ``"\\x00"`` appended to its last element,
        exclusive: the first string after it in code point (raw) order.
        """
        end = [*prefix[:-1], prefix[-1] + "\x00"]
        return self._view(db, startkey=prefix, endkey=end, inclusive_end=False, **params)

    def _names_with(self, db: str, by: str, value: Scalar) -> set[str]:
        if not isinstance(value, str):
            return set()
        rows = self._view_range(db, [by, value], reduce=False)
        return {row["key"][3] for row in rows}

    def _docs_by_name(self, db: str, names: Sequence[str],
                      attachments: bool = False) -> Iterator[dict[str, Any]]:
        """The documents of the named workflows that exist, in order."""
        params: dict[str, Any] = {"include_docs": True}
        if attachments:
            params["attachments"] = True
        for start in range(0, len(names), self.batch_size):
            keys = [_docs.doc_id(n) for n in names[start:start + self.batch_size]]
            answer = self.client.request("POST", f"/{quote(db)}/_all_docs", params=params,
                                         body={"keys": keys})
            for row in answer["rows"]:
                doc = row.get("doc")
                if doc is not None:
                    yield doc

    def _find(self, db: str, filters: Sequence[Filter], fields: Iterable[str]
              ) -> list[dict[str, Any]]:
        answer = self.client.request("POST", f"/{quote(db)}/_find", body={
            "selector": _selector(filters), "fields": sorted(set(fields)),
            "limit": _FIND_LIMIT}, timeout=self.build_timeout)
        docs: list[dict[str, Any]] = answer["docs"]
        return docs

    def _select(self, db: str, filters: Sequence[Filter], needed: Iterable[str] = ()
                ) -> list[dict[str, Any]]:
        """Every workflow matching ``filters``, as dicts of ``RequestName`` and ``needed``."""
        needed = set(needed)
        by_field = _docs.indexed_fields()
        indexed = [f for f in filters if f.op == "eq" and f.field in by_field]
        if indexed:
            candidates: set[str] | None = None
            for flt in indexed:
                by = by_field[flt.field]
                found: set[str] = set()
                for value in flt.values:
                    found |= self._names_with(db, by, value)
                candidates = found if candidates is None else candidates & found
                if not candidates:
                    return []
            assert candidates is not None
            rest = [f for f in filters if f not in indexed]
            extra = needed | {f.field for f in rest}
            extra.discard(TIE_BREAK)
            if not extra:
                return [{TIE_BREAK: n} for n in candidates]
            if len(candidates) <= self.fetch_limit:
                keep = [TIE_BREAK, *extra]
                docs = self._docs_by_name(db, sorted(candidates))
                return _matching(({k: d[k] for k in keep} for d in docs), rest)
        fields = {TIE_BREAK, *needed, *(f.field for f in filters)}
        return _matching(self._find(db, filters, fields), filters)

    # ------------------------------------------------------------------ reads

    def get_many(self, names: Iterable[str]) -> dict[str, WorkflowBundle]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}

        def run(db: str) -> dict[str, WorkflowBundle]:
            found = {}
            for doc in self._docs_by_name(db, wanted, attachments=True):
                bundle = _docs.bundle_from_doc(doc)
                found[bundle.workflow.RequestName] = bundle
            return found
        return self._read(run)

    def _default_order(self, query: Query) -> bool:
        return not query.filters and query.sort_spec() == ((TIE_BREAK, "asc"),)

    def _ordered_names(self, db: str, query: Query) -> list[str]:
        """Every matching name, in the query's order (not for the default listing)."""
        needed = [name for name, _ in query.sort_spec()]
        rows = _sort_rows(self._select(db, query.filters, needed), query)
        return [r[TIE_BREAK] for r in rows]

    def _listing(self, db: str, skip: int, limit: int | None,
                 start: str = _docs.DOC_PREFIX) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"startkey": start, "endkey": _docs.DOC_END,
                                  "inclusive_end": False, "include_docs": True}
        if skip:
            params["skip"] = skip
        if limit is not None:
            params["limit"] = limit
        answer = self.client.request("GET", f"/{quote(db)}/_all_docs", params=params)
        return [row["doc"] for row in answer["rows"]]

    def query(self, query: Query = Query()) -> Page:
        def run(db: str) -> Page:
            info = self._info(db)
            snapshot = self._snapshot_of(db, info)
            if self._default_order(query):
                total = max(int(info["doc_count"]) - _docs.FIXED_DOCS, 0)
                docs: Iterable[dict[str, Any]] = ()
                if query.limit != 0 and query.idx < total:
                    docs = self._listing(db, query.idx, query.limit)
            else:
                names = self._ordered_names(db, query)
                total = len(names)
                end = None if query.limit is None else query.idx + query.limit
                docs = self._docs_by_name(db, names[query.idx:end])
            records = tuple(_docs.workflow_from_doc(d) for d in docs)
            return Page(records, total, query.idx, query.limit, snapshot, query.fields)
        return self._read(run)

    def count(self, query: Query | None = None) -> int:
        filters = () if query is None else query.filters

        def run(db: str) -> int:
            if not filters:
                return max(int(self._info(db)["doc_count"]) - _docs.FIXED_DOCS, 0)
            return len(self._select(db, filters))
        return self._read(run)

    def stream(self, query: Query = Query(), batch_size: int = 1000) -> Iterator[Workflow]:
        """Every record of ``query`` in order, read ``batch_size`` documents at a time.

        The order is fixed when the stream starts; workflows deleted meanwhile are
        left out.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        end = None if query.limit is None else query.idx + query.limit
        if self._default_order(query):
            return self._stream_listing(query.idx, query.limit, batch_size)
        db, names = self._read(lambda db: (db, self._ordered_names(db, query)))
        return self._stream_names(db, names[query.idx:end], batch_size)

    def _stream_listing(self, idx: int, limit: int | None, batch_size: int
                        ) -> Iterator[Workflow]:
        db = self._read(lambda db: db)
        skip, start, remaining = idx, _docs.DOC_PREFIX, limit
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            docs = self._listing(db, skip, size, start)
            for doc in docs:
                yield _docs.workflow_from_doc(doc)
            if len(docs) < size:
                return
            start, skip = docs[-1]["_id"], 1
            if remaining is not None:
                remaining -= len(docs)

    def _stream_names(self, db: str, names: Sequence[str], batch_size: int
                      ) -> Iterator[Workflow]:
        for start in range(0, len(names), batch_size):
            chunk = names[start:start + batch_size]
            for doc in self._docs_by_name(db, chunk):
                yield _docs.workflow_from_doc(doc)

    def distinct(self, field: str, query: Query | None = None) -> list[tuple[Scalar, int]]:
        spec = field_spec(field)  # QueryError for an unknown field
        filters = () if query is None else query.filters
        by = _docs.indexed_fields().get(field)

        def run(db: str) -> list[tuple[Scalar, int]]:
            if by is not None and not filters:
                rows = self._view_range(db, [by], group_level=2)
                return sorted(((r["key"][1], int(r["value"][0])) for r in rows),
                              key=lambda item: item[0])
            counts: dict[Scalar, int] = {}
            for row in self._select(db, filters, [field]):
                value = row[field]
                for v in (dict.fromkeys(value) if spec.many else (value,)):
                    counts[v] = counts.get(v, 0) + 1
            return sorted(counts.items(), key=lambda item: item[0])
        return self._read(run)

    def aggregate(self, by: str, query: Query | None = None) -> list[Summary]:
        self.aggregate_of(by)
        filters = () if query is None else query.filters

        def run(db: str) -> list[Summary]:
            if not filters:
                rows = self._view_range(db, [by], group_level=3)
                return _summaries(by, ((r["key"][1], r["key"][2], r["value"]) for r in rows))
            names = {r[TIE_BREAK] for r in self._select(db, filters)}
            if not names:
                return []
            if len(names) <= self.fetch_limit:
                docs = self._docs_by_name(db, sorted(names))
                return _summaries(by, (row for d in docs for row in _docs.agg_rows(d, by)))
            rows = self._view_range(db, [by], reduce=False)
            return _summaries(by, ((r["key"][1], r["key"][2], r["value"]) for r in rows
                                   if r["key"][3] in names))
        return self._read(run)

    def summary(self, by: str, value: str, query: Query | None = None) -> Summary:
        self.aggregate_of(by)
        if query is not None and query.filters:
            return super().summary(by, value, query)

        def run(db: str) -> list[Summary]:
            rows = self._view_range(db, [by, value], group_level=3)
            return _summaries(by, ((r["key"][1], r["key"][2], r["value"]) for r in rows))
        found = self._read(run)
        if found:
            return found[0]
        return make_summary(by, value, [0] * len(COUNTER_FIELDS), {})

    def get_agents(self, urls: Iterable[str] | None = None) -> list[Agent]:
        wanted = None if urls is None else set(urls)
        agents = self._read(lambda db: _docs.agents_from_meta(self._read_meta(db)))
        return [a for a in agents if wanted is None or a.AgentURL in wanted]
