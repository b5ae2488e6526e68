""":class:`CouchSource`: keep a store filled from WMCore's CouchDB databases.

Two databases are read, as in production: ReqMgr2's request documents
(``reqmgr_workload_cache``) and the agents' ``agent_request`` / ``agent_info`` /
``jobsummary`` documents (``wmstats``).  Names, server, credentials and the request statuses
shown are options; from a URL::

    couchdb://user:secret@host:5984?requests_db=reqmgr_workload_cache&wmstats_db=wmstats
    couchdbs://host:6984/couchdb?statuses=running-open,running-closed   # https, prefix
    couchdb://host:5984?statuses=*                                      # every status

How it works (one background thread, plus one per database once loaded):

1. **Full load.**  Read each database's ``update_seq`` (``GET /db``), then page
   through ``_all_docs?include_docs=true`` of both databases at once by
   ``startkey`` (``batch_size`` rows a page; a thread per database reads one
   page ahead, or a :class:`~wmstats_couchdb._reader.ProcessReader` reads the
   agent database with ``reader_process``): the request documents converted as
   they come, the ``agent_request`` documents kept packed
   (:class:`~wmstats_couchdb._state.SourceState`).  Then every shown workflow
   is merged (converting its agent reports then) and handed to one
   :meth:`~wmstats.store.Store.replace` as it is made.  No raw page outlives
   its conversion, and the converted records never all exist at once.
   The ``jobsummary`` documents become job records as they are read (counts, a
   few samples per group, a 12-byte index entry per document:
   :class:`~wmstats.jobs.JobTable`), stored with
   :meth:`~wmstats.store.Store.replace_jobs` just before the workflows.
   A failure while reading writes nothing (one while storing makes the replace
   fail): the store keeps its snapshot, and the load is retried with a capped
   exponential backoff.
2. **Updates.**  Follow each database's ``_changes`` (``feed=longpoll``,
   ``include_docs``, ``heartbeat``) from the ``update_seq`` read before the load.
   A change already seen by the load is applied again, which is harmless: a
   workflow is always re-merged whole from its parts.  Each batch of changes
   re-merges only the workflows it touches and goes to the store in one
   :meth:`~wmstats.store.Store.apply`; the job records of the workflows whose
   ``jobsummary`` documents changed (or were deleted) in one
   :meth:`~wmstats.store.Store.apply_jobs`.  The sequence of a database advances only
   after the store took the batch, so after a lost connection the feed resumes
   where the store is, nothing missed.
3. **Faults.**  Connection failures are retried with backoff (``retry_initial``
   doubling up to ``retry_max`` seconds); a database that disappears makes the
   source load everything again (the old snapshot is served meanwhile).
   Malformed documents are reported (:attr:`SourceStatus.problems`, one log line
   per problem with the document id, up to ``log_problems`` per batch) and the
   rest is served.

With a store that keeps checkpoints (sqlite), a restarted source resumes from the
sequences kept with the snapshot instead of loading everything; its job table too
is read back from the store as changes touch it (docs/couchdb-source.md, "Warm
restarts").

:meth:`CouchSource.sequences_for` maps each snapshot the source wrote to the
sequences it reflects, so that a response read from a snapshot names exactly
those.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Final

from wmstats._procfs import GCPause, paused_gc
from wmstats.convert import Problem
from wmstats.jobs import JobOptions
from wmstats.schema import Workflow, WorkflowBundle
from wmstats.source import ACTIVE_STATUSES, Source, SourceOptionError, SourceStatus
from wmstats.store import Checkpoint, Store
from wmstats_couchdb._http import (
    CouchClient,
    CouchError,
    quote,
    redact,
    split_server_url,
)
from wmstats_couchdb._prefetch import interleaved
from wmstats_couchdb._reader import Page, ProcessReader
from wmstats_couchdb._state import (
    ENTRY_FORMAT,
    SourceState,
    StaleEntries,
    StoreBacking,
    jobs_snapshot_entry,
)

__all__ = ["CouchSource", "DEFAULT_REQUESTS_DB", "DEFAULT_WMSTATS_DB"]

#: ReqMgr2's request database in WMCore deployments.
DEFAULT_REQUESTS_DB: Final = "reqmgr_workload_cache"
#: The WMStats database (agent_request, agent_info) in WMCore deployments.
DEFAULT_WMSTATS_DB: Final = "wmstats"
#: Snapshots whose sequences are remembered for :meth:`CouchSource.sequences_for`.
_REMEMBER: Final = 256
#: Longest a reader waits in :meth:`CouchSource.sequences_for` for a write to be noted.
_NOTE_WAIT: Final = 5.0

log = logging.getLogger("wmstats.source.couchdb")


def _seq_text(value: Any) -> str:
    """A sequence as the string to send back in ``since`` (integers on pouchdb)."""
    return value if isinstance(value, str) else str(value)


class _Stopped(Exception):
    """The source was asked to stop during a load."""


class _Rejected(Exception):
    """The kept sequences or entries cannot be resumed from (load everything)."""


class CouchSource(Source):
    """A :class:`~wmstats.source.Source` reading WMCore's CouchDB databases.

    :param store: the store to fill.
    :param url: the CouchDB server, ``http(s)://host:port[/prefix]`` (credentials
        may be in it, or in ``user`` / ``password``).
    :param user: user name for Basic auth.
    :param password: password for Basic auth.
    :param requests_db: database of ReqMgr2 request documents.
    :param wmstats_db: database of ``agent_request`` and ``agent_info`` documents.
    :param statuses: request statuses whose workflows are shown (default WMCore's
        active statuses, :data:`wmstats.source.ACTIVE_STATUSES`); ``None`` or
        ``("*",)`` shows every workflow, also those with agent reports only.
    :param batch_size: rows per ``_all_docs`` page (and ``limit`` of feeds that
        honour it).
    :param timeout: seconds to connect and to wait for each answer of a page.
    :param heartbeat: seconds between the heartbeats asked of ``_changes``; also
        how long :meth:`stop` may wait for a feed to notice.
    :param idle_timeout: seconds without a byte on a feed after which it is
        asked again (not an error).
    :param max_wait: seconds a feed with nothing to say (only heartbeats) is
        held open before it is asked again: a feed that heartbeats but never
        answers (a deleted database on pouchdb-server, a stuck proxy) cannot
        stall the source for longer.
    :param retry_initial: first wait after a failure, seconds (doubles each time).
    :param retry_max: longest wait between retries, seconds.
    :param gzip: ask for gzip-compressed pages (worth it off loopback only).
    :param log_problems: problems logged one by one per load or batch of changes
        (the rest are counted and summarized).
    :param job_samples: sample jobs kept per (workflow, task, state, exit code,
        site) of the ``jobsummary`` documents (:class:`wmstats.jobs.JobOptions`).
    :param job_detail_limit: characters of error details kept per sample job.
    :param reader_process: read the agent database of a full load in a second
        process (:class:`~wmstats_couchdb._reader.ProcessReader`), on another core
        than the conversion of the request database (it pays only on a machine with
        a core to spare: docs/couchdb-source.md); ``False`` reads it in a thread.
    """

    scheme: ClassVar[str] = "couchdb"

    def __init__(self, store: Store, *, url: str = "http://127.0.0.1:5984",
                 user: str | None = None, password: str | None = None,
                 requests_db: str = DEFAULT_REQUESTS_DB, wmstats_db: str = DEFAULT_WMSTATS_DB,
                 statuses: Iterable[str] | None = ACTIVE_STATUSES, batch_size: int = 500,
                 timeout: float = 60.0, heartbeat: float = 1.0, idle_timeout: float = 30.0,
                 max_wait: float = 60.0, retry_initial: float = 0.5, retry_max: float = 30.0, gzip: bool = False,
                 log_problems: int = 20, job_samples: int = 3,
                 job_detail_limit: int = 2000, reader_process: bool = False) -> None:
        super().__init__(store)
        try:
            base, auth = split_server_url(url)
        except ValueError as exc:
            raise SourceOptionError(str(exc)) from None
        if user is not None:
            auth = (user, password or "")
        if not requests_db or not wmstats_db or requests_db == wmstats_db:
            raise SourceOptionError(f"requests_db and wmstats_db must be two database names, "
                                    f"got {requests_db!r} and {wmstats_db!r}")
        if isinstance(statuses, str):
            statuses = [s.strip() for s in statuses.split(",") if s.strip()]
        chosen = None if statuses is None else tuple(statuses)
        if chosen is not None and "*" in chosen:
            chosen = None
        if chosen is not None and not chosen:
            raise SourceOptionError("statuses: give at least one status, or '*' for all")
        for name, value, low in (("batch_size", batch_size, 1), ("timeout", timeout, 0.001),
                                 ("heartbeat", heartbeat, 0.01),
                                 ("idle_timeout", idle_timeout, 0.01),
                                 ("max_wait", max_wait, 0.01),
                                 ("retry_initial", retry_initial, 0.0),
                                 ("retry_max", retry_max, 0.0), ("log_problems", log_problems, 0),
                                 ("job_samples", job_samples, 0),
                                 ("job_detail_limit", job_detail_limit, 0)):
            if not value >= low:  # NaN too
                raise SourceOptionError(f"{name} must be >= {low}, got {value}")
        self.server_url = base
        self.databases: tuple[str, str] = (requests_db, wmstats_db)
        self.statuses: tuple[str, ...] | None = chosen
        self.batch_size = batch_size
        self.heartbeat = heartbeat
        self.idle_timeout = max(idle_timeout, heartbeat * 3)
        self.max_wait = max_wait
        self.retry_initial = retry_initial
        self.retry_max = max(retry_max, retry_initial)
        self.log_problems = log_problems
        self.reader_process = reader_process
        self.job_options = JobOptions(samples=job_samples, detail_limit=job_detail_limit)
        self.client = CouchClient(base, auth=auth, timeout=timeout, gzip=gzip)
        self._url = redact(base if auth is None else base.replace("://", f"://{auth[0]}@", 1))
        #: what a checkpoint kept with the snapshot must say to be resumed from: the
        #: server, the databases, the statuses shown, what the job records keep (they
        #: are resumed too) and the format of the entries
        self.identity = (f"couchdb {base} {requests_db} {wmstats_db} "
                         f"statuses={','.join(sorted(chosen)) if chosen else '*'} "
                         f"jobs={job_samples},{job_detail_limit} {ENTRY_FORMAT}")

        self._state = SourceState(chosen, self.job_options, wmstats_db)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        #: serializes changes to the state and the store writes that follow them
        self._apply_lock = threading.Lock()
        #: guards the snapshot -> sequences map and the status counters
        self._cond = threading.Condition()
        self._sequences: dict[str, str] = {}
        self._by_snapshot: collections.OrderedDict[str, Mapping[str, str]] = (
            collections.OrderedDict())
        self._writing_from: str | None = None
        self._ready = False
        self._connected = False
        self._contact: float | None = None
        self._loads = 0
        self._resumes = 0
        self._last_load: float | None = None
        self._loaded_at: float | None = None
        self._updates = 0
        self._problems = 0
        self._errors = 0
        self._last_error: str | None = None
        self._rows_read = 0

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """``couchdb[s]://[user:password@]host[:port][/prefix]`` -> ``url=http(s)://...``."""
        if not url.hostname:
            raise SourceOptionError(f"a {url.scheme}:// source URL needs a host: "
                                    f"{redact(url.geturl())!r}")
        scheme = "https" if url.scheme.lower() == "couchdbs" else "http"
        bare = url._replace(scheme=scheme, query="", fragment="")
        try:
            split_server_url(bare.geturl())
        except ValueError as exc:
            raise SourceOptionError(f"bad source URL {redact(url.geturl())!r}: {exc}") from None
        return {"url": bare.geturl()}

    def __repr__(self) -> str:
        return f"CouchSource({self._url}, {self.databases[0]}, {self.databases[1]})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._run_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="wmstats-couchdb-source",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        with self._run_lock:
            self._stop.set()
            thread = self._thread
            if thread is not None:
                thread.join(timeout)
                if thread.is_alive():
                    return False
                self._thread = None
        return True

    def close(self) -> None:
        """Stop and close the HTTP sessions."""
        self.stop()
        self.client.close()

    @property
    def ready(self) -> bool:
        return self._ready

    def status(self) -> SourceStatus:
        with self._cond:
            return SourceStatus(
                ready=self._ready, connected=self._connected, last_contact=self._contact,
                sequences=self._sequences,
                last_load_seconds=self._last_load, loaded_at=self._loaded_at,
                loads=self._loads, resumes=self._resumes, updates_applied=self._updates,
                problems=self._problems,
                errors=self._errors, last_error=self._last_error, url=self._url)

    def sequences_for(self, snapshot_id: str) -> Mapping[str, str] | None:
        found = self._by_snapshot.get(snapshot_id)
        if found is not None:
            return found
        deadline = time.monotonic() + _NOTE_WAIT
        with self._cond:
            # A snapshot being written right now is noted as soon as the write returns.
            while (self._writing_from is not None and snapshot_id != self._writing_from
                   and snapshot_id not in self._by_snapshot):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._by_snapshot.get(snapshot_id)

    # ------------------------------------------------------------------ main loop

    def _run(self) -> None:
        delay = self.retry_initial
        resume = True
        while not self._stop.is_set():
            try:
                if not (resume and self._resume()):
                    self._load()
            except _Stopped:
                break
            except _Rejected as exc:
                log.warning("couchdb source: cannot resume from the kept sequences (%s); "
                            "loading everything", exc)
                resume = False
                continue
            except Exception as exc:  # noqa: BLE001 - reported, retried
                self._failed("resuming" if resume else "full load", exc)
                self._stop.wait(delay)
                delay = min(max(delay * 2, 0.05), self.retry_max)
                continue
            resume = False
            delay = self.retry_initial
            self._reload.clear()
            generation = threading.Event()
            followers = [threading.Thread(target=self._follow, args=(db, generation),
                                          name=f"wmstats-couchdb-changes-{db}", daemon=True)
                         for db in self.databases]
            for thread in followers:
                thread.start()
            while not self._stop.is_set() and not self._reload.is_set():
                self._stop.wait(0.5)
            generation.set()
            for thread in followers:
                thread.join()
            if self._reload.is_set() and not self._stop.is_set():
                log.warning("couchdb source: loading everything again")
        self.client.close_thread_session()

    def _failed(self, what: str, exc: BaseException) -> None:
        text = f"{what}: {type(exc).__name__}: {exc}"
        with self._cond:
            if isinstance(exc, CouchError) and exc.status == 0:
                self._connected = False  # no answer at all
            self._errors += 1
            self._last_error = text
        log.warning("couchdb source: %s", text)

    def _connected_now(self) -> None:
        self._contact = time.time()
        if not self._connected:
            with self._cond:
                self._connected = True

    def _report(self, problems: list[Problem], where: str) -> None:
        if not problems:
            return
        with self._cond:
            self._problems += len(problems)
        for problem in problems[:self.log_problems]:
            log.warning("couchdb source: problem in %s: %s", where, problem)
        if len(problems) > self.log_problems:
            docs = len({p.doc_id for p in problems})
            log.warning("couchdb source: %d problems in %d documents of %s (%d logged)",
                        len(problems), docs, where, self.log_problems)

    # ------------------------------------------------------------------ full load

    def _pages(self, db: str) -> Iterator[list[Any]]:
        """The rows of ``_all_docs?include_docs=true``, a page at a time."""
        for rows in self.client.all_docs(db, self.batch_size):
            self._connected_now()
            yield rows
            if self._stop.is_set():
                return

    def _apply_rows(self, db: str, rows: list[Any], state: SourceState,
                    problems: list[Problem], touched: set[str], agents: set[str],
                    convert: bool) -> None:
        """Apply one page of ``_all_docs`` rows to ``state``, letting go of each
        document once it is converted."""
        rows.reverse()
        while rows:
            row = rows.pop()
            doc_id = row.get("id") if isinstance(row, dict) else None
            if not isinstance(doc_id, str):
                problems.append(Problem("<unknown>", "", f"{db}: _all_docs row "
                                                         f"without an id; skipped"))
                continue
            state.update(db, doc_id, row.get("doc"), problems, touched, agents,
                         convert=convert)
            self._rows_read += 1

    def _apply_page(self, db: str, page: Page, state: SourceState, problems: list[Problem],
                    touched: set[str], agents: set[str]) -> None:
        """Apply one page of the reader process (:class:`ProcessReader`) to ``state``:
        as :meth:`_apply_rows` with ``convert=False``."""
        for doc_id, item in page:
            if doc_id is None:
                self._apply_rows(db, [item], state, problems, touched, agents, False)
            else:
                state.update_packed(db, doc_id, item, problems, touched, agents)
                self._rows_read += 1

    def _read_both(self, state: SourceState, problems: list[Problem],
                   pause: GCPause) -> Iterator[set[str]]:
        """Read both databases into ``state``: the request database here, the agent
        database in a :class:`ProcessReader` (or a thread, without ``reader_process``)
        at the same time.  Yields, per page of the request database, the workflows
        it touched; the agent database is read completely before this ends.

        The cyclic garbage collector is off during the load (``pause``,
        :func:`~wmstats._procfs.paused_gc`); the objects made so far are moved out of
        its way after each page (:meth:`~wmstats._procfs.GCPause.settle`): they are
        long-lived, and its first pass after the load would walk them all.
        """
        requests_db, wmstats_db = self.databases
        reader = (ProcessReader(self.client, wmstats_db, self.batch_size)
                  if self.reader_process else None)
        agent_pages: Iterator[Any] = (reader.pages() if reader is not None
                                      else self._pages(wmstats_db))
        pages = interleaved([self._pages(requests_db), agent_pages], depth=1,
                            names=[f"wmstats-couchdb-read-{requests_db}",
                                   f"wmstats-couchdb-read-{wmstats_db}"],
                            on_exit=[self.client.close_thread_session,
                                     self.client.close_thread_session])
        agents: set[str] = set()
        try:
            for index, page in pages:
                if self._stop.is_set():
                    break
                touched: set[str] = set()
                if index == 0:
                    self._apply_rows(requests_db, page, state, problems, touched, agents,
                                     True)
                elif reader is not None:
                    self._apply_page(wmstats_db, page, state, problems, set(), agents)
                else:
                    self._apply_rows(wmstats_db, page, state, problems, set(), agents, False)
                pause.settle()
                if index == 0:
                    yield touched
        finally:
            if reader is not None:
                reader.close()  # first: it ends a receive waiting in a thread
            pages.close()
        if self._stop.is_set():
            raise _Stopped

    def _load(self) -> None:
        """Read both databases and replace the store's snapshot (see the module doc).

        Both databases are read at once (:meth:`_read_both`): the request documents
        are converted as they come, the ``agent_request`` documents packed without
        converting them.  Then every shown workflow is merged (converting its agent
        reports then) and handed to :meth:`Store.replace_from_source
        <wmstats.store.Store.replace_from_source>` as it is made (with the
        checkpoint and the kept entries, which a store that persists writes with
        the snapshot): the converted records never all exist at the same time.  If
        reading fails part way, nothing is written and the store keeps its snapshot.
        """
        began = time.monotonic()
        sequences: dict[str, str] = {}
        for db in self.databases:
            info = self.client.request("GET", "/" + quote(db))
            self._connected_now()
            if not isinstance(info, dict) or "update_seq" not in info:
                raise CouchError(0, "bad_answer", f"no update_seq for {db}", "GET", "/" + db)
            sequences[db] = _seq_text(info["update_seq"])
        state = SourceState(self.statuses, self.job_options, self.databases[1],
                            keeps_entries=self._store.keeps_checkpoints)
        problems: list[Problem] = []
        self._rows_read = 0
        read: list[str] = []  # request workflows in the order read

        # The workflows a store that keeps them was given: the state keeps those
        # instead of its own once the write succeeded.
        written: list[Workflow] = []
        share = self._store.keeps_records

        def bundles() -> Iterator[WorkflowBundle]:
            merged: set[str] = set()
            for name in read:
                if name not in merged and state.shown(name):
                    merged.add(name)
                    bundle = state.bundle(name, problems)
                    if share:
                        written.append(bundle.workflow)
                    yield bundle
                    if len(merged) % self.batch_size == 0:
                        pause.settle()  # what the store keeps (as after each page read)
            for name in state.names():  # workflows shown without a request document
                if name not in merged:
                    yield state.bundle(name, problems)

        # Nothing made here is cyclic garbage worth a collection pass; what the
        # store keeps is moved out of the collector's way as it is made.
        with paused_gc() as pause:
            for touched in self._read_both(state, problems, pause):
                read.extend(sorted(touched))
            read_seconds = time.monotonic() - began
            checkpoint = Checkpoint(self.identity, sequences)
            with self._apply_lock:
                # The job records first (the table is complete once the agent database
                # is read): the kept entries name the job snapshot they go with.
                state.jobs.compact()
                jobs_sid = self._store.replace_jobs(state.all_job_records())
                self._write(lambda: self._store.replace_from_source(
                    checkpoint, bundles(), state.agents(),
                    itertools.chain(state.entries(), [jobs_snapshot_entry(jobs_sid)])),
                    sequences)
                state.keep_written(written)
                del written[:]
                state.forget_converted()
                state.take_changes()
                self._state = state
        seconds = time.monotonic() - began
        with self._cond:
            self._ready = True
            self._loads += 1
            self._last_load = seconds
            self._loaded_at = time.time()
        self._report(problems, "the full load")
        log.info("couchdb source: loaded %d documents, %d workflows shown, %d job summaries, "
                 "in %.1f s (%.1f s reading, %.1f s merging and storing; sequences %s)",
                 self._rows_read, len(state.names()), len(state.jobs), seconds, read_seconds,
                 seconds - read_seconds, sequences)

    # ------------------------------------------------------------------ warm restart

    def _resume(self) -> bool:
        """Resume from the checkpoint kept with the store's snapshot, if it is this
        source's: apply the changes made since its sequences, reading kept entries
        as the changes touch them (see :class:`~wmstats_couchdb._state.SourceState`).

        :returns: ``False`` when there is nothing to resume from.
        :raises _Rejected: when CouchDB refuses a sequence (or a database is gone),
            or the kept entries do not match the snapshot.
        """
        checkpoint = self._store.checkpoint()
        if (checkpoint is None or checkpoint.source != self.identity
                or set(checkpoint.sequences) != set(self.databases)):
            return False
        began = time.monotonic()
        try:
            state = SourceState(self.statuses, self.job_options, self.databases[1],
                                StoreBacking(self._store))
        except StaleEntries as exc:
            raise _Rejected(str(exc)) from exc
        kept_jobs, stored_jobs = state.kept_jobs_snapshot(), self._store.jobs_snapshot_id
        if kept_jobs != stored_jobs:
            raise _Rejected(f"the stored job records ({stored_jobs}) are not those the "
                            f"checkpoint goes with ({kept_jobs})")
        with self._apply_lock:
            self._state = state
            with self._cond:
                self._sequences = dict(checkpoint.sequences)
                self._by_snapshot[self._store.snapshot_id] = self._sequences
        applied = self._updates
        for db in self.databases:
            self._catch_up(db)
        with self._cond:
            self._ready = True
            self._resumes += 1
        log.info("couchdb source: resumed from the kept sequences %s, %d changes applied, "
                 "in %.1f s", dict(checkpoint.sequences), self._updates - applied,
                 time.monotonic() - began)
        return True

    def _catch_up(self, db: str) -> None:
        """Apply every change of ``db`` since the current sequence (``_changes``
        pages of ``batch_size``, without waiting for new ones)."""
        path = f"/{quote(db)}/_changes"
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                body = self.client.request("GET", path, params={
                    "since": self._sequences[db], "include_docs": True,
                    "limit": self.batch_size})
                self._connected_now()
                applied = self._apply(db, body)
            except CouchError as exc:
                if exc.missing_database or exc.status == 400:
                    raise _Rejected(f"{db}: {exc}") from exc
                raise
            except StaleEntries as exc:
                raise _Rejected(str(exc)) from exc
            if applied < self.batch_size:
                return

    # ------------------------------------------------------------------ writes

    def _write(self, write: Callable[[], str], sequences: Mapping[str, str]) -> str:
        """Run a store write and note which sequences its snapshot reflects."""
        with self._cond:
            self._writing_from = self._store.snapshot_id
        sid: str | None = None
        try:
            sid = write()
        finally:
            with self._cond:
                if sid is not None:
                    noted = dict(sequences)
                    self._sequences = noted
                    self._by_snapshot[sid] = noted
                    while len(self._by_snapshot) > _REMEMBER:
                        self._by_snapshot.popitem(last=False)
                self._writing_from = None
                self._cond.notify_all()
        return sid

    def _advance(self, sequences: Mapping[str, str]) -> None:
        """New sequences without a store write (changes that show nowhere)."""
        with self._cond:
            noted = dict(sequences)
            self._sequences = noted
            self._by_snapshot[self._store.snapshot_id] = noted

    # ------------------------------------------------------------------ updates

    def _follow(self, db: str, stop: threading.Event) -> None:
        """Follow one database's ``_changes`` until ``stop`` (or the source stops)."""
        path = f"/{quote(db)}/_changes"
        delay = self.retry_initial
        try:
            while not stop.is_set():
                since = self._sequences.get(db, "0")
                try:
                    body = self.client.feed(path, {
                        "feed": "longpoll", "since": since, "include_docs": True,
                        "heartbeat": max(10, round(self.heartbeat * 1000)),
                        "limit": self.batch_size,
                    }, read_timeout=self.idle_timeout, stop=stop, max_seconds=self.max_wait)
                except CouchError as exc:
                    self._failed(f"changes of {db}", exc)
                    if exc.missing_database or exc.status == 400:
                        self._reload.set()
                        return
                    stop.wait(delay)
                    delay = min(max(delay * 2, 0.05), self.retry_max)
                    continue
                self._connected_now()
                if body is None:
                    continue
                try:
                    self._apply(db, body)
                except StaleEntries as exc:
                    self._failed(f"applying changes of {db}", exc)
                    self._reload.set()
                    return
                except Exception as exc:  # noqa: BLE001 - the store failed: retry the batch
                    self._failed(f"applying changes of {db}", exc)
                    stop.wait(delay)
                    delay = min(max(delay * 2, 0.05), self.retry_max)
                    continue
                delay = self.retry_initial
        finally:
            self.client.close_thread_session()

    def _apply(self, db: str, body: Any) -> int:
        """Apply one answer of a ``_changes`` feed to the state and the store; returns
        how many changes it held."""
        rows = body.get("results") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise CouchError(0, "bad_answer", "_changes without results", "GET", db)
        last_seq = body.get("last_seq")
        if last_seq is None:
            last_seq = rows[-1].get("seq") if rows and isinstance(rows[-1], dict) else None
        if last_seq is None:
            return len(rows)
        problems: list[Problem] = []
        with self._apply_lock:
            state = self._state
            workflows: set[str] = set()
            agents: set[str] = set()
            jobs: set[str] = set()
            for row in rows:
                doc_id = row.get("id") if isinstance(row, dict) else None
                if not isinstance(doc_id, str):
                    problems.append(Problem("<unknown>", "", f"{db}: change without an id; "
                                                             f"skipped"))
                    continue
                deleted = bool(row.get("deleted"))
                doc = None if deleted else row.get("doc")
                if doc is None and not deleted:
                    problems.append(Problem(doc_id, "", f"{db}: change without its document; "
                                                        f"skipped"))
                    continue
                state.update(db, doc_id, doc, problems, workflows, agents, jobs=jobs)
            sequences = {**self._sequences, db: _seq_text(last_seq)}
            jobs_sid = None
            if jobs:
                # Before the workflows: their write notes the new sequences (and
                # keeps the entries, which name this job snapshot).
                jobs_sid = self._store.apply_jobs([state.job_records(n) for n in sorted(jobs)])
            if workflows or agents or (jobs_sid is not None and self._store.keeps_checkpoints):
                names = sorted(workflows)
                upserts = [state.bundle(n) for n in names if state.shown(n)]
                deletes = [n for n in names if not state.shown(n)]
                found = {url: state.agent(url) for url in sorted(agents)}
                state.forget_converted()
                kept, gone = state.take_changes()
                if jobs_sid is not None:
                    kept.append(jobs_snapshot_entry(jobs_sid))
                checkpoint = Checkpoint(self.identity, sequences)
                self._write(lambda: self._store.apply_from_source(
                    checkpoint, upserts, deletes,
                    agents=[a for a in found.values() if a is not None],
                    deleted_agents=[url for url, a in found.items() if a is None],
                    entries=kept, deleted_entries=gone), sequences)
                if self._store.keeps_records:
                    state.keep_written(b.workflow for b in upserts)
            else:
                state.take_changes()
                if sequences != self._sequences:
                    self._advance(sequences)
        with self._cond:
            self._updates += len(rows)
        log.debug("couchdb source: applied %d changes of %s", len(rows), db)
        self._report(problems, f"changes of {db}")
        return len(rows)
