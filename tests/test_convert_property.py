"""Property tests: messy WMCore-like documents in, no exception and no lost job out.

The strategies build request and ``agent_request`` documents the way real data goes
wrong: missing keys, nulls, numeric strings, floats, booleans, garbage strings,
unknown status names, empty or unknown sites, odd task paths, several agents per
workflow, agent documents without a request document and the reverse, requestcache
entries (``AgentJobInfo``), and unrelated or unreadable documents around them.

The expected numbers are computed here, from the dynamic documents alone: every
numeric leaf of a status dictionary counts by its value, at every grain.  Leaves
the converter cannot read must each be reported at their own key path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats.convert import ConversionResult, convert_documents
from wmstats.schema import COUNTER_FIELDS, COUNTER_SOURCES

# --------------------------------------------------------------------------- strategies

#: Status names WMCore writes, as (group, sub-names) or flat names.
FLAT_STATUS = [p for p in COUNTER_SOURCES.values() if "." not in p]
GROUPS: dict[str, list[str]] = {}
for _path in COUNTER_SOURCES.values():
    if "." in _path:
        _group, _sub = _path.split(".")
        GROUPS.setdefault(_group, []).append(_sub)
UNKNOWN_STATUS = ["zombie", "removed", "Success", "submitted_running", "", "x.y", "held"]
PERF_KEYS = ["cmsRunCPUPerformance", "inputEvents", "wrappedTotalJobTime", "dataset"]
SITES = ["T1_US_FNAL", "T2_CH_CERN", "T2_CH_CERN_HLT", "T3_XX_Nowhere", "", " ", "unknown"]
DATASETS = ["/A/Run-v1/AODSIM", "/B/Run-v2/MINIAODSIM", ""]
WORKFLOWS = ["wf_alpha", "wf_beta", "wf_gamma", "wf_delta"]
AGENTS = ["vocms0250.cern.ch", "vocms0192.cern.ch:9999", "cmsgwms-submit3.fnal.gov", ""]

numeric_strings = st.one_of(
    st.integers(-20, 10**6).map(str),
    st.integers(0, 10**4).map(lambda n: f" {n} "),
    st.integers(0, 10**4).map(lambda n: f"{n}.0"),
    st.integers(0, 10**4).map(lambda n: f"{n}.5"),
    st.integers(10**17, 10**30).map(str),  # beyond float precision
)
garbage_strings = st.one_of(
    st.sampled_from(["", " ", "abc", "n/a", "1,000", "12abc", "nan", "inf", "-Infinity",
                     "1e999", "0x10", "None", "null", "true"]),
    st.text(alphabet="xyzXYZ -/,", max_size=6),
)
leaves = st.one_of(
    st.integers(0, 1000),
    st.integers(0, 1000),
    st.integers(-50, -1),
    st.integers(0, 2**70),
    st.integers(0, 1000).map(float),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    numeric_strings,
    garbage_strings,
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=2),
)
#: Values where an object belongs.
not_objects = st.one_of(st.sampled_from(["running", "", 5, 2.5, True, ["T1_US_FNAL"]]),
                        st.lists(leaves, max_size=2))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6,
)


def _merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


def status_dicts(perf: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """A status dict: flat names, nested groups, unknown names at any depth."""
    sub_values = st.one_of(leaves, leaves, st.dictionaries(st.sampled_from(["a", "b"]), leaves,
                                                           min_size=1, max_size=2))
    groups = st.dictionaries(
        st.sampled_from([*GROUPS, "weird"]),
        st.one_of(
            st.dictionaries(st.sampled_from([*sorted({s for v in GROUPS.values() for s in v}), "odd"]),
                            sub_values, max_size=4),
            leaves,
        ),
        max_size=3,
    )
    flat = st.dictionaries(st.sampled_from(FLAT_STATUS + UNKNOWN_STATUS), leaves, max_size=4)
    parts = [flat, groups]
    if perf:  # performance keys where they do not belong (reported, not counted)
        parts.append(st.dictionaries(st.sampled_from(PERF_KEYS), leaves | st.just({"x": 1}),
                                     max_size=1))
    return st.tuples(*parts).map(lambda t: _merge(*t))


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the strategy; sometimes null or something that is not an object."""
    return st.one_of(strategy, strategy, strategy, strategy, st.none(), not_objects)


perf_numbers = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6), numeric_strings,
                         garbage_strings, st.none())
