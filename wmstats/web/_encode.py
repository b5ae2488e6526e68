"""Response bodies as byte chunks, on top of :mod:`wmstats.stream`.

:mod:`wmstats.stream` does the encoding (JSON object, NDJSON, gzip, in constant
memory); this module adds what the server needs around it: counting the records
of a body as it streams (for the metrics), tagging lines of mixed record types
with ``RecordType``, and small fixed documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from wmstats import stream
from wmstats.serialize import json_dumps

__all__ = [
    "Tally",
    "dumps",
    "dumps_bytes",
    "counted",
    "ndjson_body",
    "document_body",
    "gzip_bytes",
]

#: Compact JSON text (UTF-8 kept as is, ``/`` not escaped).
dumps: Final[Callable[[Any], str]] = json_dumps


def dumps_bytes(value: Any) -> bytes:
    """``value`` as JSON text bytes with a final newline."""
    return (dumps(value) + "\n").encode("utf-8")


def gzip_bytes(data: bytes, level: int = 1) -> bytes:
    """``data`` as one gzip member."""
    return stream.compress_bytes(data, "gzip", level)


class Tally:
    """How many records a body generator has produced so far."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records = 0


def counted(items: Iterable[Any], tally: Tally) -> Iterator[Any]:
    """``items``, counting them into ``tally``."""
    n = tally.records
    try:
        for item in items:
            n += 1
            yield item
    finally:
        tally.records = n


def ndjson_body(items: Iterable[Any], unstructure: Callable[[Any], Any], tally: Tally,
                chunk_size: int) -> Iterator[bytes]:
    """One line per item (dicts as they are, records through ``unstructure``)."""
    return stream.ndjson_chunks(counted(items, tally), unstructure, chunk_size=chunk_size)


def document_body(meta: Mapping[str, Any], key: str, items: Iterable[Any],
                  unstructure: Callable[[Any], Any], tally: Tally,
                  chunk_size: int) -> Iterator[bytes]:
    """A JSON object: ``meta``'s keys, then the items as an array under ``key``."""
    return stream.json_object_chunks(counted(items, tally), meta, key, unstructure,
                                     chunk_size=chunk_size)
