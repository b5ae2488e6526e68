"""The cache server's operator drill-down: job records, alerts and agent status.

* ``/jobs/<workflow>``: the workflow's :class:`~wmstats.schema.JobGroup` counts and
  :class:`~wmstats.schema.JobSample` records, filtered by task, state, exit code,
  site and agent (:func:`jobs_reply`);
* ``/alerts``: every alert now, filtered by kind, severity, workflow, agent and
  site (:func:`alerts_reply`);
* agents' derived status at the time of each answer (:func:`agents_now`).

:class:`AlertFeed` keeps the server's :class:`~wmstats.alerts.AlertIndex` up to date:
it listens to its store's writes (:meth:`wmstats.store.Store.add_listener`), and
rebuilds the index from the store only when the store's snapshot changed without
telling it (another process writing the same database) -- once per snapshot,
never per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Protocol

from wmstats.alerts import (
    AGENT_KINDS,
    ALERT_KINDS,
    AlertFilter,
    AlertIndex,
    AlertRules,
    derive_agent,
)
from wmstats.jobs import JobFilter, select_jobs
from wmstats.query import Query
from wmstats.query.budget import unbudgeted
from wmstats.schema import (
    ALERT_SEVERITIES,
    Agent,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
    WorkflowSite,
)
from wmstats.serialize import converter
from wmstats.store import Store, StoreListener
from wmstats.web._encode import Tally, document_body, ndjson_body
from wmstats.web._errors import ApiError
from wmstats.web._negotiate import NDJSON_TYPES
from wmstats.web._reply import Reply, not_modified
from wmstats.web._routes import OPTION_MAX_TEXT, OPTION_MAX_VALUES, Call, Option


class CacheApp(Protocol):
    """What the handlers need of the cache app (:class:`wmstats.web.cache.CacheApp`)."""

    @property
    def store(self) -> Store: ...

    alert_feed: AlertFeed
    #: a :class:`wmstats.web.cache.CacheConfig` (its ``chunk_size``)
    config: Any

__all__ = ["AlertFeed", "JOB_OPTIONS", "ALERT_OPTIONS", "jobs_reply", "alerts_reply",
           "agents_now"]

_MAX_VALUES: Final = OPTION_MAX_VALUES
_MAX_TEXT: Final = OPTION_MAX_TEXT
#: Workflows whose sites are read at once when the index is rebuilt.
_BATCH: Final = 500
#: Longest a reader waits for a write's notification before rebuilding the index.
_NOTE_WAIT: Final = 2.0

#: The query parameters of ``/jobs/<workflow>``.
JOB_OPTIONS: Final[tuple[Option, ...]] = (
    Option("task", "Task: full paths or task names (the last path segment); `*` and `?` "
                   "are wildcards."),
    Option("state", "Job state (jobfailed, jobcooloff, success...); wildcards allowed."),
    Option("exitcode", "Exit code.", kind="int"),
    Option("site", "Site; wildcards allowed."),
    Option("agent", "Agent; wildcards allowed."),
    Option("documents", "Also send each sample's whole jobsummary document (Document); "
                        "left out (empty) by default.", many=False, kind="bool"),
)
#: The query parameters of ``/alerts``.
ALERT_OPTIONS: Final[tuple[Option, ...]] = (
    Option("kind", "Alert kind.", choices=ALERT_KINDS),
    Option("severity", "Severity.", choices=ALERT_SEVERITIES),
    Option("workflow", "Workflow; wildcards allowed."),
    Option("agent", "Agent (an alert matches when any of its agents does); wildcards "
                    "allowed."),
    Option("site", "Site (an alert matches when any of its sites does); wildcards allowed."),
    Option("limit", "The most alerts to send (total and counts still count them all).",
           many=False, kind="int"),
)
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")


def _unstructure(value: Any) -> Any:
    return converter().unstructure(value)


def _options(call: Call, options: Sequence[Option]) -> dict[str, Any]:
    """The call's parameters, checked against ``options``: name -> tuple of values
    (or one bool)."""
    known = {o.name: o for o in options}
    out: dict[str, Any] = {}
    for key, raw in call.params.items():
        option = known.get(key)
        if option is None:
            raise ApiError(400, f"unknown parameter {key[:60]!r} (known: "
                                f"{', '.join(known)}, format)", parameter=key[:60])
        if not option.many and len(raw) != 1:
            raise ApiError(400, "given more than once", parameter=key)
        values = [v.strip() for item in raw for v in (item.split(",") if option.many else
                                                        [item])]
        values = [v for v in values if v]
        if len(values) > _MAX_VALUES:
            raise ApiError(400, f"at most {_MAX_VALUES} values", parameter=key)
        for value in values:
            if len(value) > _MAX_TEXT:
                raise ApiError(400, f"a value longer than {_MAX_TEXT} characters",
                               parameter=key)
            if option.choices and value not in option.choices:
                raise ApiError(400, f"unknown value {value[:60]!r} (known: "
                                    f"{', '.join(option.choices)})", parameter=key)
        if option.kind == "bool":
            text = (values[0] if values else "").lower()
            if text not in _TRUE + _FALSE:
                raise ApiError(400, "expected true or false", parameter=key)
            out[key] = text in _TRUE
        elif option.kind == "int":
            try:
                numbers = tuple(int(v) for v in values)
            except ValueError:
                raise ApiError(400, "expected whole numbers", parameter=key) from None
            if not option.many:
                if len(numbers) != 1 or numbers[0] < 0:
                    raise ApiError(400, "expected one whole number >= 0", parameter=key)
                out[key] = numbers[0]
            else:
                out[key] = numbers
        else:
            out[key] = tuple(dict.fromkeys(values))
    return out


# --------------------------------------------------------------------------- agents


def agents_now(store: Store, rules: AlertRules, now: float,
               urls: Sequence[str] | None = None) -> list[Agent]:
    """The store's agent records, their status derived at ``now``."""
    return [derive_agent(a, now, rules) for a in store.get_agents(urls)]


