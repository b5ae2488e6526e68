"""The reqmon harness: the real reqmon 2.4.5.9 reading pouchdb-server, checked against
the documents it holds, and WMCore's own client classes against the same server.

Needs the reqmon venv (``ci/install-reqmon.sh``) and pouchdb-server
(``ci/install-pouchdb.sh``).  With ``CI`` set a missing one fails the tests; locally
they skip with the install command.  Select them with ``pytest -m reqmon``.

The expected answers are derived from the documents read back from CouchDB and from
WMCore's status lists as the installed reqmon has them (:func:`wmcore_constants`).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from wmstats_couchdb._http import CouchClient, quote, split_server_url

from wmstats.mock import REQUEST_STATUSES, MockGenerator
from wmstats.testing.couchdb_server import CouchDatabase, CouchServer, in_ci
from wmstats.testing.reqmon import (
    INSTALL_COMMAND,
    PYTHON_ENV,
    REQMON_VERSION,
    CouchPrefixProxy,
    ReqmonError,
    ReqmonServer,
    WMCoreClientError,
    find_reqmon_python,
    install_views,
    seed_mock,
    wmcore_client_call,
    wmcore_client_calls,
    wmcore_constants,
)

pytestmark = pytest.mark.reqmon

WORKFLOWS = 50
SEED = 0
#: Statuses reqmon must leave out of its cache (final ReqMgr2 states).
ARCHIVED = ("normal-archived", "aborted-archived", "rejected-archived")
SITE_LIST_MASK = ["SiteWhitelist", "SiteBlacklist"]
HEARTBEAT_MASK = ["RequestStatus", "RequestType", "RequestPriority", "Campaign",
                  "RequestNumEvents"]


@pytest.fixture(scope="module")
def constants(reqmon_python: Path) -> dict[str, Any]:
    return dict(wmcore_constants(reqmon_python))


@attrs.define
class Seeded:
    """The databases and the documents read back from them."""

    url: str
    reqmgr_db: str
    wmstats_db: str
    requests: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    agent_requests: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    agent_infos: list[dict[str, Any]] = attrs.field(factory=list)
    jobsummaries: list[dict[str, Any]] = attrs.field(factory=list)


def _client(url: str) -> CouchClient:
    base, auth = split_server_url(url)
    return CouchClient(base, auth=auth)


def _all_docs(client: CouchClient, db: str) -> list[dict[str, Any]]:
    answer = client.request("GET", f"/{quote(db)}/_all_docs", params={"include_docs": "true"})
    return [row["doc"] for row in answer["rows"] if not row["id"].startswith("_design/")]


def _bulk(client: CouchClient, db: str, docs: list[dict[str, Any]]) -> None:
    answer = client.request("POST", f"/{quote(db)}/_bulk_docs", body={"docs": docs})
    refused = [row for row in answer if row.get("error")]
    assert not refused, refused


def _archived_copy(gen: MockGenerator, i: int, status: str) -> list[dict[str, Any]]:
    """Workflow ``i``'s documents, renamed and moved to ``status``."""
    request, *agent_docs = gen.documents(i)
    name = f"{request['RequestName']}_{status.replace('-', '_')}"
    request.update(_id=name, RequestName=name, RequestStatus=status)
    request["RequestTransition"] = [*request["RequestTransition"],
                                    {"Status": status, "UpdateTime": 1_720_000_000,
                                     "DN": "/CN=archiver"}]
    for doc in agent_docs:
        doc.update(_id=f"{doc['agent_url']}-{name}", workflow=name)
    return [request, *agent_docs]


def _jobsummaries(workflow: dict[str, Any], agent_url: str) -> list[dict[str, Any]]:
    """Three failed-job documents (the mock makes none): two share a
    (task, state, exit code, site) group."""
    name = workflow["RequestName"]
    task = f"/{name}/Step1Processing"
    docs = []
    for n, (site, exitcode) in enumerate((("T1_US_FNAL", 8021), ("T1_US_FNAL", 8021),
                                         ("T2_CH_CERN", 50664))):
        docs.append({
            "_id": f"jobsummary-{uuid.uuid4().hex}-{n}", "type": "jobsummary",
            "wmbsid": 4_127_000 + n, "retrycount": 3, "workflow": name, "task": task,
            "jobtype": "Processing", "state": "jobfailed", "site": site, "exitcode": exitcode,
            "errors": {"cmsRun1": [{"type": "Fatal Exception", "exitCode": exitcode,
                                    "details": f"failure {n}"}], "logArch1": []},
            "acdc_url": "https://cmsweb.cern.ch/couchdb/acdcserver", "agent_name": agent_url,
            "timestamp": 1_720_000_000 + n})
    return docs


