"""The query model and its validation: fields, filters, queries, pages.

Pure: no I/O.  Every value here checks itself when built, so a :class:`Query`
that exists is valid; see :mod:`wmstats.query` for the semantics.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

from wmstats.aggregates import BY_KEY
from wmstats.query import grammar
from wmstats.query.errors import LimitError, QueryError
from wmstats.query.match import PatternError, compile_regex, scalar_matcher
from wmstats.schema import Workflow
from wmstats.serialize import converter

__all__ = [
    "QueryError",
    "LimitError",
    "Scalar",
    "Op",
    "Direction",
    "FieldSpec",
    "FILTER_OPS",
    "RANGE_OPS",
    "TIME_FIELDS",
    "TIE_BREAK",
    "SORT_SEPARATOR",
    "RESERVED_PARAMS",
    "AGGREGATE_KEYS",
    "MAX_VALUES",
    "MAX_PATTERN",
    "INT_MIN",
    "INT_MAX",
    "field_specs",
    "field_spec",
    "Filter",
    "Query",
    "Page",
    "make_projector",
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
#: Parameters of :func:`~wmstats.query.parse_query` that are not field filters.
RESERVED_PARAMS: Final[frozenset[str]] = frozenset({"idx", "limit", "sort", "fields"})
#: Aggregation key -> the Workflow field holding the value (read from
#: :data:`wmstats.aggregates.AGGREGATES`, see :func:`~wmstats.query.summarize`).
AGGREGATE_KEYS: Final[Mapping[str, str]] = {key: a.field for key, a in BY_KEY.items()}
#: Limits that keep a single query cheap: values per filter, characters per
#: string value or pattern.
MAX_VALUES: Final = 1000
MAX_PATTERN: Final = grammar.MAX_TEXT
#: The integers a filter takes (signed 64-bit, what every backend stores): a
#: value outside is refused, the same way on every backend.
INT_MIN: Final = -(2 ** 63)
INT_MAX: Final = 2 ** 63 - 1


# --------------------------------------------------------------------------- fields


@attrs.frozen
class FieldSpec:
    """What a :class:`Workflow` field holds, for validation.

    :param name: the field name.
    :param kind: ``"str"``, ``"int"`` or ``"bool"`` (records are flat: every field
        holds one of these, or a tuple of them).
    :param many: whether the field is a tuple.
    :param time: whether it holds epoch seconds.
    """

    name: str
    kind: Literal["str", "int", "bool"]
    many: bool
    time: bool = False

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
        kind: Literal["str", "int", "bool"]
        if inner is bool:
            kind = "bool"
        elif inner is int:
            kind = "int"
        elif inner is str:
            kind = "str"
        else:  # the schema's flatness test keeps this from happening
            raise TypeError(f"Workflow.{field.name} is not a flat field: {hint!r}")
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
                compile_regex(value)
            except PatternError as exc:
                raise QueryError(spec.name, f"bad regular expression {value!r}: {exc} "
                                            f"(RE2 syntax: no backreferences or "
                                            f"look-around)") from None
        return
    if op in RANGE_OPS:
        if not spec.numeric:
            raise QueryError(spec.name, f"operator {op!r} needs a numeric field, "
                                        f"this one holds {spec.kind} values")
        if type(value) is not int:
            raise QueryError(spec.name, f"{op} needs an integer, got {value!r}")
        _check_range(spec, value)
        return
    # eq
    expected: type[Any] = {"str": str, "int": int, "bool": bool}[spec.kind]
    if type(value) is not expected:
        raise QueryError(spec.name, f"expected a {spec.kind} value, got {value!r}")
    if expected is str and len(typing.cast(str, value)) > MAX_PATTERN:
        raise QueryError(spec.name, f"value longer than {MAX_PATTERN} characters")
    if expected is int:
        _check_range(spec, typing.cast(int, value))


def _check_range(spec: FieldSpec, value: int) -> None:
    if not INT_MIN <= value <= INT_MAX:
        raise QueryError(spec.name, f"{value} is out of range: integers are 64-bit "
                                    f"({INT_MIN}..{INT_MAX})")


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
        spec = field_spec(self.field)
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
        return scalar_matcher(self.op, self.values)


def _check_sort(sort: object) -> None:
    if not isinstance(sort, tuple):
        raise QueryError("sort", "sort must be a tuple of (field, direction) pairs")
    for item in sort:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise QueryError("sort", f"bad sort item {item!r}: expected (field, direction)")
        name, direction = item
        field_spec(name)
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
        if spec.many:
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
