"""Request metrics of one app in the Prometheus text format (0.0.4), through
``prometheus_client``.

One :class:`Metrics` per app instance, each with its own
``prometheus_client.CollectorRegistry`` (never the library's global one): tests
and several apps in one process never see each other's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

import prometheus_client
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Metrics", "Gauges", "BUCKETS", "CONTENT_TYPE"]

#: Latency histogram bucket bounds, seconds (each an inclusive upper bound, ``le``).
BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The media type of :meth:`Metrics.render`'s text.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Gauges read when the metrics are rendered: name (without the prefix) ->
#: (help, value); a ``None`` value is left out.
Gauges = Callable[[], Mapping[str, tuple[str, float | None]]]


class _ReadGauges(Collector):
    """The gauges an app computes at each scrape (store size, snapshot age...)."""

    def __init__(self, prefix: str, read: Gauges) -> None:
        self.prefix = prefix
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, (text, value) in self.read().items():
            if value is not None:
                yield GaugeMetricFamily(f"{self.prefix}_{name}", text, value=value)


class Metrics:
    """Counters and latency histograms per endpoint, safe across threads.

    :param prefix: metric name prefix.
    :param buckets: histogram bucket bounds in seconds, ascending.
    :param gauges: read at each :meth:`render` for the app's own gauges.
    """

    def __init__(self, prefix: str = "wmstats", buckets: Sequence[float] = BUCKETS,
                 gauges: Gauges | None = None) -> None:
        self.prefix = prefix
        self.buckets = tuple(buckets)
        self.registry = prometheus_client.CollectorRegistry()
        registry = self.registry
        self._info = prometheus_client.Info(
            prefix, "Version of the server, schema and store backend (always 1).",
            registry=registry)
        self._requests = prometheus_client.Counter(
            f"{prefix}_http_requests", "HTTP requests answered, by endpoint and status code.",
            ["endpoint", "code"], registry=registry)
        self._latency = prometheus_client.Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Time from the start of a request to the end of its body, by endpoint.",
            ["endpoint"], buckets=self.buckets, registry=registry)
        self._records = prometheus_client.Counter(
            f"{prefix}_records_served", "Records sent in response bodies, by endpoint.",
            ["endpoint"], registry=registry)
        self._bytes = prometheus_client.Counter(
            f"{prefix}_response_bytes",
            "Response body bytes sent (after compression), by endpoint.",
            ["endpoint"], registry=registry)
        self._in_flight = prometheus_client.Gauge(
            f"{prefix}_http_requests_in_flight", "Requests being answered now.",
            registry=registry)
        prometheus_client.ProcessCollector(registry=registry)
        if gauges is not None:
            registry.register(_ReadGauges(prefix, gauges))

    def set_info(self, labels: Mapping[str, str]) -> None:
        """The labels of the ``<prefix>_info`` gauge (always 1)."""
        self._info.info(dict(labels))

    def started(self) -> None:
        """A request began."""
        self._in_flight.inc()

    def observe(self, endpoint: str, status: int, seconds: float, records: int = 0,
                nbytes: int = 0) -> None:
        """A request ended (its body fully sent, or abandoned by the client).

        :param endpoint: the route template (``fetch``, ``sites/{site}``...).
        :param status: the HTTP status answered.
        :param seconds: time from the start of the request to the end of the body.
        :param records: records in the body.
        :param nbytes: body bytes sent (after compression).
        """
        self._in_flight.dec()
        self._requests.labels(endpoint, str(status)).inc()
        self._latency.labels(endpoint).observe(seconds)
        self._records.labels(endpoint).inc(records)
        self._bytes.labels(endpoint).inc(nbytes)

    def requests(self, endpoint: str | None = None) -> int:
        """Requests answered so far (for one endpoint, or all)."""
        total = 0.0
        for family in self._requests.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and (
                        endpoint is None or sample.labels["endpoint"] == endpoint):
                    total += sample.value
        return int(total)

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of this app's registry."""
        return prometheus_client.generate_latest(self.registry).decode("utf-8")
