"""Parsing flat string parameters (an HTTP query string) into a :class:`Query`.

:func:`parse_query` is strict and works by whitelist: every key must be known,
every value must parse, and a refusal names the parameter at fault
(:attr:`QueryError.parameter`).  Pure: no I/O.
"""

from __future__ import annotations

import datetime
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from wmstats.query import grammar
from wmstats.query.model import (
    FILTER_OPS,
    INT_MAX,
    RANGE_OPS,
    Direction,
    FieldSpec,
    Filter,
    LimitError,
    Op,
    Query,
    QueryError,
    Scalar,
    field_spec,
    field_specs,
)

__all__ = ["parse_query", "parse_time"]

_COMPARISON = re.compile(r"(>=|<=|>|<)(.*)", re.S)
_OPS_BY_SYMBOL: Final[dict[str, Op]] = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
_INT: Final = grammar.full(grammar.INTEGER)
_TIME: Final = grammar.full(grammar.TIME)
_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*")
#: An integer of any size (the model refuses what is beyond 64 bits, naming it).
_DIGITS: Final = re.compile(r"[+-]?[0-9]+")


def parse_time(text: str, field: str = "time") -> int:
    """Epoch seconds from an integer or an ISO 8601 date/time (naive means UTC),
    as :data:`wmstats.query.grammar.TIME` writes them.

    :raises QueryError: when the text is neither.
    """
    if _DIGITS.fullmatch(text):
        return int(text)  # beyond 64 bits, the model refuses it
    if not _TIME.fullmatch(text):
        raise QueryError(field, f"expected epoch seconds or an ISO 8601 date "
                                f"(YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM]), got {text!r}")
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return int(when.timestamp())


def _parse_scalar(spec: FieldSpec, text: str) -> Scalar:
    if spec.kind == "str":
        return text
    if spec.kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise QueryError(spec.name, f"expected true or false, got {text!r}")
    if spec.time:
        return parse_time(text, spec.name)
    if not _DIGITS.fullmatch(text):
        raise QueryError(spec.name, f"expected an integer, got {text!r}")
    return int(text)  # beyond 64 bits, the model refuses it


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
    for text in raw:
        if text.count(",") >= grammar.MAX_ITEMS:
            raise QueryError(spec.name, f"more than {grammar.MAX_ITEMS} comma-separated "
                                        f"values in one parameter")
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
        comparison = _COMPARISON.fullmatch(text)
        if comparison is not None:
            filters.append(Filter(spec.name, _OPS_BY_SYMBOL[comparison.group(1)],
                                  (_parse_scalar(spec, comparison.group(2)),)))
        elif ".." in text:
            low, _, high = text.partition("..")
            if not low and not high:
                raise QueryError(spec.name, "a range needs at least one bound")
            if low:
                filters.append(Filter(spec.name, "ge", (_parse_scalar(spec, low),)))
            if high:
                filters.append(Filter(spec.name, "le", (_parse_scalar(spec, high),)))
        else:
            exact.append(_parse_scalar(spec, text))
    # Exact values are alternatives; comparisons and ranges narrow them further.
    if exact:
        filters.insert(0, Filter(spec.name, "eq", tuple(dict.fromkeys(exact))))
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
    text = raw[0]
    if not _INT.fullmatch(text) or int(text) < minimum:
        raise QueryError(name, f"expected an integer from {minimum} to {INT_MAX}, "
                               f"got {raw[0]!r}")
    return int(text)


def _parse_names(raw: list[str], signed: bool = False) -> list[str]:
    """Comma-separated field names (``-``/``+`` prefixed if ``signed``), exactly:
    no blank, no space."""
    names = [part for text in raw for part in text.split(",")]
    for name in names:
        if not _NAME.fullmatch(name[1:] if signed and name[:1] in "+-" else name):
            raise QueryError(name, "not a field name" if name else
                             "empty field name in a comma-separated list")
    return names


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
    :raises LimitError: for a ``limit`` above ``max_limit`` (a :class:`QueryError`).
    :raises QueryError: for anything invalid; :attr:`QueryError.parameter` names
        the parameter (``RequestDate.ge``, ``sort``...), :attr:`QueryError.field`
        the field at fault.
    """
    allowed_set = None if allowed is None else frozenset(allowed)
    filters: list[Filter] = []
    idx = 0
    limit = default_limit
    sort: list[tuple[str, Direction]] = []
    fields: tuple[str, ...] | None = None
    for key, value in params.items():
        raw = _as_list(value)
        try:
            if key == "idx":
                idx = _parse_int("idx", raw, 0)
            elif key == "limit":
                limit = _parse_int("limit", raw, 0)
            elif key == "sort":
                sort += _parse_sort(raw)
            elif key == "fields":
                names = _parse_names(raw)
                for name in names:
                    field_spec(name)
                fields = tuple(dict.fromkeys(names))
            else:
                filters += _parse_filter(key, raw, allowed_set)
        except QueryError as exc:
            raise exc.at(key) from None
    if max_limit is not None and (limit is None or limit > max_limit):
        raise LimitError(limit, max_limit)
    return Query(filters=tuple(filters), sort=tuple(sort), idx=idx, limit=limit, fields=fields)


def _parse_sort(raw: list[str]) -> list[tuple[str, Direction]]:
    sort: list[tuple[str, Direction]] = []
    for name in _parse_names(raw, signed=True):
        direction: Direction = "desc" if name.startswith("-") else "asc"
        if name[:1] in "+-":
            name = name[1:]
        field_spec(name)
        sort.append((name, direction))
    return sort


def _parse_filter(key: str, raw: list[str], allowed: frozenset[str] | None) -> list[Filter]:
    """The filters of one ``Field`` or ``Field.op`` parameter."""
    name, dot, op = key.partition(".")
    if name not in field_specs():
        raise QueryError(key, "unknown parameter")
    spec = field_spec(name)
    if allowed is not None and name not in allowed:
        raise QueryError(key, "filtering on this field is not allowed")
    if not raw:
        return []
    return _parse_explicit(spec, op, raw) if dot else _parse_plain(spec, raw)
