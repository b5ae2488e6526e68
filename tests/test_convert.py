"""Converting WMCore documents into static records.

Two halves: the real documents in ``tests/data/wmcore/`` (every one converts with
no problem, and the records hold the values read by eye from the files), then
small messy documents, each checking the converted values *and* the exact
problems reported (document id, key path, and a message that says what was wrong).
"""

from __future__ import annotations

import calendar
import collections
import copy
from typing import Any

import pytest

from wmstats.convert import (
    IGNORED_DOC_TYPES,
    ConversionResult,
    DocumentConverter,
    Problem,
    convert_agent_info,
    convert_documents,
    convert_request,
    request_part,
)
from wmstats.mock import MockGenerator
from wmstats.schema import COUNTER_FIELDS, COUNTER_SOURCES, Workflow, WorkflowBundle

TASKCHAIN = "amaltaro_TaskChain_ProdMinBias_HG1812_Validation_181203_121009_5217"
STEPCHAIN = "amaltaro_StepChain_MC_HG1812_Validation_181203_121017_2487"
MCFROMGEN = "sryu_MonteCarloFromGEN_wq_testt_160220_214518_7489"
DQMHARVEST = "sryu_DQMHarvesting_wq_testt_160220_214501_5235"
LEGACY = "cmsdataops_sryu_test4_120111_114950_128"
VOCMS008 = "vocms008.cern.ch:9999"


def convert(*docs: Any) -> ConversionResult:
    return convert_documents(docs)


def single(result: ConversionResult) -> WorkflowBundle:
    assert len(result.bundles) == 1, [b.workflow.RequestName for b in result.bundles]
    return result.bundles[0]


def counters(record: Any) -> dict[str, int]:
    """The non-zero job counters of a record."""
    return {f: getattr(record, f) for f in COUNTER_FIELDS if getattr(record, f)}


def where(result: ConversionResult) -> list[tuple[str, str]]:
    """(doc_id, path) of every problem, in report order."""
    return [(p.doc_id, p.path) for p in result.problems]


def problem(result: ConversionResult, doc_id: str, path: str) -> Problem:
    """The one problem reported at ``doc_id`` / ``path``."""
    found = [p for p in result.problems if (p.doc_id, p.path) == (doc_id, path)]
    assert len(found) == 1, (doc_id, path, result.problems)
    return found[0]


def agent_request(workflow: str | None = "wf", agent: str | None = "agent1.cern.ch:9999",
                  doc_id: str = "ar1", **fields: Any) -> dict[str, Any]:
    """A small, clean agent_request document; ``fields`` override its keys."""
    doc: dict[str, Any] = {
        "_id": doc_id, "type": "agent_request", "workflow": workflow, "agent_url": agent,
        "agent_team": "production", "agent_version": "2.3.0", "timestamp": 1700000000,
        "status": {"success": 1}, "sites": {"T1_US_FNAL": {"success": 1}},
    }
    doc.update(fields)
    return doc


def request(name: str = "wf", **fields: Any) -> dict[str, Any]:
    """A small, clean ReqMgr2 request document; ``fields`` override its keys."""
    doc: dict[str, Any] = {"_id": name, "RequestName": name, "RequestStatus": "running-open",
                           "RequestType": "ReReco"}
    doc.update(fields)
    return doc


# --------------------------------------------------------------------------- anchors


def test_every_anchor_file_converts_without_problems(wmcore_file: str,
                                                     wmcore_docs: Any) -> None:
    docs = wmcore_docs(wmcore_file)
    result = convert_documents(docs)
    assert result.problems == ()
    assert result.bundles, wmcore_file
    names = {b.workflow.RequestName for b in result.bundles}
    assert names == {d.get("RequestName") or d["workflow"] for d in docs}


