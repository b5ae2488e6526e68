"""The alert rules (docs/alerts.md, from today's WMStats page), the agents' derived
status, and the index that keeps alerts up to date without rescanning."""

from __future__ import annotations

import json
import random
from pathlib import Path

import attrs
import pytest

from wmstats.alerts import (
    AlertFilter,
    AlertIndex,
    AlertRules,
    agent_alerts,
    agent_status,
    derive_agent,
    format_duration,
    request_alerts,
)
from wmstats.convert import convert_agent_info
from wmstats.mock import MockGenerator
from wmstats.schema import Agent, Workflow, WorkflowBundle, WorkflowSite

DRILL = Path(__file__).parent / "data" / "wmcore" / "drill"
NOW = 1_800_000_000


def full_agent() -> Agent:
    with open(DRILL / "agent_info_full.json", encoding="utf-8") as handle:
        agent = convert_agent_info(json.load(handle), [])
    assert agent is not None
    return agent


# --------------------------------------------------------------------------- agents


def test_the_anchor_heartbeat() -> None:
    agent = full_agent()
    # As of its heartbeat: components down (error), a proxy warning, a full disk, draining.
    assert agent.DerivedStatus == "error"
    assert agent.StatusReasons == (
        "components or threads down: JobSubmitter",
        "proxy or certificate expiring: Agent proxy '/data/certs/myproxy.pem' must be "
        "renewed ASAP. Its time left is: 101.25 hours;",
        "disk almost full: /data 88%",
        "draining (all its workflows are completed)")
    assert agent.ComponentErrors == (
        "JobSubmitter/JobSubmitterPoller Timeout: Last worker thread heartbeat was 128 min ago",)
    # 20 minutes later it is late: down.
    status, reasons = agent_status(agent, agent.Timestamp + 1201)
    assert status == "down" and reasons[0].startswith("no heartbeat for 20 min")
    assert agent_status(agent, agent.Timestamp + 1200)[0] == "error"
    kinds = [(a.Kind, a.Severity) for a in agent_alerts(agent, agent.Timestamp + 1201)]
    assert kinds == [("agent-down", "error"), ("agent-components", "error"),
                     ("agent-proxy", "warning"), ("agent-disk", "warning")]


@pytest.mark.parametrize(("fields", "status", "kind"), [
    ({}, "ok", None),
    ({"DrainMode": True}, "ok", None),
    ({"DiskWarning": ("/data",)}, "warning", "agent-disk"),
    ({"ProxyWarning": "renew", "Status": "warning"}, "warning", "agent-proxy"),
    ({"ProxyWarning": "renew", "Status": "error"}, "error", "agent-proxy"),
    ({"CouchProcessWarning": 57}, "error", "agent-couch"),
    ({"DataError": "timeout"}, "error", "agent-data-error"),
    ({"DataError": "ok"}, "ok", None),
    ({"DownComponents": ("JobAccountant",)}, "error", "agent-components"),
    ({"Status": "down"}, "error", "agent-status"),
    ({"Status": "warning"}, "warning", "agent-status"),
    ({"Status": "warning", "DrainMode": True}, "ok", None),  # the agent's own drain warning
    ({"Timestamp": NOW - 5000}, "down", "agent-down"),
    ({"Timestamp": 0}, "down", "agent-down"),
    # The worst wins (today's page would show "warning": its disk rule comes last).
    ({"CouchProcessWarning": 60, "DiskWarning": ("/",)}, "error", "agent-couch"),
])
def test_each_agent_rule(fields: dict[str, object], status: str, kind: str | None) -> None:
    values: dict[str, object] = {"Status": "ok", "Timestamp": NOW - 60, "DataError": "ok",
                                 **fields}
    agent = Agent(AgentURL="a.cern.ch", **values)  # type: ignore[arg-type]
    found, reasons = agent_status(agent, NOW)
    assert found == status
    kinds = [a.Kind for a in agent_alerts(agent, NOW)]
    assert kinds[:1] == ([kind] if kind else [])
    assert bool(reasons) == (bool(kind) or agent.DrainMode)
    derived = derive_agent(agent, NOW)
    assert (derived.DerivedStatus, derived.StatusReasons) == (found, reasons)


