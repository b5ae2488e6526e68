"""Benchmark: the WMCore-compatible API next to reqmon (``wmstats bench wmcore``).

::

    wmstats bench wmcore --workflows 10000 [--url http://host:5984] [--repeat 5]
                         [--fill-only] [--json FILE]

On one CouchDB-protocol server (the one at ``--url``, fresh databases deleted
afterwards, or a pouchdb-server started here, on disk), it

1. seeds ``N`` mock workflows (:func:`wmstats.testing.reqmon.seed_mock`);
2. installs and builds the views reqmon reads
   (:func:`~wmstats.testing.reqmon.build_views`, ``reqmon_views_seconds``): CouchDB
   keeps its views built in production, so neither fill below pays for them, and
   building them reads every document once, so that pouchdb-server's and the
   system's caches are as warm for the first fill as for the second;
3. starts ``wmstats cache-server --source couchdb://...`` (the WMCore-compatible API
   at ``/wmstatsserver/data``) and waits until ``/healthz`` says ready:
   ``wmstats_ready_seconds`` from process start, and ``wmstats_load_seconds``, the
   source's own full load (``last_load_seconds``: from its first read of CouchDB
   until the store holds every workflow);
4. starts the real reqmon 2.4.5.9 (:class:`~wmstats.testing.reqmon.ReqmonServer`,
   ``ci/install-reqmon.sh``) on the same databases, the wmstats server idle, and
   waits for its first fill: ``reqmon_fill_seconds`` is reqmon's own figure for it
   (its task log's ``Total time loading data from ReqMgr2 and WMStats``: from the
   first view query until the data cache holds every active request),
   ``reqmon_ready_seconds`` from process start;
5. ``fill_ratio`` = ``wmstats_load_seconds`` / ``reqmon_fill_seconds`` (issue 13's
   "fill" target: at most 0.5).  The two durations are comparable: each is the
   server's own time from its first read of the same databases on the same
   pouchdb-server until its cache answers with every workflow, without process
   start-up and without building views; wmstats reads every document
   (``_all_docs``) and shows the active ones, reqmon reads the active requests
   through its views.  ``ready_ratio`` compares the process-start figures;
6. times every API both serve (:data:`QUERIES`; only ``requestcache`` with
   ``--fill-only``), as WMCore's client asks (``Accept-Encoding: gzip``),
   ``--repeat`` times each, the two servers alternating: the median of each, their
   ratio (reqmon / wmstats) and the reply sizes; then each server's RSS;
7. reads wmstats' own full fetch (``/fetch``, NDJSON, every workflow the source
   shows) once in each content coding the server offers (zstd, br, gzip): its bytes
   on the wire over those of reqmon's gzip ``requestcache`` reply (issue 13's
   "fewer bytes" target: the same workflows, reqmon's cache holds the active ones;
   ``wmstats_workflows`` and ``reqmon_requests`` say how many each holds).  The
   server keeps the zstd form of that fetch compressed at a high level in the
   background (``zstd_frame_level``, :class:`wmstats.stream.FrameCache`): the
   benchmark first waits until it is complete (``/metrics``'
   ``wmstats_zstd_frames_stale`` at 0), ``full_fetch_zstd_wait_seconds`` (from the
   end of wmstats' load; it waits before reqmon starts, so that neither reqmon's
   fill nor the timed queries share the CPU with that compression).

``--fill-only`` leaves out the other queries of step 6 (the long part at large
sizes): what issue 13's fill and bytes targets need, e.g. at 10,000 and 40,000
workflows.  The machine may be shared: compare the ratios, not single timings.
Prints a table; ``--json FILE`` writes the envelope of :mod:`wmstats.bench._common`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Any

import requests

from wmstats.bench._common import (
    envelope,
    rss_mib,
    start_server,
    stop_server,
    wait_zstd_frames,
    write_json,
)
from wmstats.web.wmcore import DEFAULT_PREFIX

__all__ = ["main", "measure", "QUERIES"]

_SITE_LISTS = "mask=SiteWhitelist&mask=SiteBlacklist"
#: (label, API path and query) of each timed call: the WMCore callers' own, then the rest.
QUERIES: tuple[tuple[str, str], ...] = (
    ("requestcache", "requestcache"),
    ("SiteListPoller running-open", f"filtered_requests?RequestStatus=running-open&{_SITE_LISTS}"),
    ("SiteListPoller acquired", f"filtered_requests?RequestStatus=acquired&{_SITE_LISTS}"),
    ("HeartbeatMonitor", "filtered_requests?mask=RequestStatus&mask=RequestType"
                         "&mask=RequestPriority&mask=Campaign&mask=RequestNumEvents"),
    ("DBSUploadPoller", "filtered_requests?RequestType=StepChain&ParentageResolved=False"
                        "&mask=ChainParentageMap"),
    ("check-ACDC-parentage", "filtered_requests?mask=OutputDatasets&mask=RequestType"),
    ("filtered_requests whole", "filtered_requests?RequestStatus=running-closed"),
    ("globallocks", "globallocks"),
    ("protectedlfns", "protectedlfns"),
    ("protectedlfns_final", "protectedlfns_final"),
    ("teams", "teams"),
    ("info", "info"),
    ("request/<name>", "request/{name}"),
    ("isfinished/<name>", "isfinished/{name}"),
)


@contextlib.contextmanager
def _couchdb(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    from wmstats.testing.couchdb_server import PouchServer

    with PouchServer(in_memory=False, startup_timeout=60) as server:
        yield server.url


def _fetch(session: requests.Session, url: str) -> tuple[float, int, int]:
    """One GET as WMCore's client makes it: (seconds to the body's end, status, body
    bytes as sent)."""
    began = time.perf_counter()
    with session.get(url, headers={"Accept": "application/json",
                                   "Accept-Encoding": "gzip"}, timeout=1800,
                     stream=True) as response:
        sent = len(response.raw.read(decode_content=False))
        seconds = time.perf_counter() - began
    return seconds, response.status_code, sent


#: The content codings of wmstats' full fetch whose bytes the benchmark reads.
FULL_FETCH_CODINGS: tuple[str, ...] = ("zstd", "br", "gzip")


def _full_fetch_bytes(session: requests.Session, base: str, coding: str) -> int | None:
    """The bytes on the wire of wmstats' full NDJSON fetch in ``coding`` (``None`` when
    the server answers in another coding: that codec is not installed there)."""
    with session.get(f"{base}/fetch?limit=0&format=ndjson", timeout=600) as response:
        total = int(response.headers.get("X-Total-Count") or 0) or None
    url = f"{base}/fetch?format=ndjson" + ("" if total is None else f"&limit={total}")
    with session.get(url, headers={"Accept": "application/x-ndjson",
                                   "Accept-Encoding": coding}, timeout=1800,
                     stream=True) as response:
        sent = len(response.raw.read(decode_content=False))
        if response.status_code != 200 or response.headers.get("Content-Encoding") != coding:
            return None
    return sent


def _time_both(session: requests.Session, ours: str, theirs: str, repeat: int,
               ) -> dict[str, Any]:
    times: dict[str, list[float]] = {"wmstats": [], "reqmon": []}
    sizes: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for _ in range(repeat):
        for who, url in (("wmstats", ours), ("reqmon", theirs)):
            seconds, status, sent = _fetch(session, url)
            times[who].append(seconds)
            sizes[who], statuses[who] = sent, status
    return {"times": times, "bytes": sizes, "status": statuses}


def _pick_request(session: requests.Session, base: str) -> str:
    """A running request with agents (its name), from the API itself."""
    url = (f"{base}/filtered_requests?RequestStatus=running-open&AgentJobInfo=CLEANED"
           f"&mask=RequestName")
    with session.get(f"{base}/filtered_requests?RequestStatus=running-open&mask=RequestName",
                     timeout=600) as response:
        names = [row["RequestName"] for row in response.json()["result"]]
    with session.get(url, timeout=600) as response:
        cleaned = {row["RequestName"] for row in response.json()["result"]}
    busy = [n for n in names if n not in cleaned]
    chosen: str = sorted(busy or names)[0]
    return chosen


def _key(label: str) -> str:
    """A query's label as the prefix of its figures."""
    return label.replace(" ", "_").replace("<", "").replace(">", "")


