"""The static schema: flat, CamelCase, fixed-type records.

This module is the data contract between the cache server, its clients and the
stores.  Every record is a frozen, slotted ``attrs`` class; every field has a
fixed type and a description.  Fields whose value comes from a key path in a
WMCore document carry that path in their metadata (``source``), which the JSON
Schema (:mod:`wmstats.jsonschema`) publishes as ``x-source``.

Models carry no serialization rules: see :mod:`wmstats.serialize`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import attrs

__all__ = [
    "SCHEMA_VERSION",
    "COUNTER_FIELDS",
    "COUNTER_SOURCES",
    "COUNTER_PREFIXES",
    "PERFORMANCE_FIELDS",
    "Counters",
    "Workflow",
    "WorkflowSite",
    "WorkflowTask",
    "TaskSite",
    "DatasetStats",
    "ChainParentage",
    "RequestTransition",
    "ChainArgs",
    "CHAIN_ARG_KEYS",
    "AgentRequest",
    "Agent",
    "JobGroup",
    "JobSample",
    "Alert",
    "AGENT_STATUSES",
    "ALERT_SEVERITIES",
    "RECORD_TYPES",
    "Record",
    "record_key",
    "WorkflowBundle",
    "BUNDLE_PARTS",
    "WorkflowJobs",
    "StatusCount",
    "Summary",
]

#: Bumped whenever a field is added, removed, renamed or changes type.  2.0: the
#: status history moved from ``Workflow.Transitions`` to :class:`RequestTransition`
#: records.  2.1: :class:`ChainArgs` (a chain request's own arguments, top level
#: and per task/step) and :class:`AgentRequest` (each agent's report on a workflow,
#: its top-level job counters) records.  2.2: job records (:class:`JobGroup`,
#: :class:`JobSample`) from ``jobsummary`` documents, :class:`Alert`, and the agent's
#: heartbeat details and derived status in :class:`Agent`.
SCHEMA_VERSION: Final = "2.2"


def _f(
    description: str,
    default: Any = attrs.NOTHING,
    *,
    source: str | None = None,
    factory: Any = None,
) -> Any:
    """Declare a field with its description and, optionally, its source path."""
    metadata: dict[str, str] = {"description": description}
    if source is not None:
        metadata["source"] = source
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


#: Job counter field name -> key path in an ``agent_request`` ``status`` (or
#: ``sites.<site>``, ``tasks.<task>.status``, ``tasks.<task>.sites.<site>``) dict.
COUNTER_SOURCES: Final[dict[str, str]] = {
    "Success": "success",
    "Canceled": "canceled",
    "Transition": "transition",
    "InWMBS": "inWMBS",
    "InQueue": "inQueue",
    "QueuedFirst": "queued.first",
    "QueuedRetry": "queued.retry",
    "SubmittedFirst": "submitted.first",
    "SubmittedRetry": "submitted.retry",
    "SubmittedPending": "submitted.pending",
    "SubmittedRunning": "submitted.running",
    "FailureCreate": "failure.create",
    "FailureSubmit": "failure.submit",
    "FailureException": "failure.exception",
    "CooloffCreate": "cooloff.create",
    "CooloffSubmit": "cooloff.submit",
    "CooloffJob": "cooloff.job",
    "PausedCreate": "paused.create",
    "PausedSubmit": "paused.submit",
    "PausedJob": "paused.job",
}

#: All job counter fields, in schema order; ``OtherJobs`` holds counters under
#: status names this schema does not know, so that no job is ever lost.
COUNTER_FIELDS: Final[tuple[str, ...]] = (*COUNTER_SOURCES, "OtherJobs")

_COUNTER_DESCRIPTIONS: Final[dict[str, str]] = {
    "Success": "Jobs that finished successfully.",
    "Canceled": "Jobs that were canceled.",
    "Transition": "Jobs in a state transition between WMBS and the batch system.",
    "InWMBS": "Jobs created in the agent's WMBS database.",
    "InQueue": "Work units still in the agent's local work queue.",
    "QueuedFirst": "Jobs queued for their first attempt.",
    "QueuedRetry": "Jobs queued for a retry.",
    "SubmittedFirst": "Jobs submitted to the grid, first attempt.",
    "SubmittedRetry": "Jobs submitted to the grid, a retry.",
    "SubmittedPending": "Submitted jobs pending at the site.",
    "SubmittedRunning": "Submitted jobs running at the site.",
    "FailureCreate": "Jobs that failed at creation.",
    "FailureSubmit": "Jobs that failed at submission.",
    "FailureException": "Jobs that failed while running.",
    "CooloffCreate": "Jobs cooling off after a creation failure.",
    "CooloffSubmit": "Jobs cooling off after a submission failure.",
    "CooloffJob": "Jobs cooling off after a runtime failure.",
    "PausedCreate": "Jobs paused after repeated creation failures.",
    "PausedSubmit": "Jobs paused after repeated submission failures.",
    "PausedJob": "Jobs paused after repeated runtime failures.",
    "OtherJobs": (
        "Jobs under status names this schema does not know (each one is also "
        "reported as a conversion problem), kept so that no job is lost."
    ),
}


def _counter(name: str) -> Any:
    # The full source path depends on the record type: see COUNTER_PREFIXES.
    return attrs.field(default=0, metadata={
        "description": _COUNTER_DESCRIPTIONS[name],
        "counter_path": COUNTER_SOURCES.get(name, "<unknown status>"),
    })


@attrs.frozen(kw_only=True)
class Counters:
    """Job counters shared by every record that counts jobs.

    Each field is a plain ``int``; the sum over all of them equals the sum of
    every counter in the source ``status`` dictionary.
    """

    Success: int = _counter("Success")
    Canceled: int = _counter("Canceled")
    Transition: int = _counter("Transition")
    InWMBS: int = _counter("InWMBS")
    InQueue: int = _counter("InQueue")
    QueuedFirst: int = _counter("QueuedFirst")
    QueuedRetry: int = _counter("QueuedRetry")
    SubmittedFirst: int = _counter("SubmittedFirst")
    SubmittedRetry: int = _counter("SubmittedRetry")
    SubmittedPending: int = _counter("SubmittedPending")
    SubmittedRunning: int = _counter("SubmittedRunning")
    FailureCreate: int = _counter("FailureCreate")
    FailureSubmit: int = _counter("FailureSubmit")
    FailureException: int = _counter("FailureException")
    CooloffCreate: int = _counter("CooloffCreate")
    CooloffSubmit: int = _counter("CooloffSubmit")
    CooloffJob: int = _counter("CooloffJob")
    PausedCreate: int = _counter("PausedCreate")
    PausedSubmit: int = _counter("PausedSubmit")
    PausedJob: int = _counter("PausedJob")
    OtherJobs: int = _counter("OtherJobs")


#: Performance fields of a task at a site, and their source paths.
PERFORMANCE_FIELDS: Final[dict[str, str]] = {
    "TotalJobCPU": "cmsRunCPUPerformance.totalJobCPU",
    "TotalEventCPU": "cmsRunCPUPerformance.totalEventCPU",
    "TotalJobTime": "cmsRunCPUPerformance.totalJobTime",
    "InputEvents": "inputEvents",
    "WrappedTotalJobTime": "wrappedTotalJobTime",
}


@attrs.frozen(kw_only=True)
class Workflow(Counters):
    """One ReqMgr2 request, with job counters summed over all its agents."""

    RequestName: str = _f("Unique workflow (request) name; the key.", source="RequestName")
    RequestStatus: str = _f("Current ReqMgr2 status.", "", source="RequestStatus")
    RequestType: str = _f("ReqMgr2 request type (TaskChain, StepChain, ReReco...).", "",
                          source="RequestType")
    SubRequestType: str = _f("Sub type (RelVal, HIRelVal...).", "", source="SubRequestType")
    Campaign: str = _f("Top-level campaign.", "", source="Campaign")
    Campaigns: tuple[str, ...] = _f(
        "Top-level and task/step-level campaigns, de-duplicated in order.",
        factory=tuple, source="Campaign, TaskN.Campaign, StepN.Campaign",
    )
    Teams: tuple[str, ...] = _f("Teams the request is assigned to.", factory=tuple,
                                source="Team, Teams")
    Group: str = _f("Physics group.", "", source="Group")
    Requestor: str = _f("User who made the request.", "", source="Requestor")
    PrepID: str = _f("McM preparation id.", "", source="PrepID")
    CMSSWVersion: str = _f("Top-level CMSSW release.", "", source="CMSSWVersion")
    CMSSWVersions: tuple[str, ...] = _f(
        "Top-level and task/step-level CMSSW releases, de-duplicated in order.",
        factory=tuple, source="CMSSWVersion, TaskN.CMSSWVersion, StepN.CMSSWVersion",
    )
    ScramArch: tuple[str, ...] = _f("SCRAM architectures.", factory=tuple,
                                    source="ScramArch, TaskN.ScramArch, StepN.ScramArch")
    AcquisitionEras: tuple[str, ...] = _f(
        "Acquisition eras (top level, per task or per step).", factory=tuple,
        source="AcquisitionEra, TaskN.AcquisitionEra, StepN.AcquisitionEra",
    )
    ProcessingStrings: tuple[str, ...] = _f(
        "Processing strings (top level, per task or per step).", factory=tuple,
        source="ProcessingString, TaskN.ProcessingString, StepN.ProcessingString",
    )
    RequestPriority: int = _f("Current priority.", 0, source="RequestPriority")
    RequestDate: int = _f("Creation time (epoch seconds, UTC).", 0, source="RequestDate")
    StatusTime: int = _f(
        "When the current status was entered (epoch seconds; 0 if unknown); the "
        "whole history is in the RequestTransition records.", 0,
        source="RequestTransition[-1].UpdateTime",
    )
    InputDataset: str = _f("Input dataset.", "", source="InputDataset")
    OutputDatasets: tuple[str, ...] = _f("Output datasets.", factory=tuple,
                                         source="OutputDatasets")
    MCPileup: tuple[str, ...] = _f("MC pileup datasets.", factory=tuple,
                                   source="MCPileup, TaskN.MCPileup, StepN.MCPileup")
    DataPileup: tuple[str, ...] = _f("Data pileup datasets.", factory=tuple,
                                     source="DataPileup, TaskN.DataPileup, StepN.DataPileup")
    SiteWhitelist: tuple[str, ...] = _f("Sites the request may run at.", factory=tuple,
                                        source="SiteWhitelist")
    SiteBlacklist: tuple[str, ...] = _f("Sites the request must not run at.", factory=tuple,
                                        source="SiteBlacklist")
    OutputModulesLFNBases: tuple[str, ...] = _f("Unmerged LFN bases of the output modules.",
                                                factory=tuple, source="OutputModulesLFNBases")
    UnmergedLFNBase: str = _f("Unmerged LFN base.", "", source="UnmergedLFNBase")
    ParentageResolved: bool = _f(
        "False while a StepChain's parentage is not yet resolved in DBS.", True,
        source="ParentageResolved",
    )
    ChainLength: int = _f("Number of tasks (TaskChain) or steps (StepChain); 0 otherwise.",
                          0, source="TaskChain, StepChain")
    TotalEstimatedJobs: int = _f("Jobs expected.", 0, source="TotalEstimatedJobs")
    TotalInputEvents: int = _f("Input events.", 0, source="TotalInputEvents")
    TotalInputLumis: int = _f("Input lumi sections.", 0, source="TotalInputLumis")
    TotalInputFiles: int = _f("Input files.", 0, source="TotalInputFiles")
    RequestNumEvents: int = _f("Events requested (MC from scratch).", 0,
                               source="RequestNumEvents, Task1.RequestNumEvents")
    Agents: tuple[str, ...] = _f("Agents that report jobs for this workflow.",
                                 factory=tuple, source="agent_request.agent_url")
    Sites: tuple[str, ...] = _f("Sites where this workflow has jobs.", factory=tuple,
                                source="agent_request.sites.<site>")
    AgentUpdate: int = _f("Latest agent report time (epoch seconds; 0 if none).", 0,
                          source="agent_request.timestamp")
    HasRequest: bool = _f(
        "False when agents report jobs but no request document was found.", True,
    )


@attrs.frozen(kw_only=True)
class WorkflowSite(Counters):
    """Job counters of one workflow at one site, as reported by one agent."""

    RequestName: str = _f("Workflow name.", source="agent_request.workflow")
    Site: str = _f("CMS site name.", source="agent_request.sites.<site>")
    Agent: str = _f("Agent URL.", source="agent_request.agent_url")


@attrs.frozen(kw_only=True)
class WorkflowTask(Counters):
    """Job counters and subscription state of one task, as reported by one agent."""

    RequestName: str = _f("Workflow name.", source="agent_request.workflow")
    Task: str = _f("Full task path (/Workflow/Task/SubTask).",
                   source="agent_request.tasks.<task>")
    Agent: str = _f("Agent URL.", source="agent_request.agent_url")
    JobType: str = _f("Job type (Processing, Merge, LogCollect...).", "",
                      source="agent_request.tasks.<task>.jobtype")
    SubscriptionOpen: int = _f("Open subscriptions.", 0,
                               source="agent_request.tasks.<task>.subscription_status.open")
    SubscriptionFinished: int = _f(
        "Finished subscriptions.", 0,
        source="agent_request.tasks.<task>.subscription_status.finished")
    SubscriptionTotal: int = _f("All subscriptions.", 0,
                                source="agent_request.tasks.<task>.subscription_status.total")
    SubscriptionUpdated: int = _f(
        "When the subscription state was read (epoch seconds).", 0,
        source="agent_request.tasks.<task>.subscription_status.updated")
    SkippedFiles: int = _f("Input files skipped.", 0,
                           source="agent_request.tasks.<task>.skipped.skippedFiles")


@attrs.frozen(kw_only=True)
class TaskSite(Counters):
    """Job counters and performance of one task at one site, from one agent."""

    RequestName: str = _f("Workflow name.", source="agent_request.workflow")
    Task: str = _f("Full task path.", source="agent_request.tasks.<task>")
    Site: str = _f("CMS site name.", source="agent_request.tasks.<task>.sites.<site>")
    Agent: str = _f("Agent URL.", source="agent_request.agent_url")
    TotalJobCPU: float = _f(
        "CPU seconds of cmsRun summed over jobs.", 0.0,
        source="agent_request.tasks.<task>.sites.<site>.cmsRunCPUPerformance.totalJobCPU")
    TotalEventCPU: float = _f(
        "CPU seconds per event summed over jobs.", 0.0,
        source="agent_request.tasks.<task>.sites.<site>.cmsRunCPUPerformance.totalEventCPU")
    TotalJobTime: float = _f(
        "Wall seconds of cmsRun summed over jobs.", 0.0,
        source="agent_request.tasks.<task>.sites.<site>.cmsRunCPUPerformance.totalJobTime")
    InputEvents: int = _f("Input events processed.", 0,
                          source="agent_request.tasks.<task>.sites.<site>.inputEvents")
    WrappedTotalJobTime: float = _f(
        "Wall seconds of the whole job wrapper summed over jobs.", 0.0,
        source="agent_request.tasks.<task>.sites.<site>.wrappedTotalJobTime")


@attrs.frozen(kw_only=True)
class DatasetStats:
    """Output of one workflow into one dataset, summed over agents, tasks and sites."""

    RequestName: str = _f("Workflow name.", source="RequestName")
    Dataset: str = _f("Output dataset name.",
                      source="OutputDatasets[], agent_request.tasks.<task>.sites.<site>"
                             ".dataset.<dataset>")
    Events: int = _f("Events written.", 0,
                     source="agent_request.tasks.<task>.sites.<site>.dataset.<dataset>.events")
    Size: int = _f("Bytes written.", 0,
                   source="agent_request.tasks.<task>.sites.<site>.dataset.<dataset>.size")
    Lumis: int = _f(
        "Lumi sections written.", 0,
        source="agent_request.tasks.<task>.sites.<site>.dataset.<dataset>.totalLumis")


@attrs.frozen(kw_only=True)
class ChainParentage:
    """One entry of a TaskChain/StepChain ``ChainParentageMap`` (read by DBS upload)."""

    RequestName: str = _f("Workflow name.", source="RequestName")
    ChainKey: str = _f("Task or step key (Task1, Step2...).", source="ChainParentageMap.<key>")
    ParentDataset: str = _f("Parent dataset; empty for the first task.", "",
                            source="ChainParentageMap.<key>.ParentDset")
    ChildDatasets: tuple[str, ...] = _f("Datasets produced.", factory=tuple,
                                        source="ChainParentageMap.<key>.ChildDsets")
    ParentageResolved: bool = _f("Whether DBS parentage is resolved.", True,
                                 source="ParentageResolved")


@attrs.frozen(kw_only=True)
class RequestTransition:
    """One step of a request's status history: one record per request and step."""

    RequestName: str = _f("Workflow name.", source="RequestName")
    Index: int = _f("Position in the history: 0 for the oldest step, then 1, 2...",
                    source="RequestTransition[]")
    Status: str = _f("Status entered.", "", source="RequestTransition[].Status")
    UpdateTime: int = _f("When it was entered (epoch seconds).", 0,
                         source="RequestTransition[].UpdateTime")
    DN: str = _f("Who made the change.", "", source="RequestTransition[].DN")


