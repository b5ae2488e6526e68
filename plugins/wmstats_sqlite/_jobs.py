"""The sqlite store's job records: table ``job_doc``, one row per workflow.

``job_doc (name TEXT PRIMARY KEY, blob BLOB)`` holds each workflow's
:class:`~wmstats.schema.WorkflowJobs` as one blob
(:mod:`wmstats.backends.jobcodec`); ``meta.jobs_snapshot`` is the id of the
current job records.  The table is made by the first job write (and dropped
with the others when an older layout is rebuilt); until then there are no job
records.  :class:`SqliteJobs` gives :class:`~wmstats_sqlite.SqliteStore` the job
methods of the store contract, each write in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from wmstats.backends.jobcodec import decode_jobs, encode_jobs
from wmstats.schema import WorkflowJobs

__all__ = ["SqliteJobs", "CREATE"]

#: The job table and its meta row.
CREATE: Final = ("CREATE TABLE IF NOT EXISTS job_doc (name TEXT PRIMARY KEY, "
                 "blob BLOB NOT NULL)")
_BATCH: Final = 500
#: The job snapshot id before any job write.
_NONE: Final = "none"


def _new_id() -> str:
    return "jobs-" + uuid.uuid4().hex


def _finish(con: sqlite3.Connection) -> str:
    sid = _new_id()
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('jobs_snapshot', ?)", (sid,))
    return sid


def _missing_table(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


class SqliteJobs:
    """The job record methods of the store contract, for :class:`SqliteStore`."""

    if TYPE_CHECKING:
        _write_lock: threading.Lock
        _compress: bool

        def _connection(self) -> sqlite3.Connection: ...

        def _read(self) -> Any: ...

    def _write_jobs(self, upserts: Iterable[WorkflowJobs], deletes: Iterable[str],
                    everything: bool) -> str:
        with self._write_lock:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute(CREATE)
                if everything:
                    con.execute("DELETE FROM job_doc")
                rows: list[tuple[str, bytes]] = []
                gone: list[tuple[str]] = []
                for item in upserts:
                    if item.groups or item.samples:
                        rows.append((item.RequestName,
                                     encode_jobs(item, compress=self._compress)))
                    else:
                        gone.append((item.RequestName,))
                    if len(rows) >= _BATCH:
                        con.executemany("INSERT OR REPLACE INTO job_doc (name, blob) "
                                        "VALUES (?, ?)", rows)
                        rows.clear()
                    if len(gone) >= _BATCH:
                        con.executemany("DELETE FROM job_doc WHERE name = ?", gone)
                        gone.clear()
                con.executemany("INSERT OR REPLACE INTO job_doc (name, blob) VALUES (?, ?)",
                                rows)
                con.executemany("DELETE FROM job_doc WHERE name = ?", gone)
                con.executemany("DELETE FROM job_doc WHERE name = ?",
                                [(name,) for name in deletes])
                sid = _finish(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return sid

    def replace_jobs(self, jobs: Iterable[WorkflowJobs]) -> str:
        return self._write_jobs(jobs, (), True)

    def apply_jobs(self, upserts: Iterable[WorkflowJobs] = (),
                   deletes: Iterable[str] = ()) -> str:
        return self._write_jobs(upserts, deletes, False)

    @property
    def jobs_snapshot_id(self) -> str:
        with self._read() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'jobs_snapshot'").fetchone()
        return _NONE if row is None else str(row[0])

    def get_jobs(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        wanted = list(dict.fromkeys(names))
        found: dict[str, WorkflowJobs] = {}
        with self._read() as con:
            for start in range(0, len(wanted), _BATCH):
                chunk = wanted[start:start + _BATCH]
                marks = ", ".join("?" for _ in chunk)
                try:
                    rows = con.execute(f"SELECT name, blob FROM job_doc WHERE name IN ({marks})",
                                       chunk).fetchall()
                except sqlite3.OperationalError as exc:
                    if _missing_table(exc):
                        return {}
                    raise
                for name, blob in rows:
                    found[name] = decode_jobs(name, blob)
        return {name: found[name] for name in wanted if name in found}
