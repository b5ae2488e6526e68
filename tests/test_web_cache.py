"""The cache server over real HTTP: a CherryPy app on a free loopback port."""

from __future__ import annotations

import gzip
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import cherrypy
import jsonschema
import pytest
import requests
import ujson

from prometheus_client.parser import text_string_to_metric_families

from wmstats.aggregates import AGGREGATES
from wmstats.alerts import agent_status
from wmstats.mock import MockGenerator
from wmstats.query import Query, parse_query
from wmstats.schema import BUNDLE_PARTS, SCHEMA_VERSION
from wmstats.serialize import unstructure
from wmstats.store import Store, StoreError, open_store
from wmstats.web import CacheApp, CacheConfig, WebServer, build_application
from wmstats.web._metrics import Metrics
from wmstats.web._negotiate import choose_coding, choose_type, etag_matches, wants_gzip
from wmstats.web._routes import AGENTS
from wmstats.web.cache import ROUTES

N_WORKFLOWS = 240
LIMITS = {"default_limit": 20, "max_limit": 100, "max_stream_limit": 1000}
pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


class Served(NamedTuple):
    url: str
    app: CacheApp
    store: Store


@pytest.fixture(scope="module")
def generator() -> MockGenerator:
    return MockGenerator(seed=3)


@pytest.fixture(scope="module")
def memory_store(generator: MockGenerator) -> Iterator[Store]:
    with open_store("memory://") as store:
        store.replace(generator.bundles(N_WORKFLOWS), generator.agents())
        yield store


def _serve(store: Store, **options: Any) -> Iterator[Served]:
    app = CacheApp(store=store, **{**LIMITS, **options})
    with WebServer(build_application(app)) as server:
        yield Served(server.url, app, store)


@pytest.fixture(scope="module")
def server(memory_store: Store) -> Iterator[Served]:
    yield from _serve(memory_store)


@pytest.fixture(scope="module")
def sqlite_server(generator: MockGenerator, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Served]:
    path = tmp_path_factory.mktemp("sqlite") / "wmstats.db"
    with open_store(f"sqlite:///{path}") as store:
        store.replace(generator.bundles(N_WORKFLOWS), generator.agents())
        yield from _serve(store)


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def any_server(request: pytest.FixtureRequest) -> Served:
    name = "server" if request.param == "memory" else "sqlite_server"
    served: Served = request.getfixturevalue(name)
    return served


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def openapi(server: Served, http: requests.Session) -> dict[str, Any]:
    with http.get(server.url + "/openapi.json") as response:
        doc: dict[str, Any] = response.json()
    return doc


def get(http: requests.Session, url: str, *, fmt: str = "json", gz: bool = False,
        **headers: str) -> tuple[requests.Response, bytes]:
    """GET, returning the response and its decompressed body (checking the encoding)."""
    accept = {"json": "application/json", "ndjson": "application/x-ndjson"}[fmt]
    sent = {"Accept": accept, "Accept-Encoding": "gzip" if gz else "identity", **headers}
    with http.get(url, headers=sent, stream=True) as response:
        raw = response.raw.read(decode_content=False)
    if response.headers.get("Content-Encoding") == "gzip":
        assert gz, "gzip without Accept-Encoding: gzip"
        return response, gzip.decompress(raw)
    assert "Content-Encoding" not in response.headers
    return response, raw


def validator(openapi: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]})


def names(records: list[dict[str, Any]]) -> list[str]:
    return [r["RequestName"] for r in records]


