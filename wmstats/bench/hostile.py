"""Benchmark: hostile requests -- costly filters and slow clients -- against the servers.

``wmstats bench hostile --workflows 100000 --store memory --store sqlite`` (or
``python -m wmstats.bench.hostile ...``) starts ``wmstats serve --mock N`` (the
cache server and the UI server) in a separate process for each store, then
measures from this process, over 127.0.0.1:

* **costly filters**: each request of :data:`FILTER_CASES` (the issue's regex
  ``RequestName.re=^(?:.|.){1,18}#``, the UI search ``*?*?*?*?*#*`` on the cache
  server and through the UI server, and patterns large enough to meet the time
  budget), ``--repeat`` times: the seconds each takes and its status (200, or 422
  when the server's time budget stopped it), while another client asks the
  cache server's ``/healthz`` every 10 ms: the slowest and the median of those
  answers while the filter request ran;
* **slow clients**: with 50 connections holding half a request (a request line,
  no blank line) and 12 sending one header line every few seconds, the seconds a
  normal ``/healthz`` takes on the cache and on the UI server (``--repeat``
  times).

Every request loop is bounded; the server is stopped (SIGTERM, by PID) at the end.
Numbers go to stdout as a table, and as JSON with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any, Final

import requests

from wmstats.bench._common import (
    CACHE_URL,
    UI_URL,
    envelope,
    start_server,
    stop_server,
    write_json,
)

__all__ = ["FILTER_CASES", "main", "measure"]

#: (label, server, path): the costly requests, on the cache ("cache") or the UI
#: server ("ui").
FILTER_CASES: Final[tuple[tuple[str, str, str], ...]] = (
    ("regex_issue", "cache", "/fetch?limit=1&RequestName.re=^(?:.|.){1,18}%23"),
    ("regex_issue_count", "cache", "/fetch?limit=0&RequestName.re=^(?:.|.){1,18}%23"),
    ("glob_issue", "cache", "/fetch?limit=1&RequestName=*%3F*%3F*%3F*%3F*%23*"),
    ("glob_issue_status", "cache", "/status?RequestName=*%3F*%3F*%3F*%3F*%23*"),
    ("ui_search_rows", "ui", "/api/workflows?q=*%3F*%3F*%3F*%3F*%23*"),
    ("ui_search_summary", "ui", "/api/summary?q=*%3F*%3F*%3F*%3F*%23*"),
    ("ui_search_sites", "ui", "/api/groups/site?q=*%3F*%3F*%3F*%3F*%23*"),
    ("regex_large", "cache", "/fetch?limit=1&RequestName.re=" + urllib.parse.quote(
        "(?:[a-z_0-9]{1,20}[^#]{1,20}){1,40}#", safe="")),
    ("regex_many", "cache", "/fetch?limit=1&" + "&".join(
        "RequestName.re=" + urllib.parse.quote(f"^.{{{i}}}[a-z]{{1,900}}#", safe="")
        for i in range(20))),
    ("glob_many", "cache", "/fetch?limit=1&" + "&".join(
        "RequestName.glob=" + urllib.parse.quote("*?" * 200 + f"{i}#*", safe="")
        for i in range(20))),
)
#: Connections holding an unfinished request, and connections sending one header
#: line every few seconds (the issue's slow clients).
HALF_SENT: Final = 50
DRIPPING: Final = 12


@contextlib.contextmanager
def _poll_health(url: str) -> Iterator[list[tuple[float, float]]]:
    """Ask ``url/healthz`` every 10 ms in a thread; yields the (start, seconds) list."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def run() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    http.get(url + "/healthz", timeout=30).content
                except requests.RequestException:
                    pass
                samples.append((start, time.perf_counter() - start))
                stop.wait(0.01)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield samples
    finally:
        stop.set()
        worker.join(timeout=60)


