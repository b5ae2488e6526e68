"""Benchmark: job records at scale, and the operators' drill-down latency.

``wmstats bench jobs --documents 1000000 --workflows 100000`` measures:

* **memory per 1,000,000 jobsummary documents**: the job table
  (:class:`wmstats.jobs.JobTable`, what the CouchDB source keeps: counts, at most 3
  samples per group, a 12-byte index entry per document) built from that many
  documents, in this process: resident memory before and after (``VmRSS``, after
  a garbage collection), the index's exact bytes, groups and samples kept, the
  conversion rate, and the bytes of the records a memory store keeps for them.
  The documents are the mock's (realistic exit codes, errors, sites, agents),
  cloned into more workflows and more jobs per group (new ids) until there are
  enough; each is made, converted and dropped, never all held;
* **the job view's latency** at N mock workflows: ``wmstats serve --mock N`` in a
  subprocess (cache and UI servers, the mock's job records loaded), then
  ``--requests`` requests of ``/jobs/<workflow>`` on the cache server and
  ``/api/jobs/<workflow>`` on the UI server (the job view's data) for random
  workflows with jobs, and ``/alerts`` (which must not rescan the workflows):
  p50 and p99, and the server's resident memory.

``--skip-memory`` / ``--skip-server`` run one part only.  Numbers go to stdout and,
with ``--json FILE``, into the common benchmark envelope.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from wmstats.bench._common import (
    CACHE_URL,
    UI_URL,
    envelope,
    percentile,
    rss_mib,
    start_server,
    stop_server,
    write_json,
)

__all__ = ["main", "measure_memory", "measure_server", "cloned_documents",
           "template_documents"]

#: The mock's reference time for the server run (so that the names are known here).
_NOW = 1_760_000_000


def template_documents(seed: int = 0, templates: int = 2000) -> list[dict[str, Any]]:
    """The mock's jobsummary documents of its first ``templates`` workflows."""
    from wmstats.mock import MockGenerator

    gen = MockGenerator(seed=seed)
    base = [doc for i in range(templates) for doc in gen.job_documents(i)]
    if not base:
        raise RuntimeError("the mock made no jobsummary documents")
    return base


def cloned_documents(total: int, base: Sequence[dict[str, Any]], seed: int = 0,
                     per_group: int = 10) -> Iterator[dict[str, Any]]:
    """``total`` jobsummary documents: the ``base`` documents, each cloned
    ``per_group`` times (new ids: more jobs in the same groups), the whole set again
    under new workflow names until there are ``total``.  The ids grow, as a full
    load reads them (``_all_docs`` is in id order)."""
    rnd = random.Random(seed)
    made = 0
    copy = 0
    while made < total:
        for doc in base:
            workflow = doc["workflow"] if copy == 0 else f"{doc['workflow']}_c{copy}"
            task = doc["task"].replace(doc["workflow"], workflow, 1)
            for _ in range(per_group):
                if made >= total:
                    return
                job = f"{made:08x}-{uuid.UUID(int=rnd.getrandbits(128), version=4)}"
                yield {**doc, "_id": job, "_rev": f"{1 + made % 9}-{made:032x}",
                       "workflow": workflow, "task": task,
                       "wmbsid": 1_000_000 + made, "timestamp": doc["timestamp"] - made % 7200}
                made += 1
        copy += 1


def measure_memory(documents: int, seed: int = 0) -> dict[str, Any]:
    """The job table's memory for ``documents`` documents (see the module doc)."""
    from wmstats.backends.memory._jobs import JobShelf
    from wmstats.jobs import JobTable

    base = template_documents(seed)
    gc.collect()
    before = rss_mib() or 0.0
    table = JobTable()
    problems: list[Any] = []
    began = time.perf_counter()
    for doc in cloned_documents(documents, base, seed):
        table.update(doc["_id"], doc, problems)
    table.compact()
    seconds = time.perf_counter() - began
    gc.collect()
    after = rss_mib() or 0.0
    workflows = table.workflows()
    groups = samples = 0
    shelf = JobShelf()
    jobs_of = (table.jobs(name) for name in workflows)
    shelf.replace(jobs_of)
    for name in workflows:
        records = table.jobs(name)
        groups += len(records.groups)
        samples += len(records.samples)
    table_mib = after - before
    return {
        "documents": len(table),
        "problems": len(problems),
        "workflows": len(workflows),
        "groups": groups,
        "samples": samples,
        "seconds": round(seconds, 1),
        "documents_per_second": round(len(table) / seconds) if seconds else None,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "table_mib": round(table_mib, 1),
        "table_mib_per_million": round(table_mib * 1_000_000 / max(1, len(table)), 1),
        "index_mib": round(table.index_bytes() / 2**20, 1),
        "index_bytes_per_document": round(table.index_bytes() / max(1, len(table)), 1),
        "store_records_mib": round(shelf.nbytes() / 2**20, 1),
    }


