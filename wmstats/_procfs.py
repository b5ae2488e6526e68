"""Resident memory of a process, read from ``/proc``: for the benchmarks, the
server launchers they use (:class:`~wmstats.testing.reqmon.ReqmonServer`) and the
WMCore-compatible API's ``proc_status``; :func:`trim_heap` and
:func:`limit_arenas`, which keep the C heap of a long-lived server near what it
uses; and :func:`paused_gc`, which spares a bulk load the cyclic garbage
collector's passes over what it makes.

Standard library only, so a plain install (no test extras) can import it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import resource
import sys
import threading
from collections.abc import Callable, Iterator

__all__ = ["limit_arenas", "paused_gc", "rss_kib", "rss_mib", "trim_heap"]

#: glibc's ``mallopt`` parameter for the most malloc arenas (``M_ARENA_MAX``).
_M_ARENA_MAX = -8


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


@functools.cache
def _libc(name: str) -> Callable[..., int] | None:
    """glibc's function ``name``, or ``None`` (another C library, or no ``ctypes``)."""
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError, TypeError):
        return None
    return found


def limit_arenas(count: int = 2) -> bool:
    """Let the C heap have at most ``count`` arenas (glibc's ``M_ARENA_MAX``; the
    environment variable ``MALLOC_ARENA_MAX``, when set, wins).

    glibc gives each thread that allocates while others do an arena of its own,
    up to 8 per core, and each keeps what its thread freed: a server's request
    threads and its compression thread each hold freed buffers (~14 MiB more
    resident memory after 16 concurrent clients, measured on the cache server).
    The GIL serializes most allocations anyway.  Call it before starting threads.

    :returns: whether the limit was set.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _libc("mallopt")
    return bool(mallopt(_M_ARENA_MAX, count)) if mallopt is not None else False


def trim_heap() -> bool:
    """Give the free pages of this process's heap back to the system, where the C
    library can (glibc's ``malloc_trim``; elsewhere nothing is done).

    glibc keeps what a program frees for its next allocations: a full load frees
    the records it was given between the blobs it keeps, and a thread's arena
    keeps the buffers of a large compression, so resident memory stays well above
    what is in use.  Call it after such work, not on every request (it walks the
    whole heap, ~10 ms per GB, without the GIL).

    :returns: whether memory was given back.
    """
    trim = _libc("malloc_trim")
    return bool(trim(0)) if trim is not None else False


class _Pauses:
    """The pauses of :func:`paused_gc` running now, and whether the collector was on
    before the first of them."""

    lock = threading.Lock()
    count = 0
    was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off while the block runs.

    A full load makes millions of containers that live on (the records it keeps)
    and next to no cyclic garbage, yet each batch of new containers starts a
    collection that walks the young ones again: 2.8-3.4 s of a 45 s CouchDB load
    of 40,000 workflows, measured with ``gc.callbacks``.  What reference counting
    cannot free in the meantime (reference cycles, made by any thread) waits for
    the first collection after the block.

    Pauses nest and may overlap between threads: the collector comes back when
    the last one ends, if it was on when the first began.
    """
    with _Pauses.lock:
        if _Pauses.count == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.count += 1
    try:
        yield
    finally:
        with _Pauses.lock:
            _Pauses.count -= 1
            if _Pauses.count == 0 and _Pauses.was_enabled:
                gc.enable()
