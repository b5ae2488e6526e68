"""Benchmark: searching every request ever made, on the sqlite store (issue 13, target 7).

``wmstats bench search --workflows 1000000 --archived 0.9 [--db FILE]`` (or
``python -m wmstats.bench.search ...``) fills an sqlite file with N mock workflows
of every status, most of them archived (as most requests ever made are) -- or
reuses ``--db FILE`` when it already holds workflows, so that a large file is
loaded once --, starts the cache server on it (``wmstats cache-server --store
sqlite:///FILE``, no mock, no source: it serves the file as it is), and times over
127.0.0.1, each as ``/fetch?limit=100`` with full records and gzip:

* a page (``idx=0`` and the middle), no filter;
* the searches operators make, built from one real workflow of the file (the one
  in the middle of the name order): a name wildcard ``RequestName=*<8 characters
  of its name>*``; its PrepID, input dataset and output dataset, exactly and as
  the UI's text filters send them (``*text*``); a date range of one day and of 30
  days ending at its RequestDate, newest first (``sort=-RequestDate``) and in the
  default name order.

Each case: ``--requests`` sequential requests after a warm-up, at most
``--case-seconds``; p50, p99, the matches (``X-Total-Count``).  Loading writes no
job records (searches do not read them); its rate is reported.  Numbers go to
stdout as a table, and as JSON with ``--json FILE``.

``--cold`` (Linux) then times the *first* request of each case on a file that is
not in the kernel's page cache, as after a reboot: the file (and its WAL) is
written back and dropped from the cache (``posix_fadvise(DONTNEED)``), a server
started on it, and each case asked once -- at once (``cold_at_once``, while the
server reads its file in: :meth:`Store.warm <wmstats.store.Store.warm>`), and in
a second such start after that reading has ended (``cold_after_warming``;
``warming_seconds``, from the server's ``/metrics``).  A request over the time
budget shows as its status (422).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import requests

from wmstats.bench._common import (
    envelope,
    rss_kib,
    start_server,
    stop_server,
    wait_gauge_zero,
    write_json,
)
from wmstats.bench.server import _latency

__all__ = ["fill", "cases", "measure", "measure_cold", "flat_results", "main"]

#: Seconds in a day (the date ranges).
_DAY = 86_400


def fill(path: Path, workflows: int, archived: float, seed: int = 0) -> dict[str, Any]:
    """Fill (or reuse) the sqlite file ``path``: its workflow count, and the load's
    seconds and rate when it was filled here."""
    from wmstats.mock import MockGenerator
    from wmstats.store import open_store

    with open_store(f"sqlite:///{path}") as store:
        count = store.count()
        if count:
            return {"workflows": count, "reused": True}
        generator = MockGenerator(seed, archived=archived)
        start = time.monotonic()
        store.replace(generator.bundles(workflows), generator.agents())
        seconds = time.monotonic() - start
        return {"workflows": store.count(), "reused": False, "load_seconds": seconds,
                "load_per_s": workflows / seconds if seconds > 0 else 0.0}


def cases(sample: dict[str, Any], total: int) -> list[tuple[str, dict[str, str]]]:
    """The timed requests (name, query parameters), built from one workflow."""
    name = str(sample["RequestName"])
    middle = max(0, len(name) // 2 - 4)
    date = int(sample["RequestDate"])
    out: list[tuple[str, dict[str, str]]] = [
        ("page idx=0", {}),
        ("page idx=mid", {"idx": str(max(0, total // 2))}),
        ("name *8 chars*", {"RequestName": f"*{name[middle:middle + 8]}*"}),
    ]
    prep = str(sample.get("PrepID") or "")
    if prep:
        out += [("PrepID", {"PrepID.eq": prep}),
                ("PrepID *text*", {"PrepID": f"*{prep[1:-1]}*"})]
    inputs = str(sample.get("InputDataset") or "")
    if inputs:
        out += [("InputDataset", {"InputDataset.eq": inputs}),
                ("InputDataset *text*", {"InputDataset": f"*{inputs.split('/')[1]}*"})]
    outputs = [str(o) for o in sample.get("OutputDatasets") or ()]
    if outputs:
        out += [("OutputDatasets", {"OutputDatasets.eq": outputs[0]}),
                ("OutputDatasets *text*",
                 {"OutputDatasets": f"*{outputs[0].split('/')[2][:20]}*"})]
    for days in (1, 30):
        span = f"{date - days * _DAY}..{date}"
        out += [(f"date {days}d newest first", {"RequestDate": span, "sort": "-RequestDate"}),
                (f"date {days}d by name", {"RequestDate": span})]
    return out


def measure(path: Path, *, requests_per_case: int = 50, case_seconds: float = 10.0,
            log: IO[str] | None = None, start_timeout: float = 600.0) -> dict[str, Any]:
    """Start the cache server on the sqlite file ``path`` and time :func:`cases`."""
    proc, (base,) = start_server(
        ["cache-server", "--port", "0", "--quiet", "--store", f"sqlite:///{path}"],
        log or sys.stderr, start_timeout)
    result: dict[str, Any] = {}
    try:
        result["rss_started_mb"] = rss_kib(proc.pid).get("VmRSS", 0) / 1024
        headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
        with requests.Session() as http:
            first = http.get(f"{base}/fetch", params={"limit": "1"}, timeout=60)
            first.raise_for_status()
            total = int(first.headers["X-Total-Count"])
            middle = http.get(f"{base}/fetch", timeout=60, params={
                "idx": str(total // 2), "limit": "1",
                "fields": "RequestName,PrepID,InputDataset,OutputDatasets,RequestDate"})
            middle.raise_for_status()
            sample = middle.json()["workflows"][0]
            result["sample"] = sample
            timed: dict[str, Any] = {}
            for label, params in cases(sample, total):
                query = urllib.parse.urlencode({**params, "limit": "100"}, safe=",*:.")
                url = f"{base}/fetch?{query}"
                figures = _latency(http, url, headers, requests_per_case,
                                   max_seconds=case_seconds)
                matches = http.get(url, headers=headers, timeout=60)
                matches.raise_for_status()
                timed[label] = {**figures, "query": query,
                                "matches": int(matches.headers["X-Total-Count"])}
            result["cases"] = timed
        result["rss_after_mb"] = rss_kib(proc.pid).get("VmRSS", 0) / 1024
    finally:
        stop_server(proc)
        result["server_exit_status"] = proc.returncode
    return result


def drop_from_page_cache(path: Path) -> None:
    """Write the sqlite file ``path`` and its WAL back to disk, then drop their pages
    from the kernel's page cache (``os.posix_fadvise``: Linux and some other Unixes)."""
    for file in (path, Path(f"{path}-wal")):
        if not file.exists():
            continue
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure_cold(path: Path, sample: dict[str, Any], total: int, *,
                 log: IO[str] | None = None, start_timeout: float = 600.0
                 ) -> dict[str, Any]:
    """The first request of each of :func:`cases` (built from ``sample``, one of
    ``total`` workflows) on the file dropped from the page cache: asked at once
    after the server starts, and after a second cold start once the server has read
    its file in (see the module docstring)."""
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
    result: dict[str, Any] = {}
    for mode in ("cold_at_once", "cold_after_warming"):
        drop_from_page_cache(path)
        proc, (base,) = start_server(
            ["cache-server", "--port", "0", "--quiet", "--store", f"sqlite:///{path}"],
            log or sys.stderr, start_timeout)
        try:
            with requests.Session() as http:
                if mode == "cold_after_warming":
                    result["warming_seconds"] = wait_gauge_zero(
                        http, base, "store_warming", "the store's warming", start_timeout,
                        poll=0.1)
                firsts: dict[str, Any] = {}
                for label, params in cases(sample, total):
                    query = urllib.parse.urlencode({**params, "limit": "100"}, safe=",*:.")
                    began = time.perf_counter()
                    with http.get(f"{base}/fetch?{query}", headers=headers,
                                  timeout=600) as response:
                        size = len(response.content)
                    firsts[label] = {"ms": (time.perf_counter() - began) * 1000,
                                     "status": response.status_code, "bytes": size}
                result[mode] = firsts
        finally:
            stop_server(proc)
    return result


