"""Job records from jobsummary documents: the converter, the table that follows
changes, its compact document index, filtering, and reqmon's ``jobdetail`` shape."""

from __future__ import annotations

import copy
import gc
import importlib.util
import json
import random
import weakref
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats import _docindex
from wmstats._docindex import DocIndex
from wmstats.backends.jobcodec import JobDictionary, decode_jobs, encode_jobs
from wmstats.convert import DocumentConverter, Problem, convert_documents
from wmstats.jobdetail import jobdetail, sample_document
from wmstats.jobs import (
    JobFilter,
    JobOptions,
    JobTable,
    convert_jobsummary,
    couch_collation_key,
    cut_text,
    group_samples,
    sample_order,
    select_jobs,
)
from wmstats.mock import MockGenerator
from wmstats.schema import WorkflowJobs

DRILL = Path(__file__).parent / "data" / "wmcore" / "drill"
#: the job dictionaries this installation can make (zstd needs ``zstandard``)
DICTIONARY_KINDS = ("zlib", "zstd") if importlib.util.find_spec("zstandard") else ("zlib",)


def anchor(name: str) -> Any:
    with open(DRILL / name, encoding="utf-8") as handle:
        return json.load(handle)


def table_of(docs: list[dict[str, Any]], **options: Any) -> tuple[JobTable, list[Problem]]:
    table = JobTable(JobOptions(**options))
    problems: list[Problem] = []
    for doc in docs:
        table.update(doc["_id"], doc, problems)
    return table, problems


# --------------------------------------------------------------------------- converting


def test_failed_anchor_becomes_a_sample_with_what_operators_read() -> None:
    doc = anchor("jobsummary_failed.json")
    problems: list[Problem] = []
    entry = convert_jobsummary(doc, problems)
    assert problems == [] and entry is not None
    s = entry.sample
    assert (entry.workflow, entry.key, entry.agent) == (
        doc["workflow"], (doc["task"], "jobfailed", 8021, "T1_US_FNAL"), "vocms0255.cern.ch")
    assert (s.JobName, s.Step, s.ErrorType, s.ErrorExitCode) == (
        doc["_id"], "cmsRun1", "Fatal Exception", 8021)
    assert s.Details == doc["errors"]["cmsRun1"][0]["details"]
    assert s.ErrorTypes == ("Fatal Exception",)
    assert s.LogArchive == doc["output"][0]["lfn"] and s.LogURL == doc["eos_log_url"]
    assert s.WorkerNode == "cmswn2451.fnal.gov" and s.RetryCount == 3
    assert s.InputFiles == (doc["inputfiles"][0]["lfn"],)
    assert (s.WMBSId, s.JobType, s.Timestamp) == (4127893, "Processing", 1696405111)
    assert s.Document == ""  # written only for the samples a table keeps
    assert json.loads(entry.kept_sample().Document) == doc  # whole, _rev included


def test_success_and_legacy_anchors() -> None:
    problems: list[Problem] = []
    success = convert_jobsummary(anchor("jobsummary_success.json"), problems)
    legacy = convert_jobsummary(anchor("jobsummary_legacy_2012_verbatim.json"), problems)
    assert problems == []
    assert success is not None and legacy is not None
    assert success.key[1:] == ("success", 0, "T2_CH_CERN")
    assert success.sample.LogCollect == tuple(anchor("jobsummary_success.json")["logArchiveLFN"])
    assert (success.sample.Step, success.sample.ErrorTypes) == ("", ())
    # The 2012 schema: no agent, no ACDC, no worker node; still a job.
    assert legacy.agent == "" and legacy.sample.ACDC == "" and legacy.sample.WorkerNode == ""
    assert legacy.key == (anchor("jobsummary_legacy_2012_verbatim.json")["task"], "success", 0,
                          "T2_US_Vanderbilt")


def test_the_error_that_explains_the_exit_code_is_chosen() -> None:
    doc = anchor("jobsummary_failed.json")
    doc["exitcode"] = 50660
    doc["errors"]["stageOut1"] = [{"type": "StageOutFailure", "details": "no", "exitCode": 60311}]
    doc["errors"]["PerformanceError"] = [{"type": "PerformanceKill", "details": "PSS",
                                          "exitCode": 50660}]
    entry = convert_jobsummary(doc, [])
    assert entry is not None
    assert (entry.sample.Step, entry.sample.ErrorType, entry.sample.Details) == (
        "PerformanceError", "PerformanceKill", "PSS")
    # Every type, sorted as the view sorts them (UTF-16 code units).
    assert entry.sample.ErrorTypes == ("Fatal Exception", "PerformanceKill", "StageOutFailure")


