"""What the UI server's JSON endpoints accept and return (pure: no I/O).

The page speaks a small vocabulary of its own (``status``, ``campaign``, ``q``,
``sort=-priority``...), which is also what its URL holds; this module checks it
by whitelist (:func:`parse_view`) and translates it to the cache server's query
parameters (:meth:`View.cache_filters`).  Its filters and grouping views are the
aggregates of :data:`wmstats.aggregates.AGGREGATES` (:data:`PAGE_CONFIG` tells
the page which).  The other direction, cache records to
the compact rows the page draws, is :func:`workflow_row`, :func:`job_groups`,
:func:`summary_item` and :func:`workflow_detail`.

Job figures (the columns operators read):

* ``queued`` = QueuedFirst + QueuedRetry; ``pending`` = SubmittedPending;
  ``running`` = SubmittedRunning; ``cooloff`` = Cooloff*; ``paused`` = Paused*;
  ``success``; ``failure`` = Failure*; ``canceled``; ``other`` = Transition +
  OtherJobs;
* ``created`` = every job the agents report: success + canceled + transition +
  failure + cooloff + paused + queued + SubmittedFirst + SubmittedRetry + OtherJobs;
* job progress = (success + failure + canceled) / created;
* failure rate = failure / (success + failure);
* event progress = the lowest, over the output datasets, of events written /
  events expected (``TotalInputEvents``, or ``RequestNumEvents`` for requests
  generated from scratch), capped at 1.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from wmstats.aggregates import AGGREGATES
from wmstats.alerts import ALERT_KINDS
from wmstats.schema import ALERT_SEVERITIES, COUNTER_FIELDS
from wmstats.web._errors import ApiError

__all__ = [
    "FILTERS",
    "TEXT_FILTERS",
    "SORTS",
    "GROUPS",
    "FILTER_PATHS",
    "PAGE_CONFIG",
    "JOB_STATES",
    "ROW_FIELDS",
    "MAX_TEXT",
    "MAX_VALUES",
    "MAX_IDX",
    "MAX_LIMIT",
    "DEFAULT_LIMIT",
    "MAX_NAMES",
    "CONTROL_CLASS",
    "ApiParams",
    "ApiRoute",
    "API_ROUTES",
    "View",
    "parse_view",
    "parse_names",
    "job_groups",
    "workflow_row",
    "summary_item",
    "event_progress",
    "workflow_detail",
    "status_summary",
    "job_view",
    "alert_view",
    "parse_job_filters",
    "parse_alert_filters",
    "parse_alerts",
    "AlertQuery",
    "JOB_FILTERS",
    "ALERT_FILTERS",
    "ALERT_CHOICES",
    "ALERTS_SHOWN",
    "MAX_DRILL_VALUES",
    "DRILL_TEXT",
    "EXIT_CODE",
]

#: Page filter name (an aggregate key) -> the Workflow field it filters (exact
#: values, OR within one): one filter per aggregate.
FILTERS: Final[dict[str, str]] = {a.key: a.field for a in AGGREGATES}
#: Page text filter -> (the Workflow field it filters with a wildcard, its label): what
#: today's WMStats page lets operators type in (plain text matches anywhere).
TEXT_FILTERS: Final[dict[str, tuple[str, str]]] = {
    "input": ("InputDataset", "Input dataset"),
    "output": ("OutputDatasets", "Output dataset"),
    "prepid": ("PrepID", "PrepID"),
    "whitelist": ("SiteWhitelist", "Site whitelist"),
}
#: Page sort key -> the Workflow field it sorts by.
SORTS: Final[dict[str, str]] = {
    "name": "RequestName",
    "status": "RequestStatus",
    "type": "RequestType",
    "campaign": "Campaign",
    "priority": "RequestPriority",
    "changed": "StatusTime",
    "date": "RequestDate",
    "update": "AgentUpdate",
    "estimated": "TotalEstimatedJobs",
    "pending": "SubmittedPending",
    "running": "SubmittedRunning",
    "success": "Success",
}
#: Grouping view -> the cache server's collection path (the aggregates with a view).
GROUPS: Final[dict[str, str]] = {a.key: a.segment for a in AGGREGATES if a.view}
#: Page filter name -> the cache server's collection listing its values (with
#: workflow counts): what ``/api/filters`` shows.
FILTER_PATHS: Final[dict[str, str]] = {a.key: a.segment for a in AGGREGATES}
#: What the page builds its filter controls and grouping views from, in display
#: order: ``[name, label]`` pairs (the UI server writes it into ``index.html``).
PAGE_CONFIG: Final[dict[str, list[list[str]]]] = {
    "filters": [[a.key, a.label] for a in AGGREGATES],
    "groups": [[a.key, a.label] for a in AGGREGATES if a.view],
    "texts": [[key, label] for key, (_field, label) in TEXT_FILTERS.items()],
}
#: Job states shown (table columns, chart bars), in display order.
JOB_STATES: Final[tuple[str, ...]] = (
    "queued", "pending", "running", "cooloff", "paused", "success", "failure", "canceled",
    "other")
#: The Workflow fields a table row needs (the cache server's field mask).
ROW_FIELDS: Final[tuple[str, ...]] = (
    "RequestName", "RequestStatus", "RequestType", "Campaign", "Teams", "Agents",
    "RequestPriority", "StatusTime", "AgentUpdate", "TotalEstimatedJobs",
    *COUNTER_FIELDS)

#: The most values of one page filter.
MAX_VALUES: Final = 200
#: The longest filter value or name search.
MAX_TEXT: Final = 300
#: The largest ``idx``.
MAX_IDX: Final = 10_000_000
#: Rows per page: ``limit`` is 1 to this.
MAX_LIMIT: Final = 200
#: Rows per page without ``limit``.
DEFAULT_LIMIT: Final = 50
#: Workflows one ``/api/events`` request may ask about: each costs the cache
#: server one request, so this bounds the fan-out of one browser request (the
#: page asks in chunks of 25, ``EVENTS_CHUNK`` in ``app.js``).
MAX_NAMES: Final = 25
#: The characters a filter value or name search may not hold (control characters).
CONTROL_CLASS: Final = "\\x00-\\x1f\\x7f"
_CONTROL: Final = re.compile(f"[{CONTROL_CLASS}]")
_DIGITS: Final = re.compile("[0-9]{1,9}")


class ApiParams(enum.Enum):
    """Which query parameters a ``/api/*`` endpoint accepts (anything else: 400)."""

    #: filters, ``q``, ``sort``, ``idx``, ``limit`` (:func:`parse_view`)
    PAGED = "paged"
    #: filters and ``q`` (:func:`parse_view` with ``paged=False``)
    VIEW = "view"
    #: ``name``, repeated (:func:`parse_names`)
    NAMES = "names"
    #: the job view's filters (:func:`parse_job_filters`)
    JOBS = "jobs"
    #: the alerts tab's filters and ``limit`` (:func:`parse_alerts`)
    ALERTS = "alerts"
    #: none
    NONE = "none"


@attrs.frozen
class ApiRoute:
    """One ``/api/<name>`` endpoint of the UI server: the dispatcher
    (:mod:`wmstats.web.ui`) and its OpenAPI document
    (:mod:`wmstats.web._ui_openapi`) both read it.

    :param name: the path segment after ``/api/``.
    :param item: the name of the path value after it (``None``: no value).
    :param params: the query parameters accepted.
    :param summary: one line for the OpenAPI document.
    """

    name: str
    item: str | None
    params: ApiParams
    summary: str

    @property
    def path(self) -> str:
        """The OpenAPI path (``/api/groups/{by}``)."""
        return f"/api/{self.name}" + (f"/{{{self.item}}}" if self.item else "")


#: Every ``/api/<name>`` endpoint.
API_ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute("workflows", None, ApiParams.PAGED, "One page of table rows."),
    ApiRoute("summary", None, ApiParams.VIEW,
             "Jobs by state and workflows by status of the filtered workflows."),
    ApiRoute("filters", None, ApiParams.NONE,
             "The values of every filter with workflow counts."),
    ApiRoute("groups", "by", ApiParams.VIEW,
             "One row per value with summed counters, for the filtered workflows."),
    ApiRoute("workflow", "name", ApiParams.NONE,
             "One workflow: tasks, sites, output datasets, status history."),
    ApiRoute("events", None, ApiParams.NAMES, "Event progress of some workflows."),
    ApiRoute("agents", None, ApiParams.NONE,
             "Every agent's heartbeat (with its derived status and why) and job counters."),
    ApiRoute("jobs", "name", ApiParams.JOBS,
             "The job view of one workflow: tasks, then state, exit code and site with "
             "their jobs and sample errors."),
    ApiRoute("alerts", None, ApiParams.ALERTS, "What needs attention now."),
    ApiRoute("status", None, ApiParams.NONE,
             "Whether the cache server answers, and how old its data is."),
)


@attrs.frozen
class View:
    """A validated page view: filters, name search, sort and page.

    :param filters: page filter name -> values (OR), only non-empty ones.
    :param q: name search as given (``*``/``?`` wildcards; plain text matches
        anywhere in the name).
    :param sort: page sort key, ``-`` prefixed for descending, or ``""``.
    :param idx: offset of the first row.
    :param limit: rows per page.
    :param texts: text filters (:data:`TEXT_FILTERS`), each like ``q``.
    """

    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    q: str = ""
    sort: str = ""
    idx: int = 0
    limit: int = DEFAULT_LIMIT
    texts: tuple[tuple[str, str], ...] = ()

    def cache_filters(self) -> dict[str, list[str]]:
        """The filters as cache server query parameters (``RequestStatus.eq``...)."""
        out: dict[str, list[str]] = {
            f"{FILTERS[name]}.eq": list(values) for name, values in self.filters}
        if self.q:
            out["RequestName.glob"] = [_pattern(self.q)]
        for name, text in self.texts:
            out[f"{TEXT_FILTERS[name][0]}.glob"] = [_pattern(text)]
        return out

    def cache_sort(self) -> str | None:
        """The sort as the cache server's ``sort`` parameter, if any."""
        if not self.sort:
            return None
        desc = self.sort.startswith("-")
        return ("-" if desc else "") + SORTS[self.sort.lstrip("-")]

    def key(self) -> str:
        """A canonical string of the filters and search (for caching answers)."""
        parts = [f"{name}={','.join(sorted(values))}" for name, values in self.filters]
        parts += [f"{name}~{text}" for name, text in self.texts]
        return "&".join(sorted(parts)) + f"&q={self.q}"


def _pattern(text: str) -> str:
    """A search text as a wildcard: as given with ``*``/``?``, else anywhere."""
    return text if ("*" in text or "?" in text) else f"*{text}*"


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.pop(name, None)
    if values is None:
        return None
    if len(values) != 1:
        raise ApiError(400, "given more than once", parameter=name)
    return values[0]


def _text(name: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise ApiError(400, f"longer than {MAX_TEXT} characters", parameter=name)
    if _CONTROL.search(value):
        raise ApiError(400, "control characters are not allowed", parameter=name)
    return value


def _int(name: str, value: str, low: int, high: int) -> int:
    if not _DIGITS.fullmatch(value):
        raise ApiError(400, f"expected a whole number, got {value[:40]!r}", parameter=name)
    number = int(value)
    if not low <= number <= high:
        raise ApiError(400, f"must be between {low} and {high}, got {number}",
                       parameter=name)
    return number


def parse_view(params: Mapping[str, Sequence[str]], *, paged: bool = True,
               filters: bool = True) -> View:
    """Check the page's parameters by whitelist and build a :class:`View`.

    :param params: parameter -> values, as from a query string.
    :param paged: whether ``sort``, ``idx`` and ``limit`` are accepted.
    :param filters: whether filters and ``q`` are accepted.
    :raises ApiError: 400 naming the first unknown or bad parameter.
    """
    rest = {key: list(values) for key, values in params.items()}
    found: list[tuple[str, tuple[str, ...]]] = []
    texts: list[tuple[str, str]] = []
    q = ""
    sort = ""
    idx, limit = 0, DEFAULT_LIMIT
    if filters:
        for name in FILTERS:
            raw = rest.pop(name, None)
            if raw is None:
                continue
            if len(raw) > MAX_VALUES:  # as given, repeats and empty ones too
                raise ApiError(400, f"at most {MAX_VALUES} values", parameter=name)
            values = tuple(dict.fromkeys(_text(name, v) for v in raw if v != ""))
            if values:
                found.append((name, values))
        # Checked as given, then stripped (what the schema of ``q`` says).
        q = _text("q", _one(rest, "q") or "").strip()
        for name in TEXT_FILTERS:
            text = _text(name, _one(rest, name) or "").strip()
            if text:
                texts.append((name, text))
    if paged:
        raw_sort = _one(rest, "sort")
        if raw_sort:
            if raw_sort.lstrip("-") not in SORTS or raw_sort.startswith("--"):
                raise ApiError(400, f"unknown sort key {raw_sort[:40]!r} (known: "
                                    f"{', '.join(SORTS)}, '-' for descending)",
                               parameter="sort")
            sort = raw_sort
        raw_idx = _one(rest, "idx")
        if raw_idx is not None:
            idx = _int("idx", raw_idx, 0, MAX_IDX)
        raw_limit = _one(rest, "limit")
        if raw_limit is not None:
            limit = _int("limit", raw_limit, 1, MAX_LIMIT)
    for key in rest:
        known = ([*FILTERS, "q", *TEXT_FILTERS] if filters else []) + (
            ["sort", "idx", "limit"] if paged else [])
        raise ApiError(400, f"unknown parameter {key[:60]!r}" + (
            f" (known: {', '.join(known)})" if known else "; this endpoint takes none"),
            parameter=key[:60])
    return View(tuple(found), q, sort, idx, limit, tuple(texts))


def parse_names(params: Mapping[str, Sequence[str]]) -> list[str]:
    """The workflow names of ``/api/events`` (``name``, repeated; empty ones
    ignored), checked by whitelist.

    :raises ApiError: 400 for another parameter or more than :data:`MAX_NAMES` names.
    """
    for key in params:
        if key != "name":
            raise ApiError(400, f"unknown parameter {key[:60]!r} (known: name)",
                           parameter=key[:60])
    names = list(params.get("name", ()))
    if len(names) > MAX_NAMES:
        raise ApiError(400, f"at most {MAX_NAMES} names", parameter="name")
    return list(dict.fromkeys(n for n in names if n))


def _get(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def job_groups(record: Mapping[str, Any]) -> dict[str, int]:
    """The job figures of a record holding the counter fields (see the module doc)."""
    g = {name: _get(record, name) for name in COUNTER_FIELDS}
    out = {
        "queued": g["QueuedFirst"] + g["QueuedRetry"],
        "pending": g["SubmittedPending"],
        "running": g["SubmittedRunning"],
        "cooloff": g["CooloffCreate"] + g["CooloffSubmit"] + g["CooloffJob"],
        "paused": g["PausedCreate"] + g["PausedSubmit"] + g["PausedJob"],
        "success": g["Success"],
        "failure": g["FailureCreate"] + g["FailureSubmit"] + g["FailureException"],
        "canceled": g["Canceled"],
        "other": g["Transition"] + g["OtherJobs"],
    }
    out["created"] = (out["queued"] + g["SubmittedFirst"] + g["SubmittedRetry"]
                      + out["cooloff"] + out["paused"] + out["success"] + out["failure"]
                      + out["canceled"] + out["other"])
    return out


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def _figures(jobs: Mapping[str, int]) -> dict[str, float | None]:
    done = jobs["success"] + jobs["failure"] + jobs["canceled"]
    return {"jobProgress": _ratio(done, jobs["created"]),
            "failureRate": _ratio(jobs["failure"], jobs["success"] + jobs["failure"])}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def workflow_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One table row from a cache record masked to :data:`ROW_FIELDS`."""
    jobs = job_groups(record)
    return {
        "name": str(record.get("RequestName", "")),
        "status": str(record.get("RequestStatus", "")),
        "type": str(record.get("RequestType", "")),
        "campaign": str(record.get("Campaign", "")),
        "teams": _strings(record.get("Teams")),
        "agents": len(_strings(record.get("Agents"))),
        "priority": _get(record, "RequestPriority"),
        "statusTime": _get(record, "StatusTime"),
        "agentUpdate": _get(record, "AgentUpdate"),
        "estimated": _get(record, "TotalEstimatedJobs"),
        "jobs": jobs,
        **_figures(jobs),
    }


def _statuses(summary: Mapping[str, Any]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for item in summary.get("WorkflowsByStatus") or ():
        if isinstance(item, Mapping):
            out.append([str(item.get("RequestStatus", "")), _get(item, "Workflows")])
    return out


def summary_item(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A grouping row (campaign, site, agent, release) from a cache summary."""
    jobs = job_groups(summary)
    return {"value": str(summary.get("Value", "")), "workflows": _get(summary, "Workflows"),
            "statuses": _statuses(summary), "jobs": jobs, **_figures(jobs)}


def event_progress(workflow: Mapping[str, Any],
                   datasets: Iterable[Mapping[str, Any]]) -> float | None:
    """Events written / expected for the output dataset furthest behind (capped at 1).

    ``None`` when the request has no output dataset or no expected event count.
    """
    expected = _get(workflow, "TotalInputEvents") or _get(workflow, "RequestNumEvents")
    if expected <= 0:
        return None
    outputs = _strings(workflow.get("OutputDatasets"))
    written = {str(d.get("Dataset", "")): _get(d, "Events") for d in datasets}
    names = outputs or list(written)
    if not names:
        return None
    return round(min(1.0, min(written.get(n, 0) for n in names) / expected), 4)


def _merge(rows: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Counter records summed over agents per ``key`` value, sorted by it."""
    sums: dict[str, dict[str, int]] = {}
    agents: dict[str, list[str]] = {}
    for row in rows:
        value = str(row.get(key, ""))
        into = sums.setdefault(value, dict.fromkeys(COUNTER_FIELDS, 0))
        for name in COUNTER_FIELDS:
            into[name] += _get(row, name)
        agent = str(row.get("Agent", ""))
        if agent and agent not in agents.setdefault(value, []):
            agents[value].append(agent)
    out = []
    for value in sorted(sums):
        jobs = job_groups(sums[value])
        out.append({"value": value, "agents": agents.get(value, []), "jobs": jobs,
                    **_figures(jobs)})
    return out


def workflow_detail(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The detail view of one workflow from the cache's ``/fetch/<workflow>`` document."""
    wf: Mapping[str, Any] = doc.get("workflow") or {}
    datasets = [d for d in doc.get("datasets") or () if isinstance(d, Mapping)]
    tasks = [t for t in doc.get("tasks") or () if isinstance(t, Mapping)]
    expected = _get(wf, "TotalInputEvents") or _get(wf, "RequestNumEvents")
    jobtypes: dict[str, str] = {}
    for task in tasks:
        jobtypes.setdefault(str(task.get("Task", "")), str(task.get("JobType", "")))
    task_rows = _merge(tasks, "Task")
    for row in task_rows:
        row["jobType"] = jobtypes.get(row["value"], "")
    meta = {key: value for key, value in wf.items() if key not in COUNTER_FIELDS}
    jobs = job_groups(wf)
    return {
        "snapshot": str(doc.get("snapshot", "")),
        "name": str(wf.get("RequestName", "")),
        "meta": meta,
        "jobs": jobs,
        **_figures(jobs),
        "eventProgress": event_progress(wf, datasets),
        "transitions": [t for t in doc.get("transitions") or () if isinstance(t, Mapping)],
        "tasks": task_rows,
        "sites": _merge((s for s in doc.get("sites") or () if isinstance(s, Mapping)),
                        "Site"),
        "datasets": [{"dataset": str(d.get("Dataset", "")), "events": _get(d, "Events"),
                      "size": _get(d, "Size"), "lumis": _get(d, "Lumis"),
                      "progress": (round(min(1.0, _get(d, "Events") / expected), 4)
                                   if expected > 0 else None)} for d in datasets],
    }


def status_summary(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Jobs by state and workflows by status from the cache's per-status summaries.

    :param summaries: the ``/status`` listing (one summary per ``RequestStatus``,
        counters summed over the workflows in it), for the filters of a view.
    :returns: ``{"workflows", "jobs", "statuses"}``; statuses most frequent first.
    """
    totals = dict.fromkeys(COUNTER_FIELDS, 0)
    statuses: list[list[Any]] = []
    for summary in summaries:
        for name in COUNTER_FIELDS:
            totals[name] += _get(summary, name)
        statuses.append([str(summary.get("Value", "")), _get(summary, "Workflows")])
    statuses.sort(key=lambda item: (-item[1], item[0]))
    return {"workflows": sum(n for _, n in statuses), "jobs": job_groups(totals),
            "statuses": statuses}


# --------------------------------------------------------------------------- jobs, alerts

#: The job view's filters (the cache server's ``/jobs`` parameters of the same names).
JOB_FILTERS: Final = ("task", "state", "exitcode", "site")
#: The alerts tab's filters (the cache server's ``/alerts`` parameters).
ALERT_FILTERS: Final = ("kind", "severity", "workflow", "agent", "site")
#: The values each alerts filter is limited to (the cache server's choices); others free.
ALERT_CHOICES: Final[dict[str, tuple[str, ...]]] = {"kind": ALERT_KINDS,
                                                    "severity": ALERT_SEVERITIES}
#: Alerts sent to the page at most (the count covers them all).
ALERTS_SHOWN: Final = 1000
#: The most values of one job or alerts filter, counted as given (the cache server
#: takes at most 100 after splitting on commas, which these values may not hold).
MAX_DRILL_VALUES: Final = 100
#: A job or alerts filter value: no comma (the cache server would split it), no
#: control character, at most :data:`MAX_TEXT` characters.
DRILL_TEXT: Final = f"[^,{CONTROL_CLASS}]{{0,{MAX_TEXT}}}"
#: An ``exitcode`` value (or empty: ignored).
EXIT_CODE: Final = "(-?[0-9]{1,11})?"
_DRILL_TEXT: Final = re.compile(DRILL_TEXT)
_EXIT_CODE: Final = re.compile(EXIT_CODE)


def _values(params: dict[str, list[str]], names: Sequence[str],
            choices: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in names:
        raw = params.pop(name, None)
        if raw is None:
            continue
        if len(raw) > MAX_DRILL_VALUES:  # as given, repeats and empty ones too
            raise ApiError(400, f"at most {MAX_DRILL_VALUES} values", parameter=name)
        for value in raw:
            _text(name, value)
            if not _DRILL_TEXT.fullmatch(value):
                raise ApiError(400, "commas are not allowed (repeat the parameter)",
                               parameter=name)
            if name in choices and value and value not in choices[name]:
                raise ApiError(400, f"unknown value {value[:60]!r} (known: "
                                    f"{', '.join(choices[name])})", parameter=name)
        values = [v for v in raw if v != ""]
        if values:
            out[name] = values
    for key in params:
        raise ApiError(400, f"unknown parameter {key[:60]!r} (known: {', '.join(names)})",
                       parameter=key[:60])
    return out


def parse_job_filters(params: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The job view's filters, checked: ``task``, ``state``, ``exitcode``, ``site``."""
    rest = {k: list(v) for k, v in params.items()}
    for code in rest.get("exitcode", ()):
        if not _EXIT_CODE.fullmatch(code):
            raise ApiError(400, f"expected an exit code, got {code[:40]!r}",
                           parameter="exitcode")
    return _values(rest, JOB_FILTERS, {})


def parse_alert_filters(params: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The alerts tab's filters, checked: ``kind``, ``severity`` (one of
    :data:`ALERT_CHOICES`), ``workflow``, ``agent``, ``site``."""
    return _values({k: list(v) for k, v in params.items()}, ALERT_FILTERS, ALERT_CHOICES)


@attrs.frozen
class AlertQuery:
    """A validated ``/api/alerts`` request.

    :param where: the filters (:func:`parse_alert_filters`).
    :param limit: alerts sent: :data:`ALERTS_SHOWN`, or 0 for the counts alone.
    """

    where: dict[str, list[str]]
    limit: int


def parse_alerts(params: Mapping[str, Sequence[str]]) -> AlertQuery:
    """The parameters of ``/api/alerts``: its filters and ``limit`` (0 or
    :data:`ALERTS_SHOWN`)."""
    rest = {k: list(v) for k, v in params.items()}
    raw_limit = rest.pop("limit", None)
    limit = ALERTS_SHOWN
    if raw_limit is not None:
        if len(raw_limit) != 1 or raw_limit[0] not in ("0", str(ALERTS_SHOWN)):
            raise ApiError(400, f"limit is 0 (the counts alone) or {ALERTS_SHOWN}",
                           parameter="limit")
        limit = int(raw_limit[0])
    return AlertQuery(parse_alert_filters(rest), limit)


def _short_task(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[1:]) or path


def _sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "job": str(sample.get("JobName", "")), "agent": str(sample.get("Agent", "")),
        "wmbsId": _get(sample, "WMBSId"), "jobType": str(sample.get("JobType", "")),
        "retryCount": _get(sample, "RetryCount"), "step": str(sample.get("Step", "")),
        "errorType": str(sample.get("ErrorType", "")),
        "errorExitCode": _get(sample, "ErrorExitCode"),
        "errorTypes": _strings(sample.get("ErrorTypes")),
        "details": str(sample.get("Details", "")),
        "logArchive": str(sample.get("LogArchive", "")),
        "logUrl": str(sample.get("LogURL", "")),
        "logCollect": _strings(sample.get("LogCollect")),
        "workerNode": str(sample.get("WorkerNode", "")),
        "inputFiles": _strings(sample.get("InputFiles")),
        "time": _get(sample, "Timestamp"),
    }


def job_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The job view of one workflow from the cache's ``/jobs/<workflow>`` document:
    per task (most jobs first), its (state, exit code, site) groups with their jobs
    (summed over agents), agents and sample jobs; and the jobs per state, exit code
    and site of the whole workflow (the view's filters)."""
    groups: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    states: dict[str, int] = {}
    codes: dict[int, int] = {}
    sites: dict[str, int] = {}
    for g in doc.get("groups") or ():
        if not isinstance(g, Mapping):
            continue
        key = (str(g.get("Task", "")), str(g.get("State", "")), _get(g, "ExitCode"),
               str(g.get("Site", "")))
        jobs = _get(g, "Jobs")
        row = groups.setdefault(key, {"state": key[1], "exitCode": key[2], "site": key[3],
                                      "jobs": 0, "agents": [], "samples": []})
        row["jobs"] += jobs
        agent = str(g.get("Agent", ""))
        if agent and agent not in row["agents"]:
            row["agents"].append(agent)
        states[key[1]] = states.get(key[1], 0) + jobs
        codes[key[2]] = codes.get(key[2], 0) + jobs
        sites[key[3]] = sites.get(key[3], 0) + jobs
    for s in doc.get("samples") or ():
        if not isinstance(s, Mapping):
            continue
        key = (str(s.get("Task", "")), str(s.get("State", "")), _get(s, "ExitCode"),
               str(s.get("Site", "")))
        if key in groups:
            groups[key]["samples"].append(_sample(s))
    tasks: dict[str, dict[str, Any]] = {}
    for (task, _state, _code, _site), row in groups.items():
        entry = tasks.setdefault(task, {"task": task, "short": _short_task(task), "jobs": 0,
                                        "groups": []})
        entry["jobs"] += row["jobs"]
        entry["groups"].append(row)
    for entry in tasks.values():
        entry["groups"].sort(key=lambda r: (-r["jobs"], r["state"], r["exitCode"], r["site"]))

    def ranked(counts: Mapping[Any, int]) -> list[list[Any]]:
        return [[k, n] for k, n in sorted(counts.items(), key=lambda i: (-i[1], str(i[0])))]

    return {
        "name": str(doc.get("workflow", "")),
        "snapshot": str(doc.get("snapshot", "")),
        "total": _get(doc, "jobs"),
        "tasks": sorted(tasks.values(), key=lambda t: (-t["jobs"], t["task"])),
        "states": ranked(states), "exitCodes": ranked(codes), "sites": ranked(sites),
    }


def alert_view(alerts: Iterable[Mapping[str, Any]], total: int, counts: Mapping[str, int],
               now: int) -> dict[str, Any]:
    """The alerts tab from the cache's alerts (at most :data:`ALERTS_SHOWN` of them)."""
    rows = []
    for a in alerts:
        rows.append({
            "kind": str(a.get("Kind", "")), "severity": str(a.get("Severity", "")),
            "workflow": str(a.get("RequestName", "")), "agent": str(a.get("AgentURL", "")),
            "agents": _strings(a.get("Agents")), "sites": _strings(a.get("Sites")),
            "status": str(a.get("RequestStatus", "")), "since": _get(a, "Since"),
            "message": str(a.get("Message", "")), "failed": _get(a, "Failed"),
            "success": _get(a, "Success"), "running": _get(a, "Running"),
            "pending": _get(a, "Pending"),
        })
    errors = sum(1 for r in rows if r["severity"] == "error")
    return {"total": total, "shown": len(rows), "truncated": total > len(rows),
            "counts": {str(k): int(v) for k, v in counts.items()}, "errors": errors,
            "now": now, "alerts": rows}
