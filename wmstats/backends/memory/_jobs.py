"""The memory store's job records: one compressed blob per workflow.

:class:`MemoryJobs` gives a store class the job methods of the store contract
(mixed in before :class:`~wmstats.store.Store`); its :class:`JobShelf` is made on
first use.

Held apart from the workflow snapshot (job writes are frequent and must not drop
the snapshot's cached indexes).  Each write builds a new name -> blob map and
swaps it in, so readers see one version whole.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable

from wmstats.backends.jobcodec import decode_jobs, encode_jobs
from wmstats.schema import WorkflowJobs

__all__ = ["JobShelf", "MemoryJobs"]


class JobShelf:
    """Per workflow, its job records as one blob; swapped atomically on every write.

    :param compress: zlib-compress the blobs.
    """

    def __init__(self, *, compress: bool = True) -> None:
        self._compress = compress
        self._lock = threading.Lock()
        self._prefix = "jobs-" + uuid.uuid4().hex[:12]
        self._counter = 0
        self._blobs: dict[str, bytes] = {}
        self._sid = self._next_id()

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    @property
    def snapshot_id(self) -> str:
        """The id of the current version."""
        return self._sid

    def __len__(self) -> int:
        return len(self._blobs)

    def nbytes(self) -> int:
        """Bytes of the blobs."""
        return sum(len(b) for b in self._blobs.values())

    def replace(self, jobs: Iterable[WorkflowJobs]) -> str:
        """Every workflow's job records."""
        with self._lock:
            blobs: dict[str, bytes] = {}
            for item in jobs:
                blobs.pop(item.RequestName, None)
                if item.groups or item.samples:
                    blobs[item.RequestName] = encode_jobs(item, compress=self._compress)
            self._blobs = blobs
            self._sid = self._next_id()
            return self._sid

    def apply(self, upserts: Iterable[WorkflowJobs], deletes: Iterable[str]) -> str:
        """Some workflows' job records, and deleted ones."""
        with self._lock:
            changed: dict[str, bytes | None] = {}
            for item in upserts:
                changed[item.RequestName] = (encode_jobs(item, compress=self._compress)
                                             if item.groups or item.samples else None)
            for name in deletes:
                changed[name] = None
            blobs = dict(self._blobs)
            for name, blob in changed.items():
                if blob is None:
                    blobs.pop(name, None)
                else:
                    blobs[name] = blob
            self._blobs = blobs
            self._sid = self._next_id()
            return self._sid

    def get(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        """The job records of those workflows that have some."""
        blobs = self._blobs
        found = {}
        for name in names:
            blob = blobs.get(name)
            if blob is not None:
                found[name] = decode_jobs(name, blob)
        return found


class MemoryJobs:
    """The job record methods of :class:`~wmstats.store.Store`, kept in a
    :class:`JobShelf` (mix in before ``Store``)."""

    _shelf_lock = threading.Lock()

    def _job_shelf(self) -> JobShelf:
        shelf: JobShelf | None = self.__dict__.get("_jobs_shelf")
        if shelf is None:
            with MemoryJobs._shelf_lock:
                shelf = self.__dict__.get("_jobs_shelf")
                if shelf is None:
                    shelf = self.__dict__["_jobs_shelf"] = JobShelf(
                        compress=bool(getattr(self, "_compress", True)))
        return shelf

    def replace_jobs(self, jobs: Iterable[WorkflowJobs]) -> str:
        return self._job_shelf().replace(jobs)

    def apply_jobs(self, upserts: Iterable[WorkflowJobs] = (),
                   deletes: Iterable[str] = ()) -> str:
        return self._job_shelf().apply(upserts, deletes)

    @property
    def jobs_snapshot_id(self) -> str:
        return self._job_shelf().snapshot_id

    def get_jobs(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        return self._job_shelf().get(names)