task_site_dicts = st.tuples(
    status_dicts(perf=False),
    st.fixed_dictionaries({}, optional={
        "cmsRunCPUPerformance": maybe(st.fixed_dictionaries({}, optional={
            "totalJobCPU": perf_numbers, "totalEventCPU": perf_numbers,
            "totalJobTime": perf_numbers})),
        "inputEvents": perf_numbers,
        "wrappedTotalJobTime": perf_numbers,
        "dataset": maybe(st.dictionaries(st.sampled_from(DATASETS), maybe(
            st.fixed_dictionaries({}, optional={"events": leaves, "size": leaves,
                                                "totalLumis": leaves})), max_size=2)),
    }),
).map(lambda t: _merge(*t))
site_names = st.one_of(st.sampled_from(SITES), st.sampled_from(SITES), st.text(max_size=4))
task_paths = st.one_of(
    st.sampled_from(["/wf/Production", "/wf/Production/ProductionMergeAODSIMoutput",
                     "/wf/Production/LogCollect", ""]),
    st.text(alphabet="/abc.", max_size=6),
)
tasks = st.dictionaries(task_paths, maybe(st.fixed_dictionaries({}, optional={
    "status": maybe(status_dicts()),
    "sites": maybe(st.dictionaries(site_names, maybe(task_site_dicts), max_size=3)),
    "jobtype": st.sampled_from(["Production", "Merge", "LogCollect"]) | json_values,
    "subscription_status": maybe(st.fixed_dictionaries({}, optional={
        "open": leaves, "finished": leaves, "total": leaves, "updated": leaves})),
    "skipped": maybe(st.dictionaries(st.sampled_from(["skippedFiles", "skippedLumis"]),
                                     leaves, max_size=2)),
})), max_size=3)

timestamps = st.one_of(st.integers(0, 2**31), st.integers(0, 2**31), st.none(), garbage_strings)


@st.composite
def agent_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """The body of an agent_request: each key usually there, sometimes missing."""
    parts = {
        "status": maybe(status_dicts()),
        "sites": maybe(st.dictionaries(site_names, maybe(status_dicts()), max_size=3)),
        "tasks": maybe(tasks),
        "timestamp": timestamps,
        "agent_team": st.sampled_from(["production", "relval", "", None, 5]),
    }
    return {key: draw(value) for key, value in parts.items()
            if draw(st.sampled_from([True, True, True, True, False]))}


#: One agent's body with every part present and full (to reach deep status paths).
full_agent_bodies = st.fixed_dictionaries({
    "status": status_dicts(),
    "sites": st.dictionaries(site_names, status_dicts(), min_size=1, max_size=3),
    "tasks": st.dictionaries(task_paths, st.fixed_dictionaries({
        "status": status_dicts(),
        "sites": st.dictionaries(site_names, task_site_dicts, min_size=1, max_size=2),
    }), min_size=1, max_size=2),
    "timestamp": timestamps,
})


REQUEST_KEYS = ["RequestStatus", "RequestType", "Campaign", "Teams", "Team", "RequestDate",
                "RequestTransition", "TaskChain", "StepChain", "Task1", "Task2", "Step1",
                "ChainParentageMap", "OutputDatasets", "SiteWhitelist", "SiteBlacklist",
                "RequestPriority", "ParentageResolved", "TotalEstimatedJobs", "CMSSWVersion",
                "ScramArch", "AcquisitionEra", "ProcessingString", "RequestNumEvents",
                "MCPileup", "PrepID"]
request_values = st.one_of(
    json_values,
    st.lists(st.integers(-5, 3000), max_size=7),  # RequestDate-like
    st.lists(st.fixed_dictionaries({}, optional={"Status": json_values,
                                                 "UpdateTime": json_values,
                                                 "DN": json_values}), max_size=3),
    st.dictionaries(st.sampled_from(["Task1", "Task2", "Step1"]), json_values, max_size=2),
    numeric_strings,
)


@st.composite
def request_docs(draw: st.DrawFn, name: str) -> dict[str, Any]:
    fields = draw(st.dictionaries(st.sampled_from(REQUEST_KEYS), request_values, max_size=8))
    if draw(st.booleans()):
        return {"_id": name, "RequestName": name, **fields}
    # The legacy (pre-ReqMgr2) shape, with lower-case keys.
    return {"_id": name, "type": "reqmgr_request", "workflow": name,
            "request_status": fields.get("RequestTransition"), "priority": fields.get(
                "RequestPriority"), "site_white_list": fields.get("SiteWhitelist")}


