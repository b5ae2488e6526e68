"""Structuring and unstructuring of records: one ``cattrs`` converter, ``ujson`` text.

The converter is built once at first use and reused (building a cattrs
converter generates code per class, which is slow to repeat).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import cattrs
import ujson
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
    "StructureError",
]

T = TypeVar("T")

#: Raised by :func:`structure` / :func:`loads` for data that does not fit a record type.
StructureError = cattrs.BaseValidationError


def make_converter() -> UjsonConverter:
    """A new converter for every record type: tuples become JSON arrays."""
    conv = _make_ujson_converter(unstruct_collection_overrides={tuple: list})
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
    return converter().structure(data, cls)


def dumps(record: Any) -> str:
    """A record as compact JSON text."""
    return ujson.dumps(unstructure(record), ensure_ascii=False, escape_forward_slashes=False)


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into a record of type ``cls``."""
    return structure(ujson.loads(text), cls)


def to_ndjson(records: Iterable[Any]) -> Iterator[str]:
    """One JSON line (with its newline) per record."""
    unstruct = converter().unstructure
    for record in records:
        yield ujson.dumps(unstruct(record), ensure_ascii=False,
                          escape_forward_slashes=False) + "\n"