def test_thresholds_come_from_the_rules() -> None:
    agent = Agent(AgentURL="a", Timestamp=NOW - 600)
    assert agent_status(agent, NOW)[0] == "ok"
    assert agent_status(agent, NOW, AlertRules(agent_stale_seconds=300))[0] == "down"
    assert agent_status(agent, NOW, AlertRules(agent_stale_seconds=0))[0] == "ok"
    with pytest.raises(ValueError):
        AlertRules(site_error_ratio=1.5)
    with pytest.raises(ValueError):
        AlertRules(assigned_seconds=-1)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 125, 7380, 180000)] == [
        "5 s", "2 min", "2 h 3 min", "2 d 2 h"]


# --------------------------------------------------------------------------- requests


def wf(name: str = "wf", status: str = "running-open", **fields: int | str) -> Workflow:
    fields.setdefault("StatusTime", NOW - 100)
    return Workflow(RequestName=name, RequestStatus=status, Agents=("a1",),
                    **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("workflow", "kinds"), [
    (wf(), []),
    (wf(status="failed"), ["failed"]),
    (wf(status="epic-FAILED", FailureException=1), ["failed", "config-error"]),
    (wf(CooloffJob=1), ["config-error"]),
    (wf(PausedSubmit=2, Success=0), ["config-error"]),
    (wf(FailureException=86, Success=14), ["site-error"]),  # 86 % > 85 %
    (wf(FailureException=85, Success=15), []),  # exactly 85 %: not above
    (wf(FailureException=1, Success=100), []),
    (wf(status="aborted", FailureException=5), []),  # ignored statuses
    (wf(status="closed-out", CooloffJob=5), []),
    (wf(status="assigned", StatusTime=NOW - 7201), ["assigned-stall"]),
    (wf(status="assigned", StatusTime=NOW - 7200), []),
    (wf(status="acquired", StatusTime=NOW - 10**6), []),  # status stall is off by default
])
def test_request_rules(workflow: Workflow, kinds: list[str]) -> None:
    assert [a.Kind for a in request_alerts(workflow, now=NOW)] == kinds


def test_request_alert_fields_and_sites() -> None:
    workflow = wf(FailureException=10, CooloffJob=2, Success=0, SubmittedRunning=4,
                  SubmittedPending=3)
    sites = [WorkflowSite(RequestName="wf", Site="T1_US_FNAL", Agent="a1", FailureException=10),
             WorkflowSite(RequestName="wf", Site="T2_CH_CERN", Agent="a1", Success=0,
                          SubmittedRunning=4),
             WorkflowSite(RequestName="wf", Site="T1_DE_KIT", Agent="a2", CooloffJob=2)]
    (alert,) = request_alerts(workflow, sites, NOW)
    assert alert.Sites == ("T1_DE_KIT", "T1_US_FNAL")
    assert (alert.Failed, alert.Success, alert.Running, alert.Pending) == (12, 0, 4, 3)
    assert (alert.RequestName, alert.Agents, alert.Since) == ("wf", ("a1",), NOW - 100)
    assert "12 failed" in alert.Message


def test_status_stall_when_switched_on() -> None:
    rules = AlertRules(status_stall_seconds=172800)
    stalled = wf(status="running-closed", StatusTime=NOW - 172801)
    assert [a.Kind for a in request_alerts(stalled, now=NOW, rules=rules)] == ["status-stall"]
    running = wf(status="running-closed", StatusTime=NOW - 172801, SubmittedRunning=1)
    assert request_alerts(running, now=NOW, rules=rules) == []


# --------------------------------------------------------------------------- the index


