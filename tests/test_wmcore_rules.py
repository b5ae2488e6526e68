"""reqmon's request rules over the static records (:mod:`wmstats.wmcore`).

The rebuilt request documents are checked against the documents they were converted
from (mock documents of every status and chain type, and real ReqMgr2 documents);
``RequestInfo.get``, ``andFilterCheck``, the ``globallocks``/``protectedlfns``
values and ``protectedLFNs`` against reqmon's own code run on the same documents
in the reqmon venv (``reqmon`` marker).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from wmstats import wmcore
from wmstats.convert import convert_documents
from wmstats.mock import MockGenerator
from wmstats.schema import CHAIN_ARG_KEYS, TaskSite, Workflow, WorkflowBundle, WorkflowTask
from wmstats.source import ACTIVE_STATUSES
from wmstats.testing.reqmon import wmcore_constants, wmcore_request_rules

SEED = 3
WORKFLOWS = 300

#: Conditions as WMCore callers send them (strings; a list repeats the key), and
#: some more, true/false in any case among them.
CONDITIONS: list[dict[str, Any]] = [
    {"RequestType": "StepChain", "ParentageResolved": "False"},
    {"RequestType": "StepChain", "ParentageResolved": "false"},
    {"RequestStatus": "running-open"},
    {"RequestStatus": ["acquired", "running-closed"]},
    {"Campaign": ["Run3Summer23wmLHEGS", "RunIISummer20UL18SIM", "HG1812_Validation"]},
    {"ScramArch": "el8_amd64_gcc11"},
    {"CMSSWVersion": "CMSSW_13_0_13"},
    {"CMSSWVersion": "CMSSW_8_1_0"},
    {"MCPileup": "/ZeroBias/Run2018D-v1/RAW"},
    {"DataPileup": ["/ZeroBias/Run2018D-v1/RAW", "/MinimumBias/Run2018D-v1/RAW"]},
    {"AgentJobInfo": "CLEANED"},
    {"ParentageResolved": "TRUE"},
    {"ParentageResolved": "true", "RequestStatus": "closed-out"},
    {"SiteWhitelist": "T2_CH_CERN", "Team": "production"},
    {"InputDataset": "/MinBias/Run2024C-v1/RAW"},
    {"Group": "PPD", "Requestor": "pdmvserv"},
    {"RequestStatus": "true"},
    {"OutputDatasets": "/nothing/like/this"},
]

#: The CONDITIONS no mock request matches (real values, and impossible ones).
NO_MOCK_MATCH: list[dict[str, Any]] = [
    {"CMSSWVersion": "CMSSW_8_1_0"},
    {"MCPileup": "/ZeroBias/Run2018D-v1/RAW"},
    {"InputDataset": "/MinBias/Run2024C-v1/RAW"},
    {"RequestStatus": "true"},
    {"OutputDatasets": "/nothing/like/this"},
]


def _anchors(wmcore_docs: Callable[[str], list[Any]]) -> list[dict[str, Any]]:
    """The real request documents: 20 of ReqMgr2's, and a requestcache entry."""
    return [*wmcore_docs("reqmgr_requests_20.json"),
            *wmcore_docs("requestcache_entry_with_AgentJobInfo.json")]


def _mock_cache() -> tuple[dict[str, dict[str, Any]], dict[str, WorkflowBundle]]:
    """reqmon's cache of the mock documents (request documents of the cache statuses,
    AgentJobInfo attached to the job-info ones) and the bundles converted from all."""
    docs = list(MockGenerator(seed=SEED).iter_documents(WORKFLOWS))
    agents = collections.defaultdict(list)
    for doc in docs:
        if doc.get("type") == "agent_request":
            agents[doc["workflow"]].append(doc)
    cache = {}
    for doc in docs:
        if "RequestName" in doc and doc["RequestStatus"] in wmcore.CACHE_STATUSES:
            entry = dict(doc)
            if doc["RequestStatus"] in wmcore.JOB_INFO_STATUSES and agents[doc["RequestName"]]:
                entry["AgentJobInfo"] = {a["agent_url"]: a for a in agents[doc["RequestName"]]}
            cache[doc["RequestName"]] = entry
    bundles = {b.workflow.RequestName: b for b in convert_documents(docs).bundles}
    return cache, bundles


def _view(bundle: WorkflowBundle) -> wmcore.RequestView:
    return wmcore.RequestView(bundle.workflow, bundle,
                              job_info=bundle.workflow.RequestStatus in wmcore.JOB_INFO_STATUSES)


def _plain(value: Any) -> Any:
    """As JSON gives it back."""
    return json.loads(json.dumps(value))


