"""The real reqmon 2.4.5.9 and wmstats on the same CouchDB data, every API compared.

pouchdb-server holds mock documents of every status (archived ones included) and
type (TaskChain, StepChain and the others, data pileup, transient outputs, the
failed jobs' jobsummary documents); reqmon
fills its cache from them, wmstats' CouchDB source fills a store from them, and the
same queries go to both ``/wmstatsserver/data/*``.  Lists whose order reqmon does
not define (chain values merged in a set, CouchDB's collation) are compared as
multisets; the request documents key by key, over the keys wmstats rebuilds
(``docs/wmcore-compat.md`` lists the ones it does not carry).  The documented
differences are asserted as differences.

``WMSTATS_WMCORE_DIFF_WORKFLOWS`` sets the number of mock workflows (default 150;
CI keeps it small).  The run's size (APIs x queries, values compared, mismatches)
is printed, and written as JSON to ``$WMSTATS_WMCORE_DIFF_REPORT`` when set.
"""

from __future__ import annotations

import collections
import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from wmstats_couchdb._http import CouchClient, quote, split_server_url

from wmstats import wmcore
from wmstats.mock import MockGenerator
from wmstats.serve import _application
from wmstats.testing.couchdb_server import CouchDatabase, CouchServer
from wmstats.testing.reqmon import ReqmonServer, seed_mock
from wmstats.web import CacheApp, WebServer

pytestmark = [pytest.mark.reqmon, pytest.mark.usefixtures("quiet_cherrypy")]

WORKFLOWS = int(os.environ.get("WMSTATS_WMCORE_DIFF_WORKFLOWS", "150"))
SEED = 0
#: Every ReqMgr2 status (WMCore's REQUEST_STATE_LIST).
ALL_STATUSES = (*wmcore.CACHE_STATUSES, "normal-archived", "aborted-archived",
                "rejected-archived")


@attrs.define
class Tally:
    """How much was compared: (API, query) pairs and values, and what differed."""

    queries: collections.Counter[str] = attrs.field(factory=collections.Counter)
    values: int = 0
    mismatches: list[str] = attrs.field(factory=list)
    differences: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def same(self, what: str, ours: Any, theirs: Any) -> None:
        self.values += 1
        if ours != theirs:
            self.mismatches.append(f"{what}: wmstats {str(ours)[:300]} != reqmon "
                                   f"{str(theirs)[:300]}")


@attrs.frozen
class Pair:
    """The two servers on one data set."""

    reqmon: ReqmonServer
    wmstats: str  # http://127.0.0.1:P/wmstatsserver/data
    requests: dict[str, dict[str, Any]]
    agent_requests: dict[str, list[dict[str, Any]]]
    tally: Tally
    failing: list[str]  # the workflows with jobsummary documents


def _client(url: str) -> CouchClient:
    base, auth = split_server_url(url)
    return CouchClient(base, auth=auth)


def _all_docs(client: CouchClient, db: str) -> list[dict[str, Any]]:
    answer = client.request("GET", f"/{quote(db)}/_all_docs", params={"include_docs": "true"})
    return [row["doc"] for row in answer["rows"] if not row["id"].startswith("_design/")]


@pytest.fixture(scope="module")
def pair(couchdb_server: CouchServer, reqmon_python: Path) -> Iterator[Pair]:
    database = CouchDatabase(couchdb_server, "wmstats_diff_" + uuid.uuid4().hex[:12])
    reqmgr_db, wmstats_db = database.name + "_req", database.name + "_wms"
    tally = Tally()
    try:
        seed_mock(couchdb_server.url, WORKFLOWS, seed=SEED, reqmgr_db=reqmgr_db,
                  wmstats_db=wmstats_db, jobs=True)
        gen = MockGenerator(seed=SEED)
        present = {gen.documents(i)[0]["RequestStatus"] for i in range(WORKFLOWS)}
        i = WORKFLOWS
        while not present >= set(ALL_STATUSES):  # one more of each missing status
            assert i < 100 * WORKFLOWS, present
            status = gen.documents(i)[0]["RequestStatus"]
            if status not in present:
                seed_mock(couchdb_server.url, 1, seed=SEED, start=i, reqmgr_db=reqmgr_db,
                          wmstats_db=wmstats_db, agent_info=False)
                present.add(status)
            i += 1
        client = _client(couchdb_server.url)
        try:
            requests_ = {d["RequestName"]: d for d in _all_docs(client, reqmgr_db)}
            agents: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
            failing: set[str] = set()
            for doc in _all_docs(client, wmstats_db):
                if doc.get("type") == "agent_request":
                    agents[doc["workflow"]].append(doc)
                elif doc.get("type") == "jobsummary":
                    failing.add(doc["workflow"])
        finally:
            client.close()
        source = (f"couchdb://{couchdb_server.url.split('://', 1)[1]}?requests_db={reqmgr_db}"
                  f"&wmstats_db={wmstats_db}&statuses=*")
        app = CacheApp(source=source)
        try:
            assert app.source is not None and app.source.wait_ready(300)
            with ReqmonServer(couchdb_server.url, reqmgr_db=reqmgr_db, wmstats_db=wmstats_db,
                              python=reqmon_python, all_views=False) as reqmon, \
                    WebServer(_application(app)) as server:
                yield Pair(reqmon, server.url + "/wmstatsserver/data", requests_, dict(agents),
                           tally, sorted(failing))
        finally:
            app.close()
    finally:
        database.delete_all()
        _report(tally)


