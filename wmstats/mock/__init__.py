"""Deterministic mock data: WMCore-shaped documents and their static records.

:class:`MockGenerator` invents a production-like population of workflows
(request statuses, types, campaigns, ~100 CMS sites, 1-3 agents per running
workflow, multi-task chains, CMSSW releases) and renders each one two ways:

* as the **dynamic** documents WMCore stores in CouchDB: the ReqMgr2 request,
  one ``agent_request`` per agent, and one ``agent_info`` per agent
  (:meth:`MockGenerator.documents`, :meth:`MockGenerator.iter_documents`);
* as the **static** records of :mod:`wmstats.schema`
  (:meth:`MockGenerator.bundle`, :meth:`MockGenerator.bundles`).

Both renderings come from one neutral description of the workflow (a private
"truth"), built from a random generator seeded by ``(seed, index)`` alone, so
workflow ``i`` can be made without making the others: random access, and
constant memory when streaming a million workflows.  The static rendering is
computed here, independently of :mod:`wmstats.convert`; converting the dynamic
documents gives exactly the static records (the test suite checks it)::

    gen = MockGenerator(seed=7)
    for doc in gen.iter_documents(100_000):   # agent_info docs, then per workflow
        ...
    for bundle in gen.bundles(100_000):       # WorkflowBundle per workflow
        ...

Job records are the exception: :meth:`MockGenerator.job_documents` renders the
``jobsummary`` documents of a workflow's failed jobs (``_jobs``) and
:meth:`MockGenerator.jobs` gives their records by converting them
(:class:`wmstats.jobs.JobTable`), since the records keep whole documents as
samples.  The agents' heartbeats are whole ``agent_info`` documents with every
field a WMAgent writes (``_agents``), their times relative to ``now``: with the
current time the agents look alive, some of them late or in trouble.

The package's parts: ``_catalog`` (the vocabulary: sites, agents, campaigns,
statuses and their weights), ``_truth`` (the neutral description of a workflow),
``_records`` (static rendering), ``_documents`` (dynamic rendering), ``_agents``
(the heartbeats), ``_jobs`` (the jobsummary documents).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from wmstats.jobs import JobOptions, JobTable
from wmstats.mock._agents import agent_document, agent_record
from wmstats.mock._archive import ARCHIVED_FROM, archive, archived
from wmstats.mock._catalog import (
    ACTIVE_STATUSES,
    AGENTS,
    CAMPAIGNS,
    DEFAULT_NOW,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    SITES,
)
from wmstats.mock._documents import render_agent_request, render_request
from wmstats.mock._jobs import render_jobsummaries
from wmstats.mock._records import render_bundle
from wmstats.mock._truth import Population, Truth
from wmstats.schema import Agent, WorkflowBundle, WorkflowJobs

__all__ = [
    "MockGenerator",
    "PRODUCTION_SIZE",
    "SITES",
    "AGENTS",
    "CAMPAIGNS",
    "REQUEST_STATUSES",
    "REQUEST_TYPES",
    "ACTIVE_STATUSES",
    "ARCHIVED_FROM",
    "DEFAULT_NOW",
]

#: (tasks, sites per task, agents) of a production-sized workflow
#: (:meth:`MockGenerator.production_sized`).
PRODUCTION_SIZE: Final = (6, 12, 3)


class MockGenerator:
    """Deterministic generator of mock WMStats data.

    The same ``seed`` and knobs always give the same data; workflow ``i`` depends
    only on ``(seed, i)``, so any slice can be made on its own.

    :param seed: the random seed.
    :param max_tasks: most tasks (task paths) a workflow has in its agents' reports.
    :param max_sites: most sites one task runs at on one agent.
    :param max_agents: most agents one workflow runs on (1 to 3).
    :param now: the reference time (epoch seconds); every date is before it.
    :param archived: the share of workflows (0 to 1) made archived requests
        (``normal-archived``, ``aborted-archived``, ``rejected-archived``, without
        agent reports: :mod:`wmstats.mock._archive`) on top of the few that are
        anyway; the others are as with 0.
    :param fill: every workflow past ``acquired`` runs on ``max_agents`` agents and
        each of its processing tasks at ``max_sites`` sites (the defaults draw mostly
        one agent and a few sites); see :meth:`production_sized`.
    """

    def __init__(self, seed: int = 0, *, max_tasks: int = 10, max_sites: int = 30,
                 max_agents: int = 3, now: int = DEFAULT_NOW, archived: float = 0.0,
                 fill: bool = False) -> None:
        if not 0.0 <= archived <= 1.0:
            raise ValueError(f"archived must be between 0 and 1, got {archived}")
        self.archived = archived
        self._population = Population(seed, max_tasks=max_tasks, max_sites=max_sites,
                                      max_agents=max_agents, now=now, fill=fill)
        self.seed = seed
        self.max_tasks = max_tasks
        self.max_sites = max_sites
        self.max_agents = max_agents
        self.now = now
        self.fill = fill

    @classmethod
    def production_sized(cls, seed: int = 0, *, now: int = DEFAULT_NOW) -> MockGenerator:
        """Workflows the size of production's larger ones: up to
        :data:`PRODUCTION_SIZE` tasks, sites per task and agents, each running
        workflow filled to them (``fill=True``)."""
        tasks, sites, agents = PRODUCTION_SIZE
        return cls(seed, max_tasks=tasks, max_sites=sites, max_agents=agents, now=now,
                   fill=True)

    def __repr__(self) -> str:
        return (f"MockGenerator(seed={self.seed!r}, max_tasks={self.max_tasks}, "
                f"max_sites={self.max_sites}, max_agents={self.max_agents}, now={self.now}"
                + (f", archived={self.archived}" if self.archived else "")
                + (", fill=True" if self.fill else "") + ")")

    def _truth(self, i: int) -> Truth:
        """Workflow ``i``'s truth, archived if its draw says so."""
        rng = archived(self.seed, i, self.archived)
        if rng is None:
            return self._population.truth(i)
        return archive(self._population.truth(i, reports=False), rng, self.now)

    def workflow_name(self, i: int) -> str:
        """The name of workflow ``i`` (unique per index for a given seed)."""
        return self._truth(i).name

    def bundle(self, i: int) -> WorkflowBundle:
        """The static records of workflow ``i``."""
        return render_bundle(self._truth(i))

    def documents(self, i: int) -> list[dict[str, Any]]:
        """The dynamic documents of workflow ``i``: its request, then its agent_request docs."""
        truth = self._truth(i)
        return [render_request(truth), *(render_agent_request(truth, a) for a in truth.agents)]

    def agents(self) -> list[Agent]:
        """The static agent records, sorted by URL (their derived status as of their
        heartbeats)."""
        return [agent_record(info) for info in self._population.agents]

    def agent_documents(self) -> list[dict[str, Any]]:
        """The ``agent_info`` documents, sorted by agent URL."""
        return [agent_document(info) for info in self._population.agents]

    def job_documents(self, i: int) -> list[dict[str, Any]]:
        """The ``jobsummary`` documents of workflow ``i``'s failed jobs (often none;
        none for an archived request, whose agents are gone)."""
        return render_jobsummaries(self._truth(i), self.seed)

    def jobs(self, i: int, options: JobOptions = JobOptions()) -> WorkflowJobs:
        """The job records of workflow ``i`` (from its :meth:`job_documents`)."""
        truth = self._truth(i)  # once: it is most of the cost
        table = JobTable(options)
        for doc in render_jobsummaries(truth, self.seed):
            table.update(doc["_id"], doc, [])
        return table.jobs(truth.name)

    def iter_jobs(self, n: int, start: int = 0,
                  options: JobOptions = JobOptions()) -> Iterator[WorkflowJobs]:
        """The job records of workflows ``start`` to ``start + n - 1`` that have some."""
        for i in range(start, start + n):
            if archived(self.seed, i, self.archived) is not None:
                continue  # archived by the draw: no agent reports, so no jobs
            jobs = self.jobs(i, options)
            if jobs.groups:
                yield jobs

    def bundles(self, n: int, start: int = 0) -> Iterator[WorkflowBundle]:
        """Static records of workflows ``start`` to ``start + n - 1``, in constant memory."""
        truth = self._truth
        for i in range(start, start + n):
            yield render_bundle(truth(i))

    def iter_documents(self, n: int, start: int = 0, *,
                       jobs: bool = False) -> Iterator[dict[str, Any]]:
        """Every dynamic document: the ``agent_info`` docs, then each workflow's documents.

        :param n: number of workflows.
        :param start: index of the first workflow.
        :param jobs: also each workflow's ``jobsummary`` documents (after its others).
        """
        yield from self.agent_documents()
        for i in range(start, start + n):
            yield from self.documents(i)
            if jobs:
                yield from self.job_documents(i)
