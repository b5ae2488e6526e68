"""The query model: filters, sort, paging and field masks over :class:`Workflow` records.

Pure: no I/O.  A :class:`Query` is an immutable value that every store
(:mod:`wmstats.store`) understands; :func:`parse_query` builds one from flat
string parameters (an HTTP query string), strictly and by whitelist; the
reference functions :func:`filter_records`, :func:`apply_query`,
:func:`distinct_values` and :func:`summarize` define the semantics every backend
must reproduce (the conformance suite compares backends against them).

Semantics
---------
* A :class:`Filter` names one :class:`~wmstats.schema.Workflow` field, an operator
  and one or more values.  A record matches a filter when the field matches *any*
  of the values (OR within a filter); a record matches a query when it matches
  *every* filter (AND across filters).  Tuple fields (``Campaigns``, ``Sites``...)
  match when *any* element matches.
* Operators (:data:`FILTER_OPS`):

  ``eq``
      exact value (strings compare case-sensitively; ints; bools).
  ``glob``
      wildcard on strings, anchored at both ends: ``*`` is any run of characters
      (possibly empty), ``?`` exactly one character, everything else literal.
  ``re``
      Python regular expression on strings, unanchored (:func:`re.search`).
  ``gt`` ``ge`` ``lt`` ``le``
      numeric (and time, epoch seconds) comparisons; one value per filter.
* Sort: any sortable field (every field but ``Transitions``), ``asc`` or
  ``desc``; ties are always broken by ``RequestName``, in the direction of the
  last sort key (so paging is stable, a descending order is exactly the reverse
  of the ascending one, and one ``(field, RequestName)`` index serves both).  Tuple fields sort by their elements joined with ``"\\x1f"``
  (:func:`sort_value`), which is lexicographic order for ordinary text.
* Paging: ``idx`` is a zero-based offset into the sorted matches, ``limit`` the
  page size (``None``: no limit; ``0``: no records, only the total).
* ``fields`` is a field mask: the records are still :class:`Workflow`, the mask
  is applied when they are turned into dicts (:meth:`Query.projector`).

Every invalid query raises :class:`QueryError`, whose ``field`` names the field
(or parameter) at fault.
"""

from __future__ import annotations

import datetime
import functools
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

from wmstats.aggregates import BY_KEY
from wmstats.schema import (
    COUNTER_FIELDS,
    StatusCount,
    Summary,
    Workflow,
    WorkflowBundle,
)

__all__ = [
    "QueryError",
    "Scalar",
    "FieldSpec",
    "FILTER_OPS",
    "RANGE_OPS",
    "TIME_FIELDS",
    "TIE_BREAK",
    "SORT_SEPARATOR",
    "RESERVED_PARAMS",
    "AGGREGATE_KEYS",
    "field_specs",
    "field_spec",
    "Filter",
    "Query",
    "Page",
    "glob_to_regex",
    "compile_glob",
    "make_projector",
    "make_summary",
    "compile_filter",
    "sort_value",
    "filter_records",
    "sort_records",
    "apply_query",
    "distinct_values",
    "summarize",
    "parse_query",
    "parse_time",
]

Scalar: TypeAlias = str | int | bool
Op = Literal["eq", "glob", "re", "gt", "ge", "lt", "le"]
Direction = Literal["asc", "desc"]

#: Every filter operator.
FILTER_OPS: Final[frozenset[str]] = frozenset({"eq", "glob", "re", "gt", "ge", "lt", "le"})
#: Operators that compare numbers (one value each).
RANGE_OPS: Final[frozenset[str]] = frozenset({"gt", "ge", "lt", "le"})
#: Integer fields that hold times (epoch seconds); the parser also accepts ISO 8601 dates.
TIME_FIELDS: Final[frozenset[str]] = frozenset({"RequestDate", "StatusTime", "AgentUpdate"})
#: The field that breaks sort ties (unique per workflow).
TIE_BREAK: Final = "RequestName"
#: Separator used to turn a tuple field into a sortable string.
SORT_SEPARATOR: Final = "\x1f"
#: Parameters of :func:`parse_query` that are not field filters.
RESERVED_PARAMS: Final[frozenset[str]] = frozenset({"idx", "limit", "sort", "fields"})
#: Aggregation key -> the Workflow field holding the value (read from
#: :data:`wmstats.aggregates.AGGREGATES`, see :func:`summarize`).
AGGREGATE_KEYS: Final[Mapping[str, str]] = {key: a.field for key, a in BY_KEY.items()}
#: Limits that keep a single query cheap.
MAX_VALUES: Final = 1000
MAX_PATTERN: Final = 1000


