"""The memory store's job records: one compressed blob per workflow.

:class:`MemoryJobs` gives a store class the job methods of the store contract
(mixed in before :class:`~wmstats.store.Store`); its :class:`JobShelf` is made on
first use.

Held apart from the workflow snapshot (job writes are frequent and must not drop
the snapshot's cached indexes).  Each write builds a new name -> blob map and
swaps it in, so readers see one version whole.

The blobs are compressed with a :class:`~wmstats.backends.jobcodec.JobDictionary`
made from the first workflows of each :meth:`JobShelf.replace` (their documents
share most of their text, which one blob alone cannot use): at 100,000
production-sized mock workflows, ~255 MiB where zlib alone per blob took ~715 MiB.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator

from wmstats._procfs import trim_heap
from wmstats.backends.jobcodec import JobDictionary, decode_jobs, encode_jobs
from wmstats.schema import WorkflowJobs

__all__ = ["JobShelf", "MemoryJobs"]


def _drain(items: list[WorkflowJobs]) -> Iterator[WorkflowJobs]:
    """The items, each let go of as it is taken."""
    items.reverse()
    while items:
        yield items.pop()


class JobShelf:
    """Per workflow, its job records as one blob; swapped atomically on every write.

    :param compress: compress the blobs (with a dictionary made from the first
        workflows of each :meth:`replace`; until the first, zlib alone).
    :param shared_name: a workflow's name as the store holds it already, an equal
        string (so that each name is held once), or the name itself.
    """

    def __init__(self, *, compress: bool = True,
                 shared_name: Callable[[str], str] = str) -> None:
        self._compress = compress
        self._shared_name = shared_name
        self._lock = threading.Lock()
        self._prefix = "jobs-" + uuid.uuid4().hex[:12]
        self._counter = 0
        #: the blobs and the dictionary they were made with, swapped as one
        self._state: tuple[dict[str, bytes], JobDictionary | None] = ({}, None)
        self._sid = self._next_id()

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    @property
    def snapshot_id(self) -> str:
        """The id of the current version."""
        return self._sid

    def __len__(self) -> int:
        return len(self._state[0])

    def nbytes(self) -> int:
        """Bytes of the blobs (and of their dictionary)."""
        blobs, dictionary = self._state
        return (sum(len(b) for b in blobs.values())
                + (len(dictionary.content) if dictionary is not None else 0))

    @property
    def dictionary(self) -> JobDictionary | None:
        """The dictionary the blobs are compressed with (``None``: none)."""
        return self._state[1]

    def _encode(self, item: WorkflowJobs, dictionary: JobDictionary | None) -> bytes:
        if dictionary is None:
            return encode_jobs(item, compress=self._compress)
        return dictionary.encode(item)

    def replace(self, jobs: Iterable[WorkflowJobs]) -> str:
        """Every workflow's job records."""
        with self._lock:
            items: Iterator[WorkflowJobs] = iter(jobs)
            dictionary = None
            if self._compress:
                first = list(itertools.islice(items, JobDictionary.TRAIN_WORKFLOWS))
                if any(item.groups or item.samples for item in first):
                    dictionary = JobDictionary.train(first)
                items = itertools.chain(_drain(first), items)
            blobs: dict[str, bytes] = {}
            shared = self._shared_name
            for item in items:
                blobs.pop(item.RequestName, None)
                if item.groups or item.samples:
                    blobs[shared(item.RequestName)] = self._encode(item, dictionary)
            self._state = (blobs, dictionary)
            self._sid = sid = self._next_id()
        # The records were freed between the blobs kept: give those pages back.
        trim_heap()
        return sid

    def apply(self, upserts: Iterable[WorkflowJobs], deletes: Iterable[str]) -> str:
        """Some workflows' job records, and deleted ones."""
        with self._lock:
            current, dictionary = self._state
            changed: dict[str, bytes | None] = {}
            for item in upserts:
                changed[item.RequestName] = (self._encode(item, dictionary)
                                             if item.groups or item.samples else None)
            for name in deletes:
                changed[name] = None
            blobs = dict(current)
            shared = self._shared_name
            for name, blob in changed.items():
                if blob is None:
                    blobs.pop(name, None)
                elif name in blobs:
                    blobs[name] = blob  # the key kept
                else:
                    blobs[shared(name)] = blob
            self._state = (blobs, dictionary)
            self._sid = self._next_id()
            return self._sid

    def share_names(self) -> None:
        """Key the blobs by the names the store holds now (after the store's
        workflows were replaced: their names are new strings)."""
        with self._lock:
            blobs, dictionary = self._state
            shared = self._shared_name
            self._state = ({shared(name): blob for name, blob in blobs.items()}, dictionary)

    def get(self, names: Iterable[str]) -> dict[str, WorkflowJobs]:
        """The job records of those workflows that have some."""
        blobs, dictionary = self._state
        found = {}
        for name in names:
            blob = blobs.get(name)
            if blob is not None:
                found[name] = decode_jobs(name, blob, dictionary)
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
                        compress=bool(getattr(self, "_compress", True)),
                        shared_name=self._shared_name)
        return shelf

    def _shared_name(self, name: str) -> str:
        """The store's own string equal to ``name`` (this default: ``name``)."""
        return name

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
