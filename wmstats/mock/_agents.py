"""The mock agents' heartbeats: whole ``agent_info`` documents and their records.

Every field of a real heartbeat (``agent_info_full.json`` in the anchors, written
by WMAgent's ``AgentStatusPoller``): status, down components with their details
(heartbeat timeouts, bad threads, a CouchDB replication error, bare names),
per-component processes and threads, worker heartbeats, disk warnings, drain
state and statistics, CouchDB process count, proxy warnings, WMBS and local work
queue figures, the data collector's ``data_last_update`` / ``data_error``
(strings, as the agents' update handler stores them).  Every time is relative to
the agent's heartbeat, itself relative to the generator's "now".

The details come from a random generator seeded by the agent's URL and heartbeat
time, so they follow the agent's truth (:class:`~wmstats.mock._truth.AgentInfo`)
without changing it.  :func:`agent_record` renders the same values as the static
:class:`~wmstats.schema.Agent` record (independently of :mod:`wmstats.convert`;
the tests check that converting the document gives it).
"""

from __future__ import annotations

import random
from typing import Any, Final

from wmstats.alerts import derive_agent
from wmstats.mock._catalog import COMPONENTS, SITES
from wmstats.mock._truth import AgentInfo
from wmstats.schema import Agent

__all__ = ["agent_document", "agent_record"]

#: Worker threads of each component and their poll intervals (etc/WMAgentConfig.py).
_WORKERS: Final[tuple[tuple[str, str, int], ...]] = (
    ("AgentStatusWatcher", "AgentStatusPoller", 300),
    ("AgentStatusWatcher", "DrainStatusPoller", 3600),
    ("AgentStatusWatcher", "ResourceControlUpdater", 900),
    ("AnalyticsDataCollector", "AnalyticsPoller", 600),
    ("ArchiveDataReporter", "ArchiveDataPoller", 300),
    ("DBS3Upload", "DBSUploadPoller", 100),
    ("ErrorHandler", "ErrorHandlerPoller", 240),
    ("JobAccountant", "JobAccountantPoller", 300),
    ("JobArchiver", "JobArchiverPoller", 120),
    ("JobCreator", "JobCreatorPoller", 120),
    ("JobStatusLite", "StatusPoller", 60),
    ("JobSubmitter", "JobSubmitterPoller", 120),
    ("JobTracker", "JobTrackerPoller", 60),
    ("JobUpdater", "JobUpdaterPoller", 120),
    ("RetryManager", "RetryManagerPoller", 240),
    ("RucioInjector", "RucioInjectorPoller", 300),
    ("TaskArchiver", "TaskArchiverPoller", 240),
    ("TaskArchiver", "CleanCouchPoller", 1200),
    ("WorkQueueManager", "WorkQueueManagerReqMgrPoller", 180),
    ("WorkQueueManager", "WorkQueueManagerWorkPoller", 180),
    ("WorkflowUpdater", "SiteListPoller", 28800),
)
_WMBS_STATES: Final = (
    "new", "created", "executing", "complete", "createfailed", "submitfailed", "jobfailed",
    "createcooloff", "submitcooloff", "jobcooloff", "success", "exhausted", "killed",
    "cleanout", "retrydone", "jobpaused", "createpaused", "submitpaused")
_JOB_TYPES: Final = ("Cleanup", "Harvesting", "LogCollect", "Merge", "Processing",
                     "Production", "Skim")
_CONDOR: Final = ("New", "Idle", "Running", "Removed", "Completed", "Held", "TransferOutput",
                  "Suspended", "Timeout", "Unknown")
_WQ_STATES: Final = ("Available", "Negotiating", "Acquired", "Running", "Done", "Failed",
                     "CancelRequested", "Canceled")
_DATA_ERRORS: Final = (
    "(28, 'Operation timed out after 300000 milliseconds with 0 bytes received')",
    "CouchError: 503 Service Unavailable: wmstats replication is behind",
)