@pytest.fixture(scope="module")
def seeded(couchdb_server: CouchServer, reqmon_python: Path) -> Iterator[Seeded]:
    """~50 mock workflows, at least one in every mock status, plus archived requests and
    jobsummary documents, in two fresh databases."""
    database = CouchDatabase(couchdb_server, "wmstats_test_" + uuid.uuid4().hex[:16])
    data = Seeded(couchdb_server.url, database.name + "_req", database.name + "_wms")
    try:
        seed_mock(data.url, WORKFLOWS, seed=SEED, reqmgr_db=data.reqmgr_db,
                  wmstats_db=data.wmstats_db)
        gen = MockGenerator(seed=SEED)
        present = {gen.documents(i)[0]["RequestStatus"] for i in range(WORKFLOWS)}
        i = WORKFLOWS
        while not present >= set(REQUEST_STATUSES):
            assert i < 20 * WORKFLOWS * len(REQUEST_STATUSES), present
            status = gen.documents(i)[0]["RequestStatus"]
            if status not in present:
                seed_mock(data.url, 1, seed=SEED, start=i, reqmgr_db=data.reqmgr_db,
                          wmstats_db=data.wmstats_db, agent_info=False)
                present.add(status)
            i += 1
        client = _client(data.url)
        try:
            extra = [doc for k, status in enumerate(ARCHIVED)
                     for doc in _archived_copy(gen, i + k, status)]
            _bulk(client, data.reqmgr_db, [d for d in extra if "RequestName" in d])
            _bulk(client, data.wmstats_db, [d for d in extra if "RequestName" not in d])
            for doc in _all_docs(client, data.reqmgr_db):
                data.requests[doc["RequestName"]] = doc
            for doc in _all_docs(client, data.wmstats_db):
                if doc.get("type") == "agent_request":
                    data.agent_requests.setdefault(doc["workflow"], []).append(doc)
                elif doc.get("type") == "agent_info":
                    data.agent_infos.append(doc)
            running = next(doc for name, doc in sorted(data.requests.items())
                           if doc["RequestStatus"] == "running-open"
                           and name in data.agent_requests)
            agent = data.agent_requests[running["RequestName"]][0]["agent_url"]
            _bulk(client, data.wmstats_db, _jobsummaries(running, agent))
            data.jobsummaries = [doc for doc in _all_docs(client, data.wmstats_db)
                                 if doc.get("type") == "jobsummary"]
        finally:
            client.close()
        yield data
    finally:
        database.delete_all()


@pytest.fixture(scope="module")
def reqmon(seeded: Seeded, reqmon_python: Path) -> Iterator[ReqmonServer]:
    with ReqmonServer(seeded.url, reqmgr_db=seeded.reqmgr_db, wmstats_db=seeded.wmstats_db,
                      python=reqmon_python) as server:
        yield server


def _loaded(constants: dict[str, Any]) -> list[str]:
    return [*constants["WMSTATS_JOB_INFO"], *constants["WMSTATS_NO_JOB_INFO"]]


def _active(constants: dict[str, Any]) -> set[str]:
    return set(constants["ACTIVE_STATUS_FILTER"]["RequestStatus"])


def _without_rev(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("_rev", "_attachments")}


def _expected_entry(seeded: Seeded, name: str, job_info: bool) -> dict[str, Any]:
    entry = _without_rev(seeded.requests[name])
    agents = seeded.agent_requests.get(name, [])
    if job_info and agents:
        entry["AgentJobInfo"] = {doc["agent_url"]: doc for doc in agents}
    return entry


# --------------------------------------------------------------------------- the data


def test_seeded_data_covers_every_status_and_chain_type(seeded: Seeded) -> None:
    statuses = {doc["RequestStatus"] for doc in seeded.requests.values()}
    assert statuses == set(REQUEST_STATUSES) | set(ARCHIVED)
    types = {doc["RequestType"] for doc in seeded.requests.values()}
    assert {"TaskChain", "StepChain"} <= types
    assert seeded.agent_infos and seeded.agent_requests and len(seeded.jobsummaries) == 3


