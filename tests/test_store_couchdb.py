"""The CouchDB store: the shipped conformance suite plus CouchDB-specific checks.

Runs against pouchdb-server (started by :mod:`wmstats.testing.couchdb_server`)
or the CouchDB named by ``$WMSTATS_COUCHDB_URL``.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import zlib
from collections.abc import Iterator

import attrs
import pytest
import requests

from wmstats.schema import WorkflowBundle
from wmstats.query import Query, apply_query, parse_query, summarize
from wmstats.store import Store, StoreError, StoreOptionError, open_store
from wmstats.testing.couchdb_server import CouchDatabase, PouchServer, free_port
from wmstats.testing.fixtures import require_pouchdb_bin
from wmstats.testing.data import sample_agents, sample_bundles
from wmstats.testing.store_suite import EXTRA_AGGREGATES, StoreSuite, extend_aggregates
from wmstats_couchdb import CouchError, CouchStore, _docs


def make_store(database: CouchDatabase, **options: object) -> CouchStore:
    return CouchStore(database.name, server_url=database.server.url, **options)  # type: ignore[arg-type]


class TestCouchStore(StoreSuite):
    @pytest.fixture
    def store(self, couchdb_database: CouchDatabase) -> Iterator[Store]:
        store = make_store(couchdb_database)
        yield store
        store.close()


# --------------------------------------------------------------------------- specific


@pytest.fixture
def store(couchdb_database: CouchDatabase) -> Iterator[CouchStore]:
    store = make_store(couchdb_database)
    yield store
    store.close()


def _all_dbs(database: CouchDatabase) -> list[str]:
    with requests.get(database.server.url + "/_all_dbs", timeout=10) as response:
        names: list[str] = response.json()
    return [n for n in names if n.startswith(database.name)]


class TestUrls:
    def test_url_options_with_credentials(self) -> None:
        parts = urllib.parse.urlsplit("couchdb://us%40er:p%3Ass%2Fw@db.example.org:6984/"
                                      "wm%2Fstats")
        assert CouchStore.url_options(parts) == {
            "host": "db.example.org", "port": 6984, "username": "us@er",
            "password": "p:ss/w", "database": "wm/stats"}

    def test_url_options_defaults(self) -> None:
        assert CouchStore.url_options(urllib.parse.urlsplit("couchdb://")) == {}
        assert CouchStore.url_options(urllib.parse.urlsplit("couchdb://h/")) == {"host": "h"}

    def test_bad_names_and_options(self) -> None:
        for name in ("", "Upper", "1digit", "sp ace", "x" * 300):
            with pytest.raises(StoreOptionError):
                CouchStore(name)
        with pytest.raises(StoreOptionError, match="scheme"):
            CouchStore("db", scheme="ftp")
        with pytest.raises(StoreOptionError, match="server_url"):
            CouchStore("db", server_url="localhost:5984")
        with pytest.raises(StoreOptionError):
            open_store("couchdb://h:notaport/db")

    def test_open_store_url_with_options(self, couchdb_database: CouchDatabase) -> None:
        server = urllib.parse.urlsplit(couchdb_database.server.url)
        url = (f"couchdb://{server.hostname}:{server.port}/{couchdb_database.name}"
               f"?timeout=7.5&batch_size=3&scheme=http&keep_snapshots=0")
        store = open_store(url)
        try:
            assert isinstance(store, CouchStore)
            assert (store.batch_size, store.keep_snapshots, store.client.timeout) == (3, 0, 7.5)
            bundles = sample_bundles(8)
            store.replace(bundles)  # several _bulk_docs batches of 3
            assert store.count() == 8
        finally:
            store.close()

    def test_missing_database_without_create(self, couchdb_database: CouchDatabase) -> None:
        with pytest.raises(StoreError, match="no wmstats snapshot|not_found|exist"):
            make_store(couchdb_database, create=False)

    def test_unreachable_server(self) -> None:
        with pytest.raises(CouchError) as info:
            CouchStore("db", port=free_port(), timeout=2)
        assert info.value.status == 0


def test_credentials_are_sent(couchdb_database: CouchDatabase) -> None:
    """A server with an admin: the URL's credentials work, wrong ones are refused.

    (pouchdb-server never answers an anonymous database creation once it has an
    admin -- an unhandled rejection -- so that case is not tried here.)
    """
    bin_path = require_pouchdb_bin()
    with PouchServer(bin_path) as server:
        with requests.put(f"{server.url}/_config/admins/wm%40admin", data='"s3cr:et"',
                          timeout=10) as response:
            assert response.status_code == 200, response.text
        port = server.port
        with pytest.raises(CouchError) as info:
            CouchStore("authdb", port=port, username="wm@admin", password="wrong")
        assert info.value.status == 401
        store = open_store(f"couchdb://wm%40admin:s3cr%3Aet@127.0.0.1:{port}/authdb")
        try:
            store.replace(sample_bundles(3))
            assert store.count() == 3
        finally:
            store.close()
        store = CouchStore("authdb", port=port, username="wm@admin", password="s3cr:et")
        with store:
            assert store.count() == 3


def test_queries_do_not_download_the_database(store: CouchStore) -> None:
    bundles = sample_bundles(400, seed=1)
    store.replace(bundles, sample_agents())
    workflows = [b.workflow for b in bundles]
    db = store._snapshot_db()
    with requests.get(f"{store.server}/{db}/_all_docs", params={"include_docs": "true"},
                      timeout=30) as response:
        whole = len(response.content)
    client = store.client
    queries = [
        Query(idx=0, limit=10),
        Query(idx=380, limit=10),
        parse_query({"Sites": "T1_US_FNAL", "limit": "10"}),
        parse_query({"RequestStatus": "running-open", "Campaigns": "Run3Winter24",
                     "limit": "10"}),
        parse_query({"RequestPriority": ">=110000", "limit": "10"}),
        parse_query({"RequestName": "*wf00*", "sort": "-RequestDate", "limit": "10"}),
    ]
    for query in queries:
        before, requests_before = client.bytes_received, client.requests
        page = store.query(query)
        expected = apply_query(workflows, query)
        assert page.records == expected.records and page.total == expected.total
        used = client.bytes_received - before
        assert used < whole / 4, (query, used, whole)
        assert client.requests - requests_before <= 4
    log = list(client.log)
    assert ("POST", f"/{db}/_find") in log
    assert ("GET", f"/{db}/_design/wmstats/_view/agg") in log
    before = client.bytes_received
    assert store.aggregate("site") == summarize(bundles, "site")
    assert store.summary("site", "T1_US_FNAL") == next(
        s for s in summarize(bundles, "site") if s.Value == "T1_US_FNAL")
    assert client.bytes_received - before < whole / 20


def test_bulk_conflicts_are_resolved(store: CouchStore) -> None:
    bundles = sample_bundles(6)
    store.replace(bundles)
    db = store._snapshot_db()
    changed = attrs.evolve(bundles[0], workflow=attrs.evolve(bundles[0].workflow,
                                                             RequestPriority=424242))
    stale = _docs.workflow_doc(changed)  # no _rev: CouchDB answers 409 conflict
    store._bulk(db, [stale, _docs.workflow_doc(bundles[1])])
    assert store.get(changed.workflow.RequestName) == changed
    assert store.get(bundles[1].workflow.RequestName) == bundles[1]
    assert store.count() == 6


def test_later_duplicate_wins_across_batches(couchdb_database: CouchDatabase) -> None:
    bundles = sample_bundles(5)
    late = attrs.evolve(bundles[0], workflow=attrs.evolve(bundles[0].workflow,
                                                          RequestStatus="completed"))
    with make_store(couchdb_database, batch_size=2) as store:
        store.replace([*bundles, bundles[2], late])  # duplicates land in later batches
        assert store.count() == 5
        assert store.get(late.workflow.RequestName) == late
        assert store.get(bundles[2].workflow.RequestName) == bundles[2]


def test_two_writers_on_one_database(couchdb_database: CouchDatabase) -> None:
    first, second = make_store(couchdb_database), make_store(couchdb_database)
    try:
        bundles = sample_bundles(20)
        first.replace(bundles)
        errors: list[BaseException] = []

        def writer(store: CouchStore, priority: int) -> None:
            try:
                for i in range(5):
                    store.apply(upserts=[attrs.evolve(b, workflow=attrs.evolve(
                        b.workflow, RequestPriority=priority + i)) for b in bundles[:8]],
                        agents=sample_agents(prefix=f"w{priority}_"))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(s, p))
                   for s, p in ((first, 1000), (second, 2000))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors[0]
        assert first.count() == 20
        priorities = {first.get(b.workflow.RequestName).workflow.RequestPriority  # type: ignore[union-attr]
                      for b in bundles[:8]}
        assert priorities <= {1004, 2004}
        assert len(first.get_agents()) == 2 * len(sample_agents())
    finally:
        first.close()
        second.close()


def test_other_process_sees_replace_and_survives_dropped_snapshot(
        couchdb_database: CouchDatabase) -> None:
    writer = make_store(couchdb_database, keep_snapshots=1)
    writer.replace(sample_bundles(5, prefix="one_"))
    reader = make_store(couchdb_database, refresh=3600.0)
    quick = make_store(couchdb_database, refresh=0.0)
    try:
        writer.replace(sample_bundles(6, prefix="two_"))
        assert quick.count() == 6
        assert reader.count() == 5  # trusts its pointer for `refresh` seconds
        writer.keep_snapshots = 0
        writer.replace(sample_bundles(7, prefix="three_"))  # drops the reader's database
        page = reader.query(Query())  # 404 -> reads the pointer again
        assert page.total == 7 and all(r.RequestName.startswith("three_")
                                       for r in page.records)
        assert page.snapshot == writer.snapshot_id == quick.snapshot_id
        assert len(_all_dbs(couchdb_database)) == 2  # base + current snapshot
    finally:
        writer.close()
        reader.close()
        quick.close()


def test_failed_replace_drops_its_database(store: CouchStore,
                                           couchdb_database: CouchDatabase) -> None:
    store.replace(sample_bundles(3))
    before = _all_dbs(couchdb_database)

    def broken() -> Iterator[WorkflowBundle]:
        yield from sample_bundles(3, prefix="b_")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.replace(broken())
    assert _all_dbs(couchdb_database) == before


def test_previous_snapshot_is_kept_for_readers(store: CouchStore,
                                               couchdb_database: CouchDatabase) -> None:
    for i in range(4):
        store.replace(sample_bundles(2, prefix=f"g{i}_"))
    assert len(_all_dbs(couchdb_database)) == 3  # base, current, previous


def test_server_restart_mid_use(couchdb_database: CouchDatabase) -> None:
    bin_path = require_pouchdb_bin()
    with PouchServer(bin_path, in_memory=False) as server:
        store = CouchStore("restarted", port=server.port)
        with store:
            bundles = sample_bundles(10)
            store.replace(bundles)
            server.kill()
            with pytest.raises(CouchError):
                store.count()
            server.restart()
            assert store.count() == 10
            assert store.get(bundles[0].workflow.RequestName) == bundles[0]


def test_older_design_document_is_upgraded(couchdb_database: CouchDatabase) -> None:
    # A snapshot written by an older wmstats: its view has no type/team keys and
    # its design document no version.  A store opening it rewrites the design doc.
    bundles = sample_bundles(12)
    writer = make_store(couchdb_database)
    writer.replace(bundles)
    base = f"{couchdb_database.server.url}/{urllib.parse.quote(couchdb_database.name)}"
    with requests.get(f"{base}/{_docs.POINTER_ID}", timeout=10) as response:
        snapshot = response.json()["database"]
    design_url = f"{couchdb_database.server.url}/{urllib.parse.quote(snapshot)}/{_docs.DESIGN_ID}"
    with requests.get(design_url, timeout=10) as response:
        current = response.json()
    old = _docs.design_doc()
    del old["wmstats_view"]
    old["_rev"] = current["_rev"]
    old["views"][_docs.VIEW]["map"] = old["views"][_docs.VIEW]["map"].replace(
        "each(KEYS[k][0]", "if (KEYS[k][0] !== 'type' && KEYS[k][0] !== 'team') each(KEYS[k][0]")
    with requests.put(design_url, json=old, timeout=10) as response:
        assert response.status_code == 201, response.text
    writer.close()
    # The old view really is missing the keys (so the check below means something).
    with requests.get(f"{couchdb_database.server.url}/{urllib.parse.quote(snapshot)}"
                      f"{_docs.VIEW_PATH}", params={"group_level": "1"},
                      timeout=60) as response:
        assert {r["key"][0] for r in response.json()["rows"]} == {
            "site", "campaign", "agent", "release", "status"}
    reader = make_store(couchdb_database, create=False)
    try:
        for by in ("type", "team", "status"):
            assert reader.aggregate(by) == summarize(bundles, by), by
        query = parse_query({"RequestType": "StepChain"})
        assert reader.query(query) == apply_query([b.workflow for b in bundles], query,
                                                  reader.snapshot_id)
        with requests.get(design_url, timeout=10) as response:
            assert response.json()["wmstats_view"] == _docs.VIEW_VERSION
    finally:
        reader.close()


def test_design_document_follows_the_aggregate_table(
        couchdb_database: CouchDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    # A snapshot written before aggregates were added to the table: a store that
    # knows them rewrites the design document (same version, more keys) once.
    bundles = sample_bundles(12)
    with make_store(couchdb_database) as writer:
        writer.replace(bundles)
    table = extend_aggregates(monkeypatch)
    added = [a.key for a in table[-len(EXTRA_AGGREGATES):]]
    reader = make_store(couchdb_database, create=False)
    try:
        for agg in table:
            assert reader.aggregate(agg.key) == summarize(bundles, agg.key), agg.key
        design = reader.client.request(
            "GET", f"/{urllib.parse.quote(reader._snapshot_db())}/{_docs.DESIGN_ID}")
        assert design["wmstats_view"] == _docs.VIEW_VERSION
        assert {k[0] for k in design["wmstats_keys"]} >= set(added)
        assert _docs.design_is_current(design)
    finally:
        reader.close()
    monkeypatch.undo()
    # The original table is covered by the rewritten document: left alone.
    assert _docs.design_is_current(design)
    assert not _docs.design_is_current({**design, "wmstats_keys": design["wmstats_keys"][:2]})
    assert not _docs.design_is_current({**design, "wmstats_view": _docs.VIEW_VERSION - 1})
    assert _docs.design_is_current({**design, "wmstats_view": _docs.VIEW_VERSION + 1})


def _format1_doc(bundle: WorkflowBundle) -> dict[str, object]:
    """The document an older wmstats wrote: format 1, the status history inside the
    workflow as keyed objects, the attachment without it (nor the parts added since)."""
    doc = _docs.workflow_doc(bundle)
    doc["wmstats"] = 1
    doc["Transitions"] = [{"Status": t.Status, "UpdateTime": t.UpdateTime, "DN": t.DN}
                          for t in bundle.transitions]
    attachment = doc["_attachments"]["parts"]
    parts = json.loads(zlib.decompress(base64.b64decode(attachment["data"])))
    # tasks...parentage, the history, then the chain arguments and the agents' reports
    assert len(parts) == 7 and parts[4]
    attachment["data"] = base64.b64encode(zlib.compress(json.dumps(parts[:4]).encode())).decode()
    return doc


def test_format1_documents_are_still_read(store: CouchStore) -> None:
    bundles = sample_bundles(20, seed=4)
    store.replace(bundles[10:])
    db = store._snapshot_db()
    store._bulk(db, [_format1_doc(b) for b in bundles[:10]])
    # An older wmstats kept no chain arguments or agent reports: those come back empty.
    old = [attrs.evolve(b, chain=(), agent_requests=()) for b in bundles[:10]]
    for bundle in [*old, *bundles[10:]]:
        assert store.get(bundle.workflow.RequestName) == bundle
    workflows = [b.workflow for b in bundles]
    for params in ({}, {"RequestPriority": ">0", "sort": "-RequestDate"},
                   {"RequestStatus": "running-open,completed"}):
        query = parse_query(params)
        assert store.query(query).records == apply_query(workflows, query).records, params
    for by in ("site", "status", "campaign"):
        assert store.aggregate(by) == summarize(bundles, by), by
    # An upsert writes the workflow in the current format.
    store.upsert(bundles[0])
    doc_id = urllib.parse.quote(_docs.doc_id(bundles[0].workflow.RequestName), safe="")
    raw = store.client.request("GET", f"/{urllib.parse.quote(db)}/{doc_id}")
    assert raw["wmstats"] == 2 and "Transitions" not in raw
    assert store.get(bundles[0].workflow.RequestName) == bundles[0]