#: The request keys a :class:`ChainArgs` record carries a value of, as the request
#: document names them, in schema order (``TaskName``/``StepName`` is its ``Name``).
CHAIN_ARG_KEYS: Final[tuple[str, ...]] = (
    "Campaign", "CMSSWVersion", "ScramArch", "AcquisitionEra", "ProcessingString",
    "PrepID", "InputDataset", "MCPileup", "DataPileup", "RequestNumEvents")


@attrs.frozen(kw_only=True)
class ChainArgs:
    """The arguments of one level of a TaskChain or StepChain request, as the request
    document holds them: its top level (``ChainKey`` empty) or one ``TaskN``/``StepN``
    sub-document.

    WMCore reads a chain request's values level by level (a task without a key
    inherits the top level's value), so these records keep each level's own values
    and which keys it holds; the :class:`Workflow` list fields hold them merged.
    """

    RequestName: str = _f("Workflow name.", source="RequestName")
    ChainKey: str = _f("Task1, Step2...; empty for the request's top level.",
                       source="TaskN, StepN")
    Name: str = _f("The task's or step's name; empty for the top level.", "",
                   source="TaskN.TaskName, StepN.StepName")
    Keys: tuple[str, ...] = _f(
        "The keys this level of the request document holds, of TaskName or StepName, "
        "the keys of the fields below and, at the top level, TaskChain, StepChain, "
        "ParentageResolved and ChainParentageMap, in that order (a field whose key is "
        "not listed was absent; a top-level key holding null, or an AcquisitionEra or "
        "ProcessingString given per task as an object, is not listed).", factory=tuple)
    Campaign: str = _f("Campaign.", "", source="Campaign, TaskN.Campaign, StepN.Campaign")
    CMSSWVersion: str = _f("CMSSW release.", "",
                           source="CMSSWVersion, TaskN.CMSSWVersion, StepN.CMSSWVersion")
    ScramArch: tuple[str, ...] = _f("SCRAM architectures.", factory=tuple,
                                    source="ScramArch, TaskN.ScramArch, StepN.ScramArch")
    AcquisitionEra: str = _f("Acquisition era.", "",
                             source="AcquisitionEra, TaskN.AcquisitionEra, "
                                    "StepN.AcquisitionEra")
    ProcessingString: str = _f("Processing string.", "",
                               source="ProcessingString, TaskN.ProcessingString, "
                                      "StepN.ProcessingString")
    PrepID: str = _f("McM preparation id.", "", source="PrepID, TaskN.PrepID, StepN.PrepID")
    InputDataset: str = _f("Input dataset.", "",
                           source="InputDataset, TaskN.InputDataset, StepN.InputDataset")
    MCPileup: tuple[str, ...] = _f("MC pileup datasets.", factory=tuple,
                                   source="MCPileup, TaskN.MCPileup, StepN.MCPileup")
    DataPileup: tuple[str, ...] = _f("Data pileup datasets.", factory=tuple,
                                     source="DataPileup, TaskN.DataPileup, StepN.DataPileup")
    RequestNumEvents: int = _f("Events requested.", 0,
                               source="RequestNumEvents, TaskN.RequestNumEvents, "
                                      "StepN.RequestNumEvents")


