"""Small, hand-shaped data sets for store tests (no dependency on the mock generator).

:func:`sample_bundles` builds workflows that exercise every query feature:
unicode and SQL-special characters in names, ties in sort keys, empty tuple
fields, booleans, large counters, several agents and sites per workflow.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

from wmstats.jobs import JobOptions, JobTable
from wmstats.schema import (
    COUNTER_FIELDS,
    Agent,
    AgentRequest,
    ChainArgs,
    ChainParentage,
    DatasetStats,
    RequestTransition,
    TaskSite,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
    WorkflowSite,
    WorkflowTask,
)

__all__ = ["STATUSES", "SITES", "AGENTS", "CAMPAIGNS", "SPECIAL_NAMES",
           "sample_bundles", "sample_agents", "simple_bundle", "sample_jobsummaries",
           "sample_jobs"]

STATUSES: Final = ("new", "assigned", "running-open", "running-closed", "completed",
                   "aborted", "störung")
SITES: Final = ("T1_US_FNAL", "T1_DE_KIT", "T2_CH_CERN", "T2_US_MIT", "T3_IT_Bologna",
                "T2_ÜBER_Site")
AGENTS: Final = ("vocms0250.cern.ch", "vocms0251.cern.ch", "cmsgwms-submit1.fnal.gov")
CAMPAIGNS: Final = ("RunIII2024Summer24", "Run3Winter24", "RelVal_2024", "HIN_Ⅱ", "")
RELEASES: Final = ("CMSSW_14_0_7", "CMSSW_14_0_7_patch1", "CMSSW_13_3_0")
TEAMS: Final = ("production", "relval", "hlt")
#: Names with characters that must not be special anywhere (SQL, globs, regexes).
SPECIAL_NAMES: Final = (
    "wf_percent_100%_done",
    "wf_under_score_x",
    "wf_[bracket]_test",
    "wf_back\\slash",
    "wf_O'Brien_quote",
    'wf_"double"_quote',
    "wf_ünïcødé_ÄÖÜ",
    "工作流_测试",
    "wf_🚀_rocket",
    "wf star*and?question",
    "wf.dot+plus(paren)",
)


def _counters(rnd: random.Random, scale: int) -> dict[str, int]:
    return {name: (rnd.randrange(scale) if rnd.random() < 0.5 else 0)
            for name in COUNTER_FIELDS}


def _pick(rnd: random.Random, values: Sequence[str], most: int) -> tuple[str, ...]:
    count = rnd.randrange(most + 1)
    return tuple(dict.fromkeys(rnd.choice(values) for _ in range(count)))


def simple_bundle(name: str, **fields: object) -> WorkflowBundle:
    """A workflow with no other records; ``fields`` override Workflow defaults."""
    return WorkflowBundle(workflow=Workflow(RequestName=name, **fields))  # type: ignore[arg-type]


def sample_bundles(n: int = 64, seed: int = 7, prefix: str = "") -> list[WorkflowBundle]:
    """``n`` workflows (the first ones with the :data:`SPECIAL_NAMES`), in random order.

    :param n: how many workflows.
    :param seed: random seed (the result is deterministic).
    :param prefix: prepended to every name (to tell two data sets apart).
    """
    rnd = random.Random(seed)
    bundles = []
    for i in range(n):
        base = SPECIAL_NAMES[i] if i < len(SPECIAL_NAMES) else \
            f"user_{rnd.choice(('pdmvserv', 'cmsunified', 'amaltaro'))}_wf{i:04d}_{rnd.randrange(10**6)}"
        name = prefix + base
        agents = _pick(rnd, AGENTS, 2)
        sites: list[WorkflowSite] = []
        task_sites: list[TaskSite] = []
        tasks: list[WorkflowTask] = []
        site_names: set[str] = set()
        for agent in agents:
            for site in _pick(rnd, SITES, 3):
                site_names.add(site)
                sites.append(WorkflowSite(RequestName=name, Site=site, Agent=agent,
                                          **_counters(rnd, 500)))
            for t in range(rnd.randrange(3)):
                task = f"/{name}/Task{t + 1}"
                tasks.append(WorkflowTask(RequestName=name, Task=task, Agent=agent,
                                          JobType=rnd.choice(("Processing", "Merge")),
                                          SubscriptionOpen=rnd.randrange(3),
                                          SubscriptionTotal=3, **_counters(rnd, 100)))
                for site in _pick(rnd, SITES, 2):
                    site_names.add(site)
                    task_sites.append(TaskSite(
                        RequestName=name, Task=task, Site=site, Agent=agent,
                        TotalJobCPU=rnd.random() * 1e5, TotalJobTime=rnd.random() * 1e5,
                        InputEvents=rnd.randrange(10**7), **_counters(rnd, 50)))
        outputs = tuple(f"/Prim{i}/Proc-v{k}/AOD" for k in range(rnd.randrange(3)))
        status = rnd.choice(STATUSES)
        created = 1_700_000_000 + rnd.randrange(20) * 86_400
        counters = _counters(rnd, 5000)
        if i == len(SPECIAL_NAMES):
            counters["Success"] = 3 * 2**40  # does not fit 32 bits
        campaigns = _pick(rnd, CAMPAIGNS, 3)
        releases = _pick(rnd, RELEASES, 2)
        workflow = Workflow(
            RequestName=name,
            RequestStatus=status,
            RequestType=rnd.choice(("TaskChain", "StepChain", "ReReco")),
            Campaign=campaigns[0] if campaigns else "",
            Campaigns=campaigns,
            Teams=_pick(rnd, TEAMS, 2),
            Group=rnd.choice(("PPD", "HIG", "")),
            Requestor=rnd.choice(("pdmvserv", "cmsunified", "Jörg")),
            PrepID=f"PREP-{rnd.randrange(40):05d}",
            CMSSWVersion=releases[0] if releases else "",
            CMSSWVersions=releases,
            RequestPriority=rnd.choice((0, 80_000, 110_000, 110_000, 300_000)),
            RequestDate=created,
            StatusTime=created + rnd.randrange(5) * 3600,
            InputDataset=rnd.choice(("", "/Input/Run2024A-v1/RAW")),
            OutputDatasets=outputs,
            SiteWhitelist=_pick(rnd, SITES, 4),
            ParentageResolved=rnd.random() < 0.7,
            ChainLength=rnd.randrange(5),
            TotalEstimatedJobs=rnd.randrange(10**5),
            Agents=tuple(sorted(agents)),
            Sites=tuple(sorted(site_names)),
            AgentUpdate=created + 7200 if agents else 0,
            HasRequest=rnd.random() < 0.9,
            **counters,  # type: ignore[arg-type]
        )
        bundles.append(WorkflowBundle(
            workflow=workflow,
            sites=tuple(sorted(sites, key=lambda r: (r.Site, r.Agent))),
            tasks=tuple(sorted(tasks, key=lambda r: (r.Task, r.Agent))),
            task_sites=tuple(sorted(task_sites, key=lambda r: (r.Task, r.Site, r.Agent))),
            datasets=tuple(DatasetStats(RequestName=name, Dataset=ds, Events=rnd.randrange(10**6),
                                        Size=rnd.randrange(10**12), Lumis=rnd.randrange(10**4))
                           for ds in outputs),
            parentage=tuple(ChainParentage(RequestName=name, ChainKey=f"Step{k + 1}",
                                           ChildDatasets=outputs[k:k + 1],
                                           ParentageResolved=workflow.ParentageResolved)
                            for k in range(len(outputs))),
            transitions=(
                RequestTransition(RequestName=name, Index=0, Status="new", UpdateTime=created,
                                  DN="/CN=robot"),
                RequestTransition(RequestName=name, Index=1, Status=status,
                                  UpdateTime=created + 60, DN="/CN=Ünï")),
            chain=_chain(name, workflow.ChainLength, random.Random(f"{seed}:{i}:chain")),
            agent_requests=tuple(
                AgentRequest(RequestName=name, Agent=agent, AgentTeam=TEAMS[k % len(TEAMS)],
                             AgentVersion="2.3.4", Timestamp=created + 3600 * k,
                             **_counters(random.Random(f"{seed}:{i}:{agent}"), 5000))
                for k, agent in enumerate(sorted(agents))),
        ))
    rnd.shuffle(bundles)
    return bundles


def _chain(name: str, length: int, rnd: random.Random) -> tuple[ChainArgs, ...]:
    """The levels of a chain of ``length`` tasks (none when 0): odd values included."""
    if not length:
        return ()
    levels = [ChainArgs(RequestName=name, ChainKey="", Keys=("Campaign", "TaskChain"),
                        Campaign=rnd.choice(CAMPAIGNS))]
    for k in range(1, length + 1):
        levels.append(ChainArgs(
            RequestName=name, ChainKey=f"Task{k}", Name=f"Täsk_{k}",
            Keys=("TaskName", "Campaign", "ScramArch", "MCPileup", "RequestNumEvents"),
            Campaign=rnd.choice(CAMPAIGNS), ScramArch=_pick(rnd, ("el8_amd64_gcc12", ""), 2),
            MCPileup=("/Neutrino/Ünï-v1/PREMIX",) if rnd.random() < 0.5 else (),
            RequestNumEvents=rnd.choice((0, 2**40, 1000))))
    return tuple(levels)


def sample_agents(prefix: str = "") -> list[Agent]:
    """One agent record per :data:`AGENTS` name."""
    return [Agent(AgentURL=prefix + url, AgentTeam=TEAMS[i % len(TEAMS)],
                  AgentVersion="2.3.4", Status=("ok", "warning", "down")[i % 3],
                  DownComponents=("JobSubmitter",) if i % 3 == 2 else (),
                  DrainMode=i == 1, Timestamp=1_700_000_000 + i)
            for i, url in enumerate(AGENTS)]


#: (exit code, error type, step, details) of the sample jobs' failures.
_FAILURES: Final = (
    (8021, "Fatal Exception", "cmsRun1", "FileReadError: XrdAdaptor::ClientRequest failure"),
    (50660, "PerformanceKill", "PerformanceError", "Job has exceeded maxPSS: 8000 MB"),
    (99109, "StageOutFailure", "stageOut1", "Stage out failed: <img src=x onerror=alert(1)>"),
    (71304, "JobKilled", "JobKilled", "Job killed: wall clock limit ëxceeded " * 40),
    (0, "", "", ""),
)


def sample_jobsummaries(names: Sequence[str], seed: int = 3, per_workflow: int = 60
                        ) -> list[dict[str, object]]:
    """``jobsummary`` documents for the workflows ``names``: several jobs per group
    (so that groups have more jobs than samples), every failure of :data:`_FAILURES`,
    odd characters in tasks and sites."""
    rnd = random.Random(seed)
    docs: list[dict[str, object]] = []
    for w, name in enumerate(names):
        for j in range(rnd.randrange(1, per_workflow + 1)):
            code, kind, step, details = _FAILURES[min(int(rnd.expovariate(1.0)),
                                                       len(_FAILURES) - 1)]
            task = f"/{name}/{rnd.choice(('Task1', 'Tâsk_2'))}"
            errors: dict[str, object] = {"cmsRun1": [], "logArch1": []}
            if code:
                errors[step] = [{"type": kind, "details": details, "exitCode": code}]
            docs.append({
                "_id": f"{w:03d}-{rnd.getrandbits(64):016x}-{j}", "_rev": f"{j + 1}-abc",
                "type": "jobsummary", "workflow": name, "task": task,
                "state": "success" if not code else rnd.choice(("jobfailed", "jobcooloff")),
                "exitcode": code, "site": rnd.choice((SITES[0], SITES[-1])),
                "agent_name": rnd.choice(AGENTS[:2]),
                "acdc_url": "https://cmsweb.cern.ch/couchdb/acdcserver",
                "retrycount": rnd.randrange(4), "jobtype": "Processing",
                "wmbsid": rnd.randrange(10**7), "errors": errors,
                "output": [{"type": "logArchive", "lfn": f"/store/logs/{name}/{j}.tar.gz"}],
                "timestamp": 1_700_000_000 + rnd.randrange(10**6)})
    return docs


def sample_jobs(names: Sequence[str], seed: int = 3, samples: int = 3) -> list[WorkflowJobs]:
    """The job records of :func:`sample_jobsummaries` (at most ``samples`` per group)."""
    table = JobTable(JobOptions(samples=samples))
    problems: list[object] = []
    for doc in sample_jobsummaries(names, seed):
        table.update(str(doc["_id"]), doc, problems)  # type: ignore[arg-type]
    assert not problems, problems
    return [table.jobs(name) for name in names if table.jobs(name).groups]
