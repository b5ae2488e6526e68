"""Static rendering: the records of :mod:`wmstats.schema` for one mock workflow.

Computed from the truth alone, independently of :mod:`wmstats.convert`: converting
the documents of :mod:`wmstats.mock._documents` must give exactly these records.
"""

from __future__ import annotations

import operator
from typing import Final

from wmstats.mock._catalog import AGENTS
from wmstats.mock._truth import Truth, dedup
from wmstats.schema import (
    AgentRequest,
    ChainArgs,
    ChainParentage,
    DatasetStats,
    RequestTransition,
    TaskSite,
    Workflow,
    WorkflowBundle,
    WorkflowSite,
    WorkflowTask,
)

__all__ = ["render_bundle"]


def render_bundle(t: Truth) -> WorkflowBundle:
    """The static records of one workflow (mirrors what the converter must produce)."""
    name = t.name
    steps = t.steps
    totals: dict[str, int] = {}
    datasets: dict[str, list[int]] = {}
    site_names: set[str] = set()
    wf_sites: list[WorkflowSite] = []
    wf_tasks: list[WorkflowTask] = []
    task_sites: list[TaskSite] = []
    no_perf = (0.0, 0.0, 0.0, 0, 0.0)
    agent_requests: list[AgentRequest] = []
    for agent in t.agents:
        url = agent.url
        per_site: dict[str, dict[str, int]] = {}
        mine: dict[str, int] = dict(agent.top)
        for task in agent.tasks:
            path = task.path
            task_counts: dict[str, int] = {}
            for s in task.sites:
                site = s.site
                counters = s.counters
                site_names.add(site)
                if counters:
                    into_site = per_site.get(site)
                    if into_site is None:
                        into_site = per_site[site] = {}
                    for key, value in counters.items():
                        task_counts[key] = task_counts.get(key, 0) + value
                        into_site[key] = into_site.get(key, 0) + value
                cpu, event_cpu, wall, events, wrapped = s.perf or no_perf
                task_sites.append(TaskSite(
                    RequestName=name, Task=path, Site=site, Agent=url, TotalJobCPU=cpu,
                    TotalEventCPU=event_cpu, TotalJobTime=wall, InputEvents=events,
                    WrappedTotalJobTime=wrapped, **counters))
                if s.datasets:
                    for ds, written, size, lumis in s.datasets:
                        into = datasets.get(ds)
                        if into is None:
                            datasets[ds] = [written, size, lumis]
                        else:
                            into[0] += written
                            into[1] += size
                            into[2] += lumis
            for key, value in task_counts.items():
                mine[key] = mine.get(key, 0) + value
            opened, finished, total, updated = task.subscription
            wf_tasks.append(WorkflowTask(
                RequestName=name, Task=path, Agent=url, JobType=task.job_type,
                SubscriptionOpen=opened, SubscriptionFinished=finished,
                SubscriptionTotal=total, SubscriptionUpdated=updated,
                SkippedFiles=task.skipped, **task_counts))
        for site, counts in per_site.items():
            wf_sites.append(WorkflowSite(RequestName=name, Site=site, Agent=url, **counts))
        for key, value in mine.items():
            totals[key] = totals.get(key, 0) + value
        team, version = AGENTS[url]
        agent_requests.append(AgentRequest(RequestName=name, Agent=url, AgentTeam=team,
                                           AgentVersion=version, Timestamp=agent.timestamp,
                                           **mine))
    for ds in t.output_datasets:
        datasets.setdefault(ds, [0, 0, 0])

    if t.per_task_names:
        eras = [s.acq_era for s in steps]
        procs = [s.proc_string for s in steps]
    else:
        eras = [t.acq_era]
        procs = [t.proc_string]
    resolved = True if t.parentage_resolved is None else t.parentage_resolved
    workflow = Workflow(
        RequestName=name,
        RequestStatus=t.status,
        RequestType=t.request_type,
        SubRequestType=t.sub_type,
        Campaign=t.campaign,
        Campaigns=dedup([t.campaign, *(s.campaign for s in steps if t.chain)]),
        Teams=(t.team,) if t.team else (),
        Group=t.group,
        Requestor=t.requestor,
        PrepID=t.prep_id,
        CMSSWVersion=t.cmssw,
        CMSSWVersions=dedup([t.cmssw, *(s.cmssw for s in steps if t.chain)]),
        ScramArch=dedup([t.arch, *(s.arch for s in steps if t.chain)]),
        AcquisitionEras=dedup([*eras, *(s.acq_era for s in steps if t.chain)]),
        ProcessingStrings=dedup([*procs, *(s.proc_string for s in steps if t.chain)]),
        RequestPriority=t.priority,
        RequestDate=t.date,
        StatusTime=t.transitions[-1][1],
        InputDataset=t.input_dataset,
        OutputDatasets=t.output_datasets,
        MCPileup=dedup([t.mc_pileup, *(s.mc_pileup for s in steps if t.chain)]),
        DataPileup=dedup([t.data_pileup, *(s.data_pileup for s in steps if t.chain)]),
        SiteWhitelist=t.whitelist,
        SiteBlacklist=t.blacklist,
        OutputModulesLFNBases=t.lfn_bases,
        UnmergedLFNBase="/store/unmerged",
        ParentageResolved=resolved,
        ChainLength=len(steps) if t.chain else 0,
        TotalEstimatedJobs=t.total_jobs,
        TotalInputEvents=t.input_events,
        TotalInputLumis=t.input_lumis,
        TotalInputFiles=t.input_files,
        RequestNumEvents=t.num_events,
        Agents=tuple(sorted(a.url for a in t.agents)),
        Sites=tuple(sorted(site_names)),
        AgentUpdate=max((a.timestamp for a in t.agents), default=0),
        HasRequest=True,
        **totals,
    )
    wf_sites.sort(key=_SITE_ORDER)
    wf_tasks.sort(key=_TASK_ORDER)
    task_sites.sort(key=_TASK_SITE_ORDER)
    parentage = tuple(
        ChainParentage(RequestName=name, ChainKey=s.key, ParentDataset=s.parent or "",
                       ChildDatasets=s.outputs, ParentageResolved=resolved)
        for s in steps) if t.chain else ()
    return WorkflowBundle(
        workflow=workflow,
        sites=tuple(wf_sites),
        tasks=tuple(wf_tasks),
        task_sites=tuple(task_sites),
        datasets=tuple(DatasetStats(RequestName=name, Dataset=ds, Events=v[0], Size=v[1],
                                    Lumis=v[2]) for ds, v in sorted(datasets.items())),
        parentage=parentage,
        transitions=tuple(RequestTransition(RequestName=name, Index=k, Status=s, UpdateTime=u,
                                            DN=d) for k, (s, u, d) in enumerate(t.transitions)),
        chain=_chain_args(t),
        agent_requests=tuple(sorted(agent_requests, key=_AGENT_ORDER)),
    )


