"""Dynamic rendering: the WMCore documents of one mock workflow.

The ReqMgr2 request and one ``agent_request`` per agent, shaped like the documents
WMCore keeps in CouchDB (the agents' ``agent_info`` documents: ``_agents``).
"""

from __future__ import annotations

import time
from typing import Any

from wmstats.mock._catalog import AGENTS, NEST, REQUEST_CONSTANTS
from wmstats.mock._truth import AgentReport, Truth

__all__ = ["render_request", "render_agent_request"]


def _nest(counts: dict[str, int]) -> dict[str, Any]:
    """Counter fields in WMCore's nested shape; zeros left out like real agents do."""
    out: dict[str, Any] = {}
    for field, value in counts.items():
        if not value:
            continue
        outer, inner = NEST[field]
        if inner is None:
            out[outer] = value
        else:
            sub = out.get(outer)
            if sub is None:
                out[outer] = {inner: value}
            else:
                sub[inner] = value
    return out


def render_request(t: Truth) -> dict[str, Any]:
    """The ReqMgr2 request document of one workflow."""
    steps = t.steps
    first = steps[0]
    name = t.name
    doc: dict[str, Any] = dict(REQUEST_CONSTANTS)
    doc.update({
        "_id": name,
        "RequestName": name,
        "RequestString": name.split("_", 1)[1].rsplit("_", 3)[0],
        "RequestStatus": t.status,
        "RequestType": t.request_type,
        "SubRequestType": t.sub_type,
        "Campaign": t.campaign,
        "Group": t.group,
        "Requestor": t.requestor,
        "RequestorDN": t.requestor_dn,
        "DN": t.requestor_dn,
        "PrepID": t.prep_id,
        "CMSSWVersion": t.cmssw,
        "ScramArch": [t.arch],
        "GlobalTag": t.global_tag,
        "RequestPriority": t.priority,
        "InitialPriority": t.initial_priority,
        "PriorityTransition": [{"Priority": t.initial_priority, "DN": t.requestor_dn,
                                "UpdateTime": t.date}],
        "RequestDate": list(time.gmtime(t.date)[:6]),
        "RequestTransition": [{"Status": s, "UpdateTime": u, "DN": d}
                              for s, u, d in t.transitions],
        "OutputDatasets": list(t.output_datasets),
        "OutputModulesLFNBases": list(t.lfn_bases),
        "MergedLFNBase": t.merged_lfn,
        "SiteWhitelist": list(t.whitelist),
        "SiteBlacklist": list(t.blacklist),
        "TotalEstimatedJobs": t.total_jobs,
        "TotalInputEvents": t.input_events,
        "TotalInputLumis": t.input_lumis,
        "TotalInputFiles": t.input_files,
        "PrimaryDataset": t.primary_dataset,
        "ProcessingVersion": t.processing_version,
        "TimePerEvent": t.time_per_event,
        "SizePerEvent": t.size_per_event,
        "Memory": t.memory,
        "Multicore": t.cores,
        "ConfigCacheID": None if t.chain else first.config_id or None,
        "RequestWorkflow": ("https://cmsweb.cern.ch/couchdb/reqmgr_workload_cache/"
                            f"{name}/spec"),
        "CustodialSites": [],
        "NonCustodialSites": [],
        "AutoApproveSubscriptionSites": [],
        "DQMSequences": [],
        "LumiList": {},
        "Override": {"eos-lfn-prefix": "root://eoscms.cern.ch//eos/cms/store/logs/prod/recent/"
                                       "PRODUCTION"},
        "Comments": {"WorkFlowDesc": [f"{t.request_type} for {t.prep_id}"],
                     "CheckList": [], "Label": []},
    })
    if t.team:
        doc["Team"] = t.team
    if t.input_dataset:
        doc["InputDataset"] = t.input_dataset
    if t.mc_pileup:
        doc["MCPileup"] = t.mc_pileup
    if t.data_pileup:
        doc["DataPileup"] = t.data_pileup
    if t.num_events and not t.chain:
        doc["RequestNumEvents"] = t.num_events
    if t.original_request:
        doc["OriginalRequestName"] = t.original_request
        doc["InitialTaskPath"] = f"/{t.original_request}/{first.name}"
        doc["ACDCServer"] = "https://cmsweb.cern.ch/couchdb"
        doc["ACDCDatabase"] = "acdcserver"
    if t.per_task_names:
        doc["AcquisitionEra"] = {s.name: s.acq_era for s in steps}
        doc["ProcessingString"] = {s.name: s.proc_string for s in steps}
    else:
        doc["AcquisitionEra"] = t.acq_era
        doc["ProcessingString"] = t.proc_string
    if t.parentage_resolved is not None:
        doc["ParentageResolved"] = t.parentage_resolved
    if t.chain:
        is_task = t.chain == "TaskChain"
        doc[t.chain] = len(steps)
        parentage: dict[str, Any] = {}
        for s in steps:
            sub: dict[str, Any] = {
                "TaskName" if is_task else "StepName": s.name,
                "Campaign": s.campaign,
                "AcquisitionEra": s.acq_era,
                "ProcessingString": s.proc_string,
                "PrepID": s.prep_id,
                "GlobalTag": s.global_tag,
                "ConfigCacheID": s.config_id,
                "KeepOutput": s.keep_output,
                "Memory": s.memory,
                "Multicore": s.cores,
                "TimePerEvent": s.seconds_per_event,
                "SplittingAlgo": "EventBased" if s.num_events else "EventAwareLumiBased",
                "EventsPerJob": s.events_per_job,
            }
            if s.cmssw:
                sub["CMSSWVersion"] = s.cmssw
            if s.arch:
                sub["ScramArch"] = [s.arch]
            if s.mc_pileup:
                sub["MCPileup"] = s.mc_pileup
            if s.data_pileup:
                sub["DataPileup"] = s.data_pileup
            if s.num_events:
                sub["RequestNumEvents"] = s.num_events
                sub["FilterEfficiency"] = s.filter_eff
                sub["Seeding"] = "AutomaticSeeding"
                sub["PrimaryDataset"] = t.primary_dataset
            if s.input_ref:
                sub["InputTask" if is_task else "InputStep"] = s.input_ref
                sub["InputFromOutputModule"] = s.input_module
            elif t.input_dataset:
                sub["InputDataset"] = t.input_dataset
            doc[s.key] = sub
            parentage[s.key] = {"ParentDset": s.parent, "ChildDsets": list(s.outputs)}
        doc["ChainParentageMap"] = parentage
    return doc


