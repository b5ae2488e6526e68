"""The WMCore-compatible API over HTTP (:mod:`wmstats.web.wmcore`), on a real CherryPy
server: reqmon's envelope, negotiation and gzip, the whitelist of every parameter,
the safety rule of the lists WMCore services delete by, and WMCore's own client
(``WMCore.Services.WMStatsServer``) calling it as its callers do (``reqmon`` marker).

What the answers hold is checked against reqmon's own rules run on the mock
documents the store was filled from (``wmcore_request_rules``); reqmon itself, on
the same CouchDB data, is compared in ``test_wmcore_differential.py``.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import json
import random
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from wmstats_couchdb._http import CouchClient
from wmstats_couchdb.seed import seed_couchdb

import wmstats
from wmstats import wmcore
from wmstats.jobdetail import jobdetail
from wmstats.mock import MockGenerator
from wmstats.serve import _application
from wmstats.testing.couchdb_server import PouchServer, free_port
from wmstats.testing.fixtures import require_pouchdb_bin
from wmstats.testing.reqmon import WMCoreClientError, wmcore_client_calls, wmcore_request_rules
from wmstats.web import CacheApp, WebServer, WMCoreApp
from wmstats.web import wmcore as wmcore_web
from wmstats.web.wmcore import APIS, DEFAULT_PREFIX

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")

WORKFLOWS = 160
SEED = 11


@attrs.frozen
class Served:
    """A cache server with the WMCore-compatible API, and the documents it holds."""

    url: str  # http://127.0.0.1:P/wmstatsserver (what WMCore's client takes)
    app: CacheApp
    cache: dict[str, dict[str, Any]]  # reqmon's cache of the documents, by name
    requests: dict[str, dict[str, Any]]  # every request document, by name
    agent_requests: dict[str, list[dict[str, Any]]]

    @property
    def data(self) -> str:
        return self.url + "/data"


def _cache_of(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any],
                                                   dict[str, list[dict[str, Any]]]]:
    agents: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for doc in docs:
        if doc.get("type") == "agent_request":
            agents[doc["workflow"]].append(doc)
    requests_ = {d["RequestName"]: d for d in docs if "RequestName" in d}
    cache = {}
    for name, doc in requests_.items():
        if doc["RequestStatus"] in wmcore.CACHE_STATUSES:
            entry = dict(doc)
            if doc["RequestStatus"] in wmcore.JOB_INFO_STATUSES and agents[name]:
                entry["AgentJobInfo"] = {a["agent_url"]: a for a in agents[name]}
            cache[name] = entry
    return cache, requests_, dict(agents)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    docs = list(MockGenerator(seed=SEED).iter_documents(WORKFLOWS))
    cache, requests_, agents = _cache_of(docs)
    app = CacheApp(mock=WORKFLOWS, mock_seed=SEED)
    try:
        with WebServer(_application(app)) as server:
            yield Served(server.url + "/wmstatsserver", app, cache, requests_, agents)
    finally:
        app.close()


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=60)


def _result(response: requests.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    value: list[Any] = response.json()["result"]
    return value


def _rows_by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_name = {row["RequestName"]: row for row in rows}
    assert len(by_name) == len(rows)
    return by_name


def _multiset(value: Any) -> Any:
    if isinstance(value, list):
        return collections.Counter(json.dumps(v, sort_keys=True) for v in value)
    return value


def _refused(response: requests.Response, status: int, parameter: str | None = None) -> str:
    """A JSON error with reqmon's X-Error headers; returns its detail."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Error-Http"] == str(status)
    assert response.headers["X-Error-Detail"]
    doc = response.json()
    assert "Traceback" not in response.text
    if parameter is not None:
        assert doc["parameter"] == parameter, doc
    detail: str = doc["detail"]
    return detail


# --------------------------------------------------------------------------- envelope


