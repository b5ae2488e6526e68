"""The UI server over real HTTP, reading from a real cache server (both on free ports)."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html
import io
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import cheroot.wsgi
import pytest
import requests

from wmstats import serve
from wmstats.aggregates import AGGREGATES
from wmstats.schema import WorkflowBundle
from wmstats.mock import MockGenerator
from wmstats.query import parse_query
from wmstats.schema import Workflow
from wmstats.web import WebServer
from wmstats.web._errors import ApiError
from wmstats.testing.ui_harness import Stack, chromium_path, serve_stack
from wmstats.web._ui_model import (
    TEXT_FILTERS,
    ROW_FIELDS,
    View,
    event_progress,
    job_groups,
    parse_view,
    workflow_row,
)
from wmstats.web.ui import SECURITY_HEADERS, UIApp, UIConfig, build_application

N_WORKFLOWS = 150
XSS = "<img src=x onerror=alert(1)>"


pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


@pytest.fixture(scope="module")
def generator() -> MockGenerator:
    return MockGenerator(seed=5)


@pytest.fixture(scope="module")
def stack(generator: MockGenerator) -> Iterator[Stack]:
    bundles = list(generator.bundles(N_WORKFLOWS))
    xss = attrs.evolve(bundles[0].workflow, RequestName=XSS, Campaign=XSS, Campaigns=(XSS,))
    bundles.append(WorkflowBundle(xss))
    with serve_stack(bundles, generator.agents(), generator.iter_jobs(N_WORKFLOWS),
                     reqmgr_url="https://cmsweb.example/reqmgr2",
                     job_dump_url="https://{agent}/dump?job={job}") as running:
        yield running


def _get(stack: Stack, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(stack.ui.url + path, timeout=30, **kwargs)


# --------------------------------------------------------------------------- pure parts


def test_parse_view_translates_the_page_vocabulary() -> None:
    view = parse_view({"status": ["running-open", "completed", "running-open"],
                       "campaign": ["A,B"], "site": [""], "q": ["HIG"],
                       "sort": ["-priority"], "idx": ["100"], "limit": ["25"]})
    assert view.filters == (("status", ("running-open", "completed")), ("campaign", ("A,B",)))
    assert view.cache_filters() == {"RequestStatus.eq": ["running-open", "completed"],
                                    "Campaigns.eq": ["A,B"], "RequestName.glob": ["*HIG*"]}
    assert view.cache_sort() == "-RequestPriority"
    assert (view.idx, view.limit) == (100, 25)
    assert parse_view({"q": ["*HIG*2024?"]}).cache_filters() == {
        "RequestName.glob": ["*HIG*2024?"]}
    assert View().cache_filters() == {} and View().cache_sort() is None


@pytest.mark.parametrize(("params", "parameter"), [
    ({"bogus": ["1"]}, "bogus"),
    ({"RequestStatus": ["x"]}, "RequestStatus"),
    ({"sort": ["-nope"]}, "sort"),
    ({"sort": ["--priority"]}, "sort"),
    ({"idx": ["-1"]}, "idx"),
    ({"limit": ["0"]}, "limit"),
    ({"limit": ["100000"]}, "limit"),
    ({"limit": ["1", "2"]}, "limit"),
    ({"q": ["a" * 400]}, "q"),
    ({"status": ["bad\x00value"]}, "status"),
    ({"status": [str(i) for i in range(300)]}, "status"),
])
def test_parse_view_refuses(params: dict[str, list[str]], parameter: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_view(params)
    assert info.value.status == 400 and info.value.parameter == parameter


def test_text_filters_are_wildcards_on_their_fields() -> None:
    view = parse_view({"input": ["RAW"], "output": ["/Prim*/AOD*"], "prepid": ["HIG-2024"],
                       "whitelist": ["T1_US_FNAL"]})
    assert view.cache_filters() == {
        "InputDataset.glob": ["*RAW*"], "OutputDatasets.glob": ["/Prim*/AOD*"],
        "PrepID.glob": ["*HIG-2024*"], "SiteWhitelist.glob": ["*T1_US_FNAL*"]}
    assert set(TEXT_FILTERS) == {"input", "output", "prepid", "whitelist"}
    assert parse_view({"input": [""]}).texts == ()
    with pytest.raises(ApiError) as info:
        parse_view({"prepid": ["x" * 400]})
    assert info.value.parameter == "prepid"


def test_parse_view_without_paging_refuses_sort() -> None:
    with pytest.raises(ApiError):
        parse_view({"sort": ["name"]}, paged=False)


def test_job_figures() -> None:
    record = {"QueuedFirst": 3, "QueuedRetry": 1, "SubmittedFirst": 10, "SubmittedRetry": 2,
              "SubmittedPending": 4, "SubmittedRunning": 8, "Success": 30, "FailureCreate": 1,
              "FailureSubmit": 2, "FailureException": 7, "CooloffJob": 5, "PausedJob": 1,
              "Canceled": 2, "Transition": 1, "OtherJobs": 1, "InWMBS": 99}
    jobs = job_groups(record)
    assert jobs == {"queued": 4, "pending": 4, "running": 8, "cooloff": 5, "paused": 1,
                    "success": 30, "failure": 10, "canceled": 2, "other": 2,
                    "created": 4 + 12 + 5 + 1 + 30 + 10 + 2 + 2}
    row = workflow_row({**record, "RequestName": "w", "TotalEstimatedJobs": 80})
    assert row["jobProgress"] == round(42 / 66, 4)
    assert row["failureRate"] == 0.25
    assert workflow_row({"RequestName": "w"})["jobProgress"] is None
    # Every counter field is in the table's field mask.
    assert {"RequestName", "Success", "OtherJobs"} <= set(ROW_FIELDS)


def test_event_progress() -> None:
    wf = {"TotalInputEvents": 1000, "OutputDatasets": ["/a", "/b"]}
    datasets = [{"Dataset": "/a", "Events": 800}, {"Dataset": "/b", "Events": 250}]
    assert event_progress(wf, datasets) == 0.25
    assert event_progress(wf, [{"Dataset": "/a", "Events": 5000}]) == 0.0
    assert event_progress({"RequestNumEvents": 100}, [{"Dataset": "/x", "Events": 300}]) == 1.0
    assert event_progress({"OutputDatasets": ["/a"]}, datasets) is None
    assert event_progress({"TotalInputEvents": 5}, []) is None


def test_config() -> None:
    assert UIConfig().cache_url == "http://127.0.0.1:8250"
    assert UIConfig.from_object({"cache_url": "http://h:1", "timeout": "3"}).timeout == 3.0
    with pytest.raises(TypeError, match="unknown UIApp option"):
        UIConfig.from_object(None, nope=1)
    with pytest.raises(ValueError, match="http"):
        UIConfig(cache_url="ftp://x")
    with pytest.raises(ValueError):
        UIConfig(timeout=-1)


# --------------------------------------------------------------------------- over HTTP


def test_page_and_static_files(stack: Stack) -> None:
    page = _get(stack, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script src="static/app.js" defer></script>' in page.text
    assert "<script>" not in page.text  # no inline script
    # The filters and grouping views the page builds: the aggregates, in order.
    config = re.search(r'<meta name="wmstats-config" content="([^"]*)">', page.text)
    assert config is not None
    assert json.loads(html.unescape(config.group(1))) == {
        "filters": [[a.key, a.label] for a in AGGREGATES],
        "groups": [[a.key, a.label] for a in AGGREGATES if a.view],
        # the text filters (wildcards), and the configured link bases
        "texts": [[key, label] for key, (_field, label) in TEXT_FILTERS.items()],
        "links": {"reqmgr": "https://cmsweb.example/reqmgr2",
                  "jobDump": "https://{agent}/dump?job={job}"}}
    for name, media in [("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("favicon.svg", "image/svg+xml")]:
        response = _get(stack, "/static/" + name)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith(media)
        etag = response.headers["ETag"]
        again = _get(stack, "/static/" + name, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    raw = _get(stack, "/static/app.js", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()).startswith(b"/* WMStats page")
    # The page's own state rides in its query string.
    assert _get(stack, "/?status=running-open&view=site").status_code == 200
    assert _get(stack, "/static/nope.js").status_code == 404
    assert _get(stack, "/static/index.html").status_code == 404
    assert _get(stack, "/static/../ui.py").status_code == 404


def test_security_headers_everywhere(stack: Stack) -> None:
    for path in ["/", "/static/app.js", "/api/workflows", "/api/nope", "/api/workflows?x=1"]:
        response = _get(stack, path)
        for key, value in SECURITY_HEADERS.items():
            assert response.headers.get(key) == value, (path, key)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_workflows_page_is_masked_sorted_and_filtered(stack: Stack) -> None:
    doc = _get(stack, "/api/workflows?limit=10&sort=-priority").json()
    assert doc["total"] == N_WORKFLOWS + 1 and doc["limit"] == 10 and len(doc["rows"]) == 10
    priorities = [row["priority"] for row in doc["rows"]]
    assert priorities == sorted(priorities, reverse=True)
    row = doc["rows"][0]
    assert set(row) == {"name", "status", "type", "campaign", "teams", "agents", "priority",
                        "statusTime", "agentUpdate", "estimated", "jobs", "jobProgress",
                        "failureRate"}
    status = row["status"]
    one = _get(stack, "/api/workflows", params={"status": status, "limit": 200}).json()
    assert one["total"] >= 1 and {r["status"] for r in one["rows"]} == {status}
    expected = stack.store.count()
    assert expected == N_WORKFLOWS + 1
    # Paging: the second page follows the first without overlap.
    first = _get(stack, "/api/workflows?limit=10&sort=name").json()["rows"]
    second = _get(stack, "/api/workflows?limit=10&idx=10&sort=name").json()["rows"]
    names = [r["name"] for r in first + second]
    assert names == sorted(names) and len(set(names)) == 20


def test_search_and_multi_select(stack: Stack) -> None:
    rows = _get(stack, "/api/workflows", params={"q": "<img", "limit": 50}).json()["rows"]
    assert [r["name"] for r in rows] == [XSS]
    values = _get(stack, "/api/filters").json()["filters"]
    statuses = [v for v, _ in values["status"]][:2]
    both = _get(stack, "/api/workflows", params={"status": statuses, "limit": 1}).json()
    counts = dict(values["status"])
    assert both["total"] == counts[statuses[0]] + counts[statuses[1]]


def test_filter_values_come_from_the_cache(stack: Stack) -> None:
    doc = _get(stack, "/api/filters").json()
    assert list(doc["filters"]) == [a.key for a in AGGREGATES]
    store = stack.store
    assert dict(map(tuple, doc["filters"]["status"])) == dict(store.distinct("RequestStatus"))
    assert dict(map(tuple, doc["filters"]["type"])) == dict(store.distinct("RequestType"))
    assert dict(map(tuple, doc["filters"]["team"])) == dict(store.distinct("Teams"))
    assert [v for v, _ in doc["filters"]["site"]] == [s.Value for s in store.aggregate("site")]
    assert XSS in [v for v, _ in doc["filters"]["campaign"]]


def test_summary_matches_the_store(stack: Stack) -> None:
    campaign = stack.store.aggregate("campaign")[0].Value
    team = stack.store.aggregate("team")[0].Value
    cases: list[dict[str, list[str]]] = [
        {}, {"status": ["running-open"]},
        {"status": ["running-open", "completed"], "type": ["StepChain", "TaskChain"]},
        {"q": ["*_T_24*"], "type": ["StepChain"]}, {"campaign": [campaign]},
        {"team": [team], "type": ["StepChain", "TaskChain"]},
        {"status": ["no-such-status"]}]
    for params in cases:
        doc = _get(stack, "/api/summary", params=params).json()
        view = parse_view(params, paged=False)
        query = parse_query(view.cache_filters(), default_limit=None)
        records = list(stack.store.stream(query))
        assert doc["workflows"] == len(records)
        totals: dict[str, int] = {}
        for record in records:
            for key, value in job_groups(attrs.asdict(record)).items():
                totals[key] = totals.get(key, 0) + value
        assert doc["jobs"] == (totals or job_groups({}))
        by_status: dict[str, int] = {}
        for record in records:
            by_status[record.RequestStatus] = by_status.get(record.RequestStatus, 0) + 1
        assert dict(map(tuple, doc["statuses"])) == by_status
        counts = [n for _, n in doc["statuses"]]
        assert counts == sorted(counts, reverse=True)
        assert doc["snapshot"] == stack.store.snapshot_id


def test_groups_agents_and_status(stack: Stack) -> None:
    groups = [a.key for a in AGGREGATES if a.view]
    assert {"campaign", "site", "agent", "release"} <= set(groups)
    for by in groups:
        doc = _get(stack, f"/api/groups/{by}").json()
        assert doc["by"] == by and doc["items"]
        item = doc["items"][0]
        assert {"value", "workflows", "statuses", "jobs", "jobProgress"} <= set(item)
    filtered = _get(stack, "/api/groups/campaign", params={"status": "running-open"}).json()
    assert sum(i["workflows"] for i in filtered["items"]) >= 1
    assert _get(stack, "/api/groups/nope").status_code == 404
    agents = _get(stack, "/api/agents").json()["items"]
    assert agents and all("agent" in a for a in agents)
    assert any(a["agent"] and a["agent"]["Status"] for a in agents)
    status = _get(stack, "/api/status").json()
    assert status["ready"] is True and status["workflows"] == N_WORKFLOWS + 1
    assert status["stale"] is False


def test_workflow_detail_and_events(stack: Stack) -> None:
    name = _get(stack, "/api/workflows", params={"status": "running-open", "limit": 1}
                ).json()["rows"][0]["name"]
    doc = _get(stack, "/api/workflow/" + urllib.parse.quote(name, safe="")).json()
    bundle = stack.store.get(name)
    assert bundle is not None
    assert doc["name"] == name and doc["meta"]["RequestName"] == name
    assert {t["value"] for t in doc["tasks"]} == {t.Task for t in bundle.tasks}
    assert {s["value"] for s in doc["sites"]} == {s.Site for s in bundle.sites}
    assert [d["dataset"] for d in doc["datasets"]] == [d.Dataset for d in bundle.datasets]
    assert len(bundle.transitions) > 0
    assert [(t["Status"], t["UpdateTime"]) for t in doc["transitions"]] == [
        (t.Status, t.UpdateTime) for t in bundle.transitions]
    assert sum(s["jobs"]["success"] for s in doc["sites"]) == sum(s.Success for s in bundle.sites)
    events = _get(stack, "/api/events", params={"name": [name, "no-such-workflow"]}).json()
    assert events["progress"] == {name: doc["eventProgress"], "no-such-workflow": None}
    missing = _get(stack, "/api/workflow/no-such-workflow")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    xss = _get(stack, "/api/workflow/" + urllib.parse.quote(XSS, safe="")).json()
    assert xss["name"] == XSS


@pytest.mark.parametrize(("path", "status"), [
    ("/api/workflows?sort=bogus", 400),
    ("/api/workflows?limit=abc", 400),
    ("/api/summary?sort=name", 400),
    ("/api/filters?x=1", 400),
    ("/api/events?name=" + "&name=".join(str(i) for i in range(300)), 400),
    ("/api/agents?x=1", 400),
    ("/api/nope", 404),
    ("/api/groups/nope", 404),
    ("/api/groups", 404),
    ("/api/workflow", 404),
    ("/api/workflows/x", 404),
    ("/nope", 404),
    ("/api/workflows?status=%ff", 400),
    ("/api/workflows?q=" + "x" * 20000, 414),
])
def test_bad_requests_are_json_errors(stack: Stack, path: str, status: int) -> None:
    response = _get(stack, path)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["error"] and doc["detail"]


def test_methods_and_head(stack: Stack) -> None:
    response = requests.post(stack.ui.url + "/api/workflows", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
    head = requests.head(stack.ui.url + "/api/workflows", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_cache_down_is_503_and_recovers(generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(20), generator.agents(), warm=False) as running:
        assert _get(running, "/api/workflows").status_code == 200
        running.cache.stop()
        for path in ["/api/workflows", "/api/summary?status=x", "/api/filters",
                     "/api/groups/site", "/api/agents", "/api/workflow/x"]:
            response = _get(running, path)
            assert response.status_code == 503, path
            assert response.json()["error"] == "unavailable"
        status = _get(running, "/api/status")
        assert status.status_code == 200 and status.json()["ready"] is False
        # The page itself still loads (it shows the error).
        assert _get(running, "/").status_code == 200


def test_stale_flag(generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(5), generator.agents(), stale_after=0.000001,
                     warm=False) as running:
        time.sleep(0.01)
        assert _get(running, "/api/status").json()["stale"] is True


def test_mounted_under_a_prefix(generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(5), warm=False) as running:
        app = UIApp(cache_url=running.cache_url, warm=False)
        try:
            cherrypy_app = build_application(app, script_name="/wmstats/ui")
            dispatcher = cheroot.wsgi.PathInfoDispatcher({"/wmstats/ui": cherrypy_app})
            with WebServer(dispatcher) as server:
                bare = requests.get(server.url + "/wmstats/ui", timeout=10,
                                    allow_redirects=False)
                assert bare.status_code == 301
                assert bare.headers["Location"].endswith("/wmstats/ui/")
                page = requests.get(server.url + "/wmstats/ui/", timeout=10)
                assert page.status_code == 200 and "static/app.js" in page.text
                rows = requests.get(server.url + "/wmstats/ui/api/workflows", timeout=10)
                assert rows.json()["total"] == 5
        finally:
            app.close()


def test_wmcore_signature() -> None:
    class Section:
        cache_url = "http://127.0.0.1:9"
        stale_after = 60
        warm = False

    app = UIApp(object(), Section(), "/wmstats/ui")
    try:
        assert app.config.cache_url == "http://127.0.0.1:9" and app.config.stale_after == 60
        assert app.mount == "/wmstats/ui"
    finally:
        app.close()


def test_ui_server_command(stack: Stack) -> None:
    parser = argparse.ArgumentParser()
    serve.add_ui_server_arguments(parser)
    args = parser.parse_args(["--cache", stack.cache_url, "--port", "0", "--quiet"])
    assert args.stale_after == 3600
    stop = threading.Event()
    result: list[int] = []
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        thread = threading.Thread(target=lambda: result.append(serve.run_ui_server(args, stop)))
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while "UI server: http" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.05)
            url = out.getvalue().split("UI server: ", 1)[1].split("/ ", 1)[0]
            assert requests.get(url + "/api/workflows", timeout=10).json()["total"] == \
                N_WORKFLOWS + 1
        finally:
            stop.set()
            thread.join(timeout=30)
    assert result == [0] and "stopped" in out.getvalue()
    bad = parser.parse_args(["--cache", "nope://x"])
    assert serve.run_ui_server(bad, threading.Event()) == 2


def test_workflow_record_fields_exist() -> None:
    names = {f.name for f in attrs.fields(Workflow)}
    assert set(ROW_FIELDS) <= names


def test_chromium_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("WMSTATS_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert chromium_path() is None
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("WMSTATS_CHROMIUM", str(fake))
    assert chromium_path() == str(fake)


def test_summary_and_filters_follow_the_data(generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(30), generator.agents(), warm=False) as running:
        first = _get(running, "/api/summary").json()
        assert first["workflows"] == 30
        assert _get(running, "/api/filters").json()["workflows"] == 30
        running.store.replace(generator.bundles(12), generator.agents())
        after = _get(running, "/api/summary").json()
        assert after["workflows"] == 12 and after["snapshot"] == running.store.snapshot_id
        campaign = running.store.aggregate("campaign")[0]
        filtered = _get(running, "/api/summary", params={"campaign": campaign.Value}).json()
        assert filtered["workflows"] == campaign.Workflows
        filters = _get(running, "/api/filters").json()
        assert filters["workflows"] == 12 and filters["snapshot"] == running.store.snapshot_id
        assert sum(n for _, n in filters["filters"]["type"]) == 12


def _fetched_records(stack: Stack) -> int:
    """Workflow records the cache server has sent from ``/fetch`` (its metrics)."""
    text = requests.get(stack.cache_url + "/metrics", timeout=10).text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if "_records_served_total" in line and 'endpoint="fetch"' in line)


def test_no_workflow_stream_for_filters_or_summary(generator: MockGenerator) -> None:
    # The filter values and summaries are aggregations of the cache server: the UI
    # server never reads the workflows themselves for them.
    with serve_stack(generator.bundles(40), generator.agents(), warm=False) as running:
        assert _get(running, "/api/workflows", params={"limit": 10}).status_code == 200
        assert _fetched_records(running) == 10  # the metric counts what it should
        for params in ({}, {"status": "running-open", "type": "TaskChain"}, {"q": "*a*"}):
            assert _get(running, "/api/summary", params=params).status_code == 200
        assert _get(running, "/api/filters").status_code == 200
        assert _fetched_records(running) == 10


# --------------------------------------------------------------------------- jobs, alerts


def test_api_jobs_is_the_job_view(stack: Stack, generator: MockGenerator) -> None:
    names = [generator.workflow_name(i) for i in range(N_WORKFLOWS)]
    name = max((n for n in names if stack.store.jobs(n)),
               key=lambda n: len(stack.store.jobs(n).groups))  # type: ignore[union-attr]
    jobs = stack.store.jobs(name)
    assert jobs is not None
    response = _get(stack, "/api/jobs/" + urllib.parse.quote(name, safe=""))
    assert response.status_code == 200
    view = response.json()
    assert view["name"] == name and view["total"] == sum(g.Jobs for g in jobs.groups)
    assert sum(t["jobs"] for t in view["tasks"]) == view["total"]
    assert {t["task"] for t in view["tasks"]} == {g.Task for g in jobs.groups}
    for task in view["tasks"]:
        for group in task["groups"]:
            expected = sum(g.Jobs for g in jobs.groups if (g.Task, g.State, g.ExitCode, g.Site)
                           == (task["task"], group["state"], group["exitCode"], group["site"]))
            assert group["jobs"] == expected and 0 < len(group["samples"]) <= 3
            assert all(s["job"] for s in group["samples"])
    assert sum(n for _code, n in view["exitCodes"]) == view["total"]
    code = view["exitCodes"][0][0]
    only = _get(stack, "/api/jobs/" + urllib.parse.quote(name, safe=""),
                params={"exitcode": str(code)}).json()
    assert [c for c, _n in only["exitCodes"]] == [code]
    bad = _get(stack, "/api/jobs/" + urllib.parse.quote(name, safe=""),
               params={"exitcode": "x"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "exitcode"
    missing = _get(stack, "/api/jobs/no_such_workflow")
    assert missing.status_code == 404


def test_api_alerts(stack: Stack) -> None:
    data = _get(stack, "/api/alerts").json()
    assert data["total"] == len(data["alerts"]) > 0 and not data["truncated"]
    assert sum(data["counts"].values()) == data["total"]
    assert {"kind", "severity", "workflow", "agent", "sites", "message", "since"} <= set(
        data["alerts"][0])
    counts_only = _get(stack, "/api/alerts", params={"limit": "0"}).json()
    assert counts_only["alerts"] == [] and counts_only["total"] == data["total"]
    kind = data["alerts"][0]["kind"]
    one_kind = _get(stack, "/api/alerts", params={"kind": kind}).json()
    assert {a["kind"] for a in one_kind["alerts"]} == {kind}
    for params in ({"kind": "nope"}, {"limit": "5"}, {"bogus": "1"}):
        assert _get(stack, "/api/alerts", params=params).status_code == 400, params


def test_agents_carry_their_derived_status(stack: Stack) -> None:
    items = _get(stack, "/api/agents").json()["items"]
    agents = [i["agent"] for i in items if i["agent"]]
    assert agents and all(a["DerivedStatus"] in ("ok", "warning", "error", "down")
                          for a in agents)
    # The pinned mock's heartbeats are long past.
    assert {a["DerivedStatus"] for a in agents} == {"down"}


def test_link_bases_are_checked() -> None:
    with pytest.raises(ValueError):
        UIConfig(reqmgr_url="javascript:alert(1)")
    with pytest.raises(ValueError):
        UIConfig(job_dump_url="ftp://x")
    config = UIConfig(reqmgr_url="https://cmsweb.cern.ch/reqmgr2/")
    assert config.page_config()["links"] == {"reqmgr": "https://cmsweb.cern.ch/reqmgr2",
                                             "jobDump": ""}


# --------------------------------------------------------------------------- fan-out


class _Counting:
    """A WSGI app that counts the requests it passes to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.count += 1
        return self.app(environ, start_response)