# --------------------------------------------------------------------------- alerts


class AlertFeed(StoreListener):
    """An :class:`AlertIndex` kept up to date by a store's writes.

    :param store: the store (the feed listens to it until :meth:`close`).
    :param rules: the alert thresholds.
    """

    def __init__(self, store: Store, rules: AlertRules) -> None:
        self.store = store
        self.index = AlertIndex(rules)
        self._fresh: AlertIndex | None = None
        self._cond = threading.Condition()
        self._rebuild_lock = threading.Lock()
        #: full rebuilds so far (each one a pass over every workflow)
        self.rebuilds = 0
        store.add_listener(self)

    @property
    def rules(self) -> AlertRules:
        """The thresholds."""
        return self.index.rules

    def close(self) -> None:
        """Stop listening."""
        self.store.remove_listener(self)

    # ------------------------------------------------------------------ listening

    def replacing(self, store: Store) -> Callable[[WorkflowBundle], None]:
        fresh = AlertIndex(self.index.rules)
        self._fresh = fresh
        return lambda bundle: fresh.put(bundle.workflow, bundle.sites)

    def replaced(self, store: Store, snapshot_id: str, agents: Sequence[Agent]) -> None:
        fresh, self._fresh = self._fresh, None
        if fresh is not None:
            self.index.adopt(fresh, snapshot_id)
        self._noted()

    def replace_failed(self, store: Store) -> None:
        self._fresh = None

    def applied(self, store: Store, snapshot_id: str, upserts: Sequence[WorkflowBundle],
                deletes: Sequence[str], agents: Sequence[Agent],
                deleted_agents: Sequence[str]) -> None:
        self.index.update(upserts, deletes, snapshot_id)
        self._noted()

    def _noted(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ reading

    def current(self) -> AlertIndex:
        """The index, rebuilt first if the store's snapshot changed unannounced."""
        sid = self.store.snapshot_id
        if self.index.snapshot == sid:
            return self.index
        # Waiting and rebuilding are done once for every later request: they are not
        # this request's filtering work, so its time budget neither cuts nor counts them.
        with unbudgeted():
            with self._cond:  # a write that has just returned is noted in a moment
                self._cond.wait_for(lambda: self.index.snapshot == sid, _NOTE_WAIT)
            if self.index.snapshot != sid:
                with self._rebuild_lock:
                    sid = self.store.snapshot_id
                    if self.index.snapshot != sid:
                        self.rebuild(sid)
        return self.index

    def rebuild(self, snapshot: str) -> None:
        """Evaluate every workflow of the store (reading the sites of those that have
        an alert)."""
        index = self.index

        def entries() -> Iterator[tuple[Workflow, Sequence[WorkflowSite]]]:
            batch: list[Workflow] = []
            for wf in self.store.stream(Query()):
                if not index.needs_sites(wf):
                    continue
                batch.append(wf)
                if len(batch) >= _BATCH:
                    yield from self._with_sites(batch)
                    batch = []
            yield from self._with_sites(batch)

        with unbudgeted():  # once per snapshot, for every later request
            index.reset(entries(), snapshot)
        self.rebuilds += 1

    def _with_sites(self, batch: list[Workflow]
                    ) -> Iterator[tuple[Workflow, Sequence[WorkflowSite]]]:
        if not batch:
            return
        found = self.store.get_many([wf.RequestName for wf in batch])
        for wf in batch:
            bundle = found.get(wf.RequestName)
            yield wf, bundle.sites if bundle is not None else ()


def alerts_reply(app: CacheApp, call: Call) -> Reply:
    """``/alerts``: every alert now."""
    options = _options(call, ALERT_OPTIONS)
    where = AlertFilter(kind=options.get("kind", ()), severity=options.get("severity", ()),
                        workflow=options.get("workflow", ()),
                        agent=options.get("agent", ()), site=options.get("site", ()))
    feed = app.alert_feed
    index = feed.current()
    now = time.time()
    agents = app.store.get_agents()
    alerts = index.alerts(now, agents, where)
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.Kind] = counts.get(alert.Kind, 0) + 1
    total = len(alerts)
    alerting = len({a.AgentURL for a in alerts if a.Kind in AGENT_KINDS})
    if "limit" in options:
        alerts = alerts[:options["limit"]]
    tally = Tally()
    headers = {"Cache-Control": "no-store", "X-Total-Count": str(total)}
    chunk = app.config.chunk_size
    if call.media in NDJSON_TYPES:
        body = ndjson_body(alerts, _unstructure, tally, chunk)
    else:
        head = {"now": int(now), "snapshot": index.snapshot, "total": total,
                "counts": counts, "agents": {"total": len(agents), "alerting": alerting}}
        body = document_body(head, "alerts", alerts, _unstructure, tally, chunk)
    return Reply(body, call.media, headers=headers, tally=tally, compress=call.gz)