@attrs.frozen(kw_only=True)
class AgentRequest(Counters):
    """One agent's report on one workflow (its ``agent_request`` document): who sent
    it, when, and its top-level job counters (``status``).

    The :class:`Workflow` counters are these summed over the workflow's agents.
    """

    RequestName: str = _f("Workflow name.", source="agent_request.workflow")
    Agent: str = _f("Agent URL.", source="agent_request.agent_url")
    AgentTeam: str = _f("Team of the agent when it reported.", "",
                        source="agent_request.agent_team")
    AgentVersion: str = _f("WMAgent version of the agent when it reported.", "",
                           source="agent_request.agent_version")
    Timestamp: int = _f("Time of the report (epoch seconds).", 0,
                        source="agent_request.timestamp")


#: An agent's derived status, from best to worst (see :mod:`wmstats.alerts`).
AGENT_STATUSES: Final[tuple[str, ...]] = ("ok", "warning", "error", "down")
#: How bad an alert is, from least to most.
ALERT_SEVERITIES: Final[tuple[str, ...]] = ("warning", "error")


@attrs.frozen(kw_only=True)
class Agent:
    """One WMAgent's heartbeat (``agent_info`` document), flattened."""

    AgentURL: str = _f("Agent URL; the key.", source="agent_url")
    AgentTeam: str = _f("Team the agent serves.", "", source="agent_team")
    AgentVersion: str = _f("WMAgent version.", "", source="agent_version")
    Status: str = _f("The status the agent reports: ok, warning, error or down.", "",
                     source="status")
    DownComponents: tuple[str, ...] = _f("Components that are down.", factory=tuple,
                                         source="down_components")
    DrainMode: bool = _f("Whether the agent is draining.", False, source="drain_mode")
    DiskWarning: tuple[str, ...] = _f("Mount points over their disk threshold.",
                                      factory=tuple, source="disk_warning[].mounted")
    Timestamp: int = _f("Time of this heartbeat (epoch seconds).", 0, source="timestamp")
    DataLastUpdate: int = _f("Time of the agent's last data upload (epoch seconds).", 0,
                             source="data_last_update")
    DiskUsage: tuple[str, ...] = _f(
        "Each disk over its threshold as `<mount point> <percent>` (`/data 88%`), in the "
        "order of DiskWarning.", factory=tuple,
        source="disk_warning[].mounted, disk_warning[].percent")
    ComponentErrors: tuple[str, ...] = _f(
        "One line per entry of the agent's down component details: `<component>"
        "[/<worker>] <state>: <error message>` (a bare component name when that is all "
        "the agent gives).", factory=tuple,
        source="down_component_detail[].name, .worker_name, .state, .error_message")
    ProxyWarning: str = _f("The agent's proxy and certificate lifetime warnings, as it "
                           "writes them; empty when none.", "", source="proxy_warning")
    CouchProcessWarning: int = _f(
        "Number of CouchDB processes when over the agent's threshold; 0 otherwise.", 0,
        source="couch_process_warning")
    DataError: str = _f("The last data collection error; empty or `ok` when none.", "",
                        source="data_error")
    DrainWorkflowsCompleted: bool = _f(
        "For a draining agent: whether every one of its workflows is completed.", False,
        source="drain_stats.workflows_completed")
    DerivedStatus: str = _f(
        "ok, warning, error or down, derived by wmstats from the fields above and the "
        "server's alert rules (down: no heartbeat for longer than the rules allow); the "
        "cache server derives it again at every answer, with the current time.", "ok")
    StatusReasons: tuple[str, ...] = _f(
        "Why the derived status is not ok (one reason per rule that matched; "
        "informational reasons such as draining may come with ok).", factory=tuple)