def test_taskchain_request(wmcore_doc: Any) -> None:
    raw = wmcore_doc("reqmgr_request.json")
    bundle = single(convert(raw))
    wf = bundle.workflow
    assert wf.RequestName == TASKCHAIN
    assert wf.RequestStatus == "acquired"
    assert wf.RequestType == "TaskChain"
    assert wf.SubRequestType == "RelVal"
    assert wf.Campaign == "HG1812_Validation"
    assert wf.Campaigns == ("HG1812_Validation",)
    assert wf.Teams == ("devvm-cloud1",)
    assert wf.Group == "DATAOPS"
    assert wf.Requestor == "amaltaro"
    assert wf.PrepID == ""  # null in the document
    assert wf.CMSSWVersion == "CMSSW_8_1_0"
    assert wf.CMSSWVersions == ("CMSSW_8_1_0",)
    assert wf.ScramArch == ("slc6_amd64_gcc530",)
    assert wf.RequestPriority == 600000
    # RequestDate [2018, 12, 3, 11, 10, 9] is UTC: the same second as the "new" transition.
    assert wf.RequestDate == calendar.timegm((2018, 12, 3, 11, 10, 9)) == 1543835409
    assert wf.StatusTime == 1543836342  # the "acquired" transition
    history = bundle.transitions
    assert [t.Status for t in history] == ["new", "assignment-approved", "assigned",
                                           "acquired"]
    assert [(t.RequestName, t.Index) for t in history] == [(TASKCHAIN, i) for i in range(4)]
    assert history[-1].DN == "/DC=ch/DC=cern/OU=computers/CN=wmagent/vocms0192.cern.ch"
    assert history[0].UpdateTime == 1543835409
    assert history[-1].UpdateTime == wf.StatusTime
    assert wf.ChainLength == 3
    # Top-level "DMWM_Test" plus the era every task sets.
    assert wf.AcquisitionEras == ("DMWM_Test", "CMSSW_8_1_0")
    # Top-level ProcessingString is a {task name: string} map.
    assert wf.ProcessingStrings == (
        "ProdMinBias_TaskChain_ProdMinBias_HG1812_Validation_Alan_v1112",
        "DIGIPROD1_TaskChain_ProdMinBias_HG1812_Validation_Alan_v1112",
        "RECOPROD1_TaskChain_ProdMinBias_HG1812_Validation_Alan_v1112",
    )
    assert wf.RequestNumEvents == 9000  # only Task1 has it
    assert wf.SiteWhitelist == ("T1_US_FNAL", "T2_CH_CERN")
    assert wf.SiteBlacklist == ()
    assert wf.InputDataset == ""
    assert wf.UnmergedLFNBase == "/store/unmerged"
    assert len(wf.OutputModulesLFNBases) == 4
    assert (wf.TotalEstimatedJobs, wf.TotalInputEvents, wf.TotalInputLumis,
            wf.TotalInputFiles) == (220, 9000, 220, 0)
    prefix = "/RelValProdMinBias/DMWM_Test-"
    suffix = "_TaskChain_ProdMinBias_HG1812_Validation_Alan_v1112-v11"
    gen_sim = f"{prefix}ProdMinBias{suffix}/GEN-SIM"
    gen_sim_raw = f"{prefix}DIGIPROD1{suffix}/GEN-SIM-RAW"
    aodsim = f"{prefix}RECOPROD1{suffix}/AODSIM"
    gen_sim_reco = f"{prefix}RECOPROD1{suffix}/GEN-SIM-RECO"
    assert wf.OutputDatasets == (gen_sim, gen_sim_raw, aodsim, gen_sim_reco)
    assert wf.OutputDatasets == tuple(raw["OutputDatasets"])
    # No agent reports yet: every counter zero, a request document present.
    assert wf.HasRequest is True
    assert wf.Agents == () and wf.Sites == () and wf.AgentUpdate == 0
    assert counters(wf) == {}
    assert bundle.sites == bundle.tasks == bundle.task_sites == ()
    # One DatasetStats per output dataset, with nothing written yet.
    assert [d.Dataset for d in bundle.datasets] == sorted(raw["OutputDatasets"])
    assert all((d.Events, d.Size, d.Lumis) == (0, 0, 0) for d in bundle.datasets)
    assert [(p.ChainKey, p.ParentDataset, p.ChildDatasets) for p in bundle.parentage] == [
        ("Task1", "", (gen_sim,)),
        ("Task2", gen_sim, (gen_sim_raw,)),
        ("Task3", gen_sim_raw, (aodsim, gen_sim_reco)),
    ]
    assert all(p.RequestName == TASKCHAIN and p.ParentageResolved for p in bundle.parentage)


def test_stepchain_request(wmcore_doc: Any) -> None:
    bundle = single(convert(wmcore_doc("reqmgr_request_stepchain.json")))
    wf = bundle.workflow
    assert wf.RequestName == STEPCHAIN
    assert (wf.RequestType, wf.RequestStatus, wf.ChainLength) == ("StepChain", "acquired", 3)
    assert wf.CMSSWVersion == "CMSSW_8_0_21"
    # Step1 runs an older release on another architecture.
    assert set(wf.CMSSWVersions) == {"CMSSW_8_0_21", "CMSSW_7_1_25_patch2"}
    assert len(wf.CMSSWVersions) == 2
    assert wf.CMSSWVersions[0] == "CMSSW_8_0_21"  # top level first
    assert set(wf.ScramArch) == {"slc6_amd64_gcc530", "slc6_amd64_gcc481"}
    assert len(wf.ScramArch) == 2
    assert wf.ParentageResolved is False
    assert wf.PrepID == "TEST-TEST-HIG-RunIISummer15wmLHEGS-00744"
    assert wf.RequestPriority == 316000
    assert wf.RequestDate == calendar.timegm((2018, 12, 3, 11, 10, 17))
    assert wf.RequestNumEvents == 20000  # from Step1
    assert wf.MCPileup == ("/Neutrino_E-10_gun/RunIISpring15PrePremix-PUMoriond17_80X_mcRun2_"
                           "asymptotic_2016_TrancheIV_v2-v2/GEN-SIM-DIGI-RAW",)  # from Step2
    assert wf.AcquisitionEras == ("DMWM_Test",)
    assert len(wf.OutputDatasets) == 4
    # DBS upload reads these: every entry unresolved, in step order.
    assert [p.ChainKey for p in bundle.parentage] == ["Step1", "Step2", "Step3"]
    assert [p.ParentageResolved for p in bundle.parentage] == [False, False, False]
    step1 = bundle.parentage[0]
    assert step1.ParentDataset == ""
    assert [d.rsplit("/", 1)[1] for d in step1.ChildDatasets] == ["GEN-SIM", "LHE"]
    assert bundle.parentage[2].ParentDataset.endswith("/GEN-SIM-RAW")
    assert bundle.parentage[2].ChildDatasets[0].endswith("/AODSIM")