def _filter_cases(urls: dict[str, str], repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with requests.Session() as http, _poll_health(urls["cache"]) as health:
        time.sleep(0.2)
        for label, server, path in FILTER_CASES:
            times: list[float] = []
            statuses: list[int] = []
            during: list[float] = []
            for _ in range(max(1, repeat)):
                start = time.perf_counter()
                response = http.get(urls[server] + path, timeout=600)
                response.content
                end = time.perf_counter()
                times.append(end - start)
                statuses.append(response.status_code)
                during += [took for (at, took) in list(health) if start <= at <= end]
            out[label] = {"seconds": times, "status": statuses,
                          "healthz_max_ms": max(during) * 1000 if during else None,
                          "healthz_p50_ms": statistics.median(during) * 1000 if during
                          else None,
                          "healthz_samples": len(during)}
    return out


def _half_sent(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return sock


def _slow_clients(urls: dict[str, str], repeat: int, drip_seconds: float) -> dict[str, Any]:
    """A normal request's time while slow clients hold connections to each server."""
    out: dict[str, Any] = {}
    for server, url in urls.items():
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        idle = [_half_sent(host, port) for _ in range(HALF_SENT)]
        drips = [_half_sent(host, port) for _ in range(DRIPPING)]
        stop = threading.Event()

        def drip() -> None:
            n = 0
            while not stop.wait(drip_seconds):
                n += 1
                for sock in drips:
                    with contextlib.suppress(OSError):
                        sock.sendall(f"X-Drip-{n}: {n}\r\n".encode("ascii"))

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        times: list[float] = []
        statuses: list[int] = []
        try:
            time.sleep(0.5)
            for _ in range(max(1, repeat)):
                start = time.perf_counter()
                try:
                    response = requests.get(url + "/healthz" if server == "cache"
                                            else url + "/api/status", timeout=120)
                    statuses.append(response.status_code)
                except requests.RequestException:
                    statuses.append(0)
                times.append(time.perf_counter() - start)
                time.sleep(drip_seconds / 2)
        finally:
            stop.set()
            dripper.join(timeout=30)
            for sock in idle + drips:
                sock.close()
        out[server] = {"seconds": times, "status": statuses}
    return out


def measure(store_url: str, workflows: int, *, repeat: int = 3, seed: int = 1,
            drip_seconds: float = 2.0, timeout: float = 1800.0) -> dict[str, Any]:
    """Start ``wmstats serve`` on one store and measure everything above."""
    with tempfile.TemporaryFile("w+") as log:
        proc, found = start_server(
            ["serve", "--port", "0", "--ui-port", "0", "--quiet", "--store", store_url,
             "--mock", str(workflows), "--seed", str(seed)], log, timeout,
            (CACHE_URL, UI_URL))
        urls = {"cache": found[0], "ui": found[1]}
        try:
            return {"filters": _filter_cases(urls, repeat),
                    "slow_clients": _slow_clients(urls, repeat, drip_seconds)}
        finally:
            stop_server(proc)


def flat_results(name: str, figures: dict[str, Any]) -> dict[str, float]:
    """The flat ``results`` of one store's figures."""
    flat: dict[str, float] = {}
    for label, case in figures["filters"].items():
        flat[f"{name}_{label}_max_s"] = max(case["seconds"])
        if case["healthz_max_ms"] is not None:
            flat[f"{name}_{label}_healthz_max_ms"] = case["healthz_max_ms"]
    for server, case in figures["slow_clients"].items():
        flat[f"{name}_slow_clients_{server}_max_s"] = max(case["seconds"])
    return flat


def _print(name: str, figures: dict[str, Any], out: Any) -> None:
    out.write(f"\n{name}\n")
    out.write(f"  {'request':<22} {'status':<14} {'max s':>7} {'p50 s':>7} "
              f"{'healthz max ms':>15} {'p50 ms':>7}\n")
    for label, case in figures["filters"].items():
        hmax, hp50 = case["healthz_max_ms"], case["healthz_p50_ms"]
        out.write(f"  {label:<22} {','.join(map(str, sorted(set(case['status'])))):<14} "
                  f"{max(case['seconds']):7.3f} {statistics.median(case['seconds']):7.3f} "
                  f"{'-' if hmax is None else f'{hmax:.1f}':>15} "
                  f"{'-' if hp50 is None else f'{hp50:.1f}':>7}\n")
    for server, case in figures["slow_clients"].items():
        out.write(f"  slow clients ({HALF_SENT} half-sent, {DRIPPING} dripping): "
                  f"{server} answers in max {max(case['seconds']):.3f} s, "
                  f"median {statistics.median(case['seconds']):.3f} s "
                  f"(status {','.join(map(str, sorted(set(case['status']))))})\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; prints a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="wmstats bench hostile",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--store", action="append", default=None, metavar="KIND",
                        choices=["memory", "sqlite"],
                        help="memory and/or sqlite (repeatable; default both)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each request")
    parser.add_argument("--drip-seconds", type=float, default=2.0,
                        help="seconds between two header lines of a dripping client")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wmstats-hostile-") as tmp:
        for kind in args.store or ["memory", "sqlite"]:
            url = "memory://" if kind == "memory" else f"sqlite:///{tmp}/hostile.db"
            figures = measure(url, args.workflows, repeat=args.repeat, seed=args.seed,
                              drip_seconds=args.drip_seconds)
            details[kind] = figures
            results.update(flat_results(kind, figures))
            _print(kind, figures, sys.stdout)
    if args.json:
        write_json(args.json, envelope("hostile", args.workflows, results, details))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