noise_docs = st.one_of(
    st.just({"_id": "_design/WMStats", "views": {}}),
    st.builds(lambda t: {"_id": "x", "type": t, "workflow": WORKFLOWS[0],
                         "status": {"success": 1}},
              st.sampled_from(["jobsummary", "workqueue_element", "mystery", 7])),
    st.builds(lambda w: {"_id": "gone", "_deleted": True, "type": "agent_request",
                         "workflow": w, "agent_url": "deleted:1", "status": {"success": 99}},
              st.sampled_from(WORKFLOWS)),
    st.dictionaries(st.sampled_from(["foo", "bar", "_id"]), json_values, max_size=3),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
    st.fixed_dictionaries({"type": st.just("agent_info")}, optional={
        "agent_url": json_values, "status": json_values, "drain_mode": json_values,
        "disk_warning": json_values, "down_components": json_values,
        "timestamp": json_values}),
)


@attrs.frozen
class AgentDoc:
    """One generated agent_request, and where it was put."""

    workflow: str
    agent: str
    body: dict[str, Any]
    doc_id: str  # the id its problems must carry


@attrs.frozen
class Case:
    docs: list[Any]
    requests: frozenset[str]
    agent_docs: tuple[AgentDoc, ...]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    names = draw(st.lists(st.sampled_from(WORKFLOWS), min_size=1, max_size=4, unique=True))
    with_request = {n for n in names if draw(st.booleans())}
    requests = {n: draw(request_docs(n)) for n in sorted(with_request)}
    agent_docs: list[AgentDoc] = []
    docs: list[Any] = []
    for name in names:
        for i, agent in enumerate(draw(st.lists(st.sampled_from(AGENTS), max_size=3,
                                                unique=True))):
            body = draw(agent_bodies())
            if draw(st.booleans()):
                body["_id"] = f"{name}-{i}"
            doc_id = body.get("_id") or name
            request = requests.get(name)
            if request is not None and request.get("RequestName") and draw(st.booleans()):
                # A requestcache entry: the agent's report inside its request document.
                entry = dict(body, agent_url=agent)
                if draw(st.booleans()):
                    entry["workflow"] = name
                request.setdefault("AgentJobInfo", {})[agent] = entry
            else:
                docs.append({"type": "agent_request", "workflow": name, "agent_url": agent,
                             **body})
            agent_docs.append(AgentDoc(name, agent, body, doc_id))
    docs.extend(requests.values())
    docs.extend(draw(st.lists(noise_docs, max_size=3)))
    return Case(draw(st.permutations(docs)), frozenset(with_request), tuple(agent_docs))


# --------------------------------------------------------------------------- expectations

_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_DECIMAL = re.compile(r"\s*[+-]?[0-9]+\.[0-9]+\s*")
_FIELD_BY_PATH = {path: field for field, path in COUNTER_SOURCES.items()}


def classify(value: Any) -> tuple[str, Fraction]:
    """How a counter value should count.

    ``clean``: counted, nothing to report; ``report``: counted exactly, but reported;
    ``fraction``: not a whole number, counted to the nearest integer, reported;
    ``unreadable``: counted as 0, reported.
    """
    if isinstance(value, bool) or value is None:
        return "unreadable", Fraction(0)
    if isinstance(value, int):
        return ("clean" if value >= 0 else "report"), Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "unreadable", Fraction(0)
        if value.is_integer():
            return ("clean" if value >= 0 else "report"), Fraction(value)
        return "fraction", Fraction(value)
    if isinstance(value, str):
        if _INT.fullmatch(value):
            return "report", Fraction(int(value))
        if _DECIMAL.fullmatch(value):
            number = Fraction(value.strip())
            return ("report" if number.denominator == 1 else "fraction"), number
    return "unreadable", Fraction(0)


@attrs.define
class Tally:
    """Expected counters of one grain: exact sums, fractional leaves, reported paths."""

    exact: dict[str, Fraction] = attrs.Factory(dict)
    fractions: dict[str, list[Fraction]] = attrs.Factory(dict)
    must_report: list[str] = attrs.Factory(list)

    def add(self, field: str, kind: str, number: Fraction) -> None:
        if kind == "fraction":
            self.fractions.setdefault(field, []).append(number)
        else:
            self.exact[field] = self.exact.get(field, Fraction(0)) + number

    def merge(self, other: Tally) -> None:
        for field, number in other.exact.items():
            self.exact[field] = self.exact.get(field, Fraction(0)) + number
        for field, numbers in other.fractions.items():
            self.fractions.setdefault(field, []).extend(numbers)
        self.must_report.extend(other.must_report)


