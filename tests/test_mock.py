"""Tests for :mod:`wmstats.mock`: determinism, realism, and dynamic == static."""

from __future__ import annotations

import collections
import gc
import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats.convert import convert_documents
from wmstats.mock import (
    ACTIVE_STATUSES,
    AGENTS,
    ARCHIVED_FROM,
    PRODUCTION_SIZE,
    REQUEST_TYPES,
    SITES,
    MockGenerator,
)
from wmstats.mock._archive import archived
from wmstats.schema import BUNDLE_PARTS, COUNTER_FIELDS, COUNTER_SOURCES, WorkflowBundle

_COUNTER_PATHS = frozenset(COUNTER_SOURCES.values())
_PERF_KEYS = frozenset({"cmsRunCPUPerformance", "inputEvents", "wrappedTotalJobTime", "dataset"})


@pytest.fixture(scope="module")
def population() -> list[WorkflowBundle]:
    """Enough workflows of one seed for the distribution tests."""
    return list(MockGenerator(seed=11).bundles(1500))


def _diff(got: WorkflowBundle, want: WorkflowBundle) -> str:
    """Say which part of two bundles differs, for a readable failure."""
    for part in ("workflow", *BUNDLE_PARTS):
        a, b = getattr(got, part), getattr(want, part)
        if a == b:
            continue
        if part == "workflow":
            fields = {f.name: (getattr(a, f.name), getattr(b, f.name))
                      for f in attrs.fields(type(a)) if getattr(a, f.name) != getattr(b, f.name)}
            return f"{want.workflow.RequestName}: workflow fields differ {fields}"
        return f"{want.workflow.RequestName}: {part} differ:\n got {a}\nwant {b}"
    return "equal"


def _assert_same(got: tuple[WorkflowBundle, ...], want: list[WorkflowBundle]) -> None:
    assert [b.workflow.RequestName for b in got] == [b.workflow.RequestName for b in want]
    for a, b in zip(got, want):
        assert a == b, _diff(a, b)