def test_long_details_are_cut_and_say_so() -> None:
    doc = anchor("jobsummary_failed.json")
    doc["errors"]["cmsRun1"][0]["details"] = "x" * 5000
    entry = convert_jobsummary(doc, [], JobOptions(detail_limit=100))
    assert entry is not None
    assert entry.sample.Details == "x" * 100 + "[... 4900 characters cut]"
    assert json.loads(entry.kept_sample().Document)["errors"]["cmsRun1"][0]["details"] == (
        "x" * 5000)
    assert cut_text("short", 100) == "short"
    kept = convert_jobsummary(doc, [], JobOptions(keep_documents=False))
    assert kept is not None and kept.kept_sample().Document == ""


@pytest.mark.parametrize(("change", "path", "expect"), [
    ({"exitcode": "8021"}, "exitcode", lambda e: e.key[2] == 8021),
    ({"exitcode": "lots"}, "exitcode", lambda e: e.key[2] == 0),
    ({"task": 7}, "task", lambda e: e.key[0] == "7"),
    ({"task": None}, "task", lambda e: e.key[0] == ""),
    ({"state": ["x"]}, "state", lambda e: e.key[1] == ""),
    ({"errors": "boom"}, "errors", lambda e: e.sample.Step == ""),
    ({"errors": {"cmsRun1": "boom"}}, "errors.cmsRun1", lambda e: e.sample.Step == ""),
    ({"errors": {"cmsRun1": [5]}}, "errors.cmsRun1[0]", lambda e: e.sample.Step == ""),
    ({"errors": {"cmsRun1": [{"type": 3, "details": None, "exitCode": 8021}]}},
     "errors.cmsRun1[0].type", lambda e: e.sample.ErrorType == "3"),
    ({"errors": {"cmsRun1": [{"type": "T", "details": {"a": 1}, "exitCode": "8021"}]}},
     "errors.cmsRun1[0].details", lambda e: e.sample.Details == '{"a":1}'),
    ({"output": "none"}, "output", lambda e: e.sample.LogArchive == ""),
    ({"inputfiles": 5}, "inputfiles", lambda e: e.sample.InputFiles == ()),
    ({"retrycount": 2.5}, "retrycount", lambda e: e.sample.RetryCount == 0),
])
def test_malformed_values_are_reported_and_the_rest_kept(
        change: dict[str, Any], path: str, expect: Any) -> None:
    doc = {**anchor("jobsummary_failed.json"), **change}
    problems: list[Problem] = []
    entry = convert_jobsummary(doc, problems)
    assert entry is not None and expect(entry)
    assert [(p.doc_id, p.path) for p in problems][:1] == [(doc["_id"], path)], problems
    assert entry.workflow == doc["workflow"]


def test_documents_without_a_workflow_or_id_are_skipped_and_reported() -> None:
    problems: list[Problem] = []
    assert convert_jobsummary({"_id": "j1", "type": "jobsummary"}, problems) is None
    assert convert_jobsummary({"type": "jobsummary", "workflow": "w"}, problems) is None
    assert [(p.doc_id, p.path) for p in problems] == [("j1", "workflow"), ("<no id>", "_id")]
    # An old document's empty-object site is an unknown site, not a problem.
    entry = convert_jobsummary({**anchor("jobsummary_failed.json"), "site": {}}, problems)
    assert entry is not None and entry.key[3] == "" and len(problems) == 2


def test_the_converter_counts_jobsummaries_and_reports_problems() -> None:
    failed, success = anchor("jobsummary_failed.json"), anchor("jobsummary_success.json")
    bad = {**failed, "_id": "bad", "exitcode": "x"}
    result = convert_documents([failed, success, bad, {"type": "jobsummary", "workflow": "w"},
                                "not a document"])
    jobs = {j.RequestName: j for j in result.jobs}
    assert sum(g.Jobs for g in jobs[failed["workflow"]].groups) == 3
    # Without an id: counted under a made-up one, and reported.
    assert sum(g.Jobs for g in jobs["w"].groups) == 1
    assert ("bad", "exitcode") in [(p.doc_id, p.path) for p in result.problems]
    assert ("<no id 1>", "_id") in [(p.doc_id, p.path) for p in result.problems]
    assert result.bundles == ()  # job records are not workflows


