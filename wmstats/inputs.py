"""Reading input files, and progress lines for long runs.

:func:`read_documents` reads what ``wmstats convert`` and ``wmstats load`` accept:
a JSON array, a JSON object keyed by document id (as ``reqmgr_requests_20.json``
and WMStatsServer's cache dumps), a single document, or NDJSON (read line by
line, in constant memory).  :class:`Progress` writes a progress line on stderr
at most once a second, only when stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TextIO

import ujson

__all__ = ["InputError", "Progress", "read_documents"]


class InputError(Exception):
    """The input is not JSON at all (``wmstats`` exits with status 2)."""


class Progress:
    """Progress on stderr, at most once a second, only when stderr is a terminal.

    :param label: what is counted (``"documents"``).
    :param total: how many there will be, if known.
    :param stream: where to write (default stderr).
    """

    def __init__(self, label: str, total: int | None = None,
                 stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.count = 0
        self._start = self._last = time.monotonic()

    def step(self, n: int = 1) -> None:
        """Count ``n`` more; show the line when a second has passed."""
        self.count += n
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= 1.0:
                self._last = now
                self._show(now)

    def _show(self, now: float, end: str = "") -> None:
        rate = self.count / max(now - self._start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        self.stream.write(f"\r{self.label}: {self.count}{of} ({rate:,.0f}/s){end}")
        self.stream.flush()

    def done(self) -> None:
        """Show the final count and end the line."""
        if self.enabled:
            self._show(time.monotonic(), "\n")


def read_documents(stream: IO[str], name: str = "<stdin>",
                   on_bad_line: Callable[[int, str], None] | None = None) -> Iterator[Any]:
    """Yield the documents of one input: a JSON array, a JSON object keyed by id
    (as ``reqmgr_requests_20.json``), a single document, or NDJSON.

    NDJSON is read line by line (constant memory); a line that is not JSON is
    passed to ``on_bad_line(line_number, message)`` and skipped.

    :raises InputError: when the input is not JSON at all.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        head: Any = ujson.loads(first)
    except ValueError:
        head = _NOT_PARSED
    rest = stream.readline() if head is not _NOT_PARSED else ""
    while rest and not rest.strip():
        rest = stream.readline()
    if head is not _NOT_PARSED and rest:  # two JSON values on two lines: NDJSON
        yield from _ndjson(head, rest, stream, name, on_bad_line)
        return
    text = first + rest + stream.read()
    try:
        value = ujson.loads(text) if head is _NOT_PARSED else head
    except ValueError as exc:
        raise InputError(f"{name}: not JSON, a JSON array or NDJSON ({exc})") from None
    if isinstance(value, list):
        yield from value
    elif isinstance(value, dict) and value and not _looks_like_document(value) and all(
            isinstance(v, dict) for v in value.values()):
        for key, doc in value.items():
            yield doc if "_id" in doc else {"_id": key, **doc}
    else:
        yield value


_NOT_PARSED = object()


def _looks_like_document(value: dict[str, Any]) -> bool:
    return any(k in value for k in ("_id", "type", "RequestName", "workflow", "agent_url"))


def _ndjson(head: Any, second: str, stream: IO[str], name: str,
            on_bad_line: Callable[[int, str], None] | None) -> Iterator[Any]:
    yield head
    line_no = 1
    for line in _chain_first(second, stream):
        line_no += 1
        if not line.strip():
            continue
        try:
            yield ujson.loads(line)
        except ValueError as exc:
            if on_bad_line is None:
                raise InputError(f"{name}:{line_no}: not JSON ({exc})") from None
            on_bad_line(line_no, f"not JSON ({exc}); line skipped")


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest
