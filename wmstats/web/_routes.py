"""The pieces of the cache server's routing table: :class:`Route`, :class:`Call`,
:class:`Router`.

Each :class:`Route` carries the handler that answers it; the table itself
(:data:`wmstats.web.cache.ROUTES`) is built next to those handlers.  The
dispatcher and the OpenAPI description (:mod:`wmstats.web._openapi`) both read
it, so they cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from wmstats.aggregates import BY_KEY, Aggregate
from wmstats.web._reply import Reply

__all__ = ["Params", "Option", "Route", "Call", "Handler", "Router", "METRICS_TYPE", "AGENTS",
           "OPTION_MAX_VALUES", "OPTION_MAX_TEXT"]

METRICS_TYPE: Final = "text/plain"
#: The aggregate whose values have a record of their own, the agent's heartbeat
#: (:class:`~wmstats.schema.Agent`): its listing and pages carry that record too.
AGENTS: Final[Aggregate] = BY_KEY["agent"]


class Params(enum.Enum):
    """Which query parameters an endpoint accepts (anything else is refused)."""

    #: none at all, not even ``format``: the endpoint's one media type is
    #: answered whatever the ``Accept`` header says
    NONE = "none"
    #: ``format``
    FORMAT = "format"
    #: ``format`` and workflow filters
    FILTERS = "filters"
    #: ``format``, workflow filters, ``idx``, ``limit``, ``sort``, ``fields``
    PAGED = "paged"
    #: ``format`` and the route's own :attr:`Route.options`
    OPTIONS = "options"


#: The most values of one :class:`Option` (after splitting on commas).
OPTION_MAX_VALUES: Final = 100
#: The longest value of a string :class:`Option` (after stripping spaces).
OPTION_MAX_TEXT: Final = 300


@attrs.frozen
class Option:
    """A query parameter of one route (for :attr:`Params.OPTIONS` routes).

    :param name: the parameter.
    :param description: one sentence for the OpenAPI description.
    :param many: values may be repeated or comma-separated (alternatives: OR).
    :param kind: ``str``, ``int`` or ``bool``.
    :param choices: the values accepted, when they are fixed.
    """

    name: str
    description: str
    many: bool = True
    kind: str = "str"
    choices: tuple[str, ...] = ()


#: A route's handler: ``handler(app, call)``, a method of the app.
Handler = Callable[[Any, "Call"], Reply]


@attrs.frozen
class Route:
    """One endpoint and the handler answering it.

    :param segment: the first path segment (``""`` for the root).
    :param item: name of the path parameter after it, or ``None`` for a bare path.
    :param params: the parameters accepted.
    :param types: media types produced, in preference order.
    :param summary: one line for the OpenAPI description.
    :param handler: the app's method answering it.
    :param aggregate: for the summary endpoints, the aggregate listed.
    :param data: whether it reads the store's data (snapshot headers; 503 until a
        source has finished its first load).
    :param options: its own query parameters (with :attr:`Params.OPTIONS`).
    """

    segment: str
    item: str | None
    params: Params
    types: tuple[str, ...]
    summary: str
    handler: Handler = attrs.field(eq=False, repr=False)
    aggregate: Aggregate | None = None
    data: bool = False
    options: tuple[Option, ...] = ()

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

    @property
    def carries_agent(self) -> bool:
        """Whether its answers carry each agent's own record (see :data:`AGENTS`)."""
        return self.aggregate is AGENTS


@attrs.frozen
class Call:
    """One request as a handler sees it: routed, its parameters whitelisted, its
    media type and encoding negotiated.

    :param route: the route.
    :param value: the path parameter (``None`` for a bare path).
    :param params: the query parameters left once ``format`` is taken out.
    :param media: the media type to answer with.
    :param gz: whether the body may be compressed (``coding`` is not ``None``).
    :param if_none_match: the ``If-None-Match`` header.
    :param coding: the content coding negotiated (``gzip``, ``zstd``, ``br``), or
        ``None`` for the identity.
    """

    route: Route
    value: str | None
    params: dict[str, list[str]]
    media: str
    gz: bool
    if_none_match: str | None
    coding: str | None = None


class Router:
    """Finds the route of a request path in a table of routes.

    :param routes: the table; one bare and one item route per segment at most.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)
        self._by_key = {(r.segment, r.item is not None): r for r in self.routes}
        if len(self._by_key) != len(self.routes):
            raise ValueError("two routes for the same path")

    def find(self, path: tuple[str, ...]) -> tuple[Route, str | None] | None:
        """The route of a request path (split in segments) and its path parameter.

        Everything after the first segment is the path parameter, joined with ``/``
        (so a value may hold slashes).  ``None`` when no route matches.
        """
        if not path:
            route = self._by_key.get(("", False))
            return (route, None) if route else None
        head, rest = path[0], path[1:]
        if not rest:
            route = self._by_key.get((head, False))
            return (route, None) if route else None
        route = self._by_key.get((head, True))
        if route is None:
            return None
        return route, "/".join(rest)
