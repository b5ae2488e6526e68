"""The CouchDB source against a real pouchdb-server, through the real HTTP API."""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import cherrypy
import jsonschema
import pytest
import requests
import ujson
from wmstats_couchdb._http import CouchClient, CouchError, quote, split_server_url
from wmstats_couchdb.seed import seed_couchdb
from wmstats_couchdb.source import CouchSource

from wmstats import cli, serve
from wmstats.client import CacheClient
from wmstats.convert import convert_documents
from wmstats.jobs import JobTable
from wmstats.mock import MockGenerator
from wmstats.schema import WorkflowBundle
from wmstats.source import ACTIVE_STATUSES, open_source
from wmstats.store import Store, StoreListener, open_store
from wmstats.testing.couchdb_server import CouchDatabase, PouchServer, free_port
from wmstats.testing.fixtures import require_pouchdb_bin
from wmstats.web import CacheApp, WebServer, build_application
from wmstats.web.cache import SourcePlugin

SEED = 11
#: Fast settings, so that faults are noticed and retried quickly.
FAST: dict[str, Any] = {"heartbeat": 0.2, "idle_timeout": 5.0, "retry_initial": 0.05,
                        "retry_max": 0.5, "batch_size": 40, "timeout": 10.0}


pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


class Dbs(NamedTuple):
    url: str
    requests: str
    wmstats: str

    def query(self) -> str:
        return f"requests_db={self.requests}&wmstats_db={self.wmstats}"

    def source_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"couchdb://{parts.netloc}{parts.path}?{self.query()}"


def _client(url: str) -> CouchClient:
    base, auth = split_server_url(url)
    return CouchClient(base, auth=auth, timeout=30)


@pytest.fixture
def dbs(couchdb_database: CouchDatabase) -> Dbs:
    return Dbs(couchdb_database.server.url, couchdb_database.name + "_req",
               couchdb_database.name + "_wms")


@pytest.fixture
def client(dbs: Dbs) -> Iterator[CouchClient]:
    c = _client(dbs.url)
    yield c
    c.close()


def _seed(client: CouchClient, dbs: Dbs, n: int, start: int = 0, jobs: bool = False) -> None:
    result = seed_couchdb(client, n, seed=SEED, start=start, requests_db=dbs.requests,
                          wmstats_db=dbs.wmstats, batch_size=25, agent_info=start == 0,
                          jobs=jobs)
    assert result.failed == 0, result.first_errors


def _source(store: Store, dbs: Dbs, **options: Any) -> CouchSource:
    source = CouchSource(store, url=dbs.url, requests_db=dbs.requests,
                         wmstats_db=dbs.wmstats, **{**FAST, **options})
    return source


def _read_all(client: CouchClient, db: str) -> list[dict[str, Any]]:
    body = client.request("GET", f"/{quote(db)}/_all_docs", params={"include_docs": True})
    return [row["doc"] for row in body["rows"] if not row["id"].startswith("_design/")]


def _expected_from(docs: list[Any]) -> tuple[dict[str, WorkflowBundle], list[Any]]:
    result = convert_documents(docs)
    return ({b.workflow.RequestName: b for b in result.bundles
             if b.workflow.RequestStatus in ACTIVE_STATUSES}, list(result.agents))


def _expected(client: CouchClient, dbs: Dbs) -> tuple[dict[str, WorkflowBundle], list[Any]]:
    """What converting the databases' current documents gives (active statuses)."""
    return _expected_from(_read_all(client, dbs.requests) + _read_all(client, dbs.wmstats))


def _store_content(store: Store) -> tuple[dict[str, WorkflowBundle], list[Any]]:
    names = [w.RequestName for w in store.stream()]
    return store.get_many(names), store.get_agents()