def brute_force(bundles: dict[str, WorkflowBundle], now: float,
                rules: AlertRules) -> list[tuple[str, str, tuple[str, ...], str]]:
    out = []
    for bundle in bundles.values():
        for a in request_alerts(bundle.workflow, bundle.sites, now, rules):
            out.append((a.Kind, a.RequestName, a.Sites, a.Message))
    return sorted(out)


def test_index_follows_changes_like_a_full_recompute() -> None:
    """The incremental index answers what evaluating every workflow would, at any
    time, after any sequence of upserts and deletes."""
    gen = MockGenerator(seed=3)
    rules = AlertRules(status_stall_seconds=3 * 86400)
    bundles = {b.workflow.RequestName: b for b in gen.bundles(400)}
    index = AlertIndex(rules)
    index.reset(((b.workflow, b.sites) for b in bundles.values()), "s0")
    rnd = random.Random(2)
    names = list(bundles)
    for step in range(6):
        changed = []
        for name in rnd.sample(names, 40):
            old = bundles[name].workflow
            status = rnd.choice(["assigned", "failed", "running-open", old.RequestStatus])
            new = attrs.evolve(old, RequestStatus=status,
                               StatusTime=gen.now - rnd.randrange(20_000),
                               FailureException=rnd.choice([0, 0, 5]))
            bundles[name] = attrs.evolve(bundles[name], workflow=new)
            changed.append(bundles[name])
        gone = rnd.sample(names, 5)
        for name in gone:
            bundles.pop(name, None)
        names = list(bundles)
        index.update(changed, gone, f"s{step + 1}")
        for now in (gen.now, gen.now + 3600, gen.now + 5 * 86400):
            found = sorted((a.Kind, a.RequestName, a.Sites, a.Message)
                           for a in index.request_alerts(now))
            assert found == brute_force(bundles, now, rules)
    assert index.snapshot == "s6"
    assert {"failed", "assigned-stall"} <= {a.Kind for a in index.request_alerts(gen.now)}
    assert sum(index.counts().values()) == sum(
        1 for b in bundles.values() for a in request_alerts(b.workflow, b.sites, None, rules))


def test_alerts_filters_and_order() -> None:
    index = AlertIndex()
    sites = [WorkflowSite(RequestName="w_fail", Site="T1_US_FNAL", Agent="a1",
                          FailureException=3)]
    index.update([WorkflowBundle(wf("w_fail", status="failed", FailureException=3), sites),
                  WorkflowBundle(wf("w_assigned", status="assigned", StatusTime=NOW - 10**5))])
    agents = [Agent(AgentURL="a1", Timestamp=NOW - 10**4, DataError="ok"),
              Agent(AgentURL="a2", Timestamp=NOW, DiskWarning=("/data",), DataError="ok")]
    every = index.alerts(NOW, agents)
    assert [(a.Kind, a.RequestName or a.AgentURL) for a in every] == [
        ("failed", "w_fail"), ("config-error", "w_fail"), ("agent-down", "a1"),
        ("assigned-stall", "w_assigned"), ("agent-disk", "a2")]
    pick = lambda **kw: [(a.Kind, a.RequestName or a.AgentURL)  # noqa: E731
                         for a in index.alerts(NOW, agents, AlertFilter(**kw))]
    assert pick(kind=("failed", "agent-disk")) == [("failed", "w_fail"), ("agent-disk", "a2")]
    assert pick(severity=("warning",)) == [("assigned-stall", "w_assigned"),
                                           ("agent-disk", "a2")]
    assert pick(workflow=("w_a*",)) == [("assigned-stall", "w_assigned")]
    assert pick(agent=("a1",)) == [("failed", "w_fail"), ("config-error", "w_fail"),
                                   ("agent-down", "a1"), ("assigned-stall", "w_assigned")]
    assert pick(site=("T1_*",)) == [("failed", "w_fail"), ("config-error", "w_fail")]
    assert pick(kind=("nothing",)) == []
