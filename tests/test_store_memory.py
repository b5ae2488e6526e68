"""The memory backend: the conformance suite plus its own internals."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator

import attrs
import pytest

from wmstats.backends.codec import encode_line
from wmstats.backends.memory import MemoryStore, _bitmaps, _snapshot
from wmstats.backends.memory._held import HeldWorkflow, hold
from wmstats.schema import WorkflowBundle
from wmstats.query import Query, apply_query, parse_query
from wmstats.schema import Workflow
from wmstats.serialize import json_loads, unstructure
from wmstats.store import Store
from wmstats.testing.data import sample_bundles, sample_jobs, simple_bundle
from wmstats.testing.store_suite import StoreSuite, names


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        with MemoryStore() as store:
            yield store


class TestMemoryStoreUncompressed(StoreSuite):
    """The same contract with plain blobs and no interning."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        yield MemoryStore(compress=False, intern=False)


class TestMemoryStoreBitmapWalk(StoreSuite):
    """Every result walks a sort order (the path taken by large results)."""

    @pytest.fixture(autouse=True)
    def _no_small_results(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(_snapshot, "SMALL", 0)

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        yield MemoryStore()


def _many(n: int) -> list[WorkflowBundle]:
    statuses = ("new", "running-open", "running-closed", "completed")
    return [simple_bundle(f"wf_{(i * 7919) % n:05d}", RequestStatus=statuses[i % 4],
                          RequestPriority=(i * 31) % 17, Campaigns=(f"C{i % 5}", f"C{i % 3}"),
                          RequestDate=1_700_000_000 + (i * 13) % 1000)
            for i in range(n)]


@pytest.fixture(scope="module")
def large() -> tuple[MemoryStore, list[Workflow]]:
    bundles = _many(6000)
    store = MemoryStore()
    store.replace(bundles)
    return store, [b.workflow for b in bundles]


@pytest.mark.parametrize("params", [
    {"RequestStatus": "running-open,completed", "idx": "2500", "limit": "100"},
    {"RequestStatus": "running-open,completed", "sort": "-RequestPriority", "idx": "1999"},
    {"Campaigns": "C1", "sort": "RequestDate,-RequestName", "idx": "1234", "limit": "50"},
    {"RequestPriority": "3..12", "sort": "-RequestPriority", "idx": "3000", "limit": "100"},
    {"RequestPriority": ">5", "sort": "-RequestName", "idx": "4000"},
    {"RequestDate": "<1700000500", "sort": "Campaigns", "idx": "0", "limit": "3000"},
    {"RequestName": "wf_0*", "sort": "-RequestStatus", "idx": "9000"},
    {"sort": "-RequestPriority", "idx": "5990", "limit": "100"},
    {"RequestStatus": "new", "RequestPriority": "0", "Campaigns": "C0"},
])
def test_large_results_match_reference(params: dict[str, str],
                                       large: tuple[MemoryStore, list[Workflow]]) -> None:
    store, workflows = large
    query = parse_query(params)
    page = store.query(query)
    expected = apply_query(workflows, query)
    assert page.total == expected.total
    assert names(page) == names(expected)
    if expected.total > _snapshot.SMALL:
        assert list(store.stream(query.unpaged())) == list(
            apply_query(workflows, query.unpaged()).records)


def test_positions_selects_the_right_ones() -> None:
    chars = "0110100111" * 50
    ones = [i for i, c in enumerate(chars) if c == "1"]
    walk = _bitmaps.Walk(chars)
    for idx in (0, 1, 5, 100, len(ones) - 1, len(ones)):
        for limit in (None, 1, 7):
            got = list(_bitmaps.positions(walk, len(ones), idx, limit))
            assert got == ones[idx:None if limit is None else idx + limit]


def test_bitmap_round_trip() -> None:
    for n, rows in ((10, [0, 9]), (1000, list(range(0, 1000, 3))), (1000, [5]), (64, [])):
        bitmap = _bitmaps.rows_to_bitmap(rows, n)
        assert _bitmaps.bitmap_rows(bitmap) == rows
        assert bitmap.bit_count() == len(rows)


def test_snapshot_is_immutable_for_readers_holding_it() -> None:
    store = MemoryStore()
    store.replace(sample_bundles(20))
    snap = store._snap
    store.replace(sample_bundles(5, seed=1, prefix="new_"))
    assert snap.n == 20 and store._snap.n == 5


def test_interning_shares_strings() -> None:
    store = MemoryStore()
    bundles = [simple_bundle(f"w{i}", RequestStatus="".join(["running", "-open"]),
                             Sites=("T1_US_FNAL", "".join(["T2_", "CH"]))) for i in range(3)]
    assert bundles[0].workflow.RequestStatus is not bundles[1].workflow.RequestStatus
    store.replace(bundles)
    records = store.query(Query()).records
    assert records[0].RequestStatus is records[1].RequestStatus is records[2].RequestStatus
    assert records[0].Sites is records[2].Sites


def test_memory_is_the_default_in_open_store() -> None:
    from wmstats.store import open_store
    store = open_store("memory://?compress=false")
    assert isinstance(store, MemoryStore)
    assert store._compress is False


def _changed(bundle: WorkflowBundle, **values: object) -> WorkflowBundle:
    return attrs.evolve(bundle, workflow=attrs.evolve(bundle.workflow, **values))


def test_update_in_place_invalidates_what_it_makes_stale() -> None:
    """Indexes, filter results, sort orders and the encoded text are cached per
    snapshot and carried over an update; the ones the update makes stale are not."""
    bundles = _many(3000)
    store = MemoryStore()
    store.replace(bundles)
    by_status = parse_query({"RequestStatus": "new", "limit": "5000"})
    by_campaign = parse_query({"Campaigns": "C1", "limit": "5000"})
    by_priority = parse_query({"sort": "-RequestPriority", "limit": "5000"})
    in_range = parse_query({"RequestPriority": ">=16", "limit": "5000"})
    queries = (by_status, by_campaign, by_priority, in_range, Query(limit=5000))
    for query in queries:  # build and cache the indexes and results
        store.query(query)
        store.query_encoded(query)
    old = store._snap
    target = bundles[1]
    assert target.workflow.RequestStatus != "new" and target.workflow.RequestPriority < 16
    updated = _changed(target, RequestStatus="new", RequestPriority=99,
                       Success=target.workflow.Success + 5)
    store.apply([updated])
    new = store._snap
    # Untouched: carried over as the same objects.
    assert new._postings["Campaigns"] is old._postings["Campaigns"]
    assert new._matches[by_campaign.filters] is old._matches[by_campaign.filters]
    # Touched: patched or left behind, never the stale object.
    assert new._postings["RequestStatus"] is not old._postings["RequestStatus"]
    assert by_status.filters not in new._matches
    assert all("RequestPriority" not in [name for name, _ in spec] for spec in new._orders)
    expected = [b.workflow for b in bundles]
    expected[1] = updated.workflow
    for query in queries:
        assert names(store.query(query)) == names(apply_query(expected, query)), query
        page = store.query_encoded(query)
        assert [json_loads(line)["RequestName"] for line in page.lines] == names(
            apply_query(expected, query))
    line = store.query_encoded(parse_query({"RequestName": target.workflow.RequestName}))
    assert json_loads(line.lines[0]) == unstructure(updated.workflow)
    # The old snapshot, held by a reader, still answers as before the update.
    rows, total = old.select(by_status)
    assert target.workflow.RequestName not in [old.names[r] for r in rows]
    row = old.names.index(target.workflow.RequestName)
    assert json_loads(old.lines[row]) == unstructure(target.workflow)
    assert old.workflows[row] == target.workflow


@pytest.mark.parametrize("change", ["insert", "delete", "many"])
def test_adds_and_deletes_rebuild_what_moved(change: str) -> None:
    bundles = _many(500)
    store = MemoryStore()
    store.replace(bundles)
    query = parse_query({"RequestStatus": "running-open", "sort": "-RequestPriority",
                         "limit": "1000"})
    store.query(query)
    expected = {b.workflow.RequestName: b.workflow for b in bundles}
    if change == "insert":
        added = [simple_bundle("wf_00100x", RequestStatus="running-open", RequestPriority=50)]
        store.apply(added)
    elif change == "delete":
        added = []
        store.apply(deletes=["wf_00007", "wf_00300", "nope"])
        del expected["wf_00007"], expected["wf_00300"]
    else:
        added = [simple_bundle(f"wf_{i:05d}y", RequestStatus="running-open",
                               RequestPriority=i % 7) for i in range(100)]
        store.apply(added, deletes=[f"wf_{i:05d}" for i in range(0, 500, 3)])
        for i in range(0, 500, 3):
            del expected[f"wf_{i:05d}"]
    expected.update({b.workflow.RequestName: b.workflow for b in added})
    snap = store._snap
    assert snap.names == sorted(expected)
    assert [json_loads(line)["RequestName"] for line in snap.lines] == snap.names
    assert names(store.query(query)) == names(apply_query(list(expected.values()), query))


def test_rows_replaced_shares_the_unchanged_chunks() -> None:
    rows = _bitmaps.Rows(range(3000))
    assert len(rows) == 3000 and list(rows) == list(range(3000))
    assert rows[0] == 0 and rows[2999] == 2999 and rows[-1] == 2999
    changed = rows.replaced({5: -5, 2048: -1})
    assert list(changed) == [-5 if i == 5 else -1 if i == 2048 else i for i in range(3000)]
    assert list(rows) == list(range(3000))  # the original is untouched
    assert changed._chunks[1] is rows._chunks[1]
    assert changed._chunks[0] is not rows._chunks[0]
    for bad in (3000, -3001):
        with pytest.raises(IndexError):
            rows[bad]
    with pytest.raises(IndexError):
        rows.replaced({3000: 1})
    assert list(_bitmaps.Rows()) == [] and len(_bitmaps.Rows()) == 0


def test_rows_span_across_chunks() -> None:
    rows = _bitmaps.Rows(range(3000))
    every = list(range(3000))
    for start, stop in ((0, 0), (0, 3000), (1000, 1030), (1023, 1025), (5, 2900),
                        (2048, 3000), (2999, 3000)):
        assert rows.span(start, stop) == every[start:stop]
    with pytest.raises(IndexError):
        rows.span(10, 3001)


def test_runs_are_cut_by_names_not_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a workflow moves no run boundary but those next to it."""
    from wmstats.backends import memory
    monkeypatch.setattr(memory, "RUN_ROWS", 8)
    names = sorted(f"wf-{i:05d}" for i in range(0, 2000, 2))
    starts = {names[r] for r in memory.run_starts(names)}
    assert 40 < len(starts) < 400
    grown = sorted([*names, "wf-01001"])
    moved = {grown[r] for r in memory.run_starts(grown)} ^ starts
    assert moved <= {"wf-01001"} | {n for n in names if "wf-00900" < n < "wf-01200"}
    assert memory.run_starts([]) == []


def _production_bundles(n: int) -> list[WorkflowBundle]:
    from wmstats.mock import MockGenerator

    return list(MockGenerator.production_sized(5, now=1_700_000_000).bundles(n))


@pytest.mark.parametrize("write", ["replace", "apply"])
def test_blobs_are_compressed_with_a_dictionary(write: str) -> None:
    """The first write with enough bundles makes the snapshot's dictionary: every
    blob is made with it, reads back to its bundle, and the blobs take less than
    zlib alone makes; an update reads back as written, with the same dictionary."""
    from wmstats.backends.codec import encode_parts
    from wmstats.backends.dictionary import BlobDictionary

    bundles = _production_bundles(80)
    store = MemoryStore()
    if write == "replace":
        store.replace(bundles)
    else:
        store.apply(bundles)
    snap = store._snap
    dictionary = snap.dictionary
    assert dictionary is not None
    assert all(BlobDictionary.made(blob) for blob in snap.blobs)
    got = store.get_many(b.workflow.RequestName for b in bundles)
    assert got == {b.workflow.RequestName: b for b in bundles}
    assert sum(map(len, snap.blobs)) < 0.85 * sum(
        len(encode_parts(b, compress=True)) for b in bundles)

    first = next(b for b in bundles if len(b.sites) > 1)
    changed = attrs.evolve(first, sites=first.sites[1:])
    store.apply([changed])
    assert store._snap.dictionary is dictionary
    assert store.get_many([first.workflow.RequestName]) == {
        first.workflow.RequestName: changed}
    assert store.get_parts([first.workflow.RequestName], ["sites"])[
        first.workflow.RequestName].sites == changed.sites


def test_few_bundles_make_no_dictionary_until_enough_come() -> None:
    """Too few bundles to learn from are compressed alone; a later write with enough
    makes the dictionary, and the blobs of both kinds read back."""
    bundles = _production_bundles(40)
    store = MemoryStore()
    store.replace(bundles[:3])
    assert store._snap.dictionary is None
    store.apply(bundles[3:])
    assert store._snap.dictionary is not None
    assert store.get_many(b.workflow.RequestName for b in bundles) == {
        b.workflow.RequestName: b for b in bundles}


def test_interning_shares_the_strings_of_tuples_and_skips_unique_fields() -> None:
    """Equal strings inside different tuples are one object; the fields whose values
    are one per workflow (names, PrepIDs, output datasets) take no table entry."""
    store = MemoryStore()
    store.replace([
        simple_bundle("w1", Sites=("T1_US_FNAL", "".join(["T2_", "CH"])), PrepID="p1",
                      TotalInputEvents=int("123456")),
        simple_bundle("w2", Sites=("".join(["T2_", "CH"]),), PrepID="p2",
                      TotalInputEvents=int("123456")),
    ])
    first, second = store.query(Query()).records
    assert first.Sites[1] is second.Sites[0]
    assert first.TotalInputEvents is second.TotalInputEvents
    table = store._interner.table
    assert not {"w1", "w2", "p1", "p2"} & set(table)
    assert first.RequestName == "w1" and first.PrepID == "p1"


def test_trim_heap_keeps_what_is_in_use() -> None:
    from wmstats._procfs import trim_heap

    data = [bytes([i % 256]) * 4096 for i in range(1000)]
    del data[::2]
    assert isinstance(trim_heap(), bool)
    assert all(chunk == bytes([(2 * i + 1) % 256]) * 4096 for i, chunk in enumerate(data))


def test_limit_arenas_leaves_an_explicit_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from wmstats._procfs import limit_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False


def _with_outputs(i: int) -> WorkflowBundle:
    return simple_bundle(f"wf_{i:04d}", RequestStatus=("new", "running-open")[i % 2],
                         OutputDatasets=(f"/P{i}/Era-v{i % 3}/AOD", f"/P{i}/Era/MINIAOD"),
                         OutputModulesLFNBases=(f"/store/unmerged/Era/P{i}/AOD",)
                         if i % 4 else ())


def _slot(workflow: Workflow, name: str) -> object:
    """What the slot of a Workflow field holds (a HeldWorkflow's property bypassed)."""
    return Workflow.__dict__[name].__get__(workflow, Workflow)


def test_rows_keep_the_output_datasets_and_lfn_bases_in_their_lines_only() -> None:
    """The two fields of per-workflow strings are held once, in the line: the row's
    record is a HeldWorkflow whose slots hold the line; every way out reads them."""
    bundles = [_with_outputs(i) for i in range(40)]
    expected = [attrs.evolve(b.workflow) for b in bundles]  # copies, before the store
    store = MemoryStore()
    store.replace(bundles)
    snap = store._snap
    assert type(snap.workflows[1]) is HeldWorkflow
    assert _slot(snap.workflows[1], "OutputDatasets") is snap.lines[1]
    assert _slot(snap.workflows[1], "OutputModulesLFNBases") is snap.lines[1]
    assert _slot(snap.workflows[0], "OutputModulesLFNBases") == ()  # empty: kept
    assert list(store.query(Query()).records) == expected
    assert list(store.stream(Query())) == expected
    assert [r.OutputDatasets for r in store.stream(Query())] == [
        w.OutputDatasets for w in expected]
    assert store.get_many(["wf_0005"])["wf_0005"].workflow == expected[5]
    masked = parse_query({"fields": "RequestName,OutputDatasets", "limit": "3"})
    assert [json_loads(line) for line in store.query_encoded(masked).lines] == [
        {"RequestName": w.RequestName, "OutputDatasets": list(w.OutputDatasets)}
        for w in expected[:3]]
    for params in ({"OutputDatasets": "/P7/*"}, {"OutputModulesLFNBases": "*P1*"},
                   {"sort": "-OutputDatasets"}, {"OutputDatasets": "/P3/Era/MINIAOD"}):
        query = parse_query({**params, "limit": "100"})
        assert names(store.query(query)) == names(apply_query(expected, query)), params
    assert store.distinct("OutputModulesLFNBases") == sorted(
        (b, 1) for w in expected for b in w.OutputModulesLFNBases)


def test_the_store_keeps_the_records_it_is_given() -> None:
    """keeps_records: the rows are the Workflow objects of the bundles written (what
    the CouchDB source relies on to share them), after a replace and an apply."""
    bundles = [_with_outputs(i) for i in range(10)]
    store = MemoryStore()
    assert store.keeps_records and not Store.keeps_records
    store.replace(bundles)
    moved = _changed(bundles[3], OutputDatasets=("/P9/Moved/AOD",))
    store.apply([moved])
    given = [moved if i == 3 else b for i, b in enumerate(bundles)]
    assert all(row is b.workflow for row, b in zip(store._snap.workflows, given))


def test_a_held_workflow_is_a_workflow_of_its_values() -> None:
    """Equal and hashing as the Workflow of the same values, both ways round; copies,
    pickles and evolve hold the values; a held record given again is held anew."""
    bundle = _with_outputs(5)
    plain = attrs.evolve(bundle.workflow)
    line = encode_line(plain)
    held = hold(bundle.workflow, line)
    assert held is bundle.workflow and type(held) is HeldWorkflow
    assert type(held).__name__ == "Workflow" and repr(held) == repr(plain)
    assert held == plain and plain == held and not held != plain
    assert hash(held) == hash(plain)
    assert held != attrs.evolve(plain, OutputDatasets=("/X/Y/Z",))
    assert attrs.evolve(plain, OutputDatasets=("/X/Y/Z",)) != held
    assert unstructure(held) == unstructure(plain)
    assert encode_line(held) == line
    for twin in (copy.copy(held), copy.deepcopy(held), pickle.loads(pickle.dumps(held))):
        assert type(twin) is Workflow and twin == plain
    moved = attrs.evolve(held, OutputDatasets=("/A/B/C",))
    assert moved.OutputDatasets == ("/A/B/C",)
    assert moved.OutputModulesLFNBases == plain.OutputModulesLFNBases
    assert {held: 1}[plain] == 1
    # nothing held: the record as it is
    empty = simple_bundle("wf_empty").workflow
    assert hold(empty, encode_line(empty)) is empty and type(empty) is Workflow


def test_an_update_in_place_patches_the_index_of_a_field_held_in_the_line() -> None:
    bundles = [_with_outputs(i) for i in range(40)]
    store = MemoryStore()
    store.replace(bundles)
    query = parse_query({"OutputDatasets": "/P5/*"})
    assert names(store.query(query)) == ["wf_0005"]
    old_index = store._snap._postings["OutputDatasets"]
    moved = _changed(bundles[5], OutputDatasets=("/P9/Moved/AOD",))
    store.apply([moved])
    assert store._snap._postings["OutputDatasets"] is not old_index
    assert names(store.query(query)) == []
    assert names(store.query(parse_query({"OutputDatasets": "/P9/*"}))) == [
        "wf_0005", "wf_0009"]
    assert store.get("wf_0005") == moved


def test_site_sums_are_packed_in_the_smallest_items_they_fit() -> None:
    from wmstats.backends.memory._sums import decode_sums, encode_sums, sum_fields

    bundle = sample_bundles(3)[1]
    assert bundle.sites
    fields = sum_fields()
    for scale, typecode in ((7, "H"), (70_000, "i"), (-1, "i"), (2**40, "q")):
        sites = tuple(attrs.evolve(ws, Success=scale) for ws in bundle.sites)
        vocab: list[str] = []
        packed = encode_sums(attrs.evolve(bundle, sites=sites), {}, vocab, fields)
        assert packed is not None and getattr(packed, "typecode", None) == typecode, scale
        success = {(kind, vocab[ident]): counts[0] for kind, ident, counts in
                   decode_sums(packed)}
        at = fields.index("Site")
        assert success[(at, sites[0].Site)] == sum(
            ws.Success for ws in sites if ws.Site == sites[0].Site), scale


def test_job_records_and_rows_share_each_workflow_name() -> None:
    """A workflow's name is held once: the job records' key and a row updated in
    place use the string of the names list."""
    bundles = sample_bundles(10)
    store = MemoryStore()
    # Names of other strings than the workflows' (as read from other documents).
    jobs = sample_jobs([b.workflow.RequestName.encode().decode() for b in bundles])
    assert id(jobs[0].RequestName) not in {id(b.workflow.RequestName) for b in bundles}
    store.replace_jobs(jobs)  # before the workflows, as the CouchDB source does
    store.replace(bundles)
    kept = {name: name for name in store._snap.names}
    keys = store._job_shelf()._state[0]
    assert keys and all(kept[name] is name for name in keys)
    assert store.get_jobs([jobs[0].RequestName]) == {jobs[0].RequestName: jobs[0]}
    updated = _changed(bundles[0], RequestName="".join(bundles[0].workflow.RequestName))
    store.apply([updated])
    row = store._snap.names.index(bundles[0].workflow.RequestName)
    assert store._snap.workflows[row].RequestName is store._snap.names[row]
    store.apply_jobs([attrs.evolve(jobs[-1])])
    assert all(kept[name] is name for name in store._job_shelf()._state[0])