def _wait(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def _update(client: CouchClient, db: str, doc_id: str, change: Callable[[dict[str, Any]], None]
            ) -> dict[str, Any]:
    doc = client.request("GET", f"/{quote(db)}/{quote(doc_id)}")
    change(doc)
    answer = client.request("PUT", f"/{quote(db)}/{quote(doc_id)}", body=doc)
    doc["_rev"] = answer["rev"]
    return doc


def _delete(client: CouchClient, db: str, doc_id: str) -> None:
    doc = client.request("GET", f"/{quote(db)}/{quote(doc_id)}")
    client.request("DELETE", f"/{quote(db)}/{quote(doc_id)}", params={"rev": doc["_rev"]})


def _extras(gen: MockGenerator) -> list[dict[str, Any]]:
    """Inactive requests, malformed and foreign documents, a design document."""
    archived = []
    for i in (1000, 1001):
        doc = gen.documents(i)[0]
        doc["RequestStatus"] = "normal-archived"
        archived.append(doc)
    broken = copy.deepcopy(gen.documents(1002))
    broken[0]["RequestPriority"] = "high"            # a string where an int belongs
    broken[1]["status"] = {"success": "many", "weird": 3}
    return [*archived, *broken, {"_id": "mystery", "type": "mystery"},
            {"_id": "_design/WMStats", "views": {}}]


def _readers() -> list[int]:
    """The reader processes (``wmstats_couchdb._reader``) this process started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2:].split()[1])
            if parent == os.getpid() and b"wmstats_couchdb._reader" in (
                    entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _put_extras(client: CouchClient, dbs: Dbs, extras: list[dict[str, Any]]) -> None:
    for doc in extras:
        db = dbs.wmstats if doc.get("type") in ("agent_request", "mystery") else dbs.requests
        client.request("PUT", f"/{quote(db)}/{quote(doc['_id'])}", body=doc)


# --------------------------------------------------------------------------- full load


@pytest.mark.parametrize(("backend", "reader_process"),
                         [("memory", False), ("sqlite", False), ("memory", True)])
def test_full_load_equals_converting_the_documents(client: CouchClient, dbs: Dbs,
                                                   caplog: pytest.LogCaptureFixture,
                                                   tmp_path: Path, backend: str,
                                                   reader_process: bool) -> None:
    _seed(client, dbs, 50)
    gen = MockGenerator(seed=SEED)
    extras = _extras(gen)
    _put_extras(client, dbs, extras)
    seqs = {db: str(client.request("GET", f"/{db}")["update_seq"])
            for db in (dbs.requests, dbs.wmstats)}
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/wmstats.db"
    collector = _CollectorWatch()
    with open_store(url) as store, _source(store, dbs, reader_process=reader_process) as source:
        store.add_listener(collector)
        assert gc.isenabled()
        source.start()
        assert source.wait_ready(60)
        assert not _readers()  # the reader process has ended
        # the load ran with the cyclic garbage collector off, and turned it back on
        assert collector.seen == [False] and gc.isenabled()
        want, agents = _expected_from([*gen.iter_documents(50), *extras])
        got, got_agents = _store_content(store)
        assert got == want and got_agents == agents
        if store.keeps_records:  # the state keeps the store's records, not its own
            rows = {w.RequestName: w for w in store._snap.workflows}
            kept = source._state._requests
            assert kept and all(part.workflow is rows[name] for name, part in kept.items())
        assert len(want) == 51  # 50 seeded + the broken one; the archived two left out
        status = source.status()
        assert status.ready and status.connected and status.loads == 1
        assert dict(status.sequences) == seqs
        assert source.sequences_for(store.snapshot_id) == seqs
        # malformed documents are reported (counted, logged with their ids), the rest served
        assert status.problems >= 4
        assert store.get(extras[2]["RequestName"]) is not None
        logged = "\n".join(r.getMessage() for r in caplog.records
                           if r.name == "wmstats.source.couchdb")
        for doc in (extras[2], extras[3], extras[4]):
            assert f"{doc['_id']}: " in logged, doc["_id"]
        assert status.last_load_seconds is not None and status.last_load_seconds > 0


class _CollectorWatch(StoreListener):
    """Whether the cyclic garbage collector was on when each replace started."""

    def __init__(self) -> None:
        self.seen: list[bool] = []

    def replacing(self, store: Store) -> Callable[[WorkflowBundle], None] | None:
        self.seen.append(gc.isenabled())
        return None


# --------------------------------------------------------------------------- HTTP


def _get(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, headers={"Accept": "application/json"}, timeout=10)


def _valid(url: str, name: str, doc: Any) -> None:
    """Check ``doc`` against schema ``name`` of the server's OpenAPI document."""
    components = _get(url + "/openapi.json").json()["components"]
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                     "components": components}).validate(doc)


def _all_pages(url: str) -> list[Any]:
    body = _get(url + "/fetch", limit="1000").json()
    return body["workflows"]


