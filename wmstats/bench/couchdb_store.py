"""Benchmark the CouchDB store: load time and page-query latency.

``wmstats bench couchdb-store --workflows 10000`` (or ``python -m
wmstats.bench.couchdb_store``) starts a pouchdb-server
(or uses ``--url`` / ``$WMSTATS_COUCHDB_URL``), loads mock workflows with
:meth:`CouchStore.replace` (view build included) and times page queries
(``limit=100``): the default listing, a deep page (``idx`` at 90 % of the
matches), an equality filter served by the view, a filter served by ``_find``,
plus aggregates and single-workflow reads.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from wmstats_couchdb import CouchStore

from wmstats.mock import MockGenerator
from wmstats.query import Query, parse_query
from wmstats.redact import redact_url

__all__ = ["main", "measure"]


def _percentiles(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(p99, 2),
            "n": len(times)}


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    from wmstats.testing.couchdb_server import PouchServer
    with PouchServer() as server:
        yield server.url


def measure(server_url: str, workflows: int, repeat: int = 30, seed: int = 0
            ) -> dict[str, Any]:
    """Load ``workflows`` mock workflows into a fresh database and time queries."""
    gen = MockGenerator(seed=seed)
    database = "wmstats_bench_" + uuid.uuid4().hex[:8]
    store = CouchStore(database, server_url=server_url)
    result: dict[str, Any] = {"workflows": workflows, "server": redact_url(server_url, user=False)}
    try:
        bundles = list(gen.bundles(workflows))
        start = time.perf_counter()
        store.replace(bundles, gen.agents())
        result["load_s"] = round(time.perf_counter() - start, 1)
        names = [b.workflow.RequestName for b in bundles[:: max(1, workflows // repeat)]]
        del bundles
        n = store.count()
        status = parse_query({"RequestStatus": "running-open", "limit": "100"})
        by_find = parse_query({"RequestType": "TaskChain", "limit": "100"})
        matched = store.count(status)
        cases: Sequence[tuple[str, Callable[[], object]]] = (
            ("page_default", lambda: store.query(Query(limit=100))),
            ("page_deep_default", lambda: store.query(Query(idx=n * 9 // 10, limit=100))),
            ("page_filter_view", lambda: store.query(status)),
            ("page_filter_view_deep",
             lambda: store.query(status.page(matched * 9 // 10, 100))),
            ("page_filter_find", lambda: store.query(by_find)),
            ("page_sorted_priority",
             lambda: store.query(Query(sort=(("RequestPriority", "desc"),), limit=100))),
            ("summary_site", lambda: store.summary("site", "T1_US_FNAL")),
            ("aggregate_campaign", lambda: store.aggregate("campaign")),
            ("get_one", lambda: store.get(names[0])),
        )
        for label, fn in cases:
            before = store.client.bytes_received
            fn()  # warm-up; also measures the bytes of one call
            received = store.client.bytes_received - before
            figures = _percentiles(fn, repeat)
            figures["kB_per_call"] = round(received / 1000, 1)
            result[label] = figures
        result["status_matches"] = matched
    finally:
        with contextlib.suppress(Exception):
            for name in [database, *_snapshots(store)]:
                store.client.request("DELETE", "/" + urllib.parse.quote(name, safe=""),
                                     ok_missing=True)
        store.close()
    return result


def _snapshots(store: CouchStore) -> list[str]:
    names = store.client.request("GET", "/_all_dbs")
    return [n for n in names if n.startswith(store.database + "__")]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; prints JSON."""
    parser = argparse.ArgumentParser(prog="wmstats bench couchdb-store",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--url", default=os.environ.get("WMSTATS_COUCHDB_URL"),
                        help="an existing CouchDB (default: start pouchdb-server)")
    args = parser.parse_args(argv)
    with _server(args.url) as url:
        for count in args.workflows:
            print(json.dumps(measure(url, count, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