# --------------------------------------------------------------------------- the table


def job(doc_id: str, wf: str = "wf", task: str = "/wf/T", state: str = "jobfailed",
        code: int = 8021, site: str = "T1_US_FNAL", agent: str = "a1",
        **more: Any) -> dict[str, Any]:
    return {"_id": doc_id, "type": "jobsummary", "workflow": wf, "task": task,
            "state": state, "exitcode": code, "site": site, "agent_name": agent,
            "acdc_url": "https://acdc", "errors": {"cmsRun1": [
                {"type": "Fatal Exception", "details": f"failure of {doc_id}",
                 "exitCode": code}]} if code else {"cmsRun1": []}, **more}


def counts(table: JobTable) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for name in table.workflows():
        for g in table.jobs(name).groups:
            out[g.RequestName, g.Task, g.State, g.ExitCode, g.Site, g.Agent] += g.Jobs
    return out


def test_a_changed_document_moves_and_a_deleted_one_goes() -> None:
    table, _ = table_of([job("j1"), job("j2"), job("j3", site="T2_CH_CERN")])
    assert counts(table) == {("wf", "/wf/T", "jobfailed", 8021, "T1_US_FNAL", "a1"): 2,
                             ("wf", "/wf/T", "jobfailed", 8021, "T2_CH_CERN", "a1"): 1}
    assert table.update("j1", job("j1", state="jobcooloff"), []) == {"wf"}
    assert counts(table)["wf", "/wf/T", "jobcooloff", 8021, "T1_US_FNAL", "a1"] == 1
    assert counts(table)["wf", "/wf/T", "jobfailed", 8021, "T1_US_FNAL", "a1"] == 1
    assert table.update("j3", None, []) == {"wf"}
    assert table.update("j3", None, []) == set()  # already gone
    assert ("wf", "/wf/T", "jobfailed", 8021, "T2_CH_CERN", "a1") not in counts(table)
    # Moving to another workflow changes both.
    assert table.update("j2", job("j2", wf="other"), []) == {"wf", "other"}
    assert len(table) == 2 and sorted(table.workflows()) == ["other", "wf"]
    # The same document again: its workflow is named again (a caller that failed to
    # store the records can retry), nothing else changes.
    before = table.jobs("other")
    assert table.update("j2", job("j2", wf="other"), []) == {"other"}
    assert table.jobs("other") == before


def test_samples_are_bounded_and_the_first_in_jobdetail_order() -> None:
    ids = [f"id{n:02d}" for n in range(20)]
    random.Random(4).shuffle(ids)
    table, _ = table_of([job(i) for i in ids], samples=3)
    (samples,) = group_samples(table.jobs("wf")).values()
    assert [s.JobName for s in samples] == ["id00", "id01", "id02"]
    assert table.jobs("wf").groups[0].Jobs == 20
    # A later document that comes earlier in the order takes a place.
    table.update("id!", job("id!"), [])
    assert [s.JobName for s in table.jobs("wf").samples] == ["id!", "id00", "id01"]
    # Agent and ACDC URL come before the job name.
    table.update("zz", job("zz", agent="a0"), [])
    assert table.jobs("wf").samples[0].JobName == "zz"


def test_a_sample_that_leaves_is_replaced_only_by_a_newcomer() -> None:
    table, _ = table_of([job(f"j{n}") for n in range(5)], samples=2)
    assert [s.JobName for s in table.jobs("wf").samples] == ["j0", "j1"]
    table.update("j0", None, [])
    assert [s.JobName for s in table.jobs("wf").samples] == ["j1"]  # no document kept
    assert table.jobs("wf").groups[0].Jobs == 4
    table.update("j9", job("j9"), [])
    assert [s.JobName for s in table.jobs("wf").samples] == ["j1", "j9"]
    # A new version of a sample replaces it in place.
    table.update("j1", job("j1", retrycount=5), [])
    assert table.jobs("wf").samples[0].RetryCount == 5


