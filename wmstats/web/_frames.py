"""The cache server's zstd frames of the full fetch, kept current off the request path.

:class:`FrameWarmer` listens to the store's writes; a thread of its own, at the
lowest CPU priority, waits a moment after a write, then has a
:class:`wmstats.stream.FrameCache` compress the runs of workflows that changed
(:meth:`wmstats.store.Store.encoded_runs`) at the high level.  The request path
(:meth:`FrameWarmer.frames`) only reads what is kept and compresses the rest at the
fast default level, so a change never makes a response slower; it makes it larger
until the warmer has caught up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import cherrypy  # type: ignore[import-untyped]

from wmstats._procfs import lowest_priority, trim_heap
from wmstats.schema import Agent, WorkflowBundle
from wmstats.store import Store, StoreListener
from wmstats.stream import FrameCache

__all__ = ["FrameWarmer"]

#: Seconds the warmer waits after a write before it compresses (the rest of a burst
#: of writes is compressed in the same pass).
QUIET_SECONDS = 1.0


class FrameWarmer(StoreListener):
    """zstd frames of ``store``'s runs, compressed again in a background thread after
    each write (see the module docstring).

    :param store: the store (listened to until :meth:`close`).
    :param level: the zstd level of the kept frames.
    :param quiet: seconds to wait after a write before compressing.
    """

    def __init__(self, store: Store, level: int, quiet: float = QUIET_SECONDS) -> None:
        self.store = store
        self.cache = FrameCache(level)
        self.quiet = quiet
        self._wake = threading.Event()
        self._closed = threading.Event()
        #: passes of :meth:`FrameCache.refresh` finished so far
        self.passes = 0
        store.add_listener(self)
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name="wmstats-zstd-frames",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop listening and stop the thread (it ends after the run it compresses)."""
        self.store.remove_listener(self)
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)

    def frames(self, runs: Iterable[tuple[str, Sequence[bytes]]],
               chunk_size: int) -> Iterator[bytes]:
        """The zstd stream of ``runs`` (:meth:`FrameCache.frames`)."""
        return self.cache.frames(runs, chunk_size)

    def stale(self) -> int:
        """Runs of the current snapshot without a current frame."""
        runs = self.store.encoded_runs()
        if runs is None:
            return 0
        stats = self.cache.stats(runs.runs)
        return stats["runs"] - stats["current"]

    # ------------------------------------------------------------------ listening

    def replaced(self, store: Store, snapshot_id: str, agents: Sequence[Agent]) -> None:
        self._wake.set()

    def applied(self, store: Store, snapshot_id: str, upserts: Sequence[WorkflowBundle],
                deletes: Sequence[str], agents: Sequence[Agent],
                deleted_agents: Sequence[str]) -> None:
        if upserts or deletes:
            self._wake.set()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        lowest_priority()
        closed: Callable[[], bool] = self._closed.is_set
        while not closed():
            self._wake.wait()
            # Let a burst of writes end; each write during the pass sets the event
            # again, for another pass after this one.
            self._closed.wait(self.quiet)
            self._wake.clear()
            if closed():
                return
            try:
                runs = self.store.encoded_runs()
                if runs is not None:
                    if self.cache.refresh(runs.runs, stop=closed):
                        # The compression buffers (tens of MiB at the high level)
                        # stay with this thread's arena of the C heap unless given
                        # back; each run reuses the last one's, so once a pass.
                        trim_heap()
                    self.passes += 1
            except Exception:
                cherrypy.log("compressing the zstd frames failed", traceback=True,
                             severity=logging.ERROR)
                self._closed.wait(60.0)