def test_changes_show_through_the_http_api(client: CouchClient, dbs: Dbs) -> None:
    _seed(client, dbs, 30)
    gen = MockGenerator(seed=SEED)
    docs = list(gen.iter_documents(30))
    requests_docs = [d for d in docs if "RequestName" in d]
    agent_docs = [d for d in docs if d.get("type") == "agent_request"]
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(CacheApp(source=dbs.source_url() + "&heartbeat=0.2&"
                                                  "retry_initial=0.05&batch_size=40"))
        assert app.source is not None
        server = stack.enter_context(WebServer(build_application(app)))
        url = server.url
        _wait(lambda: _get(url + "/healthz").status_code == 200, what="ready")

        # a request's priority
        name = requests_docs[0]["RequestName"]
        _update(client, dbs.requests, requests_docs[0]["_id"],
                lambda d: d.update(RequestPriority=424242))
        took = _wait(lambda: _get(f"{url}/fetch/{name}").json()["workflow"]["RequestPriority"]
                     == 424242, what="the new priority")
        assert took < 5.0
        # an agent's job counter: only that workflow changes
        part = agent_docs[0]
        before = {w["RequestName"]: w for w in _all_pages(url)}
        old = before[part["workflow"]]["Success"]

        def more_success(doc: dict[str, Any]) -> None:
            doc["status"]["success"] = doc["status"].get("success", 0) + 777
        _update(client, dbs.wmstats, part["_id"], more_success)
        _wait(lambda: _get(f"{url}/fetch/{part['workflow']}").json()["workflow"]["Success"]
              == old + 777, what="the new counter")
        after = {w["RequestName"]: w for w in _all_pages(url)}
        assert {n for n in after if after[n] != before[n]} == {part["workflow"]}
        # a deleted request disappears; a deleted agent_request takes its counters along
        gone = requests_docs[1]["RequestName"]
        _delete(client, dbs.requests, requests_docs[1]["_id"])
        _wait(lambda: _get(f"{url}/fetch/{gone}").status_code == 404, what="the deletion")
        _delete(client, dbs.wmstats, agent_docs[-1]["_id"])
        # new workflows appear
        _seed(client, dbs, 3, start=30)
        new_names = [gen.workflow_name(i) for i in (30, 31, 32)]
        _wait(lambda: all(_get(f"{url}/fetch/{n}").status_code == 200 for n in new_names),
              what="the new workflows")
        want, agents = _expected(client, dbs)
        _wait(lambda: _store_content(app.store) == (want, agents), what="all changes")

        # every response names the sequences its snapshot reflects
        health = _get(url + "/healthz").json()
        seqs = health["source"]["sequences"]
        assert set(seqs) == {dbs.requests, dbs.wmstats}
        assert health["source"]["updates_applied"] >= 7 and health["ready"] is True
        page = _get(url + "/fetch", limit="5")
        assert ujson.loads(page.headers["X-Source-Sequences"]) == seqs == page.json()["sources"]
        _valid(url, "Health", health)
        _valid(url, "WorkflowPage", page.json())
        _valid(url, "WorkflowDetail", _get(f"{url}/fetch/{name}").json())
        _valid(url, "ValueList", _get(f"{url}/campaign").json())
        with CacheClient(url) as cache:
            assert cache.fetch(limit=2).sources == seqs
            assert cache.site("T1_US_FNAL").page.sources == seqs
        for path in (f"/fetch/{name}", "/campaign", f"/sites/{'T1_US_FNAL'}"):
            response = _get(url + path)
            if response.status_code == 200:
                assert ujson.loads(response.headers["X-Source-Sequences"]) == seqs
        metrics = _get(url + "/metrics").text
        assert "wmstats_source_ready 1" in metrics and "wmstats_source_problems" in metrics

        # a second server on the same CouchDB converges to the same data
        replica = stack.enter_context(CacheApp(source=dbs.source_url()))
        other = stack.enter_context(WebServer(build_application(replica)))
        _wait(lambda: _get(other.url + "/healthz").status_code == 200, what="the replica")
        assert _get(other.url + "/healthz").json()["source"]["sequences"] == seqs
        assert _all_pages(other.url) == _all_pages(url)
        _update(client, dbs.requests, requests_docs[2]["_id"],
                lambda d: d.update(RequestPriority=7))
        _wait(lambda: _get(url + "/healthz").json()["source"]["sequences"]
              == _get(other.url + "/healthz").json()["source"]["sequences"] != seqs,
              what="both servers to see the change")
        assert _all_pages(other.url) == _all_pages(url)


# --------------------------------------------------------------------------- faults


def test_unreachable_at_start_then_ready() -> None:
    require_pouchdb_bin()
    port = free_port()
    dbs = Dbs(f"http://127.0.0.1:{port}", "req_db", "wms_db")
    with contextlib.ExitStack() as stack:
        # Full health detail: /healthz shows the source's last error (not by default).
        app = stack.enter_context(CacheApp(source=dbs.source_url() + "&retry_initial=0.05&"
                                                  "retry_max=0.3&heartbeat=0.2",
                                           health_detail="full"))
        server = stack.enter_context(WebServer(build_application(app)))
        url = server.url
        assert app.source is not None
        _wait(lambda: app.source is not None and app.source.status().errors > 0,
              what="a failed attempt")
        health = _get(url + "/healthz")
        assert health.status_code == 503 and health.headers["Retry-After"]
        doc = health.json()
        _valid(url, "Health", doc)
        assert doc["ready"] is False and doc["source"]["ready"] is False
        assert doc["source"]["connected"] is False and doc["source"]["last_error"]
        assert doc["source"]["last_contact"] is None
        assert app.source.status().out_of_contact(time.time()) == math.inf
        for path in ("/fetch", "/fetch/anything", "/sites", "/campaign/x"):
            response = _get(url + path)
            assert response.status_code == 503, path
            assert response.headers["Retry-After"] == "5"
            assert response.json()["error"] == "unavailable"
            _valid(url, "Error", response.json())
        assert _get(url + "/info").status_code == 200
        assert "wmstats_source_ready 0" in _get(url + "/metrics").text

        couch = stack.enter_context(PouchServer(port=port))
        c = _client(couch.url)
        stack.callback(c.close)
        _seed(c, dbs, 12)
        _wait(lambda: _get(url + "/healthz").status_code == 200, what="ready")
        want, agents = _expected(c, dbs)
        _wait(lambda: _store_content(app.store) == (want, agents), what="every document")
        assert len(_all_pages(url)) == len(want) == 12


