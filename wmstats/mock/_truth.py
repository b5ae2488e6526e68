"""The truth: everything about one mock workflow, before it is rendered.

:class:`Population` builds, for workflow ``i`` of a seed, one neutral description
(:class:`Truth`) from a random generator seeded by ``(seed, i)`` alone;
:mod:`wmstats.mock._records` and :mod:`wmstats.mock._documents` render it as
static records and as WMCore documents.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from wmstats.mock._catalog import (
    ACTIVE_STATUSES,
    AGENT_COUNT_CHOICE,
    AGENT_STATUS_CHOICE,
    AGENTS,
    ARCHIVED_STATUSES,
    CHAIN_LENGTH_CHOICE,
    COMPONENTS,
    DATA_CAMPAIGNS,
    DATA_PDS,
    DATA_PILEUP,
    DISKS,
    DN_BY_STATUS,
    DN_UNIFIED,
    DN_USER,
    EVENT_SIZE,
    GROUP_CHOICE,
    HLT_SITES,
    MC_CHAIN_CHOICE,
    MC_GENERATORS,
    MC_PROCESSES,
    MODULES,
    NAME_MULT,
    NAME_SPACE,
    PAGS,
    PRIORITY_CHOICE,
    RELVAL_LABELS,
    RELVAL_RELEASES,
    RELVAL_SAMPLES,
    RELVAL_STEPS,
    SITE_INDEX,
    SITE_INV_WEIGHT,
    SITE_LISTS,
    SITES,
    STATUS_CHOICE,
    STATUS_PATH,
    TEAM_AGENTS,
    TEAM_CHOICE,
    TYPE_CHOICE,
)

__all__ = [
    "Step", "SiteReport", "TaskReport", "AgentReport", "Truth", "AgentInfo", "TaskCost",
    "Population", "dedup"
]

@dataclass(slots=True)
class Step:
    """One TaskN / StepN of a chain, or the single step of any other request."""

    key: str
    name: str
    campaign: str
    cmssw: str  # "" when the step inherits the top-level value
    arch: str  # "" when the step inherits the top-level value
    acq_era: str
    proc_string: str
    prep_id: str
    global_tag: str
    outputs: tuple[str, ...]
    parent: str | None
    mc_pileup: str
    seconds_per_event: float
    events_per_job: int
    filter_eff: float
    num_events: int
    input_ref: str
    input_module: str
    memory: int
    cores: int
    config_id: str
    keep_output: bool
    #: outputs written but not kept (KeepOutput false): only their unmerged LFN bases
    #: are in the request (OutputModulesLFNBases)
    transient: tuple[str, ...] = ()
    data_pileup: str = ""


@dataclass(slots=True)
class SiteReport:
    """One task at one site, from one agent."""

    site: str
    counters: dict[str, int]  # static counter field -> jobs, zeros left out
    perf: tuple[float, float, float, int, float] | None
    datasets: tuple[tuple[str, int, int, int], ...] | None  # (dataset, events, size, lumis)


@dataclass(slots=True)
class TaskReport:
    """One task as reported by one agent."""

    path: str
    job_type: str
    subscription: tuple[int, int, int, int]  # open, finished, total, updated
    skipped: int
    sites: list[SiteReport]


@dataclass(slots=True)
class AgentReport:
    """One agent's view of one workflow (one ``agent_request`` document)."""

    url: str
    doc_id: str
    timestamp: int
    top: dict[str, int]  # counters reported only at the workflow level
    tasks: list[TaskReport]


@dataclass(slots=True)
class Truth:
    """Everything about one workflow, independent of how it is rendered."""

    name: str
    status: str
    request_type: str
    sub_type: str
    campaign: str
    team: str
    group: str
    requestor: str
    requestor_dn: str
    prep_id: str
    cmssw: str
    arch: str
    priority: int
    initial_priority: int
    date: int
    transitions: list[tuple[str, int, str]]
    input_dataset: str
    output_datasets: tuple[str, ...]
    mc_pileup: str
    data_pileup: str
    whitelist: tuple[str, ...]
    blacklist: tuple[str, ...]
    lfn_bases: tuple[str, ...]
    merged_lfn: str
    parentage_resolved: bool | None  # None: the key is absent
    chain: str  # "TaskChain", "StepChain" or ""
    steps: list[Step]
    per_task_names: bool  # top-level AcquisitionEra/ProcessingString as {TaskName: value}
    acq_era: str
    proc_string: str
    processing_version: int
    primary_dataset: str
    global_tag: str
    total_jobs: int
    input_events: int
    input_lumis: int
    input_files: int
    num_events: int
    time_per_event: float
    size_per_event: int
    memory: int
    cores: int
    original_request: str
    agents: list[AgentReport]


