"""Run an iterator one step ahead in a thread: read the next page while this one is used."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Final, Generic, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")
_POLL: Final = 0.1


class _End:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Box(Generic[T]):
    def __init__(self, value: T) -> None:
        self.value = value


def prefetched(items: Iterator[T], depth: int = 1, *, name: str = "wmstats-prefetch",
               on_exit: Callable[[], None] | None = None) -> Generator[T, None, None]:
    """``items``, produced by a background thread up to ``depth`` items ahead.

    At most ``depth + 2`` items exist at once (queued, being made, being used).
    An exception raised by ``items`` is raised here, in order.  Closing the
    returned generator early stops the thread after its current item.

    :param on_exit: called in the background thread when it ends (e.g. to close
        that thread's HTTP session).
    """
    buffer: queue.Queue[_Box[T] | _End | _Failed] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def put(item: _Box[T] | _End | _Failed) -> bool:
        while not done.is_set():
            try:
                buffer.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(_Box(item)):
                    return
            put(_End())
        except BaseException as exc:  # handed to the consumer
            put(_Failed(exc))
        finally:
            if on_exit is not None:
                on_exit()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            got = buffer.get()
            if isinstance(got, _End):
                return
            if isinstance(got, _Failed):
                raise got.exc
            yield got.value
    finally:
        done.set()
        thread.join()