def _times(session: requests.Session, urls: Sequence[str]) -> list[float]:
    out = []
    for url in urls:
        began = time.perf_counter()
        with session.get(url, headers={"Accept": "application/json",
                                        "Accept-Encoding": "gzip"}, timeout=60) as resp:
            resp.raise_for_status()
            _ = resp.content
        out.append((time.perf_counter() - began) * 1000.0)
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
            "max_ms": round(max(values), 2)}


def measure_server(workflows: int, requests_: int, seed: int = 0,
                   timeout: float = 3600.0) -> dict[str, Any]:
    """The job view's latency at ``workflows`` mock workflows (see the module doc)."""
    from wmstats.mock import MockGenerator

    gen = MockGenerator(seed=seed, now=_NOW)
    rnd = random.Random(seed)
    names: list[str] = []
    tries = 0
    while len(names) < min(200, requests_) and tries < 20 * requests_:
        i = rnd.randrange(workflows)
        tries += 1
        if gen.job_documents(i):
            names.append(gen.workflow_name(i))
    if not names:
        raise RuntimeError("no mock workflow with jobs found")
    with tempfile.TemporaryFile("w+") as log:
        began = time.monotonic()
        proc, (cache, ui) = start_server(
            ["serve", "--port", "0", "--ui-port", "0", "--quiet", "--mock", str(workflows),
             "--seed", str(seed), "--mock-now", str(_NOW)], log, timeout, (CACHE_URL, UI_URL))
        ready = time.monotonic() - began
        try:
            session = requests.Session()
            pick = [rnd.choice(names) for _ in range(requests_)]
            quoted = [urllib.parse.quote(n, safe="") for n in pick]
            _times(session, [f"{cache}/jobs/{quoted[0]}", f"{ui}/api/jobs/{quoted[0]}"])
            jobs = _times(session, [f"{cache}/jobs/{q}" for q in quoted])
            view = _times(session, [f"{ui}/api/jobs/{q}" for q in quoted])
            alerts_first = _times(session, [f"{cache}/alerts?limit=0"])
            alerts = _times(session, [f"{cache}/alerts?limit=0"] * min(50, requests_))
            listed = _times(session, [f"{cache}/alerts?limit=100"] * min(20, requests_))
            rss = rss_mib(proc.pid)
        finally:
            stop_server(proc)
    return {"workflows": workflows, "requests": requests_, "ready_seconds": round(ready, 1),
            "server_rss_mib": rss,
            "cache_jobs": _spread(jobs), "ui_job_view": _spread(view),
            "alerts_first_ms": round(alerts_first[0], 1), "alerts_counts": _spread(alerts),
            "alerts_page": _spread(listed)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wmstats bench jobs", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000,
                        help="jobsummary documents for the memory figure (default 1,000,000)")
    parser.add_argument("--workflows", type=int, default=100_000,
                        help="mock workflows the server holds (default 100,000)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per latency figure (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if not args.skip_memory:
        memory = measure_memory(args.documents, args.seed)
        details["memory"] = memory
        print(f"job table, {memory['documents']:,} documents ({memory['workflows']:,} "
              f"workflows, {memory['groups']:,} groups, {memory['samples']:,} samples): "
              f"{memory['table_mib']} MiB resident ({memory['table_mib_per_million']} MiB per "
              f"million documents), index {memory['index_mib']} MiB "
              f"({memory['index_bytes_per_document']} bytes/document); converted at "
              f"{memory['documents_per_second']:,}/s; stored records "
              f"{memory['store_records_mib']} MiB", flush=True)
        results["jobs_table_mib_per_million_documents"] = memory["table_mib_per_million"]
        results["jobs_index_bytes_per_document"] = memory["index_bytes_per_document"]
        results["jobs_documents_per_second"] = memory["documents_per_second"]
    if not args.skip_server:
        server = measure_server(args.workflows, args.requests, args.seed)
        details["server"] = server
        print(f"{server['workflows']:,} workflows (server ready in {server['ready_seconds']} s, "
              f"RSS {server['server_rss_mib']} MiB): /jobs/<workflow> p50 "
              f"{server['cache_jobs']['p50_ms']} ms p99 {server['cache_jobs']['p99_ms']} ms; "
              f"job view (/api/jobs) p50 {server['ui_job_view']['p50_ms']} ms p99 "
              f"{server['ui_job_view']['p99_ms']} ms; /alerts?limit=0 first "
              f"{server['alerts_first_ms']} ms then p50 {server['alerts_counts']['p50_ms']} ms; "
              f"/alerts?limit=100 p50 {server['alerts_page']['p50_ms']} ms", flush=True)
        results["job_view_p50_ms"] = server["ui_job_view"]["p50_ms"]
        results["job_view_p99_ms"] = server["ui_job_view"]["p99_ms"]
        results["cache_jobs_p50_ms"] = server["cache_jobs"]["p50_ms"]
        results["alerts_p50_ms"] = server["alerts_counts"]["p50_ms"]
    if args.json:
        write_json(args.json, envelope("jobs", args.workflows, results, details))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
