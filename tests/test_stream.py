"""Streaming encoders: correctness, chunking, gzip, and flat memory at 200,000 records."""

from __future__ import annotations

import importlib

import gzip
import itertools
import json
import tracemalloc
from collections.abc import Iterator

import pytest

from wmstats.backends.memory import MemoryStore
from wmstats.query import Query, parse_query
from wmstats.schema import Workflow
from wmstats.serialize import unstructure
from wmstats.stream import (
    JSON,
    NDJSON,
    encode,
    gzip_chunks,
    iter_pages,
    json_array_chunks,
    json_object_chunks,
    ndjson_chunks,
    next_query,
)
from wmstats.testing.data import sample_bundles


def _records(n: int) -> list[Workflow]:
    return [Workflow(RequestName=f"wf_ü_{i}", RequestPriority=i, Campaigns=("A", "Ⅱ"),
                     StatusTime=i) for i in range(n)]


def test_json_array_round_trip() -> None:
    records = _records(50)
    body = b"".join(json_array_chunks(records, chunk_size=100))
    assert json.loads(body) == [unstructure(r) for r in records]
    assert "wf_ü_0".encode() in body  # UTF-8, not \\u escapes
    assert b"".join(json_array_chunks([])) == b"[]"
    assert json.loads(b"".join(json_array_chunks(records[:1]))) == [unstructure(records[0])]


def test_ndjson_round_trip() -> None:
    records = _records(30)
    body = b"".join(ndjson_chunks(records, chunk_size=64))
    lines = body.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 31
    assert [json.loads(line) for line in lines[:-1]] == [unstructure(r) for r in records]
    assert b"".join(ndjson_chunks([])) == b""


def test_json_object_with_metadata() -> None:
    records = _records(3)
    body = b"".join(json_object_chunks(records, {"total": 3, "idx": 0}, "data"))
    assert json.loads(body) == {"total": 3, "idx": 0, "data": [unstructure(r) for r in records]}
    assert json.loads(b"".join(json_object_chunks([], {}, "rows"))) == {"rows": []}
    with pytest.raises(ValueError, match="both"):
        list(json_object_chunks([], {"data": 1}, "data"))


def test_chunks_are_gathered_to_size() -> None:
    chunks = list(ndjson_chunks(_records(2000), chunk_size=8192))
    assert len(chunks) > 5
    assert all(len(c) >= 8192 for c in chunks[:-1])
    assert all(len(c) < 8192 + 1024 for c in chunks)
    assert all(chunks)


def test_field_mask_and_dicts() -> None:
    records = _records(5)
    query = parse_query({"fields": "RequestName,Campaigns"})
    body = b"".join(ndjson_chunks(records, query.projector()))
    assert [json.loads(x) for x in body.splitlines()] == [
        {"RequestName": r.RequestName, "Campaigns": ["A", "Ⅱ"]} for r in records]
    assert json.loads(b"".join(json_array_chunks([{"a": "/x/y"}]))) == [{"a": "/x/y"}]


def test_gzip_round_trip_and_is_incremental() -> None:
    body = b"".join(ndjson_chunks(_records(500)))
    assert gzip.decompress(b"".join(gzip_chunks(ndjson_chunks(_records(500))))) == body
    assert gzip.decompress(b"".join(gzip_chunks([]))) == b""

    def endless() -> Iterator[bytes]:
        for i in itertools.count():
            yield f"{i:08d}".encode() * 10_000  # poorly compressible is not needed

    first = next(gzip_chunks(endless(), level=1))
    assert first[:2] == b"\x1f\x8b"  # a gzip header, produced before the input ends


def test_encode_picks_format() -> None:
    records = _records(4)
    assert json.loads(b"".join(encode(records, JSON))) == [unstructure(r) for r in records]
    assert json.loads(b"".join(encode(records, JSON, meta={"total": 4})))["total"] == 4
    ndjson = gzip.decompress(b"".join(encode(records, NDJSON, gzip=True)))
    assert len(ndjson.splitlines()) == 4
    with pytest.raises(ValueError, match="unsupported media type"):
        encode(records, "text/csv")


def test_paging_helpers() -> None:
    store = MemoryStore()
    store.replace(sample_bundles(23))
    pages = list(iter_pages(store.query, Query(limit=10)))
    assert [len(p.records) for p in pages] == [10, 10, 3]
    assert [p.idx for p in pages] == [0, 10, 20]
    assert len({r.RequestName for p in pages for r in p.records}) == 23
    assert len(list(iter_pages(store.query, Query(limit=5), max_pages=2))) == 2
    assert next_query(Query(limit=10), pages[-1]) is None
    with pytest.raises(ValueError):
        next(iter_pages(store.query, Query()))


