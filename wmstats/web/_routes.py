"""The cache server's routing table: one :class:`Route` per endpoint.

The dispatcher (:mod:`wmstats.web.cache`) and the OpenAPI description
(:mod:`wmstats.web._openapi`) both read this table, so they cannot disagree.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from wmstats.web._negotiate import DATA_TYPES, JSON_ONLY

__all__ = ["Params", "Route", "ROUTES", "COLLECTIONS", "find_route", "METRICS_TYPE"]

METRICS_TYPE: Final = "text/plain"


class Params(enum.Enum):
    """Which query parameters an endpoint accepts (anything else is refused)."""

    #: none at all
    NONE = "none"
    #: ``format``
    FORMAT = "format"
    #: ``format`` and workflow filters
    FILTERS = "filters"
    #: ``format``, workflow filters, ``idx``, ``limit``, ``sort``, ``fields``
    PAGED = "paged"


@attrs.frozen
class Route:
    """One endpoint.

    :param segment: the first path segment (``""`` for the root).
    :param item: name of the path parameter after it, or ``None`` for a bare path.
    :param params: the parameters accepted.
    :param types: media types produced, in preference order.
    :param summary: one line for the OpenAPI description.
    :param by: for the :data:`COLLECTIONS` routes, the aggregation key.
    """

    segment: str
    item: str | None
    params: Params
    types: tuple[str, ...]
    summary: str
    by: str | None = None

    @property
    def template(self) -> str:
        """The path template, without the leading slash (``sites/{site}``)."""
        return self.segment + (f"/{{{self.item}}}" if self.item else "")

    @property
    def path(self) -> str:
        """The OpenAPI path (``/sites/{site}``)."""
        return "/" + self.template

    @property
    def operation_id(self) -> str:
        """A unique identifier for the operation."""
        base = {"": "index", "openapi.json": "openapi"}.get(self.segment, self.segment)
        return base + (f"_{self.item}" if self.item else "")


#: Path segment -> (aggregation key, path parameter name, noun), for the
#: per-value summary endpoints.
COLLECTIONS: Final[dict[str, tuple[str, str, str]]] = {
    "sites": ("site", "site", "site"),
    "campaign": ("campaign", "campaign", "campaign"),
    "agent": ("agent", "agent", "agent"),
    "release": ("release", "release", "CMSSW release"),
    "status": ("status", "status", "request status"),
    "type": ("type", "type", "request type"),
    "team": ("team", "team", "team"),
}


def _routes() -> tuple[Route, ...]:
    routes = [
        Route("", None, Params.FORMAT, JSON_ONLY, "Server identity and links (as /info)."),
        Route("fetch", None, Params.PAGED, DATA_TYPES,
              "Workflows matching the filters, one page, sorted."),
        Route("fetch", "workflow", Params.FORMAT, DATA_TYPES,
              "One workflow with its site, task, task-site, dataset and parentage records."),
    ]
    for segment, (by, item, noun) in COLLECTIONS.items():
        routes.append(Route(segment, None, Params.FILTERS, DATA_TYPES,
                            f"Every known {noun} with its summary (job counters, "
                            f"workflows by status).", by))
        routes.append(Route(segment, item, Params.PAGED, DATA_TYPES,
                            f"The summary of one {noun} and its workflows, one page.", by))
    routes += [
        Route("healthz", None, Params.FORMAT, JSON_ONLY,
              "Readiness: whether the store answers, its snapshot id and age."),
        Route("metrics", None, Params.NONE, (METRICS_TYPE,),
              "Prometheus metrics: requests, latencies, records, snapshot age."),
        Route("info", None, Params.FORMAT, JSON_ONLY,
              "Server and schema versions, store backend, limits."),
        Route("openapi.json", None, Params.FORMAT, JSON_ONLY,
              "This OpenAPI description."),
        Route("schema", None, Params.FORMAT, JSON_ONLY,
              "The JSON Schema of the records."),
    ]
    return tuple(routes)


#: Every endpoint.
ROUTES: Final[tuple[Route, ...]] = _routes()
_BY_KEY: Final[dict[tuple[str, bool], Route]] = {
    (r.segment, r.item is not None): r for r in ROUTES}


def find_route(path: tuple[str, ...]) -> tuple[Route, str | None] | None:
    """The route of a request path (split in segments) and its path parameter.

    Everything after the first segment is the path parameter, joined with ``/``
    (so a value may hold slashes).  ``None`` when no route matches.
    """
    if not path:
        route = _BY_KEY.get(("", False))
        return (route, None) if route else None
    head, rest = path[0], path[1:]
    if not rest:
        route = _BY_KEY.get((head, False))
        return (route, None) if route else None
    route = _BY_KEY.get((head, True))
    if route is None:
        return None
    return route, "/".join(rest)