def test_one_browser_request_costs_a_bounded_number_of_cache_requests(
        generator: MockGenerator) -> None:
    """Issue 15: the UI server fans out a bounded number of cache requests per
    browser request, whatever the browser asks."""
    from wmstats.store import open_store
    from wmstats.web import CacheApp
    from wmstats.web import build_application as build_cache

    with open_store("memory://") as store:
        store.replace(generator.bundles(60), generator.agents())
        names = [r.RequestName for r in store.query().records]
        counting = _Counting(build_cache(CacheApp(store=store)))
        with WebServer(counting) as cache, \
                UIApp(cache_url=cache.url, warm=False) as app, \
                WebServer(build_application(app)) as ui:
            def cost(path: str, **params: Any) -> tuple[int, int]:
                before = counting.count
                status = requests.get(ui.url + path, params=params, timeout=60).status_code
                return status, counting.count - before

            assert cost("/api/events", name=names[:25]) == (200, 26)
            assert cost("/api/events", name=names[:25]) == (200, 1)  # kept per snapshot
            assert cost("/api/events", name=names[:26]) == (400, 0)
            assert cost("/api/filters") == (200, 7)
            assert cost("/api/filters") == (200, 1)
            for path in ("/api/workflows", "/api/summary", "/api/groups/site",
                         "/api/agents", "/api/status", "/api/workflow/" + names[0]):
                status, n = cost(path, **({"q": "*?*?*?*?*#*"} if "groups" in path else {}))
                assert (status, n) == (200, 1), path