def leaves_of(value: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted name, value) of every non-object leaf."""
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(item, dict):
            yield from leaves_of(item, name)
        else:
            yield name, item


def expect(value: Any, path: str, *, task_site: bool = False) -> Tally:
    """The counters a dynamic status dict (or a task's site entry) must give."""
    tally = Tally()
    if value is None:
        return tally
    if not isinstance(value, dict):
        tally.must_report.append(path)
        return tally
    for key in PERF_KEYS:
        if key in value and not task_site:
            tally.must_report.append(f"{path}.{key}")
    counted = {k: v for k, v in value.items() if k not in PERF_KEYS}
    for name, item in leaves_of(counted):
        field = _FIELD_BY_PATH.get(name, "OtherJobs")
        kind, number = classify(item)
        tally.add(field, kind, number)
        if kind != "clean" or field == "OtherJobs":
            tally.must_report.append(f"{path}.{name}")
    return tally


def check_counters(record: Any, tally: Tally, where: str) -> None:
    """Each counter field, and their total, equal the dynamic sums."""
    def close(actual: int, exact: Fraction, fractions: list[Fraction], what: str) -> None:
        # A whole number of jobs cannot hold 2.5: each fractional leaf may round by 1/2.
        assert abs(actual - exact - sum(fractions)) <= Fraction(len(fractions), 2), (
            where, what, actual, exact, fractions)

    for field in COUNTER_FIELDS:
        close(getattr(record, field), tally.exact.get(field, Fraction(0)),
              tally.fractions.get(field, []), field)
    close(sum(getattr(record, f) for f in COUNTER_FIELDS), sum(tally.exact.values(), Fraction(0)),
          [x for xs in tally.fractions.values() for x in xs], "total")


def mapping_items(container: Any, path: str, tally: Tally) -> list[tuple[str, Any]]:
    """The entries of a dynamic-key container (sites, tasks); a non-object is reported."""
    if container is None:
        return []
    if not isinstance(container, dict):
        tally.must_report.append(path)
        return []
    return list(container.items())


# --------------------------------------------------------------------------- properties


def _assert_reported(result: ConversionResult, doc_id: str, paths: Iterable[str]) -> None:
    reported = {(p.doc_id, p.path) for p in result.problems}
    missing = [path for path in paths if (doc_id, path) not in reported]
    assert not missing, (doc_id, missing, result.problems)


@st.composite
def single_agent_cases(draw: st.DrawFn) -> Case:
    """One agent_request with every part full, alone or in its requestcache entry."""
    body = draw(full_agent_bodies)
    body["_id"] = "ar-1"
    doc = {"type": "agent_request", "workflow": "wf", "agent_url": "vocms0250.cern.ch", **body}
    if draw(st.booleans()):
        return Case([doc], frozenset(), (AgentDoc("wf", "vocms0250.cern.ch", body, "ar-1"),))
    entry = {"RequestName": "wf", "RequestStatus": "running-open",
             "AgentJobInfo": {"vocms0250.cern.ch": doc}}
    return Case([entry], frozenset(["wf"]),
                (AgentDoc("wf", "vocms0250.cern.ch", body, "ar-1"),))


@settings(max_examples=150, deadline=None)
@given(single_agent_cases())
def test_no_job_counter_is_lost_in_one_full_document(case: Case) -> None:
    check_case(case)


@settings(max_examples=80, deadline=None)
@given(cases())
def test_no_job_counter_is_lost(case: Case) -> None:
    check_case(case)


def check_case(case: Case) -> None:
    """Convert the case's documents and check every grain against the dynamic sums."""
    result = convert_documents(case.docs)

    for found in result.problems:
        assert isinstance(found.doc_id, str) and found.doc_id
        assert isinstance(found.path, str)
        assert found.path or found.message
        assert found.message

    bundles = {b.workflow.RequestName: b for b in result.bundles}
    assert len(bundles) == len(result.bundles)
    expected_names = set(case.requests) | {a.workflow for a in case.agent_docs}
    assert set(bundles) == expected_names

    for name, bundle in bundles.items():
        wf = bundle.workflow
        mine = [a for a in case.agent_docs if a.workflow == name]
        assert wf.HasRequest is (name in case.requests)
        assert wf.Agents == tuple(sorted(a.agent for a in mine))
        stamps = [classify(a.body.get("timestamp"))[1] for a in mine]
        assert wf.AgentUpdate == max(stamps, default=0)

        workflow_tally = Tally()
        datasets: dict[str, list[Fraction]] = {}
        for agent_doc in mine:
            body, agent = agent_doc.body, agent_doc.agent
            required = Tally()
            status = expect(body.get("status"), "status")
            workflow_tally.merge(status)
            required.merge(status)

            # agent x site
            site_records = {s.Site: s for s in bundle.sites if s.Agent == agent}
            site_items = mapping_items(body.get("sites"), "sites", required)
            assert sorted(site_records) == sorted(k for k, _ in site_items)
            for site, value in site_items:
                tally = expect(value, f"sites.{site}")
                if not site.strip():
                    tally.must_report.append(f"sites.{site}")  # a blank site name
                check_counters(site_records[site], tally, f"{name} {agent} site {site!r}")
                required.merge(tally)

            # agent x task, agent x task x site
            task_records = {t.Task: t for t in bundle.tasks if t.Agent == agent}
            task_site_records = {(t.Task, t.Site): t for t in bundle.task_sites
                                 if t.Agent == agent}
            task_items = mapping_items(body.get("tasks"), "tasks", required)
            assert sorted(task_records) == sorted(k for k, _ in task_items)
            expected_task_sites = []
            for task, task_doc in task_items:
                if task_doc is not None and not isinstance(task_doc, dict):
                    required.must_report.append(f"tasks.{task}")
                task_doc = task_doc if isinstance(task_doc, dict) else {}
                tally = expect(task_doc.get("status"), f"tasks.{task}.status")
                check_counters(task_records[task], tally, f"{name} {agent} task {task!r}")
                required.merge(tally)
                for site, value in mapping_items(task_doc.get("sites"), f"tasks.{task}.sites",
                                                 required):
                    expected_task_sites.append((task, site))
                    path = f"tasks.{task}.sites.{site}"
                    tally = expect(value, path, task_site=True)
                    if not site.strip():
                        tally.must_report.append(path)  # a blank site name
                    check_counters(task_site_records[(task, site)], tally,
                                   f"{name} {agent} task {task!r} site {site!r}")
                    required.merge(tally)
                    for ds, stats in mapping_items(value.get("dataset") if isinstance(
                            value, dict) else None, f"{path}.dataset", required):
                        if isinstance(stats, dict):
                            datasets.setdefault(ds, []).append(classify(stats.get("events"))[1])
            assert sorted(task_site_records) == sorted(expected_task_sites)
            _assert_reported(result, agent_doc.doc_id, required.must_report)

        # The workflow's totals: every agent's status summed.
        check_counters(wf, workflow_tally, f"{name} workflow")
        # Events written, summed over agents, tasks and sites (readable whole numbers).
        stats_by_name = {d.Dataset: d for d in bundle.datasets}
        for ds, events in datasets.items():
            if all(e.denominator == 1 for e in events):
                assert stats_by_name[ds].Events == sum(events), (name, ds)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(noise_docs, json_values, st.builds(
    lambda body, doc: {**doc, **body}, agent_bodies(),
    st.fixed_dictionaries({"type": st.just("agent_request")}, optional={
        "workflow": json_values, "agent_url": json_values, "_id": json_values}),
)), max_size=5))
def test_anything_converts_without_raising(docs: list[Any]) -> None:
    result = convert_documents(docs)
    for found in result.problems:
        assert found.doc_id and found.message


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(REQUEST_KEYS + ["RequestName", "_id"]),
                       request_values, max_size=12))