@attrs.frozen(kw_only=True)
class JobGroup:
    """How many jobs of one workflow are in one state with one exit code at one site,
    by one task and agent: one ``jobsummary`` document per job counts once.

    Agents write a ``jobsummary`` document for every job that failed (and for every
    job that succeeded after a retry); :mod:`wmstats.jobs` counts them.
    """

    RequestName: str = _f("Workflow name.", source="jobsummary.workflow")
    Task: str = _f("Full task path.", source="jobsummary.task")
    State: str = _f("Job state (jobfailed, jobcooloff, success...).",
                    source="jobsummary.state")
    ExitCode: int = _f("The job's exit code (0 for success).", 0,
                       source="jobsummary.exitcode")
    Site: str = _f("CMS site the job ran at (empty when unknown).", source="jobsummary.site")
    Agent: str = _f("Agent host that ran the job.", source="jobsummary.agent_name")
    Jobs: int = _f("Number of jobs (jobsummary documents).", 0)


@attrs.frozen(kw_only=True)
class JobSample:
    """One sample job of a (workflow, task, state, exit code, site) group, with what
    an operator reads to see why it failed.

    A group keeps at most a configured number of samples (3 by default; see
    :class:`wmstats.jobs.JobOptions`): the first ones in WMCore's ``jobdetail``
    order (ACDC URL, agent, error types, job name).
    """

    RequestName: str = _f("Workflow name.", source="jobsummary.workflow")
    Task: str = _f("Full task path.", source="jobsummary.task")
    State: str = _f("Job state.", source="jobsummary.state")
    ExitCode: int = _f("The job's exit code (0 for success).", 0,
                       source="jobsummary.exitcode")
    Site: str = _f("CMS site (empty when unknown).", source="jobsummary.site")
    JobName: str = _f("WMBS job name (the document id).", source="jobsummary._id")
    Agent: str = _f("Agent host that ran the job.", "", source="jobsummary.agent_name")
    ACDC: str = _f("ACDC server URL of the job's workflow.", "", source="jobsummary.acdc_url")
    WMBSId: int = _f("WMBS job id in the agent's database.", 0, source="jobsummary.wmbsid")
    JobType: str = _f("Job type (Processing, Merge, LogCollect...).", "",
                      source="jobsummary.jobtype")
    RetryCount: int = _f("Retries before this state.", 0, source="jobsummary.retrycount")
    Step: str = _f("The step whose error gave the exit code (else the first step with "
                   "an error).", "", source="jobsummary.errors.<step>")
    ErrorType: str = _f("Type of that error.", "", source="jobsummary.errors.<step>[].type")
    ErrorExitCode: int = _f("Exit code of that error.", 0,
                            source="jobsummary.errors.<step>[].exitCode")
    Details: str = _f(
        "Details of that error, cut to the configured limit (a cut text ends with "
        "`[... N characters cut]`).", "", source="jobsummary.errors.<step>[].details")
    ErrorTypes: tuple[str, ...] = _f("Types of every error of the job, sorted.",
                                     factory=tuple, source="jobsummary.errors.<step>[].type")
    LogArchive: str = _f("LFN of the job's log archive.", "",
                         source="jobsummary.output[type=logArchive].lfn")
    LogURL: str = _f("URL of the job's log on EOS (empty when not copied).", "",
                     source="jobsummary.eos_log_url")
    LogCollect: tuple[str, ...] = _f("LogCollect tarballs holding the job's log.",
                                     factory=tuple, source="jobsummary.logArchiveLFN")
    WorkerNode: str = _f("Host name of the worker node.", "",
                         source="jobsummary.worker_node_info.HostName")
    InputFiles: tuple[str, ...] = _f("The job's input LFNs (at most 10).", factory=tuple,
                                     source="jobsummary.inputfiles[].lfn")
    Timestamp: int = _f("When the document was last written (epoch seconds).", 0,
                        source="jobsummary.timestamp")
    Document: str = _f(
        "The whole jobsummary document as JSON text, as CouchDB served it (with `_rev`): "
        "what WMCore's jobdetail API returns as a sample; empty when not kept.", "")


