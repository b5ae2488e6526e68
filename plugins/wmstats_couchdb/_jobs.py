"""The CouchDB store's job records: a database of their own, one document per workflow.

Job records live apart from the workflow snapshots, in a *jobs database*
(``<base>__jobs__<time><random>``) named by the pointer document ``wmstats-jobs``
of the base database.  Each workflow with job records is one document, ``_id`` =
``"wf:"`` + the workflow name, ``jobs`` = its :class:`~wmstats.schema.WorkflowJobs`
as one compressed blob (:mod:`wmstats.backends.jobcodec`, base64); the document
``wmstats-jobs-meta`` counts the writes (so that every write, even an empty one,
gives a new job snapshot id).

* :meth:`CouchJobs.replace_jobs` writes a new jobs database, then switches the
  pointer (readers see the old records or the new ones) and drops the old one;
* :meth:`CouchJobs.apply_jobs` writes into the current one with ``_bulk_docs``
  (conflicts retried, the last writer wins; other processes may see it land
  workflow by workflow);
* the job snapshot id is ``<jobs database>@<its update_seq>`` (``none`` before
  the first job write).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from wmstats.backends.jobcodec import decode_jobs, encode_jobs
from wmstats.schema import WorkflowJobs
from wmstats_couchdb._http import CouchClient, CouchError, quote

__all__ = ["CouchJobs", "JOBS_POINTER_ID"]

#: The pointer document (in the base database) naming the current jobs database.
JOBS_POINTER_ID: Final = "wmstats-jobs"
#: The document of a jobs database that counts its writes.
_META_ID: Final = "wmstats-jobs-meta"
_RETRIES: Final = 8
_NONE: Final = "none"


def _id(name: str) -> str:
    return "wf:" + name


def _doc(item: WorkflowJobs) -> dict[str, Any]:
    return {"_id": _id(item.RequestName),
            "jobs": base64.b64encode(encode_jobs(item, compress=True)).decode()}


class CouchJobs:
    """The job record methods of the store contract, for :class:`CouchStore`."""

    if TYPE_CHECKING:
        client: CouchClient
        database: str
        batch_size: int

        def _bulk(self, db: str, docs: Sequence[dict[str, Any]]) -> None: ...

        def _revs(self, db: str, ids: Sequence[str]) -> dict[str, str]: ...

    _jobs_write_lock = threading.Lock()

    def _jobs_pointer(self) -> dict[str, Any] | None:
        pointer: dict[str, Any] | None = self.client.request(
            "GET", f"/{quote(self.database)}/{JOBS_POINTER_ID}", ok_missing=True)
        return pointer

    def _jobs_db(self) -> str | None:
        pointer = self._jobs_pointer()
        return None if pointer is None else str(pointer["database"])

    def _new_jobs_db(self) -> str:
        stamp = f"{time.time_ns() // 1_000_000:013d}{secrets.token_hex(3)}"
        name = f"{self.database}__jobs__{stamp}"
        self.client.request("PUT", f"/{quote(name)}")
        return name

    def _drop_jobs_db(self, name: str) -> None:
        try:
            self.client.request("DELETE", f"/{quote(name)}", ok_missing=True)
        except CouchError:
            pass

    def _switch_jobs(self, name: str) -> None:
        path = f"/{quote(self.database)}/{JOBS_POINTER_ID}"
        for _attempt in range(_RETRIES):
            old = self.client.request("GET", path, ok_missing=True)
            doc: dict[str, Any] = {"database": name, "updated": time.time()}
            if old is not None:
                doc["_rev"] = old["_rev"]
            try:
                self.client.request("PUT", path, body=doc)
            except CouchError as exc:
                if exc.status == 409:
                    continue
                raise
            if old is not None and old.get("database") != name:
                self._drop_jobs_db(str(old["database"]))
            return
        raise CouchError(409, "conflict", "could not update the jobs pointer", "PUT", path)

    def _jobs_seq(self, db: str) -> str:
        info = self.client.request("GET", f"/{quote(db)}")
        return f"{db}@{info['update_seq']}"

    def replace_jobs(self, jobs: Iterable[WorkflowJobs]) -> str:
        with CouchJobs._jobs_write_lock:
            db = self._new_jobs_db()
            try:
                batch: dict[str, dict[str, Any]] = {}
                for item in jobs:
                    batch.pop(item.RequestName, None)
                    if item.groups or item.samples:
                        batch[item.RequestName] = _doc(item)
                    if len(batch) >= self.batch_size:
                        self._bulk(db, list(batch.values()))
                        batch = {}
                self._bulk(db, [*batch.values(), {"_id": _META_ID, "generation": 0}])
            except BaseException:
                self._drop_jobs_db(db)
                raise
            self._switch_jobs(db)
            return self._jobs_seq(db)

    def apply_jobs(self, upserts: Iterable[WorkflowJobs] = (),
                   deletes: Iterable[str] = ()) -> str:
        wanted: dict[str, WorkflowJobs | None] = {}
        for item in upserts:
            wanted[item.RequestName] = item if (item.groups or item.samples) else None
        for name in deletes:
            wanted[name] = None
        with CouchJobs._jobs_write_lock:
            db = self._jobs_db()
            if db is None:
                db = self._new_jobs_db()
                self._switch_jobs(db)
            revs = self._revs(db, [*map(_id, wanted), _META_ID])
            meta: dict[str, Any] = {"_id": _META_ID, "generation": time.time_ns()}
            if _META_ID in revs:
                meta["_rev"] = revs[_META_ID]
            docs: list[dict[str, Any]] = [meta]
            for name, wanted_item in wanted.items():
                rev = revs.get(_id(name))
                if wanted_item is not None:
                    doc = _doc(wanted_item)
                    if rev is not None:
                        doc["_rev"] = rev
                    docs.append(doc)
                elif rev is not None:
                    docs.append({"_id": _id(name), "_rev": rev, "_deleted": True})
            for start in range(0, len(docs), self.batch_size):
                self._bulk(db, docs[start:start + self.batch_size])
            return self._jobs_seq(db)

    @property
    def jobs_snapshot_id(self) -> str:
        db = self._jobs_db()
        return _NONE if db is None else self._jobs_seq(db)

    def get_jobs(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        db = self._jobs_db()
        if db is None:
            return {}
        found: dict[str, WorkflowJobs] = {}
        for start in range(0, len(wanted), self.batch_size):
            try:
                answer = self.client.request(
                    "POST", f"/{quote(db)}/_all_docs", params={"include_docs": True},
                    body={"keys": [_id(n) for n in wanted[start:start + self.batch_size]]})
            except CouchError as exc:
                if exc.missing_database:  # replaced meanwhile: read the new one
                    return self.get_jobs(wanted) if self._jobs_db() != db else {}
                raise
            for row in answer["rows"]:
                doc = row.get("doc")
                if isinstance(doc, dict) and "jobs" in doc:
                    name = str(doc["_id"])[len(_id("")):]
                    found[name] = decode_jobs(name, base64.b64decode(doc["jobs"]))
        return {name: found[name] for name in wanted if name in found}