@pytest.fixture
def disk_server() -> Iterator[PouchServer]:
    require_pouchdb_bin()
    with PouchServer(in_memory=False) as server:
        yield server


def test_kill_and_restart_mid_feed(disk_server: PouchServer) -> None:
    dbs = Dbs(disk_server.url, "req_db", "wms_db")
    c = _client(disk_server.url)
    try:
        _seed(c, dbs, 20)
        docs = [d for d in MockGenerator(seed=SEED).iter_documents(20)]
        requests_docs = [d for d in docs if "RequestName" in d]
        agent_docs = [d for d in docs if d.get("type") == "agent_request"]
        with open_store("memory://") as store, _source(store, dbs) as source:
            source.start()
            assert source.wait_ready(30)
            # changes right before the crash: applied before it or after the restart
            for doc in agent_docs[:5]:
                _update(c, dbs.wmstats, doc["_id"],
                        lambda d: d["status"].update(success=d["status"].get("success", 0) + 5))
            disk_server.kill()
            _wait(lambda: not source.status().connected, what="the lost connection")
            errors = source.status().errors
            assert errors > 0 and source.ready
            # The last answer is remembered: no request answers while the server is down.
            lost = source.status().last_contact
            assert lost is not None and lost <= time.time()
            time.sleep(0.3)  # a few failed reconnects
            assert source.status().last_contact == lost
            assert source.status().out_of_contact(time.time()) >= 0.3
            disk_server.restart()
            _update(c, dbs.requests, requests_docs[0]["_id"],
                    lambda d: d.update(RequestPriority=31337))
            _delete(c, dbs.requests, requests_docs[1]["_id"])
            for doc in agent_docs[:3]:  # the same documents again, applied once each
                _update(c, dbs.wmstats, doc["_id"],
                        lambda d: d["status"].update(success=d["status"].get("success", 0) + 1))
            _seed(c, dbs, 2, start=20)
            want, agents = _expected(c, dbs)
            _wait(lambda: _store_content(store) == (want, agents), what="every change")
            assert source.status().connected
            assert (source.status().last_contact or 0) > lost
            assert source.sequences_for(store.snapshot_id) == {
                db: str(c.request("GET", f"/{db}")["update_seq"])
                for db in (dbs.requests, dbs.wmstats)}
    finally:
        c.close()