def test_doc_index_is_compact_and_survives_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_docindex, "_MIN_OVERLAY", 16)
    index = DocIndex()
    rnd = random.Random(3)
    truth: dict[str, int] = {}
    for step in range(3000):
        doc = f"doc-{rnd.randrange(800)}"
        if rnd.random() < 0.3:
            assert index.delete(doc) == truth.pop(doc, None)
        else:
            value = rnd.randrange(2**31)
            index.set(doc, value)
            truth[doc] = value
        if step % 97 == 0:
            assert len(index) == len(truth)
    index.compact()
    assert len(index) == len(truth)
    for n in range(800):
        assert index.get(f"doc-{n}") == truth.get(f"doc-{n}")
    assert sorted(index.values()) == sorted(truth.values())
    assert index.nbytes() == 12 * len(truth)  # no overlay after compact
    with pytest.raises(ValueError):
        index.set("x", -1)


# --------------------------------------------------------------------------- the codec


def _production_jobs(n: int) -> list[WorkflowJobs]:
    return list(MockGenerator.production_sized(3, now=1_700_000_000).iter_jobs(n))


@pytest.mark.parametrize("kind", DICTIONARY_KINDS)
def test_dictionary_blobs_round_trip_and_halve_the_bytes(kind: str) -> None:
    """A dictionary made from some workflows encodes the others too: each blob reads
    back to the same records (samples in order, documents as they were), and all
    of them take at most 60 % of the bytes of per-workflow zlib."""
    jobs = _production_jobs(120)
    assert len(jobs) > 70
    dictionary = JobDictionary.train(jobs[:40], kind=kind)
    assert dictionary.kind == kind
    blobs = [dictionary.encode(item) for item in jobs]
    for item, blob in zip(jobs, blobs):
        assert decode_jobs(item.RequestName, blob, dictionary) == item
    plain = sum(len(encode_jobs(item)) for item in jobs)
    assert sum(map(len, blobs)) <= 0.6 * plain


def test_a_sample_that_is_not_its_documents_conversion_keeps_its_fields() -> None:
    """Samples are kept as their documents only where converting the document gives
    them exactly; any other sample (other options, no document, a document that is
    not an object, JSON written differently) comes back as it went in."""
    item = _production_jobs(20)[0]
    first, second, *rest = item.samples
    odd = [
        attrs.evolve(first, Details="cut elsewhere"),          # other detail_limit
        attrs.evolve(second, Document=""),                     # keep_documents=False
        attrs.evolve(second, JobName="x", Document="[1, 2]"),  # not an object
        attrs.evolve(first, JobName="y",                       # not compact JSON
                     Document=json.dumps(json.loads(first.Document), indent=1)),
    ]
    changed = WorkflowJobs(item.RequestName, item.groups, (*odd, *rest))
    for kind in DICTIONARY_KINDS:
        dictionary = JobDictionary.train([changed], kind=kind)
        assert decode_jobs(item.RequestName, dictionary.encode(changed), dictionary) == changed


def test_a_dictionary_blob_needs_its_dictionary() -> None:
    jobs = _production_jobs(30)
    dictionary = JobDictionary.train(jobs, kind="zlib")
    blob = dictionary.encode(jobs[0])
    with pytest.raises(ValueError, match="without it"):
        decode_jobs(jobs[0].RequestName, blob)
    other = JobDictionary.train(jobs[1:], kind="zlib")
    with pytest.raises(zlib.error):  # another preset window: zlib says so
        decode_jobs(jobs[0].RequestName, blob, other)
    # a plain blob reads with or without a dictionary
    assert decode_jobs(jobs[0].RequestName, encode_jobs(jobs[0]), dictionary) == jobs[0]


def test_the_shelf_keeps_blobs_only() -> None:
    """The memory store's shelf keeps no record it was given (the mock's and the
    sources' copies are released once encoded), shares one dictionary between a
    replace and the applies that follow, and makes a new one at the next replace."""
    from wmstats.backends.memory._jobs import JobShelf

    jobs = _production_jobs(100)
    shelf = JobShelf()
    refs = [weakref.ref(item) for item in jobs]
    names = [item.RequestName for item in jobs]
    expected = {item.RequestName: attrs.evolve(item) for item in jobs}
    shelf.replace(iter(jobs))
    del jobs
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert shelf.get(names) == expected
    dictionary = shelf.dictionary
    assert dictionary is not None
    shelf.apply([expected[names[0]]], [names[1]])
    assert shelf.dictionary is dictionary and names[1] not in shelf.get(names)
    assert shelf.get(names[:1]) == {names[0]: expected[names[0]]}
    shelf.replace([expected[names[2]]])
    assert shelf.dictionary is not dictionary
    assert shelf.get(names) == {names[2]: expected[names[2]]}
    shelf.replace([WorkflowJobs("no-jobs")])  # nothing to make a dictionary of
    assert shelf.dictionary is None and len(shelf) == 0


