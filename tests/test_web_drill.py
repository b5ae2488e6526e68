"""The cache server's drill-down over real HTTP: /jobs/<workflow>, /alerts and the
agents' derived status."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import jsonschema
import pytest
import requests
import ujson

from wmstats.alerts import AlertRules, request_alerts
from wmstats.mock import MockGenerator
from wmstats.schema import WorkflowBundle
from wmstats.serialize import unstructure
from wmstats.store import Store, open_store
from wmstats.web import CacheApp, WebServer, build_application

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")
N = 200


class Served(NamedTuple):
    url: str
    app: CacheApp
    store: Store


@pytest.fixture(scope="module")
def generator() -> MockGenerator:
    return MockGenerator(seed=4)


def _serve(store: Store, **options: Any) -> Iterator[Served]:
    app = CacheApp(store=store, **options)
    try:
        with WebServer(build_application(app)) as server:
            yield Served(server.url, app, store)
    finally:
        app.close()


@pytest.fixture(scope="module")
def served(generator: MockGenerator) -> Iterator[Served]:
    with open_store("memory://") as store:
        yield from _serve(store, mock=N, mock_seed=4)


def get(url: str, **params: Any) -> requests.Response:
    headers = params.pop("headers", {"Accept": "application/json"})
    return requests.get(url, params=params, headers=headers, timeout=30)


def valid(url: str, name: str, doc: Any) -> None:
    components = get(url + "/openapi.json").json()["components"]
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                     "components": components}).validate(doc)


def with_jobs(store: Store, generator: MockGenerator) -> list[str]:
    names = [generator.workflow_name(i) for i in range(N)]
    return [n for n in names if store.jobs(n) is not None]


# --------------------------------------------------------------------------- /jobs


def test_jobs_of_a_workflow(served: Served, generator: MockGenerator) -> None:
    names = with_jobs(served.store, generator)
    assert len(names) > 30
    name = max(names, key=lambda n: len(served.store.jobs(n).groups))  # type: ignore[union-attr]
    jobs = served.store.jobs(name)
    assert jobs is not None
    url = f"{served.url}/jobs/{urllib.parse.quote(name, safe='')}"
    response = get(url)
    assert response.status_code == 200
    doc = response.json()
    valid(served.url, "WorkflowJobs", doc)
    assert doc["workflow"] == name and doc["snapshot"] == served.store.jobs_snapshot_id
    assert doc["groups"] == [unstructure(g) for g in jobs.groups]
    assert doc["jobs"] == sum(g.Jobs for g in jobs.groups) == int(
        response.headers["X-Total-Count"])
    # Documents are left out unless asked for.
    assert [s["JobName"] for s in doc["samples"]] == [s.JobName for s in jobs.samples]
    assert all(s["Document"] == "" for s in doc["samples"])
    full = get(url, documents="true").json()
    assert full["samples"] == [unstructure(s) for s in jobs.samples]
    assert all(ujson.loads(s["Document"])["_id"] == s["JobName"] for s in full["samples"])
    # NDJSON: the groups, then the samples, each tagged.
    lines = [ujson.loads(line) for line in get(url, format="ndjson").text.splitlines()]
    assert [line.pop("RecordType") for line in lines] == (
        ["JobGroup"] * len(jobs.groups) + ["JobSample"] * len(jobs.samples))
    assert lines[:len(jobs.groups)] == doc["groups"]


def test_jobs_filters(served: Served, generator: MockGenerator) -> None:
    name = max(with_jobs(served.store, generator),
               key=lambda n: len(served.store.jobs(n).groups))  # type: ignore[union-attr]
    jobs = served.store.jobs(name)
    assert jobs is not None
    url = f"{served.url}/jobs/{urllib.parse.quote(name, safe='')}"
    group = jobs.groups[0]
    cases: list[tuple[dict[str, str], Any]] = [
        ({"task": group.Task}, lambda g: g.Task == group.Task),
        ({"task": group.Task.rsplit("/", 1)[-1]},
         lambda g: g.Task.rsplit("/", 1)[-1] == group.Task.rsplit("/", 1)[-1]),
        ({"state": group.State}, lambda g: g.State == group.State),
        ({"exitcode": f"{group.ExitCode},1"}, lambda g: g.ExitCode in (group.ExitCode, 1)),
        ({"site": group.Site[:3] + "*"}, lambda g: g.Site.startswith(group.Site[:3])),
        ({"agent": group.Agent, "state": group.State},
         lambda g: g.Agent == group.Agent and g.State == group.State),
    ]
    for params, keep in cases:
        doc = get(url, **params).json()
        assert doc["groups"] == [unstructure(g) for g in jobs.groups if keep(g)], params
        assert all(keep(s) for s in jobs.samples if s.JobName in
                   {x["JobName"] for x in doc["samples"]}), params
        assert doc["jobs"] == sum(g.Jobs for g in jobs.groups if keep(g))


def test_jobs_errors_and_caching(served: Served, generator: MockGenerator) -> None:
    quiet = next(generator.workflow_name(i) for i in range(N)
                 if served.store.jobs(generator.workflow_name(i)) is None)
    doc = get(f"{served.url}/jobs/{quiet}").json()
    assert (doc["groups"], doc["samples"], doc["jobs"]) == ([], [], 0)
    missing = get(f"{served.url}/jobs/no_such_workflow")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    for params, parameter in (({"exitcode": "x"}, "exitcode"), ({"bogus": "1"}, "bogus"),
                              ({"documents": "maybe"}, "documents"),
                              ({"site": "x" * 400}, "site")):
        bad = get(f"{served.url}/jobs/{quiet}", **params)
        assert bad.status_code == 400 and bad.json()["parameter"] == parameter, params
    first = get(f"{served.url}/jobs/{quiet}")
    etag = first.headers["ETag"]
    again = get(f"{served.url}/jobs/{quiet}", headers={"If-None-Match": etag})
    assert again.status_code == 304


# --------------------------------------------------------------------------- /alerts


def test_alerts(served: Served) -> None:
    response = get(f"{served.url}/alerts")
    doc = response.json()
    valid(served.url, "AlertList", doc)
    assert response.headers["Cache-Control"] == "no-store"
    assert doc["total"] == len(doc["alerts"]) == int(response.headers["X-Total-Count"]) > 0
    kinds = {a["Kind"] for a in doc["alerts"]}
    # The pinned mock's heartbeats are long past: every agent is down.
    assert {"failed", "config-error", "agent-down"} <= kinds
    assert doc["agents"]["alerting"] == doc["agents"]["total"] == len(served.store.get_agents())
    assert sum(doc["counts"].values()) == doc["total"]
    # What evaluating every workflow gives.
    now = doc["now"]
    names = [w.RequestName for w in served.store.stream()]
    expected = sorted((a.Kind, a.RequestName) for b in served.store.get_many(names).values()
                      for a in request_alerts(b.workflow, b.sites, now))
    got = sorted((a["Kind"], a["RequestName"]) for a in doc["alerts"] if a["RequestName"])
    assert got == expected
    lines = get(f"{served.url}/alerts", format="ndjson").text.splitlines()
    assert len(lines) == doc["total"]


def test_alert_filters(served: Served) -> None:
    every = get(f"{served.url}/alerts").json()["alerts"]
    failed = [a for a in every if a["Kind"] == "failed"]
    assert get(f"{served.url}/alerts", kind="failed").json()["alerts"] == failed
    both = get(f"{served.url}/alerts", kind="failed,agent-down").json()["alerts"]
    assert {a["Kind"] for a in both} == {"failed", "agent-down"}
    site = next(s for a in every for s in a["Sites"])
    at_site = get(f"{served.url}/alerts", site=site).json()["alerts"]
    assert at_site and all(site in a["Sites"] for a in at_site)
    agent = next(a for alert in every for a in alert["Agents"])
    of_agent = get(f"{served.url}/alerts", agent=agent).json()["alerts"]
    assert of_agent and all(agent in a["Agents"] for a in of_agent)
    name = failed[0]["RequestName"]
    assert {a["RequestName"] for a in get(f"{served.url}/alerts", workflow=name).json()[
        "alerts"]} == {name}
    warnings = get(f"{served.url}/alerts", severity="warning").json()["alerts"]
    assert all(a["Severity"] == "warning" for a in warnings)
    for params in ({"kind": "bogus"}, {"severity": "fatal"}, {"limit": "x"}, {"limit": "-1"},
                   {"sort": "Kind"}):
        bad = get(f"{served.url}/alerts", **params)
        assert bad.status_code == 400, params


def test_agents_show_their_status_derived_now(served: Served) -> None:
    listing = get(f"{served.url}/agent").json()["values"]
    agents = [item["Agent"] for item in listing if item["Agent"]]
    assert agents and all(a["DerivedStatus"] == "down" for a in agents)
    assert all(a["StatusReasons"][0].startswith("no heartbeat for") for a in agents)
    one = agents[0]["AgentURL"]
    page = get(f"{served.url}/agent/{urllib.parse.quote(one, safe='')}").json()
    assert page["agent"]["DerivedStatus"] == "down"


def test_alerts_follow_writes_without_rescanning() -> None:
    now = int(time.time())
    live = MockGenerator(seed=4, now=now)
    with open_store("memory://") as store:
        store.replace(live.bundles(120), live.agents())
        app = CacheApp(store=store, alert_assigned_seconds=600)
        try:
            with WebServer(build_application(app)) as server:
                first = get(f"{server.url}/alerts").json()
                assert app.alert_feed.rebuilds == 1  # the store was filled before the app
                bundle = next(b for b in store.get_many(
                    [w.RequestName for w in store.stream()]).values()
                    if b.workflow.RequestStatus == "running-open")
                name = bundle.workflow.RequestName
                failed = attrs.evolve(bundle.workflow, RequestStatus="failed")
                store.apply([WorkflowBundle(failed, bundle.sites)])
                kinds = {a["Kind"] for a in get(f"{server.url}/alerts",
                                                 workflow=name).json()["alerts"]}
                assert "failed" in kinds
                assigned = attrs.evolve(bundle.workflow, RequestStatus="assigned",
                                        StatusTime=now - 601)
                store.apply([WorkflowBundle(assigned)])
                kinds = {a["Kind"] for a in get(f"{server.url}/alerts",
                                                 workflow=name).json()["alerts"]}
                assert kinds == {"assigned-stall"}
                store.apply(deletes=[name])
                assert get(f"{server.url}/alerts", workflow=name).json()["alerts"] == []
                store.replace(live.bundles(50, start=300), live.agents())
                assert get(f"{server.url}/alerts").json()["total"] > 0
                assert app.alert_feed.rebuilds == 1  # every write was heard: no rescan
                # The live mock: agents mostly ok, some in trouble (not every one down).
                statuses = {a["DerivedStatus"] for a in
                            (i["Agent"] for i in get(f"{server.url}/agent").json()["values"])
                            if a}
                assert "ok" in statuses and statuses != {"ok"}
                assert first["total"] > 0
        finally:
            app.close()


def test_a_store_written_elsewhere_is_rebuilt_once_per_snapshot(tmp_path: Path) -> None:
    gen = MockGenerator(seed=4)
    url = f"sqlite:///{tmp_path}/wmstats.db"
    with open_store(url) as writer, open_store(url) as reader:
        writer.replace(gen.bundles(60), gen.agents())
        app = CacheApp(store=reader)
        try:
            with WebServer(build_application(app)) as server:
                one = get(f"{server.url}/alerts").json()
                get(f"{server.url}/alerts")
                assert app.alert_feed.rebuilds == 1
                writer.replace(gen.bundles(30), gen.agents())  # another "process"
                two = get(f"{server.url}/alerts").json()
                assert app.alert_feed.rebuilds == 2
                assert one["snapshot"] != two["snapshot"]
        finally:
            app.close()


def test_thresholds_from_the_configuration() -> None:
    class Section:  # a WMCore ConfigSection stand-in
        alert_assigned_seconds = 60
        alert_site_error_ratio = 0.5
        alert_agent_stale_seconds = 3600
        alert_status_stall_seconds = 86400

    app = CacheApp(None, Section(), "/wmstats")
    try:
        assert app.alert_feed.rules == AlertRules(
            assigned_seconds=60, site_error_ratio=0.5, agent_stale_seconds=3600,
            status_stall_seconds=86400)
    finally:
        app.close()
    with pytest.raises(ValueError):
        CacheApp(alert_site_error_ratio=2.0)
    with pytest.raises(ValueError):
        CacheApp(alert_assigned_seconds=-5)


def test_openapi_describes_the_drill_down(served: Served) -> None:
    doc = get(f"{served.url}/openapi.json").json()
    jobs = doc["paths"]["/jobs/{workflow}"]["get"]
    names = {p.get("name") for p in jobs["parameters"]}
    assert {"workflow", "task", "state", "exitcode", "site", "agent", "documents"} <= names
    alerts = doc["paths"]["/alerts"]["get"]
    kind = next(p for p in alerts["parameters"] if p.get("name") == "kind")
    assert "agent-down" in kind["schema"]["items"]["enum"]
    for name in ("JobGroup", "JobSample", "Alert", "WorkflowJobs", "AlertList"):
        assert name in doc["components"]["schemas"]
    assert "/alerts" in get(f"{served.url}/info").json()["endpoints"]


def test_the_client_reads_jobs_and_alerts(served: Served, generator: MockGenerator) -> None:
    from wmstats.client import CacheClient, NotFoundError

    name = with_jobs(served.store, generator)[0]
    with CacheClient(served.url) as client:
        assert client.jobs(name, documents=True) == served.store.jobs(name)
        plain = client.jobs(name)
        assert all(s.Document == "" for s in plain.samples)
        state = plain.groups[0].State
        assert {g.State for g in client.jobs(name, {"state": [state]}).groups} == {state}
        with pytest.raises(NotFoundError):
            client.jobs("no_such_workflow")
        some = client.alerts(limit=3)
        assert len(some.alerts) == 3 and some.total > 3 and sum(some.counts.values()) == some.total
        failed = client.alerts({"kind": "failed"})
        assert set(failed.counts) == {"failed"} and all(a.Kind == "failed" for a in failed.alerts)
        assert some.agents[0] == len(served.store.get_agents())