@attrs.frozen(kw_only=True)
class Alert:
    """One thing that needs an operator's attention: a request or an agent in trouble.

    Derived by :mod:`wmstats.alerts` from the Workflow, WorkflowSite and Agent
    records with the server's rules; not stored.
    """

    Kind: str = _f("What the alert is about (see the alert rules in docs/alerts.md).")
    Severity: str = _f("warning or error.", "error")
    RequestName: str = _f("The workflow (empty for an agent alert).", "")
    AgentURL: str = _f("The agent (empty for a request alert).", "")
    Agents: tuple[str, ...] = _f("Agents concerned: the agent, or the workflow's agents.",
                                 factory=tuple)
    Sites: tuple[str, ...] = _f("Sites concerned: for a request, the sites where it has "
                                "failed, cooling-off or paused jobs.", factory=tuple)
    RequestStatus: str = _f("The workflow's status (empty for an agent alert).", "")
    Since: int = _f("Since when (epoch seconds): the status change of a request, the "
                    "heartbeat of an agent.", 0)
    Message: str = _f("What is wrong, for humans.", "")
    Failed: int = _f("Failed, cooling-off and paused jobs of the workflow.", 0)
    Success: int = _f("Successful jobs of the workflow.", 0)
    Running: int = _f("Running jobs of the workflow.", 0)
    Pending: int = _f("Pending jobs of the workflow.", 0)


