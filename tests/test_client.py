"""The HTTP client against a real cache server (and against deliberately broken ones)."""

from __future__ import annotations

import itertools
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
import pytest
import requests
import urllib3.util.retry

from wmstats.client import (
    ACCEPT_ENCODING,
    CacheClient,
    NotFoundError,
    RequestRejectedError,
    ServerError,
    SnapshotChangedError,
    TransportError,
)
from wmstats.alerts import agent_status
from wmstats.mock import MockGenerator
from wmstats.query import Query, parse_query
from wmstats.schema import BUNDLE_PARTS
from wmstats.store import Store, open_store
from wmstats.web import CacheApp, WebServer, build_application

N_WORKFLOWS = 150
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    gen = MockGenerator(seed=11)
    with open_store("memory://") as opened:
        opened.replace(gen.bundles(N_WORKFLOWS), gen.agents())
        yield opened


@pytest.fixture(scope="module")
def application(store: Store) -> Any:
    return build_application(CacheApp(store=store, max_limit=50, default_limit=10,
                                      max_stream_limit=500))


@pytest.fixture(scope="module")
def url(application: Any) -> Iterator[str]:
    with WebServer(application) as server:
        yield server.url


@pytest.fixture
def client(url: str) -> Iterator[CacheClient]:
    with CacheClient(url, page_size=37, backoff=0.01, timeout=10) as made:
        yield made


def _names(store: Store, params: dict[str, Any]) -> list[str]:
    return [w.RequestName for w in store.query(parse_query(params, default_limit=None)).records]


@pytest.mark.parametrize("filters,sort", [
    (None, None),
    ({"RequestStatus": ["running-open", "running-closed"]}, "-RequestPriority"),
    ({"RequestPriority.ge": 100000, "HasRequest": True}, ["Campaign", "-RequestDate"]),
    ({"RequestName": "*Run*"}, None),
])
def test_iter_workflows_follows_every_page(client: CacheClient, store: Store,
                                           filters: dict[str, Any] | None,
                                           sort: Any) -> None:
    params: dict[str, Any] = {k: (str(v).lower() if isinstance(v, bool) else
                                  v if isinstance(v, (str, list)) else str(v))
                              for k, v in (filters or {}).items()}
    if sort is not None:
        params["sort"] = sort if isinstance(sort, str) else ",".join(sort)
    expected = _names(store, params)
    got = [r["RequestName"] for r in client.iter_workflows(filters, sort=sort,
                                                           fields=["RequestName"])]
    assert got == expected
    assert len(expected) > 37 or filters is not None


def test_asks_for_the_best_coding_it_can_read(client: CacheClient, store: Store) -> None:
    """With zstd and br readable here (the test extras bring them), the client asks
    for zstd first and reads the server's zstd answers."""
    assert ACCEPT_ENCODING == "zstd, br, gzip"
    seen: list[tuple[str, str]] = []
    client.session.hooks["response"].append(
        lambda r, *args, **kwargs: seen.append((r.request.headers["Accept-Encoding"],
                                                r.headers.get("Content-Encoding", ""))))
    got = [r["RequestName"] for r in client.iter_workflows(limit=120)]
    assert got == _names(store, {})[:120]
    assert client.workflow(got[3]).workflow.RequestName == got[3]
    assert seen and all(sent == ACCEPT_ENCODING for sent, _ in seen)
    assert {coding for _, coding in seen} == {"zstd"}


def test_iter_workflows_offset_limit_and_records(client: CacheClient, store: Store) -> None:
    every = _names(store, {})
    got = [r["RequestName"] for r in client.iter_workflows(idx=5, limit=80,
                                                           fields="RequestName")]
    assert got == every[5:85]
    records = list(client.iter_workflow_records({"RequestStatus": "completed"}, limit=20))
    expected = store.query(parse_query({"RequestStatus": "completed", "limit": "20"})).records
    assert records == list(expected)


def test_default_page_size_is_the_server_maximum(url: str, application: Any,
                                                 store: Store) -> None:
    metrics = application.root.metrics
    before = metrics.requests("fetch")
    with CacheClient(url) as client:
        got = [r["RequestName"] for r in client.iter_workflows(fields="RequestName")]
        assert client.page_size == 500  # the server's max_stream_limit
    assert got == _names(store, {})
    assert metrics.requests("fetch") == before + 1


def test_iter_workflows_of_a_site_page(client: CacheClient, store: Store) -> None:
    site = str(max(store.aggregate("site"), key=lambda s: s.Workflows).Value)
    got = [r["RequestName"] for r in client.iter_workflows(path=f"sites/{site}",
                                                           fields=["RequestName"])]
    assert got == [w.RequestName for w in store.query(
        Query(limit=None).where("Sites", "eq", site)).records]