# --------------------------------------------------------------------------- properties

_WF = st.sampled_from(["wf_a", "wf_b", "wf_ü"])
_DOC = st.fixed_dictionaries({
    "workflow": _WF,
    "task": st.sampled_from(["/T1", "/T1/Merge", "/T2"]),
    "state": st.sampled_from(["jobfailed", "jobcooloff", "success"]),
    "exitcode": st.sampled_from([0, 8021, 50660, 71304, 99109]),
    "site": st.sampled_from(["T1_US_FNAL", "T2_CH_CERN", ""]),
    "agent_name": st.sampled_from(["a1", "a2"]),
    "acdc_url": st.sampled_from(["https://acdc", ""]),
})
_OPS = st.lists(st.tuples(st.integers(0, 25), st.one_of(st.none(), _DOC)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, samples=st.integers(0, 4))
def test_records_count_the_current_documents_exactly(
        ops: list[tuple[int, dict[str, Any] | None]], samples: int) -> None:
    """Property: after any sequence of new, changed and deleted documents, the job
    counts equal the documents per workflow, task, state, exit code, site and agent;
    no group has more than N samples; every sample is the current version of a
    document of its group; a table built from scratch holds the first N."""
    table = JobTable(JobOptions(samples=samples))
    current: dict[str, dict[str, Any]] = {}
    for number, body in ops:
        doc_id = f"job-{number}"
        doc = None if body is None else {"_id": doc_id, "type": "jobsummary", **body}
        table.update(doc_id, doc, [])
        if doc is None:
            current.pop(doc_id, None)
        else:
            current[doc_id] = doc
    expected: Counter[tuple[Any, ...]] = Counter(
        (d["workflow"], d["task"], d["state"], d["exitcode"], d["site"], d["agent_name"])
        for d in current.values())
    assert counts(table) == expected
    assert len(table) == len(current)
    for name in table.workflows():
        per_group = group_samples(table.jobs(name))
        for key, found in per_group.items():
            assert len(found) <= samples
            for sample in found:
                doc = current[sample.JobName]
                assert (doc["workflow"], doc["task"], doc["state"], doc["exitcode"],
                        doc["site"]) == (name, *key)
                assert json.loads(sample.Document) == doc
    fresh, _ = table_of(list(current.values()), samples=samples)
    for name in fresh.workflows():
        for key, found in group_samples(fresh.jobs(name)).items():
            members = [s for s in (convert_jobsummary(d, []) for d in current.values())
                       if s is not None and (s.workflow, *s.key) == (name, *key)]
            wanted = sorted((m.kept_sample() for m in members), key=sample_order)[:samples]
            assert found == wanted


@settings(max_examples=100, deadline=None)
@given(before=_OPS, after=_OPS, samples=st.integers(0, 4))
def test_a_table_adopting_kept_records_goes_on_as_the_original(
        before: list[tuple[int, dict[str, Any] | None]],
        after: list[tuple[int, dict[str, Any] | None]], samples: int) -> None:
    """Property: a table filled lazily from kept records (through the store's codec)
    and where each document counts, one workflow at a time as changes touch it,
    makes the same records as the table that counted the documents all along."""
    options = JobOptions(samples=samples)
    original = JobTable(options)
    ids = [f"job-{number}" for number in range(26)]

    def apply(table: JobTable, ops: list[tuple[int, dict[str, Any] | None]]) -> None:
        for number, body in ops:
            doc_id = ids[number]
            table.update(doc_id, None if body is None
                         else {"_id": doc_id, "type": "jobsummary", **body}, [])

    apply(original, before)
    kept = {name: decode_jobs(name, encode_jobs(original.jobs(name), compress=True))
            for name in original.workflows()}
    placed: dict[str, list[tuple[str, Any, str]]] = {}
    for doc_id in ids:
        where = original.where(doc_id)
        if where is not None:
            placed.setdefault(where[0], []).append((doc_id, where[1], where[2]))
    loaded: list[str] = []

    def load(name: str) -> None:
        if name not in loaded:
            loaded.append(name)
            if name in kept:
                lazy.adopt(kept[name], placed[name])

    lazy = JobTable(options, load=load)
    # What a restarted source does before each change: read the workflow the
    # document counted in from the kept entries (the table calls load for the new one).
    for number, body in after:
        where = original.where(ids[number])
        if where is not None:
            load(where[0])
        apply(original, [(number, body)])
        apply(lazy, [(number, body)])
    for name in set(original.workflows()) | set(lazy.workflows()) | set(kept):
        if name in loaded:
            assert lazy.jobs(name) == original.jobs(name)
        else:  # never touched: the kept records are still current
            assert name not in lazy.workflows()
            assert kept[name] == original.jobs(name)


def test_adopting_records_that_do_not_add_up_is_refused() -> None:
    gen = MockGenerator(seed=7)
    docs = next(found for found in map(gen.job_documents, range(50)) if len(found) > 2)
    table, _ = table_of(docs)
    name = table.workflows()[0]
    records = table.jobs(name)
    placed = [(d["_id"], *table.where(d["_id"])[1:]) for d in docs  # type: ignore[index]
              if d["workflow"] == name]
    fresh = JobTable()
    with pytest.raises(ValueError, match="do not add up"):
        fresh.adopt(records, placed[1:])
    with pytest.raises(ValueError, match="counted twice"):
        fresh.adopt(records, [*placed, placed[0]])
    moved = [(placed[0][0], ("/other", "jobfailed", 1, "T9"), placed[0][2]), *placed[1:]]
    with pytest.raises(ValueError):
        fresh.adopt(records, moved)
    assert not fresh.workflows() and len(fresh) == 0
    fresh.adopt(records, placed)
    assert fresh.jobs(name) == records and len(fresh) == len(placed)
    assert all(doc_id in fresh for doc_id, _, _ in placed)
    with pytest.raises(ValueError, match="already"):
        fresh.adopt(records, placed)


def test_mock_job_records_count_every_mock_document() -> None:
    """Property on the mock: per workflow, task, exit code and site the records count
    exactly the mock's jobsummary documents; samples never exceed 3 per group."""
    gen = MockGenerator(seed=5)
    with_jobs = 0
    for i in range(150):
        docs = gen.job_documents(i)
        jobs = gen.jobs(i)
        expected = Counter((d["workflow"], d["task"], d["exitcode"], d["site"]) for d in docs)
        found: Counter[tuple[Any, ...]] = Counter()
        for g in jobs.groups:
            found[g.RequestName, g.Task, g.ExitCode, g.Site] += g.Jobs
        assert found == expected, i
        assert all(len(s) <= 3 for s in group_samples(jobs).values())
        with_jobs += bool(docs)
    assert 30 < with_jobs < 120


# --------------------------------------------------------------------------- filtering


def test_select_jobs() -> None:
    table, _ = table_of([job("a"), job("b", task="/wf/T/Merge", code=50660, agent="a2"),
                         job("c", site="T2_CH_CERN", state="success", code=0)])
    jobs = table.jobs("wf")
    assert select_jobs(jobs, JobFilter()) is jobs
    merge = select_jobs(jobs, JobFilter(task=("Merge",)))
    assert [g.Task for g in merge.groups] == ["/wf/T/Merge"] == [s.Task for s in merge.samples]
    assert len(select_jobs(jobs, JobFilter(task=("/wf/T",))).groups) == 2
    assert sorted(g.ExitCode for g in select_jobs(
        jobs, JobFilter(exit_code=(0, 8021))).groups) == [0, 8021]
    assert [g.Site for g in select_jobs(jobs, JobFilter(site=("T2_*",))).groups] == [
        "T2_CH_CERN"]
    assert [g.Agent for g in select_jobs(jobs, JobFilter(agent=("a2",))).groups] == ["a2"]
    both = select_jobs(jobs, JobFilter(state=("jobfailed",), site=("T1_US_FNAL",)))
    assert sum(g.Jobs for g in both.groups) == 2


# --------------------------------------------------------------------------- jobdetail


def test_collation_follows_couchdb_types_then_values() -> None:
    values = [None, False, True, -1, 2.5, 10, "", "A", "a", "b", [], ["a"], ["a", 1], {}]
    shuffled = values[:]
    random.Random(1).shuffle(shuffled)
    assert sorted(shuffled, key=couch_collation_key) == values


def test_jobdetail_rebuilds_the_anchor_reply() -> None:
    """The anchor's reply (sample_size=2), rebuilt from the records of its samples and
    of extra documents that fill the groups up to their errorCount (they come later in
    the view order, so the samples stay the same)."""
    reply = anchor("jobdetail_response.json")
    (detail,) = reply["result"]
    docs: list[dict[str, Any]] = []
    for tasks in detail.values():
        for states in tasks.values():
            for codes in states.values():
                for sites in codes.values():
                    for group in sites.values():
                        docs.extend(group["samples"])
                        for n in range(group["errorCount"] - len(group["samples"])):
                            filler = copy.deepcopy(group["samples"][-1])
                            filler["_id"] = f"zzzz-{len(docs)}-{n}"
                            docs.append(filler)
    table, problems = table_of(docs)
    assert problems == []
    (name,) = detail
    assert jobdetail(table.jobs(name), 2) == detail
    one = jobdetail(table.jobs(name), 1)
    for tasks in one.values():
        for states in tasks.values():
            for codes in states.values():
                for sites in codes.values():
                    for group in sites.values():
                        assert len(group["samples"]) == 1
    assert jobdetail(None, 2) == {} == jobdetail(WorkflowJobs("x"), 2)
    assert jobdetail(table.jobs(name), 0) == {}  # CouchDB's limit=0 returns no row


def test_jobdetail_keeps_reqmons_empty_site_quirk() -> None:
    """A group without a site asks for its whole exit code: it gets the documents of
    every site of that exit code in view order, and an errorCount of 0."""
    table, _ = table_of([job("b1", site=""), job("a1", site="T2_CH_CERN"),
                         job("a2", site="T2_CH_CERN")])
    detail = jobdetail(table.jobs("wf"), 2)["wf"]["/wf/T"]["jobfailed"]["8021"]
    assert detail[""] == {"samples": [sample_document(table.jobs("wf").samples[0])],
                          "errorCount": 0}
    cern = detail["T2_CH_CERN"]
    assert cern["errorCount"] == 2
    # From the empty-site query (first 2 in view order: b1, then a1) and its own (a1, a2).
    assert [d["_id"] for d in cern["samples"]] == ["a1", "a1", "a2"]


def test_sample_document_without_kept_documents() -> None:
    table, _ = table_of([job("j1")], keep_documents=False)
    (sample,) = table.jobs("wf").samples
    doc = sample_document(sample)
    assert doc["_id"] == "j1" and doc["errors"]["cmsRun1"][0]["exitCode"] == 8021
    assert attrs.evolve(sample, Document=json.dumps({"_id": "j1"})) != sample


def test_converter_keeps_job_problems_with_the_others() -> None:
    conv = DocumentConverter()
    conv.add({**anchor("jobsummary_failed.json"), "retrycount": "three"})
    assert [p.path for p in conv.problems] == ["retrycount"]
    assert len(conv.job_table) == 1


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(),
              st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=5)