class _Tap:
    """Passes uncompressed chunks on, noting the traced peak once ``checkpoint`` of
    them went by (a compressor may hold several before it writes anything)."""

    def __init__(self, checkpoint: int) -> None:
        self.checkpoint = checkpoint
        self.early = 0

    def __call__(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for i, chunk in enumerate(chunks):
            if i == self.checkpoint:
                self.early = tracemalloc.get_traced_memory()[1]
            yield chunk


def _peak_while_streaming(chunks: Iterator[bytes], tap: _Tap) -> tuple[int, int, int]:
    """Consume chunks; the traced peak after the tap's checkpoint and at the end."""
    tracemalloc.reset_peak()
    total = 0
    for chunk in chunks:
        total += len(chunk)
    return tap.early, tracemalloc.get_traced_memory()[1], total


@pytest.mark.parametrize("gzipped", [True, False])
def test_200k_records_stream_in_flat_memory(gzipped: bool) -> None:
    """200,000 records through ndjson+gzip (Workflow records with a field mask, the
    server's path) and through a JSON array (plain dicts): the traced peak stays a
    few chunks and is the same after a few chunks as at the end."""
    n = 200_000
    tap = _Tap(checkpoint=3)
    if gzipped:
        pool: list[object] = list(_records(100))
        project = Query(fields=("RequestName", "RequestPriority", "Campaigns")).projector()
        chunks = gzip_chunks(tap(ndjson_chunks(itertools.islice(itertools.cycle(pool), n),
                                               project)))
    else:
        rows = [{"RequestName": f"wf_{i}", "RequestPriority": i, "Sites": ["T1_US_FNAL"]}
                for i in range(100)]
        chunks = tap(json_array_chunks(itertools.islice(itertools.cycle(rows), n)))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        early, late, size = _peak_while_streaming(chunks, tap)
    finally:
        tracemalloc.stop()
    # The whole body is megabytes; the peak is a few chunks and does not grow.
    assert size > (100_000 if gzipped else 9_000_000)
    assert late - base < 1_000_000, late - base
    assert late <= early + 256 * 1024, (early, late)


# --------------------------------------------------------------------------- zstd frames


def _ndjson(lines: Iterator[bytes] | list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _unzstd(raw: bytes) -> bytes:
    """Every frame of a zstd stream, decoded (as an HTTP client reads a body)."""
    zstandard = importlib.import_module("zstandard")  # the test extras install it
    out: bytes = zstandard.ZstdDecompressor().stream_reader(
        raw, read_across_frames=True).read()
    return out


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of about 16 workflows (at most 64), so that a few hundred make many."""
    from wmstats.backends import memory
    monkeypatch.setattr(memory, "RUN_ROWS", 16)
    monkeypatch.setattr(memory, "RUN_MAX", 64)


@pytest.mark.usefixtures("small_runs")
def test_frame_cache_round_trips_and_follows_every_change() -> None:
    """The frames of a store's runs decode to its NDJSON stream; a kept frame is used
    only while its run holds the same records: an update, an insert and a delete
    leave the frames of the other runs current and are in the very next body."""
    import attrs

    from wmstats.stream import FrameCache

    store = MemoryStore()
    bundles = sample_bundles(300)
    store.replace(bundles)
    runs = store.encoded_runs()
    assert 6 < len(runs.runs) and runs.total == 300 and runs.snapshot == store.snapshot_id
    assert [line for _key, lines in runs.runs for line in lines] == \
        list(store.stream_encoded(Query()))
    assert [key for key, _lines in runs.runs] == [lines and json.loads(lines[0])["RequestName"]
                                                  for _key, lines in runs.runs]
    cache = FrameCache(level=3)

    def check(expect_current: int) -> None:
        now = store.encoded_runs()
        assert cache.stats(now.runs)["current"] == expect_current
        assert _unzstd(b"".join(cache.frames(now.runs))) == \
            _ndjson(list(store.stream_encoded(Query())))

    check(0)  # nothing kept: every run compressed on the way, in one frame
    assert cache.refresh(runs.runs) == len(runs.runs)
    assert cache.refresh(runs.runs) == 0
    stats = cache.stats(runs.runs)
    assert stats["current"] == stats["runs"] == len(runs.runs)
    kept = b"".join(cache.frames(runs.runs))
    assert len(kept) == stats["bytes"]
    check(len(runs.runs))

    # An update in place: its run alone is stale, and the body shows the new value.
    target = bundles[0].workflow
    changed = attrs.evolve(bundles[0], workflow=attrs.evolve(target, RequestPriority=424242))
    store.apply([changed])
    check(len(runs.runs) - 1)
    assert b'"RequestPriority":424242' in _unzstd(b"".join(cache.frames(
        store.encoded_runs().runs)))
    assert cache.refresh(store.encoded_runs().runs) == 1

    # An insert and a delete: only the runs around them change (at most two each).
    before = len(store.encoded_runs().runs)
    store.apply(sample_bundles(1, seed=99, prefix="zz-new-"), [bundles[5].workflow.RequestName])
    after = store.encoded_runs()
    assert cache.stats(after.runs)["current"] >= before - 4
    check(cache.stats(after.runs)["current"])
    assert 1 <= cache.refresh(after.runs) <= 4
    # The frames of runs that are gone are forgotten once a pass saw them all.
    assert cache.stats(after.runs)["bytes"] == len(b"".join(cache.frames(after.runs)))


def test_frame_cache_stops_when_asked() -> None:
    from wmstats.stream import FrameCache

    store = MemoryStore()
    store.replace(sample_bundles(20))
    cache = FrameCache(level=1)
    runs = store.encoded_runs().runs
    assert cache.refresh(runs, stop=lambda: True) == 0
    assert cache.stats(runs)["current"] == 0
