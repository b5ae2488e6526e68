"""The mock workflows' ``jobsummary`` documents: the failed jobs their agents report.

For each agent report of a workflow, each task at each site with failed or
cooling-off jobs gets a few ``jobsummary`` documents (at most :data:`CAP_FAILED`
failed and :data:`CAP_COOLOFF` cooling-off ones, so a production-sized mock stays
small), and now and then one for a job that succeeded after a retry.  Their
shape is the real one (``jobsummary_failed.json`` / ``jobsummary_success.json``
in the anchors: every key WMCore's ``ChangeState`` writes), with exit codes and
error texts as operators see them (:data:`FAILURES`), one of them long, one with
HTML in it.  Times are relative to the agent's report, itself relative to the
generator's "now".  Drawn from a generator seeded by the workflow, so workflow
``i``'s documents do not depend on the others.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Final

from wmstats.mock._truth import AgentReport, SiteReport, TaskReport, Truth

__all__ = ["FAILURES", "CAP_FAILED", "CAP_COOLOFF", "render_jobsummaries", "XSS_TEXT"]

#: Failed jobs of one task at one site that get a document (per agent).
CAP_FAILED: Final = 4
#: Cooling-off jobs of one task at one site that get a document (per agent).
CAP_COOLOFF: Final = 3
_ACDC: Final = "https://cmsweb.cern.ch/couchdb/acdcserver"
#: An error text holding HTML, which every page must show as text.
XSS_TEXT: Final = "<img src=x onerror=alert(1)>"
_LONG_TRACE: Final = "".join(
    f"  File \"/srv/job/WMCore/WMSpec/Steps/Executors/CMSSW.py\", line {100 + k}, in "
    f"execute\n    self.step.runtime.{'sub' * (k % 4)}process(args, {k})\n"
    for k in range(60))

#: (exit code, step, error type, details, weight) of the failures the mock draws;
#: ``{site}`` and ``{lumi}`` are filled in.
FAILURES: Final[tuple[tuple[int, str, str, str, float], ...]] = (
    (8021, "cmsRun1", "Fatal Exception",
     "An exception of category 'FileReadError' occurred while\n   [0] Processing  Event "
     "run: 367883 lumi: {lumi} event: 205188421 stream: 2\n   [1] Running path "
     "'AODoutput_step'\nException Message:\nXrdAdaptor::ClientRequest::HandleResponse() "
     "failure while running connection recovery.\n   Additional Info:\n      [a] Original "
     "error: '[ERROR] Operation expired' (errno=0, code=206, source=xrootd.{site}:1094 "
     "(site {site})).\n", 30.0),
    (8028, "cmsRun1", "Fatal Exception",
     "An exception of category 'FallbackFileOpenError' occurred while\n   [0] Constructing "
     "the EventProcessor\n   [1] Constructing input source of type PoolSource\nException "
     "Message:\nFailed to open the file 'root://cmsxrootd.fnal.gov//store/data/Run2024C/"
     "JetMET1/RAW/v1/000/380/310/00000/a3f1.root'\n", 8.0),
    (50660, "PerformanceError", "PerformanceKill",
     "Error in CMSSW step cmsRun1\nNumber of Cores: 4\nJob has exceeded maxPSS: 8000 MB\n"
     "Job has PSS: {lumi}12 MB\n", 20.0),
    (50664, "PerformanceError", "PerformanceKill",
     "Error in CMSSW step cmsRun1\nNumber of Cores: 8\nJob has exceeded maxTime - 172800 "
     "seconds\n", 6.0),
    (71304, "JobKilled", "JobKilled",
     "The job was killed by the WMAgent for using too much wallclock time at {site} "
     "(MaxWallTime)", 12.0),
    (99109, "stageOut1", "StageOutFailure",
     "WMAgent step executor failed: StageOutError\nCommand exited non-zero, ExitCode:60311"
     "\nOutput: stdout: gfal-copy error: 70 (Communication error on send) - TRANSFER "
     "globus_xio: Unable to connect to gridftp.{site}:2811\n", 10.0),
    (60307, "logArch1", "LogArchiveFailure",
     "Failed to stage out the log archive at {site}: the storage element answered "
     + XSS_TEXT + " (HTTP 500)", 4.0),
    (8001, "cmsRun1", "Fatal Exception",
     "An exception of category 'StdException' occurred while\n   [0] Processing Event run: "
     "1 lumi: {lumi} event: 7\n   [1] Running path 'RECOSIMoutput_step'\nException Message:"
     "\nA std::exception was thrown.\nvector::_M_range_check\nTraceback (most recent call "
     "last):\n" + _LONG_TRACE, 3.0),
)
_WEIGHTS: Final = [f[4] for f in FAILURES]
_STEPS: Final = ("cmsRun1", "stageOut1", "logArch1")


def _pick(rng: random.Random) -> tuple[int, str, str, str, float]:
    return rng.choices(FAILURES, weights=_WEIGHTS)[0]


def _site_failures(report: SiteReport) -> tuple[int, int]:
    counters = report.counters
    failed = sum(counters.get(f, 0) for f in ("FailureException", "FailureSubmit",
                                              "FailureCreate"))
    cooloff = sum(counters.get(f, 0) for f in ("CooloffJob", "CooloffSubmit",
                                               "CooloffCreate"))
    return failed, cooloff


def _document(t: Truth, agent: AgentReport, task: TaskReport, site: str, state: str,
              retry: int, failure: tuple[int, str, str, str, float] | None, wmbsid: int,
              rng: random.Random) -> dict[str, Any]:
    job = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}-{rng.randrange(1, 3000)}"
    host = agent.url
    stamp = agent.timestamp - rng.randrange(3600, 86400)
    leaf = task.path.rsplit("/", 1)[-1]
    lumi = rng.randrange(1, 900)
    errors: dict[str, list[dict[str, Any]]] = {step: [] for step in _STEPS}
    code = 0
    if failure is not None:
        code, step, kind, text, _weight = failure
        errors.setdefault(step, []).append({
            "type": kind, "details": text.replace("{site}", site).replace("{lumi}", str(lumi)),
            "exitCode": code})
    history = []
    for k in range(retry):
        history.append({"oldstate": "jobfailed", "newstate": "jobcooloff", "location": site,
                        "timestamp": stamp - (retry - k) * 15_000})
    if state == "success":
        history.append({"oldstate": "complete", "newstate": "success", "location": site,
                        "timestamp": stamp})
    else:
        history.append({"oldstate": "jobfailed", "newstate": state, "location": site,
                        "timestamp": stamp})
    log_lfn = (f"/store/unmerged/logs/prod/2024/6/{rng.randrange(1, 10)}/{t.name}/{leaf}/"
               f"{rng.randrange(10**6):07d}/{retry}/{job}-{retry}-logArchive.tar.gz")
    output: list[dict[str, Any]] = []
    if state == "success" and t.output_datasets:
        output.append({"type": "output", "lfn": f"/store/unmerged/{t.name}/{job}.root",
                       "location": site, "checksums": {"adler32": f"{rng.getrandbits(32):08x}",
                                                       "cksum": str(rng.getrandbits(32))},
                       "size": rng.randrange(10**8, 4 * 10**9)})
    output.append({"type": "logArchive", "lfn": log_lfn, "location": f"{site}_Disk",
                   "checksums": {"adler32": f"{rng.getrandbits(32):08x}",
                                 "cksum": str(rng.getrandbits(32))}, "size": 0})
    tier2 = site.startswith("T2")
    doc: dict[str, Any] = {
        "_id": job,
        "wmbsid": wmbsid,
        "type": "jobsummary",
        "retrycount": retry,
        "workflow": t.name,
        "task": task.path,
        "jobtype": task.job_type,
        "state": state,
        "site": site,
        "cms_location": site,
        "exitcode": code,
        "eos_log_url": "" if state == "success" else (
            f"https://eoscmsweb.cern.ch/eos/cms/store/logs/prod/recent/PRODUCTION/{t.name}/"
            f"{leaf}/{host}-{wmbsid}-{retry}-log.tar.gz"),
        "worker_node_info": {
            "HostName": f"wn{rng.randrange(1000, 9999)}.{site.split('_')[-1].lower()}.example",
            "MachineFeatures": {"hs06": 234.72, "total_cpu": 16.0} if tier2 else {},
            "JobFeatures": {"hs06_job": 58.68, "allocated_cpu": 4.0} if tier2 else {}},
        "errors": errors,
        "lumis": [{"367883": {str(lumi + k): None for k in range(rng.randrange(1, 4))}}],
        "outputdataset": {} if state != "success" or not t.output_datasets else {
            "applicationName": "cmsRun", "applicationVersion": t.cmssw,
            "primaryDataset": t.output_datasets[0].split("/")[1],
            "processedDataset": t.output_datasets[0].split("/")[2],
            "dataTier": t.output_datasets[0].split("/")[3]},
        "inputfiles": [{"lfn": f"/store/data/{t.name[:12]}/{rng.getrandbits(64):016x}.root",
                        "input_type": "primaryFiles"} for _ in range(rng.randrange(1, 3))],
        "acdc_url": _ACDC,
        "agent_name": host,
        "output": output,
        "state_history": history,
        "timestamp": stamp,
    }
    if state == "success" and rng.random() < 0.5:
        doc["logArchiveLFN"] = {f"/store/logs/prod/2024/06/WMAgent/{t.name}/{t.name}-LogCollect"
                                f"-{rng.randrange(1, 99)}-logs.tar": True}
    return doc


def render_jobsummaries(t: Truth, seed: int) -> list[dict[str, Any]]:
    """The ``jobsummary`` documents of one workflow (none when no job failed)."""
    rng = random.Random(f"{seed}:{t.name}:jobs")
    docs: list[dict[str, Any]] = []
    wmbsid = 1_000_000 + rng.randrange(9_000_000)
    for agent in t.agents:
        for task in agent.tasks:
            for report in task.sites:
                failed, cooloff = _site_failures(report)
                if not failed and not cooloff:
                    continue
                # Failures cluster: a task at a site mostly fails one way.
                usual = _pick(rng)
                plan: list[tuple[str, int, tuple[int, str, str, str, float] | None]] = []
                for _ in range(min(failed, CAP_FAILED)):
                    failure = usual if rng.random() < 0.75 else _pick(rng)
                    retries = 0 if failure[0] in (50660, 50664) else 3
                    plan.append(("jobfailed", retries, failure))
                for _ in range(min(cooloff, CAP_COOLOFF)):
                    again = usual if rng.random() < 0.75 else _pick(rng)
                    plan.append(("jobcooloff", 1 + rng.randrange(2), again))
                if report.counters.get("Success", 0) and rng.random() < 0.3:
                    plan.append(("success", 1, None))
                for state, retries, what in plan:
                    wmbsid += 1 + rng.randrange(50)
                    docs.append(_document(t, agent, task, report.site, state, retries,
                                          what, wmbsid, rng))
    return docs
