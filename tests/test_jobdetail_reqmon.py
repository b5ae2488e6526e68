"""Differential test: ``jobdetail/<workflow>`` of the real reqmon 2.4.5.9 and
:func:`wmstats.jobdetail.jobdetail` over the job records, on the same documents.

Mock workflows with their jobsummary documents (and a few hand-made groups that
exercise the view's order: several agents and ACDC URLs in one group, error types
sorted, a success after a retry) are written into a pouchdb-server; reqmon reads them
through its own views, wmstats through the same converter the CouchDB source uses.
For every workflow with jobs, both answers must be equal (as JSON: key order aside,
which reqmon's parallel queries make arbitrary), for sample sizes 1 (the default),
2 and 3 (the number of samples kept per group).  The same comparison then runs over
HTTP against ``/wmstatsserver/data/jobdetail`` of a wmstats cache server whose
CouchDB source loaded the same documents.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from wmstats_couchdb._http import CouchClient, quote, split_server_url

from wmstats.convert import DocumentConverter
from wmstats.jobdetail import jobdetail
from wmstats.mock import MockGenerator
from wmstats.schema import WorkflowJobs
from wmstats.serve import _application
from wmstats.testing.couchdb_server import CouchDatabase, CouchServer
from wmstats.testing.reqmon import (
    ReqmonServer,
    seed_mock,
)
from wmstats.web import CacheApp, WebServer

pytestmark = [pytest.mark.reqmon, pytest.mark.usefixtures("quiet_cherrypy")]

WORKFLOWS = 40
SEED = 3


@attrs.define
class Seeded:
    url: str
    reqmgr_db: str
    wmstats_db: str
    jobs: dict[str, WorkflowJobs] = attrs.field(factory=dict)
    documents: int = 0


def _client(url: str) -> CouchClient:
    base, auth = split_server_url(url)
    return CouchClient(base, auth=auth, timeout=120)


def _tricky(gen: MockGenerator) -> list[dict[str, Any]]:
    """Hand-made jobs of one mock workflow, in one (task, state, exit code, site)
    group: different agents, ACDC URLs and error types, so that the view's order
    (ACDC URL, agent, sorted error types, id) decides the samples."""
    request = gen.documents(0)[0]
    name = request["RequestName"]
    docs = []
    variants = [("vocms0999.cern.ch", "https://b-acdc", ["Fatal Exception"]),
                ("vocms0111.cern.ch", "https://b-acdc", ["StageOutFailure", "Fatal Exception"]),
                ("vocms0111.cern.ch", "https://a-acdc", ["Fatal Exception"]),
                ("vocms0111.cern.ch", "https://a-acdc", ["ZZZ", "Fatal Exception"]),
                ("vocms0555.cern.ch", "https://a-acdc", ["Fatal Exception"])]
    for n, (agent, acdc, types) in enumerate(variants):
        errors: dict[str, Any] = {"cmsRun1": [], "stageOut1": []}
        for k, kind in enumerate(types):
            errors["cmsRun1" if k == 0 else "stageOut1"].append(
                {"type": kind, "details": f"job {n} error {k}", "exitCode": 8021})
        docs.append({"_id": f"{uuid.UUID(int=n + 7, version=4)}-{n}", "type": "jobsummary",
                     "wmbsid": 100 + n, "retrycount": n % 3, "workflow": name,
                     "task": f"/{name}/Tricky", "jobtype": "Processing", "state": "jobfailed",
                     "site": "T1_US_FNAL", "exitcode": 8021, "errors": errors,
                     "acdc_url": acdc, "agent_name": agent, "timestamp": 1_718_000_000 - n})
    success = copy.deepcopy(docs[0])
    success.update(_id="success-after-retry-1", state="success", exitcode=0,
                   errors={"cmsRun1": [], "stageOut1": [], "logArch1": []})
    return [*docs, success]


@pytest.fixture(scope="module")
def seeded(couchdb_server: CouchServer) -> Iterator[Seeded]:
    database = CouchDatabase(couchdb_server, "wmstats_jd_" + uuid.uuid4().hex[:16])
    data = Seeded(couchdb_server.url, database.name + "_req", database.name + "_wms")
    try:
        result = seed_mock(data.url, WORKFLOWS, seed=SEED, reqmgr_db=data.reqmgr_db,
                           wmstats_db=data.wmstats_db, jobs=True)
        assert result.jobsummaries > 50
        client = _client(data.url)
        try:
            gen = MockGenerator(seed=SEED)
            answer = client.request("POST", f"/{quote(data.wmstats_db)}/_bulk_docs",
                                    body={"docs": _tricky(gen)})
            assert not [row for row in answer if row.get("error")], answer
            body = client.request("GET", f"/{quote(data.wmstats_db)}/_all_docs",
                                  params={"include_docs": True})
        finally:
            client.close()
        # What the CouchDB source makes of the documents (as served, with _rev).
        converter = DocumentConverter()
        for row in body["rows"]:
            doc = row["doc"]
            if doc.get("type") == "jobsummary":
                converter.add(doc)
                data.documents += 1
        assert converter.problems == []
        data.jobs = {j.RequestName: j for j in converter.jobs()}
        yield data
    finally:
        database.delete_all()


@pytest.fixture(scope="module")
def reqmon(seeded: Seeded, reqmon_python: Path) -> Iterator[ReqmonServer]:
    with ReqmonServer(seeded.url, reqmgr_db=seeded.reqmgr_db, wmstats_db=seeded.wmstats_db,
                      python=reqmon_python, all_views=False) as server:
        yield server


def test_jobdetail_equals_reqmons_for_every_workflow_with_jobs(reqmon: ReqmonServer,
                                                               seeded: Seeded) -> None:
    assert len(seeded.jobs) > 10 and seeded.documents > 50
    compared = 0
    for name, jobs in sorted(seeded.jobs.items()):
        for size in (None, 2, 3):
            params = None if size is None else {"sample_size": str(size)}
            (theirs,) = reqmon.result(f"jobdetail/{name}", params)
            ours = jobdetail(jobs, 1 if size is None else size)
            assert ours == theirs, (name, size)
            compared += 1
    assert compared == 3 * len(seeded.jobs)


def test_the_tricky_group_and_unknown_workflows(reqmon: ReqmonServer, seeded: Seeded) -> None:
    name = MockGenerator(seed=SEED).workflow_name(0)
    (theirs,) = reqmon.result(f"jobdetail/{name}", {"sample_size": "3"})
    group = theirs[name][f"/{name}/Tricky"]["jobfailed"]["8021"]["T1_US_FNAL"]
    # a-acdc before b-acdc, then agent, then the sorted error types.
    assert [d["agent_name"] + " " + d["acdc_url"] for d in group["samples"]] == [
        "vocms0111.cern.ch https://a-acdc", "vocms0111.cern.ch https://a-acdc",
        "vocms0555.cern.ch https://a-acdc"]
    assert group["errorCount"] == 5
    assert theirs[name][f"/{name}/Tricky"]["success"]["0"]["T1_US_FNAL"]["errorCount"] == 1
    assert jobdetail(seeded.jobs[name], 3) == theirs
    assert reqmon.result("jobdetail/no_such_workflow") == [{}] == [jobdetail(None)]


@pytest.fixture(scope="module")
def wmstats_data(seeded: Seeded) -> Iterator[str]:
    """``.../wmstatsserver/data`` of a cache server fed by the CouchDB source."""
    source = (f"couchdb://{seeded.url.split('://', 1)[1]}?requests_db={seeded.reqmgr_db}"
              f"&wmstats_db={seeded.wmstats_db}&statuses=*")
    app = CacheApp(source=source)
    try:
        assert app.source is not None and app.source.wait_ready(300)
        with WebServer(_application(app)) as server:
            yield server.url + "/wmstatsserver/data"
    finally:
        app.close()


def test_jobdetail_over_http_equals_reqmons(reqmon: ReqmonServer, seeded: Seeded,
                                            wmstats_data: str) -> None:
    """The whole path: CouchDB source -> store -> the WMCore-compatible mount."""
    compared = 0
    for name in [*sorted(seeded.jobs), "no_such_workflow"]:
        for size in (None, 2, 3):
            params = None if size is None else {"sample_size": str(size)}
            theirs = reqmon.get(f"jobdetail/{name}", params)
            ours = requests.get(f"{wmstats_data}/jobdetail/{name}", params=params,
                                headers={"Accept": "application/json"}, timeout=60)
            assert ours.status_code == 200, ours.text
            assert ours.json() == theirs, (name, size)
            compared += 1
    assert compared == 3 * (len(seeded.jobs) + 1)
    print(f"\njobdetail over HTTP: {len(seeded.jobs) + 1} workflows x 3 sample sizes "
          f"= {compared} answers compared with reqmon's, all equal")


def test_jobdetail_bad_input_differences(reqmon: ReqmonServer, wmstats_data: str) -> None:
    """docs/wmcore-compat.md: where wmstats refuses by name what reqmon fails on."""
    name = MockGenerator(seed=SEED).workflow_name(0)
    for path, params, reqmon_status, parameter in (
            ("jobdetail", None, 500, "request_name"),
            (f"jobdetail/{name}", {"sample_size": "x"}, 500, "sample_size"),
            (f"jobdetail/{name}", {"bogus": "1"}, 400, "bogus")):
        theirs = requests.get(f"{reqmon.data_url}/{path}", params=params, timeout=60)
        ours = requests.get(f"{wmstats_data}/{path}", params=params, timeout=60)
        assert theirs.status_code == reqmon_status, (path, params, theirs.headers)
        assert ours.status_code == 400, (path, params, ours.text)
        assert ours.json()["parameter"] == parameter