_MESSY = st.fixed_dictionaries({"_id": st.one_of(st.text(min_size=1, max_size=8), _JSON),
                                "type": st.just("jobsummary")}, optional={
    key: _JSON for key in ("workflow", "task", "state", "exitcode", "site", "agent_name",
                           "acdc_url", "errors", "output", "inputfiles", "logArchiveLFN",
                           "worker_node_info", "retrycount", "wmbsid", "timestamp",
                           "eos_log_url", "jobtype")})


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(_MESSY, max_size=8))
def test_messy_documents_never_raise_and_are_counted_or_reported(
        docs: list[dict[str, Any]]) -> None:
    """Property: any jobsummary-shaped document converts without an exception; it is
    counted, or skipped with a problem naming it; what is counted renders and
    encodes as records."""
    table = JobTable()
    problems: list[Problem] = []
    for n, doc in enumerate(docs):
        changed = table.update(f"doc-{n}", doc, problems)
        workflow = doc.get("workflow")
        if not (isinstance(workflow, str) and workflow) and not (
                isinstance(workflow, (int, float)) and not isinstance(workflow, bool)):
            assert changed == set() and any(p.path == "workflow" for p in problems)
    for name in table.workflows():
        jobs = table.jobs(name)
        assert decode_jobs(name, encode_jobs(jobs)) == jobs
        for kind in DICTIONARY_KINDS:
            dictionary = JobDictionary.train([jobs], kind=kind)
            assert decode_jobs(name, dictionary.encode(jobs), dictionary) == jobs
        assert all(isinstance(s.Document, str) for s in jobs.samples)