class _PausingSource(CouchSource):
    """Pauses its full load after a few pages, so a test can break the server then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paused = threading.Event()
        self.resume = threading.Event()

    def _pages(self, db: str) -> Iterator[list[Any]]:
        for i, rows in enumerate(super()._pages(db)):
            if i == 2 and not self.resume.is_set():
                self.paused.set()
                self.resume.wait(30)
            yield rows


def test_kill_mid_load_keeps_the_previous_snapshot(disk_server: PouchServer) -> None:
    dbs = Dbs(disk_server.url, "req_db", "wms_db")
    c = _client(disk_server.url)
    try:
        _seed(c, dbs, 30)
        with open_store("memory://") as store:
            other = MockGenerator(seed=99)
            before_sid = store.replace(other.bundles(7), other.agents())
            before = _store_content(store)
            source = _PausingSource(store, url=dbs.url, requests_db=dbs.requests,
                                    wmstats_db=dbs.wmstats, **{**FAST, "batch_size": 5})
            with source:
                source.start()
                assert source.paused.wait(30)
                disk_server.kill()
                source.resume.set()
                _wait(lambda: source.status().errors > 0, what="the failed load")
                assert not source.ready
                assert store.snapshot_id == before_sid and _store_content(store) == before
                disk_server.restart()
                assert source.wait_ready(30)
                want, agents = _expected(c, dbs)
                assert _store_content(store) == (want, agents)
                assert source.status().loads == 1
    finally:
        c.close()


def test_the_reader_process_hands_over_pages_reports_errors_and_ends(
        client: CouchClient, dbs: Dbs) -> None:
    from wmstats_couchdb._reader import ProcessReader, ReaderError
    from wmstats_couchdb._state import pack_report

    _seed(client, dbs, 20)
    client.request("PUT", f"/{quote(dbs.wmstats)}/odd", body={
        "type": "agent_request", "workflow": "w", "agent_url": "a", "timestamp": "soon"})
    rows = client.request("GET", f"/{quote(dbs.wmstats)}/_all_docs",
                          params={"include_docs": True})["rows"]
    reader = ProcessReader(client, dbs.wmstats, 7)
    try:
        items = [item for page in reader.pages() for item in page]
    finally:
        reader.close()
    # every row, in order: well-formed agent reports packed as the state packs them,
    # the rest (agent_info, design and malformed documents) as read
    assert len(items) == len(rows)
    packed = 0
    for (doc_id, item), row in zip(items, rows):
        if doc_id is None:
            assert item == row and pack_report(row["id"], row["doc"]) is None
        else:
            assert doc_id == row["id"] and item == pack_report(row["id"], row["doc"])
            packed += 1
    assert packed == sum(r["doc"].get("type") == "agent_request" for r in rows) - 1

    # a CouchDB error of the reader is raised as one
    reader = ProcessReader(client, dbs.wmstats + "_missing", 7)
    try:
        with pytest.raises(CouchError) as error:
            list(reader.pages())
        assert error.value.missing_database
    finally:
        reader.close()
    # a reader that dies says so
    reader = ProcessReader(client, dbs.wmstats, 1)
    try:
        reader._proc.kill()
        with pytest.raises(ReaderError, match="ended without an answer"):
            list(reader.pages())
    finally:
        reader.close()
    assert not _readers()


def test_stopping_during_a_load_ends_the_reader_process(client: CouchClient, dbs: Dbs) -> None:
    _seed(client, dbs, 30)
    with open_store("memory://") as store:
        source = _PausingSource(store, url=dbs.url, requests_db=dbs.requests,
                                wmstats_db=dbs.wmstats, reader_process=True,
                                **{**FAST, "batch_size": 5})
        with source:
            source.start()
            assert source.paused.wait(30)
            assert _readers()  # the agent database's reader
            source._stop.set()
            source.resume.set()
            assert source.stop(20)
            assert not source.ready and store.get_agents() == []
        assert not _readers()


def _delete_again_if_created(client: CouchClient, db: str) -> None:
    """Delete ``db`` again if it exists.

    pouchdb-server (not CouchDB) can create a deleted database again: a request that
    names it while the DELETE runs finds it in the list of databases, then opens it,
    which creates it empty; a source following it then sees an empty database and
    no error.
    """
    try:
        client.request("GET", f"/{db}")
    except CouchError as exc:
        if exc.status != 404:
            raise
        return
    client.request("DELETE", f"/{db}")


def test_a_deleted_database_is_loaded_again(client: CouchClient, dbs: Dbs) -> None:
    _seed(client, dbs, 10)
    # pouchdb-server keeps the feed of a deleted database open: idle_timeout or max_wait
    # end it, then the 404 shows
    with open_store("memory://") as store, _source(store, dbs, idle_timeout=1.0,
                                                   max_wait=1.0) as source:
        source.start()
        assert source.wait_ready(30)
        loaded = _store_content(store)
        client.request("DELETE", f"/{dbs.wmstats}")
        for _ in range(20):  # the source reports the missing database
            if source.status().errors > 0:
                break
            time.sleep(1.0)
            _delete_again_if_created(client, dbs.wmstats)
        assert source.status().errors > 0, "no error reported for the missing database"
        assert _store_content(store) == loaded  # still served meanwhile
        client.request("PUT", f"/{dbs.wmstats}")
        agent_docs = [d for d in MockGenerator(seed=SEED).iter_documents(10)
                      if d.get("type") in ("agent_request", "agent_info")]
        agent_docs[-1]["status"]["success"] = 123456
        client.request("POST", f"/{dbs.wmstats}/_bulk_docs", body={"docs": agent_docs})
        _wait(lambda: source.status().loads == 2, what="the reload")
        want, agents = _expected(client, dbs)
        _wait(lambda: _store_content(store) == (want, agents), what="the new documents")
        assert store.get(agent_docs[-1]["workflow"]).workflow.Success >= 123456  # type: ignore[union-attr]


# --------------------------------------------------------------------------- warm restart


def _more(n: int) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["status"]["success"] = doc["status"].get("success", 0) + n
    return change


def _all_jobs(store: Store, names: set[str]) -> dict[str, Any]:
    """The store's job records of these workflows (those that have some)."""
    return store.get_jobs(sorted(names))


def _jobsummaries(client: CouchClient, dbs: Dbs) -> list[dict[str, Any]]:
    return [d for d in _read_all(client, dbs.wmstats) if d.get("type") == "jobsummary"]


