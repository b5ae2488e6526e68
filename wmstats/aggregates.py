"""The aggregates: every way workflows are grouped into summaries, in one table.

Each :class:`Aggregate` says which :class:`~wmstats.schema.Workflow` field holds
its values, whether its job counters are summed from the workflow's
:class:`~wmstats.schema.WorkflowSite` records (and by which of their fields), the
cache server's URL segment and path parameter, and the labels people read.  The
query model, every store backend, the cache server's routes and OpenAPI
description, the client and the UI all read this table, so adding an aggregate is
one line here (plus what each backend needs to index it).

Pure: no I/O.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final

import attrs

from wmstats.schema import Workflow, WorkflowSite

__all__ = [
    "Aggregate",
    "AGGREGATES",
    "BY_KEY",
    "BY_SEGMENT",
    "aggregate",
]


@attrs.frozen
class Aggregate:
    """One way of grouping workflows into :class:`~wmstats.schema.Summary` records.

    :param key: the name stores and queries use (``site``).
    :param field: the :class:`~wmstats.schema.Workflow` field holding the values
        (``Sites``); a tuple field puts a workflow under each of its values.
    :param site_field: ``None`` when a value's counters are the workflow-level
        counters of its workflows; else the :class:`~wmstats.schema.WorkflowSite`
        field (``Site`` or ``Agent``) whose records at that value are summed.
    :param segment: the cache server's URL segment (``sites`` in ``/sites/<site>``).
    :param param: the name of the path parameter (``site``).
    :param label: the UI's label (``Site``).
    :param noun: the noun in descriptions (``CMS site``).
    :param view: whether the UI has a grouping view (a table of its values).
    """

    key: str
    field: str
    site_field: str | None
    segment: str
    param: str
    label: str
    noun: str
    view: bool = False

    def __attrs_post_init__(self) -> None:
        if self.field not in attrs.fields_dict(Workflow):
            raise ValueError(f"aggregate {self.key}: {self.field!r} is not a Workflow field")
        if self.site_field is not None and self.site_field not in attrs.fields_dict(
                WorkflowSite):
            raise ValueError(f"aggregate {self.key}: {self.site_field!r} is not a "
                             f"WorkflowSite field")

    @property
    def sums_sites(self) -> bool:
        """Whether the counters come from WorkflowSite records (see ``site_field``)."""
        return self.site_field is not None


#: Every aggregate, in display order.
AGGREGATES: Final[tuple[Aggregate, ...]] = (
    Aggregate("status", "RequestStatus", None, "status", "status", "Status", "request status"),
    Aggregate("type", "RequestType", None, "type", "type", "Type", "request type"),
    Aggregate("campaign", "Campaigns", None, "campaign", "campaign", "Campaign", "campaign",
              view=True),
    Aggregate("site", "Sites", "Site", "sites", "site", "Site", "site", view=True),
    Aggregate("agent", "Agents", "Agent", "agent", "agent", "Agent", "agent", view=True),
    Aggregate("release", "CMSSWVersions", None, "release", "release", "Release",
              "CMSSW release", view=True),
    Aggregate("team", "Teams", None, "team", "team", "Team", "team"),
)

#: Aggregate key -> aggregate (read-only).
BY_KEY: Final[Mapping[str, Aggregate]] = types.MappingProxyType(
    {a.key: a for a in AGGREGATES})
#: Cache server URL segment -> aggregate (read-only).
BY_SEGMENT: Final[Mapping[str, Aggregate]] = types.MappingProxyType(
    {a.segment: a for a in AGGREGATES})


def aggregate(key: str) -> Aggregate:
    """The aggregate named ``key``.

    :raises KeyError: for an unknown key (the message lists the known ones).
    """
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown aggregation {key!r} "
                       f"(known: {', '.join(sorted(BY_KEY))})") from None
