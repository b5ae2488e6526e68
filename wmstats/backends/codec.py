"""A compact positional encoding of records and bundles, shared by the backends.

Records (flat: every field a scalar or a tuple of scalars) become JSON arrays of
their field values in schema order (no keys), which is 3-4 times smaller than the
keyed form and fast to read back; the bundle's records other than the workflow
(its :data:`~wmstats.schema.BUNDLE_PARTS`) go into one blob, optionally
compressed: one JSON array per part, one line each, so that a reader that wants a
few parts decodes only those (:func:`decode_parts` ``only``).  Compressed alone
(zlib), or with a :class:`PartsDictionary` made from a store's first bundles: at
production-sized mock workflows ~2.15 kB a blob instead of ~2.9 kB with zlib alone
(18 kB of JSON), and faster to read.  A blob holds
the parts the schema had when it was written: a backend that keeps blobs across
versions bumps its layout when the parts change.
"""

from __future__ import annotations

import inspect
import operator
import typing
import zlib
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final

import attrs

from wmstats import _deflate
from wmstats.backends.dictionary import BlobDictionary
from wmstats.schema import BUNDLE_PARTS, Workflow, WorkflowBundle
from wmstats.serialize import json_bytes, json_dumps, json_loads, json_loads_stored, unstructure

__all__ = [
    "field_names",
    "record_values",
    "record_from_values",
    "encode_workflow",
    "decode_workflow",
    "encode_line",
    "decode_line",
    "LineFields",
    "encode_parts",
    "decode_parts",
    "decode_bundle",
    "PartsDictionary",
]

_ZLIB_MAGIC: Final = b"\x78"  # every zlib stream starts with 0x78 at our levels
_JSON_START: Final = b"["


class _Layout:
    """Field names, tuple positions and a values getter of one record type."""

    __slots__ = ("names", "tuples", "getter", "build")

    def __init__(self, cls: type[Any]) -> None:
        self.names = tuple(f.name for f in attrs.fields(cls))
        hints = typing.get_type_hints(cls)
        #: The index of each tuple field.
        self.tuples = frozenset(
            i for i, name in enumerate(self.names) if typing.get_origin(hints[name]) is tuple)
        getter: Callable[[Any], Any] = operator.attrgetter(*self.names)
        if len(self.names) == 1:
            single = getter
            getter = lambda r: (single(r),)  # noqa: E731
        self.getter = getter
        self.build = self._builder(cls)

    def _builder(self, cls: type[Any]) -> Callable[[Sequence[Any]], Any]:
        """A function ``values -> record`` written for this class.

        For a slotted class whose fields have no validator or converter and no
        ``__attrs_post_init__`` (the schema's records), it sets each slot through
        its descriptor, which is all the attrs ``__init__`` does: two to three
        times faster than calling it with keywords (what it does otherwise; the
        names are the schema's field names).
        """
        fields = attrs.fields(cls)
        direct = ("__slots__" in cls.__dict__ and not hasattr(cls, "__attrs_post_init__")
                  and all(f.validator is None and f.converter is None and f.init
                          for f in fields))
        namespace: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
        lines = []
        args = []
        for i, name in enumerate(self.names):
            assert name.isidentifier()
            value = f"tuple(v[{i}])" if i in self.tuples else f"v[{i}]"
            if direct:
                namespace[f"_set{i}"] = inspect.getattr_static(cls, name).__set__
                lines.append(f"    _set{i}(r, {value})\n")
            else:
                args.append(f"{name}={value}")
        if direct:
            code = f"def build(v):\n    r = _new(_cls)\n{''.join(lines)}    return r\n"
        else:
            code = f"def build(v):\n    return _cls({', '.join(args)})\n"
        exec(code, namespace)  # noqa: S102
        build: Callable[[Sequence[Any]], Any] = namespace["build"]
        return build


_LAYOUTS: dict[type[Any], _Layout] = {}


def _layout(cls: type[Any]) -> _Layout:
    found = _LAYOUTS.get(cls)
    if found is None:
        found = _LAYOUTS[cls] = _Layout(cls)
    return found


def _name_index(cls: type[Any]) -> int:
    return _layout(cls).names.index("RequestName")


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The field names of a record type, in schema order."""
    return _layout(cls).names


def record_values(record: Any) -> list[Any]:
    """A record's field values in schema order (tuples stay tuples)."""
    return list(_layout(type(record)).getter(record))


def record_from_values(cls: type[Any], values: Sequence[Any]) -> Any:
    """Rebuild a record from :func:`record_values` output (lists allowed for tuples)."""
    return _layout(cls).build(values)


def encode_workflow(workflow: Workflow) -> str:
    """One workflow as a JSON array."""
    return json_dumps(record_values(workflow))


def decode_workflow(text: str | bytes) -> Workflow:
    """The inverse of :func:`encode_workflow`."""
    result: Workflow = record_from_values(Workflow, json_loads(text))
    return result


def encode_line(workflow: Workflow) -> bytes:
    """One workflow as the JSON object a server writes (every field by name): the
    text of :meth:`wmstats.store.Store.query_encoded` without a field mask."""
    return json_bytes(unstructure(workflow))


def decode_line(text: str | bytes) -> Workflow:
    """The inverse of :func:`encode_line`, for a record of 64-bit integers (as every
    store that keeps lines holds: :func:`~wmstats.serialize.json_loads_stored`)."""
    values = json_loads_stored(text)
    result: Workflow = record_from_values(Workflow, [values[n] for n in field_names(Workflow)])
    return result


