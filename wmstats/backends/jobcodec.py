"""A compact encoding of one workflow's job records, shared by the backends.

:class:`~wmstats.schema.WorkflowJobs` becomes one JSON array ``[groups,
samples]`` of positional records (:func:`wmstats.backends.codec.record_values`,
without the workflow name, which is the key), optionally zlib-compressed: a
sample's document compresses well next to the others of its workflow.
"""

from __future__ import annotations

import zlib
from typing import Final

import ujson

from wmstats import _deflate
from wmstats.backends.codec import field_names, record_from_values, record_values
from wmstats.schema import JobGroup, JobSample, WorkflowJobs
from wmstats.serialize import json_bytes

__all__ = ["encode_jobs", "decode_jobs"]

_ZLIB_MAGIC: Final = b"\x78"


def _name_at(cls: type[JobGroup] | type[JobSample]) -> int:
    return field_names(cls).index("RequestName")


def encode_jobs(jobs: WorkflowJobs, *, compress: bool = True) -> bytes:
    """One workflow's job records as one blob."""
    parts = []
    for cls, records in ((JobGroup, jobs.groups), (JobSample, jobs.samples)):
        at = _name_at(cls)
        rows = []
        for record in records:
            values = record_values(record)
            del values[at]
            rows.append(values)
        parts.append(rows)
    data = json_bytes(parts)
    return _deflate.compress(data) if compress else data


def decode_jobs(name: str, blob: bytes) -> WorkflowJobs:
    """The inverse of :func:`encode_jobs`."""
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