class QueryError(ValueError):
    """A query that cannot be run: unknown field, bad value, bad regex, bad paging.

    :param field: the field or parameter at fault.
    :param message: what is wrong with it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message))


# --------------------------------------------------------------------------- fields


@attrs.frozen
class FieldSpec:
    """What a :class:`Workflow` field holds, for validation.

    :param name: the field name.
    :param kind: ``"str"``, ``"int"``, ``"bool"`` or ``"record"`` (``Transitions``).
    :param many: whether the field is a tuple.
    :param time: whether it holds epoch seconds.
    """

    name: str
    kind: Literal["str", "int", "bool", "record"]
    many: bool
    time: bool = False

    @property
    def filterable(self) -> bool:
        """Whether filters, sort and :func:`distinct_values` accept the field."""
        return self.kind != "record"

    @property
    def numeric(self) -> bool:
        """Whether range operators apply."""
        return self.kind == "int"


@functools.cache
def field_specs() -> Mapping[str, FieldSpec]:
    """Every :class:`Workflow` field, in schema order."""
    hints = typing.get_type_hints(Workflow)
    specs: dict[str, FieldSpec] = {}
    for field in attrs.fields(Workflow):
        hint = hints[field.name]
        many = typing.get_origin(hint) is tuple
        inner = typing.get_args(hint)[0] if many else hint
        kind: Literal["str", "int", "bool", "record"]
        if inner is bool:
            kind = "bool"
        elif inner is int:
            kind = "int"
        elif inner is str:
            kind = "str"
        else:
            kind = "record"
        specs[field.name] = FieldSpec(field.name, kind, many, field.name in TIME_FIELDS)
    return specs


def field_spec(name: str) -> FieldSpec:
    """The spec of one field.

    :raises QueryError: for a name that is not a :class:`Workflow` field.
    """
    spec = field_specs().get(name)
    if spec is None:
        raise QueryError(name, "unknown field")
    return spec


def _filterable(name: str) -> FieldSpec:
    spec = field_spec(name)
    if not spec.filterable:
        raise QueryError(name, "field cannot be filtered, sorted or counted")
    return spec


# --------------------------------------------------------------------------- the model


def _check_value(spec: FieldSpec, op: str, value: object) -> None:
    if op in ("glob", "re"):
        if spec.kind != "str":
            raise QueryError(spec.name, f"operator {op!r} needs a string field, "
                                        f"this one holds {spec.kind} values")
        if not isinstance(value, str):
            raise QueryError(spec.name, f"{op} pattern must be a string, got {value!r}")
        if len(value) > MAX_PATTERN:
            raise QueryError(spec.name, f"{op} pattern longer than {MAX_PATTERN} characters")
        if op == "re":
            try:
                re.compile(value)
            except re.error as exc:
                raise QueryError(spec.name, f"bad regular expression {value!r}: {exc}") \
                    from None
        return
    if op in RANGE_OPS:
        if not spec.numeric:
            raise QueryError(spec.name, f"operator {op!r} needs a numeric field, "
                                        f"this one holds {spec.kind} values")
        if type(value) is not int:
            raise QueryError(spec.name, f"{op} needs an integer, got {value!r}")
        return
    # eq
    expected: type[Any] = {"str": str, "int": int, "bool": bool}[spec.kind]
    if type(value) is not expected:
        raise QueryError(spec.name, f"expected a {spec.kind} value, got {value!r}")


@attrs.frozen
class Filter:
    """One condition: ``field`` ``op`` any of ``values``.

    :param field: a filterable :class:`Workflow` field.
    :param op: one of :data:`FILTER_OPS`.
    :param values: the values (OR); exactly one for range operators.
    :raises QueryError: when the field, operator or a value does not fit.
    """

    field: str
    op: Op
    values: tuple[Scalar, ...]

    def __attrs_post_init__(self) -> None:
        spec = _filterable(self.field)
        if self.op not in FILTER_OPS:
            raise QueryError(self.field, f"unknown operator {self.op!r} "
                                         f"(known: {', '.join(sorted(FILTER_OPS))})")
        if not isinstance(self.values, tuple) or not self.values:
            raise QueryError(self.field, "a filter needs a non-empty tuple of values")
        if len(self.values) > MAX_VALUES:
            raise QueryError(self.field, f"more than {MAX_VALUES} values")
        if self.op in RANGE_OPS and len(self.values) != 1:
            raise QueryError(self.field, f"operator {self.op!r} takes exactly one value")
        for value in self.values:
            _check_value(spec, self.op, value)

    @property
    def spec(self) -> FieldSpec:
        """The spec of the filtered field."""
        return field_specs()[self.field]

    def matcher(self) -> Callable[[Scalar], bool]:
        """A predicate on one scalar value (one element of a tuple field)."""
        return _scalar_matcher(self)


def _check_sort(sort: object) -> None:
    if not isinstance(sort, tuple):
        raise QueryError("sort", "sort must be a tuple of (field, direction) pairs")
    for item in sort:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise QueryError("sort", f"bad sort item {item!r}: expected (field, direction)")
        name, direction = item
        _filterable(name)
        if direction not in ("asc", "desc"):
            raise QueryError(name, f"sort direction must be 'asc' or 'desc', got {direction!r}")


def _validate_query(query: Query) -> None:
    if not isinstance(query.filters, tuple) or not all(
            isinstance(f, Filter) for f in query.filters):
        raise QueryError("filters", "filters must be a tuple of Filter")
    _check_sort(query.sort)
    if type(query.idx) is not int or query.idx < 0:
        raise QueryError("idx", f"must be an integer >= 0, got {query.idx!r}")
    if query.limit is not None and (type(query.limit) is not int or query.limit < 0):
        raise QueryError("limit", f"must be an integer >= 0 or None, got {query.limit!r}")
    if query.fields is not None:
        if not isinstance(query.fields, tuple):
            raise QueryError("fields", "fields must be a tuple of field names")
        for name in query.fields:
            field_spec(name)


@attrs.frozen
class Query:
    """What to read from a store: filters (AND), sort, a page and a field mask.

    :param filters: conditions, all of which must match.
    :param sort: ``(field, "asc" | "desc")`` pairs, most significant first; ties
        are broken by ``RequestName`` in the direction of the last pair
        (ascending when there is no sort).
    :param idx: zero-based offset of the first record returned.
    :param limit: page size; ``None`` for no limit, ``0`` for the count only.
    :param fields: keys to keep when records are turned into dicts (``None``: all).
    :raises QueryError: when any part is invalid.
    """

    filters: tuple[Filter, ...] = ()
    sort: tuple[tuple[str, Direction], ...] = ()
    idx: int = 0
    limit: int | None = None
    fields: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        _validate_query(self)

    def where(self, field: str, op: Op, *values: Scalar) -> Query:
        """This query with one more filter."""
        return attrs.evolve(self, filters=(*self.filters, Filter(field, op, values)))

    def page(self, idx: int, limit: int | None) -> Query:
        """This query for another page."""
        return attrs.evolve(self, idx=idx, limit=limit)

    def unpaged(self) -> Query:
        """The same filters and sort, every record."""
        return attrs.evolve(self, idx=0, limit=None)

    def sort_spec(self) -> tuple[tuple[str, Direction], ...]:
        """The full sort, with the ``RequestName`` tie-break appended (in the
        direction of the last sort key)."""
        # A repeated field does not change the order: keep its first occurrence.
        out: list[tuple[str, Direction]] = []
        names: set[str] = set()
        for name, direction in self.sort:
            if name not in names:
                names.add(name)
                out.append((name, direction))
        if TIE_BREAK not in names:
            out.append((TIE_BREAK, out[-1][1] if out else "asc"))
        return tuple(out)

    def projector(self) -> Callable[[Workflow], dict[str, Any]]:
        """A function turning a record into a plain dict holding only ``fields``."""
        return make_projector(self.fields)


@functools.lru_cache(maxsize=64)
def make_projector(fields: tuple[str, ...] | None) -> Callable[[Workflow], dict[str, Any]]:
    """A function turning a :class:`Workflow` into a dict of the given keys."""
    from wmstats.serialize import converter

    unstructure = converter().unstructure
    if fields is None:
        def project_all(record: Workflow) -> dict[str, Any]:
            result: dict[str, Any] = unstructure(record)
            return result
        return project_all
    names = tuple(dict.fromkeys(fields))
    getters: list[tuple[str, Callable[[Any], Any]]] = []
    for name in names:
        spec = field_spec(name)
        if spec.kind == "record":
            getters.append((name, lambda v: [unstructure(t) for t in v]))
        elif spec.many:
            getters.append((name, list))
        else:
            getters.append((name, _identity))

    def project(record: Workflow) -> dict[str, Any]:
        return {name: conv(getattr(record, name)) for name, conv in getters}
    return project


def _identity(value: Any) -> Any:
    return value


@attrs.frozen
class Page:
    """One page of a query's result.

    :param records: the workflows of this page, in order.
    :param total: how many workflows match the filters (all pages).
    :param idx: the offset of the first record.
    :param limit: the page size asked for.
    :param snapshot: the snapshot id the page was read from.
    :param fields: the field mask of the query.
    """

    records: tuple[Workflow, ...]
    total: int
    idx: int = 0
    limit: int | None = None
    snapshot: str = ""
    fields: tuple[str, ...] | None = None

    @property
    def next_idx(self) -> int | None:
        """The ``idx`` of the next page, or ``None`` on the last page."""
        end = self.idx + len(self.records)
        if self.limit == 0 or end >= self.total or not self.records:
            return None
        return end

    def dicts(self) -> list[dict[str, Any]]:
        """The records as dicts, with the field mask applied."""
        project = make_projector(self.fields)
        return [project(r) for r in self.records]


# --------------------------------------------------------------------------- matching


def glob_to_regex(pattern: str) -> str:
    """The anchored regular expression of a glob (``*`` and ``?`` only)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "(?s:" + "".join(parts) + r")\Z"


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A fast predicate for one glob: literal parts use ``in``/``startswith``/``==``."""
    if "?" not in pattern:
        if "*" not in pattern:
            return pattern.__eq__
        core = pattern.strip("*")
        if "*" not in core:
            lead, trail = pattern.startswith("*"), pattern.endswith("*")
            if lead and trail:
                return lambda v: core in v
            if trail:
                return lambda v: v.startswith(core)
            return lambda v: v.endswith(core)
    lead = pattern.startswith("*")
    trail = pattern.endswith("*")
    body = glob_to_regex(pattern.strip("*"))[len("(?s:"):-len(r")\Z")]
    regex = re.compile("(?s:" + body + ")" + ("" if trail else r"\Z"))
    if lead:
        search = regex.search
        return lambda v: search(v) is not None
    match = regex.match
    return lambda v: match(v) is not None


def _scalar_matcher(flt: Filter) -> Callable[[Scalar], bool]:
    op = flt.op
    values = flt.values
    if op == "eq":
        if len(values) == 1:
            only = values[0]
            # bool is an int subclass: compare types too so True != 1.
            return lambda v: v == only and type(v) is type(only)
        wanted = frozenset(values)
        return lambda v: v in wanted
    if op in ("glob", "re"):
        if op == "glob":
            globs = [compile_glob(str(p)) for p in values]
            if len(globs) == 1:
                return typing.cast(Callable[[Scalar], bool], globs[0])
            return lambda v: any(g(v) for g in globs)  # type: ignore[arg-type]
        compiled = [re.compile(str(p)) for p in values]
        if len(compiled) == 1:
            search = compiled[0].search
            return lambda v: search(str(v)) is not None
        return lambda v: any(c.search(str(v)) is not None for c in compiled)
    bound = values[0]
    if op == "gt":
        return lambda v: v > bound  # type: ignore[operator]
    if op == "ge":
        return lambda v: v >= bound  # type: ignore[operator]
    if op == "lt":
        return lambda v: v < bound  # type: ignore[operator]
    return lambda v: v <= bound  # type: ignore[operator]


def compile_filter(flt: Filter) -> Callable[[Workflow], bool]:
    """A predicate on a whole record (tuple fields: any element)."""
    match = _scalar_matcher(flt)
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
    spec = _filterable(field)
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


# --------------------------------------------------------------------------- parsing

_COMPARISON = re.compile(r"^(>=|<=|>|<)(.*)$", re.S)
_OPS_BY_SYMBOL: Final[dict[str, Op]] = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
_INT = re.compile(r"^[+-]?[0-9]+$")


def parse_time(text: str, field: str = "time") -> int:
    """Epoch seconds from an integer or an ISO 8601 date/time (naive means UTC).

    :raises QueryError: when the text is neither.
    """
    text = text.strip()
    if _INT.match(text):
        return int(text)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(field, f"expected epoch seconds or an ISO 8601 date, "
                                f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp())


def _parse_scalar(spec: FieldSpec, text: str) -> Scalar:
    if spec.kind == "str":
        return text
    if spec.kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise QueryError(spec.name, f"expected true or false, got {text!r}")
    if spec.time:
        return parse_time(text, spec.name)
    if not _INT.match(text.strip()):
        raise QueryError(spec.name, f"expected an integer, got {text!r}")
    return int(text)


def _as_list(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    out = list(value)
    for item in out:
        if not isinstance(item, str):
            raise TypeError(f"parameter values must be strings, got {item!r}")
    return out


def _parse_plain(spec: FieldSpec, raw: list[str]) -> list[Filter]:
    """``Field=value`` forms (see :func:`parse_query`)."""
    texts = [part for text in raw for part in text.split(",")]
    if spec.kind == "str":
        if any("*" in t or "?" in t for t in texts):
            return [Filter(spec.name, "glob", tuple(texts))]
        return [Filter(spec.name, "eq", tuple(dict.fromkeys(texts)))]
    if spec.kind == "bool":
        return [Filter(spec.name, "eq", tuple(dict.fromkeys(
            _parse_scalar(spec, t) for t in texts)))]
    filters: list[Filter] = []
    exact: list[Scalar] = []
    for text in texts:
        comparison = _COMPARISON.match(text)
        if comparison is not None:
            filters.append(Filter(spec.name, _OPS_BY_SYMBOL[comparison.group(1)],
                                  (_parse_scalar(spec, comparison.group(2)),)))
        elif ".." in text:
            low, _, high = text.partition("..")
            if not low.strip() and not high.strip():
                raise QueryError(spec.name, "a range needs at least one bound")
            if low.strip():
                filters.append(Filter(spec.name, "ge", (_parse_scalar(spec, low),)))
            if high.strip():
                filters.append(Filter(spec.name, "le", (_parse_scalar(spec, high),)))
        else:
            exact.append(_parse_scalar(spec, text))
    if exact and filters:
        raise QueryError(spec.name, "cannot combine exact values with ranges in one "
                                    "parameter (use separate parameters)")
    if exact:
        filters.append(Filter(spec.name, "eq", tuple(dict.fromkeys(exact))))
    return filters


def _parse_explicit(spec: FieldSpec, op: str, raw: list[str]) -> list[Filter]:
    """``Field.op=value`` forms (see :func:`parse_query`)."""
    if op not in FILTER_OPS:
        raise QueryError(f"{spec.name}.{op}", f"unknown operator {op!r} "
                                              f"(known: {', '.join(sorted(FILTER_OPS))})")
    if op in RANGE_OPS:
        return [Filter(spec.name, typing.cast(Op, op), (_parse_scalar(spec, t),))
                for t in raw]
    if op in ("glob", "re"):
        return [Filter(spec.name, typing.cast(Op, op), tuple(raw))]
    return [Filter(spec.name, "eq", tuple(dict.fromkeys(_parse_scalar(spec, t) for t in raw)))]


def _parse_int(name: str, raw: list[str], minimum: int) -> int:
    if len(raw) != 1:
        raise QueryError(name, "given more than once")
    text = raw[0].strip()
    if not _INT.match(text) or int(text) < minimum:
        raise QueryError(name, f"expected an integer >= {minimum}, got {raw[0]!r}")
    return int(text)


def _parse_names(name: str, raw: list[str]) -> list[str]:
    return [part.strip() for text in raw for part in text.split(",") if part.strip()]


def parse_query(params: Mapping[str, str | Sequence[str]], *, default_limit: int | None = 100,
                max_limit: int | None = None, allowed: Iterable[str] | None = None) -> Query:
    """Build a :class:`Query` from flat string parameters (e.g. an HTTP query string).

    Every key must be known; anything else is refused.  Keys:

    ``idx``
        zero-based offset (default 0).
    ``limit``
        page size (default ``default_limit``; at most ``max_limit``).
    ``sort``
        comma-separated fields, ``-Field`` for descending (``+Field`` or ``Field``
        ascending): ``sort=-RequestPriority,RequestDate``.
    ``fields``
        comma-separated field mask: ``fields=RequestName,RequestStatus``.
    ``Field``
        a filter on a :class:`~wmstats.schema.Workflow` field.  Comma-separated or
        repeated values are alternatives (OR); different fields AND together.

        * strings: exact values; if any value contains ``*`` or ``?`` the
          parameter is a wildcard (glob) filter: ``RequestName=*HIG*``.
        * integers and times: exact values, or one comparison ``>=N``, ``>N``,
          ``<=N``, ``<N``, or an inclusive range ``N..M`` (``N..``, ``..M``).
          Time fields (``RequestDate``, ``StatusTime``, ``AgentUpdate``) take epoch
          seconds or ISO 8601 (``2024-05-01``, ``2024-05-01T12:00:00Z``).
        * booleans: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``).
    ``Field.op``
        an explicit operator, values never split on commas: ``Field.eq``
        (exact, OR over repeated values), ``Field.glob``, ``Field.re`` (Python
        regex, unanchored; OR over repeated values), ``Field.gt``, ``Field.ge``,
        ``Field.lt``, ``Field.le`` (each repeated value is one more condition).

    :param params: key -> one value or a list of values (as from ``parse_qs``).
    :param default_limit: ``limit`` when not given (``None``: no limit).
    :param max_limit: the largest ``limit`` accepted; with it, ``limit`` is required
        to be bounded (a missing limit becomes ``default_limit``).
    :param allowed: if given, only these fields may be filtered.
    :raises QueryError: for anything invalid, naming the parameter.
    """
    allowed_set = None if allowed is None else frozenset(allowed)
    filters: list[Filter] = []
    idx = 0
    limit = default_limit
    sort: list[tuple[str, Direction]] = []
    fields: tuple[str, ...] | None = None
    for key, value in params.items():
        raw = _as_list(value)
        if key == "idx":
            idx = _parse_int("idx", raw, 0)
        elif key == "limit":
            limit = _parse_int("limit", raw, 0)
        elif key == "sort":
            for name in _parse_names("sort", raw):
                direction: Direction = "desc" if name.startswith("-") else "asc"
                name = name.lstrip("+-")
                _filterable(name)
                sort.append((name, direction))
        elif key == "fields":
            names = _parse_names("fields", raw)
            for name in names:
                field_spec(name)
            fields = tuple(dict.fromkeys(names))
        else:
            name, dot, op = key.partition(".")
            if name not in field_specs():
                raise QueryError(key, "unknown parameter")
            spec = _filterable(name)
            if allowed_set is not None and name not in allowed_set:
                raise QueryError(key, "filtering on this field is not allowed")
            if not raw:
                continue
            filters.extend(_parse_explicit(spec, op, raw) if dot else _parse_plain(spec, raw))
    if max_limit is not None and (limit is None or limit > max_limit):
        raise QueryError("limit", f"must be at most {max_limit}, got {limit}")
    return Query(filters=tuple(filters), sort=tuple(sort), idx=idx, limit=limit, fields=fields)
