"""Benchmark: the cache server over loopback, at scale.

``wmstats bench server --workflows 100000 --store memory --store sqlite`` (or
``python -m wmstats.bench.server ...``) starts the cache server in a separate
process (``python -m wmstats.serve cache-server --mock N``) for each store, then
measures, from this process, over 127.0.0.1:

* ``/fetch`` page latency, p50 and p99, ``limit=100`` at several ``idx``, with a
  filter and with a sort (a bounded number of sequential requests each; the body
  is read whole but not decompressed, so client CPU stays out of the numbers);
* a full stream of every workflow as NDJSON + gzip (one request,
  ``limit=N``): seconds, bytes on the wire, records per second (the first stream
  is decompressed afterwards and its lines counted);
* the server's resident memory (``VmRSS`` in ``/proc/<pid>/status``) after
  loading, before and after 20 full streams, and its peak (``VmHWM``).

Every request loop is bounded in count; the server is stopped (SIGTERM, by PID)
at the end.  Numbers go to stdout as a table, and as JSON with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
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

from wmstats.bench import percentile as _percentile

__all__ = ["main", "measure_store"]

_URL = re.compile(r"wmstats cache server: (http://[^/\s]+)/")


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None



def _start_server(store_url: str, workflows: int, seed: int, log: IO[str],
                  timeout: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "wmstats.serve", "cache-server", "--port", "0", "--quiet",
           "--store", store_url, "--mock", str(workflows), "--seed", str(seed)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = _URL.search(line)
        if match:
            # Keep reading what the server prints, so that it never blocks on a
            # full pipe.
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, match.group(1)
    _stop_server(proc)
    proc.stdout.close()
    raise RuntimeError(f"the cache server did not start (exit status {proc.returncode})")


def _drain(stream: IO[str]) -> None:
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def _stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


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
             warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        _read_raw(http, url, headers)
    times = []
    size = 0
    for _ in range(count):
        start = time.perf_counter()
        size, _, _ = _read_raw(http, url, headers)
        times.append(time.perf_counter() - start)
    return {"p50_ms": _percentile(times, 0.50) * 1e3, "p99_ms": _percentile(times, 0.99) * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3, "requests": count, "bytes": size}


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


def measure_store(store: str, workflows: int, *, requests_per_case: int = 200,
                  streams: int = 20, seed: int = 0, log: IO[str] | None = None,
                  start_timeout: float = 3600.0) -> dict[str, Any]:
    """Start a cache server on ``store`` (``memory`` or ``sqlite``) and measure it."""
    result: dict[str, Any] = {"store": store, "workflows": workflows}
    with tempfile.TemporaryDirectory(prefix="wmstats-bench-") as tmp:
        url = "memory://" if store == "memory" else f"sqlite:///{tmp}/bench.db"
        started = time.monotonic()
        proc, base = _start_server(url, workflows, seed, log or sys.stderr, start_timeout)
        try:
            result["load_seconds"] = time.monotonic() - started
            result["rss_loaded_mb"] = (_status_kb(proc.pid, "VmRSS") or 0) / 1024
            with requests.Session() as http:
                pages: dict[str, Any] = {}
                gz = {"Accept": "application/json", "Accept-Encoding": "gzip"}
                plain = {"Accept": "application/json", "Accept-Encoding": "identity"}
                for name, path in _page_scenarios(workflows):
                    pages[name + " gzip"] = _latency(http, base + path, gz, requests_per_case)
                for name, path in _page_scenarios(workflows)[:1] + \
                        _page_scenarios(workflows)[4:5]:
                    pages[name + " identity"] = _latency(http, base + path, plain,
                                                         requests_per_case)
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
                result["rss_peak_mb"] = (_status_kb(proc.pid, "VmHWM") or 0) / 1024
        finally:
            _stop_server(proc)
            result["server_exit_status"] = proc.returncode
    return result


def _report(results: list[dict[str, Any]], out: IO[str]) -> None:
    for res in results:
        out.write(f"\n== {res['store']} store, {res['workflows']:,} workflows "
                  f"(loaded in {res['load_seconds']:.0f} s) ==\n")
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
        out.write(f"server RSS: loaded {res['rss_loaded_mb']:.0f} MB, before streams "
                  f"{res['rss_before_streams_mb']:.0f} MB, after {s['count']} streams "
                  f"{res['rss_after_streams_mb']:.0f} MB, peak {res['rss_peak_mb']:.0f} MB\n")
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 100 or args.requests < 1 or args.streams < 1:
        parser.error("need --workflows >= 100, --requests >= 1, --streams >= 1")
    results = []
    for store in args.store or ["memory", "sqlite"]:
        print(f"starting the cache server on a {store} store with {args.workflows:,} mock "
              f"workflows...", file=sys.stderr, flush=True)
        results.append(measure_store(store, args.workflows, requests_per_case=args.requests,
                                     streams=args.streams, seed=args.seed))
        _report(results[-1:], sys.stdout)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"results": results, "machine": {"cpus": os.cpu_count()}}, handle,
                      indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