# --------------------------------------------------------------------------- OpenAPI


def test_openapi_document_lists_every_api_endpoint(stack: Stack) -> None:
    from wmstats.web._ui_model import API_ROUTES, MAX_LIMIT, SORTS

    response = _get(stack, "/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {r.path for r in API_ROUTES} | {"/openapi.json"}
    params = {p["name"]: p for p in doc["paths"]["/api/workflows"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == MAX_LIMIT
    assert set(params["sort"]["schema"]["enum"]) == {*SORTS, *(f"-{k}" for k in SORTS)}
    assert _get(stack, "/openapi.json?x=1").status_code == 400


def test_drill_parameters_checked_as_documented(stack: Stack) -> None:
    for path, parameter in (("/api/alerts?site=a,b", "site"),
                            ("/api/alerts?kind=nope", "kind"),
                            ("/api/alerts?limit=5", "limit"),
                            ("/api/jobs/w?exitcode=--5", "exitcode"),
                            ("/api/jobs/w?" + "&".join(["state=x"] * 101), "state")):
        response = _get(stack, path)
        assert response.status_code == 400, path
        assert response.json()["parameter"] == parameter, path


def test_schemathesis_all_checks_find_no_failure(
        stack: Stack, schemathesis_run: Callable[..., list[str]]) -> None:
    """The UI server's document is exactly as strict as the server: every
    schemathesis check passes on every operation."""
    with requests.Session() as http:
        checks = schemathesis_run(stack.ui.url + "/openapi.json", http)
    assert {"negative_data_rejection", "positive_data_acceptance",
            "response_schema_conformance", "not_a_server_error"} <= set(checks)
