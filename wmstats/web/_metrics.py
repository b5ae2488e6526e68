"""Request metrics of one app, rendered in the Prometheus text format (0.0.4).

One :class:`Metrics` per app instance (no global registry): tests and several
apps in one process never see each other's numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

__all__ = ["Metrics", "BUCKETS", "CONTENT_TYPE", "resident_memory_bytes"]

#: Latency histogram bucket bounds, seconds.
BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def resident_memory_bytes() -> int | None:
    """This process's resident set size from ``/proc/self/status`` (``None`` elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.total = 0.0
        self.count = 0


class Metrics:
    """Counters and latency histograms per endpoint, safe across threads.

    :param prefix: metric name prefix.
    :param buckets: histogram bucket bounds in seconds, ascending.
    """

    def __init__(self, prefix: str = "wmstats", buckets: Sequence[float] = BUCKETS) -> None:
        self.prefix = prefix
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._records: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._in_flight = 0

    def started(self) -> None:
        """A request began."""
        with self._lock:
            self._in_flight += 1

    def observe(self, endpoint: str, status: int, seconds: float, records: int = 0,
                nbytes: int = 0) -> None:
        """A request ended (its body fully sent, or abandoned by the client).

        :param endpoint: the route template (``fetch``, ``sites/{site}``...).
        :param status: the HTTP status answered.
        :param seconds: time from the start of the request to the end of the body.
        :param records: records in the body.
        :param nbytes: body bytes sent (after compression).
        """
        with self._lock:
            self._in_flight -= 1
            key = (endpoint, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            hist = self._latency.get(endpoint)
            if hist is None:
                hist = self._latency[endpoint] = _Histogram(len(self.buckets))
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    hist.counts[i] += 1
            hist.total += seconds
            hist.count += 1
            self._records[endpoint] = self._records.get(endpoint, 0) + records
            self._bytes[endpoint] = self._bytes.get(endpoint, 0) + nbytes

    def requests(self, endpoint: str | None = None) -> int:
        """Requests answered so far (for one endpoint, or all)."""
        with self._lock:
            return sum(n for (name, _), n in self._requests.items()
                       if endpoint is None or name == endpoint)

    def render(self, gauges: Mapping[str, tuple[str, float | None]],
               info: Mapping[str, str]) -> str:
        """The Prometheus text exposition.

        :param gauges: extra gauges: name (without prefix) -> (help, value); a
            ``None`` value is left out.
        :param info: labels of the ``<prefix>_info`` gauge (always 1).
        """
        p = self.prefix
        with self._lock:
            requests = sorted(self._requests.items())
            latency = {k: (list(h.counts), h.total, h.count)
                       for k, h in sorted(self._latency.items())}
            records = sorted(self._records.items())
            sent = sorted(self._bytes.items())
            in_flight = self._in_flight
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {p}_{name} {text}")
            out.append(f"# TYPE {p}_{name} {kind}")

        head("info", "gauge", "Version of the server, schema and store backend (always 1).")
        out.append(f"{p}_info{_labels(sorted(info.items()))} 1")
        head("http_requests_total", "counter", "HTTP requests answered, by endpoint and "
                                              "status code.")
        for (endpoint, code), n in requests:
            out.append(f"{p}_http_requests_total"
                       f"{_labels([('endpoint', endpoint), ('code', code)])} {n}")
        head("http_request_duration_seconds", "histogram",
             "Time from the start of a request to the end of its body, by endpoint.")
        for endpoint, (counts, total, count) in latency.items():
            for bound, n in zip(self.buckets, counts):
                out.append(f"{p}_http_request_duration_seconds_bucket"
                           f"{_labels([('endpoint', endpoint), ('le', repr(bound))])} {n}")
            out.append(f"{p}_http_request_duration_seconds_bucket"
                       f"{_labels([('endpoint', endpoint), ('le', '+Inf')])} {count}")
            out.append(f"{p}_http_request_duration_seconds_sum"
                       f"{_labels([('endpoint', endpoint)])} {_number(total)}")
            out.append(f"{p}_http_request_duration_seconds_count"
                       f"{_labels([('endpoint', endpoint)])} {count}")
        head("records_served_total", "counter", "Records sent in response bodies, by endpoint.")
        for endpoint, n in records:
            out.append(f"{p}_records_served_total{_labels([('endpoint', endpoint)])} {n}")
        head("response_bytes_total", "counter",
             "Response body bytes sent (after compression), by endpoint.")
        for endpoint, n in sent:
            out.append(f"{p}_response_bytes_total{_labels([('endpoint', endpoint)])} {n}")
        head("http_requests_in_flight", "gauge", "Requests being answered now.")
        out.append(f"{p}_http_requests_in_flight {in_flight}")
        for name, (text, value) in gauges.items():
            if value is None:
                continue
            head(name, "gauge", text)
            out.append(f"{p}_{name} {_number(value)}")
        rss = resident_memory_bytes()
        if rss is not None:
            out.append("# HELP process_resident_memory_bytes Resident memory size in bytes.")
            out.append("# TYPE process_resident_memory_bytes gauge")
            out.append(f"process_resident_memory_bytes {rss}")
        return "\n".join(out) + "\n"