def test_requestcache_entry_with_agent_job_info(wmcore_doc: Any) -> None:
    bundle = single(convert(wmcore_doc("requestcache_entry_with_AgentJobInfo.json")))
    wf = bundle.workflow
    assert wf.RequestName == MCFROMGEN
    assert (wf.RequestType, wf.RequestStatus) == ("MonteCarloFromGEN", "running-closed")
    assert wf.HasRequest is True
    assert wf.Agents == ("vocms008.cern.ch:9999",)
    assert wf.AgentUpdate == 1456033921
    assert wf.Sites == ("T1_US_FNAL", "T2_CH_CERN", "T2_CH_CERN_HLT")
    assert counters(wf) == {"InWMBS": 100, "SubmittedFirst": 100, "SubmittedPending": 34,
                            "SubmittedRunning": 66}
    assert wf.Teams == ("testbed-dev",)
    assert wf.ScramArch == ("slc6_amd64_gcc472",)  # a plain string in the document
    assert wf.PrepID == "B2G-Summer12-00736"
    assert wf.RequestNumEvents == 50000
    assert wf.StatusTime == 1456033517
    assert wf.InputDataset == ("/QDTojWinc_NC_M-1200_TuneZ2star_8TeV-madgraph/Summer12pLHE-"
                               "DMWM_Validation_DONOTDELETE_Alan_TEST-v1/GEN")

    assert [(s.Site, s.Agent, counters(s)) for s in bundle.sites] == [
        ("T1_US_FNAL", VOCMS008, {"SubmittedFirst": 35, "SubmittedRunning": 43}),
        ("T2_CH_CERN", VOCMS008, {"SubmittedFirst": 19, "SubmittedRunning": 19}),
        ("T2_CH_CERN_HLT", VOCMS008, {"SubmittedFirst": 46, "SubmittedPending": 34,
                                      "SubmittedRunning": 4}),
    ]
    # The site breakdown adds up to the workflow's totals.
    assert sum(s.SubmittedRunning for s in bundle.sites) == wf.SubmittedRunning
    assert sum(s.SubmittedPending for s in bundle.sites) == wf.SubmittedPending
    assert all(s.RequestName == MCFROMGEN for s in bundle.sites)

    base = f"/{MCFROMGEN}/MonteCarloFromGEN"
    assert [(t.Task, t.JobType) for t in bundle.tasks] == [
        (base, "Production"),
        (f"{base}/LogCollect", "LogCollect"),
        (f"{base}/MonteCarloFromGENCleanupUnmergedRAWSIMoutput", "Cleanup"),
        (f"{base}/MonteCarloFromGENMergeRAWSIMoutput", "Merge"),
        (f"{base}/MonteCarloFromGENMergeRAWSIMoutput/MonteCarloFromGENRAWSIMoutputMergeLogCollect",
         "LogCollect"),
    ]
    for task in bundle.tasks:
        assert (task.SubscriptionOpen, task.SubscriptionFinished, task.SubscriptionTotal,
                task.SubscriptionUpdated) == (1, 0, 1, 1456032349)
        assert task.Agent == VOCMS008
    assert counters(bundle.tasks[0]) == {"SubmittedFirst": 100, "SubmittedPending": 34,
                                         "SubmittedRunning": 66}
    assert all(counters(t) == {} for t in bundle.tasks[1:])
    assert [(ts.Task, ts.Site, ts.SubmittedRunning) for ts in bundle.task_sites] == [
        (base, "T1_US_FNAL", 43), (base, "T2_CH_CERN", 19), (base, "T2_CH_CERN_HLT", 4)]
    assert [(d.Dataset, d.Events) for d in bundle.datasets] == [
        ("/QDTojWinc_NC_M-1200_TuneZ2star_8TeV-madgraph/Summer12-START53_V7C-v2/GEN-SIM", 0)]


def test_agent_request_without_its_request(wmcore_doc: Any) -> None:
    bundle = single(convert(wmcore_doc("agent_request.json")))
    wf = bundle.workflow
    assert wf.RequestName == DQMHARVEST
    assert wf.HasRequest is False
    assert wf.RequestStatus == "" and wf.RequestType == ""
    assert counters(wf) == {"Success": 1, "FailureException": 1}
    assert wf.Agents == (VOCMS008,)
    assert wf.AgentUpdate == 1456037523
    # T2_CH_CERN appears only in a task's sites: still one of the workflow's sites.
    assert wf.Sites == ("T2_CH_CERN", "T2_CH_CERN_HLT")
    assert [(s.Site, counters(s)) for s in bundle.sites] == [
        ("T2_CH_CERN_HLT", {"Success": 1, "FailureException": 1})]

    harvest = f"/{DQMHARVEST}/EndOfRunDQMHarvest"
    log_collect = f"{harvest}/EndOfRunDQMHarvestLogCollect"
    assert [(t.Task, counters(t)) for t in bundle.tasks] == [
        (harvest, {"FailureException": 1}), (log_collect, {"Success": 1})]
    assert [t.JobType for t in bundle.tasks] == ["", ""]  # no jobtype in this document
    by_key = {(ts.Task, ts.Site): ts for ts in bundle.task_sites}
    assert set(by_key) == {(harvest, "T2_CH_CERN_HLT"), (log_collect, "T2_CH_CERN"),
                           (log_collect, "T2_CH_CERN_HLT")}
    perf = by_key[(log_collect, "T2_CH_CERN")]
    assert perf.WrappedTotalJobTime == 18.0
    assert (perf.TotalJobCPU, perf.TotalEventCPU, perf.TotalJobTime, perf.InputEvents) == (
        0.0, 0.0, 0.0, 0)
    # Performance keys are not job counters.
    assert counters(perf) == {}
    assert counters(by_key[(harvest, "T2_CH_CERN_HLT")]) == {"FailureException": 1}
    assert counters(by_key[(log_collect, "T2_CH_CERN_HLT")]) == {"Success": 1}
    assert bundle.datasets == () and bundle.parentage == ()


def test_legacy_request(wmcore_doc: Any) -> None:
    bundle = single(convert(wmcore_doc("legacy_reqmgr_request.json")))
    wf = bundle.workflow
    assert wf.RequestName == LEGACY
    assert wf.RequestStatus == "assigned"  # the last entry of request_status
    assert wf.RequestType == "ReReco"
    assert wf.RequestPriority == 1  # "1" in the document
    assert wf.Teams == ("cmsdataops",)
    assert wf.SiteWhitelist == ("T1_DE_KIT",)
    assert wf.InputDataset == "/Photon/Run2011A-v1/RAW"
    assert (wf.Campaign, wf.Group, wf.Requestor) == ("SryuTest2", "cmsdataops", "cmsdataops")
    assert wf.RequestDate == calendar.timegm((2012, 1, 11, 17, 49, 50))
    assert [(t.Index, t.Status, t.UpdateTime) for t in bundle.transitions] == [
        (0, "new", 1326304190), (1, "assignment-approved", 1326304216),
        (2, "assigned", 1326304227)]
    assert {t.RequestName for t in bundle.transitions} == {LEGACY}
    assert wf.StatusTime == 1326304227


