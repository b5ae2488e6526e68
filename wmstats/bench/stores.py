"""Benchmark: the store backends at N mock workflows.

``wmstats bench stores [--workflows 100000] [--backends memory,sqlite] [--json out.json]``
(or ``python3 -m wmstats.bench.stores``) measures, for each backend in a fresh
subprocess (so memory figures do not mix):

* load time: ``store.replace()`` of N mock workflows and the mock agents, with
  the mock generator's own time subtracted (it is measured separately);
* a filtered page query (``limit=100``, a rotation of realistic filters and
  sorts, random ``idx`` within the first pages): p50 and p99 over the timed
  runs, after one untimed warm-up round (the first, cold run is reported too);
* a deep page (``idx`` = 90% of N, ``limit=100``, default and priority sort): p50;
* ``get()`` of one workflow: p50; the site aggregate (first call, then cached) and
  ``distinct("Sites")``; a full NDJSON+gzip stream (the records as JSON text,
  :meth:`~wmstats.store.Store.stream_encoded`, as the cache server writes them):
  records per second;
* live updates: ``--updates`` times, one workflow changed (alternately a job
  counter and its priority, as the CouchDB source applies a changed document) with
  ``apply()``, then read back with the query the CouchDB benchmark polls
  (``RequestName`` filter, two fields): apply and change-to-visible p50/p99 (on the
  wall clock, and on the thread's CPU clock, which a busy machine cannot inflate),
  and the filtered page right after each change (p50: whether indexes survive the change);
* resident memory: RSS (``VmRSS`` of ``/proc/self/status``) after loading and after
  the queries, minus the RSS before loading; and the peak (``VmHWM``); for CouchDB
  also the server's own RSS (the pouchdb-server process) before and after.

CouchDB (``--backends couchdb``) runs against a pouchdb-server started for the
run (:class:`~wmstats.testing.couchdb_server.PouchServer`, in memory), or the
server given with ``--url couchdb=couchdb://host:port/db``.  Its load is slow
(about 8 minutes for 100,000 workflows here), so keep its size modest.

Adding a backend is one line in :data:`BACKEND_URLS`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

from wmstats.bench._common import envelope, rss_kib, rss_mib, write_json
from wmstats.bench._common import percentile as _percentile
from wmstats.bench._common import timed as _timed

__all__ = ["BACKEND_URLS", "FILTERS", "main", "measure", "rss_kib"]

#: Backend name -> store URL (``{workdir}`` is a temporary folder for this run,
#: ``{couchdb}`` the pouchdb-server started for it).
BACKEND_URLS: Final[dict[str, str]] = {
    "memory": "memory://",
    "sqlite": "sqlite:///{workdir}/bench.db",
    "couchdb": "couchdb://{couchdb}/wmstats_bench",
}

#: Filtered page queries (flat parameters, as the HTTP layer receives them).
FILTERS: Final[tuple[dict[str, str], ...]] = (
    {"RequestStatus": "running-open,running-closed", "sort": "-RequestPriority"},
    {"RequestStatus": "assignment-approved,acquired,running-open"},
    {"Campaigns": "Run3Summer23*", "sort": "-RequestDate"},
    {"Sites": "T1_US_FNAL", "RequestStatus": "running-open"},
    {"RequestPriority": ">=100000", "RequestType": "StepChain", "sort": "RequestPriority"},
    {"RequestName": "*HIG*", "sort": "-StatusTime"},
    {"Teams": "production", "Agents": "vocms0253.cern.ch"},
)


def _updates(store: Any, queries: Sequence[Any], names: Sequence[str], count: int,
             seed: int) -> dict[str, Any]:
    """Apply ``count`` one-workflow changes, each read back at once (see the module
    docstring); the timings in ms."""
    import attrs

    from wmstats.query import parse_query

    rnd = random.Random(seed + 1)
    applies: list[float] = []
    visible: list[float] = []
    visible_cpu: list[float] = []
    pages: list[float] = []
    for n in range(count):
        name = rnd.choice(names)
        bundle = store.get(name)
        wf = bundle.workflow
        field, value = (("Success", wf.Success + 1000) if n % 2 else
                        ("RequestPriority", 900_000 + n))
        changed = attrs.evolve(bundle, workflow=attrs.evolve(wf, **{field: value}))
        probe = parse_query({"RequestName": name, "fields": f"RequestName,{field}",
                             "limit": "1"})
        start, start_cpu = time.perf_counter(), time.thread_time()
        store.apply([changed])
        applied = time.perf_counter()
        record = store.query(probe).records[0]
        seen, seen_cpu = time.perf_counter(), time.thread_time()
        if getattr(record, field) != value:
            raise RuntimeError(f"change of {name}.{field} not visible after apply")
        applies.append(applied - start)
        visible.append(seen - start)
        visible_cpu.append(seen_cpu - start_cpu)
        pages.append(_timed(lambda q=queries[n % len(queries)].page(0, 100): store.query(q)))  # type: ignore[misc]
    return {
        "updates": count,
        "apply_p50_ms": round(statistics.median(applies) * 1e3, 4),
        "apply_p99_ms": round(_percentile(applies, 0.99) * 1e3, 4),
        "change_visible_p50_ms": round(statistics.median(visible) * 1e3, 4),
        "change_visible_p99_ms": round(_percentile(visible, 0.99) * 1e3, 4),
        # The same on this thread's CPU clock: what a busy machine cannot inflate.
        "change_visible_cpu_p50_ms": round(statistics.median(visible_cpu) * 1e3, 4),
        "change_visible_cpu_p99_ms": round(_percentile(visible_cpu, 0.99) * 1e3, 4),
        "page_after_update_p50_ms": round(statistics.median(pages) * 1e3, 4),
        "page_after_update_p99_ms": round(_percentile(pages, 0.99) * 1e3, 4),
    }


def measure(url: str, workflows: int, seed: int = 0, rounds: int = 30,
            updates: int = 50) -> dict[str, Any]:
    """Load ``workflows`` mock workflows into the store at ``url`` and time it.

    Runs in the calling process; :func:`main` calls it in a fresh subprocess per
    backend.
    """
    import gc

    from wmstats.mock import MockGenerator
    from wmstats.query import Query, parse_query
    from wmstats.store import open_store
    from wmstats.stream import gzip_chunks, ndjson_chunks

    generator = MockGenerator(seed)
    agents = generator.agents()
    gc.collect()
    before = rss_kib()
    store = open_store(url)
    generating = [0.0]

    def timed_bundles() -> Iterator[Any]:
        source = iter(generator.bundles(workflows))
        while True:
            start = time.perf_counter()
            try:
                bundle = next(source)
            except StopIteration:
                generating[0] += time.perf_counter() - start
                return
            generating[0] += time.perf_counter() - start
            yield bundle

    start = time.perf_counter()
    store.replace(timed_bundles(), agents)
    total_load = time.perf_counter() - start
    gc.collect()
    after_load = rss_kib()

    rnd = random.Random(seed)
    queries = [parse_query(params) for params in FILTERS]
    cold = [_timed(lambda q=q: store.query(q)) for q in queries]  # type: ignore[misc]
    totals = [store.query(q.page(0, 0)).total for q in queries]
    filtered: list[float] = []
    for _ in range(rounds):
        for query, total in zip(queries, totals):
            idx = rnd.randrange(max(1, min(total, 1000)))
            filtered.append(_timed(lambda q=query.page(idx, 100): store.query(q)))  # type: ignore[misc]
    deep_idx = int(workflows * 0.9)
    deep_queries = [Query(idx=deep_idx, limit=100),
                    Query(sort=(("RequestPriority", "desc"),), idx=deep_idx, limit=100)]
    for query in deep_queries:
        store.query(query)  # warm up (sort orders)
    deep = [_timed(lambda q=q: store.query(q))  # type: ignore[misc]
            for _ in range(max(3, rounds // 3)) for q in deep_queries]
    names = [r.RequestName for r in store.query(Query(idx=0, limit=1000)).records]
    gets = [_timed(lambda n=rnd.choice(names): store.get(n))  # type: ignore[misc]
            for _ in range(rounds * 3)] if names else []
    aggregate_first = _timed(lambda: store.aggregate("site"))
    aggregate_again = _timed(lambda: store.aggregate("site"))
    distinct_first = _timed(lambda: store.distinct("Sites"))
    start = time.perf_counter()
    streamed = sum(len(c) for c in gzip_chunks(ndjson_chunks(store.stream_encoded(Query()))))
    stream_seconds = time.perf_counter() - start
    live = _updates(store, queries, names, updates, seed) if names and updates else {}
    gc.collect()
    after_queries = rss_kib()
    store.close()
    load = total_load - generating[0]
    return {
        "url": url,
        "workflows": workflows,
        "load_s": round(load, 4),
        "load_per_s": round(workflows / load) if load > 0 else None,
        "mock_generation_s": round(generating[0], 2),
        "filtered_page_cold_ms": [round(t * 1e3, 4) for t in cold],
        "filtered_page_totals": totals,
        "filtered_page_p50_ms": round(statistics.median(filtered) * 1e3, 4),
        "filtered_page_p99_ms": round(_percentile(filtered, 0.99) * 1e3, 4),
        "deep_page_idx": deep_idx,
        "deep_page_p50_ms": round(statistics.median(deep) * 1e3, 4),
        "deep_page_p99_ms": round(_percentile(deep, 0.99) * 1e3, 4),
        "get_p50_ms": round(statistics.median(gets) * 1e3, 4) if gets else None,
        "get_p99_ms": round(_percentile(gets, 0.99) * 1e3, 4) if gets else None,
        "aggregate_site_first_ms": round(aggregate_first * 1e3, 3),
        "aggregate_site_again_ms": round(aggregate_again * 1e3, 4),
        "distinct_sites_first_ms": round(distinct_first * 1e3, 3),
        "stream_s": round(stream_seconds, 3),
        "stream_records_per_s": round(workflows / stream_seconds) if stream_seconds else None,
        "stream_gzip_bytes": streamed,
        "rss_before_mib": round(before.get("VmRSS", 0) / 1024, 1),
        "rss_after_load_delta_mib": round(
            (after_load.get("VmRSS", 0) - before.get("VmRSS", 0)) / 1024, 1),
        "rss_after_queries_delta_mib": round(
            (after_queries.get("VmRSS", 0) - before.get("VmRSS", 0)) / 1024, 1),
        "rss_peak_mib": round(after_queries.get("VmHWM", 0) / 1024, 1),
        "rss_after_load_per_10k_mib": round(
            (after_load.get("VmRSS", 0) - before.get("VmRSS", 0)) / 1024 * 10_000
            / max(workflows, 1), 1),
        "bytes_per_workflow": round(
            (after_load.get("VmRSS", 0) - before.get("VmRSS", 0)) * 1024 / max(workflows, 1)),
        **live,
    }


_COLUMNS: Final = (
    ("backend", "backend", "{}"),
    ("load_s", "load s", "{:.1f}"),
    ("load_per_s", "wf/s", "{:,}"),
    ("filtered_page_p50_ms", "page p50 ms", "{:.2f}"),
    ("filtered_page_p99_ms", "page p99 ms", "{:.2f}"),
    ("deep_page_p50_ms", "deep p50 ms", "{:.2f}"),
    ("get_p50_ms", "get p50 ms", "{:.2f}"),
    ("aggregate_site_first_ms", "sites 1st ms", "{:,.0f}"),
    ("stream_records_per_s", "stream rec/s", "{:,}"),
    ("change_visible_p50_ms", "change p50 ms", "{:.2f}"),
    ("change_visible_p99_ms", "change p99 ms", "{:.2f}"),
    ("change_visible_cpu_p99_ms", "change CPU p99 ms", "{:.2f}"),
    ("rss_after_load_delta_mib", "RSS load MiB", "{:.0f}"),
    ("rss_after_queries_delta_mib", "RSS queries MiB", "{:.0f}"),
    ("bytes_per_workflow", "B/wf", "{:,}"),
)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a plain text table."""
    rows = [[title for _key, title, _fmt in _COLUMNS]]
    for backend, result in results.items():
        row = []
        for key, _title, fmt in _COLUMNS:
            value = backend if key == "backend" else result.get(key)
            row.append("-" if value is None else fmt.format(value))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmstats bench stores", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", "-n", type=int, default=100_000,
                        help="mock workflows per backend (default 100000)")
    parser.add_argument("--backends", default="memory,sqlite",
                        help=f"comma-separated, from {', '.join(BACKEND_URLS)} "
                             f"(default memory,sqlite; couchdb starts a pouchdb-server)")
    parser.add_argument("--url", action="append", default=[], metavar="NAME=URL",
                        help="store URL for a backend (overrides the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=30,
                        help="timed rounds over the filter set (default 30)")
    parser.add_argument("--couchdb-rounds", type=int,
                        help="rounds for CouchDB, whose filtered pages take ~1 s at 10,000 "
                             "workflows (default: --rounds)")
    parser.add_argument("--updates", type=int, default=50,
                        help="one-workflow changes applied and read back (default 50; 0: "
                             "none)")
    parser.add_argument("--workdir", help="folder for store files (default: a temporary one)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def _couchdb_server(needed: bool) -> Iterator[tuple[str, int | None]]:
    """``(host:port, pid)`` of a pouchdb-server started for this run (if ``needed``)."""
    if not needed:
        yield "", None
        return
    from wmstats.testing.couchdb_server import PouchServer

    with PouchServer() as server:
        yield f"{server.host}:{server.port}", server.pid


def _run_child(url: str, args: argparse.Namespace, rounds: int) -> dict[str, Any] | None:
    done = subprocess.run(
        [sys.executable, "-m", "wmstats.bench.stores", "--child", url,
         "--workflows", str(args.workflows), "--seed", str(args.seed),
         "--rounds", str(rounds), "--updates", str(args.updates)],
        stdout=subprocess.PIPE, check=False, env={**os.environ})
    if done.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def flat_results(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{backend: {figure: value}}`` -> ``{"backend.figure": number}`` (numbers only)."""
    return {f"{backend}.{key}": value for backend, figures in results.items()
            for key, value in figures.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; prints a table (and writes JSON with ``--json``)."""
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.workflows, args.seed, args.rounds,
                                 args.updates)))
        return 0
    urls = dict(BACKEND_URLS)
    for item in args.url:
        name, sep, url = item.partition("=")
        if not sep:
            print(f"wmstats bench stores: --url needs NAME=URL, got {item!r}", file=sys.stderr)
            return 2
        urls[name] = url
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in urls]
    if unknown:
        print(f"wmstats bench stores: unknown backend(s) {', '.join(unknown)}; give their "
              f"URL with --url NAME=URL", file=sys.stderr)
        return 2
    results: dict[str, dict[str, Any]] = {}
    need_couchdb = any("{couchdb}" in urls[b] for b in backends)
    with tempfile.TemporaryDirectory(prefix="wmstats-bench-") as tmp, \
            _couchdb_server(need_couchdb) as (couchdb, couchdb_pid):
        workdir = args.workdir or tmp
        for backend in backends:
            url = urls[backend].format(workdir=workdir, couchdb=couchdb)
            print(f"[{backend}] {args.workflows} workflows -> {url} ...", file=sys.stderr)
            server_before = rss_mib(couchdb_pid) if "{couchdb}" in urls[backend] and \
                couchdb_pid else None
            slow = url.startswith("couchdb") and args.couchdb_rounds
            result = _run_child(url, args, args.couchdb_rounds if slow else args.rounds)
            if result is None:
                print(f"[{backend}] failed", file=sys.stderr)
                return 1
            if server_before is not None and couchdb_pid:
                after = rss_kib(couchdb_pid)
                result["server_rss_before_mib"] = round(server_before, 1)
                result["server_rss_after_mib"] = round(after.get("VmRSS", 0) / 1024, 1)
                result["server_rss_peak_mib"] = round(after.get("VmHWM", 0) / 1024, 1)
                result["server_rss_delta_mib"] = round(
                    result["server_rss_after_mib"] - server_before, 1)
                result["server_rss_delta_per_10k_mib"] = round(
                    result["server_rss_delta_mib"] * 10_000 / max(1, args.workflows), 1)
            if url.startswith("sqlite:///"):
                path = url[len("sqlite:///"):]
                if os.path.exists(path):
                    result["db_file_mib"] = round(os.path.getsize(path) / 2**20, 1)
            results[backend] = result
    print(f"{args.workflows} mock workflows (seed {args.seed}), {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    print(format_table(results))
    if args.json:
        write_json(args.json, envelope("stores", args.workflows, flat_results(results),
                                       {"backends": results, "filters": FILTERS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