def _report(tally: Tally) -> None:
    summary = {"workflows": WORKFLOWS, "apis": len(tally.queries),
               "queries": sum(tally.queries.values()), "queries_by_api": dict(tally.queries),
               "values_compared": tally.values, "mismatches": len(tally.mismatches),
               "documented_differences": dict(tally.differences)}
    print("\nwmcore differential:", json.dumps(summary))
    path = os.environ.get("WMSTATS_WMCORE_DIFF_REPORT")
    if path:
        Path(path).write_text(json.dumps(summary, indent=2) + "\n")


def _both(pair: Pair, api: str, params: list[tuple[str, str]] | None = None,
          ) -> tuple[requests.Response, requests.Response]:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
    ours = requests.get(f"{pair.wmstats}/{api}{query}", headers=headers, timeout=300)
    theirs = requests.get(f"{pair.reqmon.data_url}/{api}{query}", headers=headers, timeout=300)
    pair.tally.queries[api.split("/", 1)[0]] += 1
    return ours, theirs


def _results(pair: Pair, api: str, params: list[tuple[str, str]] | None = None,
             ) -> tuple[list[Any], list[Any]]:
    ours, theirs = _both(pair, api, params)
    assert theirs.status_code == 200, (api, params, theirs.headers)
    assert ours.status_code == 200, (api, params, ours.text)
    return ours.json()["result"], theirs.json()["result"]


def _multiset(values: list[Any]) -> collections.Counter[str]:
    return collections.Counter(json.dumps(v, sort_keys=True) for v in values)


def _value(value: Any) -> Any:
    """A value with its lists as multisets (chain values come from a set)."""
    if isinstance(value, list):
        return _multiset(value)
    return value


def _agent_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """An agent_request document as the records carry it."""
    doc = {k: v for k, v in doc.items() if k not in ("_id", "_rev", "agent")}
    for task in doc.get("tasks", {}).values():
        for site in task.get("sites", {}).values():
            site.pop("dataset", None)
    return doc


def _compare_entry(tally: Tally, what: str, ours: dict[str, Any],
                   theirs: dict[str, Any]) -> None:
    """A rebuilt request document against reqmon's: every key wmstats shows, with
    reqmon's value; what wmstats does not show is what it does not carry."""
    for key, value in ours.items():
        if key == "AgentJobInfo":
            tally.same(f"{what} AgentJobInfo", value,
                       {u: _agent_doc(d) for u, d in theirs.get(key, {}).items()})
            continue
        if key not in theirs:
            tally.mismatches.append(f"{what}: {key} shown, reqmon has none")
            continue
        if key.startswith(("Task", "Step")) and isinstance(value, dict):
            tally.same(f"{what} {key}", value, {k: theirs[key].get(k) for k in value})
            continue
        tally.same(f"{what} {key}", value, theirs[key])
    if "AgentJobInfo" in theirs and "AgentJobInfo" not in ours:
        tally.mismatches.append(f"{what}: AgentJobInfo missing")
    left_out = set(theirs) - set(ours) - {"_rev"}
    tally.differences["document keys not carried"] += len(left_out)


# --------------------------------------------------------------------------- the APIs