def test_legacy_request_and_agent_request_merge(wmcore_doc: Any) -> None:
    result = convert(wmcore_doc("legacy_agent_request.json"),
                     wmcore_doc("legacy_reqmgr_request.json"))
    assert result.problems == ()
    bundle = single(result)
    assert bundle.workflow.HasRequest is True
    assert bundle.workflow.RequestStatus == "assigned"
    assert counters(bundle.workflow) == {"InWMBS": 1, "QueuedRetry": 1}
    assert bundle.workflow.Agents == ("cms-xen39.fnal.gov",)
    assert bundle.workflow.AgentUpdate == 1326306397
    assert [(s.Site, counters(s)) for s in bundle.sites] == [("T1_DE_KIT", {"QueuedRetry": 1})]
    assert bundle.tasks == ()  # legacy agent documents have no tasks


def test_twenty_real_requests(wmcore_doc: Any) -> None:
    raw = wmcore_doc("reqmgr_requests_20.json")
    result = convert_documents(raw.values())
    assert result.problems == ()
    assert len(result.bundles) == 20
    assert [b.workflow.RequestName for b in result.bundles] == list(raw)
    types = collections.Counter(b.workflow.RequestType for b in result.bundles)
    assert types == {"ReReco": 5, "ReDigi": 4, "TaskChain": 4, "MonteCarlo": 3,
                     "StepChain": 2, "MonteCarloFromGEN": 1, "DQMHarvest": 1}
    statuses = collections.Counter(b.workflow.RequestStatus for b in result.bundles)
    assert statuses == {"acquired": 18, "failed": 1, "assignment-approved": 1}
    by_name = {b.workflow.RequestName: b for b in result.bundles}
    for name, doc in raw.items():
        wf = by_name[name].workflow
        assert wf.RequestPriority == doc["RequestPriority"]
        assert wf.SiteWhitelist == tuple(doc.get("SiteWhitelist") or ())
        assert wf.OutputDatasets == tuple(dict.fromkeys(doc.get("OutputDatasets") or ()))
        assert len(by_name[name].parentage) == len(doc.get("ChainParentageMap") or {})
        assert wf.ChainLength == (doc.get("TaskChain") or doc.get("StepChain") or 0)
        assert wf.HasRequest and wf.Agents == ()
    assert by_name["amaltaro_ReReco_BlockWhiteBlack_HG1812_Validation_181203_121036_1728"]\
        .workflow.RequestStatus == "failed"
    # A task-level campaign joins the top-level one.
    nano = by_name["amaltaro_TaskChain_NanoAOD_HG1812_Validation_181203_120951_9572"].workflow
    assert nano.Campaigns == ("HG1812_Validation", "RunIIFall17NanoAOD")
    assert nano.Campaign == "HG1812_Validation"
    # Steps stored in reverse order (Step3, Step2, Step1) come out in step order.
    dup = by_name["amaltaro_StepChain_DupOutMod_HG1812_Validation_181203_121053_7505"]
    assert [p.ChainKey for p in dup.parentage] == ["Step1", "Step2", "Step3"]
    assert dup.workflow.CMSSWVersions == ("CMSSW_9_0_0",)
    dqm = by_name["amaltaro_DQMHarvesting_RunWhitelist_HG1812_Validation_181203_121028_5865"]
    assert dqm.workflow.RequestPriority == 999999
    # The single-file anchor is the same document as its entry in the map.
    assert by_name[TASKCHAIN] == single(convert(wmcore_doc("reqmgr_request.json")))


def test_request_and_its_agents_in_any_order(wmcore_doc: Any) -> None:
    entry = wmcore_doc("requestcache_entry_with_AgentJobInfo.json")
    agent_doc = entry.pop("AgentJobInfo")[VOCMS008]
    together = single(convert(wmcore_doc("requestcache_entry_with_AgentJobInfo.json")))
    assert single(convert(entry, agent_doc)) == together
    assert single(convert(agent_doc, entry)) == together


# --------------------------------------------------------------------------- agent_info


AGENT_INFO = {
    # The shape written by WMCore's AgentStatusPoller (no real example is public).
    "_id": "vocms0250.cern.ch", "type": "agent_info", "agent_url": "vocms0250.cern.ch",
    "agent_team": "production", "agent_version": "2.3.0", "status": "warning",
    "down_components": ["JobAccountant", "ErrorHandler"], "drain_mode": True,
    "disk_warning": [{"mounted": "/data", "percent": "91%"}],
    "timestamp": 1700000300, "data_last_update": 1700000000,
}


def test_agent_info() -> None:
    result = convert(AGENT_INFO)
    assert result.problems == () and result.bundles == ()
    (agent,) = result.agents
    assert agent.AgentURL == "vocms0250.cern.ch"
    assert (agent.AgentTeam, agent.AgentVersion, agent.Status) == ("production", "2.3.0",
                                                                   "warning")
    assert agent.DownComponents == ("JobAccountant", "ErrorHandler")
    assert agent.DrainMode is True
    assert agent.DiskWarning == ("/data",)
    assert (agent.Timestamp, agent.DataLastUpdate) == (1700000300, 1700000000)


def test_agent_info_messy() -> None:
    doc = {**AGENT_INFO, "drain_mode": "yes", "down_components": "AgentStatusWatcher",
           "timestamp": "1700000300", "disk_warning": [5, {"mounted": "/data1"}]}
    problems: list[Problem] = []
    agent = convert_agent_info(doc, problems)
    assert agent is not None
    assert agent.DrainMode is False
    assert agent.DownComponents == ("AgentStatusWatcher",)
    assert agent.Timestamp == 1700000300
    assert agent.DiskWarning == ("5", "/data1")
    assert sorted((p.doc_id, p.path) for p in problems) == [
        ("vocms0250.cern.ch", "disk_warning[0]"),
        ("vocms0250.cern.ch", "drain_mode"),
        ("vocms0250.cern.ch", "timestamp"),
    ]
    by_path = {p.path: p.message for p in problems}
    assert "boolean" in by_path["drain_mode"] and "a string" in by_path["drain_mode"]
    assert "string '1700000300'" in by_path["timestamp"]
    assert "number 5" in by_path["disk_warning[0]"]


