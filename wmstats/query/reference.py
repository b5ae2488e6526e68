"""The reference functions: what a query means, over records in memory.

:func:`filter_records`, :func:`apply_query`, :func:`distinct_values` and
:func:`summarize` define the semantics every store backend must reproduce (the
conformance suite compares backends against them).  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from wmstats.aggregates import BY_KEY
from wmstats.query.match import scalar_matcher
from wmstats.query.model import (
    AGGREGATE_KEYS,
    SORT_SEPARATOR,
    Filter,
    Page,
    Query,
    QueryError,
    Scalar,
    field_spec,
    field_specs,
)
from wmstats.schema import (
    COUNTER_FIELDS,
    StatusCount,
    Summary,
    Workflow,
    WorkflowBundle,
)

__all__ = [
    "compile_filter",
    "sort_value",
    "filter_records",
    "sort_records",
    "apply_query",
    "distinct_values",
    "summarize",
    "make_summary",
]


def compile_filter(flt: Filter) -> Callable[[Workflow], bool]:
    """A predicate on a whole record (tuple fields: any element)."""
    match = scalar_matcher(flt.op, flt.values)
    name = flt.field
    if flt.spec.many:
        return lambda r: any(map(match, getattr(r, name)))
    return lambda r: match(getattr(r, name))


def sort_value(field: str, value: Any) -> Any:
    """The value a record sorts by for ``field`` (tuples become joined strings)."""
    if isinstance(value, tuple):
        return SORT_SEPARATOR.join(value)
    return value


def filter_records(records: Iterable[Workflow], filters: Sequence[Filter]) -> Iterator[Workflow]:
    """The records that match every filter, in their original order."""
    predicates = [compile_filter(f) for f in filters]
    for record in records:
        if all(p(record) for p in predicates):
            yield record


def sort_records(records: Iterable[Workflow], query: Query) -> list[Workflow]:
    """The records in the query's order (with the ``RequestName`` tie-break)."""
    result = list(records)
    for name, direction in reversed(query.sort_spec()):
        many = field_specs()[name].many
        if many:
            result.sort(key=lambda r: SORT_SEPARATOR.join(getattr(r, name)),
                        reverse=direction == "desc")
        else:
            result.sort(key=lambda r: getattr(r, name), reverse=direction == "desc")
    return result


def apply_query(records: Iterable[Workflow], query: Query, snapshot: str = "") -> Page:
    """Run a query over records in memory (the reference for every backend)."""
    matched = sort_records(filter_records(records, query.filters), query)
    end = None if query.limit is None else query.idx + query.limit
    return Page(tuple(matched[query.idx:end]), len(matched), query.idx, query.limit,
                snapshot, query.fields)


def distinct_values(records: Iterable[Workflow], field: str,
                    query: Query | None = None) -> list[tuple[Scalar, int]]:
    """Each value of ``field`` among the matching records, with how many records hold it.

    Tuple fields count each element (once per record).  Sorted by value.
    """
    spec = field_spec(field)
    counts: dict[Scalar, int] = {}
    selected = records if query is None else filter_records(records, query.filters)
    for record in selected:
        value = getattr(record, field)
        for v in (set(value) if spec.many else (value,)):
            counts[v] = counts.get(v, 0) + 1
    return sorted(counts.items(), key=lambda item: item[0])


def summarize(bundles: Iterable[WorkflowBundle], by: str,
              query: Query | None = None) -> list[Summary]:
    """Job counters and workflow counts per value of one of :data:`AGGREGATE_KEYS`.

    The reference implementation of :meth:`wmstats.store.Store.aggregate`.

    * ``status``, ``type`` (scalar fields ``RequestStatus`` / ``RequestType``): a
      workflow counts once, under its value, and adds its workflow-level
      counters (summed over agents).  An empty value is a value like any other:
      workflows without a type are counted under ``""``.
    * ``campaign``, ``release``, ``team`` (tuple fields ``Campaigns`` /
      ``CMSSWVersions`` / ``Teams``): a workflow counts in each of its values
      (once per value) and adds its workflow-level counters to each; a workflow
      with no value (empty tuple) is not counted anywhere.
    * ``site``: a workflow counts in each of its ``Sites``; the counters are its
      :class:`~wmstats.schema.WorkflowSite` records at that site, summed over agents.
    * ``agent``: a workflow counts in each of its ``Agents``; the counters are its
      :class:`~wmstats.schema.WorkflowSite` records from that agent, summed over
      sites (an agent's jobs not yet attached to a site, such as ``InQueue``, are
      only in the workflow totals).

    Only workflows matching ``query``'s filters take part.  Sorted by value.

    :raises QueryError: for an unknown ``by``.
    """
    if by not in AGGREGATE_KEYS:
        raise QueryError("by", f"unknown aggregation {by!r} "
                               f"(known: {', '.join(sorted(AGGREGATE_KEYS))})")
    field = AGGREGATE_KEYS[by]
    site_field = BY_KEY[by].site_field
    predicates = [compile_filter(f) for f in query.filters] if query is not None else []
    counters: dict[str, list[int]] = {}
    workflows: dict[str, dict[str, int]] = {}
    n_counters = len(COUNTER_FIELDS)
    for bundle in bundles:
        wf = bundle.workflow
        if not all(p(wf) for p in predicates):
            continue
        value = getattr(wf, field)
        values = set(value) if isinstance(value, tuple) else {value}
        for v in values:
            by_status = workflows.setdefault(v, {})
            by_status[wf.RequestStatus] = by_status.get(wf.RequestStatus, 0) + 1
            counters.setdefault(v, [0] * n_counters)
        if site_field is not None:
            for ws in bundle.sites:
                key = getattr(ws, site_field)
                if key not in values:
                    continue
                acc = counters[key]
                for i, name in enumerate(COUNTER_FIELDS):
                    acc[i] += getattr(ws, name)
        else:
            for v in values:
                acc = counters[v]
                for i, name in enumerate(COUNTER_FIELDS):
                    acc[i] += getattr(wf, name)
    return [make_summary(by, v, counters[v], workflows[v]) for v in sorted(workflows)]


def make_summary(by: str, value: str, counters: Sequence[int],
                 by_status: Mapping[str, int]) -> Summary:
    """Build a :class:`Summary` from counters in :data:`COUNTER_FIELDS` order."""
    return Summary(
        By=by, Value=value, Workflows=sum(by_status.values()),
        WorkflowsByStatus=tuple(StatusCount(s, n) for s, n in sorted(by_status.items())),
        **dict(zip(COUNTER_FIELDS, counters)),
    )
