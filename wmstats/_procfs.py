"""Resident memory of a process, read from ``/proc``: for the benchmarks, the
server launchers they use (:class:`~wmstats.testing.reqmon.ReqmonServer`) and the
WMCore-compatible API's ``proc_status``.

Standard library only, so a plain install (no test extras) can import it.
"""

from __future__ import annotations

import os
import resource
import sys

__all__ = ["rss_kib", "rss_mib"]


def rss_kib(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` (current) and ``VmHWM`` (peak) of process ``pid`` in KiB.

    Read from ``/proc/PID/status`` on Linux; elsewhere, for this process only, the
    peak from :func:`resource.getrusage` stands in for both.  Empty when unknown.
    """
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        if pid in ("self", os.getpid()):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak //= 1024 if sys.platform == "darwin" else 1  # bytes on macOS
            found = {"VmRSS": peak, "VmHWM": peak}
    return found


def rss_mib(pid: int | str = "self", key: str = "VmRSS") -> float | None:
    """One figure of :func:`rss_kib` in MiB (``None`` when unknown)."""
    value = rss_kib(pid).get(key)
    return None if value is None else value / 1024