def _counter_leaves(status: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in status.items():
        if not prefix and key in _PERF_KEYS:
            continue
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from _counter_leaves(value, path)
        else:
            yield path, value


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_same_output() -> None:
    a, b = MockGenerator(seed=3), MockGenerator(seed=3)
    assert list(a.bundles(60)) == list(b.bundles(60))
    assert list(a.iter_documents(60)) == list(b.iter_documents(60))
    assert a.agents() == b.agents()


def test_different_seeds_differ() -> None:
    a, b = MockGenerator(seed=3), MockGenerator(seed=4)
    names_a = {a.workflow_name(i) for i in range(50)}
    names_b = {b.workflow_name(i) for i in range(50)}
    assert not names_a & names_b
    assert list(a.bundles(20)) != list(b.bundles(20))
    assert a.agent_documents() != b.agent_documents()


def test_random_access_matches_streaming() -> None:
    gen = MockGenerator(seed=5)
    streamed = list(gen.bundles(40, start=100))
    assert [gen.bundle(i) for i in range(100, 140)] == streamed
    assert gen.bundle(120) == streamed[20]
    assert gen.workflow_name(137) == streamed[37].workflow.RequestName
    docs = gen.documents(120)
    assert docs[0]["RequestName"] == streamed[20].workflow.RequestName
    assert [d["agent_url"] for d in docs[1:]] == list(dict.fromkeys(
        d["agent_url"] for d in docs[1:]))


def test_iter_documents_order() -> None:
    gen = MockGenerator(seed=6)
    docs = list(gen.iter_documents(5, start=10))
    n_agents = len(AGENTS)
    assert docs[:n_agents] == gen.agent_documents()
    assert docs[n_agents:] == [d for i in range(10, 15) for d in gen.documents(i)]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        MockGenerator(max_tasks=0)
    with pytest.raises(IndexError):
        MockGenerator().bundle(-1)


# --------------------------------------------------------------------------- dynamic == static


@pytest.mark.parametrize("seed", [0, 1, 42, 2**40 + 7])
def test_converted_documents_equal_static_records(seed: int) -> None:
    gen = MockGenerator(seed=seed)
    result = convert_documents(gen.iter_documents(250))
    assert result.problems == ()
    assert result.agents == tuple(gen.agents())
    _assert_same(result.bundles, list(gen.bundles(250)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(-(2**63), 2**63), start=st.integers(0, 10**9))
def test_any_seed_and_slice_converts_exactly(seed: int, start: int) -> None:
    gen = MockGenerator(seed=seed)
    result = convert_documents(gen.iter_documents(4, start=start))
    assert result.problems == ()
    _assert_same(result.bundles, list(gen.bundles(4, start=start)))


def test_conversion_survives_json_round_trip() -> None:
    gen = MockGenerator(seed=8)
    docs = [ujson.loads(ujson.dumps(d)) for d in gen.iter_documents(150, start=5000)]
    result = convert_documents(docs)
    assert result.problems == ()
    _assert_same(result.bundles, list(gen.bundles(150, start=5000)))


@pytest.mark.parametrize("knobs", [
    {"max_tasks": 1, "max_sites": 1, "max_agents": 1},
    {"max_tasks": 3, "max_sites": 60, "max_agents": 2},
])
def test_knobs_are_honoured_and_convert(knobs: dict[str, int]) -> None:
    gen = MockGenerator(seed=9, **knobs)
    bundles = list(gen.bundles(200))
    result = convert_documents(gen.iter_documents(200))
    assert result.problems == ()
    _assert_same(result.bundles, bundles)
    active = 0
    for b in bundles:
        agents = b.workflow.Agents
        assert len(agents) <= knobs["max_agents"]
        for agent in agents:
            tasks = [t for t in b.tasks if t.Agent == agent]
            assert 1 <= len(tasks) <= knobs["max_tasks"]
            per_task = collections.Counter(ts.Task for ts in b.task_sites if ts.Agent == agent
                                           and ts.Success + ts.SubmittedRunning
                                           + ts.QueuedFirst + ts.FailureException + ts.Canceled)
            assert max(per_task.values(), default=0) <= knobs["max_sites"]
        active += bool(agents)
    assert active > 50


def test_production_sized_workflows_fill_their_limits_and_convert() -> None:
    gen = MockGenerator.production_sized(seed=5)
    tasks, sites, agents = PRODUCTION_SIZE
    assert (gen.max_tasks, gen.max_sites, gen.max_agents, gen.fill) == (tasks, sites, agents,
                                                                        True)
    bundles = list(gen.bundles(150))
    result = convert_documents(gen.iter_documents(150))
    assert result.problems == ()
    _assert_same(result.bundles, bundles)
    widest = 0
    for b in bundles:
        wf = b.workflow
        if wf.Teams == ("production",) and wf.Agents and wf.RequestStatus != "acquired":
            assert len(wf.Agents) == agents, wf.RequestName
        for agent in wf.Agents:
            assert len({t.Task for t in b.tasks if t.Agent == agent}) <= tasks
            per_task = collections.Counter(ts.Task for ts in b.task_sites
                                           if ts.Agent == agent)
            assert max(per_task.values(), default=0) <= sites + 1  # + a LogCollect extra
            widest = max(widest, max(per_task.values(), default=0))
    assert widest >= sites
    default = list(MockGenerator(seed=5).bundles(150))
    assert (sum(len(b.task_sites) for b in bundles)
            > 2 * sum(len(b.task_sites) for b in default))


def test_status_history_records(population: list[WorkflowBundle]) -> None:
    # Each workflow's history is its own records, numbered from 0, from "new" to
    # the current status, in time order; StatusTime is the last step's time.
    for bundle in population:
        wf, history = bundle.workflow, bundle.transitions
        assert [t.Index for t in history] == list(range(len(history))) and history
        assert {t.RequestName for t in history} == {wf.RequestName}
        assert history[0].Status == "new" and history[-1].Status == wf.RequestStatus
        assert history[-1].UpdateTime == wf.StatusTime
        times = [t.UpdateTime for t in history]
        assert times == sorted(times) and all(t.DN for t in history)


# --------------------------------------------------------------------------- document shape


def test_request_documents_look_like_reqmgr2() -> None:
    gen = MockGenerator(seed=12)
    kinds: set[str] = set()
    for i in range(300):
        request = gen.documents(i)[0]
        assert request["_id"] == request["RequestName"]
        assert len(request["RequestDate"]) == 6
        assert request["RequestTransition"][-1]["Status"] == request["RequestStatus"]
        times = [t["UpdateTime"] for t in request["RequestTransition"]]
        assert times == sorted(times)
        assert isinstance(request["ScramArch"], list)
        for key in ("Campaign", "CMSSWVersion", "RequestType", "PrepID", "Group",
                    "Requestor", "RequestPriority", "OutputDatasets", "SiteWhitelist",
                    "SiteBlacklist", "TotalEstimatedJobs", "OutputModulesLFNBases",
                    "UnmergedLFNBase"):
            assert key in request, key
        chain = request["RequestType"] if request["RequestType"] in ("TaskChain",
                                                                     "StepChain") else None
        if chain:
            kinds.add(chain)
            prefix = "Task" if chain == "TaskChain" else "Step"
            n = request[chain]
            assert n > 1
            assert [f"{prefix}{k}" for k in range(1, n + 1)] == sorted(
                request["ChainParentageMap"], key=lambda k: int(k[4:]))
            for k in range(1, n + 1):
                sub = request[f"{prefix}{k}"]
                assert sub["Campaign"] and sub["AcquisitionEra"] and sub["ProcessingString"]
                assert sub["TaskName" if chain == "TaskChain" else "StepName"]
            if chain == "StepChain":
                assert isinstance(request["ParentageResolved"], bool)
        if request["RequestStatus"] in ("new", "assignment-approved"):
            assert request["SiteWhitelist"] == [] and "Team" not in request
    assert kinds == {"TaskChain", "StepChain"}


def test_agent_request_documents_look_like_wmcore() -> None:
    gen = MockGenerator(seed=13)
    seen_paths: set[str] = set()
    perf_sites = 0
    for i in range(300):
        request, *agent_docs = gen.documents(i)
        for doc in agent_docs:
            assert doc["type"] == "agent_request"
            assert doc["workflow"] == request["RequestName"]
            assert doc["agent_url"] in AGENTS
            assert AGENTS[doc["agent_url"]][0] == request["Team"]
            assert len(doc["_id"]) == 32
            counters = [doc["status"], *doc["sites"].values()]
            for task, task_doc in doc["tasks"].items():
                assert task.startswith(f"/{request['RequestName']}/")
                assert task_doc["jobtype"] in ("Production", "Processing", "Merge",
                                               "Harvesting", "LogCollect", "Cleanup")
                assert set(task_doc["subscription_status"]) == {"open", "finished", "total",
                                                                "updated"}
                assert set(task_doc.get("skipped", {"skippedFiles": 1})) == {"skippedFiles"}
                counters.append(task_doc.get("status", {}))
                for site, site_doc in task_doc.get("sites", {}).items():
                    assert site in SITES
                    counters.append(site_doc)
                    if "cmsRunCPUPerformance" in site_doc:
                        perf_sites += 1
                        assert set(site_doc["cmsRunCPUPerformance"]) == {
                            "totalJobCPU", "totalEventCPU", "totalJobTime"}
                        for ds, stats in site_doc["dataset"].items():
                            assert ds in request["OutputDatasets"]
                            assert set(stats) == {"events", "size", "totalLumis"}
            for status in counters:
                for path, value in _counter_leaves(status):
                    seen_paths.add(path)
                    assert path in _COUNTER_PATHS, path
                    assert isinstance(value, int) and value > 0, (path, value)
    assert seen_paths == _COUNTER_PATHS  # every counter shows up, none unknown
    assert perf_sites > 100


def test_agent_info_documents() -> None:
    gen = MockGenerator(seed=14)
    docs = gen.agent_documents()
    agents = gen.agents()
    assert 15 <= len(docs) == len(agents)
    assert [d["_id"] for d in docs] == sorted(AGENTS) == [a.AgentURL for a in agents]
    for doc, agent in zip(docs, agents):
        assert doc["type"] == "agent_info" and doc["agent_url"] == doc["_id"]
        assert doc["status"] in ("ok", "warning", "error", "down")
        assert isinstance(doc["drain_mode"], bool)
        assert int(doc["data_last_update"]) <= doc["timestamp"]  # a string, as WMCore stores it
        assert agent.DiskWarning == tuple(d["mounted"] for d in doc["disk_warning"])
        if doc["status"] in ("error", "down"):
            assert doc["down_components"]
    statuses = {a.Status for seed in range(6) for a in MockGenerator(seed=seed).agents()}
    assert statuses == {"ok", "warning", "error", "down"}


# --------------------------------------------------------------------------- realism


def test_statuses_and_types_are_realistic(population: list[WorkflowBundle]) -> None:
    statuses = collections.Counter(b.workflow.RequestStatus for b in population)
    types = collections.Counter(b.workflow.RequestType for b in population)
    assert len(statuses) >= 12
    busiest = {s for s, _ in statuses.most_common(4)}
    assert busiest <= {"running-open", "running-closed", "completed", "acquired", "assigned"}
    assert set(types) == set(REQUEST_TYPES)
    assert types["TaskChain"] + types["StepChain"] > len(population) / 2
    assert {b.workflow.SubRequestType for b in population} == {"", "RelVal"}


def test_agents_only_for_active_workflows(population: list[WorkflowBundle]) -> None:
    per_status: dict[str, list[int]] = collections.defaultdict(list)
    for b in population:
        per_status[b.workflow.RequestStatus].append(len(b.workflow.Agents))
    for status, counts in per_status.items():
        if status not in ACTIVE_STATUSES:
            assert set(counts) == {0}, status
    running = per_status["running-open"] + per_status["running-closed"]
    assert set(running) == {1, 2, 3}
    assert collections.Counter(running).most_common(1)[0][0] == 1


def test_sites_campaigns_releases(population: list[WorkflowBundle]) -> None:
    sites = {s for b in population for s in b.workflow.Sites}
    assert len(sites) >= 80
    assert {"T1_US_FNAL", "T2_CH_CERN", "T1_DE_KIT", "T2_US_Wisconsin"} <= sites
    assert sites <= set(SITES)
    assert all(b.workflow.SiteWhitelist == tuple(sorted(b.workflow.SiteWhitelist))
               for b in population)
    campaigns = {c for b in population for c in b.workflow.Campaigns}
    assert len(campaigns) >= 40
    releases = {r for b in population for r in b.workflow.CMSSWVersions}
    assert len(releases) >= 10 and all(r.startswith("CMSSW_") for r in releases)
    per_workflow = [len(b.workflow.Sites) for b in population if b.workflow.Agents]
    assert max(per_workflow) >= 20  # dozens of sites for some
    assert sorted(per_workflow)[len(per_workflow) // 2] <= 8  # a handful for most


def test_chains_have_several_tasks(population: list[WorkflowBundle]) -> None:
    chains = [b for b in population if b.workflow.RequestType in ("TaskChain", "StepChain")]
    assert chains
    for b in chains:
        assert b.workflow.ChainLength > 1
        assert len(b.parentage) == b.workflow.ChainLength
        assert len({t.Task for t in b.tasks}) in ((0,) if not b.workflow.Agents
                                                  else range(2, 11))
    lengths = collections.Counter(b.workflow.ChainLength for b in chains)
    assert len(lengths) >= 5
    task_chains = [b for b in chains if b.workflow.RequestType == "TaskChain"
                   and b.workflow.Agents]
    assert max(len({t.Task for t in b.tasks}) for b in task_chains) == 10


def test_counters_are_consistent(population: list[WorkflowBundle]) -> None:
    seen = set()
    for b in population:
        w = b.workflow
        assert w.OtherJobs == 0
        for field in COUNTER_FIELDS[:-1]:
            value = getattr(w, field)
            assert value >= 0
            if value:
                seen.add(field)
        # Workflow totals = agents' task totals + workflow-level counters.
        assert w.Success == sum(t.Success for t in b.tasks)
        assert w.Success == sum(s.Success for s in b.sites)
        assert w.SubmittedRunning == sum(ts.SubmittedRunning for ts in b.task_sites)
        assert {s.Site for s in b.sites} <= set(w.Sites)
        assert {d.Dataset for d in b.datasets} == set(w.OutputDatasets)
    assert seen == set(COUNTER_FIELDS[:-1])


def test_names_are_unique_and_realistic() -> None:
    gen = MockGenerator(seed=15)
    names = [gen.workflow_name(i) for i in range(2000)]
    names += [gen.workflow_name(i) for i in range(10**6, 10**9, 10**6)]
    assert len(set(names)) == len(names)
    prefixes = collections.Counter(n.split("_", 1)[0] for n in names)
    assert set(prefixes) == {"pdmvserv", "cmsunified"}
    assert any("_task_" in n and "__v1_T_" in n for n in names)


# --------------------------------------------------------------------------- memory


def _stream(items: Iterator[Any]) -> tuple[int, int]:
    """Consume ``items``; return (peak, retained) growth in allocated memory blocks.

    ``sys.getallocatedblocks`` is cheap enough to read every few items, unlike
    tracemalloc, which makes a run of thousands of workflows 20 times slower.
    """
    gc.collect()
    base = sys.getallocatedblocks()
    peak = 0
    for count, _ in enumerate(items):
        if count % 8 == 0:
            peak = max(peak, sys.getallocatedblocks())
    gc.collect()
    return peak - base, sys.getallocatedblocks() - base


@pytest.mark.parametrize("kind", ["documents", "bundles"])
def test_streaming_uses_constant_memory(kind: str) -> None:
    def items(n: int) -> Iterator[Any]:
        gen = MockGenerator(seed=16)
        return gen.iter_documents(n) if kind == "documents" else gen.bundles(n)

    small_peak, _ = _stream(items(300))
    large_peak, retained = _stream(items(3000))
    # Nothing is kept per workflow (a leak of one block per workflow is 3000) ...
    assert retained < 1500, retained
    # ... and ten times the workflows raise the peak only as far as the largest
    # single workflow seen (~10,000 blocks), far from the 360,000 (bundles) to
    # 1,000,000 (documents) blocks that holding 3000 workflows takes.
    assert large_peak < small_peak + 30_000, (small_peak, large_peak)


# --------------------------------------------------------------------------- archived requests


def test_archived_requests() -> None:
    n = 1500
    plain = MockGenerator(seed=4)
    gen = MockGenerator(seed=4, archived=0.8)
    chosen = {i for i in range(n) if archived(4, i, 0.8) is not None}
    assert 0.75 * n < len(chosen) < 0.85 * n
    # the rest is as without the option (a few of those are archived anyway)
    assert all(gen.bundle(i) == plain.bundle(i) for i in range(n) if i not in chosen)
    statuses = collections.Counter(gen.bundle(i).workflow.RequestStatus for i in chosen)
    assert set(statuses) == set(ARCHIVED_FROM)
    for i in sorted(chosen):
        bundle = gen.bundle(i)
        status = bundle.workflow.RequestStatus
        history = [t.Status for t in bundle.transitions]
        assert history[-2:] == [ARCHIVED_FROM[status], status] and history[0] == "new"
        assert [t.UpdateTime for t in bundle.transitions] == sorted(
            t.UpdateTime for t in bundle.transitions)
        assert bundle.workflow.StatusTime == bundle.transitions[-1].UpdateTime < gen.now
        # long archived: no agent reports any more
        assert not bundle.sites and not bundle.workflow.Agents and len(gen.documents(i)) == 1
        assert gen.job_documents(i) == []  # nor job summaries
    # iter_jobs skips the archived ones without drawing them: the same job records
    assert list(gen.iter_jobs(300)) == [j for j in (gen.jobs(i) for i in range(300))
                                        if j.groups]
    # the documents convert to the static records, quietly
    docs = [d for i in range(300) for d in gen.documents(i)]
    result = convert_documents(docs)
    assert list(result.bundles) == list(gen.bundles(300)) and not result.problems
    with pytest.raises(ValueError, match="archived"):
        MockGenerator(archived=1.5)


# --------------------------------------------------------------------------- heartbeats and jobs


def _anchor(name: str) -> dict[str, Any]:
    path = Path(__file__).parent / "data" / "wmcore" / "drill" / name
    with open(path, encoding="utf-8") as handle:
        doc: dict[str, Any] = json.load(handle)
    return doc


def test_agent_info_documents_have_every_field_of_a_real_heartbeat() -> None:
    anchor = _anchor("agent_info_full.json")
    optional = {"drain_stats", "proxy_warning"}  # written only when draining / expiring
    seen: set[str] = set()
    now = 1_800_000_000
    for seed in range(4):
        gen = MockGenerator(seed=seed, now=now)
        for doc, agent in zip(gen.agent_documents(), gen.agents()):
            assert set(anchor) - optional - {"_rev"} <= set(doc), sorted(set(anchor) - set(doc))
            seen |= set(doc)
            assert set(doc["WMBS_INFO"]) == set(anchor["WMBS_INFO"])
            assert set(doc["LocalWQ_INFO"]) == set(anchor["LocalWQ_INFO"])
            assert isinstance(doc["data_last_update"], str) and isinstance(doc["data_error"], str)
            assert now - 3 * 86400 < doc["timestamp"] <= now  # relative to "now"
            # converting the document gives the static record
            assert convert_documents([doc]).agents == (agent,)
    assert optional <= seen
    statuses = {a.DerivedStatus for seed in range(4)
                for a in MockGenerator(seed=seed, now=now).agents()}
    assert {"ok", "warning", "error"} <= statuses


def test_jobsummary_documents_look_like_wmcore() -> None:
    anchor = _anchor("jobsummary_failed.json")
    gen = MockGenerator(seed=2)
    docs = [d for i in range(300) for d in gen.job_documents(i)]
    assert len(docs) > 300
    for doc in docs[:200]:
        assert set(anchor) - {"_rev", "logArchiveLFN"} <= set(doc), set(anchor) - set(doc)
        assert doc["timestamp"] <= gen.now
        assert all(h["timestamp"] <= gen.now for h in doc["state_history"])
    codes = {d["exitcode"] for d in docs}
    assert {8021, 50660, 71304, 99109, 0} <= codes
    details = [e["details"] for d in docs for errors in d["errors"].values() for e in errors]
    assert any("<img src=x onerror=alert(1)>" in text for text in details)
    assert max(len(text) for text in details) > 5000
    assert {d["state"] for d in docs} == {"jobfailed", "jobcooloff", "success"}
    # Converting them gives the generator's job records, without a problem.
    result = convert_documents(docs)
    assert result.problems == ()
    assert {j.RequestName: j for j in result.jobs} == {
        j.RequestName: j for j in gen.iter_jobs(300)}


def test_the_demo_is_dated_now_and_tests_pin_it() -> None:
    from wmstats.serve import fill_mock
    from wmstats.store import open_store

    with open_store("memory://") as live, open_store("memory://") as pinned:
        before = int(time.time())
        fill_mock(live, 30)
        fill_mock(pinned, 30, now=1_700_000_000)
        newest = max(a.Timestamp for a in live.get_agents())
        assert before - 3 * 86400 < newest <= int(time.time())
        assert max(a.Timestamp for a in pinned.get_agents()) <= 1_700_000_000
        names = [w.RequestName for w in live.stream()]
        assert any(live.get_jobs(names).values())  # job records filled too
