"""WMCore's view of the static records: the request documents and rules of reqmon.

Today's WMStats server (reqmon, WMCore's ``WMCore.WMStats``) answers its
``/wmstatsserver/data/*`` API from whole ReqMgr2 request documents; WMCore
services read it through ``WMCore.Services.WMStatsServer``.  This module rebuilds
what those answers are made of from a :class:`~wmstats.schema.WorkflowBundle`,
with reqmon 2.4.5.9's rules (``WMCore/ReqMgr/DataStructs/Request.py``,
``WMCore/WMStats/DataStructs/DataCache.py``):

* :data:`CACHE_STATUSES` -- the requests reqmon's cache holds, in its order;
  :data:`JOB_INFO_STATUSES` carry ``AgentJobInfo``; :data:`LOCK_STATUSES`
  (``ACTIVE_STATUS_FILTER``) are the ones ``globallocks`` and ``protectedlfns``
  read;
* :data:`REQUEST_KEYS` -- every request key the records carry, what it holds and
  whether ``filtered_requests`` may filter on it (the whitelist);
* :class:`RequestView` -- one request as reqmon sees it: :meth:`~RequestView.get`
  (``RequestInfo.get``: a TaskChain's or StepChain's value merged over its tasks),
  :meth:`~RequestView.matches` (``andFilterCheck``), :meth:`~RequestView.document`
  (the cache entry: the request document and ``AgentJobInfo``);
* :func:`global_locks`, :func:`protected_lfns`, :func:`final_output_lfns`,
  :func:`is_finished`, :func:`agent_teams`: the values of those APIs.

Pure: no I/O.  ``docs/wmcore-compat.md`` lists what differs from reqmon and why.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from wmstats.schema import (
    CHAIN_ARG_KEYS,
    COUNTER_FIELDS,
    COUNTER_SOURCES,
    Agent,
    ChainArgs,
    Workflow,
    WorkflowBundle,
)

__all__ = [
    "JOB_INFO_STATUSES",
    "NO_JOB_INFO_STATUSES",
    "CACHE_STATUSES",
    "LOCK_STATUSES",
    "LOCK_KEYS",
    "DEFAULT_UNMERGED_BASE",
    "CLEANED",
    "KeyKind",
    "RequestKey",
    "REQUEST_KEYS",
    "CONDITION_KEYS",
    "Condition",
    "ConditionError",
    "parse_condition",
    "RequestView",
    "agent_job_info",
    "global_locks",
    "protected_lfns",
    "final_output_lfns",
    "is_finished",
    "agent_teams",
]

#: Statuses whose requests reqmon's cache carries with their agents' reports
#: (``WMSTATS_JOB_INFO``).
JOB_INFO_STATUSES: Final[tuple[str, ...]] = (
    "running-open", "running-closed", "force-complete", "completed", "closed-out")
#: The cache's other statuses (``WMSTATS_NO_JOB_INFO``).
NO_JOB_INFO_STATUSES: Final[tuple[str, ...]] = (
    "new", "assignment-approved", "assigned", "staging", "staged", "acquired", "failed",
    "announced", "aborted", "aborted-completed", "rejected")
#: Every status reqmon's cache holds, in the order it fills it (never ``*-archived``).
CACHE_STATUSES: Final[tuple[str, ...]] = (*JOB_INFO_STATUSES, *NO_JOB_INFO_STATUSES)
#: ``ACTIVE_STATUS_FILTER["RequestStatus"]``: the requests whose data must stay
#: (``globallocks``, ``protectedlfns``, ``protectedlfns_final``).
LOCK_STATUSES: Final[tuple[str, ...]] = (
    "assignment-approved", "assigned", "staging", "staged", "failed", "acquired",
    "running-open", "running-closed", "force-complete", "completed", "closed-out")
#: The keys whose values ``globallocks`` lists, in its order.
LOCK_KEYS: Final[tuple[str, ...]] = ("InputDataset", "OutputDatasets", "MCPileup",
                                     "DataPileup")
#: The unmerged LFN base of a request that names none (``Request.protectedLFNs``).
DEFAULT_UNMERGED_BASE: Final = "/store/unmerged"
#: ``AgentJobInfo=CLEANED``: the request's agents have no job left in their reports.
CLEANED: Final = "CLEANED"

#: Keys ``RequestInfo.get`` does not turn from an object into its list of values.
_KEEP_OBJECTS: Final = frozenset({"LumiList", "AgentJobInfo"})
_TRUE: Final = frozenset({"true", "True", "TRUE"})
_FALSE: Final = frozenset({"false", "False", "FALSE"})


class _Absent(enum.Enum):
    """The request document does not hold the key."""

    ABSENT = "absent"


_ABSENT: Final = _Absent.ABSENT


class KeyKind(enum.Enum):
    """What a request key holds (as reqmon answers it)."""

    TEXT = "text"
    TEXTS = "list of text"
    BOOL = "boolean"
    INT = "integer"
    DATE = "[y, m, d, H, M, S]"
    OBJECT = "object"
    OBJECTS = "list of objects"


_Top = Callable[["RequestView"], Any]


@attrs.frozen
class RequestKey:
    """One request key the static records carry.

    :param name: the key, as the request document names it.
    :param kind: what it holds.
    :param top: its top-level value in a view (``_ABSENT`` when the document does
        not hold it).
    :param condition: whether ``filtered_requests`` may filter on it: reqmon
        compares the query's text with the request's value, so a key that never
        holds text or a boolean could never match.
    :param chain: whether a chain's tasks/steps may hold it (see :data:`CHAIN_ARG_KEYS`).
    :param empty_shown: whether a request (not a chain's top level) that does not hold
        the key shows it anyway, empty (``""``, ``[]``, ``0``): the records keep an
        empty value for both.  The other keys are left out when empty.
    """

    name: str
    kind: KeyKind
    top: _Top = attrs.field(repr=False, eq=False)
    condition: bool = True
    chain: bool = False
    empty_shown: bool = False


def _text(name: str) -> _Top:
    return lambda view: getattr(view.workflow, name)


def _text_or_absent(name: str) -> _Top:
    def top(view: RequestView) -> Any:
        value = getattr(view.workflow, name)
        return value if value else _ABSENT
    return top


def _texts(name: str) -> _Top:
    return lambda view: list(getattr(view.workflow, name))


def _number(name: str) -> _Top:
    return lambda view: getattr(view.workflow, name)


def _chain_top(name: str, plain: _Top) -> _Top:
    """A key a chain's top level holds per its ChainArgs record; ``plain`` otherwise."""
    def top(view: RequestView) -> Any:
        head = view.head
        if head is None:
            return plain(view)
        return _level_value(head, name)
    return top


def _one_or_many(values: Sequence[str]) -> Any:
    """A dataset list as ReqMgr2 stores it: one name as text, several as a list."""
    if not values:
        return _ABSENT
    return values[0] if len(values) == 1 else list(values)


def _first_or_many(name: str) -> _Top:
    return lambda view: _one_or_many(getattr(view.workflow, name))


def _team(view: RequestView) -> Any:
    teams = view.workflow.Teams
    return ",".join(teams) if teams else _ABSENT


def _date(view: RequestView) -> Any:
    when = view.workflow.RequestDate
    return list(time.gmtime(when)[:6]) if when else _ABSENT


def _transitions(view: RequestView) -> Any:
    bundle = view.bundle
    if bundle is None or not bundle.transitions:
        return _ABSENT
    return [{"Status": t.Status, "UpdateTime": t.UpdateTime, "DN": t.DN}
            for t in bundle.transitions]


def _parentage_resolved(view: RequestView) -> Any:
    head = view.head
    if head is None or "ParentageResolved" not in head.Keys:
        return _ABSENT
    return view.workflow.ParentageResolved


def _parentage_map(view: RequestView) -> Any:
    bundle = view.bundle
    head = view.head
    if bundle is None or not (bundle.parentage or (head and "ChainParentageMap" in head.Keys)):
        return _ABSENT
    return {p.ChainKey: {"ParentDset": p.ParentDataset or None,
                         "ChildDsets": list(p.ChildDatasets)} for p in bundle.parentage}


def _chain_length(kind: str) -> _Top:
    def top(view: RequestView) -> Any:
        return view.workflow.ChainLength if view.chain_kind == kind else _ABSENT
    return top


def _job_info(view: RequestView) -> Any:
    return view.job_info if view.job_info is not None else _ABSENT


def _keys() -> dict[str, RequestKey]:
    text, texts, boolean, integer = KeyKind.TEXT, KeyKind.TEXTS, KeyKind.BOOL, KeyKind.INT
    shown = {"empty_shown": True}
    keys = [
        RequestKey("RequestName", text, _text("RequestName"), **shown),
        RequestKey("RequestStatus", text, _text("RequestStatus"), **shown),
        RequestKey("RequestType", text, _text("RequestType"), **shown),
        RequestKey("SubRequestType", text, _text("SubRequestType"), **shown),
        RequestKey("Campaign", text, _chain_top("Campaign", _text("Campaign")), chain=True,
                   **shown),
        RequestKey("Team", text, _team),
        RequestKey("Group", text, _text("Group"), **shown),
        RequestKey("Requestor", text, _text("Requestor"), **shown),
        RequestKey("PrepID", text, _chain_top("PrepID", _text("PrepID")), chain=True, **shown),
        RequestKey("CMSSWVersion", text, _chain_top("CMSSWVersion", _text("CMSSWVersion")),
                   chain=True, **shown),
        RequestKey("ScramArch", texts, _chain_top("ScramArch", _texts("ScramArch")),
                   chain=True, **shown),
        RequestKey("AcquisitionEra", text,
                   _chain_top("AcquisitionEra", _first_or_many("AcquisitionEras")), chain=True),
        RequestKey("ProcessingString", text,
                   _chain_top("ProcessingString", _first_or_many("ProcessingStrings")),
                   chain=True),
        RequestKey("RequestPriority", integer, _number("RequestPriority"), condition=False,
                   **shown),
        RequestKey("RequestDate", KeyKind.DATE, _date, condition=False),
        RequestKey("RequestTransition", KeyKind.OBJECTS, _transitions, condition=False),
        RequestKey("InputDataset", text,
                   _chain_top("InputDataset", _text_or_absent("InputDataset")), chain=True),
        RequestKey("OutputDatasets", texts, _texts("OutputDatasets"), **shown),
        RequestKey("MCPileup", text, _chain_top("MCPileup", _first_or_many("MCPileup")),
                   chain=True),
        RequestKey("DataPileup", text, _chain_top("DataPileup", _first_or_many("DataPileup")),
                   chain=True),
        RequestKey("SiteWhitelist", texts, _texts("SiteWhitelist"), **shown),
        RequestKey("SiteBlacklist", texts, _texts("SiteBlacklist"), **shown),
        RequestKey("OutputModulesLFNBases", texts, _texts("OutputModulesLFNBases"), **shown),
        RequestKey("UnmergedLFNBase", text, _text_or_absent("UnmergedLFNBase")),
        RequestKey("ParentageResolved", boolean, _parentage_resolved),
        RequestKey("TotalEstimatedJobs", integer, _number("TotalEstimatedJobs"),
                   condition=False, **shown),
        RequestKey("TotalInputEvents", integer, _number("TotalInputEvents"), condition=False,
                   **shown),
        RequestKey("TotalInputLumis", integer, _number("TotalInputLumis"), condition=False,
                   **shown),
        RequestKey("TotalInputFiles", integer, _number("TotalInputFiles"), condition=False,
                   **shown),
        RequestKey("RequestNumEvents", integer,
                   _chain_top("RequestNumEvents", _text_or_absent("RequestNumEvents")),
                   condition=False, chain=True),
        RequestKey("TaskChain", integer, _chain_length("Task"), condition=False),
        RequestKey("StepChain", integer, _chain_length("Step"), condition=False),
        RequestKey("ChainParentageMap", KeyKind.OBJECTS, _parentage_map, condition=False),
        # A condition only with CLEANED (see RequestView.matches).
        RequestKey("AgentJobInfo", KeyKind.OBJECT, _job_info),
    ]
    found = {key.name: key for key in keys}
    assert {k for k, v in found.items() if v.chain} == set(CHAIN_ARG_KEYS)
    return found


#: Every request key the static records carry, in the order of the rebuilt
#: document: what ``filtered_requests`` masks may name.
REQUEST_KEYS: Final[Mapping[str, RequestKey]] = _keys()
#: Keys read from records other than the workflow's.
_BUNDLE_KEYS: Final = frozenset({"RequestTransition", "ChainParentageMap", "AgentJobInfo",
                                 "ParentageResolved"})
#: Bundle parts (besides the chain's levels) that keys are read from.
_PARTS_FOR: Final[Mapping[str, tuple[str, ...]]] = {
    "RequestTransition": ("transitions",), "ChainParentageMap": ("parentage",),
    "AgentJobInfo": ("agent_requests", "sites", "tasks", "task_sites")}
#: The keys ``filtered_requests`` may filter on.
CONDITION_KEYS: Final[tuple[str, ...]] = tuple(k for k, v in REQUEST_KEYS.items() if v.condition)


def _level_value(level: ChainArgs, name: str) -> Any:
    """One level's own value of ``name`` (``_ABSENT`` when it does not hold it)."""
    if name not in level.Keys:
        return _ABSENT
    value = getattr(level, name)
    if name in ("MCPileup", "DataPileup"):
        return _one_or_many(value) if value else ""
    if isinstance(value, tuple):
        return list(value)
    return value


# --------------------------------------------------------------------------- conditions


class ConditionError(ValueError):
    """A ``filtered_requests`` condition that cannot be run.

    :param key: the key at fault.
    :param message: what is wrong.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@attrs.frozen
class Condition:
    """``<Key>=v[&<Key>=w]``: the request's value is one of these (or, for a list
    value, shares one with them).

    :param key: a key of :data:`CONDITION_KEYS`.
    :param values: what reqmon compares: one value alone is ``True``/``False`` for
        ``true``/``false`` in any of its cases, and stays text otherwise; several
        values are compared as text (reqmon converts a lone value only).
    """

    key: str
    values: tuple[str | bool, ...]


def parse_condition(key: str, values: Sequence[str]) -> Condition:
    """A condition from a query parameter and its values.

    :raises ConditionError: for a key that is not in :data:`CONDITION_KEYS` (or not
        carried at all), and for values that could never match: anything but
        ``true``/``false`` for a boolean key, anything but ``CLEANED`` for
        ``AgentJobInfo``.
    """
    spec = REQUEST_KEYS.get(key)
    if spec is None:
        raise ConditionError(key, "not a request key wmstats carries")
    if not spec.condition:
        raise ConditionError(key, f"holds {spec.kind.value}, which reqmon compares with the "
                                  f"query's text and never matches")
    if not values:
        raise ConditionError(key, "no value")
    if key == "AgentJobInfo":
        if list(values) != [CLEANED]:
            raise ConditionError(key, f"the only condition on it is AgentJobInfo={CLEANED}")
        return Condition(key, (CLEANED,))
    converted: tuple[str | bool, ...]
    if len(values) == 1:
        value = values[0]
        converted = (True,) if value in _TRUE else (False,) if value in _FALSE else (value,)
    else:
        converted = tuple(values)
    if spec.kind is KeyKind.BOOL and not all(isinstance(v, bool) for v in converted):
        raise ConditionError(key, "takes one value, true or false")
    return Condition(key, converted)


# --------------------------------------------------------------------------- the view


class RequestView:
    """One request as reqmon sees it.

    :param workflow: the request's workflow record.
    :param bundle: its bundle; needed for chains (their ChainArgs), the status
        history, the chain parentage and ``AgentJobInfo``.  Without it only the
        keys of a non-chain request's workflow record can be read.
    :param job_info: attach ``AgentJobInfo`` (built from the bundle's agent
        reports) when the request has any.
    """

    __slots__ = ("workflow", "bundle", "head", "tasks", "chain_kind", "job_info")

    def __init__(self, workflow: Workflow, bundle: WorkflowBundle | None = None, *,
                 job_info: bool = False) -> None:
        self.workflow = workflow
        self.bundle = bundle
        chain = bundle.chain if bundle is not None else ()
        head = chain[0] if chain and not chain[0].ChainKey else None
        self.head: ChainArgs | None = head
        if head is None:
            self.chain_kind = ""
            self.tasks: tuple[ChainArgs, ...] = ()
        else:
            self.chain_kind = ("Task" if "TaskChain" in head.Keys else
                               "Step" if "StepChain" in head.Keys else "")
            self.tasks = tuple(level for level in chain[1:]
                               if level.ChainKey.startswith(self.chain_kind or "-"))
        self.job_info: dict[str, Any] | None = None
        if job_info and bundle is not None:
            self.job_info = agent_job_info(bundle) or None

    @staticmethod
    def parts_for(keys: Iterable[str] | None) -> frozenset[str]:
        """The bundle parts (:data:`~wmstats.schema.BUNDLE_PARTS`) a view reading
        ``keys`` needs (``None``: the whole cache entry, ``AgentJobInfo`` included)."""
        wanted = set(REQUEST_KEYS) if keys is None else set(keys)
        parts = {"chain"}
        for key, needs in _PARTS_FOR.items():
            if key in wanted:
                parts.update(needs)
        return frozenset(parts)

    @staticmethod
    def needs_bundle(workflow: Workflow, keys: Iterable[str]) -> bool:
        """Whether reading ``keys`` of this request needs its bundle: the keys read
        from other records, and a chain's keys (read level by level)."""
        for key in keys:
            if key in _BUNDLE_KEYS:
                return True
            if workflow.ChainLength and (REQUEST_KEYS[key].chain
                                         or key in ("TaskChain", "StepChain")):
                return True
        return False

    def _top(self, key: str) -> Any:
        spec = REQUEST_KEYS.get(key)
        return _ABSENT if spec is None else spec.top(self)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as ``RequestInfo.get`` reads it.

        For a TaskChain or StepChain: when any of its tasks/steps holds the key,
        the distinct values over them (a task without the key contributes the
        top-level value; ``None`` and ``""`` are left out, lists flattened), in
        first-seen order; otherwise the top-level value, an object becoming the
        list of its values.  Else the top-level value, or ``default``.
        """
        top = self._top(key)
        if self.chain_kind:
            fallback = default if top is _ABSENT else top
            if any(key in level.Keys for level in self.tasks):
                merged: dict[Any, None] = {}
                for level in self.tasks:
                    value = _level_value(level, key)
                    if value is _ABSENT:
                        value = fallback
                    if value is None or value == "":
                        continue
                    if isinstance(value, list):
                        merged.update(dict.fromkeys(value))
                    else:
                        merged[value] = None
                return list(merged)
            if isinstance(fallback, dict) and key not in _KEEP_OBJECTS:
                return list(fallback.values())
            return fallback
        return default if top is _ABSENT else top

    def matches(self, conditions: Iterable[Condition]) -> bool:
        """``andFilterCheck``: every condition holds (see :class:`Condition`)."""
        for condition in conditions:
            if condition.key == "AgentJobInfo":
                if not self.cleaned():
                    return False
                continue
            value = self.get(condition.key)
            if value is None:
                return False
            wanted = condition.values
            if isinstance(value, list):
                if not any(item in wanted for item in value):
                    return False
            elif value not in wanted:
                return False
        return True

    def cleaned(self) -> bool:
        """Whether no agent report attached holds a job counter (``isWorkflowCleaned``);
        true when none is attached."""
        bundle = self.bundle
        if self.job_info is None or bundle is None:
            return True
        return not any(any(getattr(r, f) for f in _NESTED_FIELDS)
                       for r in bundle.agent_requests)

    def masked(self, masks: Sequence[str]) -> dict[str, Any]:
        """``{mask: get(mask), ..., "RequestName": name}`` (``RequestName`` added last
        unless masked already)."""
        row = {key: self.get(key) for key in masks}
        if "RequestName" not in row:
            row["RequestName"] = self.workflow.RequestName
        return row

    def document(self) -> dict[str, Any]:
        """The request's cache entry: its request document, rebuilt from the records
        for every key they carry (absent keys left out), and ``AgentJobInfo`` when
        attached."""
        wf = self.workflow
        doc: dict[str, Any] = {"_id": wf.RequestName}
        for name, spec in REQUEST_KEYS.items():
            if name == "AgentJobInfo":
                continue
            value = spec.top(self)
            if value is not _ABSENT:
                doc[name] = value
        if self.chain_kind:
            name_key = f"{self.chain_kind}Name"
            for level in self.tasks:
                sub: dict[str, Any] = {}
                if name_key in level.Keys:
                    sub[name_key] = level.Name
                for key in CHAIN_ARG_KEYS:
                    value = _level_value(level, key)
                    if value is not _ABSENT:
                        sub[key] = value
                doc[level.ChainKey] = sub
        if self.job_info is not None:
            doc["AgentJobInfo"] = self.job_info
        return doc


# --------------------------------------------------------------------------- agents

#: Counter field -> (outer key, inner key or None) of WMCore's nested ``status``.
_NEST: Final[dict[str, tuple[str, str | None]]] = {
    field: ((path.split(".")[0], path.split(".")[1]) if "." in path else (path, None))
    for field, path in COUNTER_SOURCES.items()}
#: The counters WMCore's ``status`` dictionaries hold (``OtherJobs`` is ours).
_NESTED_FIELDS: Final = tuple(f for f in COUNTER_FIELDS if f in _NEST)


def _nested(record: Any) -> dict[str, Any]:
    """A record's counters in WMCore's nested shape, zeros left out (as agents send)."""
    out: dict[str, Any] = {}
    for field in _NESTED_FIELDS:
        value = getattr(record, field)
        if not value:
            continue
        outer, inner = _NEST[field]
        if inner is None:
            out[outer] = value
        else:
            out.setdefault(outer, {})[inner] = value
    return out


def agent_job_info(bundle: WorkflowBundle) -> dict[str, Any]:
    """``AgentJobInfo``: ``{agent_url: agent_request document}`` rebuilt from the
    bundle's agent reports, site, task and task-site records (empty without any).

    Not carried, so not rebuilt: ``_id``, ``_rev``, ``agent``, the counters under
    status names WMCore does not know (``OtherJobs``), the output datasets of each
    task at each site (``dataset``), performance values that were all zero, and
    an empty ``agent_team`` or ``agent_version``.
    """
    name = bundle.workflow.RequestName
    docs: dict[str, dict[str, Any]] = {}

    def agent_doc(url: str) -> dict[str, Any]:
        doc = docs.get(url)
        if doc is None:
            doc = docs[url] = {"agent_url": url, "sites": {}, "tasks": {},
                               "type": "agent_request", "workflow": name}
        return doc

    for report in bundle.agent_requests:
        doc = agent_doc(report.Agent)
        doc.update({"status": _nested(report), "timestamp": report.Timestamp})
        # empty text: not sent (the records do not tell it from a missing key)
        if report.AgentTeam:
            doc["agent_team"] = report.AgentTeam
        if report.AgentVersion:
            doc["agent_version"] = report.AgentVersion
    for site in bundle.sites:
        agent_doc(site.Agent)["sites"][site.Site] = _nested(site)
    for task in bundle.tasks:
        entry: dict[str, Any] = {
            "jobtype": task.JobType,
            "subscription_status": {"finished": task.SubscriptionFinished,
                                    "open": task.SubscriptionOpen,
                                    "total": task.SubscriptionTotal,
                                    "updated": task.SubscriptionUpdated}}
        status = _nested(task)
        if status:
            entry["status"] = status
        if task.SkippedFiles:
            entry["skipped"] = {"skippedFiles": task.SkippedFiles}
        agent_doc(task.Agent)["tasks"][task.Task] = entry
    for ts in bundle.task_sites:
        site_entry = _nested(ts)
        if ts.TotalJobCPU or ts.TotalEventCPU or ts.TotalJobTime or ts.InputEvents \
                or ts.WrappedTotalJobTime:
            site_entry["cmsRunCPUPerformance"] = {"totalJobCPU": ts.TotalJobCPU,
                                                  "totalEventCPU": ts.TotalEventCPU,
                                                  "totalJobTime": ts.TotalJobTime}
            site_entry["inputEvents"] = ts.InputEvents
            site_entry["wrappedTotalJobTime"] = ts.WrappedTotalJobTime
        task_doc = agent_doc(ts.Agent)["tasks"].setdefault(ts.Task, {})
        task_doc.setdefault("sites", {})[ts.Site] = site_entry
    return {url: docs[url] for url in sorted(docs)}


# --------------------------------------------------------------------------- API values


def _flat(value: Any) -> Iterator[Any]:
    """``DataCache.filterData``: a list's items, or a value that is neither ``None``
    nor ``""``."""
    if isinstance(value, list):
        yield from value
    elif value is not None and value != "":
        yield value


def global_locks(view: RequestView) -> Iterator[Any]:
    """The ``globallocks`` values of one request in :data:`LOCK_STATUSES`: its input,
    output, MC and data pileup datasets, chains merged, not de-duplicated."""
    for key in LOCK_KEYS:
        yield from _flat(view.get(key, []))


def protected_lfns(view: RequestView) -> Iterator[Any]:
    """The ``protectedlfns`` values of one request in :data:`LOCK_STATUSES`: every
    unmerged LFN base of its output modules, transient ones included."""
    yield from _flat(view.get("OutputModulesLFNBases", []))


def final_output_lfns(workflow: Workflow) -> Iterator[str]:
    """The ``protectedlfns_final`` values of one request in :data:`LOCK_STATUSES`
    (``Request.protectedLFNs``): for each output dataset ``/<primary>/<era>-<rest>/<tier>``,
    ``<UnmergedLFNBase>/<era>/<primary>/<tier>/<rest>``.

    A name that is not of that form has no such path (reqmon fails the whole
    answer on it): it is left out.
    """
    base = workflow.UnmergedLFNBase or DEFAULT_UNMERGED_BASE
    for dataset in workflow.OutputDatasets:
        parts = dataset.split("/")
        if len(parts) != 4 or "-" not in parts[2]:
            continue
        primary, processed, tier = parts[1:]
        era, rest = processed.split("-", 1)
        yield "/".join([base, era, primary, tier, rest])


#: The job counters a task's total counts (``JobSummary.getTotalJobs``).
_TOTAL_FIELDS: Final = (
    "Success", "Canceled", "Transition", "FailureCreate", "FailureSubmit",
    "FailureException", "CooloffCreate", "CooloffSubmit", "CooloffJob", "PausedCreate",
    "PausedSubmit", "PausedJob", "QueuedFirst", "QueuedRetry", "SubmittedRunning",
    "SubmittedPending")
#: ... and its completed jobs (``getCompleted``).
_COMPLETED_FIELDS: Final = ("Success", "FailureCreate", "FailureSubmit", "FailureException")


def is_finished(bundle: WorkflowBundle) -> bool:
    """``isfinished``: every task the agents report has jobs, all of them completed
    (their counters summed over agents); false without any task."""
    totals: dict[str, list[int]] = {}
    for task in bundle.tasks:
        into = totals.setdefault(task.Task, [0, 0])
        into[0] += sum(getattr(task, f) for f in _TOTAL_FIELDS)
        into[1] += sum(getattr(task, f) for f in _COMPLETED_FIELDS)
    if not totals:
        return False
    return all(total != 0 and total == completed for total, completed in totals.values())


def agent_teams(agents: Iterable[Agent]) -> list[str]:
    """``teams``: the distinct non-empty teams of the agents' heartbeats, in the
    order of the agents given."""
    return list(dict.fromkeys(a.AgentTeam for a in agents if a.AgentTeam))
