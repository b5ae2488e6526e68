"""Structuring and unstructuring of records: one ``cattrs`` converter, ``ujson`` text.

The converter is built once at first use and reused (building a cattrs
converter generates code per class, which is slow to repeat).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import cattrs
import ujson
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.preconf.ujson import UjsonConverter
from cattrs.preconf.ujson import make_converter as _make_ujson_converter

from wmstats.schema import RECORD_TYPES

__all__ = [
    "make_converter",
    "converter",
    "unstructure",
    "structure",
    "dumps",
    "loads",
    "to_ndjson",
    "json_dumps",
    "json_bytes",
    "StructureError",
]

T = TypeVar("T")

#: Raised by :func:`structure` / :func:`loads` for data that does not fit a record type.
StructureError = cattrs.BaseValidationError


def _strict(expected: type[Any] | tuple[type[Any], ...], label: str) -> Any:
    def hook(value: Any, _cls: Any) -> Any:
        if isinstance(value, expected) and not (isinstance(value, bool) and bool not in (
                expected if isinstance(expected, tuple) else (expected,))):
            return value
        raise TypeError(f"expected {label}, got {type(value).__name__} {value!r}")
    return hook


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def make_converter() -> UjsonConverter:
    """A new converter for every record type: tuples become JSON arrays.

    Structuring is strict, since records are a typed contract: a string field takes
    only a string, a boolean only a boolean, an integer only an integer (not a
    boolean), a list field only a JSON array; anything else raises
    :data:`StructureError` naming the field.
    """
    conv = _make_ujson_converter()
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    float_hook = _strict((int, float), "a number")
    conv.register_structure_hook(float, lambda v, cls: float(float_hook(v, cls)))

    def tuple_factory(tp: Any) -> Any:
        # cattrs' own tuple hook (it reports the failing index), minus its habit of
        # taking any iterable: a string would become a tuple of characters.
        inner = homogenous_tuple_structure_factory(tp, conv)

        def hook(value: Any, cls: Any) -> tuple[Any, ...]:
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"expected an array, got {type(value).__name__} {value!r}")
            result: tuple[Any, ...] = inner(value, cls)
            return result
        return hook

    conv.register_structure_hook_factory(_is_homogeneous_tuple, tuple_factory)
    for cls in RECORD_TYPES.values():
        # Generate the (un)structure functions up front, once.
        conv.get_unstructure_hook(cls)
        conv.get_structure_hook(cls)
    return conv


@functools.cache
def converter() -> UjsonConverter:
    """The shared converter (built on first use)."""
    return make_converter()


def unstructure(record: Any) -> dict[str, Any]:
    """A record as a plain dict with its CamelCase keys."""
    result: dict[str, Any] = converter().unstructure(record)
    return result


def structure(data: Mapping[str, Any], cls: type[T]) -> T:
    """Build a record of type ``cls`` from a plain dict.

    :raises StructureError: when a value does not fit its field.
    """
    if not isinstance(data, Mapping):
        raise cattrs.ClassValidationError(
            f"While structuring {getattr(cls, '__name__', cls)}",
            [TypeError(f"expected a JSON object, got {type(data).__name__} {data!r}")], cls)
    return converter().structure(data, cls)


def json_dumps(value: Any) -> str:
    """Plain JSON data as compact text: UTF-8 kept as is, ``/`` not escaped.

    The one place that sets the JSON encoder's options; every module that writes
    JSON calls this or :func:`json_bytes`.
    """
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)


def json_bytes(value: Any) -> bytes:
    """:func:`json_dumps` as UTF-8 bytes."""
    return json_dumps(value).encode("utf-8")


def dumps(record: Any) -> str:
    """A record as compact JSON text."""
    return json_dumps(unstructure(record))


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into a record of type ``cls``."""
    return structure(ujson.loads(text), cls)


def to_ndjson(records: Iterable[Any]) -> Iterator[str]:
    """One JSON line (with its newline) per record."""
    unstruct = converter().unstructure
    for record in records:
        yield json_dumps(unstruct(record)) + "\n"
