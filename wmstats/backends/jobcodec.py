"""A compact encoding of one workflow's job records, shared by the backends.

:class:`~wmstats.schema.WorkflowJobs` becomes one JSON array ``[groups,
samples]`` of positional records (:func:`wmstats.backends.codec.record_values`,
without the workflow name, which is the key), optionally zlib-compressed: a
sample's document compresses well next to the others of its workflow
(:func:`encode_jobs`, what the sqlite and CouchDB stores persist).

A store that keeps many workflows' blobs together (the memory store) encodes
them with a :class:`JobDictionary` instead, about half the bytes:

* a sample whose fields are what converting its document gives
  (:func:`wmstats.jobs.convert_jobsummary` with the default
  :class:`~wmstats.jobs.JobOptions`, as every sample of a source with default
  options) is kept as its document alone, a JSON object, and converted again
  when read; any other sample keeps its positional fields;
* the blob is compressed with a dictionary made from the first workflows the
  store was given (:class:`~wmstats.backends.dictionary.BlobDictionary`).  Every
  workflow's documents share their keys, error texts and paths, which one blob
  alone cannot use.

:func:`decode_jobs` reads every form: a blob's first byte says which.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, ClassVar, Final

import ujson

from wmstats import _deflate
from wmstats.backends.codec import field_names, record_from_values, record_values
from wmstats.backends.dictionary import BlobDictionary
from wmstats.jobs import JobOptions, convert_jobsummary
from wmstats.schema import JobGroup, JobSample, WorkflowJobs
from wmstats.serialize import json_bytes, json_dumps

__all__ = ["JobDictionary", "encode_jobs", "decode_jobs"]

_ZLIB_MAGIC: Final = b"\x78"
_DEFAULT_OPTIONS: Final = JobOptions()
_DOCUMENT_AT: Final = field_names(JobSample).index("Document")


def _name_at(cls: type[JobGroup] | type[JobSample]) -> int:
    return field_names(cls).index("RequestName")


def _rows(cls: type[JobGroup] | type[JobSample],
          records: Sequence[JobGroup] | Sequence[JobSample]) -> list[list[Any]]:
    at = _name_at(cls)
    rows = []
    for record in records:
        values = record_values(record)
        del values[at]
        rows.append(values)
    return rows


def encode_jobs(jobs: WorkflowJobs, *, compress: bool = True) -> bytes:
    """One workflow's job records as one blob."""
    data = json_bytes([_rows(JobGroup, jobs.groups), _rows(JobSample, jobs.samples)])
    return _deflate.compress(data) if compress else data


def _document_of(sample: JobSample) -> dict[str, Any] | None:
    """The sample's document as an object, when the sample is exactly what
    converting it gives (so the document alone can stand for the sample)."""
    text = sample.Document
    if not text.startswith("{"):
        return None
    try:  # read as _unpack reads it
        doc = ujson.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or json_dumps(doc) != text:
        return None
    entry = convert_jobsummary(doc, [], _DEFAULT_OPTIONS)
    if entry is None:
        return None
    values = record_values(sample)
    values[_DOCUMENT_AT] = ""  # as in entry.values; the document compared above
    return doc if tuple(values) == entry.values else None


def _pack(jobs: WorkflowJobs) -> bytes:
    """The dictionary form before compression: samples as documents where they can."""
    at = _name_at(JobSample)
    samples: list[Any] = []
    for sample in jobs.samples:
        doc = _document_of(sample)
        if doc is None:
            values = record_values(sample)
            del values[at]
            samples.append(values)
        else:
            samples.append(doc)
    return json_bytes([_rows(JobGroup, jobs.groups), samples])


def _unpack(name: str, data: bytes) -> WorkflowJobs:
    groups, samples = ujson.loads(data)
    at = _name_at(JobGroup)
    for row in groups:
        row.insert(at, name)
    out: list[JobSample] = []
    at = _name_at(JobSample)
    for item in samples:
        if isinstance(item, dict):
            entry = convert_jobsummary(item, [], _DEFAULT_OPTIONS)
            assert entry is not None  # checked when packed
            out.append(entry.kept_sample())
        else:
            item.insert(at, name)
            out.append(record_from_values(JobSample, item))
    return WorkflowJobs(name, tuple(record_from_values(JobGroup, row) for row in groups),
                        tuple(out))


class JobDictionary(BlobDictionary):
    """A compression dictionary for many workflows' job records (one per store).

    Made by :meth:`train` from a few workflows' records; then :meth:`encode` and
    :meth:`decode_jobs` with it (safe from several threads at once).
    """

    #: zstd level: 9 makes blobs 12 % smaller than 3 for ~0.5 ms more per
    #: workflow (~1.5 ms with the packing, on production-sized mock workflows;
    #: reading costs the same).
    ZSTD_LEVEL: ClassVar[int] = 9
    #: workflows (with job records) a dictionary is made from
    TRAIN_WORKFLOWS: Final = 64

    @classmethod
    def train(cls, samples: Sequence[WorkflowJobs], *, kind: str | None = None
              ) -> JobDictionary:
        """A dictionary for records like ``samples`` (zstd when ``zstandard`` is
        installed, unless ``kind`` says otherwise)."""
        return cls.from_samples(
            [_pack(jobs) for jobs in samples if jobs.groups or jobs.samples], kind=kind)

    def encode(self, jobs: WorkflowJobs) -> bytes:
        """One workflow's job records as one blob."""
        return self.compress(_pack(jobs))


def decode_jobs(name: str, blob: bytes, dictionary: JobDictionary | None = None
                ) -> WorkflowJobs:
    """The inverse of :func:`encode_jobs` and :meth:`JobDictionary.encode` (which
    needs its ``dictionary``)."""
    if BlobDictionary.made(blob):
        if dictionary is None:
            raise ValueError("a job blob made with a dictionary, decoded without it")
        return _unpack(name, dictionary.decompress(blob))
    if blob[:1] == _ZLIB_MAGIC:
        blob = zlib.decompress(blob)
    groups, samples = ujson.loads(blob)
    out = []
    for cls, rows in ((JobGroup, groups), (JobSample, samples)):
        at = _name_at(cls)
        for row in rows:
            row.insert(at, name)
        out.append(tuple(record_from_values(cls, row) for row in rows))
    return WorkflowJobs(name, out[0], out[1])