def test_warm_restart_resumes_from_the_kept_sequences(client: CouchClient, dbs: Dbs,
                                                      tmp_path: Path) -> None:
    _seed(client, dbs, 30, jobs=True)
    docs = list(MockGenerator(seed=SEED).iter_documents(30))
    requests_docs = [d for d in docs if "RequestName" in d]
    agent_docs = [d for d in docs if d.get("type") == "agent_request"]
    job_docs = _jobsummaries(client, dbs)
    assert len(job_docs) > 10
    # every workflow with job records, now or later (shown or not)
    job_names = {d["workflow"] for d in job_docs}
    url = f"sqlite:///{tmp_path}/wmstats.db"
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
        assert source.status().loads == 1 and source.status().resumes == 0
        kept = store.checkpoint()
        assert kept is not None and kept.source == source.identity
        assert dict(kept.sequences) == dict(source.status().sequences)
        assert _all_jobs(store, job_names) == _jobs_of(_read_all(client, dbs.wmstats))
    # While the server is down: a new priority, a new counter, a deleted request and
    # a deleted agent_request, new workflows, a jobsummary moved to another group
    # and a deleted one.
    _update(client, dbs.requests, requests_docs[0]["_id"],
            lambda d: d.update(RequestPriority=515151))
    _update(client, dbs.wmstats, agent_docs[0]["_id"], _more(999))
    _delete(client, dbs.requests, requests_docs[1]["_id"])
    _delete(client, dbs.wmstats, agent_docs[-1]["_id"])
    _update(client, dbs.wmstats, job_docs[0]["_id"],
            lambda d: d.update(state="jobcooloff", site="T3_XX_Down"))
    _delete(client, dbs.wmstats, job_docs[1]["_id"])
    _seed(client, dbs, 2, start=30)
    want, agents = _expected(client, dbs)
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
        status = source.status()
        # No full load: only the changes since the kept sequences were applied to the
        # kept snapshot (six changes, and the documents of the two new workflows).
        gen = MockGenerator(seed=SEED)
        changed = 6 + len(gen.documents(30)) + len(gen.documents(31))
        assert status.loads == 0 and status.resumes == 1 and status.last_load_seconds is None
        assert status.updates_applied == changed
        assert _store_content(store) == (want, agents)
        # The job records served are those of a full load of the current documents.
        # The table later changes update holds only the workflows the changes
        # touched (read back from the store, not from the jobsummary documents),
        # and those as a full load makes them.
        now_docs = _read_all(client, dbs.wmstats)
        full = _jobs_of(now_docs)
        assert _all_jobs(store, job_names) == full
        adopted = {j.RequestName: j for j in source._state.all_job_records()}
        assert adopted and adopted == {name: full[name] for name in adopted}
        assert job_docs[0]["workflow"] in adopted  # its jobsummary moved
        assert len(source._state.jobs) < len(_jobsummaries(client, dbs))
        seqs = {db: str(client.request("GET", f"/{db}")["update_seq"])
                for db in (dbs.requests, dbs.wmstats)}
        assert dict(status.sequences) == seqs
        assert source.sequences_for(store.snapshot_id) == seqs
        assert dict(store.checkpoint().sequences) == seqs  # type: ignore[union-attr]
        # It goes on following: a workflow no change touched so far is read from the
        # kept entries when its other agent's report changes.
        shared = next(d for d in agent_docs[1:-1] if sum(
            x.get("workflow") == d["workflow"] for x in agent_docs) > 1)
        _update(client, dbs.wmstats, shared["_id"], _more(31))
        want, agents = _expected(client, dbs)
        _wait(lambda: _store_content(store) == (want, agents), what="the live change")
        # Job changes after the restart: one moves to another group, a sample job is
        # deleted.  The records are what a source that loaded everything before
        # these two changes shows after them.
        reference = JobTable(source.job_options)
        for doc in _jobsummaries(client, dbs):
            reference.update(doc["_id"], doc, [])
        sampled = {s.JobName for j in full.values() for s in j.samples}
        moved = next(d for d in _jobsummaries(client, dbs)[2:] if d["_id"] not in sampled)
        gone = next(d for d in _jobsummaries(client, dbs)[2:]
                    if d["_id"] in sampled and d["workflow"] != moved["workflow"])
        moved = _update(client, dbs.wmstats, moved["_id"], lambda d: d.update(
            state="jobcooloff", site="T3_XX_Nowhere"))
        _delete(client, dbs.wmstats, gone["_id"])
        reference.update(moved["_id"], moved, [])
        reference.update(gone["_id"], None, [])
        expected_jobs = {j.RequestName: j for j in reference.all_jobs()}
        assert expected_jobs[moved["workflow"]] != full[moved["workflow"]]
        _wait(lambda: _all_jobs(store, job_names) == expected_jobs,
              what="the job changes after the restart")
        assert source.status().loads == 0
    # A third start resumes again, with nothing to apply: the job changes went to
    # the store with a checkpoint of their own.  Its job records are those of a full
    # load.
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
        assert source.status().resumes == 1 and source.status().updates_applied == 0
        assert _store_content(store) == (want, agents)
        assert _all_jobs(store, job_names) == _jobs_of(_read_all(client, dbs.wmstats))


