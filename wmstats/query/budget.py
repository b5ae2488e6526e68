"""A time budget for the work of one query: a deadline that stops it, not just its reply.

A server runs each request inside :func:`time_budget`; the code that does the
costly part of a query checks the deadline as it goes and raises
:class:`QueryTimeoutError` once it has passed:

* the glob and regular expression predicates of :mod:`wmstats.query.match`
  (every filtering backend and the reference functions use them) check it every
  :data:`CHECK_EVERY` values they test;
* a backend that runs its own engine checks :func:`expired` from that engine's
  hook (the sqlite store from sqlite's progress handler) and raises
  :class:`QueryTimeoutError` itself.

The deadline lives in a :class:`contextvars.ContextVar`, so it follows the request
through every layer (store, backend, predicate) without changing a signature, and
requests in other threads never see it.  Outside :func:`time_budget` there is no
deadline and nothing is checked.  Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

from wmstats.query.errors import QueryTimeoutError

__all__ = ["QueryTimeoutError", "CHECK_EVERY", "time_budget", "unbudgeted", "deadline",
           "expired",
           "check", "metered"]

_T = TypeVar("_T")

#: Values a metered predicate tests between two looks at the clock.
CHECK_EVERY: Final = 64

_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "wmstats_query_deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the body with a deadline ``seconds`` from now (``None`` or ``<= 0``: none).

    Nested budgets keep the earlier deadline.
    """
    if seconds is None or seconds <= 0:
        yield
        return
    at = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None and outer[0] <= at:
        yield
        return
    token = _DEADLINE.set((at, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@contextlib.contextmanager
def unbudgeted() -> Iterator[None]:
    """Run the body without any deadline, even inside :func:`time_budget`, and without
    its time counting against that budget: for work that must finish once whoever
    asks first (bringing up to date an index every later request shares), which a
    request's budget must not cut short."""
    outer = _DEADLINE.get()
    began = time.monotonic()
    token = _DEADLINE.set(None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)
        if outer is not None:  # the budget resumes where it stood
            _DEADLINE.set((outer[0] + time.monotonic() - began, outer[1]))


def deadline() -> float | None:
    """The current deadline (:func:`time.monotonic` seconds), or ``None``."""
    current = _DEADLINE.get()
    return None if current is None else current[0]


def expired() -> bool:
    """Whether there is a deadline and it has passed."""
    current = _DEADLINE.get()
    return current is not None and time.monotonic() > current[0]


def check() -> None:
    """Raise :class:`QueryTimeoutError` when the deadline has passed."""
    current = _DEADLINE.get()
    if current is not None and time.monotonic() > current[0]:
        raise QueryTimeoutError(current[1])


def metered(predicate: Callable[[_T], bool]) -> Callable[[_T], bool]:
    """``predicate``, checking the current deadline every :data:`CHECK_EVERY` calls
    (the first call included); ``predicate`` itself when there is no deadline."""
    current = _DEADLINE.get()
    if current is None:
        return predicate
    at, seconds = current
    clock = time.monotonic
    left = 0

    def checked(value: _T) -> bool:
        nonlocal left
        if not left:
            if clock() > at:
                raise QueryTimeoutError(seconds)
            left = CHECK_EVERY
        left -= 1
        return predicate(value)

    return checked
