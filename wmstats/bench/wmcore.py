"""Benchmark: the WMCore-compatible API next to reqmon (``wmstats bench wmcore``).

::

    wmstats bench wmcore --workflows 10000 [--url http://host:5984] [--repeat 5] [--json FILE]

On one CouchDB-protocol server (the one at ``--url``, fresh databases deleted
afterwards, or a pouchdb-server started here, on disk), it

1. seeds ``N`` mock workflows (:func:`wmstats.testing.reqmon.seed_mock`);
2. starts ``wmstats cache-server --source couchdb://...`` (the WMCore-compatible API
   at ``/wmstatsserver/data``) and waits for its first load;
3. starts the real reqmon 2.4.5.9 (:class:`~wmstats.testing.reqmon.ReqmonServer`,
   ``ci/install-reqmon.sh``) on the same databases and waits for its first fill;
4. times every API both serve, as WMCore's client asks (``Accept-Encoding: gzip``),
   ``--repeat`` times each, the two servers alternating: the median of each, their
   ratio (reqmon / wmstats) and the reply sizes; then each server's RSS;
5. reads wmstats' own full fetch (``/fetch``, NDJSON, every workflow the source
   shows) once in each content coding the server offers (zstd, br, gzip): its bytes
   on the wire over those of reqmon's gzip ``requestcache`` reply (issue 13's
   "fewer bytes" target: the same workflows, reqmon's cache holds the active ones).

The machine may be shared: compare the ratios, not single timings.  Prints a table;
``--json FILE`` writes the envelope of :mod:`wmstats.bench._common`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Any

import requests

from wmstats.bench._common import envelope, rss_mib, start_server, stop_server, write_json
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


def measure(couch_url: str, workflows: int, *, repeat: int = 5, seed: int = 0,
            log: IO[str] | None = None) -> tuple[dict[str, float | int | None],
                                                  dict[str, Any]]:
    """Seed, start both servers, time every query (see the module docstring)."""
    from wmstats.testing.reqmon import ReqmonServer, seed_mock

    out = log or sys.stderr
    suffix = uuid.uuid4().hex[:10]
    reqmgr_db, wmstats_db = f"wmstats_bench_req_{suffix}", f"wmstats_bench_wms_{suffix}"
    results: dict[str, float | int | None] = {}
    details: dict[str, Any] = {"queries": {}}
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
        proc, (url,) = start_server(["cache-server", "--port", "0", "--quiet", "--source",
                                     source], out, 600)
        ours = url + DEFAULT_PREFIX
        while True:
            with session.get(url + "/healthz", timeout=600) as response:
                if response.status_code == 200:
                    break
            time.sleep(0.2)
        results["wmstats_ready_seconds"] = time.monotonic() - began
        with ReqmonServer(couch_url, reqmgr_db=reqmgr_db, wmstats_db=wmstats_db,
                          all_views=False, fill_timeout=3600) as reqmon:
            results["reqmon_views_seconds"] = reqmon.views_seconds
            results["reqmon_ready_seconds"] = reqmon.ready_seconds
            results["reqmon_fill_seconds"] = reqmon.fill_seconds
            name = urllib.parse.quote(_pick_request(session, ours))
            details["request"] = urllib.parse.unquote(name)
            for label, query in QUERIES:
                path = query.format(name=name)
                timing = _time_both(session, f"{ours}/{path}", f"{reqmon.data_url}/{path}",
                                    repeat)
                medians = {who: statistics.median(t) for who, t in timing["times"].items()}
                details["queries"][label] = {"path": path, **timing}
                key = label.replace(" ", "_").replace("<", "").replace(">", "")
                results[f"{key}_wmstats_ms"] = medians["wmstats"] * 1000
                results[f"{key}_reqmon_ms"] = medians["reqmon"] * 1000
                results[f"{key}_ratio"] = (medians["reqmon"] / medians["wmstats"]
                                           if medians["wmstats"] else None)
                results[f"{key}_wmstats_bytes"] = timing["bytes"]["wmstats"]
                results[f"{key}_reqmon_bytes"] = timing["bytes"]["reqmon"]
            reqmon_gzip = results["requestcache_reqmon_bytes"]
            for coding in FULL_FETCH_CODINGS:
                sent = _full_fetch_bytes(session, url, coding)
                results[f"full_fetch_{coding}_bytes"] = sent
                results[f"full_fetch_{coding}_over_reqmon_gzip"] = (
                    sent / reqmon_gzip if sent is not None and reqmon_gzip else None)
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


def _report(workflows: int, results: dict[str, Any], details: dict[str, Any],
            out: IO[str]) -> None:
    out.write(f"\nWMCore-compatible API vs reqmon 2.4.5.9, {workflows:,} workflows "
              f"(median of each, gzip as WMCore's client asks)\n\n")
    out.write(f"{'query':32} {'wmstats ms':>11} {'reqmon ms':>11} {'ratio':>7} "
              f"{'wmstats kB':>11} {'reqmon kB':>11}\n")
    for label, _query in QUERIES:
        key = label.replace(" ", "_").replace("<", "").replace(">", "")
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
    for key in ("seed_seconds", "wmstats_ready_seconds", "reqmon_views_seconds",
                "reqmon_ready_seconds", "reqmon_fill_seconds", "wmstats_rss_mib",
                "wmstats_peak_rss_mib", "reqmon_rss_mib", "reqmon_peak_rss_mib"):
        value = results.get(key)
        out.write(f"{key:32} {'-' if value is None else f'{value:.1f}'}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench wmcore``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="wmstats bench wmcore",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", "-n", type=int, default=10_000)
    parser.add_argument("--url", default=os.environ.get("WMSTATS_COUCHDB_URL"),
                        help="an existing CouchDB (default: start a pouchdb-server)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed calls of each query on each server (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 10 or args.repeat < 1:
        parser.error("need --workflows >= 10 and --repeat >= 1")
    with _couchdb(args.url) as url:
        results, details = measure(url, args.workflows, repeat=args.repeat, seed=args.seed)
    details["couchdb"] = "given" if args.url else "pouchdb-server on disk"
    _report(args.workflows, results, details, sys.stdout)
    if args.json:
        write_json(args.json, envelope("wmcore", args.workflows, results, details))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
