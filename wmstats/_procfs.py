"""Resident memory of a process, read from ``/proc``: for the benchmarks, the
server launchers they use (:class:`~wmstats.testing.reqmon.ReqmonServer`) and the
WMCore-compatible API's ``proc_status``; :func:`trim_heap` and
:func:`limit_arenas`, which keep the C heap of a long-lived server near what it
uses; :func:`paused_gc`, which spares a bulk load the cyclic garbage
collector's passes over what it makes; :func:`lowest_priority` and
:func:`idle_io_priority` for background threads; and :func:`mem_available_kib`,
what the kernel could still give.

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
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

__all__ = ["GCPause", "idle_io_priority", "limit_arenas", "lowest_priority",
           "mem_available_kib", "paused_gc", "rss_kib", "rss_mib", "trim_heap"]

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


def lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (nice 19), where the system
    lets one thread have its own (Linux): background work then runs on CPU time
    nobody else wants."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed
        pass


#: ``ioprio_set`` system call numbers (no C library wraps it), by machine.
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "ppc64le": 273, "s390x": 282}
#: ``IOPRIO_WHO_PROCESS`` (a thread id), ``IOPRIO_CLASS_IDLE`` shifted into place.
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_IDLE = 3 << 13


def idle_io_priority() -> bool:
    """Put the calling thread's disk reads in the idle class (Linux): the kernel's
    I/O scheduler serves them when no other reads wait.

    :returns: whether it could.
    """
    syscall = _libc("syscall")
    number = _IOPRIO_SET.get(os.uname().machine)
    if syscall is None or number is None:
        return False
    return syscall(number, _IOPRIO_WHO_PROCESS, threading.get_native_id(), _IOPRIO_IDLE) == 0


def mem_available_kib() -> int | None:
    """The memory the kernel could give without swapping (``MemAvailable`` of
    ``/proc/meminfo``, page cache it may drop included), in KiB; ``None`` when
    unknown (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, value = line.partition(":")
                if key == "MemAvailable":
                    return int(value.split()[0])
    except (OSError, ValueError):
        pass
    return None


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


class GCPause:
    """What :func:`paused_gc` yields: :meth:`settle` once in a while."""

    #: Seconds between two collections of the young objects by :meth:`settle`.
    COLLECT_EVERY: ClassVar[float] = 2.0

    def __init__(self) -> None:
        self._collected = time.monotonic()

    def settle(self) -> None:
        """Move every object made so far out of the collector's way
        (:func:`gc.freeze`, undone when the pause ends), collecting the young ones
        first if :attr:`COLLECT_EVERY` seconds passed since the last time.

        Frozen objects are only walked again after the pause, so the first
        collection then stays short.  The collection frees the cyclic garbage that
        other threads made meanwhile (a cache server's request leaves ~50 objects
        in cycles), which freezing would otherwise keep until the pause ends; it
        walks only what was made since the last call.
        """
        now = time.monotonic()
        if now - self._collected >= self.COLLECT_EVERY:
            gc.collect(1)
            self._collected = now
        gc.freeze()


@contextlib.contextmanager
def paused_gc() -> Iterator[GCPause]:
    """Keep Python's cyclic garbage collector off while the block runs; call the
    pause's :meth:`~GCPause.settle` after each batch of work, and
    :func:`gc.unfreeze` is called when the last pause ends.

    A full load makes millions of containers that live on (the records it keeps)
    and next to no cyclic garbage, yet each batch of new containers starts a
    collection that walks the young ones again: 3.4-3.7 s of a 47 s CouchDB load
    of 40,000 workflows, measured with ``gc.callbacks``.

    Pauses nest and may overlap between threads: the collector comes back when
    the last one ends, if it was on when the first began.
    """
    with _Pauses.lock:
        if _Pauses.count == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.count += 1
    try:
        yield GCPause()
    finally:
        with _Pauses.lock:
            _Pauses.count -= 1
            if _Pauses.count == 0:
                gc.unfreeze()
                if _Pauses.was_enabled:
                    gc.enable()
