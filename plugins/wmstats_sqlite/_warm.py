"""Read a database file into the kernel's page cache in the background
(:meth:`SqliteStore.warm <wmstats_sqlite.SqliteStore.warm>`).

A store file that has not been read since the machine started (a server restarted
after a reboot, or after other files pushed it out of the page cache) makes the
first queries read it from disk, a few pages at a time, wherever their indexes
and rows lie: at 1,000,000 workflows (a 12.6 GB file) the first name search took
0.6 s, once more than a request's time budget, where it takes 3-5 ms once the
pages are cached.  Reading the whole file once, sequentially, brings every page in
at close to the disk's streaming rate instead (3.8 GB in 9.4 s here).

:class:`FileWarmer` does that in a thread of its own, at the lowest CPU and I/O
priorities, :data:`BLOCK` bytes at a time without read-ahead, into one reused
buffer (the pages go to the page cache, not to this process's memory), and stops
at :meth:`FileWarmer.close`.  It reads nothing when the files
are larger than a share of the memory the kernel has available
(``MemAvailable``): there the cache could not hold them, and reading them would
only push out pages that other programs use.  It reads only while no query of
the store is reading (their reads would otherwise wait behind its blocks in the
disk's queue): measured at 300,000 workflows (a 3.8 GB file dropped from the
cache), the queries during the reading are as fast as without it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from wmstats._procfs import idle_io_priority, lowest_priority, mem_available_kib

__all__ = ["FileWarmer", "MAX_SHARE", "BLOCK", "PAUSE"]

log = logging.getLogger("wmstats.sqlite")

#: The most of the available memory the files may take for them to be read: the
#: page cache they go to is counted as available (the kernel drops it when a
#: program needs the memory), so this bounds what other files' cached pages they
#: may push out, and leaves a million workflows (12.6 GB) cached on a 24 GiB machine.
MAX_SHARE: Final = 0.75
#: Bytes read at a time.
BLOCK: Final = 1 << 18
#: Seconds the reading waits, at a time, while others read.
PAUSE: Final = 0.005


class FileWarmer:
    """Read ``paths`` (those that exist) once, in a background thread.

    :param paths: the files, read in this order.
    :param available_kib: what says the memory available, in KiB (``None``: unknown,
        the files are read whatever their size).
    :param busy: says whether others are reading now: the next block waits until
        they are done (their reads would otherwise queue behind the warming's).
    """

    def __init__(self, paths: Sequence[Path],
                 available_kib: Callable[[], int | None] = mem_available_kib,
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.paths = list(paths)
        self._available_kib = available_kib
        self._busy = busy
        self._stop = threading.Event()
        #: set when the thread has ended (read everything, skipped, stopped or failed)
        self.done = threading.Event()
        #: bytes read so far
        self.read_bytes = 0
        #: why nothing was read, if so
        self.skipped: str | None = None
        self._thread = threading.Thread(target=self._run, name="wmstats-sqlite-warm",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading (after the block being read) and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout)

    def _sizes(self) -> list[tuple[Path, int]]:
        sizes = []
        for path in self.paths:
            try:
                sizes.append((path, path.stat().st_size))
            except FileNotFoundError:  # no WAL file, say
                continue
        return sizes

    def _run(self) -> None:
        try:
            lowest_priority()
            idle_io_priority()
            sizes = self._sizes()
            total = sum(size for _path, size in sizes)
            available = self._available_kib()
            if available is not None and total > MAX_SHARE * available * 1024:
                self.skipped = (f"{total / 2**20:,.0f} MiB of files, more than "
                                f"{MAX_SHARE:.0%} of the {available / 1024:,.0f} MiB "
                                f"available")
                log.info("sqlite store: not reading %s into the page cache: %s",
                         ", ".join(str(p) for p, _s in sizes), self.skipped)
                return
            began = time.monotonic()
            buffer = bytearray(BLOCK)
            for path, size in sizes:
                fd = os.open(path, os.O_RDONLY)
                try:
                    if hasattr(os, "posix_fadvise"):
                        # No read-ahead: one block at a time in the disk's queue.
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                    offset = 0
                    while offset < size and not self._stop.is_set():
                        if self._busy():
                            self._stop.wait(PAUSE)
                            continue
                        got = os.preadv(fd, [buffer], offset)
                        if got <= 0:
                            break
                        offset += got
                        self.read_bytes += got
                finally:
                    os.close(fd)
            log.info("sqlite store: read %s (%.0f MiB) into the page cache in %.1f s%s",
                     ", ".join(str(p) for p, _s in sizes), self.read_bytes / 2**20,
                     time.monotonic() - began, " (stopped)" if self._stop.is_set() else "")
        except OSError as exc:  # the file went away, or cannot be read: only slower
            log.warning("sqlite store: reading %s into the page cache failed: %s",
                        ", ".join(map(str, self.paths)), exc)
        finally:
            self.done.set()