# --------------------------------------------------------------------------- lifecycle


def test_server_is_up_with_its_measurements(reqmon: ReqmonServer, seeded: Seeded,
                                            constants: dict[str, Any]) -> None:
    assert reqmon.is_running() and reqmon.pid is not None
    assert reqmon.url.endswith("/wmstatsserver") and reqmon.data_url == reqmon.url + "/data"
    loaded = [n for n, d in seeded.requests.items() if d["RequestStatus"] in _loaded(constants)]
    first = reqmon.first_fill
    assert first is not None and first.requests == len(loaded)
    assert reqmon.fill_seconds is not None and reqmon.fill_seconds > 0
    assert reqmon.views_seconds is not None and reqmon.start_seconds is not None
    assert reqmon.ready_seconds is not None and reqmon.ready_seconds >= reqmon.start_seconds
    rss = reqmon.rss()
    assert rss is not None and rss > 10
    assert reqmon.state_dir is not None and (reqmon.state_dir / "wmstats_config.py").is_file()


def test_info_and_proc_status(reqmon: ReqmonServer) -> None:
    assert reqmon.get("info") == {"result": [f"version: {REQMON_VERSION}"]}
    (status,) = reqmon.result("proc_status")
    assert status["server"]["pid"] == reqmon.pid
    assert status["server"]["memory_full_info"]["rss"] > 0


def test_unknown_api_and_excess_parameters_are_refused(reqmon: ReqmonServer) -> None:
    reply = reqmon.fetch("nosuchapi")
    assert reply.status == 404 and reply.headers["x-error-detail"] == "API not supported"
    reply = reqmon.fetch("info", {"x": "1"})
    assert reply.status == 400 and reply.headers["x-error-detail"] == "Invalid input parameter"
    with pytest.raises(ReqmonError, match="400"):
        reqmon.get("requestcache", {"x": "1"})


# --------------------------------------------------------------------------- cache APIs


def test_requestcache_holds_exactly_the_loaded_statuses(reqmon: ReqmonServer, seeded: Seeded,
                                                        constants: dict[str, Any]) -> None:
    loaded = _loaded(constants)
    job_info = set(constants["WMSTATS_JOB_INFO"])
    (cache,) = reqmon.result("requestcache")
    expected = {n for n, d in seeded.requests.items() if d["RequestStatus"] in loaded}
    assert set(cache) == expected
    assert not expected & {n for n, d in seeded.requests.items()
                           if d["RequestStatus"] in ARCHIVED}
    for name, entry in cache.items():
        assert entry == _expected_entry(seeded, name, entry["RequestStatus"] in job_info), name
    # Grouped by status, in the order of WMSTATS_JOB_INFO + WMSTATS_NO_JOB_INFO.
    order = [loaded.index(entry["RequestStatus"]) for entry in cache.values()]
    assert order == sorted(order)
    # Agents report on acquired (and aborted...) requests, but only job-info ones get them.
    assert any(seeded.agent_requests.get(n) and "AgentJobInfo" not in e
               for n, e in cache.items())


def test_requestcache_gzip_is_the_same_document(reqmon: ReqmonServer) -> None:
    plain = reqmon.fetch("requestcache")
    packed = reqmon.fetch("requestcache", gzip=True)
    assert packed.headers.get("content-encoding") == "gzip"
    assert len(packed.body) < len(plain.body)
    assert packed.json() == plain.json()


def test_filtered_requests_site_list_poller(reqmon: ReqmonServer, seeded: Seeded) -> None:
    """WorkflowUpdater's SiteListPoller: one status, two masks."""
    for status in ("running-open", "acquired"):
        rows = reqmon.result("filtered_requests", [("RequestStatus", status),
                                                   *(("mask", m) for m in SITE_LIST_MASK)])
        expected = {n for n, d in seeded.requests.items() if d["RequestStatus"] == status}
        assert expected and {row["RequestName"] for row in rows} == expected
        for row in rows:
            assert set(row) == {*SITE_LIST_MASK, "RequestName"}
            doc = seeded.requests[row["RequestName"]]
            assert [row[m] for m in SITE_LIST_MASK] == [doc[m] for m in SITE_LIST_MASK]