def test_envelope_is_wmcore_rests(served: Served) -> None:
    response = _get(served.data + "/teams", Accept="application/json")
    assert response.status_code == 200
    teams = wmcore.agent_teams(served.app.store.get_agents())
    assert response.content == ('{"result": [\n ' + "\n,".join(json.dumps(t) for t in teams)
                                + "\n]}\n").encode()
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Rest-Status"] == "100"
    assert response.headers["ETag"]
    assert "no-store" in response.headers["Cache-Control"]
    assert _result(_get(served.data + "/info")) == [f"version: {wmstats.__version__}"]
    # An empty list has the same layout.
    empty = _get(served.data + "/filtered_requests?RequestStatus=normal-archived")
    assert empty.content == b'{"result": [\n]}\n'


def test_every_api_is_listed_and_documented(served: Served) -> None:
    docs = (Path(__file__).parent.parent / "docs" / "wmcore-compat.md").read_text()
    for name in APIS:
        assert f"`{name}" in docs, name
    for key in wmcore.REQUEST_KEYS:
        assert f"`{key}`" in docs, key
    detail = _refused(_get(served.data + "/nosuchapi"), 404)
    assert all(name in detail for name in APIS)


def test_gzip_text_plain_head_and_etags(served: Served) -> None:
    plain = _get(served.data + "/requestcache")
    zipped = _get(served.data + "/requestcache", **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.content == plain.content  # requests decoded it
    raw = requests.get(served.data + "/globallocks", headers={"Accept-Encoding": "gzip"},
                       stream=True, timeout=60)
    with raw:
        body = gzip.decompress(raw.raw.read())
    assert json.loads(body)["result"] == plain_locks(served)
    # text/plain is pretty JSON, as reqmon's PrettyJSONFormat
    pretty = _get(served.data + "/globallocks", Accept="text/plain")
    assert pretty.headers["Content-Type"].startswith("text/plain")
    assert json.loads(pretty.text) == json.loads(body)
    rows = "/filtered_requests?mask=SiteWhitelist"
    indented = _get(served.data + rows, Accept="text/plain").text
    assert "\n  " in indented and json.loads(indented) == _get(served.data + rows).json()
    # JSON first for */* (reqmon answers text/plain first: see the docs)
    assert _get(served.data + "/globallocks", Accept="*/*").headers["Content-Type"] == (
        "application/json")
    _refused(_get(served.data + "/teams", Accept="text/plain"), 406)  # JSON only, as reqmon
    # ETag per snapshot and question; 304 when it matches
    tag = plain.headers["ETag"]
    again = _get(served.data + "/requestcache", **{"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert _get(served.data + "/requestcache?x=1").status_code == 400
    other = _get(served.data + "/filtered_requests?mask=RequestType")
    assert other.headers["ETag"] != tag
    head = requests.head(served.data + "/requestcache", timeout=60)
    assert head.status_code == 200 and head.content == b""


def plain_locks(served: Served) -> list[str]:
    return _result(_get(served.data + "/globallocks"))


# --------------------------------------------------------------------------- answers


@pytest.fixture(scope="module")
def rules(served: Served, reqmon_python: Path) -> dict[str, Any]:
    """reqmon's own rules on the documents the store holds."""
    return wmcore_request_rules(served.cache, list(wmcore.REQUEST_KEYS),
                                [{"RequestType": "StepChain", "ParentageResolved": "false"},
                                 {"RequestStatus": "running-open"},
                                 {"RequestStatus": "acquired"}], python=reqmon_python)


@pytest.mark.reqmon
def test_lists_equal_reqmons_rules_on_the_documents(served: Served,
                                                    rules: dict[str, Any]) -> None:
    assert rules["errors"] == {}
    locks = [v for name in served.cache for v in rules["global_locks"][name]]
    assert collections.Counter(plain_locks(served)) == collections.Counter(locks)
    lfns = [v for name in served.cache for v in rules["lfn_bases"][name]]
    got = _result(_get(served.data + "/protectedlfns"))
    assert collections.Counter(got) == collections.Counter(lfns)
    final = [v for name in served.cache for v in rules["protected_lfns"][name]]
    got_final = _result(_get(served.data + "/protectedlfns_final"))
    assert collections.Counter(got_final) == collections.Counter(final)
    # the mock has transient outputs: protectedlfns lists more than protectedlfns_final
    assert set(got_final) < set(got)
    masked = _rows_by_name(_result(_get(
        served.data + "/filtered_requests?mask=" + "&mask=".join(wmcore.REQUEST_KEYS))))
    assert set(masked) == set(served.cache)
    for name, row in masked.items():
        assert list(row) == list(wmcore.REQUEST_KEYS)
        for key, value in row.items():
            theirs = rules["get"][name][key]
            if key == "AgentJobInfo" and theirs:
                theirs = {u: {k: v for k, v in d.items() if k not in ("_id", "_rev", "agent")}
                          for u, d in theirs.items()}
                for d in theirs.values():
                    for t in d["tasks"].values():
                        for s in t.get("sites", {}).values():
                            s.pop("dataset", None)
            assert _multiset(value) == _multiset(theirs), (name, key)


def test_order_is_reqmons_cache_order(served: Served) -> None:
    rows = _result(_get(served.data + "/filtered_requests?mask=RequestStatus"))
    order = [(wmcore.CACHE_STATUSES.index(r["RequestStatus"]), r["RequestName"]) for r in rows]
    assert order == sorted(order)
    (cache,) = _result(_get(served.data + "/requestcache"))
    assert list(cache) == [r["RequestName"] for r in rows]
    statuses = {doc["RequestStatus"] for doc in cache.values()}
    assert statuses <= set(wmcore.CACHE_STATUSES)
    assert all(("AgentJobInfo" in doc) == (doc["RequestStatus"] in wmcore.JOB_INFO_STATUSES
                                           and bool(served.agent_requests.get(name)))
               for name, doc in cache.items())


def test_request_and_isfinished(served: Served) -> None:
    archived = [n for n, d in served.requests.items() if d["RequestStatus"].endswith("archived")]
    acquired = next(n for n, d in served.requests.items()
                    if d["RequestStatus"] == "acquired" and served.agent_requests.get(n))
    for name in (*archived[:1], acquired):
        (doc,) = _result(_get(served.data + "/request/" + urllib.parse.quote(name)))
        assert list(doc) == [name]
        entry = doc[name]
        assert entry["RequestStatus"] == served.requests[name]["RequestStatus"]
        # AgentJobInfo for any status, unlike the cache
        assert ("AgentJobInfo" in entry) == bool(served.agent_requests.get(name))
        (finished,) = _result(_get(served.data + "/isfinished/" + urllib.parse.quote(name)))
        assert finished is wmcore.is_finished(served.app.store.get(name))  # type: ignore[arg-type]
    assert archived
    assert _result(_get(served.data + "/request/no-such-request")) == [{}]
    assert _result(_get(served.data + "/request/%E2%9C%93%20%22x%22")) == [{}]
    done = [n for n, d in served.requests.items() if d["RequestStatus"] == "completed"]
    assert any(_result(_get(served.data + "/isfinished/" + n)) == [True] for n in done)
    detail = _refused(_get(served.data + "/isfinished/no-such-request"), 404)
    assert detail == "Cannot find request: no-such-request"


def _with_jobs() -> list[int]:
    gen = MockGenerator(seed=SEED)
    return [i for i in range(WORKFLOWS) if gen.job_documents(i)]


def test_jobdetail(served: Served) -> None:
    """reqmon's shape (docs/wmcore-compat.md; tests/test_jobdetail_reqmon.py compares it
    with reqmon's): every group of the workflow's jobsummary documents, with at most
    sample_size of its documents and the group's count."""
    gen = MockGenerator(seed=SEED)
    with_jobs = _with_jobs()
    assert len(with_jobs) > 5
    for i in with_jobs[:12]:
        name = gen.workflow_name(i)
        documents = {d["_id"]: d for d in gen.job_documents(i)}
        counts = collections.Counter((d["task"], d["state"], str(d["exitcode"]), d["site"])
                                     for d in documents.values())
        for size in (None, 0, 2, 50):
            query = "" if size is None else f"?sample_size={size}"
            (item,) = _result(_get(served.data + "/jobdetail/" + urllib.parse.quote(name)
                                   + query))
            assert item == jobdetail(served.app.store.jobs(name), 1 if size is None else size)
            if size == 0:
                assert item == {}
                continue
            assert list(item) == [name]
            seen = collections.Counter()
            for task, states in item[name].items():
                for state, codes in states.items():
                    for code, sites in codes.items():
                        for site, group in sites.items():
                            key = (task, state, code, site)
                            assert group["errorCount"] == counts[key], key
                            assert 1 <= len(group["samples"]) <= (size or 1)
                            for doc in group["samples"]:
                                assert doc == documents[doc["_id"]]
                            seen[key] += 1
            assert set(seen) == set(counts), name  # every group, none made up
    no_jobs = next(gen.workflow_name(i) for i in range(WORKFLOWS) if i not in with_jobs)
    for name in (no_jobs, "no-such-workflow", "%E2%9C%93%20x"):
        assert _result(_get(served.data + "/jobdetail/" + name)) == [{}]
    # text/plain is pretty JSON, as reqmon's PrettyJSONFormat
    name = gen.workflow_name(with_jobs[0])
    pretty = _get(served.data + "/jobdetail/" + name, Accept="text/plain")
    assert pretty.headers["Content-Type"].startswith("text/plain")
    assert json.loads(pretty.text) == _get(served.data + "/jobdetail/" + name).json()


def test_jobdetail_etag_follows_the_job_records() -> None:
    gen = MockGenerator(seed=SEED)
    i = _with_jobs()[0]
    name = gen.workflow_name(i)
    with WMCoreApp(store="memory://") as app, WebServer(
            wmcore_web.build_application(app)) as server:
        app.store.replace(gen.bundles(1, start=i), gen.agents())
        app.store.replace_jobs([gen.jobs(i)])
        first = _get(f"{server.url}/jobdetail/{name}")
        tag = first.headers["ETag"]
        assert _get(f"{server.url}/jobdetail/{name}",
                    **{"If-None-Match": tag}).status_code == 304
        app.store.apply_jobs(deletes=[name])
        after = _get(f"{server.url}/jobdetail/{name}", **{"If-None-Match": tag})
        assert after.status_code == 200 and after.headers["ETag"] != tag
        assert _result(after) == [{}] and _result(first) != [{}]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("path", "status", "parameter"), [
    ("/info?x=1", 400, "x"),
    ("/requestcache?x=1", 400, "x"),
    ("/globallocks?mask=InputDataset", 400, "mask"),
    ("/teams/production", 404, None),
    ("/request", 400, "request_name"),
    ("/isfinished", 400, "request_name"),
    ("/request/a/b", 400, "request_name"),
    ("/filtered_requests?Bogus=1", 400, "Bogus"),
    ("/filtered_requests?mask=Bogus", 400, "mask"),
    ("/filtered_requests?mask=", 400, "mask"),
    ("/filtered_requests?RequestPriority=63000", 400, "RequestPriority"),
    ("/filtered_requests?TotalEstimatedJobs=1", 400, "TotalEstimatedJobs"),
    ("/filtered_requests?ChainParentageMap=x", 400, "ChainParentageMap"),
    ("/filtered_requests?ParentageResolved=0", 400, "ParentageResolved"),
    ("/filtered_requests?ParentageResolved=true&ParentageResolved=false", 400,
     "ParentageResolved"),
    ("/filtered_requests?AgentJobInfo=yes", 400, "AgentJobInfo"),
    ("/filtered_requests?RequestStatus=%ff", 400, None),
    ("/filtered_requests?" + "x" * 20_000, 414, None),
    ("/jobdetail", 400, "request_name"),
    ("/jobdetail/a/b", 400, "request_name"),
    ("/jobdetail/x?sample_size=a", 400, "sample_size"),
    ("/jobdetail/x?sample_size=-1", 400, "sample_size"),
    ("/jobdetail/x?sample_size=", 400, "sample_size"),
    ("/jobdetail/x?sample_size=1.5", 400, "sample_size"),
    ("/jobdetail/x?sample_size=99999999", 400, "sample_size"),
    ("/jobdetail/x?sample_size=1&sample_size=2", 400, "sample_size"),
    ("/jobdetail/x?task=y", 400, "task"),
    ("", 404, None),
    ("/", 404, None),
])
def test_bad_input_is_refused_by_name(served: Served, path: str, status: int,
                                      parameter: str | None) -> None:
    response = _get(served.data + path)
    if status == 414:
        assert response.status_code == 414 and "Traceback" not in response.text
        return
    if path.endswith("%ff"):
        assert response.status_code == 400 and response.json()["error"] == "bad_request"
        return
    detail = _refused(response, status, parameter)
    if parameter in ("Bogus", "RequestPriority"):
        assert "RequestStatus" in detail and "SiteWhitelist" in detail  # the supported keys
    if parameter == "mask" and "filtered_requests" in path:
        assert "ChainParentageMap" in detail  # the supported masks


def test_methods_and_unacceptable_types(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = requests.request(method, served.data + "/globallocks", data=b"x",
                                    timeout=30)
        assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
    _refused(_get(served.data + "/info", Accept="application/xml"), 406)


def test_no_input_gets_a_server_error(served: Served) -> None:
    """Random keys, masks, values and paths: every answer is 200 or a 4xx JSON error."""
    rnd = random.Random(5)
    keys = [*wmcore.REQUEST_KEYS, "mask", "Bogus", "", "RequestName[]", "ä", "_id"]
    values = ["", "true", "FALSE", "CLEANED", "running-open", "0", "%", "ä", "[", "*", "x" * 300]
    for _ in range(120):
        params = [(rnd.choice(keys), rnd.choice(values)) for _ in range(rnd.randrange(4))]
        response = _get(served.data + "/filtered_requests?" + urllib.parse.urlencode(params))
        assert response.status_code in (200, 400), (params, response.text)
        if response.status_code == 400:
            assert response.json()["parameter"] in {k for k, _v in params}
    for path in ("request/%00", "isfinished/..%2F..", "request/" + "ü" * 500, "teams/",
                 "proc_status/x", "%ff"):
        response = _get(served.data + "/" + path)
        assert response.status_code < 500, (path, response.text)


# --------------------------------------------------------------------------- safety


def test_empty_store_answers_503_to_the_lists() -> None:
    with WMCoreApp(store="memory://") as app, WebServer(
            wmcore_web.build_application(app)) as server:
        for api in ("globallocks", "protectedlfns", "protectedlfns_final"):
            response = _get(f"{server.url}/{api}")
            assert _refused(response, 503).startswith("no active request")
            assert response.headers["X-Error-Detail"] == "DataCache is Empty"
            assert response.headers["Retry-After"]
        assert _result(_get(server.url + "/filtered_requests?mask=RequestType")) == []
        assert _result(_get(server.url + "/requestcache")) == [{}]


@contextlib.contextmanager
def _sourced(port: int, stale_after: float) -> Iterator[tuple[CacheApp, str]]:
    """A cache server whose source reads pouchdb-server on ``port`` (maybe not up)."""
    source = (f"couchdb://127.0.0.1:{port}?requests_db=req_db&wmstats_db=wms_db&"
              f"retry_initial=0.05&retry_max=0.3&heartbeat=0.2&idle_timeout=0.6&max_wait=1")
    app = CacheApp(source=source)
    try:
        with WebServer(_application(app, stale_after)) as server:
            yield app, server.url + DEFAULT_PREFIX
    finally:
        app.close()


def _wait(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


GUARDED = ("globallocks", "protectedlfns", "protectedlfns_final",
           "filtered_requests?RequestType=StepChain&ParentageResolved=false"
           "&mask=ChainParentageMap")


def test_lists_refused_until_loaded_and_when_stale() -> None:
    """Before the first load every data API answers 503; once loaded they answer; when
    upstream has been silent for longer than ``stale_after`` the guarded lists answer
    503 again (the others still answer, from the last data)."""
    require_pouchdb_bin()
    port = free_port()
    with _sourced(port, stale_after=1.0) as (app, url):
        assert app.source is not None
        _wait(lambda: app.source is not None and app.source.status().errors > 0, "failure")
        for api in (*GUARDED, "requestcache", "teams", "request/x", "isfinished/x"):
            response = _get(f"{url}/{api}")
            assert _refused(response, 503).startswith("the data source has not finished")
            assert response.headers["X-Error-Detail"] == "DataCache is Empty"
        assert _get(url + "/info").status_code == 200
        with PouchServer(port=port, in_memory=False) as couch:
            client = CouchClient(couch.url)
            try:
                seed_couchdb(client, 30, seed=SEED, requests_db="req_db", wmstats_db="wms_db")
            finally:
                client.close()
            _wait(lambda: _get(url + "/globallocks").status_code == 200, "a load")
            for api in GUARDED:
                assert _get(f"{url}/{api}").status_code == 200, api
            couch.kill()
            _wait(lambda: _get(url + "/globallocks").status_code == 503, "staleness", 30)
            for api in GUARDED:
                response = _get(f"{url}/{api}")
                assert "may be stale" in _refused(response, 503), api
                assert response.headers["X-Error-Detail"] == "DataCache is stale"
            assert _get(url + "/requestcache").status_code == 200
            couch.restart()
            _wait(lambda: _get(url + "/globallocks").status_code == 200, "the way back")


# --------------------------------------------------------------------------- WMCore's client


@pytest.mark.reqmon
def test_wmcore_client_as_its_callers_call_it(served: Served, rules: dict[str, Any],
                                              reqmon_python: Path) -> None:
    site_lists = ["SiteWhitelist", "SiteBlacklist"]
    heartbeat = ["RequestStatus", "RequestType", "RequestPriority", "Campaign",
                 "RequestNumEvents"]
    running = next(n for n, d in served.cache.items() if d["RequestStatus"] == "running-open"
                   and served.agent_requests.get(n))
    gen = MockGenerator(seed=SEED)
    failing = next(gen.workflow_name(i) for i in _with_jobs() if max(collections.Counter(
        (d["task"], d["state"], d["exitcode"], d["site"])
        for d in gen.job_documents(i)).values()) > 1)  # sample_size 3 shows more
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("getFilteredActiveData", [{"RequestStatus": "running-open"}, site_lists], {}),
        ("getFilteredActiveData", [{"RequestStatus": "acquired"}, site_lists], {}),
        ("getFilteredActiveData", [{}, heartbeat], {}),
        ("getChildParentDatasetMap", [], {}),
        ("getProtectedLFNs", [], {}),
        ("getGlobalLocks", [], {}),
        ("getActiveData", [], {}),
        ("_getResult", ["teams"], {}),
        ("_getResult", [f"request/{running}"], {}),
        ("_getResult", [f"isfinished/{running}"], {}),
        ("getFilteredActiveData", [{"Bogus": "1"}, ["RequestType"]], {}),
        ("_getResult", [f"jobdetail/{failing}"], {}),
        ("_getResult", [f"jobdetail/{failing}"], {"args": {"sample_size": 3}}),
        ("_getResult", [f"jobdetail/{failing}"], {"args": {"sample_size": "x"}}),
    ]
    results = wmcore_client_calls(served.url, calls, python=reqmon_python)
    (open_, acquired, beat, parentage, lfns, locks, active, teams, request, finished,
     bogus, detail, detail3, bad_size) = results
    for result, status in ((open_, "running-open"), (acquired, "acquired")):
        want = {n: {"SiteWhitelist": d["SiteWhitelist"], "SiteBlacklist": d["SiteBlacklist"],
                    "RequestName": n}
                for n, d in served.cache.items() if d["RequestStatus"] == status}
        assert want and _rows_by_name(result.unwrap()) == want
    rows = _rows_by_name(beat.unwrap())
    assert set(rows) == set(served.cache)
    for name, row in rows.items():
        assert list(row) == [*heartbeat, "RequestName"]
        for key in heartbeat:
            assert _multiset(row[key]) == _multiset(rules["get"][name][key]), (name, key)
    want_map = {}
    for name, entry in served.cache.items():
        if rules["matches"][name][0]:
            for link in entry["ChainParentageMap"].values():
                if link["ParentDset"]:
                    want_map.update(dict.fromkeys(link["ChildDsets"], link["ParentDset"]))
    assert want_map and parentage.unwrap() == want_map
    assert sorted(lfns.unwrap()) == sorted({v for n in served.cache
                                            for v in rules["lfn_bases"][n]})
    assert collections.Counter(locks.unwrap()) == collections.Counter(
        v for n in served.cache for v in rules["global_locks"][n])
    assert set(active.unwrap()) == set(served.cache)
    assert teams.unwrap() == wmcore.agent_teams(served.app.store.get_agents())
    (doc,) = request.unwrap()
    assert set(doc[running]["AgentJobInfo"]) == {a["agent_url"]
                                                 for a in served.agent_requests[running]}
    assert finished.unwrap() in ([True], [False])
    assert isinstance(bogus.error, WMCoreClientError) and bogus.error.status == 400
    jobs = served.app.store.jobs(failing)
    assert detail.unwrap() == [jobdetail(jobs, 1)] and detail.unwrap() != [{}]
    assert detail3.unwrap() == [jobdetail(jobs, 3)] != detail.unwrap()
    assert isinstance(bad_size.error, WMCoreClientError) and bad_size.error.status == 400
    # bin/check-ACDC-parentage: a plain GET with Accept: application/json
    response = _get(served.data + "/filtered_requests?mask=OutputDatasets&mask=RequestType",
                    Accept="application/json")
    assert set(_rows_by_name(_result(response))) == set(served.cache)


@pytest.mark.reqmon
def test_wmcore_client_raises_when_the_lists_are_unsafe(reqmon_python: Path) -> None:
    """MSUnmerged and MSRuleCleaner never get an empty or stale list: WMCore's client
    raises on wmstats' 503, before the first load and when upstream is silent."""
    require_pouchdb_bin()
    port = free_port()
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("getGlobalLocks", [], {}), ("getProtectedLFNs", [], {}),
        ("getChildParentDatasetMap", [], {}),
        ("getFilteredActiveData", [{"RequestStatus": "running-open"},
                                   ["SiteWhitelist", "SiteBlacklist"]], {}),
        ("_getResult", ["protectedlfns_final"], {})]
    with _sourced(port, stale_after=1.0) as (app, url):
        base = url.rsplit("/data", 1)[0]
        for result in wmcore_client_calls(base, calls, python=reqmon_python):
            assert result.error is not None and result.error.status == 503, result
            assert result.error.headers.get("X-Error-Detail") == "DataCache is Empty"
        with PouchServer(port=port, in_memory=False) as couch:
            client = CouchClient(couch.url)
            try:
                seed_couchdb(client, 20, seed=SEED, requests_db="req_db", wmstats_db="wms_db")
            finally:
                client.close()
            _wait(lambda: _get(url + "/globallocks").status_code == 200, "a load")
            assert all(r.ok for r in wmcore_client_calls(base, calls, python=reqmon_python))
            couch.kill()
            _wait(lambda: _get(url + "/globallocks").status_code == 503, "staleness", 30)
            for result in wmcore_client_calls(base, calls, python=reqmon_python):
                assert result.error is not None and result.error.status == 503, result
                assert result.error.headers.get("X-Error-Detail") == "DataCache is stale"


def _raw(url: str, request: bytes) -> bytes:
    """The whole answer to ``request`` sent as is to the server of ``url``."""
    import socket

    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def test_hostile_input_is_a_json_4xx_or_an_answer(served: Served) -> None:
    """Values beyond the query model's bounds are matched like any other (they
    made the streamed reply fail after its head), a path that is not UTF-8 and
    what CherryPy refuses before dispatch are JSON errors, cookies are ignored."""
    name = next(iter(served.cache))
    for params in ([("RequestName", "a" * 1001)], [("RequestName", "ü" * 1001)],
                   [("RequestName", "a")] * 1001 + [("RequestName", name)]):
        response = _get(served.data + "/filtered_requests?" + urllib.parse.urlencode(params),
                        **{"Accept-Encoding": "gzip"})
        rows = _result(response)  # gzip decoded whole: the stream was not cut
        assert [row["RequestName"] for row in rows] == (
            [name] if ("RequestName", name) in params else [])
    detail = _refused(_get(served.data + "/request/%ff"), 400)
    assert "UTF-8" in detail
    prefix = urllib.parse.urlsplit(served.data).path
    raw = _raw(served.data, f"GET {prefix}/info HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == "bad_request" and b"Traceback" not in body
    raw = _raw(served.data, f"GET {prefix}/info HTTP/1.1\r\nHost: x\r\nCookie: a=b; $Foo=1\r\n"
                            f"Connection: close\r\n\r\n".encode())
    assert raw.startswith(b"HTTP/1.1 200")
