"""The source contract and registry (no server): URLs, options, the kept state (the
registry rules shared with store backends are tested for both in ``test_plugins.py``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
import ujson

from wmstats.backends.memory import MemoryStore
from wmstats.convert import Problem, convert_documents
from wmstats.mock import REQUEST_STATUSES, MockGenerator
from wmstats.serialize import json_loads
from wmstats.source import (
    ACTIVE_STATUSES,
    KNOWN_SOURCES,
    SCHEME_ALIASES,
    SOURCES,
    MissingSourceError,
    Source,
    SourceOptionError,
    SourceStatus,
    UnknownSourceError,
    available_sources,
    coerce_source_options,
    load_source,
    open_source,
    parse_source_url,
)
from wmstats_couchdb._state import SourceState
from wmstats_couchdb.source import CouchSource

# --------------------------------------------------------------------------- registry


def test_couchdb_is_registered() -> None:
    assert load_source("couchdb") is CouchSource
    assert load_source("couchdbs") is CouchSource
    assert available_sources()["couchdb"] == "wmstats_couchdb.source:CouchSource"
    assert dict(KNOWN_SOURCES) == {"couchdb": "wmstats_couchdb"}
    assert dict(SCHEME_ALIASES) == {"couchdbs": "couchdb"}
    assert KNOWN_SOURCES is SOURCES.known and SCHEME_ALIASES is SOURCES.aliases


def test_public_functions_are_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SOURCES, "_entry_points", dict)
    with pytest.raises(MissingSourceError, match="install wmstats_couchdb .* couchdbs://"):
        load_source("couchdbs")
    with pytest.raises(MissingSourceError, match="install wmstats_couchdb"):
        open_source("couchdb://localhost", MemoryStore())
    with pytest.raises(UnknownSourceError, match=r"available: couchdbs\)") as info:
        load_source("kafka")
    assert isinstance(info.value, LookupError)
    assert available_sources() == {}
    with pytest.raises(SourceOptionError, match="not a source URL"):
        parse_source_url("localhost:5984")


def test_incomplete_source_fails_when_built() -> None:
    class Half(Source):
        def start(self) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Half(MemoryStore())  # type: ignore[abstract]


# --------------------------------------------------------------------------- options


def test_url_options_and_query() -> None:
    store = MemoryStore()
    src = open_source("couchdb://alice:s%40cret@db.example:6000/prefix?requests_db=req&"
                      "wmstats_db=wms&statuses=running-open,completed&batch_size=50&gzip=true&"
                      "heartbeat=0.5", store)
    assert isinstance(src, CouchSource)
    assert src.server_url == "http://db.example:6000/prefix"
    assert src.client.auth == ("alice", "s@cret")
    assert src.databases == ("req", "wms")
    assert src.statuses == ("running-open", "completed")
    assert src.batch_size == 50 and src.client.gzip and src.heartbeat == 0.5
    assert src.store is store
    assert "s@cret" not in repr(src) and "s@cret" not in src.status().url
    src.close()


def test_https_scheme_default_port_and_all_statuses() -> None:
    src = open_source("couchdbs://cmsweb.example/couchdb?statuses=*", MemoryStore())
    assert isinstance(src, CouchSource)
    assert src.server_url == "https://cmsweb.example:443/couchdb"
    assert src.statuses is None
    src.close()


def test_defaults_follow_wmcore() -> None:
    src = open_source("couchdb://localhost", MemoryStore())
    assert isinstance(src, CouchSource)
    assert src.server_url == "http://localhost:5984"
    assert src.databases == ("reqmgr_workload_cache", "wmstats")
    assert src.statuses == ACTIVE_STATUSES
    src.close()


def test_keywords_override_the_url() -> None:
    src = open_source("couchdb://localhost?batch_size=10", MemoryStore(), batch_size=7)
    assert isinstance(src, CouchSource) and src.batch_size == 7
    src.close()


@pytest.mark.parametrize(("url", "message"), [
    ("couchdb://localhost?nope=1", "unknown option 'nope'"),
    ("couchdb://localhost?batch_size=many", "expected an integer"),
    ("couchdb://localhost?batch_size=0", "batch_size must be >= 1"),
    ("couchdb://localhost?gzip=maybe", "expected a boolean"),
    ("couchdb://localhost?heartbeat=nan", "finite"),
    ("couchdb://localhost?batch_size=1&batch_size=2", "given twice"),
    ("couchdb://localhost?requests_db=same&wmstats_db=same", "two database names"),
    ("couchdb://localhost?statuses=", "at least one status"),
    ("couchdb://:5984", "needs a host"),
    ("couchdb://localhost:notaport", "bad source URL"),
])
def test_bad_options(url: str, message: str) -> None:
    with pytest.raises(SourceOptionError, match=message):
        open_source(url, MemoryStore())


def test_coerce_types() -> None:
    got = coerce_source_options(CouchSource, {"timeout": "2.5", "user": "bob", "password": "",
                                              "statuses": "a, b,,c"})
    assert got == {"timeout": 2.5, "user": "bob", "password": "", "statuses": ("a", "b", "c")}


def test_status_record_is_json_ready() -> None:
    status = SourceStatus(ready=True, sequences={"db": "12-abc"}, problems=2)
    doc = status.to_dict()
    assert doc["sequences"] == {"db": "12-abc"} and doc["ready"] is True
    assert set(doc) == {"ready", "connected", "last_contact", "sequences", "last_load_seconds",
                        "loaded_at", "loads", "resumes", "updates_applied", "problems", "errors",
                        "last_error", "url"}
    with pytest.raises(TypeError):
        status.sequences["db"] = "x"  # type: ignore[index]


def test_mock_statuses_are_active() -> None:
    assert set(REQUEST_STATUSES) <= set(ACTIVE_STATUSES)


# --------------------------------------------------------------------------- state


def _docs(n: int, seed: int = 5) -> list[dict[str, Any]]:
    return list(MockGenerator(seed=seed).iter_documents(n))


def _db(doc: Mapping[str, Any]) -> str:
    return "wms" if doc.get("type") in ("agent_request", "agent_info") else "req"


def _load(state: SourceState, docs: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []
    for doc in docs:
        state.update(_db(doc), doc["_id"], doc, problems, set(), set())
    return problems


def _expected(docs: list[dict[str, Any]], statuses: tuple[str, ...] | None
              ) -> dict[str, Any]:
    result = convert_documents(docs)
    return {b.workflow.RequestName: b for b in result.bundles
            if statuses is None or b.workflow.RequestStatus in statuses}


def _state_bundles(state: SourceState) -> dict[str, Any]:
    return {b.workflow.RequestName: b for b in state.bundles()}


@pytest.mark.parametrize("statuses", [ACTIVE_STATUSES, ("running-open", "completed"), None])
def test_state_equals_converting_everything(statuses: tuple[str, ...] | None) -> None:
    docs = _docs(40)
    state = SourceState(statuses)
    assert _load(state, docs) == list(convert_documents(docs).problems)
    expected = _expected(docs, statuses)
    assert _state_bundles(state) == expected
    # agent reports kept packed give the same bundles
    state.forget_converted()
    assert _state_bundles(state) == expected
    assert state.agents() == list(convert_documents(docs).agents)
    if statuses is not None and len(statuses) == 2:
        assert 0 < len(expected) < 40


def test_state_updates_touch_only_their_workflow() -> None:
    docs = _docs(30)
    state = SourceState(ACTIVE_STATUSES)
    _load(state, docs)
    state.forget_converted()
    # a workflow reported by two agents: the other one's report is unpacked again
    agent_request = next(d for d in docs if d.get("type") == "agent_request"
                         and sum(x.get("workflow") == d["workflow"] for x in docs) > 1)
    changed = copy.deepcopy(agent_request)
    changed["status"]["success"] = changed["status"].get("success", 0) + 1000
    workflows: set[str] = set()
    agents: set[str] = set()
    state.update("wms", changed["_id"], changed, [], workflows, agents)
    assert workflows == {changed["workflow"]} and not agents
    new_docs = [changed if d is agent_request else d for d in docs]
    assert _state_bundles(state) == _expected(new_docs, ACTIVE_STATUSES)
    # the same change again changes nothing
    state.update("wms", changed["_id"], changed, [], set(), set())
    assert _state_bundles(state) == _expected(new_docs, ACTIVE_STATUSES)


def test_state_keeps_the_written_workflows_and_merges_as_before() -> None:
    """After a write to a store that keeps its records, the state keeps the written
    (merged) workflows as its requests' records: one record for both, and the next
    merges (a report changed, a report deleted) give what converting gives."""
    docs = _docs(30)
    state = SourceState(ACTIVE_STATUSES)
    _load(state, docs)
    store = MemoryStore()
    assert store.keeps_records
    bundles = list(state.bundles())
    store.replace(bundles)
    state.keep_written(b.workflow for b in bundles)
    rows = {w.RequestName: w for w in store._snap.workflows}
    assert state._requests and all(part.workflow is rows[name]
                                   for name, part in state._requests.items())
    reported = [d for d in docs if d.get("type") == "agent_request" and d["workflow"] in rows
                and d["status"].get("success", 0) > 0]
    changed = copy.deepcopy(reported[0])
    changed["status"]["success"] += 1000
    gone = next(d for d in reported if d["workflow"] != changed["workflow"])
    for doc_id, doc in ((changed["_id"], changed), (gone["_id"], None)):
        workflows: set[str] = set()
        state.update("wms", doc_id, doc, [], workflows, set())
        upserts = [state.bundle(n) for n in sorted(workflows)]
        store.apply(upserts)
        state.keep_written(b.workflow for b in upserts)
    new_docs = [changed if d is reported[0] else d for d in docs if d is not gone]
    expected = _expected(new_docs, ACTIVE_STATUSES)
    assert _state_bundles(state) == expected
    assert store.get_many(list(expected)) == expected
    assert expected[gone["workflow"]].workflow.Success < rows[gone["workflow"]].Success
    assert expected[changed["workflow"]].workflow.Success \
        == rows[changed["workflow"]].Success + 1000
    rows_now = {w.RequestName: w for w in store._snap.workflows}
    assert all(part.workflow is rows_now[name] for name, part in state._requests.items())


def test_state_deletions_and_status_changes() -> None:
    docs = _docs(30)
    state = SourceState(ACTIVE_STATUSES)
    _load(state, docs)
    request = next(d for d in docs if "RequestName" in d)
    name = request["RequestName"]
    archived = {**request, "RequestStatus": "normal-archived"}
    touched: set[str] = set()
    state.update("req", request["_id"], archived, [], touched, set())
    assert name in touched and not state.shown(name)
    state.update("req", request["_id"], request, [], set(), set())
    assert state.shown(name)
    # deleting the agent_request documents of the workflow drops its counters
    mine = [d for d in docs if d.get("workflow") == name]
    for doc in mine:
        state.update("wms", doc["_id"], None, [], set(), set())
    rest = [d for d in docs if d not in mine]
    assert _state_bundles(state) == _expected(rest, ACTIVE_STATUSES)
    # deleting the request removes the workflow; an agent_info deletion removes the agent
    state.update("req", request["_id"], None, [], set(), set())
    assert not state.shown(name)
    info = next(d for d in docs if d.get("type") == "agent_info")
    gone: set[str] = set()
    state.update("wms", info["_id"], None, [], set(), gone)
    assert gone == {info["agent_url"]} and state.agent(info["agent_url"]) is None


def test_state_reports_malformed_documents() -> None:
    state = SourceState(None)
    problems: list[Problem] = []
    state.update("wms", "x1", ["not", "an", "object"], problems, set(), set())
    state.update("wms", "x2", {"type": "mystery"}, problems, set(), set())
    state.update("wms", "x3", {"_id": "x3", "type": "agent_request", "workflow": "wf",
                               "status": {"success": "lots"}}, problems, set(), set())
    state.update("wms", "_design/app", {"views": {}}, problems, set(), set())
    assert [p.doc_id for p in problems] == ["x1", "x2", "x3", "x3"]
    assert state.ignored == 1 and state.shown("wf")


# --------------------------------------------------------------------------- CacheApp options


def test_cache_app_source_options() -> None:
    from wmstats.web import CacheApp

    store = MemoryStore()
    src = open_source("couchdb://127.0.0.1:9?retry_initial=5", store)
    with pytest.raises(ValueError, match="mock or source"):
        CacheApp(source=src, mock=3)
    with pytest.raises(ValueError, match="brings its own store"):
        CacheApp(store=MemoryStore(), source=src)
    with pytest.raises(TypeError, match="source URL or a Source"):
        CacheApp(source=42)
    app = CacheApp(source=src)  # its store is served; the app starts it, the caller stops it
    try:
        assert app.store is store and app.source is src
        assert not src.ready
    finally:
        app.close()
        assert src.stop(5)
    src.close()


# --------------------------------------------------------------------------- prefetch


def test_prefetched_keeps_order_raises_and_stops() -> None:
    import threading

    from wmstats_couchdb._prefetch import prefetched

    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing() -> Any:
        yield 1
        raise RuntimeError("page 2 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]

    made = []
    ended = threading.Event()

    def endless() -> Any:
        for i in range(10**6):
            made.append(i)
            yield i

    pages = prefetched(endless(), depth=1, on_exit=ended.set)
    assert next(pages) == 0
    pages.close()
    assert ended.is_set() and len(made) <= 4


def test_interleaved_keeps_each_sources_order_raises_and_stops() -> None:
    import threading

    from wmstats_couchdb._prefetch import interleaved

    got = list(interleaved([iter(range(30)), iter("abcdefghij")], depth=2))
    assert [x for i, x in got if i == 0] == list(range(30))
    assert [x for i, x in got if i == 1] == list("abcdefghij")
    assert len(got) == 40

    def failing() -> Any:
        yield "x"
        raise RuntimeError("reader failed")

    seen = []
    with pytest.raises(RuntimeError, match="reader failed"):
        for item in interleaved([iter(range(3)), failing()]):
            seen.append(item)
    assert (1, "x") in seen

    made: list[int] = []
    ended = [threading.Event(), threading.Event()]
    closed = threading.Event()

    def endless() -> Any:
        try:
            for i in range(10**6):
                made.append(i)
                yield i
        finally:
            closed.set()  # a source left part way is closed

    both = interleaved([endless(), endless()], depth=1,
                       on_exit=[ended[0].set, ended[1].set])
    next(both)
    both.close()
    assert all(e.is_set() for e in ended) and closed.is_set() and len(made) <= 8


def test_shared_request_fields_exist() -> None:
    import attrs
    from wmstats_couchdb._state import _SHARED_FIELDS

    from wmstats.schema import Workflow

    assert set(_SHARED_FIELDS) <= set(attrs.fields_dict(Workflow))


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("body", [
    b'{"rows": [{"id": "a", "doc": {"n": 3, "f": 0.1, "s": "\\u00e9t\\u00e9", "l": [true, null]}}]}',
    b'{"n": 18446744073709551615, "m": -9223372036854775808}',
    b'{"big": 123456789012345678901234567890, "neg": -98765432109876543210}',
    b'{"huge": 1e400, "x": [1]}',
    b'{"lone": "\\ud800", "n": 1}',
    b'[1.00000000000000011102230246251565404236316680908203125, 2.2250738585072011e-308]',
])
def test_couchdb_answers_decode_as_ujson_does(body: bytes) -> None:
    # orjson reads integers beyond 64 bits as floats and refuses some bodies ujson
    # reads: the decoder gives ujson's result for every body.
    got = json_loads(body)
    want = ujson.loads(body)
    assert got == want and ujson.dumps(got) == ujson.dumps(want)
