"""Benchmarks, run with ``wmstats bench NAME`` (each module has a ``main(argv)``).

* :mod:`wmstats.bench.representation` -- dynamic documents vs static records:
  bytes, parse/serialize CPU, resident memory, converter speed;
* :mod:`wmstats.bench.stores` -- the store backends at N mock workflows;
* :mod:`wmstats.bench.server` -- the cache server over loopback;
* :mod:`wmstats.bench.ui` -- the UI page in headless Chromium (needs playwright);
* :mod:`wmstats.bench.couchdb_source` -- the cache server fed by CouchDB (needs
  the ``wmstats_couchdb`` plugin);
* :mod:`wmstats.bench.couchdb_store` -- the CouchDB store alone (needs the
  ``wmstats_couchdb`` plugin);
* :mod:`wmstats.bench.jobs` -- job records per million jobsummary documents, and
  the job view's and alerts' latency at N workflows;
* :mod:`wmstats.bench.hostile` -- costly filters and slow clients against the
  servers (the time budget, the connection guard);
* :mod:`wmstats.bench.wmcore` -- the WMCore-compatible API next to the real reqmon
  2.4.5.9 on the same CouchDB data (needs the ``wmstats_couchdb`` plugin and
  ``ci/install-reqmon.sh``);
* :mod:`wmstats.bench.search` -- searching every request ever made (all
  statuses, most archived) on the sqlite store: pages, name, PrepID, dataset and
  date range searches over HTTP;
* :mod:`wmstats.bench.report` -- all of them at several sizes, with a Markdown
  report, SVG plots and one JSON file.

Each writes, with ``--json FILE``, the envelope described in
:mod:`wmstats.bench._common`.  A CouchDB the benchmarks need is started with the
test kit's :class:`~wmstats.testing.couchdb_server.PouchServer`, which needs
nothing a plain install lacks.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from wmstats.bench._common import percentile

__all__ = ["BENCHMARKS", "percentile"]

#: ``wmstats bench NAME`` -> the module (with a ``main(argv)``) that runs it.
BENCHMARKS: Final[Mapping[str, str]] = MappingProxyType({
    "representation": "wmstats.bench.representation",
    "stores": "wmstats.bench.stores",
    "server": "wmstats.bench.server",
    "ui": "wmstats.bench.ui",
    "couchdb-source": "wmstats.bench.couchdb_source",
    "couchdb-store": "wmstats.bench.couchdb_store",
    "jobs": "wmstats.bench.jobs",
    "hostile": "wmstats.bench.hostile",
    "wmcore": "wmstats.bench.wmcore",
    "search": "wmstats.bench.search",
    "report": "wmstats.bench.report",
})