class LineFields:
    """Some tuple fields of a workflow read back from its line (:func:`encode_line`)
    without decoding the rest: a store that keeps the line need not keep their
    values a second time.

    A line holds the workflow's fields in schema order, compact, each key once; a
    key's text ``,"Name":`` cannot occur inside a JSON string (a quote in a string
    is always escaped), so a field's value is the text between its key and the
    next field's.

    :param names: the fields (tuples of strings) to read.
    """

    def __init__(self, names: Sequence[str]) -> None:
        layout = _layout(Workflow)
        self.names = tuple(names)
        self.at = tuple(layout.names.index(name) for name in self.names)
        others = [name for name, at in zip(self.names, self.at) if at not in layout.tuples]
        if others:
            raise ValueError(f"not tuple fields of Workflow: {', '.join(others)}")
        marks = []
        for i in self.at:
            start = ("{" if i == 0 else ",") + f'"{layout.names[i]}":'
            # the last field's value ends where the line does, before its "}"
            end = f',"{layout.names[i + 1]}":'.encode() if i + 1 < len(layout.names) else None
            marks.append((start.encode(), end))
        self._marks = tuple(marks)

    def __call__(self, line: bytes) -> tuple[tuple[Any, ...], ...]:
        """The fields' values in ``line``, in the order of :attr:`names`."""
        out = []
        for start, end in self._marks:
            begin = line.find(start)
            if begin < 0:
                stop = -1
            elif end is None:
                stop = len(line) - 1 if line.endswith(b"}") else -1
            else:
                stop = line.find(end, begin + len(start))
            if stop < 0:  # not a line of encode_line: decode it whole
                record = json_loads_stored(line)
                return tuple(tuple(record[name]) for name in self.names)
            out.append(tuple(json_loads_stored(line[begin + len(start):stop])))
        return tuple(out)


def encode_parts(bundle: WorkflowBundle, *, compress: bool = False,
                 dictionary: PartsDictionary | None = None) -> bytes:
    """Every record of a bundle but its workflow, as one blob: a line per part, in
    :data:`~wmstats.schema.BUNDLE_PARTS` order.

    ``RequestName`` is left out of each part record: it is the workflow's.

    :param compress: zlib-compress the blob (unless ``dictionary`` is given).
    :param dictionary: compress with this dictionary (a bundle without parts stays
        uncompressed, the same blob for all).
    """
    data = _joined_parts(bundle)
    if dictionary is not None and data != _EMPTY:
        return dictionary.compress(data)
    if compress:
        return _deflate.compress(data)
    # A copy: orjson's result keeps the capacity of its write buffer.
    return bytes(memoryview(data))


def _joined_parts(bundle: WorkflowBundle) -> bytes:
    """The blob of :func:`encode_parts`, uncompressed."""
    lines = []
    for attr, cls in BUNDLE_PARTS.items():
        at = _name_index(cls)
        rows = []
        for record in getattr(bundle, attr):
            values = record_values(record)
            del values[at]
            rows.append(values)
        lines.append(json_bytes(rows))  # compact JSON never holds a raw newline
    return _NEWLINE.join(lines)


_NEWLINE: Final = b"\n"
_EMPTY: Final = bytes(_joined_parts(WorkflowBundle(workflow=Workflow(RequestName=""))))


class PartsDictionary(BlobDictionary):
    """A compression dictionary for the blobs of :func:`encode_parts` (one per store
    load): made by :meth:`train` from the first bundles, then given to
    :func:`encode_parts` and :func:`decode_parts`.

    zstd level 3: at production-sized mock workflows ~2.15 kB a blob for ~60 µs
    (zlib alone: ~2.9 kB for ~35 µs); level 9 saves 10 % more for ten times the
    time of every write.
    """

    #: bundles a dictionary is made from
    TRAIN_BUNDLES: Final = 64

    @classmethod
    def train(cls, samples: Sequence[WorkflowBundle], *, kind: str | None = None
              ) -> PartsDictionary:
        """A dictionary for bundles like ``samples`` (zstd when ``zstandard`` is
        installed, unless ``kind`` says otherwise)."""
        texts = [_joined_parts(bundle) for bundle in samples]
        return cls.from_samples([text for text in texts if text != _EMPTY], kind=kind)


def decode_parts(name: str, blob: bytes, only: Collection[str] | None = None,
                 dictionary: PartsDictionary | None = None) -> dict[str, tuple[Any, ...]]:
    """The part records of a blob (see :func:`encode_parts`), by bundle attribute.

    :param only: the parts to decode (``None``: all); the others are left out.
    :param dictionary: the dictionary the blob was compressed with, if any.
    :raises ValueError: for a blob made with a dictionary, without it.
    """
    if BlobDictionary.made(blob):
        if dictionary is None:
            raise ValueError("a blob made with a dictionary, decoded without it")
        blob = dictionary.decompress(blob)
    elif blob[:1] == _ZLIB_MAGIC:
        blob = zlib.decompress(blob)
    lines = blob.split(_NEWLINE)
    out: dict[str, tuple[Any, ...]] = {}
    for (attr, cls), line in zip(BUNDLE_PARTS.items(), lines):
        if only is not None and attr not in only:
            continue
        at = _name_index(cls)
        rows = json_loads(line)
        for row in rows:
            row.insert(at, name)
        out[attr] = tuple(record_from_values(cls, row) for row in rows)
    return out


def decode_bundle(workflow: Workflow, blob: bytes, only: Collection[str] | None = None,
                  dictionary: PartsDictionary | None = None) -> WorkflowBundle:
    """The bundle of ``workflow`` with the parts stored in ``blob`` (``only`` those
    parts, the others empty, when given; ``dictionary``: the one it was made with)."""
    if blob == _EMPTY:
        return WorkflowBundle(workflow=workflow)
    return WorkflowBundle(workflow=workflow,
                          **decode_parts(workflow.RequestName, blob, only, dictionary))