def test_a_checkpoint_of_another_source_is_not_resumed(client: CouchClient, dbs: Dbs,
                                                       tmp_path: Path) -> None:
    _seed(client, dbs, 8)
    url = f"sqlite:///{tmp_path}/wmstats.db"
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
    # Other statuses shown: the kept state does not fit, everything is loaded.
    with open_store(url) as store, _source(store, dbs, statuses=["running-open"]) as source:
        source.start()
        assert source.wait_ready(60)
        assert source.status().loads == 1 and source.status().resumes == 0
        assert {b.workflow.RequestStatus for b in _store_content(store)[0].values()} <= {
            "running-open"}
    # Other job options: the kept job records were made with other ones.
    with open_store(url) as store, _source(store, dbs, statuses=["running-open"],
                                           job_samples=1) as source:
        source.start()
        assert source.wait_ready(60)
        assert source.status().loads == 1 and source.status().resumes == 0


def test_job_records_written_since_the_checkpoint_are_not_resumed(
        client: CouchClient, dbs: Dbs, tmp_path: Path) -> None:
    _seed(client, dbs, 12, jobs=True)
    job_names = {d["workflow"] for d in _jobsummaries(client, dbs)}
    url = f"sqlite:///{tmp_path}/wmstats.db"
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
    # Another writer drops a workflow's job records while the source is down: the
    # kept entries no longer match the stored job records, everything is loaded.
    with open_store(url) as store:
        store.apply_jobs(deletes=[sorted(job_names)[0]])
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
        assert source.status().loads == 1 and source.status().resumes == 0
        assert _all_jobs(store, job_names) == _jobs_of(_read_all(client, dbs.wmstats))


def test_refused_sequences_fall_back_to_a_full_load(client: CouchClient, dbs: Dbs,
                                                    tmp_path: Path) -> None:
    _seed(client, dbs, 10)
    url = f"sqlite:///{tmp_path}/wmstats.db"
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
    # The agent database is gone while the server is down (CouchDB answers 404 for
    # its changes, as it answers 400 for a sequence it does not know): the source
    # loads everything once the database is back, and does not resume.
    client.request("DELETE", f"/{dbs.wmstats}")
    with open_store(url) as store, _source(store, dbs) as source:
        source.start()
        _wait(lambda: source.status().errors > 0, what="the failed resume and load")
        assert not source.status().ready
        client.request("PUT", f"/{dbs.wmstats}")
        agent_docs = [d for d in MockGenerator(seed=SEED).iter_documents(10)
                      if d.get("type") in ("agent_request", "agent_info")]
        client.request("POST", f"/{dbs.wmstats}/_bulk_docs", body={"docs": agent_docs[:-1]})
        assert source.wait_ready(60)
        status = source.status()
        assert status.loads == 1 and status.resumes == 0
        want, agents = _expected(client, dbs)
        assert _store_content(store) == (want, agents)


# --------------------------------------------------------------------------- lifecycle, CLI


def test_stops_cleanly_and_runs_as_an_engine_plugin(dbs: Dbs, client: CouchClient) -> None:
    _seed(client, dbs, 5)
    bus = cherrypy.process.wspbus.Bus()
    with open_store("memory://") as store:
        source = open_source(dbs.source_url() + "&heartbeat=0.2", store)
        assert isinstance(source, CouchSource)
        SourcePlugin(bus, source).subscribe()
        bus.start()
        try:
            assert source.wait_ready(30) and store.count() == 5
            followers = {f"wmstats-couchdb-changes-{db}" for db in source.databases}
            _wait(lambda: followers <= {t.name for t in threading.enumerate()},
                  what="the feed threads")
        finally:
            start = time.monotonic()
            bus.exit()
        assert time.monotonic() - start < 5
        names = {t.name for t in threading.enumerate()}
        assert not any(n.startswith("wmstats-couchdb") for n in names)
        source.close()


def _parse(add: Callable[[argparse.ArgumentParser], None], argv: list[str]
           ) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_cache_server_command_with_a_source(dbs: Dbs, client: CouchClient) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = cli.main(["couch-seed", "--url", dbs.url, "--workflows", "6", "--requests-db",
                           dbs.requests, "--wmstats-db", dbs.wmstats, "--batch-size", "4"])
    assert status == 0, err.getvalue()
    assert "wrote 6 request" in err.getvalue()
    with contextlib.redirect_stderr(io.StringIO()) as again:
        assert cli.main(["couch-seed", "--url", dbs.url, "--workflows", "2", "--requests-db",
                         dbs.requests, "--wmstats-db", dbs.wmstats]) == 1
    assert "refused" in again.getvalue()

    args = _parse(serve.add_cache_server_arguments,
                  ["--port", "0", "--quiet", "--source", dbs.source_url()])
    out = io.StringIO()
    stop = threading.Event()
    result: list[int] = []

    def run() -> None:
        with contextlib.redirect_stdout(out):
            result.append(serve.run_cache_server(args, stop))

    thread = threading.Thread(target=run)
    thread.start()
    try:
        _wait(lambda: "wmstats cache server: http" in out.getvalue(), what="the server")
        url = out.getvalue().split("wmstats cache server: ")[1].split("/ ")[0]
        _wait(lambda: _get(url + "/healthz").status_code == 200, what="ready")
        assert _get(url + "/fetch").json()["total"] == 6
    finally:
        stop.set()
        thread.join(30)
    assert result == [0]

    with contextlib.redirect_stderr(io.StringIO()) as bad:
        args = _parse(serve.add_cache_server_arguments,
                      ["--port", "0", "--source", dbs.source_url(), "--mock", "5"])
        assert serve.run_cache_server(args) == 2
    assert "--source and --mock" in bad.getvalue()
    with contextlib.redirect_stderr(io.StringIO()) as bad:
        args = _parse(serve.add_cache_server_arguments,
                      ["--port", "0", "--source", "couchdb://localhost?nope=1"])
        assert serve.run_cache_server(args) == 2
    assert "unknown option 'nope'" in bad.getvalue()