def ndjson(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n") or not body
    return [ujson.loads(line) for line in body.splitlines()]


def first_value(store: Store, by: str) -> str:
    return str(store.aggregate(by)[0].Value)


# --------------------------------------------------------------------------- endpoints


def _data_paths(store: Store) -> list[tuple[str, str, str]]:
    """(path, JSON schema name, NDJSON kind) of every data endpoint."""
    wf = store.query(Query(limit=1)).records[0].RequestName
    paths = [("/fetch?limit=7", "WorkflowPage", "workflows"),
             ("/fetch/" + urllib.parse.quote(wf), "WorkflowDetail", "tagged")]
    for aggregate in AGGREGATES:
        listing = "AgentValueList" if aggregate is AGENTS else "ValueList"
        page = "AgentPage" if aggregate is AGENTS else "SummaryPage"
        value = urllib.parse.quote(first_value(store, aggregate.key), safe="")
        paths.append((f"/{aggregate.segment}", listing, "summaries"))
        paths.append((f"/{aggregate.segment}/{value}?limit=3", page, "tagged"))
    return paths


@pytest.mark.parametrize("gz", [False, True], ids=["identity", "gzip"])
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_every_data_endpoint_in_both_formats(any_server: Served, http: requests.Session,
                                             openapi: dict[str, Any], fmt: str,
                                             gz: bool) -> None:
    for path, schema, kind in _data_paths(any_server.store):
        response, body = get(http, any_server.url + path, fmt=fmt, gz=gz)
        assert response.status_code == 200, (path, body)
        assert response.headers["Vary"] == "Accept, Accept-Encoding"
        assert response.headers["X-Snapshot-Id"] == any_server.store.snapshot_id
        assert response.headers["ETag"].startswith('"')
        if fmt == "json":
            assert response.headers["Content-Type"] == "application/json"
            validator(openapi, schema).validate(ujson.loads(body))
            continue
        assert response.headers["Content-Type"] == "application/x-ndjson"
        lines = ndjson(body)
        assert lines, path
        if kind == "workflows":
            for line in lines:
                validator(openapi, "WorkflowFields").validate(line)
        elif kind == "summaries":
            for line in lines:
                validator(openapi, "AgentSummary" if "/agent" in path else "Summary"
                          ).validate(line)
        else:
            types = [line.pop("RecordType") for line in lines]
            assert types[0] in ("Workflow", "Summary")
            for record_type, line in zip(types, lines):
                validator(openapi, record_type).validate(line)


@pytest.mark.parametrize("gz", [False, True], ids=["identity", "gzip"])
def test_service_endpoints(server: Served, http: requests.Session, openapi: dict[str, Any],
                           gz: bool) -> None:
    response, body = get(http, server.url + "/healthz", gz=gz)
    health = ujson.loads(body)
    validator(openapi, "Health").validate(health)
    assert health["ready"] is True and health["workflows"] == N_WORKFLOWS
    assert health["snapshot"] == server.store.snapshot_id
    assert health["snapshot_age_seconds"] >= 0
    for path in ("/info", "/"):
        response, body = get(http, server.url + path, gz=gz)
        info = ujson.loads(body)
        validator(openapi, "Info").validate(info)
        assert info["schema_version"] == SCHEMA_VERSION and info["limits"] == LIMITS
        assert set(info["endpoints"]) == {r.path for r in ROUTES}
    response, body = get(http, server.url + "/schema", gz=gz)
    from wmstats.jsonschema import json_schema
    assert ujson.loads(body) == ujson.loads(ujson.dumps(json_schema()))
    response, body = get(http, server.url + "/metrics", gz=gz)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    response, body = get(http, server.url + "/openapi.json", gz=gz)
    assert ujson.loads(body)["openapi"].startswith("3.")


def test_openapi_describes_every_route_and_field(openapi: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(openapi["components"]["schemas"]["Workflow"])
    assert set(openapi["paths"]) == {r.path for r in ROUTES}
    params = openapi["components"]["parameters"]
    from wmstats.query import field_specs
    for spec in field_specs().values():
        assert spec.name in params
    for name in ("RequestPriority.ge", "RequestName.re", "Campaigns.glob", "HasRequest.eq"):
        assert name in params
    fetch = openapi["paths"]["/fetch"]["get"]
    refs = {p["$ref"].rsplit("/", 1)[-1] for p in fetch["parameters"]}
    assert {"idx", "limit", "sort", "fields", "format", "RequestStatus"} <= refs
    assert set(fetch["responses"]) >= {"200", "304", "400", "404", "406", "413"}
    assert params["limit"]["schema"]["maximum"] == LIMITS["max_stream_limit"]
    assert openapi["servers"] == [{"url": "/"}]
    # Every part of a workflow bundle is described (whatever BUNDLE_PARTS holds).
    detail = openapi["components"]["schemas"]["WorkflowDetail"]
    for name, cls in BUNDLE_PARTS.items():
        assert detail["properties"][name]["items"]["$ref"].endswith("/" + cls.__name__)
        assert name in detail["required"]
        assert cls.__name__ in openapi["components"]["schemas"]
    # Every aggregate has its listing and its per-value page.
    for aggregate in AGGREGATES:
        assert f"/{aggregate.segment}" in openapi["paths"]
        assert f"/{aggregate.segment}/{{{aggregate.param}}}" in openapi["paths"]
    assert openapi["components"]["schemas"]["Summary"]["properties"]["By"]["enum"] == \
        sorted(a.key for a in AGGREGATES)


# --------------------------------------------------------------------------- paging


PAGING_CASES = [
    {},
    {"RequestStatus": "running-open,running-closed,completed"},
    {"sort": "-RequestPriority,RequestDate"},
    {"RequestName": "*Run3*", "sort": "Campaign"},
    {"TotalInputEvents.ge": "1", "sort": "-StatusTime"},
]


def _follow(http: requests.Session, base: str, path: str, params: dict[str, str],
            page: int, fmt: str) -> tuple[list[str], list[int]]:
    query = urllib.parse.urlencode({**params, "limit": page, "format": fmt})
    url: str | None = f"{base}{path}?{query}"
    seen: list[str] = []
    totals: list[int] = []
    while url is not None:
        response, body = get(http, url, fmt=fmt, gz=True)
        assert response.status_code == 200, body
        totals.append(int(response.headers["X-Total-Count"]))
        records = ujson.loads(body)["workflows"] if fmt == "json" else ndjson(body)
        assert len(records) <= page
        seen += names(records)
        link = response.links.get("next")
        if fmt == "json":
            assert ujson.loads(body)["next"] == (link["url"] if link else None)
        url = None if link is None else urllib.parse.urljoin(url, link["url"])
    return seen, totals


@pytest.mark.parametrize("params", PAGING_CASES, ids=lambda p: ",".join(p) or "all")
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_pages_concatenate_to_the_unpaged_query(any_server: Served, http: requests.Session,
                                                params: dict[str, str], fmt: str) -> None:
    expected = names([{"RequestName": w.RequestName} for w in any_server.store.query(
        parse_query(params, default_limit=None)).records])
    seen, totals = _follow(http, any_server.url, "/fetch", params, 17, fmt)
    assert seen == expected
    assert len(set(seen)) == len(seen)
    assert set(totals) == {len(expected)}
    # One NDJSON request for everything gives the same list.
    query = urllib.parse.urlencode({**params, "limit": 1000})
    response, body = get(http, f"{any_server.url}/fetch?{query}", fmt="ndjson", gz=True)
    assert names(ndjson(body)) == expected
    assert "next" not in response.links


def test_summary_pages_concatenate(server: Served, http: requests.Session) -> None:
    site = first_value(server.store, "site")
    seen, totals = _follow(http, server.url, "/sites/" + site, {"fields": "RequestName"}, 4,
                           "json")
    expected = [w.RequestName for w in server.store.query(
        Query(limit=None).where("Sites", "eq", site)).records]
    assert seen == expected and set(totals) == {len(expected)}


def test_paging_headers_and_limits(server: Served, http: requests.Session) -> None:
    response, body = get(http, server.url + "/fetch")
    doc = ujson.loads(body)
    assert doc["limit"] == LIMITS["default_limit"] and len(doc["workflows"]) == 20
    assert response.headers["Link"] == '</fetch?idx=20&limit=20>; rel="next"'
    assert response.headers["X-Total-Count"] == str(N_WORKFLOWS)
    response, body = get(http, server.url + "/fetch?limit=0&RequestStatus=new")
    doc = ujson.loads(body)
    assert doc["workflows"] == [] and doc["next"] is None and "Link" not in response.headers
    assert doc["total"] == server.store.count(parse_query({"RequestStatus": "new"}))
    response, body = get(http, server.url + f"/fetch?idx={N_WORKFLOWS + 5}")
    assert ujson.loads(body)["workflows"] == [] and "Link" not in response.headers
    response, body = get(http, server.url + f"/fetch?idx={N_WORKFLOWS - 3}&limit=10")
    assert len(ujson.loads(body)["workflows"]) == 3 and "Link" not in response.headers
    # Beyond one batch: streamed, chunked, no Content-Length.
    response, body = get(http, server.url + "/fetch?limit=1000", fmt="ndjson")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    assert len(ndjson(body)) == N_WORKFLOWS


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_a_page_read_at_once_is_one_body_with_its_length(server: Served, http: requests.Session,
                                                        fmt: str, gz: bool) -> None:
    query = {"RequestStatus": ["running-open", "assigned"], "sort": "-RequestPriority",
             "limit": "50", "idx": "3"}
    url = server.url + "/fetch?" + urllib.parse.urlencode(query, doseq=True)
    with http.get(url, headers={"Accept": {"json": "application/json",
                                           "ndjson": "application/x-ndjson"}[fmt],
                                "Accept-Encoding": "gzip" if gz else "identity"},
                  stream=True) as response:
        raw = response.raw.read(decode_content=False)
    assert response.status_code == 200
    assert "Transfer-Encoding" not in response.headers
    assert int(response.headers["Content-Length"]) == len(raw)
    assert (response.headers.get("Content-Encoding") == "gzip") == gz
    body = gzip.decompress(raw) if gz else raw
    rows = ndjson(body) if fmt == "ndjson" else ujson.loads(body)["workflows"]
    expected = server.store.query(parse_query({k: v for k, v in query.items()})).records
    assert [r["RequestName"] for r in rows] == [w.RequestName for w in expected]
    assert len(rows) == min(50, max(0, int(response.headers["X-Total-Count"]) - 3))


def test_access_lines_are_made_only_when_written(server: Served, http: requests.Session,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from cherrypy import _cplogging

    made = []
    plain_access = _cplogging.LogManager.access
    monkeypatch.setattr(_cplogging.LogManager, "access",
                        lambda self: made.append(1) or plain_access(self))
    root = logging.getLogger("cherrypy.access")
    handlers, propagate = list(root.handlers), root.propagate
    for handler in handlers:
        root.removeHandler(handler)
    root.propagate = False
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    try:
        get(http, server.url + "/fetch?limit=1")
        assert made == [] and lines == []  # nobody reads it: not made
        root.addHandler(handler)
        get(http, server.url + "/fetch?limit=2")
        assert made == [1] and len(lines) == 1 and "GET /fetch?limit=2 " in lines[0]
    finally:
        root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.propagate = propagate


# --------------------------------------------------------------------------- queries


QUERY_CASES = [
    {"RequestStatus": "running-open"},
    {"RequestStatus": ["running-open", "assigned"], "sort": "-RequestPriority"},
    {"RequestName.glob": "*ACDC*"},
    {"Campaigns.re": "^Run3"},
    {"RequestPriority": ">=100000", "sort": "RequestPriority"},
    {"RequestDate": "2024-03-01..2024-05-01"},
    {"HasRequest": "true", "ParentageResolved": "false"},
    {"Sites": "T1_US_FNAL,T2_CH_CERN", "fields": "RequestName,Sites"},
    {"RequestType": "TaskChain", "CMSSWVersions.glob": "CMSSW_13_*"},
]


@pytest.mark.parametrize("params", QUERY_CASES, ids=lambda p: ",".join(p))
def test_filters_sort_and_mask_match_the_store(any_server: Served, http: requests.Session,
                                               params: dict[str, Any]) -> None:
    query = parse_query(params, default_limit=1000)
    page = any_server.store.query(query)
    expected = page.dicts()
    url = any_server.url + "/fetch?" + urllib.parse.urlencode({**params, "limit": 1000},
                                                               doseq=True)
    response, body = get(http, url, fmt="ndjson", gz=True)
    assert response.status_code == 200
    assert ndjson(body) == ujson.loads(ujson.dumps(expected))
    assert int(response.headers["X-Total-Count"]) == page.total


def test_workflow_detail(any_server: Served, http: requests.Session) -> None:
    store = any_server.store
    record = store.query(Query(limit=1).where("ChainLength", "ge", 2)).records[0]
    bundle = store.get(record.RequestName)
    assert bundle is not None
    response, body = get(http, any_server.url + "/fetch/" + record.RequestName)
    doc = ujson.loads(body)
    assert doc["workflow"] == unstructure(bundle.workflow)
    assert set(doc) == {"snapshot", "sources", "workflow", *BUNDLE_PARTS}
    for part, records in bundle.parts():
        assert doc[part] == [unstructure(r) for r in records]
    assert sum(len(doc[part]) for part in BUNDLE_PARTS) > 0
    response, body = get(http, any_server.url + "/fetch/" + record.RequestName, fmt="ndjson")
    lines = ndjson(body)
    assert [line["RecordType"] for line in lines] == [
        type(r).__name__ for r in bundle.records()]
    assert lines[0]["RequestName"] == record.RequestName


def test_summary_endpoints_match_the_store(server: Served, http: requests.Session) -> None:
    store = server.store
    assert {"status", "type", "team"} <= {a.segment for a in AGGREGATES}
    for aggregate in AGGREGATES:
        by, segment = aggregate.key, aggregate.segment
        response, body = get(http, f"{server.url}/{segment}")
        listing = ujson.loads(body)
        expected = [unstructure(s) for s in store.aggregate(by)]
        got = [{k: v for k, v in item.items() if k != "Agent"} for item in listing["values"]]
        if aggregate is AGENTS:
            # agents with a heartbeat but no workflow are listed too, with zero counts
            assert {a.AgentURL for a in store.get_agents()} <= {v["Value"] for v in got}
            got = [g for g in got if g["Workflows"]]
        assert got == expected
        value = str(store.aggregate(by)[-1].Value)
        quoted = urllib.parse.quote(value, safe="")
        response, body = get(http, f"{server.url}/{segment}/{quoted}?RequestStatus.re=^r")
        doc = ujson.loads(body)
        narrowed = parse_query({"RequestStatus.re": "^r"})
        assert doc["summary"] == unstructure(store.summary(by, value, narrowed))
        assert doc["total"] == doc["summary"]["Workflows"]
        if aggregate is AGENTS:
            agent = store.get_agent(value)
            assert (agent is None) == (doc["agent"] is None)
            if agent is not None:
                # the stored record, its status derived again at the time of the answer
                derived = {"DerivedStatus", "StatusReasons"}
                got_agent = {k: v for k, v in doc["agent"].items() if k not in derived}
                assert got_agent == {k: v for k, v in unstructure(agent).items()
                                     if k not in derived}
                assert doc["agent"]["DerivedStatus"] == agent_status(agent, time.time())[0]


def test_filtered_value_listing(server: Served, http: requests.Session) -> None:
    response, body = get(http, server.url + "/release?RequestStatus=running-open")
    doc = ujson.loads(body)
    expected = server.store.aggregate("release", parse_query({"RequestStatus": "running-open"}))
    assert [v["Value"] for v in doc["values"]] == [s.Value for s in expected]
    assert doc["total"] == len(expected)


def test_status_listing_tallies_the_filtered_set(any_server: Served,
                                                 http: requests.Session) -> None:
    # What the UI's summary chart reads: per status, the workflow count and the
    # summed counters of exactly the workflows matching the filters.
    store = any_server.store
    params = {"RequestType": "StepChain,TaskChain", "Teams": first_value(store, "team")}
    query = parse_query(params)
    matched = list(store.stream(query))
    assert matched
    response, body = get(http, any_server.url + "/status?"
                         + urllib.parse.urlencode(params))
    values = ujson.loads(body)["values"]
    expected: dict[str, tuple[int, int]] = {}
    for wf in matched:
        count, success = expected.get(wf.RequestStatus, (0, 0))
        expected[wf.RequestStatus] = (count + 1, success + wf.Success)
    assert {v["Value"]: (v["Workflows"], v["Success"]) for v in values} == expected
    assert sum(v["Workflows"] for v in values) == len(matched)
    for by, field in (("type", "RequestType"), ("team", "Teams")):
        response, body = get(http, f"{any_server.url}/{by}?RequestStatus=running-open")
        got = {v["Value"]: v["Workflows"] for v in ujson.loads(body)["values"]}
        assert got == {str(value): n for value, n in store.distinct(
            field, parse_query({"RequestStatus": "running-open"}))}
        value = next(iter(got))
        response, body = get(http, f"{any_server.url}/{by}/{urllib.parse.quote(value)}"
                                   "?RequestStatus=running-open&limit=5")
        doc = ujson.loads(body)
        assert doc["summary"]["Workflows"] == doc["total"] == got[value]


# --------------------------------------------------------------------------- bad input


BAD_REQUESTS = [
    ("/fetch?idx=-1", 400, "idx"),
    ("/fetch?idx=abc", 400, "idx"),
    ("/fetch?idx=1&idx=2", 400, "idx"),
    ("/fetch?limit=abc", 400, "limit"),
    ("/fetch?limit=-5", 400, "limit"),
    ("/fetch?limit=1001", 413, "limit"),
    ("/fetch?limit=1001&format=ndjson", 413, "limit"),
    ("/sites/T1_US_FNAL?limit=1001", 413, "limit"),
    ("/fetch?idx=99999999999999999999", 400, "idx"),
    ("/fetch?RequestPriority=99999999999999999999", 400, "RequestPriority"),
    ("/fetch?sort=RequestName,,Campaign", 400, "sort"),
    ("/fetch?RequestName.eq=" + "a" * 1001, 400, "RequestName.eq"),
    ("/fetch?bogus=1", 400, "bogus"),
    ("/fetch?requeststatus=new", 400, "requeststatus"),
    ("/fetch?RequestName.re=(", 400, "RequestName.re"),
    ("/fetch?RequestName.re=" + "a" * 1001, 400, "RequestName.re"),
    ("/fetch?RequestName.bogus=x", 400, "RequestName.bogus"),
    ("/fetch?RequestPriority=abc", 400, "RequestPriority"),
    ("/fetch?RequestPriority.glob=1*", 400, "RequestPriority.glob"),
    ("/fetch?RequestPriority=..", 400, "RequestPriority"),
    ("/fetch?RequestPriority.gt=1.5", 400, "RequestPriority.gt"),
    ("/fetch?RequestDate.ge=yesterday", 400, "RequestDate.ge"),
    ("/fetch?RequestDate=2024-01-01&RequestDate.ge=yesterday", 400, "RequestDate.ge"),
    ("/fetch?RequestDate.le=2024-01-01&RequestDate=soon", 400, "RequestDate"),
    ("/fetch?RequestName=x&sort=RequestName,-Bogus", 400, "sort"),
    ("/fetch?HasRequest=maybe", 400, "HasRequest"),
    ("/fetch?Transitions=x", 400, "Transitions"),
    ("/fetch?sort=Bogus", 400, "sort"),
    ("/fetch?sort=Transitions", 400, "sort"),
    ("/fetch?fields=RequestName,Bogus", 400, "fields"),
    ("/fetch?format=xml", 400, "format"),
    ("/fetch?format=json&format=ndjson", 400, "format"),
    ("/fetch?%ff=1", 400, None),
    ("/fetch?RequestName=%ff", 400, None),
    ("/sites?idx=0", 400, "idx"),
    ("/campaign?limit=1", 400, "limit"),
    ("/agent?sort=RequestName", 400, "sort"),
    ("/release?Bogus=1", 400, "Bogus"),
    ("/healthz?verbose=1", 400, "verbose"),
    ("/info?limit=1", 400, "limit"),
    ("/metrics?format=json", 400, "format"),
    ("/fetch/some_workflow?limit=1", 400, "limit"),
    ("/info?format=ndjson", 406, "format"),
    ("/nothing/here", 404, None),
    ("/fetch/no_such_workflow", 404, "workflow"),
    ("/fetch/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, "workflow"),
    ("/sites/T9_XX_Nowhere", 404, "site"),
    ("/agent/no.such.agent:9999", 404, "agent"),
    ("/release/CMSSW_0_0_0", 404, "release"),
    ("/campaign/NoCampaign?RequestStatus=new", 404, "campaign"),
    ("/status/no-such-status", 404, "status"),
    ("/type/NoSuchType", 404, "type"),
    ("/team/no-such-team", 404, "team"),
    ("/status?limit=1", 400, "limit"),
    ("/fetch?" + "RequestName=x&" * 2000, 414, None),
]


@pytest.mark.parametrize("path,status,parameter", BAD_REQUESTS,
                         ids=[f"{s}-{p[:40]}" for p, s, _ in BAD_REQUESTS])
def test_bad_requests_get_a_json_error(server: Served, http: requests.Session,
                                       openapi: dict[str, Any], path: str, status: int,
                                       parameter: str | None) -> None:
    with http.get(server.url + path) as response:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        doc = response.json()
    validator(openapi, "Error").validate(doc)
    assert doc.get("parameter") == parameter
    assert "Traceback" not in doc["detail"] and "File " not in doc["detail"]


def test_not_acceptable_and_methods(server: Served, http: requests.Session) -> None:
    with http.get(server.url + "/fetch", headers={"Accept": "text/html"}) as response:
        assert response.status_code == 406 and response.json()["error"] == "not_acceptable"
    with http.get(server.url + "/fetch?limit=1",
                  headers={"Accept": "text/html, */*;q=0.1"}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
    with http.get(server.url + "/fetch?limit=1",
                  headers={"Accept": "application/ndjson"}) as response:
        assert response.headers["Content-Type"] == "application/ndjson"
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        with http.request(method, server.url + "/fetch", data=b"{}") as response:
            assert response.status_code == 405
            assert response.headers["Allow"] == "GET, HEAD"
            assert response.json()["error"] == "method_not_allowed"


def test_head(server: Served, http: requests.Session) -> None:
    with http.head(server.url + "/fetch?limit=5&format=ndjson") as response:
        assert response.status_code == 200 and response.content == b""
        assert response.headers["X-Total-Count"] == str(N_WORKFLOWS)
        assert "next" in response.links


# --------------------------------------------------------------------------- caching


def test_etag_and_not_modified(generator: MockGenerator, http: requests.Session) -> None:
    with open_store("memory://") as store:
        store.replace(generator.bundles(30), generator.agents())
        for served in _serve(store):
            url = served.url + "/fetch?limit=5"
            response, _ = get(http, url)
            etag = response.headers["ETag"]
            assert store.snapshot_id in etag
            response, body = get(http, url, **{"If-None-Match": etag})
            assert response.status_code == 304 and body == b""
            assert response.headers["ETag"] == etag
            response, body = get(http, url, **{"If-None-Match": f'W/{etag}, "other"'})
            assert response.status_code == 304
            # A different representation has a different tag.
            response, _ = get(http, url, gz=True, **{"If-None-Match": etag})
            assert response.status_code == 200 and response.headers["ETag"] != etag
            response, _ = get(http, url + "&format=ndjson", **{"If-None-Match": etag})
            assert response.status_code == 200
            # A write makes a new snapshot, so a new tag.
            store.delete(store.query(Query(limit=1)).records[0].RequestName)
            response, body = get(http, url, **{"If-None-Match": etag})
            assert response.status_code == 200 and response.headers["ETag"] != etag
            assert response.headers["X-Total-Count"] == "29"
            for path in ("/schema", "/openapi.json", "/info"):
                response, _ = get(http, served.url + path)
                again, _ = get(http, served.url + path,
                               **{"If-None-Match": response.headers["ETag"]})
                assert again.status_code == 304


def test_an_update_in_place_changes_the_tag_and_the_served_text(
        generator: MockGenerator, http: requests.Session) -> None:
    """The memory store serves workflows from text encoded when they were written:
    an update of one workflow (rows kept in place) serves its new text, in every
    coding, under a new tag; the others are served as before."""
    import attrs

    with open_store("memory://") as store:
        store.replace(generator.bundles(30), generator.agents())
        for served in _serve(store):
            url = served.url + "/fetch?limit=30&sort=-RequestPriority"
            response, body = get(http, url)
            etag = response.headers["ETag"]
            before = {r["RequestName"]: r for r in json.loads(body)["workflows"]}
            name = sorted(before)[7]
            bundle = store.get(name)
            assert bundle is not None
            store.apply([attrs.evolve(bundle, workflow=attrs.evolve(
                bundle.workflow, RequestPriority=10**7, Success=bundle.workflow.Success + 3))])
            for coding in ("identity", "gzip", "zstd"):
                with http.get(url, headers={"Accept-Encoding": coding,
                                            "If-None-Match": etag}) as again:
                    assert again.status_code == 200 and again.headers["ETag"] != etag
                    rows = again.json()["workflows"]
                assert rows[0]["RequestName"] == name
                assert rows[0]["RequestPriority"] == 10**7
                assert rows[0]["Success"] == before[name]["Success"] + 3
                assert {r["RequestName"]: r for r in rows[1:]} == {
                    k: v for k, v in before.items() if k != name}


# --------------------------------------------------------------------------- metrics


_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]+="[^"]*",?)*\})? \S+$')


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition: (name, labels) -> value."""
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.match(line), \
            line
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
            **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics(server: Served, http: requests.Session) -> None:
    before = server.app.metrics.requests("fetch")
    for _ in range(3):
        get(http, server.url + "/fetch?limit=10&fields=RequestName")
    get(http, server.url + "/fetch?limit=x")
    response, body = get(http, server.url + "/metrics")
    samples = _samples(body.decode())
    assert _sample(samples, "wmstats_http_requests_total", endpoint="fetch", code="400") >= 1
    assert server.app.metrics.requests("fetch") == before + 4
    assert _sample(samples, "wmstats_http_request_duration_seconds_count",
                   endpoint="fetch") >= 4
    assert _sample(samples, "wmstats_http_request_duration_seconds_bucket",
                   endpoint="fetch", le="+Inf") >= 4
    assert _sample(samples, "wmstats_records_served_total", endpoint="fetch") >= 30
    assert _sample(samples, "wmstats_store_workflows") == N_WORKFLOWS
    assert _sample(samples, "wmstats_snapshot_age_seconds") >= 0
    assert _sample(samples, "wmstats_http_requests_in_flight") == 1  # this request
    assert _sample(samples, "process_resident_memory_bytes") > 0
    info = next(labels for (name, labels) in samples if name == "wmstats_info")
    assert dict(info)["backend"] == "memory" and dict(info)["schema_version"] == SCHEMA_VERSION


def test_histogram_buckets_are_inclusive_upper_bounds() -> None:
    """An observation exactly on a bound counts in that bucket (``le``), not the next;
    buckets are cumulative; each app has its own numbers."""
    metrics = Metrics(buckets=(0.01, 0.1, 1.0))
    other = Metrics(buckets=(0.01, 0.1, 1.0))
    for seconds in (0.01, 0.1, 0.10000001, 1.0, 5.0, 0.0):
        metrics.started()
        metrics.observe("fetch", 200, seconds, records=2, nbytes=10)
    samples = _samples(metrics.render())
    counts = {le: _sample(samples, "wmstats_http_request_duration_seconds_bucket",
                          endpoint="fetch", le=le) for le in ("0.01", "0.1", "1.0", "+Inf")}
    assert counts == {"0.01": 2, "0.1": 3, "1.0": 5, "+Inf": 6}
    assert _sample(samples, "wmstats_http_request_duration_seconds_count", endpoint="fetch") == 6
    assert _sample(samples, "wmstats_http_request_duration_seconds_sum",
                   endpoint="fetch") == pytest.approx(6.21000001)
    assert _sample(samples, "wmstats_records_served_total", endpoint="fetch") == 12
    assert _sample(samples, "wmstats_response_bytes_total", endpoint="fetch") == 60
    assert _sample(samples, "wmstats_http_requests_in_flight") == 0
    assert metrics.requests() == metrics.requests("fetch") == 6
    assert other.requests() == 0
    assert not any(name.startswith("wmstats_http_request_duration_seconds_bucket")
                   for name, _ in _samples(other.render()))


# --------------------------------------------------------------------------- failures


class _FailingStore(Store):
    """A store whose reads fail: with a StoreError or a plain bug."""

    backend = "failing"

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error("secret connection string couchdb://user:pw@host")

    replace = apply = get_many = query = distinct = aggregate = get_agents = _fail
    replace_jobs = apply_jobs = get_jobs = _fail

    @property
    def snapshot_id(self) -> str:
        raise self.error("secret")

    @property
    def jobs_snapshot_id(self) -> str:
        raise self.error("secret")


@pytest.mark.parametrize("error,status", [(StoreError, 503), (RuntimeError, 500)])
def test_store_failures_never_leak(http: requests.Session, error: type[Exception],
                                   status: int) -> None:
    app = CacheApp(store=_FailingStore(error))
    with WebServer(build_application(app)) as server:
        for path in ("/fetch", "/fetch/x", "/sites", "/sites/x", "/agent/x", "/jobs/x",
                     "/alerts"):
            with http.get(server.url + path) as response:
                assert response.status_code == status
                doc = response.json()
                assert doc["error"] in ("unavailable", "internal_error")
                assert "secret" not in response.text and "Traceback" not in response.text
        with http.get(server.url + "/healthz") as response:
            assert response.status_code == 503 and response.json()["ready"] is False
            assert "secret" not in response.text
        with http.get(server.url + "/metrics") as response:
            assert response.status_code == 200 and "wmstats_store_up 0" in response.text


# --------------------------------------------------------------------------- config


class _Section:
    """A WMCore ConfigSection stand-in: options as attributes."""

    store = "memory://"
    max_limit = "50"
    mock = 12
    unrelated = "ignored"


def test_config_the_wmcore_way_and_by_keywords(http: requests.Session) -> None:
    app = CacheApp(object(), _Section(), "/wmstats/cache")
    try:
        assert app.config.max_limit == 50 and app.config.default_limit == 50
        assert app.store.count() == 12 and app.mount == "/wmstats/cache"
    finally:
        app.close()
    with CacheApp.from_options(store="memory://", default_limit=5, gzip_level=6) as app:
        assert app.config == CacheConfig(store=app.config.store, default_limit=5, gzip_level=6)
    with pytest.raises(TypeError, match="unknown CacheApp option"):
        CacheApp(bogus=1)
    with pytest.raises(ValueError, match="default_limit"):
        CacheApp(default_limit=10, max_limit=5)
    with pytest.raises(ValueError, match="gzip_level"):
        CacheConfig(gzip_level=10)


def test_mounted_under_a_prefix_without_the_global_tree(memory_store: Store,
                                                        http: requests.Session) -> None:
    import cheroot.wsgi

    # The mount point comes from the WSGI SCRIPT_NAME the dispatcher sets.
    app = build_application(CacheApp(store=memory_store, **LIMITS))
    dispatcher = cheroot.wsgi.PathInfoDispatcher({"/cms/wmstats": app})
    with WebServer(dispatcher) as server:
        with http.get(server.url + "/cms/wmstats/fetch?limit=2&fields=RequestName") as resp:
            assert resp.status_code == 200
            assert resp.links["next"]["url"] == "/cms/wmstats/fetch?idx=2&limit=2&fields=RequestName"
        with http.get(server.url + "/cms/wmstats/openapi.json") as resp:
            assert resp.json()["servers"] == [{"url": "/cms/wmstats"}]
    assert cherrypy.tree.apps == {} or "/cms/wmstats" not in cherrypy.tree.apps


# --------------------------------------------------------------------------- helpers


def test_negotiation_helpers() -> None:
    offered = ("application/json", "application/x-ndjson", "application/ndjson")
    assert choose_type(None, None, offered) == "application/json"
    assert choose_type("application/x-ndjson", None, offered) == "application/x-ndjson"
    assert choose_type("application/*;q=0.5, application/ndjson", None, offered) == \
        "application/ndjson"
    assert choose_type("application/json;q=0.1, application/x-ndjson;q=0.9", None,
                       offered) == "application/x-ndjson"
    assert choose_type("application/x-ndjson", "json", offered) == "application/json"
    assert wants_gzip("gzip;q=0.5, identity") and wants_gzip("*")
    assert not wants_gzip("gzip;q=0") and not wants_gzip("identity") and not wants_gzip(None)
    assert not wants_gzip("*, gzip;q=0")
    assert etag_matches('"a", W/"b"', '"b"') and etag_matches("*", '"x"')
    assert not etag_matches('"a"', '"b"') and not etag_matches(None, '"b"')


#: Accept headers where the most specific matching range decides a type's q
#: (RFC 9110 12.5.1), in both orders: taking the first or the best range instead
#: picks the other type.
SPECIFICITY = [
    ("application/*;q=0.5, application/x-ndjson;q=1", "application/x-ndjson"),
    ("application/x-ndjson;q=1, application/*;q=0.5", "application/x-ndjson"),
    ("application/json;q=0.1, application/*;q=0.5", "application/x-ndjson"),
    ("application/*;q=0.5, application/json;q=0.1", "application/x-ndjson"),
    ("application/json;q=0, */*", "application/x-ndjson"),
    ("*/*, application/json;q=0", "application/x-ndjson"),
    ("application/x-ndjson;q=0, */*", "application/json"),
    ("*/*;q=0.9, application/*;q=0.1, application/ndjson", "application/ndjson"),
]


@pytest.mark.parametrize("accept,expected", SPECIFICITY)
def test_accept_the_most_specific_range_decides(accept: str, expected: str) -> None:
    offered = ("application/json", "application/x-ndjson", "application/ndjson")
    assert choose_type(accept, None, offered) == expected


def test_accept_specificity_over_http(server: Served, http: requests.Session) -> None:
    for accept, expected in SPECIFICITY:
        with http.get(server.url + "/fetch?limit=1", headers={"Accept": accept}) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"] == expected, accept
    # A JSON-only endpoint refused JSON by name is 406, even with */* allowed.
    for accept in ("application/json;q=0, */*", "*/*, application/json;q=0",
                   "application/json;q=0, application/*;q=1"):
        with http.get(server.url + "/info", headers={"Accept": accept}) as response:
            assert response.status_code == 406, accept
            assert response.json()["error"] == "not_acceptable"


# --------------------------------------------------------------------------- schemathesis


def test_schemathesis_all_checks_find_no_failure(
        server: Served, http: requests.Session,
        schemathesis_run: Callable[..., list[str]]) -> None:
    """The document is exactly as strict as the server: every schemathesis check
    (schema-valid requests accepted, schema-invalid ones refused, answers as
    documented) passes on every operation."""
    # In CI one summary collection of each kind stands for the others (the same
    # parameters and answers, from the same code): /campaign for the plain ones, /agent
    # for the one with Agent records (/status and /type, whose values the negative
    # cases of hypothesis find slowly, took ~2 minutes); WMSTATS_SCHEMATHESIS_FULL=1
    # runs all.
    kept = {"campaign", AGENTS.segment}
    skipped = {r.path for r in ROUTES if r.aggregate is not None and r.segment not in kept}
    assert skipped and len(skipped) < len(ROUTES)
    checks = schemathesis_run(server.url + "/openapi.json", http, 4, skipped.__contains__)
    assert {"negative_data_rejection", "positive_data_acceptance",
            "response_schema_conformance", "not_a_server_error"} <= set(checks)


# --------------------------------------------------------------------------- content codings


def test_choose_coding() -> None:
    every = ("zstd", "br", "gzip")
    assert choose_coding(None, every) is None and choose_coding("identity", every) is None
    assert choose_coding("gzip, deflate, br, zstd", every) == "zstd"
    assert choose_coding("gzip, br", every) == "br"
    assert choose_coding("gzip;q=1, zstd;q=0.5", every) == "gzip"
    assert choose_coding("x-gzip", every) == "gzip"
    assert choose_coding("*", every) == "zstd"
    assert choose_coding("*, zstd;q=0", every) == "br"
    assert choose_coding("zstd;q=0, gzip;q=0", every) is None
    assert choose_coding("zstd, br", ("gzip",)) is None
    assert choose_coding("zstd, gzip;q=0.1", ("gzip",)) == "gzip"


def _decoded(coding: str, raw: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(raw)
    if coding == "zstd":
        import zstandard
        # A stream may be several frames (the full fetch: one per run of workflows).
        out: bytes = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True).read()
        return out
    import brotli
    out: bytes = brotli.decompress(raw)
    return out


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_each_coding_streams_the_same_body(server: Served, http: requests.Session,
                                           coding: str, fmt: str) -> None:
    """A page and a whole stream in each coding decode to the identity body; the
    ETag names the coding."""
    for path in ("/fetch?limit=50", f"/fetch?limit={N_WORKFLOWS}&format=ndjson",
                 "/campaign"):
        url = server.url + path
        plain, body = get(http, url, fmt=fmt)
        accept = {"json": "application/json", "ndjson": "application/x-ndjson"}[fmt]
        with http.get(url, headers={"Accept": accept, "Accept-Encoding": f"{coding}, gzip;q=0.5"},
                      stream=True) as response:
            raw = response.raw.read(decode_content=False)
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == coding
        assert "Accept-Encoding" in response.headers["Vary"]
        assert _decoded(coding, raw) == body
        assert len(raw) < len(body)
        if "ETag" in plain.headers:
            assert response.headers["ETag"] == plain.headers["ETag"][:-1] + f'-{coding}"'


def test_without_the_optional_codecs_gzip_goes_through_zlib(
        memory_store: Store, http: requests.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """With isal, zstandard and brotli missing, only gzip is offered (written by zlib),
    and a client asking for zstd or br alone gets the identity."""
    import importlib

    from wmstats import stream

    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] in ("isal", "zstandard", "brotli"):
            raise ImportError(f"No module named {name!r} (test)")
        return real(name, package)

    stream._module.cache_clear()
    monkeypatch.setattr(stream.importlib, "import_module", missing)
    try:
        assert stream.available_codings() == ("gzip",)
        with pytest.raises(ValueError, match="zstd"):
            stream.compress_bytes(b"x", "zstd")
        data = b'{"RequestName":"a"}\n' * 5000
        packed = b"".join(stream.compress_chunks([data[:100], data[100:]], "gzip"))
        assert gzip.decompress(packed) == data
        assert packed[:2] == b"\x1f\x8b"
        for served in _serve(memory_store):
            url = served.url + "/fetch?limit=40"
            _, body = get(http, url)
            response, unpacked = get(http, url, gz=True, **{"Accept-Encoding": "zstd, gzip"})
            assert response.headers["Content-Encoding"] == "gzip" and unpacked == body
            with http.get(url, headers={"Accept-Encoding": "zstd, br"}, stream=True) as only:
                assert "Content-Encoding" not in only.headers
                assert only.raw.read(decode_content=False) == body
    finally:
        monkeypatch.undo()
        stream._module.cache_clear()
    assert stream.available_codings() == ("zstd", "br", "gzip")


def test_isal_writes_gzip_when_installed() -> None:
    """With isal installed gzip goes through it (its stream is not zlib's), and
    decodes the same."""
    import zlib

    from isal import isal_zlib

    from wmstats import stream

    data = b"".join(b'{"RequestName":"wf_%d","RequestPriority":%d}\n' % (i, i * 7)
                    for i in range(20000))
    packed = stream.compress_bytes(data, "gzip", 1)
    assert gzip.decompress(packed) == data
    isal = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    assert packed == isal.compress(data) + isal.flush()
    plain = zlib.compressobj(1, zlib.DEFLATED, 31)
    assert packed != plain.compress(data) + plain.flush()


# --------------------------------------------------------------------------- time budget


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_time_budget_stops_costly_filters_with_422(
        kind: str, generator: MockGenerator, tmp_path: Any, http: requests.Session) -> None:
    """A request whose filters outlast the server's time budget is stopped and
    answered 422 (JSON); health and requests without pattern filters still answer."""
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path}/budget.db"
    with open_store(url) as store:
        store.replace(generator.bundles(50), generator.agents())
        for served in _serve(store, query_budget=1e-9):
            for path in ("/fetch?RequestName.re=^(?:.|.){1,18}%23",
                         "/fetch?RequestName=*%3F*%3F*%3F*%3F*%23*&limit=0",
                         "/status?Campaigns.glob=*%3F*", "/sites/T1_US_FNAL?RequestName.re=x"):
                with http.get(served.url + path) as response:
                    assert response.status_code == 422, path
                    assert response.headers["Content-Type"] == "application/json"
                    doc = response.json()
                    assert doc["error"] == "query_timeout" and "time budget" in doc["detail"]
            with http.get(served.url + "/healthz") as response:
                assert response.status_code == 200 and response.json()["ready"]
            with http.get(served.url + "/info") as response:
                assert response.status_code == 200
        for served in _serve(store, query_budget=0):  # no budget
            with http.get(served.url + "/fetch?RequestName.re=^(?:.|.){1,18}_&limit=1") as r:
                assert r.status_code == 200 and r.json()["total"] > 0


def test_a_json_page_is_capped_at_max_limit(server: Served, http: requests.Session) -> None:
    """``limit`` goes up to ``max_stream_limit`` in every format (what the OpenAPI
    document says); a JSON page holds at most ``max_limit`` workflows, and says so."""
    response, body = get(http, server.url + "/fetch?limit=150&fields=RequestName")
    doc = ujson.loads(body)
    assert response.status_code == 200 and doc["limit"] == LIMITS["max_limit"]
    assert len(doc["workflows"]) == LIMITS["max_limit"] and doc["total"] == N_WORKFLOWS
    assert doc["next"].startswith("/fetch?idx=100&limit=150")
    response, body = get(http, server.url + "/fetch?limit=150&fields=RequestName",
                         fmt="ndjson")
    assert len(ndjson(body)) == 150


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_full_zstd_fetch_is_kept_frames_invalidated_by_a_change(
        generator: MockGenerator, http: requests.Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The full NDJSON fetch in zstd is the frames the app keeps of each run of
    workflows, compressed in the background; a change is in the very next body (its
    run compressed on the way), and the background catches up; the body decodes
    with ``zstandard`` and through the client library."""
    import attrs
    import zstandard

    from wmstats.backends import memory
    from wmstats.client import CacheClient

    monkeypatch.setattr(memory, "RUN_ROWS", 16)
    monkeypatch.setattr(memory, "RUN_MAX", 64)
    bundles = list(generator.bundles(N_WORKFLOWS))
    with open_store("memory://") as store:
        store.replace(bundles, generator.agents())
        for served in _serve(store, zstd_frame_level=3):
            frames = served.app.frames
            assert frames is not None
            full = f"{served.url}/fetch?format=ndjson&limit={N_WORKFLOWS}"

            def fetch() -> tuple[bytes, bytes]:
                _plain, body = get(http, full, fmt="ndjson")
                with http.get(full, headers={"Accept": "application/x-ndjson",
                                             "Accept-Encoding": "zstd"},
                              stream=True) as response:
                    raw = response.raw.read(decode_content=False)
                assert response.headers["Content-Encoding"] == "zstd"
                assert response.headers["X-Total-Count"] == str(N_WORKFLOWS)
                assert _decoded("zstd", raw) == body
                return raw, body

            _wait(lambda: frames.stale() == 0)
            runs = store.encoded_runs()
            assert runs is not None and len(runs.runs) > 4
            raw, body = fetch()
            assert len(raw) == frames.cache.stats(runs.runs)["bytes"]  # every frame kept
            assert zstandard.ZstdDecompressor().decompressobj().decompress(raw) != body

            old = bundles[100].workflow
            store.apply([attrs.evolve(bundles[100], workflow=attrs.evolve(
                old, RequestPriority=old.RequestPriority + 7))])
            raw, body = fetch()
            assert b'"RequestPriority":%d' % (old.RequestPriority + 7) in body
            _wait(lambda: frames.stale() == 0)
            raw, body = fetch()
            assert len(raw) == frames.cache.stats(store.encoded_runs().runs)["bytes"]

            # Anything but the whole default stream is compressed as it is sent.
            some = f"{served.url}/fetch?format=ndjson&limit=300&sort=-RequestName"
            _plain, part = get(http, some, fmt="ndjson")
            with http.get(some, headers={"Accept": "application/x-ndjson",
                                         "Accept-Encoding": "zstd"}) as response:
                assert response.headers["Content-Encoding"] == "zstd"
                assert response.content == part
            with CacheClient(served.url, page_size=1000) as client:
                got = [r["RequestName"] for r in client.iter_workflows()]
            assert got == sorted(b.workflow.RequestName for b in bundles)
            _response, text = get(http, served.url + "/metrics")
            samples = _samples(text.decode())
            assert _sample(samples, "wmstats_zstd_frames_stale") == 0


def test_zstd_frames_can_be_turned_off(memory_store: Store) -> None:
    with CacheApp(store=memory_store, zstd_frame_level=0) as app:
        assert app.frames is None
    with pytest.raises(ValueError, match="zstd_frame_level"):
        CacheConfig(zstd_frame_level=23)