def test_agent_info_without_url_is_skipped() -> None:
    result = convert({"type": "agent_info", "status": "ok"})
    assert result.agents == ()
    assert where(result) == [("<no id>", "agent_url")]
    assert "without an agent URL" in result.problems[0].message


# --------------------------------------------------------------------------- messy counters


def test_numeric_string_counter_is_counted_and_reported() -> None:
    result = convert(agent_request(status={"success": "12", "submitted": {"running": " 7 "}}))
    wf = single(result).workflow
    assert (wf.Success, wf.SubmittedRunning) == (12, 7)
    assert where(result) == [("ar1", "status.success"), ("ar1", "status.submitted.running")]
    assert "string '12'" in result.problems[0].message
    assert "string ' 7 '" in result.problems[1].message


def test_numeric_string_beyond_float_precision_is_exact() -> None:
    big = 12345678901234567891  # float() would change its last digits
    result = convert(agent_request(status={"success": str(big)}))
    assert single(result).workflow.Success == big
    assert where(result) == [("ar1", "status.success")]


def test_non_numeric_counter_string_is_reported() -> None:
    result = convert(agent_request(status={"success": "lots", "failure": {"exception": "inf"},
                                           "cooloff": {"job": 3}}))
    wf = single(result).workflow
    assert (wf.Success, wf.FailureException, wf.CooloffJob) == (0, 0, 3)
    assert where(result) == [("ar1", "status.success"), ("ar1", "status.failure.exception")]
    assert "string 'lots'" in result.problems[0].message
    assert "used 0" in result.problems[0].message
    assert "string 'inf'" in result.problems[1].message
    assert "used 0" in result.problems[1].message


def test_null_counter_is_reported() -> None:
    result = convert(agent_request(status={"success": None, "inWMBS": 4}))
    wf = single(result).workflow
    assert (wf.Success, wf.InWMBS) == (0, 4)
    assert where(result) == [("ar1", "status.success")]
    assert "null" in result.problems[0].message


@pytest.mark.parametrize(("value", "expected", "words"), [
    (True, 0, "boolean"),
    ([1, 2], 0, "a list"),
    (2.5, 2, "2.5"),
    (3.0, 3, None),
    (float("inf"), 0, "inf"),
])
def test_odd_counter_values(value: Any, expected: int, words: str | None) -> None:
    result = convert(agent_request(status={"queued": {"first": value}}))
    assert single(result).workflow.QueuedFirst == expected
    if words is None:
        assert result.problems == ()
    else:
        assert where(result) == [("ar1", "status.queued.first")]
        assert words in result.problems[0].message


def test_unknown_status_lands_in_other_jobs() -> None:
    result = convert(agent_request(
        status={"success": 2, "zombie": 5, "submitted": {"running": 1, "held": 3}},
        sites={"T1_US_FNAL": {"zombie": 5}},
    ))
    bundle = single(result)
    assert counters(bundle.workflow) == {"Success": 2, "SubmittedRunning": 1, "OtherJobs": 8}
    assert counters(bundle.sites[0]) == {"OtherJobs": 5}
    assert sorted(where(result)) == [("ar1", "sites.T1_US_FNAL.zombie"),
                                     ("ar1", "status.submitted.held"), ("ar1", "status.zombie")]
    held = problem(result, "ar1", "status.submitted.held").message
    assert "unknown job status 'submitted.held'" in held and "3 jobs" in held
    assert "'zombie'" in problem(result, "ar1", "status.zombie").message


def test_negative_counter_is_kept_and_reported() -> None:
    result = convert(agent_request(status={"success": 10, "failure": {"submit": -2}}))
    wf = single(result).workflow
    assert (wf.Success, wf.FailureSubmit) == (10, -2)
    assert where(result) == [("ar1", "status.failure.submit")]
    assert "negative" in result.problems[0].message and "-2" in result.problems[0].message


def test_performance_keys_outside_a_task_site_are_reported() -> None:
    result = convert(agent_request(status={"success": 1, "inputEvents": 500},
                                   sites={"T1_US_FNAL": {"success": 1,
                                                         "wrappedTotalJobTime": 60}}))
    bundle = single(result)
    assert counters(bundle.workflow) == {"Success": 1}
    assert counters(bundle.sites[0]) == {"Success": 1}
    assert sorted(where(result)) == [("ar1", "sites.T1_US_FNAL.wrappedTotalJobTime"),
                                     ("ar1", "status.inputEvents")]
    assert all("performance" in p.message for p in result.problems)


def test_empty_site_name_keeps_its_counters() -> None:
    result = convert(agent_request(sites={"": {"success": 3}, "T2_CH_CERN": {"success": 1}},
                                   status={"success": 4}))
    bundle = single(result)
    assert [(s.Site, s.Success) for s in bundle.sites] == [("", 3), ("T2_CH_CERN", 1)]
    assert sum(s.Success for s in bundle.sites) == bundle.workflow.Success == 4
    assert where(result) == [("ar1", "sites.")]
    assert "empty site name" in result.problems[0].message