def flat_results(result: dict[str, Any]) -> dict[str, float]:
    """``{figure: number}``: per case ``case[LABEL].p50_ms`` / ``.p99_ms`` /
    ``.matches``, ``page_p50_ms`` (the worst page), ``search_p50_ms_max`` (the worst
    search), the load's rate and the server's RSS."""
    flat: dict[str, float] = {}
    for key in ("workflows", "load_seconds", "load_per_s", "rss_started_mb", "rss_after_mb",
                "file_mb"):
        if isinstance(result.get(key), (int, float)):
            flat[key] = result[key]
    timed = result.get("cases", {})
    for label, figures in timed.items():
        for key in ("p50_ms", "p99_ms", "matches"):
            flat[f"case[{label}].{key}"] = figures[key]
    pages = [f["p50_ms"] for label, f in timed.items() if label.startswith("page")]
    searches = [f["p50_ms"] for label, f in timed.items() if not label.startswith("page")]
    if pages:
        flat["page_p50_ms"] = max(pages)
    if searches:
        flat["search_p50_ms_max"] = max(searches)
        flat["search_p99_ms_max"] = max(f["p99_ms"] for label, f in timed.items()
                                        if not label.startswith("page"))
    for mode in ("cold_at_once", "cold_after_warming"):
        firsts = result.get(mode)
        if firsts:
            for label, first in firsts.items():
                flat[f"{mode}[{label}].ms"] = first["ms"]
            flat[f"{mode}_ms_max"] = max(first["ms"] for first in firsts.values())
            flat[f"{mode}_over_budget"] = sum(1 for first in firsts.values()
                                              if first["status"] == 422)
    if isinstance(result.get("warming_seconds"), (int, float)):
        flat["warming_seconds"] = result["warming_seconds"]
    return flat