def _multiset(value: Any) -> Any:
    """Lists compared as multisets (reqmon merges chain values in a set)."""
    if isinstance(value, list):
        return collections.Counter(json.dumps(v, sort_keys=True) for v in value)
    return value


def _agent_docs(entry: dict[str, Any]) -> dict[str, Any]:
    """AgentJobInfo without what the records do not carry (see agent_job_info)."""
    out = {}
    for url, doc in entry.get("AgentJobInfo", {}).items():
        doc = {k: v for k, v in doc.items() if k not in ("_id", "_rev", "agent")}
        for task in doc.get("tasks", {}).values():
            for site in task.get("sites", {}).values():
                site.pop("dataset", None)
        out[url] = doc
    return out


# --------------------------------------------------------------------------- pure


def test_status_lists_and_keys_are_consistent() -> None:
    assert set(wmcore.CACHE_STATUSES) == set(ACTIVE_STATUSES)
    assert len(set(wmcore.CACHE_STATUSES)) == len(wmcore.CACHE_STATUSES)
    assert set(wmcore.LOCK_STATUSES) < set(wmcore.CACHE_STATUSES)
    assert {k for k, v in wmcore.REQUEST_KEYS.items() if v.chain} == set(CHAIN_ARG_KEYS)
    for name in wmcore.CONDITION_KEYS:
        assert wmcore.REQUEST_KEYS[name].kind in (wmcore.KeyKind.TEXT, wmcore.KeyKind.TEXTS,
                                                  wmcore.KeyKind.BOOL, wmcore.KeyKind.OBJECT)
    assert "RequestPriority" not in wmcore.CONDITION_KEYS
    assert "RequestName" in wmcore.CONDITION_KEYS


@pytest.mark.reqmon
def test_status_lists_are_reqmons(reqmon_python: Path) -> None:
    constants = wmcore_constants(reqmon_python)
    assert list(wmcore.JOB_INFO_STATUSES) == constants["WMSTATS_JOB_INFO"]
    assert list(wmcore.NO_JOB_INFO_STATUSES) == constants["WMSTATS_NO_JOB_INFO"]
    assert list(wmcore.LOCK_STATUSES) == constants["ACTIVE_STATUS_FILTER"]["RequestStatus"]


def test_mock_documents_are_rebuilt_exactly() -> None:
    """Every key of a rebuilt cache entry is the request document's, with its value."""
    cache, bundles = _mock_cache()
    compared = collections.Counter()
    for name, entry in cache.items():
        doc = _plain(_view(bundles[name]).document())
        assert doc.pop("AgentJobInfo", {}) == _agent_docs(entry), name
        for key, value in doc.items():
            assert key in entry, (name, key)
            if key.startswith(("Task", "Step")) and isinstance(value, dict):
                assert value == {k: entry[key][k] for k in value}, (name, key)
                assert set(value) >= {"Campaign", "PrepID"} & set(entry[key])
            else:
                assert value == entry[key], (name, key)
            compared[key] += 1
    # Every key of REQUEST_KEYS is shown somewhere in the mock (all but AgentJobInfo,
    # checked whole above).
    assert set(compared) >= set(wmcore.REQUEST_KEYS) - {"AgentJobInfo"}
    assert compared["DataPileup"] and compared["ParentageResolved"] and compared["Task1"]


def test_real_documents_are_rebuilt_but_for_empty_keys(
        wmcore_docs: Callable[[str], list[Any]]) -> None:
    """Real documents: the rebuilt keys have the document's values, except that a key
    of ``empty_shown`` the document lacks shows empty, ``null`` reads as empty, a
    lone string in a list key becomes a list of one, and an older document's
    ``Teams`` shows as ``Team``."""
    docs = _anchors(wmcore_docs)
    bundles = {b.workflow.RequestName: b for b in convert_documents(docs).bundles}
    extras = set()
    for entry in docs:
        bundle = bundles[entry["RequestName"]]
        doc = _plain(wmcore.RequestView(bundle.workflow, bundle, job_info=True).document())
        assert doc.pop("AgentJobInfo", {}) == _agent_docs(entry)
        for key, value in doc.items():
            if key == "Team" and "Teams" in entry and key not in entry:
                # an older ReqMgr2 document's "Teams" list shows as "Team"
                assert value == ",".join(entry["Teams"])
                continue
            if key not in entry:
                spec = wmcore.REQUEST_KEYS.get(key)
                assert spec is not None and spec.empty_shown and not value, (key, value)
                extras.add(key)
                continue
            want = entry[key]
            if key.startswith(("Task", "Step")) and isinstance(value, dict):
                want = {k: want[k] for k in value}
            elif want is None:
                want = ""
            elif isinstance(want, str) and isinstance(value, list):
                want = [want]
            assert value == want, (entry["RequestName"], key)
    assert extras  # the anchors do lack some (a new ReReco has no Total* yet)