#: Where each record type's job counters come from in an ``agent_request`` document.
COUNTER_PREFIXES: Final[dict[type[Any], str]] = {
    Workflow: "agent_request.status",
    WorkflowSite: "agent_request.sites.<site>",
    WorkflowTask: "agent_request.tasks.<task>.status",
    TaskSite: "agent_request.tasks.<task>.sites.<site>",
    AgentRequest: "agent_request.status",
}

#: Every record type, by name.
RECORD_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (Workflow, WorkflowSite, WorkflowTask, TaskSite, DatasetStats,
                ChainParentage, RequestTransition, ChainArgs, AgentRequest, Agent, JobGroup,
                JobSample, Alert)
}

Record = (Workflow | WorkflowSite | WorkflowTask | TaskSite | DatasetStats | ChainParentage
          | RequestTransition | ChainArgs | AgentRequest | Agent | JobGroup | JobSample | Alert)

_KEYS: Final[dict[type[Any], tuple[str, ...]]] = {
    Workflow: ("RequestName",),
    WorkflowSite: ("RequestName", "Site", "Agent"),
    WorkflowTask: ("RequestName", "Task", "Agent"),
    TaskSite: ("RequestName", "Task", "Site", "Agent"),
    DatasetStats: ("RequestName", "Dataset"),
    ChainParentage: ("RequestName", "ChainKey"),
    RequestTransition: ("RequestName", "Index"),
    ChainArgs: ("RequestName", "ChainKey"),
    AgentRequest: ("RequestName", "Agent"),
    Agent: ("AgentURL",),
    JobGroup: ("RequestName", "Task", "State", "ExitCode", "Site", "Agent"),
    JobSample: ("RequestName", "Task", "State", "ExitCode", "Site", "JobName"),
    Alert: ("Kind", "RequestName", "AgentURL"),
}