# --------------------------------------------------------------------------- jobs


def _record(with_documents: bool) -> Callable[[Any], dict[str, Any]]:
    def plain(record: Any) -> dict[str, Any]:
        item: dict[str, Any] = _unstructure(record)
        if not with_documents and "Document" in item:
            item["Document"] = ""
        return item
    return plain


def _etag(jobs_snapshot: str, call: Call) -> str:
    key = f"{jobs_snapshot}\x1f{call.media}\x1f{call.gz}".encode("utf-8", "surrogatepass")
    return f'"jobs-{hashlib.sha1(key).hexdigest()[:20]}"'


def jobs_reply(app: CacheApp, call: Call) -> Reply:
    """``/jobs/<workflow>``: the workflow's job records, filtered."""
    name = call.value
    assert name is not None
    options = _options(call, JOB_OPTIONS)
    where = JobFilter(task=options.get("task", ()), state=options.get("state", ()),
                      exit_code=options.get("exitcode", ()), site=options.get("site", ()),
                      agent=options.get("agent", ()))
    documents = bool(options.get("documents", False))
    store = app.store
    sid = store.jobs_snapshot_id
    etag = _etag(sid, call)
    cached = not_modified(etag, call.if_none_match)
    if cached is not None:
        return cached
    found = store.jobs(name)
    if found is None:
        if store.get(name) is None:
            raise ApiError(404, f"no workflow named {name!r} and no job records for it",
                           parameter="workflow")
        found = WorkflowJobs(name)
    selected = select_jobs(found, where)
    unstructure = _record(documents)
    tally = Tally()
    headers = {"ETag": etag, "X-Jobs-Snapshot-Id": sid,
               "X-Total-Count": str(sum(g.Jobs for g in selected.groups))}
    chunk = app.config.chunk_size
    if call.media in NDJSON_TYPES:
        def tagged(record: Any) -> dict[str, Any]:
            return {"RecordType": type(record).__name__, **unstructure(record)}
        body = ndjson_body(selected.records(), tagged, tally, chunk)
    else:
        samples = [unstructure(s) for s in selected.samples]
        head = {"workflow": name, "snapshot": sid,
                "jobs": sum(g.Jobs for g in selected.groups), "samples": samples}
        body = document_body(head, "groups", selected.groups, unstructure, tally, chunk)
        tally.records += len(samples)
    return Reply(body, call.media, headers=headers, tally=tally, compress=call.gz)