def dedup(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _stamp(epoch: int) -> str:
    t = time.gmtime(epoch)
    return (f"{t.tm_year % 100:02d}{t.tm_mon:02d}{t.tm_mday:02d}_"
            f"{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}")


class Population:
    """The truth of every workflow of one generator (:class:`~wmstats.mock.MockGenerator`).

    :param seed: the random seed.
    :param max_tasks: most tasks (task paths) a workflow has in its agents' reports.
    :param max_sites: most sites one task runs at on one agent.
    :param max_agents: most agents one workflow runs on (1 to 3).
    :param now: the reference time (epoch seconds); every date is before it.
    :param fill: production-sized workflows: every workflow past ``acquired`` runs on
        ``max_agents`` agents (as many as its team has) and every processing task at
        ``max_sites`` sites, instead of the usual draws (mostly one agent, a few sites).
    :raises ValueError: for a limit below 1.
    """

    def __init__(self, seed: int, *, max_tasks: int, max_sites: int, max_agents: int,
                 now: int, fill: bool = False) -> None:
        if max_tasks < 1 or max_sites < 1 or max_agents < 1:
            raise ValueError("max_tasks, max_sites and max_agents must be at least 1")
        self.seed = seed
        self.max_tasks = max_tasks
        self.max_sites = max_sites
        self.max_agents = max_agents
        self.now = now
        self.fill = fill
        self._name_offset = random.Random(f"{seed}:names").randrange(NAME_SPACE)
        #: The agents' heartbeats, sorted by URL.
        self.agents = self._make_agents()
        self._site_lists = self._make_site_lists()

    # ----------------------------------------------------------------- sites

    def _make_site_lists(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """Site whitelists requests share, each as (most used first, sorted).

        Like production, requests reuse a limited set of whitelists (all T1s and
        T2s, the US sites, CERN only...).  Making them once per generator keeps
        each workflow cheap.
        """
        rng = random.Random(f"{self.seed}:sites")
        rnd = rng.random
        out: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        for _ in range(SITE_LISTS):
            u = rnd()
            size = (1 + int(rnd() * 4) if u < 0.2 else
                    8 + int(rnd() * 23) if u < 0.65 else 30 + int(rnd() * 41))
            # Weighted sampling without replacement (Efraimidis-Spirakis keys).
            keys = [rnd() ** w for w in SITE_INV_WEIGHT]
            popular = tuple(SITES[j] for j in heapq.nlargest(size, SITE_INDEX,
                                                             key=keys.__getitem__))
            out.append((popular, tuple(sorted(popular))))
        return out

    # ----------------------------------------------------------------- agents

    def _make_agents(self) -> list[AgentInfo]:
        """The agents' heartbeats, sorted by URL."""
        rng = random.Random(f"{self.seed}:agents")
        rnd = rng.random
        out: list[AgentInfo] = []
        for url in sorted(AGENTS):
            team, version = AGENTS[url]
            status = AGENT_STATUS_CHOICE(rnd)
            drain = rnd() < 0.1
            disks: list[tuple[str, str, int]] = []
            if status == "warning" and (not drain or rnd() < 0.5):
                for fs, mount in rng.sample(DISKS, 1 + int(rnd() * 1.5)):
                    disks.append((fs, mount, 85 + int(rnd() * 15)))
            if status == "warning" and not disks:
                drain = True
            down: list[str] = []
            if status in ("error", "down"):
                down = rng.sample(COMPONENTS, 1 + int(rnd() * 2.5))
            age = int(rnd() * 600) + (int(rnd() * 7200) + 3600 if status == "down" else 0)
            stamp = self.now - age
            out.append(AgentInfo(url, team, version, status, down, drain, disks, stamp,
                                  stamp - int(rnd() * 900)))
        return out

    # ----------------------------------------------------------------- the truth

    def truth(self, i: int, *, reports: bool = True) -> Truth:
        """Everything about workflow ``i``, from a generator seeded by (seed, i) alone.

        :param reports: ``False`` leaves the agents' reports out (the last thing
            made, so the rest is the same): for a workflow about to be archived.
        """
        if i < 0:
            raise IndexError(f"workflow index must not be negative, got {i}")
        rng = random.Random(f"{self.seed}:{i}")
        rnd = rng.random
        now = self.now

        # Creation time and name suffix: a bijection of i, so names never repeat.
        code = (NAME_MULT * i + self._name_offset) % NAME_SPACE
        created = now - 3600 - code // 10_000
        suffix = code % 10_000
        stamp = _stamp(created)

        team = TEAM_CHOICE(rnd)
        status = STATUS_CHOICE(rnd)
        rtype = "TaskChain" if team == "relval" else TYPE_CHOICE(rnd)
        group = "RelVal" if team == "relval" else GROUP_CHOICE(rnd)
        pag = PAGS[int(rnd() * len(PAGS))]
        serial = 1 + int(rnd() * 99_999)
        version = 1 + int(rnd() ** 3 * 6)
        size_jitter = 0.8 + 0.4 * rnd()

        steps: list[Step] = []
        sub_type = ""
        chain = ""
        input_dataset = ""
        mc_pileup = ""
        data_pileup = ""
        original = ""
        requestor = "pdmvserv"
        per_task_names = False
        if team == "relval":
            steps, name = self._relval(rng, stamp, suffix, version)
            chain, sub_type, per_task_names = "TaskChain", "RelVal", True
            primary = steps[0].outputs[0].split("/")[1]
        elif rtype in ("ReReco", "DQMHarvest"):
            (camp, eras, release, arch, gt, proc, in_tier,
             tiers) = DATA_CAMPAIGNS[int(rnd() * len(DATA_CAMPAIGNS))]
            era = eras[int(rnd() * len(eras))]
            primary = DATA_PDS[int(rnd() * len(DATA_PDS))]
            if rtype == "DQMHarvest":
                input_dataset = f"/{primary}/{era}-{proc}-v{version}/DQMIO"
                tiers = ()
                name = f"pdmvserv_{era}_{primary}_{proc}_DQMHarvest_{stamp}_{suffix:04d}"
            else:
                input_dataset = f"/{primary}/{era}-v1/{in_tier}"
                name = f"pdmvserv_{era}_{primary}_{proc}_{stamp}_{suffix:04d}"
            outputs = tuple(f"/{primary}/{era}-{proc}-v{version}/{t}" for t in tiers)
            steps.append(Step(
                key="", name="DataProcessing" if rtype == "ReReco" else "EndOfRunDQMHarvest",
                campaign=camp, cmssw=release, arch=arch, acq_era=era, proc_string=proc,
                prep_id=f"ReReco-{camp}-{serial:05d}", global_tag=gt, outputs=outputs,
                parent=None, mc_pileup="", seconds_per_event=6.0 if rtype == "ReReco" else 0.05,
                events_per_job=2000 + int(rnd() * 30000), filter_eff=1.0, num_events=0,
                input_ref="", input_module="", memory=4000, cores=4, config_id="",
                keep_output=True))
        else:
            spec_chain = MC_CHAIN_CHOICE(rnd)
            primary = (f"{MC_PROCESSES[int(rnd() * len(MC_PROCESSES))]}_TuneCP5_"
                       f"{'13TeV' if spec_chain[0].campaign.startswith('RunII') else '13p6TeV'}"
                       f"-{MC_GENERATORS[int(rnd() * len(MC_GENERATORS))]}")
            if rtype in ("TaskChain", "StepChain"):
                length = min(CHAIN_LENGTH_CHOICE(rnd), len(spec_chain))
                first = 0 if rnd() < 0.7 else int(rnd() * (len(spec_chain) - length + 1))
                specs = spec_chain[first:first + length]
                chain = rtype
                per_task_names = rtype == "TaskChain"
            elif rtype == "MonteCarlo":
                specs = spec_chain[:1]
                first = 0
            elif rtype == "MonteCarloFromGEN":
                specs = spec_chain[1:2]
                first = 1
            elif rtype == "ReDigi":
                digi = next(k for k, s in enumerate(spec_chain) if s.pileup)
                specs = spec_chain[digi:digi + 1]
                first = digi
            else:  # Resubmission (ACDC): one task of a chain
                first = int(rnd() * len(spec_chain))
                specs = spec_chain[first:first + 1]
            prep = f"{pag}-{specs[0].campaign}-{serial:05d}"
            if first > 0:
                prev = spec_chain[first - 1]
                input_dataset = (f"/{primary}/{prev.campaign}-{prev.global_tag}-v{version}/"
                                 f"{prev.tiers[-1]}")
            if rtype in ("TaskChain", "StepChain"):
                name = f"pdmvserv_task_{prep}__v1_T_{stamp}_{suffix:04d}"
            elif rtype == "Resubmission":
                requestor = "cmsunified"
                original = (f"pdmvserv_task_{prep}__v1_T_{_stamp(created - 86400 * 9)}_"
                            f"{serial % 10_000:04d}")
                name = f"cmsunified_ACDC0_task_{prep}__v1_T_{stamp}_{suffix:04d}"
            else:
                name = f"pdmvserv_{prep}_{serial % 1000:05d}_v0__{stamp}_{suffix:04d}"
            parent: str | None = None
            for k, spec in enumerate(specs):
                outputs = tuple(f"/{primary}/{spec.campaign}-{spec.global_tag}-v{version}/{t}"
                                for t in spec.tiers)
                keep = chain != "StepChain" or k == len(specs) - 1 or rnd() < 0.6
                step_key = (f"Task{k + 1}" if chain == "TaskChain" else
                            f"Step{k + 1}" if chain == "StepChain" else "")
                step_prep = f"{pag}-{spec.campaign}-{(serial + 7 * k) % 100_000:05d}"
                if chain:
                    step_name = f"{step_prep}_0"
                elif rtype in ("MonteCarlo", "MonteCarloFromGEN"):
                    step_name = "Production" if rtype == "MonteCarlo" else "MonteCarloFromGEN"
                elif rtype == "ReDigi":
                    step_name = "StepOneProc"
                else:
                    step_name = f"{step_prep}_0"
                steps.append(Step(
                    key=step_key, name=step_name, campaign=spec.campaign,
                    cmssw=spec.release if (not chain or k == 0 or rnd() < 0.8) else "",
                    arch=spec.arch if (not chain or k == 0 or rnd() < 0.8) else "",
                    acq_era=spec.campaign, proc_string=spec.global_tag,
                    prep_id=step_prep, global_tag=spec.global_tag,
                    outputs=outputs if keep else (), transient=() if keep else outputs,
                    parent=parent,
                    mc_pileup=spec.pileup, seconds_per_event=spec.seconds_per_event,
                    events_per_job=int((200 + rnd() * 1800) / max(spec.seconds_per_event, 1.0)
                                       * 20) + 10,
                    filter_eff=round(0.05 + rnd() * 0.95, 3) if spec.from_scratch else 1.0,
                    num_events=(100_000 * (1 + int(rnd() * 50))
                                if spec.from_scratch and k == 0 else 0),
                    input_ref=steps[k - 1].name if k else "",
                    input_module=MODULES[specs[k - 1].tiers[-1]] if k else "",
                    memory=2000 + 500 * int(rnd() * 13), cores=(1, 2, 4, 8)[int(rnd() * 4)],
                    config_id=f"{rng.getrandbits(128):032x}", keep_output=keep))
                if keep:
                    parent = outputs[-1]
            # Independent draws (their own generator): the rest of the workflow stays
            # as it was before data pileup was added to the mock.
            extra = random.Random(f"{self.seed}:{i}:pileup").random
            for step in steps:
                if step.mc_pileup and extra() < 0.25:
                    step.data_pileup = DATA_PILEUP[int(extra() * len(DATA_PILEUP))]
            if not chain:
                mc_pileup = steps[0].mc_pileup
                steps[0].mc_pileup = ""
                data_pileup = steps[0].data_pileup
                steps[0].data_pileup = ""

        first_step = steps[0]
        output_datasets = tuple(ds for s in steps for ds in s.outputs)
        priority = PRIORITY_CHOICE(rnd)
        if team == "relval":
            priority = 500_000 if rnd() < 0.3 else 450_000
        initial_priority = priority if rnd() < 0.8 else PRIORITY_CHOICE(rnd)
        requestor_dn = (DN_UNIFIED if requestor == "cmsunified" else
                        DN_USER.format(n=700_000 + serial % 100_000))
        transitions = self._transitions(rng, status, created, requestor_dn)

        # Where the request may run.
        whitelist: tuple[str, ...] = ()
        blacklist: tuple[str, ...] = ()
        popular: tuple[str, ...] = ()
        if status not in ("new", "assignment-approved", "rejected"):
            if team == "hlt":
                popular, whitelist = HLT_SITES, tuple(sorted(HLT_SITES))
            else:
                popular, whitelist = self._site_lists[int(rnd() * len(self._site_lists))]
            if rnd() < 0.15:
                chosen = set(popular)
                blacklist = tuple(sorted({s for s in rng.sample(SITES, 1 + int(rnd() * 3))
                                          if s not in chosen}))

        total_jobs = 0
        input_events = 0
        for s in steps:
            events = s.num_events or (100_000 + int(rnd() * 20_000_000))
            total_jobs += max(1, int(events / s.events_per_job))
            input_events = input_events or events
        input_files = int(input_events / 30_000) + 1 if input_dataset else 0
        lumis = int(input_events / 1000) + 1

        truth = Truth(
            name=name, status=status, request_type=rtype, sub_type=sub_type,
            campaign=first_step.campaign, team=team if whitelist else "", group=group,
            requestor=requestor,
            requestor_dn=requestor_dn,
            prep_id=first_step.prep_id,
            cmssw=first_step.cmssw, arch=first_step.arch, priority=priority,
            initial_priority=initial_priority, date=created, transitions=transitions,
            input_dataset=input_dataset, output_datasets=output_datasets,
            mc_pileup=mc_pileup, data_pileup=data_pileup, whitelist=whitelist,
            blacklist=blacklist,
            lfn_bases=tuple(_lfn_base(ds) for s in steps for ds in (*s.outputs, *s.transient)),
            merged_lfn="/store/relval" if team == "relval" else
            "/store/data" if rtype in ("ReReco", "DQMHarvest") else "/store/mc",
            parentage_resolved=(status in ("closed-out", "announced") or rnd() < 0.2)
            if chain == "StepChain" else None,
            chain=chain, steps=steps, per_task_names=per_task_names,
            acq_era=first_step.acq_era, proc_string=first_step.proc_string,
            processing_version=version, primary_dataset=primary,
            global_tag=first_step.global_tag, total_jobs=total_jobs,
            input_events=input_events, input_lumis=lumis if input_dataset else 0,
            input_files=input_files, num_events=first_step.num_events,
            time_per_event=first_step.seconds_per_event,
            size_per_event=int(EVENT_SIZE.get(
                first_step.outputs[0].rsplit("/", 1)[1] if first_step.outputs else "DQMIO",
                1000) * size_jitter),
            memory=first_step.memory, cores=first_step.cores, original_request=original,
            agents=[],
        )
        archived = ARCHIVED_STATUSES.get(status)
        # Its own generator, drawn last: workflows that stay where they are come out
        # as they did before archived requests were added to the mock.
        later = random.Random(f"{self.seed}:{i}:archived").random
        if archived is not None and later() < archived[1]:
            # Archived requests keep no agent reports (WMCore deletes them first).
            when = min(self.now - 1, transitions[-1][1] + 3600 + int(later() * 30 * 86400))
            truth.status = archived[0]
            transitions.append((archived[0], when, DN_BY_STATUS[archived[0]] or requestor_dn))
        elif reports and status in ACTIVE_STATUSES and popular:
            self._agent_reports(rng, truth, popular)
        return truth

    def _relval(self, rng: random.Random, stamp: str, suffix: int,
                version: int) -> tuple[list[Step], str]:
        """The steps and name of a release validation TaskChain."""
        rnd = rng.random
        release, arch, gt = RELVAL_RELEASES[int(rnd() * len(RELVAL_RELEASES))]
        label = RELVAL_LABELS[int(rnd() * len(RELVAL_LABELS))]
        sample = RELVAL_SAMPLES[int(rnd() * len(RELVAL_SAMPLES))]
        campaign = f"{release}__{label}"
        length = 2 + int(rnd() * (len(RELVAL_STEPS) - 1))
        steps: list[Step] = []
        parent: str | None = None
        era = release
        proc = f"{gt}_{label.split('_')[1]}"
        for k, (step_name, tiers, cost, scratch) in enumerate(RELVAL_STEPS[:length]):
            outputs = tuple(f"/RelVal{sample}/{era}-{proc}-v{version}/{t}" for t in tiers)
            steps.append(Step(
                key=f"Task{k + 1}", name=f"{step_name}_{label.split('_')[2]}",
                campaign=campaign, cmssw=release, arch=arch, acq_era=era,
                proc_string=proc, prep_id=f"{release}__{label}-{sample}-{version:05d}",
                global_tag=gt, outputs=outputs, parent=parent, mc_pileup="",
                seconds_per_event=cost, events_per_job=int(900 / max(cost, 1.0)) + 10,
                filter_eff=1.0, num_events=9000 if scratch else 0,
                input_ref=steps[k - 1].name if k else "",
                input_module=MODULES[RELVAL_STEPS[k - 1][1][-1]] if k else "",
                memory=3000 + 1000 * int(rnd() * 4), cores=(1, 4, 8)[int(rnd() * 3)],
                config_id=f"{rng.getrandbits(128):032x}", keep_output=True))
            parent = outputs[0]
        name = f"pdmvserv_RVCMSSW_{release[6:]}{sample}__{label}_{stamp}_{suffix:04d}"
        return steps, name

    def _transitions(self, rng: random.Random, status: str, created: int,
                     user_dn: str) -> list[tuple[str, int, str]]:
        """The status history ending in ``status``: (status, time, DN), oldest first."""
        rnd = rng.random
        if status in STATUS_PATH:
            path = list(STATUS_PATH[:STATUS_PATH.index(status) + 1])
        elif status == "force-complete":
            path = [*STATUS_PATH[:STATUS_PATH.index("running-closed") + 1], "force-complete"]
        elif status in ("aborted", "aborted-completed"):
            stop = 2 + int(rnd() * 6)
            path = [*STATUS_PATH[:stop + 1], "aborted"]
            if status == "aborted-completed":
                path.append("aborted-completed")
        elif status == "failed":
            path = [*STATUS_PATH[:STATUS_PATH.index("staged") + 1], "failed"]
        else:  # rejected
            path = ["new", "assignment-approved", "rejected"][: 2 + int(rnd() < 0.5)]
            path[-1] = "rejected"
        span = (self.now - 60 - created) * (0.3 + 0.7 * rnd())
        gaps = [rnd() for _ in path]
        scale = span / sum(gaps)
        out: list[tuple[str, int, str]] = []
        t = float(created)
        for k, st in enumerate(path):
            if k:
                t += gaps[k] * scale
            out.append((st, int(t), DN_BY_STATUS[st] or user_dn))
        return out

    def _agent_count(self, rnd: Callable[[], float], status: str) -> int:
        """How many agents run a workflow (before the team's pool and ``max_agents``
        cap it); all of them with ``fill``, once past ``acquired``."""
        if status == "acquired":
            return 1 if rnd() < 0.8 else 2
        drawn = AGENT_COUNT_CHOICE(rnd)
        return self.max_agents if self.fill else drawn

    def _site_count(self, rnd: Callable[[], float]) -> int:
        """How many sites one processing task runs at on one agent (before
        ``max_sites`` caps it); ``max_sites`` with ``fill``."""
        # Exponential tails: most tasks at a few sites, some at dozens.
        drawn = (1 + int(-1.5 * _log(1.0 - rnd())) if rnd() < 0.9 else
                 3 + int(-7.0 * _log(1.0 - rnd())))
        return self.max_sites if self.fill else drawn

    def _agent_reports(self, rng: random.Random, truth: Truth,
                       popular: tuple[str, ...]) -> None:
        """Add what each agent running the workflow reports, per task and site.

        :param popular: the sites the workflow may run at, most used first.
        """
        rnd = rng.random
        status = truth.status
        pool = TEAM_AGENTS[truth.team]
        count = min(self._agent_count(rnd, status), len(pool), self.max_agents)
        urls = rng.sample(pool, count)
        if status == "acquired":
            progress, phase = 0.0, _QUEUED
        elif status in ("running-open", "running-closed", "force-complete"):
            low, high = {"running-open": (0.02, 0.6), "running-closed": (0.3, 0.97),
                         "force-complete": (0.75, 0.99)}[status]
            progress, phase = low + (high - low) * rnd(), _RUNNING
        elif status in ("aborted", "aborted-completed"):
            progress, phase = rnd() * 0.8, _ABORTED
        else:
            progress, phase = 1.0, _DONE
        steps = truth.steps
        wf = truth.name
        # The task tree: (path, job type, step indices run by it, cost and outputs).
        tasks: list[tuple[str, str, tuple[int, ...], TaskCost]] = []
        rtype = truth.request_type
        first_type = ("Harvesting" if rtype == "DQMHarvest" else
                      "Production" if steps[0].num_events else "Processing")
        no_cost: TaskCost = (0, 0.0, ())
        merge_cost: TaskCost = (steps[0].events_per_job * 20, 0.02, ())
        if truth.chain == "StepChain":
            head = f"/{wf}/{steps[0].name}"
            tasks.append((head, first_type, tuple(range(len(steps))),
                          _task_cost(steps, range(len(steps)))))
            kept = [(step.name, ds) for step in steps for ds in step.outputs]
            for step_name, ds in kept[-2:]:
                module = MODULES[ds.rsplit("/", 1)[1]]
                tasks.append((f"{head}/{step_name}Merge{module}", "Merge", (), merge_cost))
        else:
            parent_path = f"/{wf}"
            for k, step in enumerate(steps):
                path = f"{parent_path}/{step.name}"
                tasks.append((path, first_type if k == 0 else "Processing", (k,),
                              _task_cost(steps, (k,))))
                merges = [f"{path}/{step.name}Merge{MODULES[ds.rsplit('/', 1)[1]]}"
                          for ds in step.outputs[-1:]]
                for merge in merges:
                    tasks.append((merge, "Merge", (), merge_cost))
                if merges:
                    parent_path = merges[-1]  # the next task reads the last output
        head = tasks[0][0]
        tasks.append((f"{head}/LogCollect", "LogCollect", (), no_cost))
        if steps[0].outputs and rnd() < 0.2:
            module = MODULES[steps[0].outputs[0].rsplit("/", 1)[1]]
            tasks.append((f"{head}/{steps[0].name}CleanupUnmerged{module}", "Cleanup", (),
                          no_cost))
        del tasks[self.max_tasks:]

        reach = max(1.0, progress * len(steps) * 1.3) if phase != _DONE else len(steps) + 1.0
        max_sites = min(self.max_sites, len(popular))
        merge_sites, small_sites = popular[:8], popular[:5]
        queued = phase == _QUEUED
        for url in urls:
            stamp = self.now - int(rnd() * (900 if phase != _DONE else 86400 * 3))
            reports: list[TaskReport] = []
            in_wmbs = 0
            for path, job_type, runs, cost in tasks:
                sites: list[SiteReport] = []
                if runs:  # a processing task
                    if (not queued or rnd() < 0.35) and runs[0] < reach:
                        count = self._site_count(rnd)
                        scale = 12.0 if job_type != "Harvesting" else 0.3
                        for site in _pick_sites(rnd, popular, min(count, max_sites)):
                            sites.append(_site_report(rnd, site, phase, progress, scale,
                                                      cost, job_type))
                elif job_type == "Merge":
                    if not queued and progress > 0.05 and rnd() < 0.7:
                        count = min(1 + int(rnd() * 1.6), max_sites)
                        for site in _pick_sites(rnd, merge_sites, count):
                            sites.append(_site_report(rnd, site, phase, progress, 2.0, cost,
                                                      job_type))
                elif not queued and progress > 0.25:  # LogCollect / Cleanup
                    site = small_sites[int(len(small_sites) * rnd() ** 1.6)]
                    sites.append(_site_report(rnd, site, phase, min(1.0, progress + 0.3), 0.1,
                                              cost, job_type))
                    if job_type == "LogCollect" and max_sites > 1 and rnd() < 0.1:
                        # Real agents report performance at a site with no job counters.
                        other = "T2_CH_CERN" if site != "T2_CH_CERN" else "T1_US_FNAL"
                        wrapped = float(10 + int(rnd() * 50))
                        sites.append(SiteReport(other, {}, (0.0, 0.0, 0.0, 0, wrapped), ()))
                for report in sites:
                    in_wmbs += sum(report.counters.values())
                finished = 1 if (phase == _DONE or (sites and rnd() < progress * 0.3)) else 0
                skipped = (int(rnd() * 40) + 1 if sites and job_type == "Processing"
                           and rnd() < 0.05 else 0)
                reports.append(TaskReport(path, job_type,
                                           (1 - finished, finished, 1, stamp - int(rnd() * 3600)),
                                           skipped, sites))
            top: dict[str, int] = {}
            if in_wmbs:
                top["InWMBS"] = in_wmbs
            if phase in (_QUEUED, _RUNNING) and (status != "running-closed" or rnd() < 0.2):
                top["InQueue"] = 1 + int(rnd() * 40)
            truth.agents.append(AgentReport(url, f"{rng.getrandbits(128):032x}", stamp, top,
                                             reports))



@dataclass(slots=True)
class AgentInfo:
    url: str
    team: str
    version: str
    status: str
    down: list[str]
    drain: bool
    disks: list[tuple[str, str, int]]  # filesystem, mount point, percent used
    timestamp: int
    data_last_update: int


_log: Final = math.log
_QUEUED: Final = 0
_RUNNING: Final = 1
_ABORTED: Final = 2
_DONE: Final = 3


def _lfn_base(dataset: str) -> str:
    _, primary, processed, tier = dataset.split("/")
    era, _, rest = processed.partition("-")
    return f"/store/unmerged/{era}/{primary}/{tier}/{rest}"


#: Cost of one task: events per job (0: no cmsRun), seconds per event, and
#: (dataset, events written per input event, bytes per event) of each output.
TaskCost = tuple[int, float, tuple[tuple[str, float, int], ...]]


def _task_cost(steps: list[Step], runs: Sequence[int]) -> TaskCost:
    """The cost and outputs of a processing task that runs ``steps[k]`` for k in ``runs``."""
    first = steps[runs[0]]
    return (first.events_per_job, sum(steps[k].seconds_per_event for k in runs),
            tuple((ds, steps[k].filter_eff, EVENT_SIZE[ds.rsplit("/", 1)[1]])
                  for k in runs for ds in steps[k].outputs))


def _pick_sites(rnd: Callable[[], float], popular: Sequence[str], count: int) -> list[str]:
    """``count`` distinct sites, favouring the front (most popular) of ``popular``."""
    n = len(popular)
    if count >= n:
        return list(popular)
    chosen: dict[str, None] = {}
    tries = 0
    while len(chosen) < count and tries < 4 * count:
        chosen[popular[int(n * rnd() ** 1.6)]] = None
        tries += 1
    return list(chosen)


def _site_report(rnd: Callable[[], float], site: str, phase: int, progress: float,
                 scale: float, cost: TaskCost, job_type: str) -> SiteReport:
    """Job counters, performance and output of one task at one site."""
    total = 1 + int(scale * -_log(1.0 - rnd()) * (1.0 + 4.0 * rnd() ** 3))
    c: dict[str, int] = {}
    if phase == _QUEUED:
        c["QueuedFirst"] = total
        if rnd() < 0.2:
            c["SubmittedPending"] = c["SubmittedFirst"] = 1 + int(rnd() * 5)
    else:
        done = total if phase == _DONE else int(total * min(1.0, max(
            0.0, progress + (rnd() - 0.5) * 0.4)))
        failed = int(done * rnd() ** 4 * 0.12)
        if done - failed:
            c["Success"] = done - failed
        if failed:
            c["FailureException"] = failed
        rest = total - done
        if phase == _ABORTED:
            if rest:
                c["Canceled"] = rest
        elif rest:
            running = int(rest * rnd())
            pending = int((rest - running) * rnd())
            cooloff = int((rest - running - pending) * rnd() * 0.4)
            queued = rest - running - pending - cooloff
            if running:
                c["SubmittedRunning"] = running
            if pending:
                c["SubmittedPending"] = pending
            retry = int((running + pending) * rnd() * 0.15)
            if retry:
                c["SubmittedRetry"] = retry
            if running + pending - retry:
                c["SubmittedFirst"] = running + pending - retry
            if cooloff:
                c["CooloffJob"] = cooloff
            queued_retry = int(queued * rnd() * 0.25)
            if queued_retry:
                c["QueuedRetry"] = queued_retry
            if queued - queued_retry:
                c["QueuedFirst"] = queued - queued_retry
        # Rare states, each a few jobs.
        u = rnd()
        if u < 0.12:
            rare = ("Transition", "PausedJob", "FailureCreate", "FailureSubmit",
                    "CooloffCreate", "CooloffSubmit", "PausedCreate", "PausedSubmit",
                    "Canceled", "Transition", "PausedJob", "CooloffSubmit")[int(u * 100)]
            if phase == _RUNNING or rare in ("FailureCreate", "FailureSubmit", "Canceled"):
                c[rare] = c.get(rare, 0) + 1 + int(rnd() * 4)
    success = c.get("Success", 0)
    perf: tuple[float, float, float, int, float] | None = None
    datasets: tuple[tuple[str, int, int, int], ...] | None = None
    if success:
        per_job, seconds, outputs = cost
        if not per_job:  # LogCollect, Cleanup: no cmsRun
            perf = (0.0, 0.0, 0.0, 0, float(success * (20 + int(rnd() * 200))))
            datasets = ()
        else:
            events = success * per_job
            wall = events * seconds * (0.8 + 0.4 * rnd())
            cpu = wall * (0.55 + 0.4 * rnd())
            perf = (round(cpu, 2), round(cpu / per_job, 4), round(wall, 2), events,
                    round(wall + success * (60 + 600 * rnd()), 2))
            datasets = tuple([
                (ds, int(events * eff), int(events * eff * size * (0.7 + 0.6 * rnd())),
                 int(events * eff) // 400 + 1) for ds, eff, size in outputs])
    return SiteReport(site, c, perf, datasets)