def test_requestcache(pair: Pair) -> None:
    (ours,), (theirs,) = _results(pair, "requestcache")
    assert set(ours) == set(theirs)
    assert {d["RequestStatus"] for d in theirs.values()} == set(wmcore.CACHE_STATUSES)
    for name, entry in theirs.items():
        _compare_entry(pair.tally, f"requestcache {name}", ours[name], entry)
    assert not pair.tally.mismatches, pair.tally.mismatches[:5]


def _queries() -> list[list[tuple[str, str]]]:
    site_lists = [("mask", "SiteWhitelist"), ("mask", "SiteBlacklist")]
    beat = [("mask", k) for k in ("RequestStatus", "RequestType", "RequestPriority",
                                  "Campaign", "RequestNumEvents")]
    every_mask = [("mask", k) for k in wmcore.REQUEST_KEYS]
    queries = [
        [("RequestStatus", "running-open"), *site_lists],  # SiteListPoller
        [("RequestStatus", "acquired"), *site_lists],
        beat,  # HeartbeatMonitor
        [("RequestType", "StepChain"), ("ParentageResolved", "False"),  # DBSUploadPoller
         ("mask", "ChainParentageMap")],
        [("mask", "OutputDatasets"), ("mask", "RequestType")],  # check-ACDC-parentage
        every_mask,
        [("RequestStatus", "running-closed")],  # whole documents
        [("RequestType", "TaskChain"), ("RequestStatus", "completed")],
        [("AgentJobInfo", "CLEANED"), ("mask", "RequestStatus")],
        [("ParentageResolved", "TRUE"), ("mask", "ParentageResolved")],
        [("Campaign", "Run3Summer23wmLHEGS"), ("Campaign", "RunIISummer20UL18SIM"),
         ("mask", "Campaign")],
        [("CMSSWVersion", "CMSSW_13_0_13"), ("mask", "CMSSWVersion"), ("mask", "ScramArch")],
        [("ScramArch", "el8_amd64_gcc11"), *every_mask],
        [("DataPileup", "/ZeroBias/Run2018D-v1/RAW"), ("mask", "DataPileup")],
        [("SiteWhitelist", "T2_CH_CERN"), ("Team", "production"), ("mask", "Team")],
        [("RequestStatus", "true"), ("mask", "RequestStatus")],  # never matches in both
        [("RequestStatus", "normal-archived")],  # not in the cache
        [("mask", "RequestName")],
    ]
    queries += [[("RequestStatus", s), ("mask", "RequestName")] for s in wmcore.CACHE_STATUSES]
    return queries


@pytest.mark.parametrize("params", _queries(), ids=lambda p: "&".join(f"{k}={v}" for k, v in p))
def test_filtered_requests(pair: Pair, params: list[tuple[str, str]]) -> None:
    ours, theirs = _results(pair, "filtered_requests", params)
    by_name = {row["RequestName"]: row for row in ours}
    assert len(by_name) == len(ours)
    assert collections.Counter(r["RequestName"] for r in theirs) == collections.Counter(
        list(by_name))
    masked = any(k == "mask" for k, _v in params)
    for row in theirs:
        name = row["RequestName"]
        if not masked:
            _compare_entry(pair.tally, f"filtered_requests {name}", by_name[name], row)
            continue
        assert list(by_name[name]) == list(row), name  # masks in order, RequestName last
        for key, value in row.items():
            if key == "AgentJobInfo" and value:
                value = {u: _agent_doc(d) for u, d in value.items()}
            pair.tally.same(f"filtered_requests {name} {key}", _value(by_name[name][key]),
                            _value(value))
    assert not pair.tally.mismatches, pair.tally.mismatches[:5]


@pytest.mark.parametrize("api", ["globallocks", "protectedlfns", "protectedlfns_final"])
def test_lists(pair: Pair, api: str) -> None:
    ours, theirs = _results(pair, api)
    assert theirs  # the data has active requests
    pair.tally.same(api, _multiset(ours), _multiset(theirs))
    pair.tally.values += len(theirs) - 1
    assert not pair.tally.mismatches, pair.tally.mismatches[:5]
    if api == "protectedlfns":
        final, _ = _results(pair, "protectedlfns_final")
        assert set(final) < set(ours)  # transient outputs are protected too