def test_filtered_requests_or_within_a_key_and_across_keys(reqmon: ReqmonServer,
                                                           seeded: Seeded) -> None:
    rows = reqmon.result("filtered_requests", [("RequestStatus", "acquired"),
                                               ("RequestStatus", "running-open"),
                                               ("RequestType", "TaskChain"),
                                               ("RequestType", "StepChain"),
                                               ("mask", "RequestType")])
    expected = {n for n, d in seeded.requests.items()
                if d["RequestStatus"] in ("acquired", "running-open")
                and d["RequestType"] in ("TaskChain", "StepChain")}
    assert expected and {row["RequestName"] for row in rows} == expected


def test_filtered_requests_without_a_mask_gives_whole_entries(reqmon: ReqmonServer,
                                                              seeded: Seeded,
                                                              constants: dict[str, Any]) -> None:
    rows = reqmon.result("filtered_requests", {"RequestStatus": "completed"})
    assert rows
    for row in rows:
        assert row == _expected_entry(seeded, row["RequestName"],
                                      "completed" in constants["WMSTATS_JOB_INFO"])


def test_filtered_requests_dbs_upload_parentage(reqmon: ReqmonServer, seeded: Seeded,
                                                constants: dict[str, Any]) -> None:
    """DBS3Upload's DBSUploadPoller: StepChains whose parentage is unresolved."""
    rows = reqmon.result("filtered_requests", [("RequestType", "StepChain"),
                                               ("ParentageResolved", "false"),
                                               ("mask", "ChainParentageMap")])
    expected = {n for n, d in seeded.requests.items()
                if d["RequestStatus"] in _loaded(constants) and d["RequestType"] == "StepChain"
                and d.get("ParentageResolved") is False}
    assert expected and {row["RequestName"] for row in rows} == expected
    for row in rows:
        # The {"Step1": {...}, ...} map becomes the list of its values.
        assert row["ChainParentageMap"] == list(
            seeded.requests[row["RequestName"]]["ChainParentageMap"].values())


def test_filtered_requests_heartbeat_monitor_merges_chain_values(
        reqmon: ReqmonServer, seeded: Seeded, constants: dict[str, Any]) -> None:
    """ReqMgr2's HeartbeatMonitor: every request, five masks; for chains the value of a
    key found in the tasks/steps is the list of their distinct values."""
    rows = reqmon.result("filtered_requests", [("mask", m) for m in HEARTBEAT_MASK])
    loaded = {n for n, d in seeded.requests.items() if d["RequestStatus"] in _loaded(constants)}
    assert {row["RequestName"] for row in rows} == loaded and len(rows) == len(loaded)
    for row in rows:
        doc = seeded.requests[row["RequestName"]]
        assert set(row) == {*HEARTBEAT_MASK, "RequestName"}
        assert row["RequestStatus"] == doc["RequestStatus"]
        chain = doc.get("TaskChain") and "Task" or doc.get("StepChain") and "Step"
        if chain:
            subs = [doc[f"{chain}{k + 1}"] for k in range(doc[f"{chain}Chain"])]
            assert sorted(row["Campaign"]) == sorted({s["Campaign"] for s in subs})
            numevents = {s["RequestNumEvents"] for s in subs if "RequestNumEvents" in s}
            if numevents:
                assert sorted(row["RequestNumEvents"]) == sorted(numevents)
        else:
            assert row["Campaign"] == doc["Campaign"]
            assert row["RequestNumEvents"] == doc.get("RequestNumEvents")


def _protected_lfn(dataset: str, base: str) -> str:
    # The rule of WMCore/ReqMgr/DataStructs/Request.py protectedLFNs() (reqmon 2.4.5.9).
    dsn, ps, tier = dataset.split("/")[1:]
    acq, rest = ps.split("-", 1)
    return "/".join([base, acq, dsn, tier, rest])


def test_protectedlfns(reqmon: ReqmonServer, seeded: Seeded, constants: dict[str, Any]) -> None:
    active = [d for d in seeded.requests.values() if d["RequestStatus"] in _active(constants)]
    lfns = reqmon.result("protectedlfns")
    assert lfns
    assert collections.Counter(lfns) == collections.Counter(
        lfn for d in active for lfn in d["OutputModulesLFNBases"])
    final = reqmon.result("protectedlfns_final")
    assert collections.Counter(final) == collections.Counter(
        _protected_lfn(ds, d.get("UnmergedLFNBase", "/store/unmerged"))
        for d in active for ds in d["OutputDatasets"])


