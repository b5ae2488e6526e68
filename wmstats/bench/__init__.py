"""Benchmarks, run with ``wmstats bench NAME`` (each module has a ``main(argv)``).

* :mod:`wmstats.bench.representation` -- dynamic documents vs static records:
  bytes, parse/serialize CPU, resident memory, converter speed;
* :mod:`wmstats.bench.stores` -- the store backends at N mock workflows;
* :mod:`wmstats.bench.server` -- the cache server over loopback;
* :mod:`wmstats.bench.ui` -- the UI page in headless Chromium;
* :mod:`wmstats.bench.report` -- all of them at several sizes, with a Markdown
  report, SVG plots and one JSON file.

Each writes, with ``--json FILE``, the envelope described in
:mod:`wmstats.bench._common`.
"""

from wmstats.bench._common import percentile

__all__ = ["percentile"]
