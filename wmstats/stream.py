"""Streaming encoders and paging helpers: pure iterators, constant memory.

Encoders take any iterator of records and yield ``bytes`` chunks of about
``chunk_size`` bytes (64 KiB by default), holding at most one chunk plus one
record at a time, so a response of any length streams in flat memory::

    records = store.stream(query)
    body = gzip_chunks(ndjson_chunks(records, unstructure=query.projector()))

* :func:`json_array_chunks` -- one JSON array ``[{...},{...}]``;
* :func:`json_object_chunks` -- a JSON object with metadata and the array under
  one key (``{"total": 3, "idx": 0, "data": [...]}``);
* :func:`ndjson_chunks` -- one JSON object per line (``application/ndjson``);
* :func:`gzip_chunks` -- gzip-compress any chunk stream (``Content-Encoding: gzip``);
* :func:`encode` -- pick one of the above by media type.

Records are turned into dicts by ``unstructure`` (default: the shared cattrs
converter of :mod:`wmstats.serialize`; pass :meth:`wmstats.query.Query.projector`
to apply a field mask); dicts pass through unchanged.  JSON text is written by
``ujson``, non-ASCII characters kept as UTF-8.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from wmstats.query import Page, Query
from wmstats.serialize import json_bytes

__all__ = [
    "CHUNK_SIZE",
    "JSON",
    "NDJSON",
    "MEDIA_TYPES",
    "json_array_chunks",
    "json_object_chunks",
    "ndjson_chunks",
    "gzip_chunks",
    "encode",
    "iter_pages",
    "next_query",
]

#: Default chunk size in bytes.
CHUNK_SIZE: Final = 64 * 1024
JSON: Final = "application/json"
NDJSON: Final = "application/ndjson"
#: Media types :func:`encode` understands.
MEDIA_TYPES: Final = (JSON, NDJSON)

Unstructure = Callable[[Any], Any]


def _default_unstructure() -> Unstructure:
    from wmstats.serialize import converter
    return converter().unstructure


_dumps: Final = json_bytes


def _encoded(records: Iterable[Any], unstructure: Unstructure | None) -> Iterator[bytes]:
    convert = unstructure or _default_unstructure()
    for record in records:
        yield _dumps(record if isinstance(record, dict) else convert(record))


def _chunked(pieces: Iterable[bytes], chunk_size: int) -> Iterator[bytes]:
    """Join small pieces into chunks of at least ``chunk_size`` bytes (the last may be
    smaller); never yields an empty chunk."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= chunk_size:
            yield b"".join(buffer)
            buffer.clear()
            size = 0
    if size:
        yield b"".join(buffer)


def _array_pieces(records: Iterable[Any], unstructure: Unstructure | None,
                  head: bytes, tail: bytes) -> Iterator[bytes]:
    yield head + b"["
    first = True
    for text in _encoded(records, unstructure):
        if first:
            first = False
            yield text
        else:
            yield b"," + text
    yield b"]" + tail


def json_array_chunks(records: Iterable[Any], unstructure: Unstructure | None = None, *,
                      chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """One JSON array of the records, in chunks.

    :param records: records (attrs instances or dicts), consumed lazily.
    :param unstructure: record -> JSON-compatible value (default: the converter).
    :param chunk_size: the size chunks are gathered to.
    """
    return _chunked(_array_pieces(records, unstructure, b"", b""), chunk_size)


def json_object_chunks(records: Iterable[Any], meta: Mapping[str, Any], key: str = "data",
                       unstructure: Unstructure | None = None, *,
                       chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """A JSON object holding ``meta``'s items, then the records as an array under ``key``.

    :param meta: JSON-compatible values written before the array (e.g. ``total``).
    :param key: the key of the array; must not be in ``meta``.
    """
    if key in meta:
        raise ValueError(f"{key!r} is both a metadata key and the records key")
    head = _dumps(dict(meta))[:-1]
    head += (b"," if meta else b"") + _dumps(key) + b":"
    return _chunked(_array_pieces(records, unstructure, head, b"}"), chunk_size)


def ndjson_chunks(records: Iterable[Any], unstructure: Unstructure | None = None, *,
                  chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """One JSON object per line (each line ends with ``\\n``), in chunks."""
    return _chunked((text + b"\n" for text in _encoded(records, unstructure)), chunk_size)


def gzip_chunks(chunks: Iterable[bytes], level: int = 1) -> Iterator[bytes]:
    """Gzip-compress a stream of chunks, yielding compressed data as it is produced.

    :param level: zlib compression level (1: fastest; 9: smallest).
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def encode(records: Iterable[Any], media_type: str = NDJSON, *, gzip: bool = False,
           unstructure: Unstructure | None = None, meta: Mapping[str, Any] | None = None,
           chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Encode records as :data:`JSON` or :data:`NDJSON`, optionally gzipped.

    :param meta: for JSON, wrap the array as ``{**meta, "data": [...]}``.
    :raises ValueError: for another media type.
    """
    if media_type == NDJSON:
        chunks = ndjson_chunks(records, unstructure, chunk_size=chunk_size)
    elif media_type == JSON:
        chunks = (json_array_chunks(records, unstructure, chunk_size=chunk_size)
                  if meta is None else
                  json_object_chunks(records, meta, "data", unstructure, chunk_size=chunk_size))
    else:
        raise ValueError(f"unsupported media type {media_type!r} "
                         f"(supported: {', '.join(MEDIA_TYPES)})")
    return gzip_chunks(chunks) if gzip else chunks


# --------------------------------------------------------------------------- paging


def next_query(query: Query, page: Page) -> Query | None:
    """The query for the page after ``page``, or ``None`` when it was the last."""
    following = page.next_idx
    if following is None or (query.limit is not None and query.limit == 0):
        return None
    return query.page(following, query.limit)


def iter_pages(fetch: Callable[[Query], Page], query: Query,
               max_pages: int | None = None) -> Iterator[Page]:
    """Fetch page after page (``fetch`` is e.g. ``store.query`` or an HTTP client call).

    :param query: the first page's query; its ``limit`` is the page size (it must
        not be ``None`` or 0).
    :param max_pages: stop after this many pages.
    """
    if not query.limit:
        raise ValueError("iter_pages needs a query with a page size (limit >= 1)")
    current: Query | None = query
    count = 0
    while current is not None and (max_pages is None or count < max_pages):
        page = fetch(current)
        yield page
        count += 1
        current = next_query(current, page)
