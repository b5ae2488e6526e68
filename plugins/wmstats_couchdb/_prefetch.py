"""Run iterators ahead in threads: read the next page while this one is used."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Final, Generic, TypeVar

__all__ = ["prefetched", "interleaved"]

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
    both = interleaved([items], depth, names=[name], on_exit=[on_exit])
    try:
        for _index, item in both:
            yield item
    finally:
        both.close()


def interleaved(sources: Sequence[Iterator[T]], depth: int = 1, *,
                names: Sequence[str] = (),
                on_exit: Sequence[Callable[[], None] | None] = ()
                ) -> Generator[tuple[int, T], None, None]:
    """``(index, item)`` of each iterator of ``sources``, in the order they come:
    each is run by its own background thread, and together they are at most
    ``depth`` items per source ahead of the consumer.

    The order of one source's items is kept.  An exception raised by a source is
    raised here (after the items it made before).  Closing the returned generator
    stops the threads after their current item.

    :param names: the threads' names, per source.
    :param on_exit: called in a source's thread when it ends, per source.
    """
    buffer: queue.Queue[tuple[int, _Box[T] | _End | _Failed]] = queue.Queue(
        maxsize=max(1, depth * len(sources)))
    done = threading.Event()

    def put(item: tuple[int, _Box[T] | _End | _Failed]) -> bool:
        while not done.is_set():
            try:
                buffer.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def run(index: int, items: Iterator[T], exit_hook: Callable[[], None] | None) -> None:
        try:
            for item in items:
                if not put((index, _Box(item))):
                    return
            put((index, _End()))
        except BaseException as exc:  # handed to the consumer
            put((index, _Failed(exc)))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator left part way: its cleanup now
                close()
            if exit_hook is not None:
                exit_hook()

    threads = [threading.Thread(
        target=run, args=(i, items, on_exit[i] if i < len(on_exit) else None),
        name=names[i] if i < len(names) else "wmstats-prefetch", daemon=True)
        for i, items in enumerate(sources)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            index, got = buffer.get()
            if isinstance(got, _End):
                running -= 1
            elif isinstance(got, _Failed):
                raise got.exc
            else:
                yield index, got.value
    finally:
        done.set()
        for thread in threads:
            thread.join()