def test_globallocks(reqmon: ReqmonServer, seeded: Seeded, constants: dict[str, Any]) -> None:
    keys = ("InputDataset", "OutputDatasets", "MCPileup", "DataPileup")

    def values(doc: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        chain = doc.get("TaskChain") and "Task" or doc.get("StepChain") and "Step"
        subs = ([doc[f"{chain}{k + 1}"] for k in range(doc[f"{chain}Chain"])]
                if chain else [])
        for where in (doc, *subs):
            for key in keys:
                value = where.get(key)
                found.update(value if isinstance(value, list) else [value] if value else [])
        return found

    active = [d for d in seeded.requests.values() if d["RequestStatus"] in _active(constants)]
    locks = reqmon.result("globallocks")
    assert locks and all(isinstance(lock, str) for lock in locks)
    may = set().union(*(values(d) for d in active))
    assert set(locks) <= may
    must = {ds for d in active for ds in d["OutputDatasets"]}
    must |= {d["InputDataset"] for d in active if "InputDataset" in d
             and not (d.get("TaskChain") or d.get("StepChain"))}
    assert must <= set(locks)
    outside = {ds for d in seeded.requests.values() if d["RequestStatus"] not in
               _active(constants) for ds in d["OutputDatasets"]} - may
    assert outside and not outside & set(locks)


def test_teams_come_from_agent_heartbeats(reqmon: ReqmonServer, seeded: Seeded) -> None:
    expected: list[str] = []
    for doc in sorted(seeded.agent_infos, key=lambda d: d["agent_url"]):
        if doc["agent_team"] and doc["agent_team"] not in expected:
            expected.append(doc["agent_team"])
    assert expected and reqmon.result("teams") == expected


# --------------------------------------------------------------------------- CouchDB APIs


def test_request_by_name_for_any_status(reqmon: ReqmonServer, seeded: Seeded) -> None:
    """``request/<name>`` reads CouchDB, whatever the status, and always attaches the
    agents' documents."""
    names = [next(n for n, d in seeded.requests.items() if d["RequestStatus"] == status)
             for status in ("running-closed", "acquired", "new", *ARCHIVED)]
    for name in names:
        assert reqmon.result(f"request/{name}") == [{name: _expected_entry(seeded, name, True)}]
    assert reqmon.result("request/no_such_request") == [{}]


def test_isfinished(reqmon: ReqmonServer, seeded: Seeded) -> None:
    quiet = next(n for n, d in seeded.requests.items()
                 if d["RequestStatus"] == "new" and n not in seeded.agent_requests)
    assert reqmon.result(f"isfinished/{quiet}") == [False]
    for name in list(seeded.agent_requests)[:5]:
        (finished,) = reqmon.result(f"isfinished/{name}")
        assert isinstance(finished, bool)
    reply = reqmon.fetch("isfinished/no_such_request")
    assert reply.status == 404 and b"Cannot find request: no_such_request" in reply.body


def test_jobdetail_through_the_couchdb_prefix(reqmon: ReqmonServer, seeded: Seeded) -> None:
    docs = seeded.jobsummaries
    name = docs[0]["workflow"]
    (detail,) = reqmon.result(f"jobdetail/{name}")
    task = docs[0]["task"]
    assert list(detail) == [name] and list(detail[name]) == [task]
    by_code = detail[name][task]["jobfailed"]
    assert set(by_code) == {"8021", "50664"}
    fnal = by_code["8021"]["T1_US_FNAL"]
    assert fnal["errorCount"] == 2 and len(fnal["samples"]) == 1
    assert fnal["samples"][0] in [d for d in docs if d["site"] == "T1_US_FNAL"]
    assert by_code["50664"]["T2_CH_CERN"]["errorCount"] == 1
    (two,) = reqmon.result(f"jobdetail/{name}", {"sample_size": "2"})
    assert len(two[name][task]["jobfailed"]["8021"]["T1_US_FNAL"]["samples"]) == 2
    assert reqmon.result("jobdetail/no_such_request") == [{}]


# --------------------------------------------------------------------------- WMCore's client


def test_wmcore_client_gives_what_a_direct_get_gives(reqmon: ReqmonServer, seeded: Seeded,
                                                     reqmon_python: Path) -> None:
    running = next(n for n, d in seeded.requests.items() if d["RequestStatus"] == "running-open")
    calls: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("getGlobalLocks", [], {}),
        ("getProtectedLFNs", [], {}),
        ("getActiveData", [], {}),
        ("getFilteredActiveData", [{"RequestStatus": "running-open"}, SITE_LIST_MASK], {}),
        ("getFilteredActiveData", [{}, HEARTBEAT_MASK], {}),
        ("getFilteredActiveData", [{}, ["OutputDatasets", "RequestType"]], {}),
        ("getChildParentDatasetMap", [], {}),
        ("_getResult", ["teams"], {}),
        ("_getResult", [f"request/{running}"], {}),
        ("_getResult", ["isfinished/no_such_request"], {}),
    ]
    (locks, lfns, cache, site_lists, heartbeat, acdc, parentage, teams, request,
     missing) = wmcore_client_calls(reqmon.url, calls, python=reqmon_python)
    assert collections.Counter(locks.unwrap()) == collections.Counter(
        reqmon.result("globallocks"))
    # getProtectedLFNs() returns list(set(...)).
    assert sorted(lfns.unwrap()) == sorted(set(reqmon.result("protectedlfns")))
    assert cache.unwrap() == reqmon.result("requestcache")[0]
    assert site_lists.unwrap() == reqmon.result(
        "filtered_requests", [("RequestStatus", "running-open"),
                              *(("mask", m) for m in SITE_LIST_MASK)])
    assert heartbeat.unwrap() == reqmon.result("filtered_requests",
                                               [("mask", m) for m in HEARTBEAT_MASK])
    assert acdc.unwrap() == reqmon.result(
        "filtered_requests", [("mask", "OutputDatasets"), ("mask", "RequestType")])
    rows = reqmon.result("filtered_requests", [("RequestType", "StepChain"),
                                               ("ParentageResolved", "false"),
                                               ("mask", "ChainParentageMap")])
    assert parentage.unwrap() == {child: entry["ParentDset"] for row in rows
                                  for entry in row["ChainParentageMap"] if entry["ParentDset"]
                                  for child in entry["ChildDsets"]}
    assert parentage.value
    assert teams.unwrap() == reqmon.result("teams")
    assert request.unwrap() == reqmon.result(f"request/{running}")
    assert not missing.ok and missing.error is not None
    assert missing.error.status == 404 and missing.error.type == "http.client.HTTPException"
    with pytest.raises(WMCoreClientError) as raised:
        wmcore_client_call(reqmon.url, "_getResult", "isfinished/no_such_request",
                           python=reqmon_python)
    assert raised.value.status == 404


