"""Convert WMCore's dynamic-key CouchDB documents into static records.

Pure functions, no I/O.  The converters never raise on a bad document: they
convert what can be converted and report every problem as a :class:`Problem`
(document id, key path, what was wrong).  No job counter is ever dropped:
counters under unknown status names go to ``OtherJobs``.

Typical use::

    conv = DocumentConverter()
    for doc in documents:          # request, agent_request, agent_info docs
        conv.add(doc)
    for bundle in conv.bundles():  # one per workflow
        ...
    conv.agents(), conv.problems
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from wmstats._problem import Problem
from wmstats.alerts import derive_agent
from wmstats.jobs import JobOptions, JobTable
from wmstats.schema import (
    CHAIN_ARG_KEYS,
    COUNTER_FIELDS,
    COUNTER_SOURCES,
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
from wmstats.serialize import json_dumps

__all__ = [
    "Problem",
    "RequestPart",
    "AgentPart",
    "DocumentConverter",
    "convert_request",
    "convert_agent_request",
    "convert_agent_info",
    "merge_workflow",
    "request_part",
    "convert_documents",
    "ConversionResult",
    "IGNORED_DOC_TYPES",
    "agent_info_details",
]

_FIELD_BY_PATH: Final[dict[str, str]] = {path: name for name, path in COUNTER_SOURCES.items()}
#: Keys of a task's site entry that hold performance data, not job counters.
_PERF_KEYS: Final = frozenset({"cmsRunCPUPerformance", "inputEvents", "wrappedTotalJobTime",
                               "dataset"})
#: Document types found in WMCore's databases that carry nothing for the schema
#: (``jobsummary`` documents become job records: :mod:`wmstats.jobs`).
IGNORED_DOC_TYPES: Final = frozenset({"tier0_request", "workqueue_element"})
_CHAIN_KEY = re.compile(r"^(Task|Step)([1-9][0-9]*)$")
#: Legacy (pre-ReqMgr2) ``reqmgr_request`` keys -> ReqMgr2 keys.
_LEGACY_REQUEST_KEYS: Final[dict[str, str]] = {
    "workflow": "RequestName",
    "request_type": "RequestType",
    "campaign": "Campaign",
    "group": "Group",
    "requestor": "Requestor",
    "inputdataset": "InputDataset",
    "site_white_list": "SiteWhitelist",
    "site_black_list": "SiteBlacklist",
    "team": "Team",
    "request_date": "RequestDate",
    "priority": "RequestPriority",
    "prep_id": "PrepID",
    "cmssw": "CMSSWVersion",
    "outputdatasets": "OutputDatasets",
}


class _Reader:
    """Typed, forgiving access to one document's values; records problems."""

    __slots__ = ("doc_id", "problems")

    def __init__(self, doc_id: str, problems: list[Problem]) -> None:
        self.doc_id = doc_id
        self.problems = problems

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.doc_id, path, message))

    def text(self, value: Any, path: str) -> str:
        if type(value) is str:
            return value
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.report(path, f"expected a string, got number {value!r}; converted")
            return str(value)
        self.report(path, f"expected a string, got {_kind(value)}; ignored")
        return ""

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        """A list of strings; a lone string is a list of one; dict values count too."""
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,) if value else ()
        if type(value) is list and all(type(item) is str for item in value):
            return tuple(item for item in value if item)  # the common case, quickly
        if isinstance(value, dict):
            items: Iterable[tuple[str, Any]] = ((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            self.report(path, f"expected a list of strings, got {_kind(value)}; ignored")
            return ()
        out: list[str] = []
        for item_path, item in items:
            if isinstance(item, (list, tuple, dict)):
                out.extend(self.strings(item, item_path))
            elif item is not None:
                text = self.text(item, item_path)
                if text:
                    out.append(text)
        return tuple(out)

    def integer(self, value: Any, path: str, *, lenient: bool = False) -> int:
        """An int; ``None`` is 0.  Numeric strings are converted (reported unless lenient)."""
        if type(value) is int:
            return value
        if value is None:
            return 0
        if isinstance(value, bool):
            self.report(path, f"expected an integer, got boolean {value}; used 0")
            return 0
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value) and value.is_integer():
                return int(value)
            if not math.isfinite(value):
                self.report(path, f"expected an integer, got {value!r}; used 0")
                return 0
            self.report(path, f"expected an integer, got {value!r}; rounded")
            return round(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                self.report(path, f"expected an integer, got string {value!r}; used 0")
                return 0
            if not lenient:
                self.report(path, f"expected an integer, got string {value!r}; converted")
            try:
                return int(value.strip())  # exact, even beyond float precision
            except ValueError:
                return round(number)
        self.report(path, f"expected an integer, got {_kind(value)}; used 0")
        return 0

    # ``*_at`` read ``mapping[key]`` and build the key path only when reporting.

    def int_at(self, mapping: Mapping[str, Any], key: str, base: str) -> int:
        value = mapping.get(key)
        if type(value) is int:
            return value
        return self.integer(value, f"{base}.{key}")

    def number_at(self, mapping: Mapping[str, Any], key: str, base: str) -> float:
        value = mapping.get(key)
        if type(value) is int or (type(value) is float and math.isfinite(value)):
            return float(value)
        return self.number(value, f"{base}.{key}")

    def text_at(self, mapping: Mapping[str, Any], key: str, base: str) -> str:
        value = mapping.get(key)
        if type(value) is str:
            return value
        return self.text(value, f"{base}.{key}")

    def number(self, value: Any, path: str) -> float:
        if value is None:
            return 0.0
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            self.report(path, f"expected a finite number, got {value!r}; used 0")
            return 0.0
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    self.report(path, f"expected a number, got string {value!r}; converted")
                    return number
        self.report(path, f"expected a number, got {_kind(value)} {value!r}; used 0")
        return 0.0

    def boolean(self, value: Any, path: str, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in (0, 1, "true", "false", "True", "False"):
            self.report(path, f"expected a boolean, got {value!r}; converted")
            return value in (1, "true", "True")
        self.report(path, f"expected a boolean, got {_kind(value)}; used {default}")
        return default

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.report(path, f"expected an object, got {_kind(value)}; ignored")
        return {}

    def counters(self, value: Any, path: str, *, perf: bool = False) -> dict[str, int]:
        """Flatten a (nested) status dict into counter fields; unknown names -> OtherJobs.

        :param perf: the dict is a task's site entry, whose performance keys are read
            elsewhere; anywhere else they are reported and dropped.
        """
        out: dict[str, int] = {}
        self._walk_counters(self.mapping(value, path), path, None, out, perf)
        return out

    def _walk_counters(self, value: Mapping[str, Any], path: str, prefix: str | None,
                       out: dict[str, int], perf: bool = False) -> None:
        fields = _FIELD_BY_PATH
        for key, item in value.items():
            if prefix is None:
                if key in _PERF_KEYS:
                    if not perf:
                        self.report(f"{path}.{key}", "performance data outside a task's "
                                                     "site entry; dropped")
                    continue
                name = key if type(key) is str else str(key)
            else:
                name = f"{prefix}.{key}"
            if type(item) is int:
                # The common case first: a known status and a count (not reported).
                field = fields.get(name)
                if field is not None and item >= 0:
                    out[field] = out.get(field, 0) + item
                    continue
            elif isinstance(item, dict):
                self._walk_counters(item, path, name, out)
                continue
            full = f"{path}.{name}"
            if item is None:
                self.report(full, "job counter is null; counted as 0")
                continue
            count = item if type(item) is int else self.integer(item, full)
            field = fields.get(name)
            if field is None:
                field = "OtherJobs"
                self.report(full, f"unknown job status {name!r}; {count} jobs counted in OtherJobs")
            if count < 0:
                self.report(full, f"negative job counter {count}; kept")
            out[field] = out.get(field, 0) + count


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _dedup(values: Iterable[str]) -> tuple[str, ...]:
    """The non-empty strings, each once, in order."""
    found = dict.fromkeys(values)
    found.pop("", None)
    return tuple(found)


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0) + value


# --------------------------------------------------------------------------- requests


@attrs.frozen
class RequestPart:
    """What one request document contributes: the workflow without agent data, its
    chain parentage, its status history and, for a chain, each level's arguments."""

    workflow: Workflow
    parentage: tuple[ChainParentage, ...]
    transitions: tuple[RequestTransition, ...] = ()
    chain: tuple[ChainArgs, ...] = ()


def _epoch(reader: _Reader, value: Any, path: str) -> int:
    if value is None:
        return 0
    if isinstance(value, (list, tuple)):
        parts = [reader.integer(v, f"{path}[{i}]") for i, v in enumerate(value[:6])]
        if len(parts) < 3:
            reader.report(path, f"expected [y, m, d, H, M, S], got {list(value)!r}; used 0")
            return 0
        parts += [0] * (6 - len(parts))
        try:
            year, month, day, hour, minute, second = parts
            when = datetime.datetime(year, month, day, hour, minute, second,
                                     tzinfo=datetime.timezone.utc)  # validates the date
            return int(when.timestamp())
        except (ValueError, OverflowError):
            reader.report(path, f"not a valid date {list(value)!r}; used 0")
            return 0
    return reader.integer(value, path)


def _transitions(reader: _Reader, name: str, value: Any, path: str,
                 legacy: bool) -> tuple[RequestTransition, ...]:
    """The status history of request ``name``, numbered from 0 (oldest) on; an entry
    that is not an object is reported and left out of the numbering."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        reader.report(path, f"expected a list of transitions, got {_kind(value)}; ignored")
        return ()
    status_key, time_key, dn_key = (("status", "update_time", "dn") if legacy
                                    else ("Status", "UpdateTime", "DN"))
    out: list[RequestTransition] = []
    for i, item in enumerate(value):
        if type(item) is dict:
            # The common case first: well-typed values, nothing to report.
            status, when, dn = item.get(status_key), item.get(time_key), item.get(dn_key)
            if type(status) is str and type(when) is int and type(dn) is str:
                out.append(RequestTransition(RequestName=name, Index=len(out), Status=status,
                                             UpdateTime=when, DN=dn))
                continue
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            reader.report(item_path, f"expected an object, got {_kind(item)}; ignored")
            continue
        out.append(RequestTransition(
            RequestName=name, Index=len(out),
            Status=reader.text_at(item, status_key, item_path),
            UpdateTime=reader.int_at(item, time_key, item_path),
            DN=reader.text_at(item, dn_key, item_path)))
    return tuple(out)


#: ChainArgs keys whose values are lists of strings (the others: text, and an int).
_CHAIN_TUPLES: Final = frozenset({"ScramArch", "MCPileup", "DataPileup"})
#: Keys the Workflow fields read from every level already (their problems are
#: reported there); the others are read, and reported, for ChainArgs alone.
_MERGED_KEYS: Final = frozenset({"Campaign", "CMSSWVersion", "ScramArch", "AcquisitionEra",
                                 "ProcessingString", "MCPileup", "DataPileup"})
#: Top-level keys of a chain request whose presence ChainArgs.Keys records.
_CHAIN_TOP_KEYS: Final = ("TaskChain", "StepChain", "ParentageResolved", "ChainParentageMap")


def _chain_level(reader: _Reader, name: str, key: str,
                 level: Mapping[str, Any]) -> ChainArgs:
    """One level of a chain request: the top (``key`` empty) or a TaskN/StepN."""
    top = not key
    # The top level's values are read (and their problems reported) for the
    # Workflow record; a sub-document's merged keys too.
    quiet = _Reader(reader.doc_id, [])
    keys: list[str] = []
    name_key = "" if top else ("TaskName" if key.startswith("Task") else "StepName")
    if name_key and name_key in level:
        keys.append(name_key)
    values: dict[str, Any] = {}
    prefix = f"{key}." if key else ""
    for arg in CHAIN_ARG_KEYS:
        if arg not in level:
            continue
        value = level[arg]
        if top and (value is None or (arg in ("AcquisitionEra", "ProcessingString")
                                      and isinstance(value, dict))):
            # null at the top reads as missing (a task's null still counts: WMCore
            # then merges the tasks' values); per task by task name: the tasks' own
            # values are kept
            continue
        keys.append(arg)
        read = quiet if top or arg in _MERGED_KEYS else reader
        if arg in _CHAIN_TUPLES:
            values[arg] = read.strings(value, prefix + arg)
        elif arg == "RequestNumEvents":
            values[arg] = read.integer(value, prefix + arg)
        else:
            values[arg] = read.text(value, prefix + arg)
    if top:
        keys.extend(k for k in _CHAIN_TOP_KEYS if k in level)
    label = reader.text(level.get(name_key), prefix + name_key) if name_key else ""
    return ChainArgs(RequestName=name, ChainKey=key, Name=label, Keys=tuple(keys), **values)


def _doc_id(doc: Mapping[str, Any], *keys: str) -> str:
    for key in ("_id", *keys):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value
    return "<no id>"


def convert_request(doc: Mapping[str, Any], problems: list[Problem]) -> RequestPart | None:
    """Convert a ReqMgr2 request document (or a legacy ``reqmgr_request`` one).

    :param doc: the document as read from CouchDB.
    :param problems: problems found are appended here.
    :returns: ``None`` only when the document has no usable request name.
    """
    legacy = doc.get("type") == "reqmgr_request"
    if legacy:
        doc = {_LEGACY_REQUEST_KEYS.get(k, k): v for k, v in doc.items()}
    reader = _Reader(_doc_id(doc, "RequestName"), problems)
    name = reader.text(doc.get("RequestName"), "RequestName") or (
        doc["_id"] if isinstance(doc.get("_id"), str) else "")
    if not name:
        reader.report("RequestName", "request document without a name; skipped")
        return None
    if legacy:
        transitions = _transitions(reader, name, doc.get("request_status"), "request_status",
                                   True)
        status = transitions[-1].Status if transitions else ""
    else:
        transitions = _transitions(reader, name, doc.get("RequestTransition"),
                                   "RequestTransition", False)
        status = reader.text(doc.get("RequestStatus"), "RequestStatus")
    if not status:
        reader.report("RequestStatus", "missing request status")
    status_time = next((t.UpdateTime for t in reversed(transitions) if t.Status == status),
                       transitions[-1].UpdateTime if transitions else 0)

    # TaskChain / StepChain: TaskN / StepN sub-documents carry their own values.
    chain_length = 0
    for key in ("TaskChain", "StepChain"):
        if doc.get(key) is not None:
            chain_length = reader.integer(doc.get(key), key)
    chain = sorted(((m.group(1), int(m.group(2)), k) for k in doc
                    if k[:4] in ("Task", "Step") and (m := _CHAIN_KEY.match(k))
                    and isinstance(doc[k], dict)),
                   key=lambda t: (t[0], t[1]))
    subdocs = [(k, doc[k]) for _, _, k in chain]
    if chain_length and len(subdocs) != chain_length:
        reader.report("TaskChain" if doc.get("TaskChain") is not None else "StepChain",
                      f"says {chain_length} tasks/steps but {len(subdocs)} are present")

    def merged(key: str) -> tuple[str, ...]:
        values = list(reader.strings(doc.get(key), key))
        for sub_key, sub in subdocs:
            value = sub.get(key)
            if value is not None:
                values.extend(reader.strings(value, f"{sub_key}.{key}"))
        return _dedup(values)

    # WMCore reads a chain level by level (TaskN for a TaskChain, StepN for a StepChain).
    levels: tuple[ChainArgs, ...] = ()
    kind = ("Task" if doc.get("TaskChain") is not None else
            "Step" if doc.get("StepChain") is not None else "")
    if kind:
        levels = (_chain_level(reader, name, "", doc),
                  *(_chain_level(reader, name, k, sub) for k, sub in subdocs
                    if k.startswith(kind)))
    num_events = reader.integer(doc.get("RequestNumEvents"), "RequestNumEvents")
    if not num_events and subdocs:
        if len(levels) > 1 and levels[1].ChainKey == subdocs[0][0]:
            num_events = levels[1].RequestNumEvents
        else:
            first_key, first = subdocs[0]
            num_events = reader.integer(first.get("RequestNumEvents"),
                                        f"{first_key}.RequestNumEvents")
    teams = reader.strings(doc.get("Teams"), "Teams") or tuple(
        t.strip() for t in reader.text(doc.get("Team"), "Team").split(",") if t.strip())
    resolved = reader.boolean(doc.get("ParentageResolved"), "ParentageResolved", True)
    cmssw = reader.text(doc.get("CMSSWVersion"), "CMSSWVersion")
    campaign = reader.text(doc.get("Campaign"), "Campaign")
    workflow = Workflow(
        RequestName=name,
        RequestStatus=status,
        RequestType=reader.text(doc.get("RequestType"), "RequestType"),
        SubRequestType=reader.text(doc.get("SubRequestType"), "SubRequestType"),
        Campaign=campaign,
        Campaigns=merged("Campaign"),
        Teams=_dedup(teams),
        Group=reader.text(doc.get("Group"), "Group"),
        Requestor=reader.text(doc.get("Requestor"), "Requestor"),
        PrepID=reader.text(doc.get("PrepID"), "PrepID"),
        CMSSWVersion=cmssw,
        CMSSWVersions=merged("CMSSWVersion"),
        ScramArch=merged("ScramArch"),
        AcquisitionEras=merged("AcquisitionEra"),
        ProcessingStrings=merged("ProcessingString"),
        RequestPriority=reader.integer(doc.get("RequestPriority"), "RequestPriority",
                                       lenient=legacy),
        RequestDate=_epoch(reader, doc.get("RequestDate"), "RequestDate"),
        StatusTime=status_time,
        InputDataset=reader.text(doc.get("InputDataset"), "InputDataset"),
        OutputDatasets=_dedup(reader.strings(doc.get("OutputDatasets"), "OutputDatasets")),
        MCPileup=merged("MCPileup"),
        DataPileup=merged("DataPileup"),
        SiteWhitelist=reader.strings(doc.get("SiteWhitelist"), "SiteWhitelist"),
        SiteBlacklist=reader.strings(doc.get("SiteBlacklist"), "SiteBlacklist"),
        OutputModulesLFNBases=reader.strings(doc.get("OutputModulesLFNBases"),
                                             "OutputModulesLFNBases"),
        UnmergedLFNBase=reader.text(doc.get("UnmergedLFNBase"), "UnmergedLFNBase"),
        ParentageResolved=resolved,
        ChainLength=chain_length,
        TotalEstimatedJobs=reader.integer(doc.get("TotalEstimatedJobs"), "TotalEstimatedJobs"),
        TotalInputEvents=reader.integer(doc.get("TotalInputEvents"), "TotalInputEvents"),
        TotalInputLumis=reader.integer(doc.get("TotalInputLumis"), "TotalInputLumis"),
        TotalInputFiles=reader.integer(doc.get("TotalInputFiles"), "TotalInputFiles"),
        RequestNumEvents=num_events,
    )
    parentage: list[ChainParentage] = []
    for key, entry in reader.mapping(doc.get("ChainParentageMap"), "ChainParentageMap").items():
        path = f"ChainParentageMap.{key}"
        entry = reader.mapping(entry, path)
        parentage.append(ChainParentage(
            RequestName=name,
            ChainKey=str(key),
            ParentDataset=reader.text(entry.get("ParentDset"), f"{path}.ParentDset"),
            ChildDatasets=reader.strings(entry.get("ChildDsets"), f"{path}.ChildDsets"),
            ParentageResolved=resolved,
        ))
    parentage.sort(key=lambda p: _chain_sort_key(p.ChainKey))
    return RequestPart(workflow, tuple(parentage), transitions, levels)


def _chain_sort_key(key: str) -> tuple[str, int, str]:
    m = _CHAIN_KEY.match(key)
    return (m.group(1), int(m.group(2)), "") if m else ("~", 0, key)


# --------------------------------------------------------------------------- agents


@attrs.frozen
class AgentPart:
    """What one ``agent_request`` document contributes to its workflow."""

    workflow: str
    agent: str
    timestamp: int
    counters: Mapping[str, int]
    sites: tuple[WorkflowSite, ...]
    tasks: tuple[WorkflowTask, ...]
    task_sites: tuple[TaskSite, ...]
    #: dataset -> [events, size, lumis]
    datasets: Mapping[str, tuple[int, int, int]]
    team: str = ""
    version: str = ""

    def record(self) -> AgentRequest:
        """This report's :class:`~wmstats.schema.AgentRequest` record."""
        return AgentRequest(RequestName=self.workflow, Agent=self.agent, AgentTeam=self.team,
                            AgentVersion=self.version, Timestamp=self.timestamp,
                            **self.counters)


def _site_name(reader: _Reader, site: str, path: str) -> str:
    if not site.strip():
        reader.report(path, "empty site name; counters kept under site ''")
    return site


def convert_agent_request(doc: Mapping[str, Any], problems: list[Problem]) -> AgentPart | None:
    """Convert one ``agent_request`` document (one agent's view of one workflow).

    :returns: ``None`` only when the document names no workflow.
    """
    reader = _Reader(_doc_id(doc, "workflow"), problems)
    workflow = reader.text(doc.get("workflow"), "workflow")
    if not workflow:
        reader.report("workflow", "agent_request without a workflow name; skipped")
        return None
    agent = reader.text(doc.get("agent_url"), "agent_url")
    if not agent:
        reader.report("agent_url", "agent_request without an agent URL; counted under ''")

    sites = tuple(
        WorkflowSite(RequestName=workflow, Site=_site_name(reader, site, f"sites.{site}"),
                     Agent=agent, **reader.counters(value, f"sites.{site}"))
        for site, value in reader.mapping(doc.get("sites"), "sites").items()
    )
    tasks: list[WorkflowTask] = []
    task_sites: list[TaskSite] = []
    datasets: dict[str, tuple[int, int, int]] = {}
    for task, task_doc in reader.mapping(doc.get("tasks"), "tasks").items():
        path = f"tasks.{task}"
        task_doc = reader.mapping(task_doc, path)
        sub_path = f"{path}.subscription_status"
        subscription = reader.mapping(task_doc.get("subscription_status"), sub_path)
        skip_path = f"{path}.skipped"
        skipped = reader.mapping(task_doc.get("skipped"), skip_path)
        for key in skipped:
            if key != "skippedFiles":
                reader.report(f"{skip_path}.{key}", "unknown key; dropped")
        tasks.append(WorkflowTask(
            RequestName=workflow, Task=task, Agent=agent,
            JobType=reader.text_at(task_doc, "jobtype", path),
            SubscriptionOpen=reader.int_at(subscription, "open", sub_path),
            SubscriptionFinished=reader.int_at(subscription, "finished", sub_path),
            SubscriptionTotal=reader.int_at(subscription, "total", sub_path),
            SubscriptionUpdated=reader.int_at(subscription, "updated", sub_path),
            SkippedFiles=reader.int_at(skipped, "skippedFiles", skip_path),
            **reader.counters(task_doc.get("status"), f"{path}.status"),
        ))
        for site, site_doc in reader.mapping(task_doc.get("sites"), f"{path}.sites").items():
            site_path = f"{path}.sites.{site}"
            site_doc = reader.mapping(site_doc, site_path)
            cpu_path = f"{site_path}.cmsRunCPUPerformance"
            cpu = reader.mapping(site_doc.get("cmsRunCPUPerformance"), cpu_path)
            for ds, stats in reader.mapping(site_doc.get("dataset"),
                                            f"{site_path}.dataset").items():
                ds_path = f"{site_path}.dataset.{ds}"
                stats = reader.mapping(stats, ds_path)
                old = datasets.get(ds, (0, 0, 0))
                datasets[ds] = (old[0] + reader.int_at(stats, "events", ds_path),
                                old[1] + reader.int_at(stats, "size", ds_path),
                                old[2] + reader.int_at(stats, "totalLumis", ds_path))
            task_sites.append(TaskSite(
                RequestName=workflow, Task=task,
                Site=_site_name(reader, site, site_path), Agent=agent,
                TotalJobCPU=reader.number_at(cpu, "totalJobCPU", cpu_path),
                TotalEventCPU=reader.number_at(cpu, "totalEventCPU", cpu_path),
                TotalJobTime=reader.number_at(cpu, "totalJobTime", cpu_path),
                InputEvents=reader.int_at(site_doc, "inputEvents", site_path),
                WrappedTotalJobTime=reader.number_at(site_doc, "wrappedTotalJobTime", site_path),
                **reader.counters(site_doc, site_path, perf=True),
            ))
    return AgentPart(
        workflow=workflow,
        agent=agent,
        timestamp=reader.integer(doc.get("timestamp"), "timestamp"),
        counters=reader.counters(doc.get("status"), "status"),
        sites=sites,
        tasks=tuple(tasks),
        task_sites=tuple(task_sites),
        datasets=datasets,
        team=reader.text(doc.get("agent_team"), "agent_team"),
        version=reader.text(doc.get("agent_version"), "agent_version"),
    )


def _component_error(reader: _Reader, item: Any, path: str) -> str:
    """One line for one entry of ``down_component_detail``."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        reader.report(path, f"expected an object or a name, got {_kind(item)}; ignored")
        return ""
    name = item.get("name")
    worker = item.get("worker_name")
    state = item.get("state") or item.get("status")
    message = item.get("error_message") or item.get("last_error")
    head = str(name) if name not in (None, "") else "?"
    if worker not in (None, ""):
        head += f"/{worker}"
    if state not in (None, ""):
        head += f" {state}"
    return f"{head}: {message}" if message not in (None, "") else head


def agent_info_details(reader: _Reader, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The Agent fields read from the details of an ``agent_info`` document: disk
    usage, component errors, proxy, CouchDB processes, data error, drain state."""
    usage: list[str] = []
    raw_disk = doc.get("disk_warning")
    if isinstance(raw_disk, (list, tuple)):
        for item in raw_disk:
            if isinstance(item, dict):
                mount = item.get("mounted", item.get("Mounted"))
                percent = item.get("percent")
                if isinstance(mount, str) and mount:
                    usage.append(f"{mount} {percent}" if isinstance(percent, (str, int))
                                 and not isinstance(percent, bool) else mount)
    errors: list[str] = []
    raw_detail = doc.get("down_component_detail")
    if isinstance(raw_detail, (list, tuple)):
        for i, item in enumerate(raw_detail):
            line = _component_error(reader, item, f"down_component_detail[{i}]")
            if line:
                errors.append(line)
    elif raw_detail is not None:
        reader.report("down_component_detail", f"expected a list, got {_kind(raw_detail)}; "
                                               f"ignored")
    drain = doc.get("drain_stats")
    completed = False
    if isinstance(drain, dict):
        completed = reader.boolean(drain.get("workflows_completed"),
                                   "drain_stats.workflows_completed", False)
    data_error = doc.get("data_error")
    return {
        "DiskUsage": tuple(usage),
        "ComponentErrors": tuple(errors),
        "ProxyWarning": reader.text(doc.get("proxy_warning"), "proxy_warning"),
        "CouchProcessWarning": reader.integer(doc.get("couch_process_warning"),
                                              "couch_process_warning"),
        "DataError": (data_error if isinstance(data_error, str)
                      else "" if data_error is None else json_dumps(data_error)),
        "DrainWorkflowsCompleted": completed,
    }


def convert_agent_info(doc: Mapping[str, Any], problems: list[Problem]) -> Agent | None:
    """Convert an ``agent_info`` heartbeat document.

    The derived status (:func:`wmstats.alerts.derive_agent`, default rules) is set
    as of the heartbeat itself; servers derive it again with the current time.

    :returns: ``None`` only when the document names no agent.
    """
    reader = _Reader(_doc_id(doc, "agent_url"), problems)
    url = reader.text(doc.get("agent_url"), "agent_url") or (
        doc["_id"] if isinstance(doc.get("_id"), str) else "")
    if not url:
        reader.report("agent_url", "agent_info without an agent URL; skipped")
        return None
    disk: list[str] = []
    raw_disk = doc.get("disk_warning")
    if isinstance(raw_disk, (list, tuple)):
        for i, item in enumerate(raw_disk):
            if isinstance(item, dict):
                item = item.get("mounted", item.get("Mounted"))
            text = reader.text(item, f"disk_warning[{i}]")
            if text:
                disk.append(text)
    elif raw_disk:
        disk.extend(reader.strings(raw_disk, "disk_warning"))
    agent = Agent(
        AgentURL=url,
        AgentTeam=reader.text(doc.get("agent_team"), "agent_team"),
        AgentVersion=reader.text(doc.get("agent_version"), "agent_version"),
        Status=reader.text(doc.get("status"), "status"),
        DownComponents=reader.strings(doc.get("down_components"), "down_components"),
        DrainMode=reader.boolean(doc.get("drain_mode"), "drain_mode", False),
        DiskWarning=tuple(disk),
        Timestamp=reader.integer(doc.get("timestamp"), "timestamp"),
        DataLastUpdate=reader.integer(doc.get("data_last_update"), "data_last_update",
                                      lenient=True),
        **agent_info_details(reader, doc),
    )
    return derive_agent(agent)


# --------------------------------------------------------------------------- merging


def merge_workflow(name: str, request: RequestPart | None,
                   agents: Sequence[AgentPart]) -> WorkflowBundle:
    """Merge a request and its agents' reports into one workflow's records.

    :param name: the workflow name.
    :param request: the converted request document, if there is one.
    :param agents: one part per agent (at most one per agent URL).
    """
    counters: dict[str, int] = {}
    datasets: dict[str, list[int]] = {}
    site_names: set[str] = set()
    for part in agents:
        _add(counters, part.counters)
        site_names.update(s.Site for s in part.sites)
        site_names.update(s.Site for s in part.task_sites)
        for ds, values in part.datasets.items():
            into = datasets.setdefault(ds, [0, 0, 0])
            for i in range(3):
                into[i] += values[i]
    base = request.workflow if request is not None else Workflow(RequestName=name,
                                                                 HasRequest=False)
    for ds in base.OutputDatasets:
        datasets.setdefault(ds, [0, 0, 0])
    totals: dict[str, Any] = {f: counters.get(f, 0) for f in COUNTER_FIELDS}
    workflow = attrs.evolve(
        base,
        Agents=tuple(sorted({p.agent for p in agents})),
        Sites=tuple(sorted(site_names)),
        AgentUpdate=max((p.timestamp for p in agents), default=0),
        **totals,
    )
    return WorkflowBundle(
        workflow=workflow,
        sites=tuple(sorted((s for p in agents for s in p.sites),
                           key=lambda r: (r.Site, r.Agent))),
        tasks=tuple(sorted((t for p in agents for t in p.tasks),
                           key=lambda r: (r.Task, r.Agent))),
        task_sites=tuple(sorted((t for p in agents for t in p.task_sites),
                                key=lambda r: (r.Task, r.Site, r.Agent))),
        datasets=tuple(DatasetStats(RequestName=name, Dataset=ds, Events=v[0], Size=v[1],
                                    Lumis=v[2]) for ds, v in sorted(datasets.items())),
        parentage=request.parentage if request is not None else (),
        transitions=request.transitions if request is not None else (),
        chain=request.chain if request is not None else (),
        agent_requests=tuple(sorted((p.record() for p in agents), key=lambda r: r.Agent)),
    )


#: Workflow fields :func:`merge_workflow` fills from the agents' reports, and their
#: defaults (what a converted request document leaves in them).
_AGENT_FIELDS: Final[dict[str, Any]] = {
    name: getattr(Workflow(RequestName=""), name)
    for name in ("Agents", "Sites", "AgentUpdate", *COUNTER_FIELDS)}


def request_part(bundle: WorkflowBundle) -> RequestPart | None:
    """What the request document contributed to a merged bundle: the inverse of the
    request half of :func:`merge_workflow` (``None`` for a workflow without a
    request document)."""
    workflow = bundle.workflow
    if not workflow.HasRequest:
        return None
    return RequestPart(attrs.evolve(workflow, **_AGENT_FIELDS), bundle.parentage,
                       bundle.transitions, bundle.chain)


class DocumentConverter:
    """Collect WMCore documents of any kind, in any order, and convert them.

    Holds only the converted (static) parts, never the raw documents.
    """

    def __init__(self, job_options: JobOptions = JobOptions()) -> None:
        self.problems: list[Problem] = []
        self._jobs = JobTable(job_options)
        self._no_ids = 0
        self._requests: dict[str, RequestPart] = {}
        self._agent_parts: dict[str, dict[str, AgentPart]] = {}
        self._agents: dict[str, Agent] = {}
        self.ignored = 0

    def add(self, doc: Any) -> None:
        """Convert one document of any supported kind and keep its parts.

        Supported: ReqMgr2 request documents, legacy ``reqmgr_request``,
        ``agent_request``, ``agent_info``, ``jobsummary`` (:mod:`wmstats.jobs`),
        and ``requestcache`` entries (a request document with an ``AgentJobInfo``
        map).
        """
        if not isinstance(doc, dict):
            self.problems.append(Problem("<unknown>", "", f"expected a JSON object, got "
                                         f"{_kind(doc)}; skipped"))
            return
        doc_id = _doc_id(doc, "RequestName", "workflow", "agent_url")
        if doc.get("_deleted") or doc_id.startswith("_design/"):
            self.ignored += 1
            return
        doc_type = doc.get("type")
        if doc_type == "agent_request":
            self._add_agent_part(convert_agent_request(doc, self.problems))
        elif doc_type == "agent_info":
            agent = convert_agent_info(doc, self.problems)
            if agent is not None:
                self._agents[agent.AgentURL] = agent
        elif doc_type == "jobsummary":
            job_id = doc.get("_id")
            if not isinstance(job_id, str) or not job_id:
                self._no_ids += 1
                job_id = f"<no id {self._no_ids}>"
                self.problems.append(Problem(job_id, "_id", "jobsummary without an id; "
                                                            "counted under a made-up one"))
            self._jobs.update(job_id, doc, self.problems)
        elif doc_type == "reqmgr_request" or (
                doc_type is None and ("RequestName" in doc or "RequestStatus" in doc)):
            job_info = doc.get("AgentJobInfo")
            request = convert_request(doc, self.problems)
            self._add_request(request)
            if job_info is not None:
                reader = _Reader(doc_id, self.problems)
                # The enclosing request names the workflow when the entry does not.
                known = {"workflow": request.workflow.RequestName} if request else {}
                for url, agent_doc in reader.mapping(job_info, "AgentJobInfo").items():
                    if isinstance(agent_doc, dict):
                        self._add_agent_part(convert_agent_request(
                            {"agent_url": url, **known, **agent_doc}, self.problems))
                    else:
                        reader.report(f"AgentJobInfo.{url}",
                                      f"expected an object, got {_kind(agent_doc)}; ignored")
        elif isinstance(doc_type, str) and doc_type in IGNORED_DOC_TYPES:
            self.ignored += 1
        else:
            self.problems.append(Problem(doc_id, "type", f"unknown document type "
                                         f"{doc_type!r}; skipped"))

    def _add_request(self, part: RequestPart | None) -> None:
        if part is None:
            return
        name = part.workflow.RequestName
        if name in self._requests:
            self.problems.append(Problem(name, "", "duplicate request document; the later "
                                         "one replaces the earlier"))
        self._requests[name] = part

    def _add_agent_part(self, part: AgentPart | None) -> None:
        if part is None:
            return
        by_agent = self._agent_parts.setdefault(part.workflow, {})
        old = by_agent.get(part.agent)
        if old is not None:
            self.problems.append(Problem(part.workflow, "agent_url", f"two agent_request "
                                         f"documents from {part.agent!r}; the newer is kept"))
            if old.timestamp > part.timestamp:
                return
        by_agent[part.agent] = part

    def workflow_names(self) -> list[str]:
        """Every workflow seen, requests first, in order of first appearance."""
        return list(dict.fromkeys([*self._requests, *self._agent_parts]))

    def bundle(self, name: str) -> WorkflowBundle:
        """The merged records of one workflow."""
        return merge_workflow(name, self._requests.get(name),
                              list(self._agent_parts.get(name, {}).values()))

    def bundles(self) -> Iterator[WorkflowBundle]:
        """One bundle per workflow (see :meth:`workflow_names` for the order)."""
        for name in self.workflow_names():
            yield self.bundle(name)

    def agents(self) -> list[Agent]:
        """Agent records, sorted by URL."""
        return [self._agents[k] for k in sorted(self._agents)]

    @property
    def job_table(self) -> JobTable:
        """The job records of the ``jobsummary`` documents (:class:`wmstats.jobs.JobTable`)."""
        return self._jobs

    def jobs(self) -> list[WorkflowJobs]:
        """The job records of every workflow with ``jobsummary`` documents, by name."""
        return [self._jobs.jobs(name) for name in sorted(self._jobs.workflows())]


@attrs.frozen
class ConversionResult:
    """Everything converted from a set of documents."""

    bundles: tuple[WorkflowBundle, ...]
    agents: tuple[Agent, ...]
    problems: tuple[Problem, ...]
    jobs: tuple[WorkflowJobs, ...] = ()


def convert_documents(docs: Iterable[Any]) -> ConversionResult:
    """Convert a whole set of documents at once (see :class:`DocumentConverter`)."""
    conv = DocumentConverter()
    for doc in docs:
        conv.add(doc)
    return ConversionResult(tuple(conv.bundles()), tuple(conv.agents()), tuple(conv.problems),
                            tuple(conv.jobs()))
