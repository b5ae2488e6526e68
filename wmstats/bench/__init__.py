"""Benchmarks, run with ``wmstats bench NAME`` (each module has a ``main(argv)``).

* :mod:`wmstats.bench.representation` -- dynamic documents vs static records;
* :mod:`wmstats.bench.stores` -- the store backends at N mock workflows.
"""

__all__: list[str] = []
