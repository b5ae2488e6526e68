"""Alerts and each agent's derived status: WMStats' alert rules, on the records.

The rules are those of today's WMStats page (``WMStats.RequestSummary.js``,
``WMStats.Agents.js``; see ``docs/alerts.md``), with their thresholds in
:class:`AlertRules` so that a server's configuration can change them:

Request alerts (:func:`request_alerts`; requests in the ignored statuses
``closed-out``, ``announced``, ``aborted``, ``rejected`` get none but ``failed``
cannot be in them):

* ``failed`` (error): the request is ``failed`` or ``epic-FAILED``;
* ``config-error`` (error): it has failed, cooling-off or paused jobs and no
  successful one;
* ``site-error`` (error): failed + cooling-off + paused over all its finished
  ones (those plus success) above ``site_error_ratio`` (0.85), with some success;
* ``assigned-stall`` (warning): in ``assigned`` for longer than
  ``assigned_seconds`` (2 h): the global work queue has not pulled it;
* ``status-stall`` (warning, off by default as on today's page): in
  ``acquired`` / ``running-open`` / ``running-closed`` with no running job for
  longer than ``status_stall_seconds``.

Agent status (:func:`agent_status`): every rule that matches adds a reason; the
status is the worst of them (``ok`` < ``warning`` < ``error`` < ``down``):

* ``down``: no heartbeat for longer than ``agent_stale_seconds`` (1,200 s: two
  cycles of the agent's status poller);
* ``error``: components down, a data collection error, CouchDB processes over
  the agent's threshold, a proxy or certificate about to expire when the agent
  itself says ``error``, or the agent reporting ``error``/``down`` with none of
  these;
* ``warning``: a disk over its threshold, a proxy or certificate warning, or the
  agent reporting ``warning`` with none of these (a draining agent reports
  ``warning`` itself: that is the drain);
* draining adds a reason but not a worse status.

(Today's page applies its rules in a fixed order where a later, milder rule can
lower the status -- a full disk after maxed-out CouchDB processes shows
"warning"; here the worst one wins.)  Each agent reason that is not ``ok`` is
also an alert (``agent-down``, ``agent-components``, ``agent-data-error``,
``agent-couch``, ``agent-proxy``, ``agent-disk``, ``agent-status``).

:class:`AlertIndex` keeps the alerts of many workflows up to date from the
changes a store reports (no rescan of every workflow per request): the alerts
that do not depend on the time are kept per workflow, the ``assigned`` and
stalled workflows are kept sorted by status time, and the agents (a few dozen)
are evaluated when asked.  Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from wmstats.query.match import compile_glob
from wmstats.schema import (
    AGENT_STATUSES,
    ALERT_SEVERITIES,
    Agent,
    Alert,
    Workflow,
    WorkflowBundle,
    WorkflowSite,
)

__all__ = [
    "AlertRules",
    "AlertFilter",
    "AlertIndex",
    "REQUEST_KINDS",
    "AGENT_KINDS",
    "ALERT_KINDS",
    "agent_status",
    "derive_agent",
    "agent_alerts",
    "request_alerts",
    "failed_jobs",
    "format_duration",
]

#: Kinds of request alerts, in display order.
REQUEST_KINDS: Final[tuple[str, ...]] = (
    "failed", "config-error", "site-error", "assigned-stall", "status-stall")
#: Kinds of agent alerts, in display order.
AGENT_KINDS: Final[tuple[str, ...]] = (
    "agent-down", "agent-components", "agent-data-error", "agent-couch", "agent-proxy",
    "agent-disk", "agent-status")
#: Every alert kind.
ALERT_KINDS: Final[tuple[str, ...]] = REQUEST_KINDS + AGENT_KINDS
_FAILED_FIELDS: Final = ("FailureCreate", "FailureSubmit", "FailureException",
                         "CooloffCreate", "CooloffSubmit", "CooloffJob",
                         "PausedCreate", "PausedSubmit", "PausedJob")


def _non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def _ratio(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen(kw_only=True)
class AlertRules:
    """The thresholds of the alert rules (defaults: today's WMStats page).

    :param assigned_seconds: a request in ``assigned`` longer than this raises
        ``assigned-stall`` (0: never).
    :param status_stall_seconds: a request in ``acquired`` / ``running-open`` /
        ``running-closed`` with no running job for longer than this raises
        ``status-stall`` (0: never; today's page computes it for 2 days but does
        not show it).
    :param site_error_ratio: failed / (failed + success) above which a request with
        some success raises ``site-error``.
    :param agent_stale_seconds: an agent whose last heartbeat is older is ``down``.
    :param ignored_statuses: request statuses that raise no job alert.
    :param failed_statuses: request statuses that raise ``failed``.
    :param stall_statuses: statuses watched by ``status-stall``.
    """

    assigned_seconds: int = attrs.field(default=7200, validator=_non_negative)
    status_stall_seconds: int = attrs.field(default=0, validator=_non_negative)
    site_error_ratio: float = attrs.field(default=0.85, validator=_ratio)
    agent_stale_seconds: int = attrs.field(default=1200, validator=_non_negative)
    ignored_statuses: tuple[str, ...] = ("closed-out", "announced", "aborted", "rejected")
    failed_statuses: tuple[str, ...] = ("failed", "epic-FAILED")
    stall_statuses: tuple[str, ...] = ("acquired", "running-open", "running-closed")


def format_duration(seconds: float) -> str:
    """``2 d 3 h``, ``5 h 12 min``, ``7 min``, ``40 s``."""
    s = max(0, int(seconds))
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


# --------------------------------------------------------------------------- agents

_RANK: Final = {status: i for i, status in enumerate(AGENT_STATUSES)}


def _agent_reasons(agent: Agent, now: float | None,
                   rules: AlertRules) -> list[tuple[str, str, str]]:
    """(status, alert kind or "", reason) of every rule that matches."""
    out: list[tuple[str, str, str]] = []
    if now is not None and rules.agent_stale_seconds:
        if agent.Timestamp <= 0:
            out.append(("down", "agent-down", "no heartbeat time: the agent's status "
                                              "poller has never reported"))
        elif now - agent.Timestamp > rules.agent_stale_seconds:
            out.append(("down", "agent-down",
                        f"no heartbeat for {format_duration(now - agent.Timestamp)} "
                        f"(more than {format_duration(rules.agent_stale_seconds)}): "
                        f"AgentStatusWatcher is down"))
    if agent.DownComponents:
        text = "components or threads down: " + ", ".join(agent.DownComponents)
        out.append(("error", "agent-components", text))
    if agent.DataError and agent.DataError != "ok":
        out.append(("error", "agent-data-error", f"data collection error: {agent.DataError}"))
    if agent.CouchProcessWarning:
        out.append(("error", "agent-couch",
                    f"CouchDB processes maxed out: {agent.CouchProcessWarning}"))
    if agent.ProxyWarning:
        level = "error" if agent.Status == "error" else "warning"
        out.append((level, "agent-proxy", f"proxy or certificate expiring: "
                                          f"{agent.ProxyWarning.strip()}"))
    if agent.DiskWarning:
        disks = agent.DiskUsage or agent.DiskWarning
        out.append(("warning", "agent-disk", "disk almost full: " + ", ".join(disks)))
    if agent.DrainMode:
        out.append(("ok", "", "draining" + (" (all its workflows are completed)"
                                            if agent.DrainWorkflowsCompleted else "")))
    worst = max((_RANK[s] for s, kind, _ in out if kind), default=0)
    if agent.Status in ("error", "down") and worst < _RANK["error"]:
        out.append(("error", "agent-status", f"the agent reports status {agent.Status}"))
    elif agent.Status == "warning" and worst < _RANK["warning"] and not agent.DrainMode:
        # (a draining agent reports warning itself: draining explains it)
        out.append(("warning", "agent-status", "the agent reports status warning"))
    return out


def agent_status(agent: Agent, now: float | None = None,
                 rules: AlertRules = AlertRules()) -> tuple[str, tuple[str, ...]]:
    """The derived status of an agent and the reasons for it.

    :param now: the current time (epoch seconds); ``None`` skips the heartbeat
        rule (the status as of the heartbeat itself).
    """
    reasons = _agent_reasons(agent, now, rules)
    status = max((s for s, _kind, _text in reasons), key=_RANK.__getitem__, default="ok")
    return status, tuple(text for _s, _kind, text in reasons)


def derive_agent(agent: Agent, now: float | None = None,
                 rules: AlertRules = AlertRules()) -> Agent:
    """``agent`` with :attr:`~wmstats.schema.Agent.DerivedStatus` and
    :attr:`~wmstats.schema.Agent.StatusReasons` set (see :func:`agent_status`)."""
    status, reasons = agent_status(agent, now, rules)
    if status == agent.DerivedStatus and reasons == agent.StatusReasons:
        return agent
    return attrs.evolve(agent, DerivedStatus=status, StatusReasons=reasons)


def agent_alerts(agent: Agent, now: float | None = None,
                 rules: AlertRules = AlertRules()) -> list[Alert]:
    """One alert per rule that makes the agent's status worse than ok."""
    out = []
    for status, kind, text in _agent_reasons(agent, now, rules):
        if not kind:
            continue
        out.append(Alert(Kind=kind, Severity="warning" if status == "warning" else "error",
                         AgentURL=agent.AgentURL, Agents=(agent.AgentURL,),
                         Since=agent.Timestamp, Message=text))
    return out


# --------------------------------------------------------------------------- requests


def failed_jobs(record: Workflow | WorkflowSite) -> int:
    """Failed, cooling-off and paused jobs: what the alert rules count as failed."""
    return sum(getattr(record, name) for name in _FAILED_FIELDS)


def _failing_sites(sites: Iterable[WorkflowSite]) -> tuple[str, ...]:
    return tuple(sorted({s.Site for s in sites if failed_jobs(s) > 0}))


def _request_alert(wf: Workflow, kind: str, severity: str, message: str,
                   sites: tuple[str, ...]) -> Alert:
    return Alert(Kind=kind, Severity=severity, RequestName=wf.RequestName, Agents=wf.Agents,
                 Sites=sites, RequestStatus=wf.RequestStatus, Since=wf.StatusTime,
                 Message=message, Failed=failed_jobs(wf), Success=wf.Success,
                 Running=wf.SubmittedRunning, Pending=wf.SubmittedPending)


def _static_kinds(wf: Workflow, rules: AlertRules) -> list[tuple[str, str]]:
    """(kind, message) of the alerts of a workflow that do not depend on the time."""
    out: list[tuple[str, str]] = []
    status = wf.RequestStatus
    if status in rules.ignored_statuses:
        return out
    if status in rules.failed_statuses:
        out.append(("failed", f"the request is {status}"))
    failed = failed_jobs(wf)
    if failed > 0:
        if wf.Success == 0:
            out.append(("config-error", f"{failed:,} failed, cooling-off or paused jobs "
                                        f"and no successful one"))
        else:
            ratio = failed / (failed + wf.Success)
            if ratio > rules.site_error_ratio:
                out.append(("site-error", f"{ratio:.0%} of its finished jobs failed "
                                          f"({failed:,} failed, cooling-off or paused, "
                                          f"{wf.Success:,} successful; threshold "
                                          f"{rules.site_error_ratio:.0%})"))
    return out


def _assigned(wf: Workflow, rules: AlertRules) -> bool:
    return bool(rules.assigned_seconds) and wf.RequestStatus == "assigned"


def _stalling(wf: Workflow, rules: AlertRules) -> bool:
    return (bool(rules.status_stall_seconds) and wf.RequestStatus in rules.stall_statuses
            and wf.SubmittedRunning < 1)


def request_alerts(wf: Workflow, sites: Iterable[WorkflowSite] = (), now: float | None = None,
                   rules: AlertRules = AlertRules()) -> list[Alert]:
    """Every alert of one workflow.

    :param sites: its WorkflowSite records (they tell where jobs fail).
    :param now: the current time; ``None`` leaves out the alerts that depend on it.
    """
    failing = _failing_sites(sites)
    out = [_request_alert(wf, kind, "error", message, failing)
           for kind, message in _static_kinds(wf, rules)]
    if now is not None:
        if _assigned(wf, rules) and now - wf.StatusTime > rules.assigned_seconds:
            out.append(_assigned_alert(wf, now, rules, failing))
        if _stalling(wf, rules) and now - wf.StatusTime > rules.status_stall_seconds:
            out.append(_stall_alert(wf, now, rules, failing))
    return out


def _assigned_alert(wf: Workflow, now: float, rules: AlertRules,
                    sites: tuple[str, ...]) -> Alert:
    return _request_alert(wf, "assigned-stall", "warning",
                          f"assigned for {format_duration(now - wf.StatusTime)} (more than "
                          f"{format_duration(rules.assigned_seconds)}): the global work "
                          f"queue has not pulled it", sites)


def _stall_alert(wf: Workflow, now: float, rules: AlertRules,
                 sites: tuple[str, ...]) -> Alert:
    return _request_alert(wf, "status-stall", "warning",
                          f"{wf.RequestStatus} for {format_duration(now - wf.StatusTime)} "
                          f"with no running job", sites)


# --------------------------------------------------------------------------- the index


@attrs.frozen(kw_only=True)
class AlertFilter:
    """Which alerts to list: values are alternatives (OR), fields combine (AND);
    ``*`` and ``?`` are wildcards in workflow, agent and site names.

    :param kind: alert kinds.
    :param severity: ``warning``, ``error``.
    :param workflow: workflow names.
    :param agent: agents (an alert matches when any of its agents does).
    :param site: sites (an alert matches when any of its sites does).
    """

    kind: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    workflow: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()
    site: tuple[str, ...] = ()

    def matcher(self) -> Callable[[Alert], bool]:
        """A predicate on one alert."""
        kinds, severities = frozenset(self.kind), frozenset(self.severity)
        workflow = [compile_glob(v) for v in self.workflow]
        agent = [compile_glob(v) for v in self.agent]
        site = [compile_glob(v) for v in self.site]

        def match(alert: Alert) -> bool:
            if kinds and alert.Kind not in kinds:
                return False
            if severities and alert.Severity not in severities:
                return False
            if workflow and not any(g(alert.RequestName) for g in workflow):
                return False
            if agent and not any(g(a) for g in agent for a in alert.Agents):
                return False
            return not site or any(g(s) for g in site for s in alert.Sites)
        return match


def _order(alert: Alert) -> tuple[Any, ...]:
    return (-ALERT_SEVERITIES.index(alert.Severity), ALERT_KINDS.index(alert.Kind)
            if alert.Kind in ALERT_KINDS else len(ALERT_KINDS), alert.RequestName,
            alert.AgentURL)


class _Timed:
    """Workflows sorted by status time, with what their alert needs."""

    __slots__ = ("times", "records")

    def __init__(self) -> None:
        self.times: list[tuple[int, str]] = []
        self.records: dict[str, tuple[Workflow, tuple[str, ...]]] = {}

    def put(self, wf: Workflow, sites: tuple[str, ...]) -> None:
        self.drop(wf.RequestName)
        bisect.insort(self.times, (wf.StatusTime, wf.RequestName))
        self.records[wf.RequestName] = (wf, sites)

    def drop(self, name: str) -> None:
        old = self.records.pop(name, None)
        if old is not None:
            entry = (old[0].StatusTime, name)
            pos = bisect.bisect_left(self.times, entry)
            if pos < len(self.times) and self.times[pos] == entry:
                del self.times[pos]

    def older_than(self, limit: float) -> list[tuple[Workflow, tuple[str, ...]]]:
        """The records whose status time is before ``limit``."""
        end = bisect.bisect_left(self.times, (math.ceil(limit), ""))
        return [self.records[name] for _t, name in self.times[:end]]


class AlertIndex:
    """The alerts of many workflows, kept up to date by their changes.

    Feed it with :meth:`reset` (every workflow, e.g. at start) and :meth:`update`
    (the changed ones, as a store applies them); :meth:`alerts` then costs the
    number of alerts, not the number of workflows.  Thread-safe.

    :param rules: the thresholds.
    """

    def __init__(self, rules: AlertRules = AlertRules()) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self._static: dict[str, list[Alert]] = {}
        self._assigned = _Timed()
        self._stalled = _Timed()
        self.snapshot: str | None = None

    def needs_sites(self, wf: Workflow) -> bool:
        """Whether an alert of ``wf`` would list sites (so its WorkflowSite records are
        worth reading)."""
        rules = self.rules
        return bool(_static_kinds(wf, rules)) or _assigned(wf, rules) or _stalling(wf, rules)

    def _entry(self, wf: Workflow, sites: Sequence[WorkflowSite]
               ) -> tuple[list[Alert], tuple[str, ...]]:
        failing = _failing_sites(sites)
        alerts = [_request_alert(wf, kind, "error", message, failing)
                  for kind, message in _static_kinds(wf, self.rules)]
        return alerts, failing

    def put(self, wf: Workflow, sites: Sequence[WorkflowSite]) -> None:
        """Add or replace one workflow (with its WorkflowSite records)."""
        with self._lock:
            self._put(wf, sites)

    def adopt(self, other: AlertIndex, snapshot: str | None) -> None:
        """Take ``other``'s alerts (an index built aside, e.g. during a replace)."""
        with self._lock:
            self._static, self._assigned, self._stalled = (other._static, other._assigned,
                                                           other._stalled)
            self.snapshot = snapshot

    def _put(self, wf: Workflow, sites: Sequence[WorkflowSite]) -> None:
        name = wf.RequestName
        alerts, failing = self._entry(wf, sites)
        if alerts:
            self._static[name] = alerts
        else:
            self._static.pop(name, None)
        if _assigned(wf, self.rules):
            self._assigned.put(wf, failing)
        else:
            self._assigned.drop(name)
        if _stalling(wf, self.rules):
            self._stalled.put(wf, failing)
        else:
            self._stalled.drop(name)

    def _drop(self, name: str) -> None:
        self._static.pop(name, None)
        self._assigned.drop(name)
        self._stalled.drop(name)

    def reset(self, entries: Iterable[tuple[Workflow, Sequence[WorkflowSite]]],
              snapshot: str | None = None) -> None:
        """Start again from every workflow (and its WorkflowSite records)."""
        fresh = AlertIndex(self.rules)
        for wf, sites in entries:
            fresh._put(wf, sites)
        self.adopt(fresh, snapshot)

    def update(self, upserts: Iterable[WorkflowBundle] = (), deletes: Iterable[str] = (),
               snapshot: str | None = None) -> None:
        """Apply changed workflows (whole bundles) and deleted ones."""
        with self._lock:
            for bundle in upserts:
                self._put(bundle.workflow, bundle.sites)
            for name in deletes:
                self._drop(name)
            self.snapshot = snapshot

    def request_alerts(self, now: float) -> list[Alert]:
        """Every request alert at time ``now``."""
        rules = self.rules
        with self._lock:
            out = [a for alerts in self._static.values() for a in alerts]
            if rules.assigned_seconds:
                out += [_assigned_alert(wf, now, rules, sites) for wf, sites
                        in self._assigned.older_than(now - rules.assigned_seconds)]
            if rules.status_stall_seconds:
                out += [_stall_alert(wf, now, rules, sites) for wf, sites
                        in self._stalled.older_than(now - rules.status_stall_seconds)]
        return out

    def alerts(self, now: float, agents: Iterable[Agent] = (),
               where: AlertFilter = AlertFilter()) -> list[Alert]:
        """Every alert at time ``now`` (request alerts, then those of ``agents``),
        filtered, errors first, then by kind and name."""
        match = where.matcher()
        found = [a for a in self.request_alerts(now) if match(a)]
        for agent in agents:
            found += [a for a in agent_alerts(agent, now, self.rules) if match(a)]
        found.sort(key=_order)
        return found

    def counts(self) -> Mapping[str, int]:
        """Time-independent alerts per kind (for metrics)."""
        with self._lock:
            counts: dict[str, int] = {}
            for alerts in self._static.values():
                for alert in alerts:
                    counts[alert.Kind] = counts.get(alert.Kind, 0) + 1
        return counts