def _first(figure: dict[str, Any] | None) -> str:
    """One first request of :func:`measure_cold`: its ms, and its status unless 200."""
    if not figure:
        return "-"
    code = "" if figure["status"] == 200 else f" ({figure['status']})"
    return f"{figure['ms']:.1f}{code}"


def _report(result: dict[str, Any], out: IO[str]) -> None:
    loaded = ("reused" if result.get("reused") else
              f"loaded in {result.get('load_seconds', 0):.0f} s, "
              f"{result.get('load_per_s', 0):,.0f} workflows/s")
    out.write(f"\n== search on the sqlite store, {result['workflows']:,} workflows ({loaded}; "
              f"file {result.get('file_mb', 0):,.0f} MB) ==\n")
    out.write(f"{'case (limit=100, gzip)':<28} {'p50 ms':>8} {'p99 ms':>8} {'matches':>9}  query\n")
    for label, f in result.get("cases", {}).items():
        out.write(f"{label:<28} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} {f['matches']:>9,}  "
                  f"{f['query']}\n")
    out.write(f"server RSS: started {result.get('rss_started_mb', 0):.0f} MB, after "
              f"{result.get('rss_after_mb', 0):.0f} MB\n")
    at_once, after = result.get("cold_at_once"), result.get("cold_after_warming")
    if at_once and after:
        warming = result.get("warming_seconds")
        out.write(f"\nfirst request, file not in the page cache: at once, and after the "
                  f"server read it in ({'?' if warming is None else f'{warming:.1f}'} s)\n")
        out.write(f"{'case (limit=100, gzip)':<28} {'at once ms':>11} {'after ms':>9}\n")
        for label, first in at_once.items():
            out.write(f"{label:<28} {_first(first):>11} {_first(after.get(label)):>9}\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench search``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="wmstats bench search",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", "-n", type=int, default=100_000,
                        help="mock workflows to load (default 100,000)")
    parser.add_argument("--archived", type=float, default=0.9,
                        help="the share of archived requests (default 0.9)")
    parser.add_argument("--db", metavar="FILE",
                        help="the sqlite file: reused when it holds workflows, else filled "
                             "and kept (default: a temporary file)")
    parser.add_argument("--requests", type=int, default=50,
                        help="timed requests per case (default 50)")
    parser.add_argument("--case-seconds", type=float, default=10.0,
                        help="at most this long per case (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cold", action="store_true",
                        help="also time the first request of each case with the file "
                             "dropped from the page cache, at once and after the server "
                             "read it in (Linux)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 10 or args.requests < 1 or not 0.0 <= args.archived <= 1.0:
        parser.error("need --workflows >= 10, --requests >= 1, --archived from 0 to 1")
    if args.cold and not hasattr(os, "posix_fadvise"):
        parser.error("--cold drops the file from the page cache with posix_fadvise, "
                     "which this system does not have")
    with tempfile.TemporaryDirectory(prefix="wmstats-bench-") as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "search.db"
        print(f"filling {path} with {args.workflows:,} mock workflows "
              f"(archived {args.archived}) unless it holds some...", file=sys.stderr, flush=True)
        result = fill(path, args.workflows, args.archived, args.seed)
        result["file_mb"] = path.stat().st_size / 2**20
        result.update(measure(path, requests_per_case=args.requests,
                              case_seconds=args.case_seconds))
        if args.cold:
            result.update(measure_cold(path, result["sample"], result["workflows"]))
    _report(result, sys.stdout)
    if args.json:
        write_json(args.json, envelope("search", result["workflows"], flat_results(result),
                                       result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