def test_any_request_document_converts_without_raising(doc: dict[str, Any]) -> None:
    result = convert_documents([doc])
    assert len(result.bundles) <= 1
    for found in result.problems:
        assert found.doc_id and found.message
    for bundle in result.bundles:
        assert bundle.workflow.HasRequest
        assert bundle.workflow.RequestName


# --------------------------------------------------------------------------- clean documents


def nest(flat: Mapping[str, int]) -> dict[str, Any]:
    """{"submitted.running": 3} -> {"submitted": {"running": 3}}."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *groups, last = path.split(".")
        into = out
        for group in groups:
            into = into.setdefault(group, {})
        into[last] = value
    return out


known_counts = st.dictionaries(st.sampled_from(sorted(COUNTER_SOURCES.values())),
                               st.integers(0, 10**7), max_size=8)
clean_sites = st.sampled_from(["T0_CH_CERN", "T1_US_FNAL", "T2_CH_CERN", "T2_US_MIT"])
clean_perf = st.fixed_dictionaries({
    "cmsRunCPUPerformance": st.fixed_dictionaries({
        "totalJobCPU": st.floats(0, 1e9), "totalEventCPU": st.floats(0, 1e9),
        "totalJobTime": st.floats(0, 1e9)}),
    "inputEvents": st.integers(0, 10**9),
    "wrappedTotalJobTime": st.integers(0, 10**9) | st.floats(0, 1e9),
    "dataset": st.dictionaries(st.sampled_from(DATASETS[:2]), st.fixed_dictionaries({
        "events": st.integers(0, 10**9), "size": st.integers(0, 10**15),
        "totalLumis": st.integers(0, 10**5)}), max_size=2),
})
clean_bodies = st.fixed_dictionaries({
    "status": known_counts,
    "sites": st.dictionaries(clean_sites, known_counts, max_size=3),
    "tasks": st.dictionaries(st.sampled_from(["/wf/Production", "/wf/Production/Merge"]),
                             st.fixed_dictionaries({
                                 "status": known_counts,
                                 "sites": st.dictionaries(clean_sites, st.tuples(
                                     known_counts, clean_perf), max_size=2),
                                 "jobtype": st.sampled_from(["Production", "Merge"])}),
                             max_size=2),
    "timestamp": st.integers(0, 2**31),
})


@settings(max_examples=100, deadline=None)
@given(clean_bodies)
def test_clean_documents_convert_exactly_and_quietly(flat: dict[str, Any]) -> None:
    """Well-formed documents: no problem reported, and each field holds its path's value."""
    doc = {"_id": "ar-1", "type": "agent_request", "workflow": "wf",
           "agent_url": "vocms0250.cern.ch", "timestamp": flat["timestamp"],
           "status": nest(flat["status"]),
           "sites": {site: nest(counts) for site, counts in flat["sites"].items()},
           "tasks": {task: {"jobtype": task_doc["jobtype"], "status": nest(task_doc["status"]),
                            "sites": {site: {**nest(counts), **perf}
                                      for site, (counts, perf) in task_doc["sites"].items()}}
                     for task, task_doc in flat["tasks"].items()}}
    result = convert_documents([doc])
    assert result.problems == ()
    (bundle,) = result.bundles

    def same(record: Any, counts: Mapping[str, int]) -> None:
        for field, path in COUNTER_SOURCES.items():
            assert getattr(record, field) == counts.get(path, 0), (field, path)
        assert record.OtherJobs == 0

    same(bundle.workflow, flat["status"])
    assert bundle.workflow.AgentUpdate == flat["timestamp"]
    assert {s.Site: s for s in bundle.sites}.keys() == flat["sites"].keys()
    for record in bundle.sites:
        same(record, flat["sites"][record.Site])
    assert {t.Task for t in bundle.tasks} == flat["tasks"].keys()
    written: dict[str, tuple[int, int, int]] = {}
    for task in bundle.tasks:
        same(task, flat["tasks"][task.Task]["status"])
        assert task.JobType == flat["tasks"][task.Task]["jobtype"]
    for task_site in bundle.task_sites:
        counts, perf = flat["tasks"][task_site.Task]["sites"][task_site.Site]
        same(task_site, counts)
        cpu = perf["cmsRunCPUPerformance"]
        assert (task_site.TotalJobCPU, task_site.TotalEventCPU, task_site.TotalJobTime) == (
            cpu["totalJobCPU"], cpu["totalEventCPU"], cpu["totalJobTime"])
        assert task_site.InputEvents == perf["inputEvents"]
        assert task_site.WrappedTotalJobTime == perf["wrappedTotalJobTime"]
        for ds, stats in perf["dataset"].items():
            old = written.get(ds, (0, 0, 0))
            written[ds] = (old[0] + stats["events"], old[1] + stats["size"],
                           old[2] + stats["totalLumis"])
    assert len(bundle.task_sites) == sum(len(t["sites"]) for t in flat["tasks"].values())
    assert {d.Dataset: (d.Events, d.Size, d.Lumis) for d in bundle.datasets} == written
