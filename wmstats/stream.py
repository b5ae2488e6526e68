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
* :func:`compress_chunks` -- the same for any of :data:`CODINGS` (gzip, zstd, br);
* :func:`encode` -- pick one of the above by media type;
* :class:`FrameCache` -- NDJSON runs of records kept as zstd frames compressed once
  at a high level, a response being their concatenation.

Records may also come already encoded, as the JSON text (``bytes``) of one record:
it is written as it is (see :meth:`wmstats.store.Store.stream_encoded`).

Compression: gzip through ISA-L (the ``isal`` package, several times faster than
zlib at the same ratio) when it is installed, else the standard library's zlib;
zstd (``zstandard``) and brotli (``brotli``) when their packages are installed
(:func:`available_codings`).  ``pip install wmstats[compress]`` brings all three.

Records are turned into dicts by ``unstructure`` (default: the shared cattrs
converter of :mod:`wmstats.serialize`; pass :meth:`wmstats.query.Query.projector`
to apply a field mask); dicts pass through unchanged.  JSON text is written by
:func:`wmstats.serialize.json_bytes`, non-ASCII characters kept as UTF-8.
"""

from __future__ import annotations

import functools
import importlib
import operator
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

from wmstats.query import Page, Query
from wmstats.serialize import json_bytes

__all__ = [
    "CHUNK_SIZE",
    "CODINGS",
    "available_codings",
    "compress_chunks",
    "compress_bytes",
    "FrameCache",
    "FRAME_LEVEL",
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
        if isinstance(record, bytes):
            yield record
        else:
            yield _dumps(record if isinstance(record, dict) else convert(record))


def _array_chunked(texts: Iterable[bytes], head: bytes, tail: bytes,
                   chunk_size: int) -> Iterator[bytes]:
    """``head``, the texts as a JSON array, then ``tail``, in chunks of at least
    ``chunk_size`` bytes (the last may be smaller); never an empty chunk.

    The texts are copied into one buffer as they come (see :func:`_lines_chunked`).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    buffer = bytearray(head)
    buffer += b"["
    comma = False
    for text in texts:
        if comma:
            buffer += b","
        comma = True
        buffer += text
        if len(buffer) >= chunk_size:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    buffer += tail
    yield bytes(buffer)