def test_teams_info_and_proc_status(pair: Pair) -> None:
    ours, theirs = _results(pair, "teams")
    pair.tally.same("teams", collections.Counter(ours), collections.Counter(theirs))
    pair.tally.differences["teams order (CouchDB collation)"] += int(ours != theirs)
    ours, theirs = _results(pair, "info")
    assert len(ours) == len(theirs) == 1
    assert ours[0].startswith("version: ") and theirs[0].startswith("version: ")
    pair.tally.differences["info: wmstats' version"] += 1
    ours, theirs = _results(pair, "proc_status")
    shared = {"pid", "timestamp", "time", "uptime"}
    assert set(ours[0]["server"]) >= shared and set(theirs[0]["server"]) >= shared
    pair.tally.values += 2
    assert not pair.tally.mismatches, pair.tally.mismatches


def _sample(pair: Pair) -> list[str]:
    """A request of each status, one with agents where there is one, and more."""
    names: list[str] = []
    for status in ALL_STATUSES:
        of = sorted(n for n, d in pair.requests.items() if d["RequestStatus"] == status)
        with_agents = [n for n in of if pair.agent_requests.get(n)]
        names += (with_agents[:2] + of[:1]) if with_agents else of[:2]
    return list(dict.fromkeys(names))


def test_request_and_isfinished(pair: Pair) -> None:
    names = _sample(pair)
    assert {pair.requests[n]["RequestStatus"] for n in names} == set(ALL_STATUSES)
    for name in [*names, "no-such-request"]:
        quoted = urllib.parse.quote(name)
        (ours,), (theirs,) = _results(pair, f"request/{quoted}")
        assert set(ours) == set(theirs), name
        if theirs:
            _compare_entry(pair.tally, f"request {name}", ours[name], theirs[name])
        mine, reference = _both(pair, f"isfinished/{quoted}")
        assert mine.status_code == reference.status_code, name
        if reference.status_code == 200:
            pair.tally.same(f"isfinished {name}", mine.json()["result"],
                            reference.json()["result"])
    assert not pair.tally.mismatches, pair.tally.mismatches[:5]


def test_jobdetail(pair: Pair) -> None:
    """Every workflow with failed jobs, at reqmon's default sample size and at the
    samples wmstats keeps per group (3); key order aside (reqmon's is arbitrary)."""
    assert len(pair.failing) > 10
    for name in [*pair.failing, "no-such-request"]:
        for params in (None, [("sample_size", "3")]):
            (ours,), (theirs,) = _results(pair, f"jobdetail/{urllib.parse.quote(name)}",
                                          params)
            pair.tally.same(f"jobdetail {name} {params}", ours, theirs)
    assert not pair.tally.mismatches, pair.tally.mismatches[:5]


def test_documented_differences(pair: Pair) -> None:
    """Where wmstats answers otherwise on purpose (docs/wmcore-compat.md)."""
    # An unknown key or mask: reqmon answers [] or null, wmstats refuses it by name.
    for params in ([("Bogus", "1")], [("mask", "Bogus")], [("RequestPriority", "63000")]):
        ours, theirs = _both(pair, "filtered_requests", params)
        assert theirs.status_code == 200 and ours.status_code == 400, params
        assert ours.json()["parameter"] == params[0][0]
        pair.tally.differences["400 for an unknown or never-matching key"] += 1
    # A missing request name: reqmon's 500, wmstats' 400.
    for api in ("request", "isfinished", "jobdetail"):
        ours, theirs = _both(pair, api)
        assert theirs.status_code == 500 and ours.status_code == 400, api
        pair.tally.differences["400 for a missing name"] += 1
    # Errors are JSON (reqmon's are HTML); both carry X-Error-Detail.
    ours, theirs = _both(pair, "nosuchapi")
    assert ours.status_code == theirs.status_code == 404
    assert ours.headers["X-Error-Detail"] == theirs.headers["X-Error-Detail"]
    # Accept: */* -- reqmon answers text/plain first, wmstats JSON.
    star = {"Accept": "*/*"}
    ours = requests.get(pair.wmstats + "/globallocks", headers=star, timeout=60)
    theirs = requests.get(pair.reqmon.data_url + "/globallocks", headers=star, timeout=60)
    assert theirs.headers["Content-Type"].startswith("text/plain")
    assert ours.headers["Content-Type"] == "application/json"
    assert json.loads(ours.text) == json.loads(theirs.text) or _multiset(
        json.loads(ours.text)["result"]) == _multiset(json.loads(theirs.text)["result"])
    pair.tally.differences["JSON for Accept: */*"] += 1