def test_wmcore_constants_are_reqmons(constants: dict[str, Any]) -> None:
    assert set(_loaded(constants)) == set(constants["ACTIVE_STATUS"])
    assert _active(constants) < set(constants["ACTIVE_STATUS"])
    assert not set(ARCHIVED) & set(constants["ACTIVE_STATUS"])
    assert set(ARCHIVED) < set(constants["REQUEST_STATE_LIST"])


# --------------------------------------------------------------------------- other states


def test_empty_cache_errors_where_reqmon_checks_for_it(couchdb_database: CouchDatabase,
                                                       reqmon_python: Path) -> None:
    reqmgr, wmstats = couchdb_database.name + "_req", couchdb_database.name + "_wms"
    with ReqmonServer(couchdb_database.server.url, reqmgr_db=reqmgr, wmstats_db=wmstats,
                      python=reqmon_python) as reqmon:
        assert reqmon.first_fill is not None and reqmon.first_fill.requests == 0
        for api in ("globallocks", "protectedlfns"):
            reply = reqmon.fetch(api)
            assert reply.status == 503, api
            assert reply.headers["x-error-detail"] == "DataCache is Empty"
        # The other cache APIs do not check: an empty answer looks like a current one.
        assert reqmon.result("protectedlfns_final") == []
        assert reqmon.result("filtered_requests") == []
        assert reqmon.result("requestcache") == [{}]
        locks, cache = wmcore_client_calls(reqmon.url, [("getGlobalLocks", [], {}),
                                                        ("getActiveData", [], {})],
                                           python=reqmon_python)
        assert locks.error is not None and locks.error.status == 503
        assert locks.error.headers["X-Error-Detail"] == "DataCache is Empty"
        assert cache.unwrap() == {}