class _Details:
    """Everything of one heartbeat beyond the truth, drawn once."""

    def __init__(self, info: AgentInfo) -> None:
        rng = random.Random(f"{info.url}:{info.timestamp}:details")
        self.rng = rng
        #: seconds the heartbeat is late on top of the truth's (a live demo has some
        #: agents whose status poller stopped: their heartbeat is 25 min to 2 h old)
        self.late_by = (1500 + rng.randrange(5700)) if (
            info.status != "down" and rng.random() < 0.1) else 0
        self.timestamp = info.timestamp - self.late_by
        self.data_last_update = info.data_last_update - self.late_by
        self.pid = 2_700_000 + rng.randrange(200_000)
        self.proxy_hours: float | None = None
        if info.status == "warning" and rng.random() < 0.5:
            self.proxy_hours = round(73 + rng.random() * 46, 2)  # 3 to 5 days: warning
        elif info.status == "error" and rng.random() < 0.4:
            self.proxy_hours = round(4 + rng.random() * 60, 2)  # under 3 days: error
        self.couch_processes = 50 + rng.randrange(20) if (
            info.status == "error" and rng.random() < 0.35) else 0
        self.data_error = rng.choice(_DATA_ERRORS) if rng.random() < 0.08 else "ok"
        self.workflows_completed = rng.random() < 0.4
        self.drain_ran = rng.random() < 0.8
        #: per down component: "timeout", "threads", "couch" or "bare"
        self.kinds = {name: ("couch" if name == "CouchServer" else
                             rng.choice(("timeout", "timeout", "threads", "bare")))
                      for name in info.down}
        self.late = {name: 7300 + rng.randrange(5000) for name in info.down}

    def proxy_warning(self) -> str:
        if self.proxy_hours is None:
            return ""
        return (f"Agent proxy '/data/certs/myproxy.pem' must be renewed ASAP. Its time left "
                f"is: {self.proxy_hours:.2f} hours;")

    def component_detail(self, info: AgentInfo) -> list[Any]:
        out: list[Any] = []
        for name in info.down:
            kind = self.kinds[name]
            late = self.late[name]
            if kind == "timeout":
                out.append({"name": name, "pid": self.pid + 37 * COMPONENTS.index(name),
                            "worker_name": f"{name}Poller", "state": "Timeout",
                            "last_updated": info.timestamp - late, "update_threshold": 7200,
                            "poll_interval": 120, "cycle_time": 47.31, "outcome": None,
                            "last_error": None,
                            "error_message": f"Last worker thread heartbeat was "
                                             f"{late // 60} min ago"})
            elif kind == "threads":
                out.append({"name": name, "pid": self.pid + 37 * COMPONENTS.index(name),
                            "worker_name": None, "state": "Bad Threads",
                            "last_updated": info.timestamp,
                            "error_message": "Bad threads: {'orphan': [], 'lost': ["
                                             f"{self.pid + 3}]}}"})
            elif kind == "couch":
                out.append({"name": "CouchServer", "status": "error", "method": "replication",
                            "error_message": "replication from wmagent_summary to central "
                                             "wmstats stopped: checkpoint out of date"})
            else:
                out.append(name)  # the process is not running at all
        return out

    def component_errors(self, info: AgentInfo) -> tuple[str, ...]:
        """The record's lines for :meth:`component_detail` (see Agent.ComponentErrors)."""
        lines = []
        for item in self.component_detail(info):
            if isinstance(item, str):
                lines.append(item)
                continue
            head = item["name"]
            if item.get("worker_name"):
                head += f"/{item['worker_name']}"
            state = item.get("state") or item.get("status")
            if state:
                head += f" {state}"
            lines.append(f"{head}: {item['error_message']}")
        return tuple(lines)


def _components(info: AgentInfo, details: _Details) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    pid = details.pid
    for i, name in enumerate(c for c in COMPONENTS if c != "CouchServer"):
        base = pid + 37 * i
        threads = 2 + (i * 7 + details.rng.randrange(3)) % 3
        out[name] = [{"process": "python3", "pid": str(base), "status": "sleeping",
                      "type": "process"}]
        if name in info.down and details.kinds[name] == "bare":
            out[name] = []
            continue
        out[name] += [{"process": "python3-thread", "pid": str(base + t + 3),
                       "status": "running", "type": "thread"} for t in range(threads)]
    return out


def _workers(info: AgentInfo, details: _Details) -> list[dict[str, Any]]:
    out = []
    for component, worker, interval in _WORKERS:
        late = details.late.get(component)
        stamp = info.timestamp - (late if late and details.kinds.get(component) == "timeout"
                                  else details.rng.randrange(min(interval, 300)))
        out.append({"name": worker, "last_updated": stamp,
                    "state": "Running" if component not in info.down else "Error",
                    "poll_interval": interval,
                    "cycle_time": round(0.35 + details.rng.random() * 50, 2)})
    return out