def test_kept_status_histories_share_their_strings() -> None:
    # Requests read from CouchDB are parsed JSON: every status and DN of every
    # history step is its own string.  The state keeps one of each, and the
    # bundles still equal converting the documents at once.
    from wmstats_couchdb._state import SourceState

    gen = MockGenerator(seed=5)
    docs = [ujson.loads(ujson.dumps(gen.documents(i)[0])) for i in range(30)]
    state = SourceState(None)
    problems: list[Any] = []
    for doc in docs:
        state.update("req", doc["_id"], doc, problems, set(), set())
    bundles = list(state.bundles())
    assert bundles == list(convert_documents(docs).bundles) and not problems
    steps = [t for b in bundles for t in b.transitions]
    assert len(steps) > 100
    for attr in ("Status", "DN"):
        values = [getattr(t, attr) for t in steps]
        assert len({id(v) for v in values}) == len(set(values)) < len(values) / 3, attr


# --------------------------------------------------------------------------- job records


def _jobs_of(docs: list[Any]) -> dict[str, Any]:
    return {j.RequestName: j for j in convert_documents(docs).jobs}


def test_job_records_follow_jobsummary_documents(client: CouchClient, dbs: Dbs,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The full load stores the job records of every jobsummary document; changes,
    new documents and deletions (a deletion carries only the id) adjust them; a
    malformed document is reported and the rest served."""
    result = seed_couchdb(client, 30, seed=SEED, requests_db=dbs.requests,
                          wmstats_db=dbs.wmstats, batch_size=200, jobs=True)
    assert result.failed == 0 and result.jobsummaries > 20
    broken = {"_id": "broken-job", "type": "jobsummary", "workflow": "wf_broken",
              "task": "/wf_broken/T", "state": "jobfailed", "exitcode": "eighty",
              "errors": {"cmsRun1": "not a list"}}
    client.request("PUT", f"/{quote(dbs.wmstats)}/broken-job", body=broken)
    with open_store("memory://") as store, _source(store, dbs) as source:
        source.start()
        assert source.wait_ready(60)
        docs = _read_all(client, dbs.wmstats)
        want = _jobs_of(docs)
        assert len(want) > 5
        assert store.get_jobs(want) == want  # exactly: the same counts and samples
        assert store.jobs("wf_broken") is not None
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "broken-job: exitcode: expected an integer" in logged
        assert "broken-job: errors.cmsRun1: expected a list of errors" in logged

        jobs = [d for d in docs if d.get("type") == "jobsummary" and d["_id"] != "broken-job"]
        moved, gone = jobs[0], jobs[1]
        old_sid = store.jobs_snapshot_id
        _update(client, dbs.wmstats, moved["_id"], lambda d: d.update(
            state="jobcooloff", site="T3_XX_Nowhere"))
        _delete(client, dbs.wmstats, gone["_id"])
        fresh = {**jobs[2], "_id": "new-job-1", "site": "T2_NEW_Site", "exitcode": 71304}
        fresh.pop("_rev", None)
        client.request("PUT", f"/{quote(dbs.wmstats)}/new-job-1", body=fresh)

        def groups() -> dict[str, Any]:
            return {n: j.groups for n, j in store.get_jobs(want).items()}

        now_docs = _read_all(client, dbs.wmstats)
        expected = {n: j.groups for n, j in _jobs_of(now_docs).items()}
        _wait(lambda: groups() == expected, what="the job changes")
        assert store.jobs_snapshot_id != old_sid
        sites = {g.Site for g in store.jobs(moved["workflow"]).groups}  # type: ignore[union-attr]
        assert "T3_XX_Nowhere" in sites
        current = {d["_id"]: d for d in now_docs}
        for name, item in store.get_jobs(want).items():
            for sample in item.samples:  # samples are current documents of their group
                doc = current[sample.JobName]
                assert ujson.loads(sample.Document) == doc
                assert (doc["workflow"], doc["task"], doc.get("site", "")) == (
                    name, sample.Task, sample.Site)