def _wait_ready(session: requests.Session, url: str, proc: subprocess.Popen[str],
                timeout: float) -> dict[str, Any]:
    """Poll ``/healthz`` until the server says ready; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        with session.get(url + "/healthz", timeout=600) as response:
            if response.status_code == 200:
                health: dict[str, Any] = response.json()
                return health
        if proc.poll() is not None:
            raise RuntimeError("the cache server died while loading")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cache server was not ready within {timeout:.0f} s")
        time.sleep(0.05)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def measure(couch_url: str, workflows: int, *, repeat: int = 5, seed: int = 0,
            fill_only: bool = False, log: IO[str] | None = None
            ) -> tuple[dict[str, float | int | None], dict[str, Any]]:
    """Seed, build reqmon's views, start both servers, time the queries (see the
    module docstring); with ``fill_only`` only ``requestcache`` is timed."""
    from wmstats.testing.reqmon import ReqmonServer, build_views, install_views, seed_mock

    out = log or sys.stderr
    suffix = uuid.uuid4().hex[:10]
    reqmgr_db, wmstats_db = f"wmstats_bench_req_{suffix}", f"wmstats_bench_wms_{suffix}"
    results: dict[str, float | int | None] = {}
    details: dict[str, Any] = {"queries": {}, "fill_only": fill_only}
    began = time.monotonic()
    seed_mock(couch_url, workflows, seed=seed, reqmgr_db=reqmgr_db, wmstats_db=wmstats_db)
    results["seed_seconds"] = time.monotonic() - began
    parts = urllib.parse.urlsplit(couch_url)
    source = (f"couchdb://{parts.netloc}{parts.path}?requests_db={reqmgr_db}"
              f"&wmstats_db={wmstats_db}")
    proc = None
    session = requests.Session()
    try:
        began = time.monotonic()
        install_views(couch_url, reqmgr_db, wmstats_db)
        build_views(couch_url, reqmgr_db, wmstats_db, all_views=False, timeout=3600)
        results["reqmon_views_seconds"] = time.monotonic() - began
        began = time.monotonic()
        proc, (url,) = start_server(["cache-server", "--port", "0", "--quiet", "--source",
                                     source], out, 600)
        ours = url + DEFAULT_PREFIX
        health = _wait_ready(session, url, proc, 3600)
        results["wmstats_ready_seconds"] = time.monotonic() - began
        results["wmstats_load_seconds"] = health["source"]["last_load_seconds"]
        results["wmstats_workflows"] = health["workflows"]
        # Before reqmon starts: its fill and the timings do not share the CPU with
        # the compression of the zstd frames.
        results["full_fetch_zstd_wait_seconds"] = wait_zstd_frames(session, url, 3600)
        with ReqmonServer(couch_url, reqmgr_db=reqmgr_db, wmstats_db=wmstats_db,
                          prepare_views=False, fill_timeout=3600) as reqmon:
            results["reqmon_ready_seconds"] = reqmon.ready_seconds
            results["reqmon_fill_seconds"] = reqmon.fill_seconds
            results["reqmon_requests"] = (reqmon.first_fill.requests
                                          if reqmon.first_fill is not None else None)
            results["fill_ratio"] = _ratio(results["wmstats_load_seconds"],
                                           results["reqmon_fill_seconds"])
            results["ready_ratio"] = _ratio(results["wmstats_ready_seconds"],
                                            results["reqmon_ready_seconds"])
            queries = QUERIES[:1] if fill_only else QUERIES
            name = ""
            if any("{name}" in query for _label, query in queries):
                name = urllib.parse.quote(_pick_request(session, ours))
                details["request"] = urllib.parse.unquote(name)
            for label, query in queries:
                path = query.format(name=name)
                timing = _time_both(session, f"{ours}/{path}", f"{reqmon.data_url}/{path}",
                                    repeat)
                medians = {who: statistics.median(t) for who, t in timing["times"].items()}
                details["queries"][label] = {"path": path, **timing}
                key = _key(label)
                results[f"{key}_wmstats_ms"] = medians["wmstats"] * 1000
                results[f"{key}_reqmon_ms"] = medians["reqmon"] * 1000
                results[f"{key}_ratio"] = _ratio(medians["reqmon"], medians["wmstats"])
                results[f"{key}_wmstats_bytes"] = timing["bytes"]["wmstats"]
                results[f"{key}_reqmon_bytes"] = timing["bytes"]["reqmon"]
            reqmon_gzip = results["requestcache_reqmon_bytes"]
            for coding in FULL_FETCH_CODINGS:
                sent = _full_fetch_bytes(session, url, coding)
                results[f"full_fetch_{coding}_bytes"] = sent
                results[f"full_fetch_{coding}_over_reqmon_gzip"] = _ratio(sent, reqmon_gzip)
            results["wmstats_rss_mib"] = rss_mib(proc.pid)
            results["reqmon_rss_mib"] = reqmon.rss()
            results["reqmon_peak_rss_mib"] = reqmon.rss("VmHWM")
    finally:
        session.close()
        if proc is not None:
            results["wmstats_peak_rss_mib"] = rss_mib(proc.pid, "VmHWM")
            stop_server(proc)
        for db in (reqmgr_db, wmstats_db):
            with contextlib.suppress(requests.RequestException):
                requests.delete(f"{couch_url}/{db}", timeout=600)
    return results, details


#: The fill and memory figures :func:`_report` prints after the queries.
_SUMMARY: tuple[str, ...] = (
    "seed_seconds", "reqmon_views_seconds", "wmstats_load_seconds", "reqmon_fill_seconds",
    "fill_ratio", "wmstats_ready_seconds", "reqmon_ready_seconds", "ready_ratio",
    "wmstats_workflows", "reqmon_requests", "full_fetch_zstd_wait_seconds",
    "wmstats_rss_mib", "wmstats_peak_rss_mib", "reqmon_rss_mib", "reqmon_peak_rss_mib")


def _report(workflows: int, results: dict[str, Any], details: dict[str, Any],
            out: IO[str]) -> None:
    out.write(f"\nWMCore-compatible API vs reqmon 2.4.5.9, {workflows:,} workflows "
              f"(median of each, gzip as WMCore's client asks)\n\n")
    out.write(f"{'query':32} {'wmstats ms':>11} {'reqmon ms':>11} {'ratio':>7} "
              f"{'wmstats kB':>11} {'reqmon kB':>11}\n")
    for label in details["queries"]:
        key = _key(label)
        ratio = results.get(f"{key}_ratio")
        out.write(f"{label:32} {results[f'{key}_wmstats_ms']:11.1f} "
                  f"{results[f'{key}_reqmon_ms']:11.1f} "
                  f"{'-' if ratio is None else f'{ratio:.1f}x':>7} "
                  f"{results[f'{key}_wmstats_bytes'] / 1000:11.1f} "
                  f"{results[f'{key}_reqmon_bytes'] / 1000:11.1f}\n")
    out.write("\n")
    for coding in FULL_FETCH_CODINGS:
        sent, ratio = (results.get(f"full_fetch_{coding}_bytes"),
                       results.get(f"full_fetch_{coding}_over_reqmon_gzip"))
        out.write(f"wmstats full fetch, {coding:4}: "
                  + ("not offered here\n" if sent is None or ratio is None else
                     f"{sent / 1000:.1f} kB = {ratio:.3f}x reqmon's gzip requestcache\n"))
    for key in _SUMMARY:
        value = results.get(key)
        text = ("-" if value is None else f"{value:.3f}" if key.endswith("ratio")
                else f"{value:,}" if isinstance(value, int) else f"{value:.1f}")
        out.write(f"{key:32} {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench wmcore``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="wmstats bench wmcore",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", "-n", type=int, default=10_000)
    parser.add_argument("--url", default=os.environ.get("WMSTATS_COUCHDB_URL"),
                        help="an existing CouchDB (default: start a pouchdb-server)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed calls of each query on each server (default 5)")
    parser.add_argument("--fill-only", action="store_true",
                        help="time requestcache only, not every query: the fill and the "
                             "full fetch's bytes (issue 13's targets) at large sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 10 or args.repeat < 1:
        parser.error("need --workflows >= 10 and --repeat >= 1")
    with _couchdb(args.url) as url:
        results, details = measure(url, args.workflows, repeat=args.repeat,
                                   seed=args.seed, fill_only=args.fill_only)
    details["couchdb"] = "given" if args.url else "pouchdb-server on disk"
    _report(args.workflows, results, details, sys.stdout)
    if args.json:
        write_json(args.json, envelope("wmcore", args.workflows, results, details))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
