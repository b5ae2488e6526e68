"""Aggregates of a memory snapshot: per-workflow sums of WorkflowSite counters
(sparsely packed) and the running totals of one aggregation (:class:`AggState`),
which writes carry from one snapshot to the next.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from wmstats.aggregates import AGGREGATES, BY_KEY
from wmstats.query import field_specs, make_summary
from wmstats.schema import COUNTER_FIELDS, Summary, Workflow, WorkflowBundle

__all__ = ["N_COUNTERS", "AggState", "sum_fields", "encode_sums", "decode_sums"]

N_COUNTERS: Final = len(COUNTER_FIELDS)
#: Most distinct sites and agents a store can sum over (ids fit 32 bits).
_MAX_IDS: Final = 1 << 31
#: A sum's bit mask of non-zero counters is packed as two items of this many bits
#: (so that all items of a workflow fit 16 bits, as they mostly do).
_MASK_BITS: Final = 16
_MASK_LOW: Final = (1 << _MASK_BITS) - 1
_COUNTERS: Final[Callable[[Any], tuple[int, ...]]] = operator.attrgetter(*COUNTER_FIELDS)


class AggState:
    """Running totals of one aggregation: counters and workflows by status, per value."""

    __slots__ = ("counters", "statuses")

    def __init__(self) -> None:
        self.counters: dict[str, list[int]] = {}
        self.statuses: dict[str, dict[str, int]] = {}

    def copy(self) -> AggState:
        other = AggState()
        other.counters = {k: list(v) for k, v in self.counters.items()}
        other.statuses = {k: dict(v) for k, v in self.statuses.items()}
        return other

    def add(self, by: str, items: Iterable[tuple[Workflow, Sequence[int] | None]],
            vocab: list[str], sum_fields: tuple[str, ...], sign: int) -> None:
        """Add (``sign`` 1) or take away (-1) the contributions of some workflows.

        :param sum_fields: the snapshot's :attr:`Snapshot.sum_fields`.
        """
        agg = BY_KEY[by]
        get = operator.attrgetter(agg.field)
        scalar = not field_specs()[agg.field].many
        counters, statuses = self.counters, self.statuses
        from_sums = agg.site_field is not None
        kind = sum_fields.index(agg.site_field) if agg.site_field is not None else -1
        zero = [0] * N_COUNTERS
        for wf, packed in items:
            value = get(wf)
            values: tuple[Any, ...] = (
                (value,) if scalar else (tuple(set(value)) if len(value) > 1 else value))
            status = wf.RequestStatus
            for v in values:
                by_status = statuses.get(v)
                if by_status is None:
                    by_status = statuses[v] = {}
                    counters[v] = list(zero)
                left = by_status.get(status, 0) + sign
                if left:
                    by_status[status] = left
                else:
                    del by_status[status]
                    if not by_status:
                        del statuses[v]
                        del counters[v]
            if from_sums:
                if packed is None:
                    continue
                for key_kind, key, sums in decode_sums(packed):
                    name = vocab[key]
                    if key_kind == kind and name in values and name in counters:
                        acc = counters[name]
                        for i, count in enumerate(sums):
                            if count:
                                acc[i] += sign * count
            else:
                own = _COUNTERS(wf)
                for v in values:
                    totals = counters.get(v)
                    if totals is not None:
                        for i, count in enumerate(own):
                            if count:
                                totals[i] += sign * count

    def summaries(self, by: str) -> list[Summary]:
        return [make_summary(by, v, self.counters[v], self.statuses[v])
                for v in sorted(self.statuses)]


def sum_fields() -> tuple[str, ...]:
    """The :class:`~wmstats.schema.WorkflowSite` fields whose values some aggregate
    sums counters over (``Site``, ``Agent``), from the aggregate table."""
    return tuple(dict.fromkeys(a.site_field for a in AGGREGATES if a.site_field is not None))


def encode_sums(bundle: WorkflowBundle, vocab_ids: dict[str, int], vocab: list[str],
                 fields: tuple[str, ...]) -> Sequence[int] | None:
    """Per value of each of ``fields``, a bundle's WorkflowSite counters summed,
    sparsely packed.

    Each entry: the kind (the index in ``fields``), the value's id in ``vocab``, a
    bit mask of the non-zero counters (its low and high 16 bits), then those
    counters; in an array of the smallest items they all fit: 2 bytes each for
    most workflows (~40 % less than 4-byte items with the kind and id in one).
    """
    if not bundle.sites or not fields:
        return None
    getters = [operator.attrgetter(name) for name in fields]
    sums: dict[tuple[int, str], list[int]] = {}
    for ws in bundle.sites:
        counts = _COUNTERS(ws)
        for key in enumerate(get(ws) for get in getters):
            acc = sums.get(key)
            sums[key] = list(counts) if acc is None else list(map(operator.add, acc, counts))
    packed: list[int] = []
    for (kind, name), totals in sums.items():
        ident = vocab_ids.get(name)
        if ident is None:
            if len(vocab) >= _MAX_IDS:
                raise OverflowError(f"more than {_MAX_IDS:,} distinct sites and agents")
            ident = vocab_ids[name] = len(vocab)
            vocab.append(name)
        mask = 0
        nonzero = []
        for i, count in enumerate(totals):
            if count:
                mask |= 1 << i
                nonzero.append(count)
        packed.extend((kind, ident, mask & _MASK_LOW, mask >> _MASK_BITS, *nonzero))
    for typecode in ("H", "i", "q"):
        try:
            return array(typecode, packed)
        except OverflowError:
            continue
    return tuple(packed)


def decode_sums(packed: Sequence[int]) -> Iterator[tuple[int, int, list[int]]]:
    i = 0
    end = len(packed)
    while i < end:
        kind, ident = packed[i], packed[i + 1]
        mask = packed[i + 2] | packed[i + 3] << _MASK_BITS
        i += 4
        counts = [0] * N_COUNTERS
        j = 0
        while mask:
            if mask & 1:
                counts[j] = packed[i]
                i += 1
            mask >>= 1
            j += 1
        yield kind, ident, counts