def test_fetch_count_and_workflow(client: CacheClient, store: Store) -> None:
    page = client.fetch({"RequestStatus": "running-open"}, idx=2, limit=5,
                        fields=["RequestName", "RequestStatus"])
    expected = store.query(parse_query({"RequestStatus": "running-open", "idx": "2",
                                        "limit": "5"}))
    assert [w["RequestName"] for w in page.workflows] == [w.RequestName
                                                          for w in expected.records]
    assert page.total == expected.total and page.idx == 2 and page.limit == 5
    assert page.next_url is not None and page.snapshot == store.snapshot_id
    assert client.count() == N_WORKFLOWS
    name = store.query(Query(limit=1).where("ChainLength", "ge", 2)).records[0].RequestName
    expected = store.get(name)
    assert expected is not None
    # Every part of the bundle (whatever BUNDLE_PARTS holds) has records here, so a
    # part the client did not read would show.
    assert [part for part, records in expected.parts() if not records] == []
    assert [part for part, _ in expected.parts()] == list(BUNDLE_PARTS)
    assert client.workflow(name) == expected


def test_summaries(client: CacheClient, store: Store) -> None:
    assert client.sites() == store.aggregate("site")
    assert client.campaigns() == store.aggregate("campaign")
    assert client.releases({"RequestStatus": "completed"}) == store.aggregate(
        "release", parse_query({"RequestStatus": "completed"}))
    agents = client.agents()
    assert {s.Value for s, _ in agents} >= {a.AgentURL for a in store.get_agents()}
    site = str(max(store.aggregate("site"), key=lambda s: s.Workflows).Value)
    summary = client.site(site, limit=3, fields=["RequestName"])
    assert summary.summary == store.summary("site", site)
    assert summary.page.total == summary.summary.Workflows and len(summary.page.workflows) == 3
    agent_url = str(store.aggregate("agent")[0].Value)
    agent = client.agent(agent_url, {"RequestStatus.re": "^running"})
    stored = store.get_agent(agent_url)
    assert stored is not None and agent.agent is not None
    # the stored record, its status derived at the time of the answer
    assert agent.agent == attrs.evolve(stored, DerivedStatus=agent.agent.DerivedStatus,
                                       StatusReasons=agent.agent.StatusReasons)
    assert agent.agent.DerivedStatus == agent_status(stored, time.time())[0]
    assert agent.summary == store.summary("agent", agent_url,
                                          parse_query({"RequestStatus.re": "^running"}))
    campaign = str(store.aggregate("campaign")[0].Value)
    assert client.campaign(campaign).summary.Value == campaign
    release = str(store.aggregate("release")[0].Value)
    assert client.release(release).summary == store.summary("release", release)
    running = parse_query({"RequestStatus.re": "^running"})
    for by in ("status", "type", "team"):
        assert client.values(by) == store.aggregate(by)
        snapshot, values = client.values_with_snapshot(by, {"RequestStatus.re": "^running"})
        assert snapshot == store.snapshot_id and values == store.aggregate(by, running)
        value = str(store.aggregate(by)[0].Value)
        assert client.summary(by, value).summary == store.summary(by, value)


def test_service_documents(client: CacheClient, store: Store) -> None:
    health = client.health()
    assert health["ready"] is True and health["workflows"] == N_WORKFLOWS
    assert client.info()["limits"]["max_limit"] == 50
    assert client.openapi()["openapi"].startswith("3.")
    assert "Workflow" in client.schema()["$defs"]


def test_errors_are_typed(client: CacheClient) -> None:
    with pytest.raises(RequestRejectedError) as info:
        list(client.iter_workflows({"RequestPriority.ge": "high"}))
    assert info.value.status == 400 and info.value.parameter == "RequestPriority.ge"
    assert info.value.error == "bad_request" and "RequestPriority" in str(info.value)
    with pytest.raises(RequestRejectedError) as info:
        client.fetch(limit=501)
    assert info.value.status == 413 and info.value.parameter == "limit"
    capped = client.fetch(limit=51)  # a JSON page holds at most max_limit workflows
    assert capped.limit == 50 and len(capped.workflows) == 50
    with pytest.raises(NotFoundError) as found:
        client.workflow("no/such workflow")
    assert found.value.status == 404 and found.value.error == "not_found"
    with pytest.raises(NotFoundError):
        client.site("T9_XX_Nowhere")
    with pytest.raises(ValueError):
        CacheClient("http://127.0.0.1:1", page_size=0)


# --------------------------------------------------------------------------- failures


def _flaky(inner: WSGIApp, failures: int, status: str = "503 Service Unavailable",
           headers: Sequence[tuple[str, str]] = ()) -> tuple[WSGIApp, list[int]]:
    """The first ``failures`` requests fail with ``status`` (and ``headers``); the
    rest reach ``inner``."""
    calls = [0]
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            calls[0] += 1
            fail = calls[0] <= failures
        if fail:
            start_response(status, [("Content-Type", "application/json"), *headers])
            return [b'{"error":"unavailable","detail":"try later"}']
        return inner(environ, start_response)
    return app, calls


