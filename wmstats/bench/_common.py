"""Helpers shared by the benchmarks: timing loops, spread, RSS, machine, JSON output.

Every benchmark module writes the same JSON envelope (:func:`envelope`)::

    {"benchmark": NAME, "workflows": N, "machine": {...}, "results": {figure: number},
     "details": {...}}

``results`` is flat (figure name -> number) so that the report can tabulate and
plot any benchmark, including ones it does not know; ``details`` holds anything
else (lists, labels) a reader may want.
"""

from __future__ import annotations

import datetime
import gc
import importlib.metadata
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import requests

from wmstats._procfs import rss_kib, rss_mib

__all__ = [
    "PACKAGES",
    "CACHE_URL",
    "UI_URL",
    "start_server",
    "stop_server",
    "wait_gauge_zero",
    "wait_zstd_frames",
    "envelope",
    "machine",
    "percentile",
    "rss_kib",
    "rss_mib",
    "spread",
    "time_repeated",
    "timed",
    "write_json",
]

#: Distributions whose versions the machine description lists.
PACKAGES: Final = ("wmstats", "orjson", "ujson", "isal", "zstandard", "brotli", "attrs",
                   "cattrs", "CherryPy", "requests", "playwright")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[pos]


def spread(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """Median, p99, min and max of ``values`` (each multiplied by ``scale``)."""
    if not values:
        return {}
    return {"p50": statistics.median(values) * scale, "p99": percentile(values, 0.99) * scale,
            "min": min(values) * scale, "max": max(values) * scale}


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds one call of ``fn`` takes on ``clock``."""
    start = clock()
    fn()
    return clock() - start


def time_repeated(fn: Callable[[], object], repeat: int, *, warmup: int = 1,
                  clock: Callable[[], float] = time.process_time) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed; the times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        gc.collect()
        times.append(timed(fn, clock))
    return times


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], check=True, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def machine() -> dict[str, Any]:
    """Where the benchmark ran: CPU, cores, RAM, OS, Python, package versions, date, commit."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
    }


def envelope(benchmark: str, workflows: int, results: Mapping[str, float | int | None],
             details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document every benchmark writes (see the module docstring).

    Figures that are ``None`` or not finite are left out of ``results``.
    """
    flat = {key: value for key, value in results.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}
    return {"benchmark": benchmark, "workflows": workflows, "machine": machine(),
            "results": flat, "details": dict(details or {})}


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as indented JSON (creating the folder)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
        out.write("\n")


#: The line ``wmstats cache-server`` / ``serve`` prints once the cache server listens.
CACHE_URL: Final = re.compile(r"wmstats cache server: (http://[^/\s]+)/")
#: The line ``wmstats serve`` prints once the UI server listens.
UI_URL: Final = re.compile(r"wmstats UI server: (http://[^/\s]+)/")


def start_server(args: Sequence[str], log: IO[str], timeout: float,
                 patterns: Sequence[re.Pattern[str]] = (CACHE_URL,)
                 ) -> tuple[subprocess.Popen[str], list[str]]:
    """Run ``python -m wmstats.serve ARGS`` until every pattern matched a line it printed.

    :param log: where the server's stderr goes.
    :returns: the process and each pattern's first group (the URLs).
    :raises RuntimeError: when the server exits or ``timeout`` passes first (it is
        stopped).
    """
    cmd = [sys.executable, "-m", "wmstats.serve", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    found: list[str | None] = [None] * len(patterns)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and None in found:
        line = proc.stdout.readline()
        if not line:
            break
        for i, pattern in enumerate(patterns):
            match = pattern.search(line)
            if match and found[i] is None:
                found[i] = match.group(1)
    urls = [url for url in found if url is not None]
    if len(urls) < len(patterns):
        stop_server(proc)
        proc.stdout.close()
        raise RuntimeError(f"'wmstats {args[0] if args else ''}' did not start "
                           f"(exit status {proc.returncode})")
    # Keep reading what the server prints, so that it never blocks on a full pipe.
    threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    return proc, urls


def _drain(stream: IO[str]) -> None:
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass
    finally:
        stream.close()


def stop_server(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 60 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def wait_gauge_zero(session: requests.Session, base: str, name: str, what: str,
                    timeout: float, poll: float = 0.5) -> float | None:
    """Wait until the gauge ``wmstats_<name>`` of the server's ``/metrics`` reads 0:
    the seconds waited, or ``None`` when the server has no such gauge.

    :param what: what the gauge counts, for the error.
    :raises RuntimeError: when ``timeout`` passes first.
    """
    began = time.monotonic()
    prefix = f"wmstats_{name} "
    while True:
        with session.get(f"{base}/metrics", timeout=600) as response:
            value = next((float(line.split()[1]) for line in response.text.splitlines()
                          if line.startswith(prefix)), None)
        if value is None:
            return None
        if value == 0:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"{what} did not end within {timeout:.0f} s")
        time.sleep(poll)


def wait_zstd_frames(session: requests.Session, base: str, timeout: float) -> float | None:
    """Wait until the server's zstd frames of the full fetch are all compressed
    (``wmstats_zstd_frames_stale`` 0 in ``/metrics``): the seconds waited, or ``None``
    when the server keeps none."""
    return wait_gauge_zero(session, base, "zstd_frames_stale",
                           "the compression of the zstd frames", timeout)