def record_key(cls: type[Any]) -> tuple[str, ...]:
    """The fields that identify one record of type ``cls``.

    :param cls: a record type from :data:`RECORD_TYPES`.
    """
    return _KEYS[cls]


#: The breakdown parts of a :class:`WorkflowBundle`: attribute name -> record type,
#: in the order :meth:`WorkflowBundle.records` yields them (after the workflow).
BUNDLE_PARTS: Final[dict[str, type[Any]]] = {
    "sites": WorkflowSite,
    "tasks": WorkflowTask,
    "task_sites": TaskSite,
    "datasets": DatasetStats,
    "parentage": ChainParentage,
    "transitions": RequestTransition,
    "chain": ChainArgs,
    "agent_requests": AgentRequest,
}


@attrs.frozen
class WorkflowBundle:
    """Every static record of one workflow, each tuple sorted by its record key.

    The tuples are the :data:`BUNDLE_PARTS`, in that order.
    """

    workflow: Workflow
    sites: tuple[WorkflowSite, ...] = ()
    tasks: tuple[WorkflowTask, ...] = ()
    task_sites: tuple[TaskSite, ...] = ()
    datasets: tuple[DatasetStats, ...] = ()
    parentage: tuple[ChainParentage, ...] = ()
    transitions: tuple[RequestTransition, ...] = ()
    chain: tuple[ChainArgs, ...] = ()
    agent_requests: tuple[AgentRequest, ...] = ()

    def parts(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Each breakdown part's name and records, in :data:`BUNDLE_PARTS` order."""
        for name in BUNDLE_PARTS:
            yield name, getattr(self, name)

    def records(self) -> Iterator[Record]:
        """All records, the workflow first."""
        yield self.workflow
        for _name, records in self.parts():
            yield from records


@attrs.frozen
class WorkflowJobs:
    """The job records of one workflow: its :class:`JobGroup` records sorted by key,
    and its :class:`JobSample` records sorted by group, then in sample order.

    Stores keep them apart from the :class:`WorkflowBundle` (see
    :meth:`wmstats.store.Store.apply_jobs`): jobs change far more often than the rest.
    """

    RequestName: str
    groups: tuple[JobGroup, ...] = ()
    samples: tuple[JobSample, ...] = ()

    def records(self) -> Iterator[JobGroup | JobSample]:
        """The groups, then the samples."""
        yield from self.groups
        yield from self.samples


@attrs.frozen
class StatusCount:
    """How many workflows are in one status."""

    RequestStatus: str
    Workflows: int


@attrs.frozen(kw_only=True)
class Summary(Counters):
    """Job counters and workflow counts of one value of an aggregate (a site, a
    campaign, an agent...; see :mod:`wmstats.aggregates`).

    Counters are summed as described in :func:`wmstats.query.summarize`.
    """

    By: str
    Value: str
    Workflows: int = 0
    WorkflowsByStatus: tuple[StatusCount, ...] = ()