def test_agent_job_info_leaves_out_what_is_not_carried() -> None:
    name = "wf"
    bundle = WorkflowBundle(
        workflow=Workflow(RequestName=name),
        tasks=(WorkflowTask(RequestName=name, Task="/wf/T", Agent="a", JobType="Merge",
                            OtherJobs=4),),
        task_sites=(TaskSite(RequestName=name, Task="/wf/T", Site="S", Agent="a"),))
    assert wmcore.agent_job_info(bundle) == {"a": {
        "agent_url": "a", "type": "agent_request", "workflow": name, "sites": {},
        "tasks": {"/wf/T": {"jobtype": "Merge", "sites": {"S": {}}, "subscription_status": {
            "finished": 0, "open": 0, "total": 0, "updated": 0}}}}}
    assert wmcore.agent_job_info(WorkflowBundle(workflow=Workflow(RequestName=name))) == {}


def test_conditions_whitelist() -> None:
    assert wmcore.parse_condition("ParentageResolved", ["FALSE"]).values == (False,)
    assert wmcore.parse_condition("RequestStatus", ["True"]).values == (True,)
    # Only a lone value is read as a boolean, as reqmon does.
    assert wmcore.parse_condition("RequestStatus", ["true", "acquired"]).values == (
        "true", "acquired")
    assert wmcore.parse_condition("AgentJobInfo", ["CLEANED"]).values == ("CLEANED",)
    for key, values, says in (
            ("RequestPriority", ["63000"], "never matches"),
            ("TotalEstimatedJobs", ["1"], "never matches"),
            ("ChainParentageMap", ["x"], "never matches"),
            ("Bogus", ["1"], "not a request key"),
            ("ParentageResolved", ["0"], "true or false"),
            ("ParentageResolved", ["true", "false"], "true or false"),
            ("AgentJobInfo", ["x"], "CLEANED"),
            ("RequestStatus", [], "no value")):
        with pytest.raises(wmcore.ConditionError, match=says) as info:
            wmcore.parse_condition(key, values)
        assert info.value.key == key


def test_is_finished_final_lfns_and_teams() -> None:
    name = "wf"

    def bundle(*tasks: WorkflowTask) -> WorkflowBundle:
        return WorkflowBundle(workflow=Workflow(RequestName=name), tasks=tasks)

    def task(path: str, agent: str, **counts: int) -> WorkflowTask:
        return WorkflowTask(RequestName=name, Task=path, Agent=agent, **counts)

    assert wmcore.is_finished(bundle()) is False
    assert wmcore.is_finished(bundle(task("/a", "x", Success=3, FailureException=1),
                                     task("/a", "y", Success=2))) is True
    # a task without jobs, or with any job not completed, is not finished
    assert wmcore.is_finished(bundle(task("/a", "x", Success=3), task("/b", "x"))) is False
    assert wmcore.is_finished(bundle(task("/a", "x", Success=3, SubmittedRunning=1))) is False
    # counters the total leaves out (as reqmon's JobSummary) do not block it
    assert wmcore.is_finished(bundle(task("/a", "x", Success=3, InWMBS=9, OtherJobs=2))) is True

    wf = Workflow(RequestName=name, OutputDatasets=(
        "/Prim/Era-Proc-v1/AOD", "not-a-dataset", "/Prim/NoDash/AOD", "/P/E-a-b/T"),
        UnmergedLFNBase="/store/unmerged/x")
    assert list(wmcore.final_output_lfns(wf)) == [
        "/store/unmerged/x/Era/Prim/AOD/Proc-v1", "/store/unmerged/x/E/P/T/a-b"]
    assert list(wmcore.final_output_lfns(attrs.evolve(wf, UnmergedLFNBase=""))) == [
        "/store/unmerged/Era/Prim/AOD/Proc-v1", "/store/unmerged/E/P/T/a-b"]

    agents = MockGenerator().agents()
    teams = wmcore.agent_teams(agents)
    assert teams == list(dict.fromkeys(a.AgentTeam for a in agents))
    assert set(teams) == {"production", "relval", "hlt"}


# --------------------------------------------------------------------------- reqmon