def test_retries_5xx_with_backoff(application: Any) -> None:
    flaky, calls = _flaky(application, 2)
    with WebServer(flaky) as server, CacheClient(server.url, retries=3, backoff=0.01) as client:
        assert client.count() == N_WORKFLOWS
        assert calls[0] == 3
    flaky, calls = _flaky(application, 10)
    with WebServer(flaky) as server, CacheClient(server.url, retries=2, backoff=0.01) as client:
        started = time.monotonic()
        with pytest.raises(ServerError) as info:
            client.count()
        assert info.value.status == 503 and calls[0] == 3
        assert time.monotonic() - started >= 0.03  # 0.01 + 0.02 of backoff
    failing, calls = _flaky(application, 10, "500 Internal Server Error")
    with WebServer(failing) as server, CacheClient(server.url, retries=1, backoff=0,
                                                   page_size=100) as client:
        with pytest.raises(ServerError):
            list(client.iter_workflows())
        assert calls[0] == 2


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits urllib3's Retry asks for, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(urllib3.util.retry, "time",
                        types.SimpleNamespace(sleep=slept.append, time=time.time))
    return slept


def test_retry_after_is_honoured(application: Any, waits: list[float]) -> None:
    flaky, calls = _flaky(application, 1, headers=[("Retry-After", "2")])
    with WebServer(flaky) as server, CacheClient(server.url, retries=3,
                                                 backoff=0.01) as client:
        assert client.count() == N_WORKFLOWS
    assert calls[0] == 2 and waits == [2]
    # Never longer than max_wait, whatever the server asks.
    flaky, calls = _flaky(application, 2, headers=[("Retry-After", "3600")])
    with WebServer(flaky) as server, CacheClient(server.url, retries=3, backoff=0.01,
                                                 max_wait=0.5) as client:
        assert client.info()["name"] == "wmstats cache server"
    assert calls[0] == 3 and waits[1:] == [0.5, 0.5]


def test_backoff_doubles_from_the_first_retry(application: Any, waits: list[float]) -> None:
    flaky, calls = _flaky(application, 3, "502 Bad Gateway")
    with WebServer(flaky) as server, CacheClient(server.url, retries=3,
                                                 backoff=0.01) as client:
        assert client.count() == N_WORKFLOWS
    assert calls[0] == 4 and waits == [0.01, 0.02, 0.04]
    # health() asks once: a 503 there is the answer.
    flaky, calls = _flaky(application, 5, headers=[("Retry-After", "1")])
    with WebServer(flaky) as server, CacheClient(server.url, retries=3) as client:
        assert client.health() == {"error": "unavailable", "detail": "try later"}
    assert calls[0] == 1 and waits == [0.01, 0.02, 0.04]


def test_4xx_is_not_retried(application: Any) -> None:
    rejecting, calls = _flaky(application, 10, "400 Bad Request")
    with WebServer(rejecting) as server, CacheClient(server.url, retries=3) as client:
        with pytest.raises(RequestRejectedError):
            client.info()
        assert calls[0] == 1


def test_connection_errors_and_timeouts(application: Any) -> None:
    server = WebServer(application).start()
    dead = server.url
    server.stop()
    with CacheClient(dead, retries=2, backoff=0) as client:
        with pytest.raises(TransportError, match="cannot reach"):
            client.info()
        assert client.health()["ready"] is False

    def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(0.6)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    with WebServer(slow) as server, CacheClient(server.url, retries=1, backoff=0,
                                                timeout=(1.0, 0.2)) as client:
        with pytest.raises(TransportError):
            client.info()


def test_a_broken_page_stream_resumes(application: Any, store: Store) -> None:
    """The first NDJSON page breaks off after a few lines; the client asks again from there."""
    broken = [0]

    def breaking(environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterator[bytes]:
        environ["HTTP_ACCEPT_ENCODING"] = "identity"
        body = application(environ, start_response)
        try:
            if "ndjson" in environ.get("HTTP_ACCEPT", "") and broken[0] == 0:
                broken[0] += 1
                data = b"".join(body)
                lines = data.split(b"\n")
                yield b"\n".join(lines[:5]) + b"\n"
                raise ConnectionAbortedError("cut off on purpose")
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    with WebServer(breaking) as server, CacheClient(server.url, page_size=40,
                                                    backoff=0) as client:
        got = [r["RequestName"] for r in client.iter_workflows(fields=["RequestName"])]
    assert broken[0] == 1
    assert got == _names(store, {})


def test_snapshot_change_between_pages_is_reported() -> None:
    gen = MockGenerator(seed=5)
    with open_store("memory://") as store:
        store.replace(gen.bundles(30), gen.agents())
        app = build_application(CacheApp(store=store))
        with WebServer(app) as server, CacheClient(server.url, page_size=10) as client:
            pages = client.iter_workflows(fields=["RequestName"])
            first = list(itertools.islice(pages, 10))
            assert len(first) == 10
            store.delete(first[0]["RequestName"])
            with pytest.raises(SnapshotChangedError):
                list(pages)


def test_client_session_ownership(url: str) -> None:
    with requests.Session() as session:
        client = CacheClient(url, session=session)
        assert client.info()["name"] == "wmstats cache server"
        client.close()
        # The caller's session is still usable.
        with session.get(url + "/healthz") as response:
            assert response.status_code == 200