def _chain_args(t: Truth) -> tuple[ChainArgs, ...]:
    """A chain's levels as its request document holds them (see ``render_request``)."""
    if not t.chain:
        return ()
    name = t.name
    top_keys = ["Campaign", "CMSSWVersion", "ScramArch"]
    if not t.per_task_names:
        top_keys += ["AcquisitionEra", "ProcessingString"]
    top_keys.append("PrepID")
    if t.input_dataset:
        top_keys.append("InputDataset")
    top_keys.append(t.chain)
    if t.parentage_resolved is not None:
        top_keys.append("ParentageResolved")
    top_keys.append("ChainParentageMap")
    levels = [ChainArgs(
        RequestName=name, ChainKey="", Keys=tuple(top_keys), Campaign=t.campaign,
        CMSSWVersion=t.cmssw, ScramArch=(t.arch,) if t.arch else (),
        AcquisitionEra="" if t.per_task_names else t.acq_era,
        ProcessingString="" if t.per_task_names else t.proc_string, PrepID=t.prep_id,
        InputDataset=t.input_dataset)]
    name_key = "TaskName" if t.chain == "TaskChain" else "StepName"
    for s in t.steps:
        keys = [name_key, "Campaign"]
        if s.cmssw:
            keys.append("CMSSWVersion")
        if s.arch:
            keys.append("ScramArch")
        keys += ["AcquisitionEra", "ProcessingString", "PrepID"]
        read = "" if s.input_ref else t.input_dataset
        if read:
            keys.append("InputDataset")
        if s.mc_pileup:
            keys.append("MCPileup")
        if s.data_pileup:
            keys.append("DataPileup")
        if s.num_events:
            keys.append("RequestNumEvents")
        levels.append(ChainArgs(
            RequestName=name, ChainKey=s.key, Name=s.name, Keys=tuple(keys),
            Campaign=s.campaign, CMSSWVersion=s.cmssw, ScramArch=(s.arch,) if s.arch else (),
            AcquisitionEra=s.acq_era, ProcessingString=s.proc_string, PrepID=s.prep_id,
            InputDataset=read, MCPileup=(s.mc_pileup,) if s.mc_pileup else (),
            DataPileup=(s.data_pileup,) if s.data_pileup else (),
            RequestNumEvents=s.num_events))
    return tuple(levels)


_SITE_ORDER: Final = operator.attrgetter("Site", "Agent")
_TASK_ORDER: Final = operator.attrgetter("Task", "Agent")
_TASK_SITE_ORDER: Final = operator.attrgetter("Task", "Site", "Agent")
_AGENT_ORDER: Final = operator.attrgetter("Agent")