def _compare(cache: dict[str, dict[str, Any]], bundles: dict[str, WorkflowBundle],
             reqmon_python: Path) -> collections.Counter[str]:
    """Compare our rules with reqmon's on every cached request; returns the counts of
    values compared (and asserts that none differs)."""
    keys = list(wmcore.REQUEST_KEYS)
    reference = wmcore_request_rules(cache, keys, CONDITIONS, python=reqmon_python)
    assert reference["errors"] == {}
    conditions = [[wmcore.parse_condition(k, v if isinstance(v, list) else [v])
                   for k, v in c.items()] for c in CONDITIONS]
    compared: collections.Counter[str] = collections.Counter()
    for name in cache:
        bundle = bundles[name]
        view = _view(bundle)
        for key in keys:
            theirs = reference["get"][name][key]
            ours = _plain(view.get(key))
            if key == "AgentJobInfo" and theirs is not None:
                theirs = _agent_docs({"AgentJobInfo": theirs})
            assert _multiset(ours) == _multiset(theirs), (name, key, ours, theirs)
            compared["get"] += 1
        assert [view.matches(c) for c in conditions] == reference["matches"][name], name
        compared["matches"] += len(conditions)
        locked = bundle.workflow.RequestStatus in wmcore.LOCK_STATUSES
        for ours_values, theirs_values, what in (
                (wmcore.global_locks(view), reference["global_locks"][name], "locks"),
                (wmcore.protected_lfns(view), reference["lfn_bases"][name], "lfn bases"),
                (wmcore.final_output_lfns(bundle.workflow), reference["protected_lfns"][name],
                 "final")):
            got = list(ours_values) if locked else []
            assert collections.Counter(got) == collections.Counter(theirs_values), (name, what)
            compared[what] += len(got)
    return compared


@pytest.mark.reqmon
def test_mock_requests_read_as_reqmon_reads_them(reqmon_python: Path) -> None:
    cache, bundles = _mock_cache()
    compared = _compare(cache, bundles, reqmon_python)
    assert compared["get"] == len(cache) * len(wmcore.REQUEST_KEYS)
    # The conditions select: each but the impossible ones matches some requests, none
    # matches them all.
    views = [_view(bundles[n]) for n in cache]
    for condition in CONDITIONS:
        hits = sum(v.matches([wmcore.parse_condition(k, x if isinstance(x, list) else [x])
                              for k, x in condition.items()]) for v in views)
        if condition in NO_MOCK_MATCH:
            assert hits == 0, condition
        else:
            assert 0 < hits < len(views), condition
    assert compared["locks"] > 0 and compared["lfn bases"] > compared["final"] > 0


@pytest.mark.reqmon
def test_real_requests_read_as_reqmon_reads_them(
        wmcore_docs: Callable[[str], list[Any]], reqmon_python: Path) -> None:
    docs = _anchors(wmcore_docs)
    # Every anchor as a cached request in a lock status, so that every rule applies.
    cache = {}
    for doc in docs:
        entry = {**doc, "RequestStatus": "running-open"}
        cache[doc["RequestName"]] = entry
    converted = convert_documents(cache.values())
    bundles = {b.workflow.RequestName: b for b in converted.bundles}
    # Keys whose values the records keep as reqmon reads them: the real documents'
    # empty and missing values differ (see test_real_documents_are_rebuilt...).
    exact = _exact_keys(cache)
    reference = wmcore_request_rules(cache, exact, [], python=reqmon_python)
    assert reference["errors"] == {}
    for name, entry in cache.items():
        view = _view(bundles[name])
        for key in exact:
            ours = _plain(view.get(key))
            theirs = reference["get"][name][key]
            if key == "AgentJobInfo":
                theirs = _agent_docs({"AgentJobInfo": theirs}) if theirs else None
            elif wmcore.REQUEST_KEYS[key].kind is wmcore.KeyKind.TEXTS and isinstance(
                    theirs, str):
                theirs = [theirs]  # an older document's lone string: a list of one
            assert _multiset(ours) == _multiset(theirs), (name, key)
        assert collections.Counter(wmcore.global_locks(view)) == collections.Counter(
            reference["global_locks"][name]), name
        assert list(wmcore.final_output_lfns(view.workflow)) == reference["protected_lfns"][name]


def _exact_keys(cache: dict[str, dict[str, Any]]) -> list[str]:
    """The keys every anchor holds with a value that is neither null nor empty: there
    the records cannot differ from the document."""
    keys = []
    for key in wmcore.REQUEST_KEYS:
        if all(entry.get(key) not in (None, "", [], {}) for entry in cache.values()):
            keys.append(key)
    # Chain keys are read from the tasks too, whatever the top level holds.
    keys += [k for k in CHAIN_ARG_KEYS if k not in keys]
    return keys