def json_array_chunks(records: Iterable[Any], unstructure: Unstructure | None = None, *,
                      chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """One JSON array of the records, in chunks.

    :param records: records (attrs instances or dicts), consumed lazily.
    :param unstructure: record -> JSON-compatible value (default: the converter).
    :param chunk_size: the size chunks are gathered to.
    """
    return _array_chunked(_encoded(records, unstructure), b"", b"", chunk_size)


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
    return _array_chunked(_encoded(records, unstructure), head, b"}", chunk_size)


def ndjson_chunks(records: Iterable[Any], unstructure: Unstructure | None = None, *,
                  chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """One JSON object per line (each line ends with ``\\n``), in chunks."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    return _lines_chunked(_encoded(records, unstructure), chunk_size)


def _lines_chunked(texts: Iterable[bytes], chunk_size: int) -> Iterator[bytes]:
    """Each text as a line, gathered into chunks of at least ``chunk_size`` bytes.

    The texts are copied into one buffer as they come (not kept: a freshly encoded
    text may hold far more memory than its length).
    """
    buffer = bytearray()
    for text in texts:
        buffer += text
        buffer += b"\n"
        if len(buffer) >= chunk_size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Brotli:
    """brotli's streaming compressor with the interface of zlib's."""

    __slots__ = ("_inner",)

    def __init__(self, quality: int) -> None:
        brotli = importlib.import_module("brotli")
        self._inner = brotli.Compressor(quality=quality)

    def compress(self, data: bytes, /) -> bytes:
        out: bytes = self._inner.process(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self._inner.finish()
        return out


def _gzip(level: int) -> _Compressor:
    isal_zlib = _module("isal.isal_zlib")
    if isal_zlib is not None:
        # ISA-L has levels 0-3: zlib's 1-3 -> 1, 4-6 -> 2, 7-9 -> 3.
        made: _Compressor = isal_zlib.compressobj(min(3, max(1, (level + 2) // 3)),
                                                  isal_zlib.DEFLATED, 31)
        return made
    return zlib.compressobj(level, zlib.DEFLATED, 31)


def _zstd(level: int) -> _Compressor:
    zstandard = importlib.import_module("zstandard")
    # Long-distance matching over an 8 MiB window (the most RFC 8878 lets an HTTP
    # client be asked to hold): records repeat their keys and values far apart, so
    # it makes a stream of workflows 30 % smaller than zstd alone (0.073 of the raw
    # size instead of 0.104 at level 1, measured on mock workflows), at a fifth of
    # its speed (about 100 MB/s of CPU here).
    params = zstandard.ZstdCompressionParameters.from_level(level, window_log=23,
                                                             enable_ldm=True)
    made: _Compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return made


#: Content codings this module writes, best first: the module each needs (``None``:
#: the standard library), its default level, and its compressor factory.
CODINGS: Final[dict[str, tuple[str | None, int, Callable[[int], _Compressor]]]] = {
    "zstd": ("zstandard", 1, _zstd),
    "br": ("brotli", 5, _Brotli),
    "gzip": (None, 1, _gzip),
}


@functools.cache
def _module(name: str) -> Any:
    """The module ``name``, or ``None`` when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available_codings() -> tuple[str, ...]:
    """The codings of :data:`CODINGS` whose packages are installed, best first
    (``gzip`` always)."""
    return tuple(name for name, (module, _level, _make) in CODINGS.items()
                 if module is None or _module(module) is not None)


def _compressor(coding: str, level: int | None) -> _Compressor:
    found = CODINGS.get(coding)
    if found is None or coding not in available_codings():
        raise ValueError(f"cannot compress with {coding!r} (available: "
                         f"{', '.join(available_codings())})")
    _module_name, default, make = found
    return make(default if level is None else level)


def compress_chunks(chunks: Iterable[bytes], coding: str = "gzip",
                    level: int | None = None) -> Iterator[bytes]:
    """Compress a stream of chunks with ``coding`` (one of :func:`available_codings`),
    yielding compressed data as it is produced.

    :param level: the coding's level (default: its entry in :data:`CODINGS`; for
        gzip a zlib level, 1-9).
    :raises ValueError: for a coding that is unknown or not installed.
    """
    compressor = _compressor(coding, level)
    return _compressed(chunks, compressor)


def _compressed(chunks: Iterable[bytes], compressor: _Compressor) -> Iterator[bytes]:
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def compress_bytes(data: bytes, coding: str = "gzip", level: int | None = None) -> bytes:
    """``data`` compressed whole with ``coding`` (see :func:`compress_chunks`)."""
    compressor = _compressor(coding, level)
    return compressor.compress(data) + compressor.flush()


#: zstd level of :class:`FrameCache`'s frames: 19 (``btultra2``, about 1 MB/s of CPU
#: here, a 13 MiB context while it runs) makes runs of mock workflows 0.040 of their
#: NDJSON size where level 1 with long-distance matching makes the whole stream 0.060
#: (docs/http.md, "Formats and encodings").
FRAME_LEVEL: Final = 19
#: The largest window a frame may need (8 MiB: RFC 8878's limit for HTTP).
_FRAME_WINDOW_LOG: Final = 23
#: The longest match chains and the largest hash table of a frame's compression
#: (see :func:`_frame`).
_FRAME_CHAIN_LOG: Final = 21
_FRAME_HASH_LOG: Final = 20


class _Frame(NamedTuple):
    lines: Sequence[bytes]
    frame: bytes


class FrameCache:
    """NDJSON runs of encoded records (:meth:`wmstats.store.Store.encoded_runs`) as
    zstd frames, each compressed once at a high level (:data:`FRAME_LEVEL`).

    A zstd stream may be several frames one after the other (RFC 8878, section
    3.1), so the body of ``Content-Encoding: zstd`` can be the frames of its runs.
    :meth:`frames` answers a request from the frames kept for runs that did not
    change and compresses the others on the way at the default level (as fast as
    :func:`compress_chunks`); :meth:`refresh`, off the request path, compresses
    the changed runs at the high level.

    A frame is kept with the line objects it was made from: it is current while a
    run holds the very same objects (a store makes a new one when it writes a
    record), so whatever changes a run leaves its old frame unused.

    :param level: the zstd level of the kept frames.
    """

    def __init__(self, level: int = FRAME_LEVEL) -> None:
        self.level = level
        self._lock = threading.Lock()
        self._frames: dict[str, _Frame] = {}

    def _current(self, key: str, lines: Sequence[bytes]) -> bytes | None:
        with self._lock:
            kept = self._frames.get(key)
        if kept is None or len(kept.lines) != len(lines) or \
                not all(map(operator.is_, kept.lines, lines)):
            return None
        return kept.frame

    def frames(self, runs: Iterable[tuple[str, Sequence[bytes]]],
               chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The runs' lines (each followed by ``\\n``) as one zstd stream: the kept
        frame of each current run; the other runs compressed now, those next to each
        other in one frame (with nothing kept, the whole body is one frame)."""
        level = CODINGS["zstd"][1]
        compressor: _Compressor | None = None
        for key, lines in runs:
            frame = self._current(key, lines)
            if frame is None:
                if compressor is None:
                    compressor = _zstd(level)
                for chunk in _lines_chunked(lines, chunk_size):
                    out = compressor.compress(chunk)
                    if out:
                        yield out
                continue
            if compressor is not None:
                yield compressor.flush()
                compressor = None
            yield frame
        if compressor is not None:
            yield compressor.flush()

    def refresh(self, runs: Iterable[tuple[str, Sequence[bytes]]],
                stop: Callable[[], bool] | None = None) -> int:
        """Compress every run that has no current frame at :attr:`level` and keep it;
        once all ``runs`` are seen, forget the frames of runs no longer among them.

        :param stop: asked before each compression; ``True`` ends the pass.
        :returns: how many runs were compressed.
        """
        seen: set[str] = set()
        made = 0
        for key, lines in runs:
            seen.add(key)
            if not lines or self._current(key, lines) is not None:
                continue
            if stop is not None and stop():
                return made
            frame = _frame(lines, self.level)
            with self._lock:
                self._frames[key] = _Frame(lines, frame)
            made += 1
        with self._lock:
            for key in [k for k in self._frames if k not in seen]:
                del self._frames[key]
        return made

    def stats(self, runs: Iterable[tuple[str, Sequence[bytes]]]) -> dict[str, int]:
        """``runs``: how many there are; ``current``: how many have a current frame;
        ``bytes``: the size of the frames kept."""
        listed = list(runs)
        current = sum(1 for key, lines in listed if self._current(key, lines) is not None)
        with self._lock:
            size = sum(len(kept.frame) for kept in self._frames.values())
        return {"runs": len(listed), "current": current, "bytes": size}


def _frame(lines: Sequence[bytes], level: int) -> bytes:
    """One zstd frame of ``lines``, each followed by a newline."""
    zstandard = importlib.import_module("zstandard")
    size = sum(map(len, lines)) + len(lines)
    chosen = zstandard.ZstdCompressionParameters.from_level(
        level, source_size=size,
        window_log=min(_FRAME_WINDOW_LOG, max(10, (size - 1).bit_length())))
    # At most 2**21 entries in the match chains and 2**20 in the hash table (level
    # 19 takes 2**24 and 2**22 for runs over 8 MiB): a 13 MiB compression context
    # instead of 81 MiB (the server's resident memory while the frames are made,
    # which at 100,000 production-sized workflows is minutes), for 2 % more bytes
    # than level 19 makes on runs of mock workflows (0.7 % more than chains of
    # 2**22 and a table of 2**22, 33 MiB), and less time.
    params = zstandard.ZstdCompressionParameters(
        window_log=chosen.window_log, chain_log=min(_FRAME_CHAIN_LOG, chosen.chain_log),
        hash_log=min(_FRAME_HASH_LOG, chosen.hash_log), search_log=chosen.search_log,
        min_match=chosen.min_match, target_length=chosen.target_length,
        strategy=chosen.strategy)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj(size)
    out = [compressor.compress(chunk) for chunk in _lines_chunked(lines, CHUNK_SIZE)]
    out.append(compressor.flush())
    return b"".join(out)


def gzip_chunks(chunks: Iterable[bytes], level: int = 1) -> Iterator[bytes]:
    """Gzip-compress a stream of chunks, yielding compressed data as it is produced.

    :param level: zlib compression level (1: fastest; 9: smallest).
    """
    return compress_chunks(chunks, "gzip", level)


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
