"""Benchmarks, run with ``wmstats bench NAME`` (each module has a ``main(argv)``).

* :mod:`wmstats.bench.representation` -- dynamic documents vs static records;
* :mod:`wmstats.bench.stores` -- the store backends at N mock workflows.
"""

from collections.abc import Sequence

__all__ = ["percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[pos]