def _wmbs_info(info: AgentInfo, details: _Details) -> dict[str, Any]:
    rng = details.rng
    sites = sorted(rng.sample(SITES, 6))
    thresholds: dict[str, dict[str, Any]] = {}
    for site in sites:
        running = 1000 * (1 + rng.randrange(40))
        thresholds[site] = {"state": rng.choice(("Normal", "Normal", "Normal", "Draining")),
                            "pending_slots": running // 5, "running_slots": running}
    executing = {t: (0 if info.drain and rng.random() < 0.7 else rng.randrange(3000))
                 for t in _JOB_TYPES}
    counts = dict.fromkeys(_WMBS_STATES, 0)
    counts["executing"] = sum(executing.values())
    counts["success"] = rng.randrange(20_000)
    counts["cleanout"] = rng.randrange(500_000)
    counts["jobcooloff"] = rng.randrange(300)
    counts["exhausted"] = rng.randrange(100)
    active = dict.fromkeys(_CONDOR, 0)
    active["Running"] = int(counts["executing"] * 0.8)
    active["Idle"] = counts["executing"] - active["Running"]
    complete = dict.fromkeys(_CONDOR, 0)
    complete["Completed"] = rng.randrange(5000)
    complete["Removed"] = rng.randrange(50)
    return {
        "thresholds": thresholds,
        "wmbsCreatedTypeCount": {t: rng.randrange(200) for t in _JOB_TYPES},
        "wmbsExecutingTypeCount": executing,
        "wmbsCountByState": counts,
        "activeRunJobByStatus": active,
        "completeRunJobByStatus": complete,
        "thresholdsGQ2LQ": {s: float(t["running_slots"] * 1.2) for s, t in thresholds.items()
                            if t["state"] == "Normal"},
        "sitePendCountByPrio": {s: ({str(80_000 + 5000 * rng.randrange(7)): rng.randrange(900)}
                                    if rng.random() < 0.6 else {"0": 0}) for s in sites},
        "total_query_time": rng.randrange(1, 6),
    }


def _local_wq(details: _Details) -> dict[str, Any]:
    rng = details.rng
    by_status: dict[str, Any] = {}
    by_priority: dict[str, Any] = {}
    for state in _WQ_STATES:
        if state in ("Running", "Done", "Acquired") and rng.random() < 0.8:
            jobs, elements = rng.randrange(1, 30_000), rng.randrange(1, 120)
            by_status[state] = {"sum_jobs": jobs, "num_elem": elements,
                                "max_jobs_elem": min(jobs, rng.randrange(1, 2000))}
            by_priority[state] = [{"priority": 110_000, **by_status[state]}]
        else:
            by_status[state] = {}
            by_priority[state] = []
    return {"workByStatus": by_status, "workByStatusAndPriority": by_priority,
            "uniqueJobsPerSite": {"Available": {}, "Acquired": {}},
            "possibleJobsPerSite": {"Available": {}, "Acquired": {}},
            "total_query_time": rng.randrange(1, 4)}


def _drain_stats(details: _Details) -> dict[str, Any]:
    if not details.drain_ran:
        return {}  # the hourly DrainStatusPoller has not run yet
    if not details.workflows_completed:
        return {"workflows_completed": False}
    rng = details.rng
    return {"workflows_completed": True,
            "upload_status": {"dbs_open_blocks": rng.randrange(5),
                              "dbs_notuploaded": rng.randrange(50), "phedex_notuploaded": 0},
            "condor_status": {"running": rng.randrange(10), "idle": 0},
            "local_wq_status": {"Available": 0, "Negotiating": 0, "Acquired": 0, "Running": 1},
            "local_wqinbox_status": {"Available": 0, "Negotiating": 0, "Acquired": 0,
                                     "Running": 1},
            "global_wq_status": {"Acquired": 0, "Running": 1}}


def agent_document(info: AgentInfo) -> dict[str, Any]:
    """One agent's whole ``agent_info`` document, keys in WMAgent's order."""
    details = _Details(info)
    doc: dict[str, Any] = {
        "_id": info.url,
        "status": info.status,
        "down_components": list(info.down),
        "down_component_detail": details.component_detail(info),
        "components": _components(info, details),
        "workers": _workers(info, details),
        "agent_team": info.team,
        "agent_version": info.version,
        "agent": "WMAgent",
        "agent_url": info.url,
        "disk_warning": [{"filesystem": fs, "mounted": mount, "percent": f"{pct}%"}
                         for fs, mount, pct in info.disks],
        "drain_mode": info.drain,
    }
    if info.drain:
        doc["drain_stats"] = _drain_stats(details)
    doc["couch_process_warning"] = details.couch_processes
    proxy = details.proxy_warning()
    if proxy:
        doc["proxy_warning"] = proxy
    doc["WMBS_INFO"] = _wmbs_info(info, details)
    doc["LocalWQ_INFO"] = _local_wq(details)
    doc["timestamp"] = details.timestamp
    doc["type"] = "agent_info"
    doc["data_last_update"] = str(details.data_last_update)
    doc["data_error"] = details.data_error
    return doc


def agent_record(info: AgentInfo) -> Agent:
    """The static record of :func:`agent_document`, its status derived as of the
    heartbeat (:func:`wmstats.alerts.derive_agent`)."""
    details = _Details(info)
    completed = info.drain and details.drain_ran and details.workflows_completed
    return derive_agent(Agent(
        AgentURL=info.url, AgentTeam=info.team, AgentVersion=info.version,
        Status=info.status, DownComponents=tuple(info.down), DrainMode=info.drain,
        DiskWarning=tuple(mount for _, mount, _ in info.disks), Timestamp=details.timestamp,
        DataLastUpdate=details.data_last_update,
        DiskUsage=tuple(f"{mount} {pct}%" for _, mount, pct in info.disks),
        ComponentErrors=details.component_errors(info),
        ProxyWarning=details.proxy_warning(), CouchProcessWarning=details.couch_processes,
        DataError=details.data_error, DrainWorkflowsCompleted=completed,
    ))