def test_refill_sees_a_changed_request(couchdb_database: CouchDatabase,
                                       reqmon_python: Path) -> None:
    url = couchdb_database.server.url
    reqmgr, wmstats = couchdb_database.name + "_req", couchdb_database.name + "_wms"
    seed_mock(url, 5, seed=SEED, reqmgr_db=reqmgr, wmstats_db=wmstats)
    with ReqmonServer(url, reqmgr_db=reqmgr, wmstats_db=wmstats, python=reqmon_python,
                      cache_duration=1, cache_expiry=0) as reqmon:
        (cache,) = reqmon.result("requestcache")
        name = next(iter(cache))
        client = _client(url)
        try:
            doc = client.request("GET", f"/{quote(reqmgr)}/{quote(name)}")
            doc["RequestStatus"] = "rejected-archived"
            client.request("PUT", f"/{quote(reqmgr)}/{quote(name)}", body=doc)
        finally:
            client.close()
        reqmon.refresh_views()
        reqmon.wait_for_refill()  # may have read the database before the change
        fill = reqmon.wait_for_refill()
        assert fill.requests == len(cache) - 1
        (after,) = reqmon.result("requestcache")
        assert set(after) == set(cache) - {name}


def test_a_failing_fill_is_reported_with_the_log(couchdb_database: CouchDatabase,
                                                 reqmon_python: Path) -> None:
    url = couchdb_database.server.url
    reqmgr, wmstats = couchdb_database.name + "_req", couchdb_database.name + "_wms"
    seed_mock(url, 2, seed=SEED, reqmgr_db=reqmgr, wmstats_db=wmstats)  # and no views
    server = ReqmonServer(url, reqmgr_db=reqmgr, wmstats_db=wmstats, python=reqmon_python,
                          prepare_views=False)
    with pytest.raises(ReqmonError, match="failed to fill") as raised:
        server.start()
    assert "Exception updating DataCache" in str(raised.value)
    assert not server.is_running()
    server.close()
    assert server.state_dir is None


# --------------------------------------------------------------------------- pieces


def test_couch_prefix_proxy(couchdb_database: CouchDatabase) -> None:
    server = couchdb_database.server
    install_views(server.url, couchdb_database.name + "_req", couchdb_database.name + "_wms")
    with CouchPrefixProxy(server.url) as proxy:
        def get(url: str) -> Any:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.loads(response.read())

        direct = get(f"{proxy.url}/")
        assert get(f"{proxy.prefixed_url}/") == direct and direct["uuid"]
        db = f"{proxy.prefixed_url}/{couchdb_database.name}_wms"
        body = json.dumps({"docs": [{"_id": "a", "type": "x"}]}).encode()
        request = urllib.request.Request(f"{db}/_bulk_docs", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        rows = get(f"{db}/_all_docs")["rows"]
        assert {row["id"] for row in rows} == {"a", "_design/WMStats"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(f"{db}/nosuchdoc")
        missing.value.close()
        assert missing.value.code == 404


def test_missing_reqmon_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv(PYTHON_ENV, str(tmp_path / "nothing"))
    with pytest.raises(ReqmonError, match=INSTALL_COMMAND):
        find_reqmon_python()


def test_launcher_imports_neither_pytest_nor_wmcore() -> None:
    code = ("import sys, wmstats.testing.reqmon; "
            "print([m for m in ('pytest', 'WMCore', 'wmstats_couchdb') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_install_script_is_idempotent(reqmon_python: Path) -> None:
    """A second run of ci/install-reqmon.sh on an installed venv only prints its python."""
    venv = reqmon_python.parent.parent
    if not (venv / ".installed").is_file():
        reason = f"{venv} was not made by {INSTALL_COMMAND} (no .installed stamp)"
        if in_ci():  # CI installs reqmon with that script: a missing stamp is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    script = Path(__file__).resolve().parents[1] / "ci" / "install-reqmon.sh"
    done = subprocess.run(["bash", str(script), str(venv)], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == str(venv / "bin" / "python")
    assert "install-reqmon:" not in done.stderr  # nothing was installed
