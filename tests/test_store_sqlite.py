"""The sqlite backend: the conformance suite plus what is specific to sqlite."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wmstats.backends.codec import decode_line, encode_line, encode_workflow
from wmstats.bench.search import drop_from_page_cache
from wmstats.query import Query, apply_query, budget, parse_query, summarize
from wmstats.schema import WorkflowBundle
from wmstats.store import Store, StoreError, StoreOptionError, open_store
from wmstats.testing.data import sample_agents, sample_bundles, sample_jobs, simple_bundle
from wmstats.testing.store_suite import StoreSuite, extend_aggregates, names
from wmstats_sqlite import INDEXED_FIELDS, SCHEMA_VERSION, SqliteStore, _ranks
from wmstats_sqlite._ranks import RankMarks


class TestSqliteStore(StoreSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = SqliteStore(tmp_path / "wmstats.db")
        yield store
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "w.db")
    store.replace(sample_bundles(40))
    yield store
    store.close()


def test_wal_mode_and_indexes(db: SqliteStore) -> None:
    con = sqlite3.connect(db.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        con.close()
    assert {f"workflow_by_{name}" for name in INDEXED_FIELDS} <= indexes
    assert "workflow_value_by_row" in indexes and "workflow_value_row" not in indexes


def test_filters_use_indexes(db: SqliteStore) -> None:
    sql = db._sql
    con = db._connection()
    for params, index in (({"RequestStatus": "running-open"}, "workflow_by_RequestStatus"),
                          ({"Sites": "T1_US_FNAL"}, "SEARCH v USING PRIMARY KEY (field=? AND value=?)"),
                          ({"RequestPriority": ">=110000", "sort": "-RequestPriority"},
                           "workflow_by_RequestPriority")):
        query = parse_query(params)
        where, values = sql.where(con, query.filters)
        plan = " | ".join(str(r[-1]) for r in con.execute(
            f"EXPLAIN QUERY PLAN SELECT w.row FROM workflow w{where}{sql.order_by(query)} "
            f"LIMIT 100", values))
        assert index in plan, plan


def test_values_are_bound_never_formatted(db: SqliteStore) -> None:
    evil = "x'; DROP TABLE workflow; --"
    for params in ({"RequestName": evil}, {"RequestName.re": evil}, {"Campaigns": evil},
                   {"RequestName": evil + "*"}, {"Group": [evil, "PPD"]}):
        query = parse_query(params)
        where, values = db._sql.where(db._connection(), query.filters)
        assert "DROP" not in where and "'" not in where
        assert any(isinstance(v, str) and "DROP" in v for v in values)
        expected = apply_query([b.workflow for b in sample_bundles(40)], query).total
        assert db.query(query).total == expected
        assert expected == 0 or "Group" in params
    assert db.distinct("Sites", parse_query({"Group": evil})) == []
    assert db.count() == 40


def test_reopen_keeps_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "keep.db"
    with SqliteStore(path) as first:
        sid = first.replace(sample_bundles(12))
        expected = first.query(Query()).records
    with SqliteStore(path) as second:
        assert second.snapshot_id == sid
        assert second.query(Query()).records == expected


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with SqliteStore(path) as writer, SqliteStore(path) as reader:
        sid = writer.replace(sample_bundles(10))
        assert reader.snapshot_id == sid
        assert reader.count() == 10
        writer.delete(names(writer.query(Query(limit=1)))[0])
        assert reader.count() == 9 and reader.snapshot_id == writer.snapshot_id


def test_open_stream_keeps_reading_its_snapshot(db: SqliteStore) -> None:
    stream = db.stream(Query(), batch_size=5)
    first = [next(stream) for _ in range(3)]
    db.replace(sample_bundles(7, seed=2, prefix="other_"))
    rest = list(stream)
    assert len(first) + len(rest) == 40
    assert not any(r.RequestName.startswith("other_") for r in rest)
    assert db.count() == 7


def test_reader_threads_during_a_long_replace(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "threads.db")
    store.replace(sample_bundles(30, prefix="old_"))
    seen: set[int] = set()
    errors: list[BaseException] = []
    started = threading.Event()

    def slow_source() -> Iterator[object]:
        for bundle in sample_bundles(60, seed=5, prefix="new_"):
            started.set()
            yield bundle

    def reader() -> None:
        try:
            started.wait(10)
            for _ in range(20):
                page = store.query(Query())
                prefixes = {n[:4] for n in names(page)}
                assert len(prefixes) == 1 and page.total == len(page.records)
                seen.add(page.total)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    store.replace(slow_source())  # type: ignore[arg-type]
    for thread in threads:
        thread.join(30)
    store.close()
    assert not errors, errors[0]
    assert seen <= {30, 60} and seen


def _set_layout(path: Path, version: str) -> None:
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (version,))
    con.commit()
    con.close()


def test_refuses_newer_layout(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteStore(path).close()
    _set_layout(path, str(int(SCHEMA_VERSION) + 1))
    with pytest.raises(StoreOptionError, match="layout .* newer"):
        SqliteStore(path)


def test_older_layout_is_refused_until_replaced(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        store.replace(sample_bundles(10))
    # An older file: another version number, and a table of another shape.
    _set_layout(path, "0")
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE site_sum RENAME COLUMN agg TO kind")
    con.commit()
    con.close()
    store = SqliteStore(path)
    other = SqliteStore(path)  # another process that opened the file too
    try:
        for read in (store.count, lambda: store.query(Query(limit=3)), store.get_agents,
                     lambda: store.aggregate("site"), lambda: store.snapshot_id,
                     lambda: list(store.stream()), lambda: store.apply(deletes=["x"])):
            with pytest.raises(StoreError, match="layout 0 of an older wmstats"):
                read()
        fresh = sample_bundles(7, seed=3)
        store.replace(fresh)
        workflows = [b.workflow for b in fresh]
        for reader in (store, other):
            assert reader.count() == 7
            assert reader.query().records == apply_query(workflows, Query()).records
            assert reader.aggregate("site") == summarize(fresh, "site")
            assert reader.get(fresh[0].workflow.RequestName) == fresh[0]
    finally:
        store.close()
        other.close()
    with SqliteStore(path) as reopened:
        assert reopened.count() == 7


def test_site_sums_follow_the_aggregate_table(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A file written before aggregates were added to the table: opening it
    # rebuilds the stored WorkflowSite sums for the new table.
    bundles = sample_bundles(30)
    path = tmp_path / "t.db"
    with SqliteStore(path) as store:
        store.replace(bundles)
        before = store.snapshot_id
    table = extend_aggregates(monkeypatch)
    with SqliteStore(path) as store:
        assert store.snapshot_id != before  # answers changed: another snapshot
        for agg in table:
            assert store.aggregate(agg.key) == summarize(bundles, agg.key), agg.key
    with SqliteStore(path) as store:
        assert store.aggregate("whitelist") == summarize(bundles, "whitelist")


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db?timeout=2.5&compress=false")
    assert isinstance(absolute, SqliteStore)
    assert absolute.path == tmp_path / "abs.db"
    assert absolute._timeout == 2.5 and absolute._compress is False
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db", cache_kb=1024)
    assert isinstance(relative, SqliteStore) and relative.path == Path("rel.db")
    assert relative._cache_kb == 1024
    relative.close()
    assert (tmp_path / "rel.db").exists()
    with pytest.raises(StoreOptionError, match="host"):
        open_store("sqlite://somehost/x.db")
    with pytest.raises(StoreOptionError, match="unknown option"):
        open_store("sqlite:///x.db?colour=blue")
    with pytest.raises(StoreOptionError, match="number"):
        open_store("sqlite:///x.db?timeout=soon")


# --------------------------------------------------------------------------- wmstats load


def _load(*argv: str) -> int:
    import argparse

    from wmstats.load import add_arguments, run
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


def test_load_mock_into_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wmstats.mock import MockGenerator

    url = f"sqlite:///{tmp_path}/mock.db"
    assert _load("--store", url, "--mock", "25", "--seed", "3") == 0
    assert "25 workflows" in capsys.readouterr().err
    expected = list(MockGenerator(3).bundles(25))
    with open_store(url) as store:
        assert store.count() == 25
        assert store.get(expected[7].workflow.RequestName) == expected[7]
        assert store.get_agents() == sorted(MockGenerator(3).agents(), key=lambda a: a.AgentURL)


def test_load_files_and_update(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wmstats.serialize import dumps
    data = Path(__file__).parent / "data" / "wmcore" / "reqmgr_requests_20.json"
    url = f"sqlite:///{tmp_path}/files.db"
    assert _load("--store", url, "--input", str(data)) in (0, 1)
    with open_store(url) as store:
        assert store.count() == 20
    # Static records, tagged as by 'wmstats mock --records all', upserted.
    extra = sample_bundles(3, seed=8, prefix="static_")
    lines = []
    for bundle in extra:
        for record in bundle.records():
            tag = type(record).__name__
            lines.append(dumps(record) if tag == "Workflow" else
                         dumps(record)[:-1] + f', "RecordType": "{tag}"}}')
    static = tmp_path / "static.ndjson"
    static.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _load("--store", url, "--update", "--input", str(static)) == 0
    with open_store(url) as store:
        assert store.count() == 23
        for bundle in extra:
            assert store.get(bundle.workflow.RequestName) == bundle
    capsys.readouterr()
    assert _load("--store", url, "--input", str(tmp_path / "missing.json")) == 2
    assert _load("--store", "nosuch://x", "--mock", "1") == 2
    assert "no store backend" in capsys.readouterr().err


def test_stored_lines_never_serve_stale_records(db: SqliteStore) -> None:
    # Pages are the JSON text stored with each record (no decoded records kept in
    # the process): a write rewrites it, row numbers are never reused.
    import attrs
    before = db.query(Query(limit=5))
    assert list(db.query_encoded(Query(limit=5)).lines) == [
        encode_line(w) for w in before.records]
    first = before.records[0]
    changed = attrs.evolve(first, RequestStatus="completed", RequestPriority=1)
    bundle = db.get(first.RequestName)
    assert bundle is not None
    db.upsert(attrs.evolve(bundle, workflow=changed))
    assert db.query(Query(limit=5)).records[0] == changed
    assert db.query_encoded(Query(limit=5)).lines[0] == encode_line(changed)
    assert list(db.stream_encoded(Query(limit=1))) == [encode_line(changed)]
    rows_before = {r for (r,) in db._connection().execute("SELECT row FROM workflow")}
    db.replace(sample_bundles(40))
    rows_after = {r for (r,) in db._connection().execute("SELECT row FROM workflow")}
    assert not rows_before & rows_after  # row numbers are never reused
    assert db.query(Query(limit=5)).records == before.records


def test_unselective_filters_walk_the_sort_index(db: SqliteStore) -> None:
    # Same answers whichever plan is chosen (the suite checks them against the
    # reference); here: the plan switches with the match count.
    query = parse_query({"RequestPriority": ">=0", "sort": "-RequestDate", "limit": "5"})
    sql = db._sql
    assert sql.ordered_by_index(query)
    assert not sql.ordered_by_index(parse_query({"sort": "-RequestDate,Group"}))
    where, values = sql.where(db._connection(), query.filters, None)
    plan = " | ".join(str(r[-1]) for r in db._connection().execute(
        f"EXPLAIN QUERY PLAN SELECT w.row FROM workflow w{where}{sql.order_by(query)} "
        f"LIMIT 5", values))
    assert "workflow_by_RequestDate" in plan and "TEMP B-TREE" not in plan, plan
    workflows = [b.workflow for b in sample_bundles(40)]
    assert db.query(query).records == apply_query(workflows, query).records


def test_a_path_that_cannot_be_opened_is_a_clear_store_error(tmp_path: Path) -> None:
    from wmstats.store import StoreError
    from wmstats_sqlite import SqliteStore

    with pytest.raises(StoreError, match="cannot open the sqlite database"):
        SqliteStore(tmp_path / "no" / "such" / "dir" / "x.db")


def test_name_wildcards_read_the_trigram_index(db: SqliteStore) -> None:
    workflows = [b.workflow for b in sample_bundles(40)]
    name = workflows[5].RequestName
    con = db._connection()
    for pattern in (f"*{name[3:12]}*", f"{name[:9]}*", f"*{name[-8:]}", "*_??_*",
                    f"*{name[2:6]}*{name[-5:]}"):
        query = parse_query({"RequestName": pattern})
        expected = apply_query(workflows, query)
        assert expected.total >= 1 or "??" in pattern
        assert db.query(query).records == expected.records
        assert db.count(query) == expected.total
        where, values = db._sql.where(db._connection(), query.filters)
        plan = " | ".join(str(r[-1]) for r in con.execute(
            f"EXPLAIN QUERY PLAN SELECT w.row FROM workflow w{where}", values))
        # A run of 3 plain characters finds its candidates in the index; "*_??_*"
        # has none and tests every name.
        assert ("VIRTUAL TABLE" in plan) == ("??" not in pattern), (pattern, plan)
    # Updates and deletes keep the index in step with the table.
    renamed = workflows[5]
    db.apply(deletes=[renamed.RequestName])
    assert db.query(parse_query({"RequestName": f"*{name[3:12]}*"})).total == sum(
        name[3:12] in w.RequestName for w in workflows if w is not renamed)


def _as_older_layout(path: Path, version: str) -> None:
    """Turn a file of the current layout into one of layout 6 or 7: positional
    JSON in ``workflow_doc.doc``, no text index (7: the name index instead)."""
    con = sqlite3.connect(path)
    con.execute("DROP TABLE workflow_text_fts")
    con.execute("ALTER TABLE workflow_doc RENAME COLUMN line TO doc")
    for row, line in con.execute("SELECT row, doc FROM workflow_doc").fetchall():
        con.execute("UPDATE workflow_doc SET doc = ? WHERE row = ?",
                    (encode_workflow(decode_line(line)), row))
    if version == "7":
        con.execute("CREATE VIRTUAL TABLE workflow_name_fts USING fts5(RequestName, "
                    "tokenize='trigram case_sensitive 1')")
        con.execute("INSERT INTO workflow_name_fts (rowid, RequestName) "
                    "SELECT row, RequestName FROM workflow")
    con.commit()
    con.close()
    _set_layout(path, version)


@pytest.mark.parametrize("version", ["6", "7"])
def test_layouts_6_and_7_are_migrated_when_opened(tmp_path: Path, version: str) -> None:
    # Layout 6 (agent details and job records) lacks the name index of layout 7,
    # both keep positional JSON records: opening such a file rewrites each record
    # as its JSON line and builds the text index from the stored values, and keeps
    # the snapshot, workflows, agents and job records as they were.
    path = tmp_path / f"{version}.db"
    bundles = sample_bundles(12)
    jobs = sample_jobs([b.workflow.RequestName for b in bundles[:6]])
    with SqliteStore(path) as store:
        sid = store.replace(bundles, sample_agents())
        jsid = store.replace_jobs(jobs)
        lines = list(store.stream_encoded())
    _as_older_layout(path, version)
    with SqliteStore(path) as store:
        assert store.snapshot_id == sid and store.count() == 12
        assert store.jobs_snapshot_id == jsid
        assert store.get_jobs(j.RequestName for j in jobs) == {j.RequestName: j for j in jobs}
        assert store.get_agents() == sorted(sample_agents(), key=lambda a: a.AgentURL)
        assert store.get_many(b.workflow.RequestName for b in bundles) == {
            b.workflow.RequestName: b for b in bundles}
        assert list(store.stream_encoded()) == lines
        name = bundles[3].workflow.RequestName
        assert store.query(parse_query({"RequestName": f"*{name[2:10]}*"})).total >= 1
        prep = bundles[3].workflow.PrepID
        assert store.query(parse_query({"PrepID": f"*{prep[1:-1]}*"})).total >= 1
    con = sqlite3.connect(path)
    try:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        indexed = con.execute("SELECT COUNT(*) FROM workflow_text_fts").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    finally:
        con.close()
    assert version == SCHEMA_VERSION == "9" and indexed == 12
    assert "workflow_name_fts" not in tables


def test_layout_5_needs_a_replace(tmp_path: Path) -> None:
    # Layout 5 lacks the agent details and job records: not migrated, rebuilt by
    # the next replace.
    path = tmp_path / "five.db"
    with SqliteStore(path) as store:
        store.replace(sample_bundles(5))
    _set_layout(path, "5")
    with SqliteStore(path) as store:
        with pytest.raises(StoreError, match="layout 5 of an older wmstats"):
            store.count()
        store.replace(sample_bundles(3, seed=2))
        assert store.count() == 3


def _text_bundles() -> list[WorkflowBundle]:
    """Sample bundles whose text fields hold what trips a trigram search up: FTS5
    syntax and quotes, GLOB's ``[``, case, non-ASCII, values shorter than a trigram,
    repeated and common trigrams, datasets whose joined value spans elements."""
    import attrs
    texts = [
        ('wf_"quoted"_Run3Summer22', 'A-"B"-001', "/Prim/Run3-v1/RAW", ("/P/Run3Summer22-v1/AOD",)),
        ("wf_AND_OR_NOT_(x)_{c}:*^+-", "AND-NEAR(a)-2", "/A/B/C", ("/A/B/AOD", "/D/E/MINIAOD")),
        ("wf_[abc]_run3summer22", "[x]-3", "/x[1]/y/RAW", ("/AOD/x/y", "/q/r/NANOAOD")),
        ("wf_Ünïcødé_ω_😀_sum", "Ünï-😀😀😀", "/Ü/ω/RAW", ("/😀/ω/AOD",)),
        ("ab", "ab", "", ()),
        ("wf_aaaaaaa_Run3Summer22EE", "aaaa-Run3", "/aaa/aaa/aaa", ("/aaa/aaa/AOD",) * 1),
        ("wf_mixed_RUN3summer22ee", "RUN3-1", "/Run3/RUN3/run3", ("/a/Run3Summer22EE-v1/AOD",
                                                               "/b/Run3Summer23-v2/AOD")),
    ]
    bundles = []
    for bundle, (name, prep, inputs, outputs) in zip(sample_bundles(len(texts)), texts,
                                                     strict=True):
        workflow = attrs.evolve(bundle.workflow, RequestName=name, PrepID=prep,
                                InputDataset=inputs, OutputDatasets=outputs)
        bundles.append(attrs.evolve(bundle, workflow=workflow))
    # Datasets whose joined value holds "AOD\x1f/D" (an element ends where the
    # next begins), with trigrams common enough to be read as a phrase.
    for i, bundle in enumerate(sample_bundles(30, seed=3)):
        if i % 3 == 0:
            bundle = attrs.evolve(bundle, workflow=attrs.evolve(
                bundle.workflow, OutputDatasets=(f"/S{i}/AOD", f"/D/T{i}/MINIAOD")))
        bundles.append(bundle)
    return bundles


_TEXT_PATTERNS = (
    "*Run3*", "*run3*", "*RUN3*", "*Run3Summer22*", "*Run3Summer22EE*", "*a*", "*ab*", "ab",
    "a?", "*aaa*", "*aaaaaa*", "*aaaa?aa*", '*"*', '*"quoted"*', '*"B"*', '*AND*', "*NEAR(*",
    "*(x)_{c}:*", "*^+-", "*[abc]*", "*[x]*", "*x[1]*", "*Ünï*", "*ω*", "*😀😀*", "*😀?😀*",
    "*?*", "*", "?", "wf_*_Run3*", "*Summer22*-v1*", "*/AOD", "/A/*", "*AOD\x1f/D*",
    "*AOD?/D*", "*/AOD*/MINI*", "*/aaa/AOD", "*Run3Summer2?-v?/AOD", "*'*", "*\x00*",
    "*Run3\x00Summer*", "*_Run\x003*", "wf_\x00*",
)


@pytest.mark.parametrize("field", ["RequestName", "PrepID", "InputDataset", "OutputDatasets"])
def test_text_searches_match_the_reference(tmp_path: Path, field: str) -> None:
    # Whatever the trigram index reads (the rarest trigrams only), the answers are
    # the reference's: every page, count and order; several patterns at once.
    bundles = _text_bundles()
    workflows = [b.workflow for b in bundles]
    with SqliteStore(tmp_path / "text.db") as store:
        store.replace(bundles)
        for pattern in _TEXT_PATTERNS:
            for base in (Query(limit=3), Query(idx=2, limit=4, sort=(("RequestPriority", "desc"),)),
                         Query(limit=None).where("RequestStatus", "eq", "running-open",
                                                 "running-closed", "completed")):
                query = base.where(field, "glob", pattern)
                expected = apply_query(workflows, query)
                assert store.query(query).records == expected.records, (field, pattern)
                assert store.count(query) == expected.total, (field, pattern)
            both = Query(limit=None).where(field, "glob", pattern, "*Summer2?*")
            assert store.query(both).records == apply_query(workflows, both).records, pattern
            two = Query(idx=1, limit=2, sort=(("RequestName", "desc"),)).where(
                field, "glob", pattern).where("RequestName", "glob", "*wf_*")
            assert store.query(two).records == apply_query(workflows, two).records, pattern


def _trigram_counts(con: sqlite3.Connection) -> dict[tuple[int, str], int]:
    return {(f, t): n for f, t, n in con.execute(
        "SELECT field, term, docs FROM workflow_text_trigram")}


def _counted_again(path: Path) -> dict[tuple[int, str], int]:
    from wmstats_sqlite import _writes
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN")
        _writes.rebuild_trigrams(con)
        counts = _trigram_counts(con)
        con.execute("ROLLBACK")
    finally:
        con.close()
    return counts


@pytest.mark.parametrize("recount", [10**9, 1])
def test_trigram_counts_follow_every_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           recount: int) -> None:
    # The counts choose the trigrams a search reads; they are those of the index
    # after a replace (counted from it) and after updates, renames and deletes
    # (counted as they are written, or again from the index after a write that
    # changes the text of many workflows).
    import attrs
    from wmstats_sqlite import _writes
    monkeypatch.setattr(_writes, "_RECOUNT", recount)
    path = tmp_path / "counts.db"
    bundles = _text_bundles()
    with SqliteStore(path) as store:
        store.replace(bundles)
        counts = _trigram_counts(store._connection())
        assert counts and counts == _counted_again(path)
        assert counts[0, "Run"] == sum("Run" in b.workflow.RequestName for b in bundles)
        first, second = bundles[0].workflow, bundles[1].workflow
        store.apply(
            upserts=[attrs.evolve(bundles[0], workflow=attrs.evolve(
                         first, PrepID="NEW-Run9-1", OutputDatasets=("/N/Run9-v1/AOD",))),
                     attrs.evolve(bundles[2], workflow=bundles[2].workflow),
                     *sample_bundles(3, seed=9)],
            deletes=[second.RequestName, "no-such-workflow"])
        counts = _trigram_counts(store._connection())
        assert counts == _counted_again(path)
        assert counts[1, "un9"] == 1 and (1, '"B"') not in counts and (1, "NEA") not in counts
        for pattern in ("*Run9*", "*Run3*", "*\"*"):
            query = Query(limit=None).where("PrepID", "glob", pattern)
            assert store.query(query).records == apply_query(
                store.stream(Query(limit=None)), query).records


def test_layout_8_is_migrated_when_opened(tmp_path: Path) -> None:
    # Layout 8 has the text index but not its trigram counts: they are counted
    # from the index when the file is opened; the snapshot stays.
    path = tmp_path / "eight.db"
    bundles = _text_bundles()
    with SqliteStore(path) as store:
        sid = store.replace(bundles)
        counts = _trigram_counts(store._connection())
    con = sqlite3.connect(path)
    con.execute("DROP TABLE workflow_text_trigram")
    con.commit()
    con.close()
    _set_layout(path, "8")
    with SqliteStore(path) as store:
        assert store.snapshot_id == sid
        assert _trigram_counts(store._connection()) == counts
        query = Query(limit=None).where("PrepID", "glob", "*Run3*")
        assert store.query(query).records == apply_query(
            [b.workflow for b in bundles], query).records


@pytest.mark.parametrize("sort", ["RequestName", "-RequestName"])
def test_several_values_merge_their_index_ranges(db: SqliteStore, sort: str) -> None:
    # RequestStatus=a,b,c sorted by name: one ordered range of the status index per
    # value, merged as sqlite reads them (no sort of every match), whatever the
    # page; other filters are tested per row.
    workflows = [b.workflow for b in sample_bundles(40)]
    statuses = sorted({w.RequestStatus for w in workflows})[:4]
    con = db._connection()
    seen: list[str] = []
    con.set_trace_callback(seen.append)
    try:
        for idx in (0, 1, 5, 17, 39):
            for query in (parse_query({"RequestStatus": ",".join(statuses), "sort": sort,
                                       "idx": str(idx), "limit": "4"}),
                          parse_query({"RequestPriority": ">=0", "RequestName": "*_*",
                                       "sort": sort, "idx": str(idx), "limit": "3"}).where(
                              "RequestStatus", "eq", *statuses, statuses[0])):
                expected = apply_query(workflows, query)
                assert expected.total > 4
                assert db.query(query).records == expected.records, (query, idx)
    finally:
        con.set_trace_callback(None)
    merged = [s for s in seen if "UNION ALL" in s]
    assert merged and all(s.count("UNION ALL") == len(statuses) - 1 for s in merged)


def _name_pages_match(store: SqliteStore, expected: list[str]) -> None:
    """Every page of every workflow in name order, both directions, at every
    offset (each segment boundary of the rank marks among them), is the slice of
    ``expected`` (the names in order) that the walk from the first name finds."""
    assert names(store.stream(Query(limit=None))) == expected  # ORDER BY ... OFFSET
    backwards = expected[::-1]
    for idx in range(len(expected) + 2):
        for limit in (1, 5):
            assert names(store.query(Query(idx=idx, limit=limit))) == \
                expected[idx:idx + limit], (idx, limit)
            assert names(store.query(Query(sort=(("RequestName", "desc"),), idx=idx,
                                            limit=limit))) == \
                backwards[idx:idx + limit], (idx, limit, "desc")
    deep = len(expected) // 2
    assert names(store.query(Query(idx=deep, limit=None))) == expected[deep:]
    page = store.query(Query(idx=deep, limit=3, sort=(("RequestName", "asc"),
                                                      ("RequestDate", "desc"))))
    assert names(page) == expected[deep:deep + 3] and page.total == len(expected)


def test_deep_name_pages_start_at_rank_marks(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A deep page of every workflow in name order starts its walk at a rank mark
    # (every STEP-th name): it is the page the walk from the first name finds,
    # after this store's writes (which carry the marks to their snapshot), a
    # drift that builds them again, and another store's writes on the file.
    monkeypatch.setattr(_ranks, "STEP", 4)
    path = tmp_path / "ranks.db"
    model = {f"wf-{i:03d}" for i in range(0, 120, 2)}
    with SqliteStore(path) as store, SqliteStore(path) as other:
        store.replace([simple_bundle(name) for name in model])
        assert store._marks is None
        _name_pages_match(store, sorted(model))
        marks = store._marks
        assert marks is not None and marks.snapshot == store.snapshot_id
        assert len(marks.starts) == 15 and marks.counts == [4] * 15

        # Before the first mark, after the last, inside segments, on marks; an
        # upsert of a present name; deletes of marks, an unknown name, a name
        # also upserted.
        upserts = ["a-first", "wf-001", "wf-007", "wf-008", "wf-009", "zz-last", "wf-050"]
        deletes = ["wf-000", "wf-008", "wf-016", "wf-050", "no-such-workflow", "wf-118"]
        sid = store.apply([simple_bundle(name) for name in upserts], deletes)
        model = (model | set(upserts)) - set(deletes)
        carried = store._marks
        assert carried is not None and carried.snapshot == sid
        assert carried.starts is marks.starts and carried.total == len(model)
        _name_pages_match(store, sorted(model))
        assert store._marks is carried  # used as carried, not built again

        rnd = random.Random(5)
        for _ in range(6):
            pool = [f"wf-{rnd.randrange(130):03d}" for _ in range(12)]
            added, gone = pool[:8], pool[8:]
            store.apply([simple_bundle(name) for name in added], gone)
            model = (model | set(added)) - set(gone)
            _name_pages_match(store, sorted(model))

        # Many names inside one segment: it drifts beyond the bound, and the
        # next deep page builds the marks again.
        crowd = [f"wf-060-{i:02d}" for i in range(30)]
        store.apply([simple_bundle(name) for name in crowd])
        model |= set(crowd)
        assert store._marks is not None and not store._marks.balanced()
        _name_pages_match(store, sorted(model))
        assert store._marks is not None and store._marks.balanced()

        # Another store's write: a new snapshot these marks do not know.
        before = store._marks
        other.apply([simple_bundle("wf-061-x")], ["wf-060-03", "wf-070"])
        model = (model | {"wf-061-x"}) - {"wf-060-03", "wf-070"}
        _name_pages_match(store, sorted(model))
        assert store._marks is not before and store._marks.snapshot == other.snapshot_id
        # ... and this store's next write after another one's: marks not carried.
        other.apply([simple_bundle("wf-062-x")])
        store.apply([simple_bundle("wf-063-x")], ["wf-064"])
        model = (model | {"wf-062-x", "wf-063-x"}) - {"wf-064"}
        _name_pages_match(store, sorted(model))
        _name_pages_match(other, sorted(model))


def test_rank_marks_build_outside_the_request_budget(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the marks walks the whole name index once per snapshot; at 1,000,000
    # names read from disk that outlasts a request's budget, and a build cut short
    # would fail every deep page until the disk cache is warm. It does not count
    # against the budget of the request that happens to build them.
    monkeypatch.setattr(_ranks, "STEP", 4)
    real_build = _ranks.build
    expired_during_build: list[bool] = []

    def slow_build(con: sqlite3.Connection, snapshot: str, step: int = 4) -> RankMarks:
        marks = real_build(con, snapshot, step)
        time.sleep(0.3)
        expired_during_build.append(budget.expired())
        return marks

    monkeypatch.setattr(_ranks, "build", slow_build)
    with SqliteStore(tmp_path / "budget.db") as store:
        names = sorted(f"wf-{i:03d}" for i in range(40))
        store.replace([simple_bundle(name) for name in names])
        with budget.time_budget(0.2):
            page = store.query(Query(idx=30, limit=5))
            # The 0.3 s of the build did not count against the request's budget.
            assert not budget.expired()
        assert [r.RequestName for r in page.records] == names[30:35]
        assert expired_during_build == [False]
        assert store._marks is not None


def test_rank_marks_seek() -> None:
    # Segments of 2, 0 (all its names deleted), 3 and 1 names.
    marks = RankMarks("s", ["b", "d", "f", "h"], [2, 0, 3, 1], 2)
    order = ["a", "b", "f", "g", "g2", "h"]  # "a": inserted before the first mark
    assert marks.total == len(order)
    for idx, name in enumerate(order):
        bound, offset = marks.seek(idx, descending=False)
        assert sorted(n for n in order if bound is None or n >= bound)[offset] == name
        bound, offset = marks.seek(len(order) - 1 - idx, descending=True)
        assert sorted((n for n in order if bound is None or n < bound),
                      reverse=True)[offset] == name


def test_deep_name_pages_while_two_stores_write(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Reader threads take deep pages while this store and another one on the file
    # write in turn: each page is the page of the snapshot it was read from.
    monkeypatch.setattr(_ranks, "STEP", 4)
    path = tmp_path / "busy.db"
    model = {f"wf-{i:03d}" for i in range(0, 200, 2)}
    read: list[tuple[str, int, bool, list[str]]] = []
    stop = threading.Event()
    with SqliteStore(path) as store, SqliteStore(path) as other:
        models = {store.replace([simple_bundle(name) for name in model]): sorted(model)}

        def reader(seed: int) -> None:
            rnd = random.Random(seed)
            while not stop.is_set():
                idx, descending = rnd.randrange(4, 110), rnd.random() < 0.5
                page = store.query(Query(idx=idx, limit=3, sort=(
                    ("RequestName", "desc" if descending else "asc"),)))
                read.append((page.snapshot, idx, descending, names(page)))

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
        for thread in threads:
            thread.start()
        rnd = random.Random(11)
        try:
            for turn in range(40):
                added = [f"wf-{rnd.randrange(220):03d}" for _ in range(4)]
                gone = [f"wf-{rnd.randrange(220):03d}" for _ in range(3)]
                writer = store if turn % 3 else other
                sid = writer.apply([simple_bundle(name) for name in added], gone)
                model = (model | set(added)) - set(gone)
                models[sid] = sorted(model)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert len({sid for sid, *_ in read}) > 5
    for sid, idx, descending, found in read:
        order = models[sid][::-1] if descending else models[sid]
        assert found == order[idx:idx + 3], (sid, idx, descending)


# ---------------------------------------------------------------------- warm (page cache)

def _resident(path: Path) -> float:
    """The share of ``path``'s pages in the kernel's page cache (``mincore``)."""
    import ctypes
    import mmap
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, ctypes.get_errno()
            return sum(b & 1 for b in vec.raw) / pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_warm_reads_the_file_into_the_page_cache(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "w.db"
    with SqliteStore(path) as store:
        store.replace(sample_bundles(300), sample_agents())
        expected = store.query(Query(limit=5))
    drop_from_page_cache(path)
    assert _resident(path) < 0.5, "the test could not drop the file from the page cache"
    caplog.set_level("INFO", logger="wmstats.sqlite")
    with SqliteStore(path) as store:
        store.warm()
        warmer = store.warmer
        assert warmer is not None
        store.warm()  # once per store
        assert store.warmer is warmer
        assert warmer.done.wait(60)
        assert warmer.skipped is None and store.warming is False
        wal = Path(f"{path}-wal")
        assert warmer.read_bytes == path.stat().st_size + (
            wal.stat().st_size if wal.exists() else 0)
        assert _resident(path) > 0.95
        assert store.query(Query(limit=5)).records == expected.records
    assert any("into the page cache" in r.getMessage() and str(path) in r.getMessage()
               for r in caplog.records)


def test_warm_skips_files_larger_than_three_quarters_of_the_available_memory(tmp_path: Path) -> None:
    from wmstats_sqlite._warm import FileWarmer

    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 << 20))
    warmer = FileWarmer([path, tmp_path / "missing"], available_kib=lambda: 4000)
    assert warmer.done.wait(10)
    assert warmer.read_bytes == 0
    assert warmer.skipped is not None and "3 MiB" in warmer.skipped
    read = FileWarmer([path, tmp_path / "missing"], available_kib=lambda: 4100)
    assert read.done.wait(10)
    assert (read.read_bytes, read.skipped) == (3 << 20, None)


def test_closing_stops_the_warming(tmp_path: Path) -> None:
    from wmstats_sqlite._warm import FileWarmer

    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as grow:
        grow.truncate(1 << 32)  # 4 GiB, read for seconds
    warmer = FileWarmer([sparse], available_kib=lambda: None)
    warmer.close()
    assert warmer.done.is_set()
    assert warmer.read_bytes < 1 << 32

    path = tmp_path / "w.db"
    store = SqliteStore(path)
    store.replace(sample_bundles(5))
    store.warm()
    started = store.warmer
    assert started is not None
    store.close()
    assert started.done.is_set()
    store.warm()  # closed: nothing starts again
    assert store.warmer is started


def test_warming_waits_while_the_store_is_read(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with SqliteStore(path) as store:
        store.replace(sample_bundles(50))
        stream = store.stream_encoded(Query(), batch_size=1)
        first = next(stream)  # a read transaction stays open until the stream ends
        store.warm()
        warmer = store.warmer
        assert warmer is not None
        time.sleep(0.3)
        assert (warmer.read_bytes, warmer.done.is_set(), store.warming) == (0, False, True)
        rest = list(stream)
        assert len(rest) == 49 and first not in rest
        assert warmer.done.wait(30)
        assert warmer.read_bytes >= path.stat().st_size
        assert store.warming is False