def render_agent_request(t: Truth, agent: AgentReport) -> dict[str, Any]:
    """One agent's ``agent_request`` document for one workflow."""
    team, version = AGENTS[agent.url]
    status: dict[str, int] = dict(agent.top)
    sites: dict[str, dict[str, int]] = {}
    tasks: dict[str, Any] = {}
    for task in agent.tasks:
        task_counts: dict[str, int] = {}
        task_sites: dict[str, Any] = {}
        for s in task.sites:
            counts = s.counters
            for key, value in counts.items():
                task_counts[key] = task_counts.get(key, 0) + value
            if counts:
                into = sites.get(s.site)
                if into is None:
                    sites[s.site] = dict(counts)
                else:
                    for key, value in counts.items():
                        into[key] = into.get(key, 0) + value
            entry = _nest(counts)
            if s.perf is not None:
                cpu, event_cpu, wall, events, wrapped = s.perf
                entry["cmsRunCPUPerformance"] = {"totalJobCPU": cpu, "totalEventCPU": event_cpu,
                                                 "totalJobTime": wall}
                entry["inputEvents"] = events
                entry["wrappedTotalJobTime"] = wrapped
            if s.datasets is not None:
                entry["dataset"] = {ds: {"events": ev, "size": size, "totalLumis": lumis}
                                    for ds, ev, size, lumis in s.datasets}
            task_sites[s.site] = entry
        for key, value in task_counts.items():
            status[key] = status.get(key, 0) + value
        opened, finished, total, updated = task.subscription
        task_doc: dict[str, Any] = {
            "jobtype": task.job_type,
            "subscription_status": {"finished": finished, "open": opened, "total": total,
                                    "updated": updated},
        }
        if task_sites:
            task_doc["sites"] = task_sites
        nested = _nest(task_counts)
        if nested:
            task_doc["status"] = nested
        if task.skipped:
            task_doc["skipped"] = {"skippedFiles": task.skipped}
        tasks[task.path] = task_doc
    return {
        "_id": agent.doc_id,
        "agent": "WMAgent",
        "agent_team": team,
        "agent_url": agent.url,
        "agent_version": version,
        "sites": {site: _nest(counts) for site, counts in sites.items()},
        "status": _nest(status),
        "tasks": tasks,
        "timestamp": agent.timestamp,
        "type": "agent_request",
        "workflow": t.name,
    }
