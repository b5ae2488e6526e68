"""Benchmark: the cache server over loopback, at scale.

``wmstats bench server --workflows 100000 --store memory --store sqlite`` (or
``python -m wmstats.bench.server ...``) starts the cache server in a separate
process (``python -m wmstats.serve cache-server --mock N``) for each store, then
measures, from this process, over 127.0.0.1:

* ``/fetch`` page latency, p50 and p99, ``limit=100`` at several ``idx``, with a
  filter and with a sort (``--requests`` sequential requests each, at most
  ``--case-seconds`` long; the body is read whole but not decompressed, so client
  CPU stays out of the numbers);
* a full stream of every workflow as NDJSON + gzip (one request,
  ``limit=N``): seconds, bytes on the wire, records per second (the first stream
  is decompressed afterwards and its lines counted); then the same without
  compression (``--streams`` times) and once in each other coding the server
  offers (zstd, br): bytes and seconds;
* the server's resident memory (``VmRSS`` in ``/proc/<pid>/status``) after
  loading, before and after 20 full streams, and its peak (``VmHWM``);
* throughput with 1, 4 and 16 concurrent clients (threads of this process, one
  HTTP session each, a rotation of the page requests), each level bounded in
  time (``--concurrency-seconds``): requests per second and latency p50/p99.

The measurements start once the server has compressed the zstd frames of the full
fetch in the background (``wmstats_zstd_frames_stale`` 0 on ``/metrics``; the wait
is reported as ``zstd_frames_wait_seconds``), so that work does not share the CPU
with them: they measure the steady state.

Every request loop is bounded in count and in time; the server is stopped
(SIGTERM, by PID) at the end.  Client and server share the machine: on 2 cores
the concurrency figures measure both.  Numbers go to stdout as a table, and as
JSON with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from typing import IO, Any

import requests

from wmstats.bench._common import (
    envelope,
    rss_kib,
    start_server,
    stop_server,
    wait_zstd_frames,
    write_json,
)
from wmstats.bench._common import percentile as _percentile

__all__ = ["flat_results", "main", "measure_store"]

def _status_kb(pid: int, key: str) -> int | None:
    return rss_kib(pid).get(key)


def _start_server(store_url: str, workflows: int, seed: int, log: IO[str],
                  timeout: float, mock_size: str = "default", threads: int | None = None
                  ) -> tuple[subprocess.Popen[str], str]:
    args = ["cache-server", "--port", "0", "--quiet", "--store", store_url, "--mock",
            str(workflows), "--seed", str(seed), "--mock-size", mock_size]
    if threads is not None:
        args += ["--threads", str(threads)]
    proc, (url,) = start_server(args, log, timeout)
    return proc, url


def _codings_stream(http: requests.Session, url: str, streams: int) -> dict[str, Any]:
    """The full stream without compression (``streams`` times: median seconds) and
    once in each other coding the server offers: bytes and seconds each."""
    out: dict[str, Any] = {}
    times = []
    size = 0
    for _ in range(streams):
        start = time.perf_counter()
        size, _, got = _read_raw(http, url, {"Accept": "application/x-ndjson",
                                             "Accept-Encoding": "identity"})
        times.append(time.perf_counter() - start)
    out["identity"] = {"bytes": size, "seconds_median": statistics.median(times),
                       "seconds_min": min(times), "count": streams}
    for coding in ("zstd", "br"):
        start = time.perf_counter()
        size, _, got = _read_raw(http, url, {"Accept": "application/x-ndjson",
                                             "Accept-Encoding": coding})
        if got.get("Content-Encoding") == coding:
            out[coding] = {"bytes": size, "seconds": time.perf_counter() - start}
    return out


def _read_raw(http: requests.Session, url: str, headers: dict[str, str],
              keep: bool = False) -> tuple[int, bytes, requests.structures.CaseInsensitiveDict[str]]:
    """GET ``url``; the body's size on the wire (and the body itself if ``keep``)."""
    size = 0
    parts: list[bytes] = []
    with http.get(url, headers=headers, stream=True, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
        for chunk in response.raw.stream(256 * 1024, decode_content=False):
            size += len(chunk)
            if keep:
                parts.append(chunk)
        headers_out = response.headers
    return size, b"".join(parts), headers_out


def _latency(http: requests.Session, url: str, headers: dict[str, str], count: int,
             warmup: int = 5, max_seconds: float = 10.0) -> dict[str, float]:
    """``count`` timed sequential requests after ``warmup`` ones, stopping early (after
    at least 5) once ``max_seconds`` have passed."""
    for _ in range(warmup):
        _read_raw(http, url, headers)
    times: list[float] = []
    size = 0
    deadline = time.perf_counter() + max_seconds
    while len(times) < count and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        size, _, _ = _read_raw(http, url, headers)
        times.append(time.perf_counter() - start)
    return {"p50_ms": _percentile(times, 0.50) * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3, "requests": len(times), "bytes": size}


def _page_scenarios(n: int) -> list[tuple[str, str]]:
    mid, last = n // 2, max(0, n - 100)
    return [
        ("idx=0", "/fetch?idx=0&limit=100"),
        (f"idx={n // 4}", f"/fetch?idx={n // 4}&limit=100"),
        (f"idx={mid}", f"/fetch?idx={mid}&limit=100"),
        (f"idx={last}", f"/fetch?idx={last}&limit=100"),
        ("filter idx=0", "/fetch?idx=0&limit=100&RequestStatus=running-open,running-closed"),
        ("filter idx=2000", "/fetch?idx=2000&limit=100&RequestStatus=running-open,"
                            "running-closed"),
        ("filter+glob", "/fetch?idx=0&limit=100&RequestName=*Run3*&RequestPriority=>=100000"),
        ("sort", f"/fetch?idx={n // 4}&limit=100&sort=-RequestPriority"),
        ("mask idx=mid", f"/fetch?idx={mid}&limit=100&fields=RequestName,RequestStatus,"
                         f"Campaign"),
    ]


def _concurrent(base: str, paths: Sequence[str], clients: int, seconds: float,
                max_requests: int = 100_000) -> dict[str, float]:
    """``clients`` threads fetch ``paths`` in turn for ``seconds``; rate and latency."""
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    deadline = [0.0]
    # The clock starts when every client is connected and warmed up (the barrier's
    # action runs once, before any party is released): on a loaded machine the
    # warm-ups alone can outlast a short window.
    start_line = threading.Barrier(
        clients + 1, action=lambda: deadline.__setitem__(0, time.perf_counter() + seconds))

    def client(k: int) -> None:
        with requests.Session() as http:
            _read_raw(http, base + paths[k % len(paths)], headers)  # connect, warm up
            start_line.wait()
            i = k
            # At least one timed request per client, so no level reports no latency.
            while not latencies[k] or (time.perf_counter() < deadline[0]
                                       and len(latencies[k]) < max_requests):
                begin = time.perf_counter()
                try:
                    _read_raw(http, base + paths[i % len(paths)], headers)
                except (requests.RequestException, RuntimeError):
                    failures[k] += 1
                latencies[k].append(time.perf_counter() - begin)
                i += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - began
    times = [t for per_client in latencies for t in per_client]
    return {"requests": len(times), "seconds": elapsed, "failures": sum(failures),
            "requests_per_s": len(times) / elapsed if elapsed > 0 else 0.0,
            "p50_ms": _percentile(times, 0.50) * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3}


def measure_store(store: str, workflows: int, *, requests_per_case: int = 200,
                  streams: int = 20, seed: int = 0, log: IO[str] | None = None,
                  start_timeout: float = 3600.0, clients: Sequence[int] = (1, 4, 16),
                  concurrency_seconds: float = 5.0, case_seconds: float = 10.0,
                  mock_size: str = "default", threads: int | None = None
                  ) -> dict[str, Any]:
    """Start a cache server on ``store`` (``memory`` or ``sqlite``) and measure it.

    :param mock_size: ``default`` or ``production`` (``--mock-size`` of the server).
    :param threads: the server's HTTP worker threads (``None``: its default).
    """
    result: dict[str, Any] = {"store": store, "workflows": workflows,
                              "mock_size": mock_size, "threads": threads}
    with tempfile.TemporaryDirectory(prefix="wmstats-bench-") as tmp:
        url = "memory://" if store == "memory" else f"sqlite:///{tmp}/bench.db"
        started = time.monotonic()
        proc, base = _start_server(url, workflows, seed, log or sys.stderr, start_timeout,
                                   mock_size, threads)
        try:
            result["load_seconds"] = time.monotonic() - started
            result["rss_loaded_mb"] = (_status_kb(proc.pid, "VmRSS") or 0) / 1024
            with requests.Session() as http:
                # The server compresses the zstd frames of the full fetch in the
                # background after loading (a core's worth of CPU for minutes at
                # 100,000); measure the steady state after it, as `bench wmcore` does.
                result["zstd_frames_wait_seconds"] = wait_zstd_frames(http, base,
                                                                      start_timeout)
                pages: dict[str, Any] = {}
                gz = {"Accept": "application/json", "Accept-Encoding": "gzip"}
                plain = {"Accept": "application/json", "Accept-Encoding": "identity"}
                for name, path in _page_scenarios(workflows):
                    pages[name + " gzip"] = _latency(http, base + path, gz, requests_per_case,
                                                   max_seconds=case_seconds)
                for name, path in _page_scenarios(workflows)[:1] + \
                        _page_scenarios(workflows)[4:5]:
                    pages[name + " identity"] = _latency(http, base + path, plain,
                                                         requests_per_case,
                                                         max_seconds=case_seconds)
                result["pages"] = pages
                result["rss_before_streams_mb"] = (_status_kb(proc.pid, "VmRSS") or 0) / 1024
                stream_url = f"{base}/fetch?limit={workflows}&format=ndjson"
                headers = {"Accept": "application/x-ndjson", "Accept-Encoding": "gzip"}
                runs = []
                rss = []
                for i in range(streams):
                    start = time.perf_counter()
                    size, body, got = _read_raw(http, stream_url, headers, keep=i == 0)
                    elapsed = time.perf_counter() - start
                    runs.append((elapsed, size))
                    rss.append((_status_kb(proc.pid, "VmRSS") or 0) / 1024)
                    if i == 0:
                        text = zlib.decompress(body, 31)
                        result["stream_records"] = text.count(b"\n")
                        result["stream_raw_bytes"] = len(text)
                        result["stream_total_header"] = int(got.get("X-Total-Count", -1))
                        del body, text
                times = [t for t, _ in runs]
                result["stream"] = {
                    "count": streams,
                    "seconds_median": statistics.median(times),
                    "seconds_min": min(times),
                    "seconds_max": max(times),
                    "gzip_bytes": runs[0][1],
                    "records_per_second_median": workflows / statistics.median(times),
                }
                result["rss_after_each_stream_mb"] = rss
                result["rss_after_streams_mb"] = rss[-1] if rss else None
                result["codings"] = _codings_stream(http, stream_url, streams)
                result["rss_peak_mb"] = (_status_kb(proc.pid, "VmHWM") or 0) / 1024
                paths = [path for _name, path in _page_scenarios(workflows)]
                result["concurrency"] = {
                    str(count): _concurrent(base, paths, count, concurrency_seconds)
                    for count in clients}
                result["rss_after_concurrency_mb"] = (_status_kb(proc.pid, "VmRSS") or 0) / 1024
        finally:
            stop_server(proc)
            result["server_exit_status"] = proc.returncode
    return result


def flat_results(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The measurements as ``{"store.figure": number}`` (what the report tabulates).

    Besides each page case (``store.page[CASE].p50_ms``), ``store.page_p50_ms_max``
    and ``store.page_p99_ms_max`` are the worst case over every page case.
    """
    flat: dict[str, float] = {}
    for res in results:
        pre = res["store"]
        for key in ("load_seconds", "zstd_frames_wait_seconds", "rss_loaded_mb",
                    "rss_before_streams_mb",
                    "rss_after_streams_mb", "rss_peak_mb", "rss_after_concurrency_mb",
                    "stream_records", "stream_raw_bytes"):
            if isinstance(res.get(key), (int, float)):
                flat[f"{pre}.{key}"] = res[key]
        pages = res.get("pages", {})
        for case, page in pages.items():
            for key in ("p50_ms", "p99_ms", "bytes"):
                flat[f"{pre}.page[{case}].{key}"] = page[key]
        if pages:
            flat[f"{pre}.page_p50_ms_max"] = max(p["p50_ms"] for p in pages.values())
            flat[f"{pre}.page_p99_ms_max"] = max(p["p99_ms"] for p in pages.values())
            flat[f"{pre}.page_p50_ms_min"] = min(p["p50_ms"] for p in pages.values())
        stream = res.get("stream")
        if stream:
            flat[f"{pre}.stream_s"] = stream["seconds_median"]
            flat[f"{pre}.stream_s_min"] = stream["seconds_min"]
            flat[f"{pre}.stream_s_max"] = stream["seconds_max"]
            flat[f"{pre}.stream_gzip_bytes"] = stream["gzip_bytes"]
            flat[f"{pre}.stream_records_per_s"] = stream["records_per_second_median"]
            flat[f"{pre}.streams"] = stream["count"]
        codings = res.get("codings") or {}
        if "identity" in codings:
            flat[f"{pre}.stream_identity_s"] = codings["identity"]["seconds_median"]
            flat[f"{pre}.stream_identity_bytes"] = codings["identity"]["bytes"]
            flat[f"{pre}.stream_identity_records_per_s"] = (
                res["workflows"] / codings["identity"]["seconds_median"])
        for coding in ("zstd", "br"):
            if coding in codings:
                flat[f"{pre}.stream_{coding}_bytes"] = codings[coding]["bytes"]
                flat[f"{pre}.stream_{coding}_s"] = codings[coding]["seconds"]
        rss = res.get("rss_after_each_stream_mb") or []
        if rss:
            # Growth over the streams, from after the first (which sizes buffers).
            flat[f"{pre}.rss_stream_growth_mb"] = rss[-1] - rss[0]
            flat[f"{pre}.rss_streams_growth_mb"] = rss[-1] - res["rss_before_streams_mb"]
            # Growth over the second half only: per-thread caches fill during the first
            # streams (one per server thread); a leak keeps growing.
            flat[f"{pre}.rss_second_half_growth_mb"] = rss[-1] - rss[max(0, len(rss) // 2 - 1)]
        for count, figures in res.get("concurrency", {}).items():
            for key in ("requests_per_s", "p50_ms", "p99_ms", "requests", "failures"):
                flat[f"{pre}.clients_{count}.{key}"] = figures[key]
    return flat


def _frames_note(res: dict[str, Any]) -> str:
    wait = res.get("zstd_frames_wait_seconds")
    return "" if wait is None else f", zstd frames {wait:.0f} s later"


def _report(results: list[dict[str, Any]], out: IO[str]) -> None:
    for res in results:
        out.write(f"\n== {res['store']} store, {res['workflows']:,} workflows "
                  f"(loaded in {res['load_seconds']:.0f} s{_frames_note(res)}) ==\n")
        out.write(f"{'page (limit=100)':<32} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
                  f"{'bytes':>9}\n")
        for name, page in res["pages"].items():
            out.write(f"{name:<32} {page['p50_ms']:>8.2f} {page['p99_ms']:>8.2f} "
                      f"{page['mean_ms']:>8.2f} {page['bytes']:>9,}\n")
        s = res["stream"]
        out.write(f"full NDJSON+gzip stream: median {s['seconds_median']:.2f} s "
                  f"(min {s['seconds_min']:.2f}, max {s['seconds_max']:.2f}) over {s['count']}, "
                  f"{s['gzip_bytes']:,} bytes gzip ({res['stream_raw_bytes']:,} raw), "
                  f"{res['stream_records']:,} records, "
                  f"{s['records_per_second_median']:,.0f} records/s\n")
        for coding, c in res.get("codings", {}).items():
            seconds = c.get("seconds_median", c.get("seconds", 0.0))
            out.write(f"full NDJSON stream, {coding}: {c['bytes']:,} bytes in {seconds:.2f} s "
                      f"({res['workflows'] / seconds:,.0f} records/s)\n")
        out.write(f"server RSS: loaded {res['rss_loaded_mb']:.0f} MB, before streams "
                  f"{res['rss_before_streams_mb']:.0f} MB, after {s['count']} streams "
                  f"{res['rss_after_streams_mb']:.0f} MB, peak {res['rss_peak_mb']:.0f} MB\n")
        for count, c in res.get("concurrency", {}).items():
            out.write(f"{count:>3} concurrent clients: {c['requests_per_s']:,.0f} requests/s, "
                      f"p50 {c['p50_ms']:.2f} ms, p99 {c['p99_ms']:.2f} ms "
                      f"({c['requests']:,} requests in {c['seconds']:.1f} s, "
                      f"{c['failures']} failed)\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench server``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="wmstats bench server",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", "-n", type=int, default=100_000)
    parser.add_argument("--store", action="append", choices=("memory", "sqlite"),
                        help="store backend (repeat for several; default memory and sqlite)")
    parser.add_argument("--requests", type=int, default=200,
                        help="timed requests per page case (default 200)")
    parser.add_argument("--streams", type=int, default=20,
                        help="full streams (default 20)")
    parser.add_argument("--case-seconds", type=float, default=10.0,
                        help="at most this long per page case (default 10)")
    parser.add_argument("--clients", default="1,4,16",
                        help="concurrency levels, comma-separated (default 1,4,16)")
    parser.add_argument("--concurrency-seconds", type=float, default=5.0,
                        help="seconds per concurrency level (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mock-size", choices=("default", "production"), default="default",
                        help="the server's mock workflows: the generator's defaults or "
                             "production-sized ones (wmstats cache-server --mock-size)")
    parser.add_argument("--threads", type=int, default=None,
                        help="the server's HTTP worker threads (default: its own default)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 100 or args.requests < 1 or args.streams < 1:
        parser.error("need --workflows >= 100, --requests >= 1, --streams >= 1")
    try:
        clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        clients = []
    if not clients or min(clients) < 1 or not 0 < args.concurrency_seconds <= 600:
        parser.error("--clients: whole numbers >= 1, comma-separated; "
                     "--concurrency-seconds: more than 0, at most 600")
    results = []
    for store in args.store or ["memory", "sqlite"]:
        print(f"starting the cache server on a {store} store with {args.workflows:,} mock "
              f"workflows...", file=sys.stderr, flush=True)
        results.append(measure_store(store, args.workflows, requests_per_case=args.requests,
                                     streams=args.streams, seed=args.seed, clients=clients,
                                     concurrency_seconds=args.concurrency_seconds,
                                     case_seconds=args.case_seconds,
                                     mock_size=args.mock_size, threads=args.threads))
        _report(results[-1:], sys.stdout)
    if args.json:
        write_json(args.json, envelope("server", args.workflows, flat_results(results),
                                       {"stores": results}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