def test_task_site_messy_values() -> None:
    task = "/wf/Processing"
    doc = agent_request(tasks={task: {
        "jobtype": ["Processing"],
        "status": "running",
        "subscription_status": {"open": "1", "total": 2, "finished": None},
        "skipped": {"skippedFiles": 4, "skippedLumis": 9},
        "sites": {"T1_US_FNAL": {
            "success": 3,
            "cmsRunCPUPerformance": {"totalJobCPU": "12.5", "totalEventCPU": "fast",
                                     "totalJobTime": 30},
            "inputEvents": 1.5,
            "wrappedTotalJobTime": None,
            "dataset": {"/A/B/AODSIM": {"events": 100, "size": "2048", "totalLumis": 3}},
        }, " ": ["not", "an", "object"]},
    }})
    result = convert(doc)
    bundle = single(result)
    (wt,) = bundle.tasks
    assert wt.JobType == ""
    assert counters(wt) == {}
    assert (wt.SubscriptionOpen, wt.SubscriptionTotal, wt.SubscriptionFinished) == (1, 2, 0)
    assert wt.SkippedFiles == 4
    fnal = next(ts for ts in bundle.task_sites if ts.Site == "T1_US_FNAL")
    assert fnal.Success == 3
    assert (fnal.TotalJobCPU, fnal.TotalEventCPU, fnal.TotalJobTime) == (12.5, 0.0, 30.0)
    assert fnal.InputEvents == 2  # 1.5, rounded and reported
    assert fnal.WrappedTotalJobTime == 0.0
    assert [(d.Dataset, d.Events, d.Size, d.Lumis) for d in bundle.datasets] == [
        ("/A/B/AODSIM", 100, 2048, 3)]
    prefix = f"tasks.{task}"
    assert sorted(where(result)) == sorted(("ar1", f"{prefix}.{path}") for path in (
        "jobtype",
        "status",
        "subscription_status.open",
        "skipped.skippedLumis",
        "sites.T1_US_FNAL.cmsRunCPUPerformance.totalJobCPU",
        "sites.T1_US_FNAL.cmsRunCPUPerformance.totalEventCPU",
        "sites.T1_US_FNAL.inputEvents",
        "sites.T1_US_FNAL.dataset./A/B/AODSIM.size",
        "sites. ",  # not an object
        "sites. ",  # a blank site name
    ))
    blank = [p.message for p in result.problems if p.path == f"{prefix}.sites. "]
    assert any("a list" in m for m in blank) and any("empty site name" in m for m in blank)
    messages = {p.path: p.message for p in result.problems}
    assert "a list" in messages[f"{prefix}.jobtype"]
    assert "a string" in messages[f"{prefix}.status"]
    assert "'fast'" in messages[f"{prefix}.sites.T1_US_FNAL.cmsRunCPUPerformance.totalEventCPU"]
    assert "1.5" in messages[f"{prefix}.sites.T1_US_FNAL.inputEvents"]
    assert "dropped" in messages[f"{prefix}.skipped.skippedLumis"]


def test_wrong_container_types() -> None:
    result = convert(agent_request(status="running", sites=["T1_US_FNAL"], tasks="none",
                                   timestamp="soon"))
    bundle = single(result)
    assert counters(bundle.workflow) == {}
    assert bundle.sites == () and bundle.tasks == ()
    assert bundle.workflow.AgentUpdate == 0
    assert sorted(where(result)) == [("ar1", "sites"), ("ar1", "status"), ("ar1", "tasks"),
                                     ("ar1", "timestamp")]
    messages = {p.path: p.message for p in result.problems}
    assert "expected an object, got a string" in messages["status"]
    assert "expected an object, got a list" in messages["sites"]
    assert "string 'soon'" in messages["timestamp"]


# --------------------------------------------------------------------------- messy requests


def test_status_history_records_skip_bad_entries() -> None:
    # RequestTransition becomes one RequestTransition record per good entry,
    # numbered 0, 1... in order; a bad entry is reported and not numbered.
    doc = request("wf_h", RequestStatus="assigned", RequestTransition=[
        {"Status": "new", "UpdateTime": 10, "DN": "/CN=a"},
        5,
        {"Status": "assigned", "UpdateTime": "20", "DN": None},
        {"Status": "new", "UpdateTime": 30},
    ])
    result = convert(doc)
    bundle = single(result)
    assert [(t.RequestName, t.Index, t.Status, t.UpdateTime, t.DN)
            for t in bundle.transitions] == [
        ("wf_h", 0, "new", 10, "/CN=a"), ("wf_h", 1, "assigned", 20, ""),
        ("wf_h", 2, "new", 30, "")]
    # The time of the last entry into the current status, not of the last entry.
    assert bundle.workflow.StatusTime == 20
    assert where(result) == [("wf_h", "RequestTransition[1]"),
                             ("wf_h", "RequestTransition[2].UpdateTime")]


def test_request_numeric_strings_nulls_and_wrong_types() -> None:
    doc = request(
        RequestPriority="90000", TotalEstimatedJobs=None, TotalInputEvents=12.0,
        RequestType=["ReReco"], Campaign={"name": "Run3"}, Group=5,
        SiteWhitelist="T1_US_FNAL", SiteBlacklist=None, RequestTransition={"Status": "new"},
        ParentageResolved="false", RequestDate="yesterday", Teams=None, Team="t1, t2",
    )
    result = convert(doc)
    bundle = single(result)
    wf = bundle.workflow
    assert wf.RequestPriority == 90000
    assert wf.TotalEstimatedJobs == 0 and wf.TotalInputEvents == 12
    assert wf.RequestType == "" and wf.Campaign == "" and wf.Group == "5"
    assert wf.SiteWhitelist == ("T1_US_FNAL",) and wf.SiteBlacklist == ()
    assert bundle.transitions == () and wf.StatusTime == 0
    assert wf.ParentageResolved is False
    assert wf.RequestDate == 0
    assert wf.Teams == ("t1", "t2")
    assert sorted(where(result)) == sorted(("wf", p) for p in (
        "RequestPriority", "RequestType", "Campaign", "Group", "RequestTransition",
        "ParentageResolved", "RequestDate"))
    messages = {p.path: p.message for p in result.problems}
    assert "string '90000'" in messages["RequestPriority"]
    assert "a list" in messages["RequestType"]
    assert "an object" in messages["Campaign"]
    assert "number 5" in messages["Group"]
    assert "got an object" in messages["RequestTransition"]
    assert "'false'" in messages["ParentageResolved"]
    assert "'yesterday'" in messages["RequestDate"]


