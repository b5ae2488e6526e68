"""Workflow records that keep their longest per-workflow values only in their line.

A row of the memory store keeps its :class:`~wmstats.schema.Workflow` and the
JSON text a server writes of it (its *line*).  The values of :data:`HELD_FIELDS`
(output datasets and LFN bases: a few long paths, each workflow's own, so
sharing them between rows saves nothing) would be held twice: ~1.15 kB per
production-sized workflow, ~110 MiB at 100,000.  :func:`hold` makes the row's
record a :class:`HeldWorkflow`: the same object, whose slots for those fields
hold its line, and whose class reads the values back from the line when they are
read (:class:`~wmstats.backends.codec.LineFields`, ~2 µs a field).  Nothing else
changes: it is a ``Workflow``, equal to (and hashing as) a ``Workflow`` of the
same values; every reader gets the values; records built from it (``attrs.evolve``,
copies, pickles) hold their values as any other.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

import attrs

from wmstats.backends.codec import LineFields
from wmstats.schema import Workflow

__all__ = ["HELD_FIELDS", "HeldWorkflow", "hold"]

#: The fields whose values a :class:`HeldWorkflow` reads from its line.
HELD_FIELDS: Final = ("OutputDatasets", "OutputModulesLFNBases")

_NAMES: Final = tuple(f.name for f in attrs.fields(Workflow))
_VALUES: Final[Callable[[Workflow], tuple[Any, ...]]] = operator.attrgetter(*_NAMES)
#: The slots of the held fields (their member descriptors in Workflow).
_SLOTS: Final = tuple(Workflow.__dict__[name] for name in HELD_FIELDS)


class HeldWorkflow(Workflow):
    """A :class:`~wmstats.schema.Workflow` whose :data:`HELD_FIELDS` slots may hold
    its line (``bytes``) instead of their values: reading such a field reads the
    value from the line.  Made by :func:`hold` only."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workflow):
            return NotImplemented
        return _VALUES(self) == _VALUES(other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Workflow):
            return NotImplemented
        return _VALUES(self) != _VALUES(other)

    __hash__ = Workflow.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        # Copies and pickles are plain Workflows holding the values.
        return _plain, (_VALUES(self),)


def _plain(values: tuple[Any, ...]) -> Workflow:
    return Workflow(**dict(zip(_NAMES, values)))


def _held_field(name: str, slot: Any) -> property:
    read = LineFields((name,))
    get_slot, set_slot = slot.__get__, slot.__set__

    def get(self: HeldWorkflow) -> Any:
        value = get_slot(self, HeldWorkflow)
        if type(value) is bytes:  # the line (a value of the field is a tuple)
            return read(value)[0]
        return value

    def set_(self: HeldWorkflow, value: Any) -> None:
        # attrs' __init__ (evolve, copies) sets the value itself
        set_slot(self, value)

    return property(get, set_, doc=f"{name}, read from the record's line when held there")


for _name, _slot in zip(HELD_FIELDS, _SLOTS):
    setattr(HeldWorkflow, _name, _held_field(_name, _slot))
# Its record type's name is Workflow's: readers tag records by their class's name
# (the NDJSON bundles' RecordType, attrs' repr).
HeldWorkflow.__name__ = HeldWorkflow.__qualname__ = Workflow.__name__


def hold(workflow: Workflow, line: bytes) -> Workflow:
    """``workflow`` (whose line :func:`~wmstats.backends.codec.encode_line` wrote is
    ``line``), made to keep the non-empty values of :data:`HELD_FIELDS` only in
    ``line``: the same object, now a :class:`HeldWorkflow` (as the store's interner
    does, it changes the record in place: not observable but by its type).  A
    workflow whose held fields are all empty is returned as it is."""
    held = [slot for name, slot in zip(HELD_FIELDS, _SLOTS) if getattr(workflow, name)]
    if not held:
        return workflow
    if type(workflow) is not HeldWorkflow:
        # The class first: until the slots change it reads the values they hold.
        object.__setattr__(workflow, "__class__", HeldWorkflow)
    for slot in held:
        slot.__set__(workflow, line)
    return workflow