def test_request_dates() -> None:
    result = convert(request("short", RequestDate=[2018, 12]),
                     request("month13", RequestDate=[2018, 13, 40]),
                     request("strings", RequestDate=[2018, "12", "3", 11, 10, 9]),
                     request("epoch", RequestDate=1543835409))
    dates = {b.workflow.RequestName: b.workflow.RequestDate for b in result.bundles}
    assert dates == {"short": 0, "month13": 0, "strings": 1543835409, "epoch": 1543835409}
    assert sorted(where(result)) == [("month13", "RequestDate"), ("short", "RequestDate"),
                                     ("strings", "RequestDate[1]"), ("strings", "RequestDate[2]")]
    assert problem(result, "short", "RequestDate").message.startswith("expected [y, m, d")
    assert "not a valid date" in problem(result, "month13", "RequestDate").message


def test_taskchain_count_mismatch() -> None:
    doc = request(RequestType="TaskChain", TaskChain=3,
                  Task1={"CMSSWVersion": "CMSSW_1", "AcquisitionEra": "EraA"},
                  Task2={"CMSSWVersion": "CMSSW_2", "AcquisitionEra": "EraA"},
                  Task3="broken", CMSSWVersion="CMSSW_1")
    result = convert(doc)
    wf = single(result).workflow
    assert wf.ChainLength == 3
    assert wf.CMSSWVersions == ("CMSSW_1", "CMSSW_2")
    assert wf.AcquisitionEras == ("EraA",)
    assert where(result) == [("wf", "TaskChain")]
    assert "says 3" in result.problems[0].message and "2 are present" in result.problems[0].message


def test_stepchain_as_string() -> None:
    result = convert(request(RequestType="StepChain", StepChain="2",
                             Step1={"ScramArch": ["a1"]}, Step2={"ScramArch": "a2"}))
    wf = single(result).workflow
    assert wf.ChainLength == 2 and wf.ScramArch == ("a1", "a2")
    assert where(result) == [("wf", "StepChain")]


def test_request_without_a_name_is_skipped() -> None:
    result = convert({"RequestStatus": "new", "RequestType": "ReReco"})
    assert result.bundles == ()
    assert where(result) == [("<no id>", "RequestName")]
    assert "without a name" in result.problems[0].message


def test_request_name_falls_back_to_the_id() -> None:
    result = convert({"_id": "wf_from_id", "RequestName": None, "RequestStatus": "new"})
    assert single(result).workflow.RequestName == "wf_from_id"
    assert result.problems == ()


def test_request_without_status_is_reported() -> None:
    result = convert({"_id": "wf", "RequestName": "wf"})
    assert single(result).workflow.RequestStatus == ""
    assert where(result) == [("wf", "RequestStatus")]


def test_chain_parentage_messy() -> None:
    result = convert(request(ChainParentageMap={"Task2": {"ParentDset": "/a/b/C",
                                                          "ChildDsets": "/a/b/D"},
                                                "Task1": "junk", "Task10": None}))
    bundle = single(result)
    assert [(p.ChainKey, p.ParentDataset, p.ChildDatasets) for p in bundle.parentage] == [
        ("Task1", "", ()), ("Task2", "/a/b/C", ("/a/b/D",)), ("Task10", "", ())]
    assert where(result) == [("wf", "ChainParentageMap.Task1")]


# --------------------------------------------------------------------------- documents


def test_agent_request_without_workflow_is_skipped() -> None:
    result = convert(agent_request(workflow=None), agent_request(workflow="", doc_id="ar2"))
    assert result.bundles == ()
    assert where(result) == [("ar1", "workflow"), ("ar2", "workflow")]
    assert all("without a workflow name" in p.message for p in result.problems)


def test_agent_request_without_agent_url() -> None:
    result = convert(agent_request(agent=None))
    bundle = single(result)
    assert bundle.workflow.Agents == ("",)
    assert bundle.workflow.Success == 1
    assert where(result) == [("ar1", "agent_url")]


def test_unknown_document_type() -> None:
    result = convert({"_id": "x1", "type": "mystery", "status": {"success": 1}},
                     {"_id": "x2", "something": 1})
    assert result.bundles == () and result.agents == ()
    assert where(result) == [("x1", "type"), ("x2", "type")]
    assert "unknown document type 'mystery'" in result.problems[0].message
    assert "None" in result.problems[1].message


@pytest.mark.parametrize("doc", [["a", "list"], "text", 42, None, 1.5, True])
def test_non_object_documents(doc: Any) -> None:
    result = convert(doc)
    assert result.bundles == () and result.agents == ()
    (found,) = result.problems
    assert found.doc_id == "<unknown>"
    assert found.path == ""
    assert found.message.startswith("expected a JSON object")


def test_design_deleted_and_ignored_documents() -> None:
    conv = DocumentConverter()
    conv.add({"_id": "_design/WMStats", "views": {}, "language": "javascript"})
    conv.add({"_id": "wf", "_deleted": True, "RequestName": "wf"})
    conv.add(agent_request(_deleted=True))
    for doc_type in sorted(IGNORED_DOC_TYPES):
        conv.add({"_id": f"doc-{doc_type}", "type": doc_type, "workflow": "wf"})
    assert conv.problems == []
    assert list(conv.bundles()) == []
    assert conv.agents() == []
    assert conv.ignored == 3 + len(IGNORED_DOC_TYPES)


def test_duplicate_request_documents() -> None:
    result = convert(request(RequestStatus="assigned"), request(RequestStatus="acquired"))
    assert single(result).workflow.RequestStatus == "acquired"  # the later one
    assert where(result) == [("wf", "")]
    assert "duplicate" in result.problems[0].message


@pytest.mark.parametrize("newer_first", [False, True])
def test_duplicate_agent_request_keeps_the_newer(newer_first: bool) -> None:
    old = agent_request(doc_id="old", timestamp=100, status={"success": 1})
    new = agent_request(doc_id="new", timestamp=200, status={"success": 7})
    result = convert(*([new, old] if newer_first else [old, new]))
    wf = single(result).workflow
    assert (wf.Success, wf.AgentUpdate) == (7, 200)
    assert where(result) == [("wf", "agent_url")]
    assert "agent1.cern.ch:9999" in result.problems[0].message


def test_request_without_agents() -> None:
    bundle = single(convert(request()))
    assert bundle.workflow.HasRequest is True
    assert bundle.workflow.Agents == () and bundle.workflow.AgentUpdate == 0
    assert counters(bundle.workflow) == {}
    assert bundle.sites == bundle.tasks == bundle.task_sites == ()


def test_agents_without_request() -> None:
    bundle = single(convert(agent_request(workflow="orphan")))
    wf = bundle.workflow
    assert wf.HasRequest is False
    assert wf.RequestName == "orphan"
    assert wf == Workflow(RequestName="orphan", HasRequest=False, Success=1,
                          Agents=("agent1.cern.ch:9999",), Sites=("T1_US_FNAL",),
                          AgentUpdate=1700000000)


def test_several_agents_merge_into_one_workflow() -> None:
    task = "/wf/Production"
    a = agent_request(agent="vocms0290.cern.ch", doc_id="a", timestamp=1000,
                      status={"success": 5, "submitted": {"running": 2}},
                      sites={"T1_US_FNAL": {"success": 5}, "T2_CH_CERN": {"submitted": {
                          "running": 2}}},
                      tasks={task: {"status": {"success": 5}, "jobtype": "Production",
                                    "sites": {"T1_US_FNAL": {"success": 5}}}})
    b = agent_request(agent="vocms0192.cern.ch", doc_id="b", timestamp=3000,
                      status={"success": 1, "submitted": {"running": 4}, "paused": {"job": 1}},
                      sites={"T2_CH_CERN": {"success": 1, "submitted": {"running": 4},
                                            "paused": {"job": 1}}},
                      tasks={task: {"status": {"success": 1}, "jobtype": "Production"}})
    c = agent_request(agent="cmsgwms-submit3.fnal.gov", doc_id="c", timestamp=2000,
                      status={"cooloff": {"job": 3}}, sites={"T3_US_Anywhere": {
                          "cooloff": {"job": 3}}})
    result = convert(a, request(RequestStatus="running-closed"), b, c)
    assert result.problems == ()
    bundle = single(result)
    wf = bundle.workflow
    assert wf.HasRequest is True and wf.RequestStatus == "running-closed"
    assert counters(wf) == {"Success": 6, "SubmittedRunning": 6, "PausedJob": 1,
                            "CooloffJob": 3}
    assert wf.Agents == ("cmsgwms-submit3.fnal.gov", "vocms0192.cern.ch", "vocms0290.cern.ch")
    assert wf.AgentUpdate == 3000
    assert wf.Sites == ("T1_US_FNAL", "T2_CH_CERN", "T3_US_Anywhere")
    # One site record per agent and site, sorted by site then agent.
    assert [(s.Site, s.Agent) for s in bundle.sites] == [
        ("T1_US_FNAL", "vocms0290.cern.ch"),
        ("T2_CH_CERN", "vocms0192.cern.ch"),
        ("T2_CH_CERN", "vocms0290.cern.ch"),
        ("T3_US_Anywhere", "cmsgwms-submit3.fnal.gov"),
    ]
    for field in COUNTER_FIELDS:
        assert sum(getattr(s, field) for s in bundle.sites) == getattr(wf, field), field
    assert [(t.Task, t.Agent, t.Success) for t in bundle.tasks] == [
        (task, "vocms0192.cern.ch", 1), (task, "vocms0290.cern.ch", 5)]


def test_agent_job_info_entry_without_workflow_uses_the_request() -> None:
    entry = request(AgentJobInfo={
        "agent1:9999": {"status": {"success": 3}, "timestamp": 10},
        "agent2:9999": "garbage",
    })
    result = convert(entry)
    wf = single(result).workflow
    assert (wf.Success, wf.Agents, wf.AgentUpdate) == (3, ("agent1:9999",), 10)
    assert where(result) == [("wf", "AgentJobInfo.agent2:9999")]
    assert "got a string" in result.problems[0].message


def test_agent_job_info_not_an_object() -> None:
    result = convert(request(AgentJobInfo=["agent1"]))
    assert single(result).workflow.Agents == ()
    assert where(result) == [("wf", "AgentJobInfo")]


def test_problem_text() -> None:
    assert str(Problem("wf", "status.success", "bad")) == "wf: status.success: bad"
    assert str(Problem("wf", "", "bad")) == "wf: bad"


def test_converting_does_not_modify_the_documents(wmcore_doc: Any) -> None:
    docs = [wmcore_doc("requestcache_entry_with_AgentJobInfo.json"),
            wmcore_doc("legacy_reqmgr_request.json"), agent_request(status={"x": "1"})]
    before = copy.deepcopy(docs)
    convert_documents(docs)
    assert docs == before


def test_counter_sources_cover_every_status_key_in_the_anchors(wmcore_docs: Any) -> None:
    """Every status name used in the real documents maps to its own field."""
    seen: set[str] = set()

    def walk(value: Any, prefix: str) -> None:
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(item, dict):
                walk(item, name)
            else:
                seen.add(name)

    entry = wmcore_docs("requestcache_entry_with_AgentJobInfo.json")[0]
    for doc in [*entry["AgentJobInfo"].values(), *wmcore_docs("agent_request.json"),
                *wmcore_docs("legacy_agent_request.json")]:
        walk(doc["status"], "")
        for site in doc["sites"].values():
            walk(site, "")
    assert seen and seen <= set(COUNTER_SOURCES.values())


def test_request_part_is_what_the_request_document_gave() -> None:
    # The warm restart rebuilds a workflow's request half from its stored bundle.
    gen = MockGenerator(seed=7)
    chains = 0
    for i in range(60):
        problems: list[Problem] = []
        part = convert_request(gen.documents(i)[0], problems)
        assert part is not None and not problems
        assert request_part(gen.bundle(i)) == part
        chains += bool(part.chain)
    assert chains > 0
