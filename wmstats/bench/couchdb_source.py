"""Benchmark: the cache server fed by CouchDB (``wmstats bench couchdb-source``).

::

    wmstats bench couchdb-source --workflows 10000 [--url http://host:5984] [--json FILE]
    wmstats bench couchdb-source --workflows 10000 --store sqlite [--restarts 3]

Against the CouchDB at ``--url`` (fresh databases with a random suffix, deleted
afterwards) or a pouchdb-server it starts itself (on-disk LevelDB unless
``--in-memory``), it

1. seeds ``N`` mock workflows (:func:`wmstats_couchdb.seed.seed_couchdb`);
2. reads both databases the way the full load does (``_all_docs?include_docs=true``
   pages of ``--batch-size`` by ``startkey``): as raw bytes only, decoding the
   JSON too, and decoding and converting every document in one thread (what the
   full load does, without overlapping reads with conversion and without
   building the store);
3. starts ``python -m wmstats.serve cache-server --source couchdb://...`` and times
   it from process start until ``/healthz`` says ready (and the source's own
   ``last_load_seconds``), then reads the server's RSS (``/proc/PID/status``);
4. makes ``--updates`` changes (alternately a request's ``RequestPriority`` and a
   job counter of an ``agent_request``) and polls the API until each is visible:
   change-to-visible latency p50/p99, counted from CouchDB's answer to the write;
5. changes the ``agent_request`` documents of ``--bulk`` workflows in one
   ``_bulk_docs`` and times until the last is visible (catch-up throughput);
6. with ``--store sqlite`` (the server's store in a temporary file; step 3 is then
   the cold start, a full load into sqlite): ``--restarts`` times (default 3), stops
   the server, changes ``--down-changes`` documents in CouchDB while it is down
   (half of them requests' ``RequestPriority``, half ``agent_request`` job
   counters), starts it again on the same file and times process start until
   ``/healthz`` says ready (the warm restart: the source resumes ``_changes`` from
   the sequences kept with the snapshot).  It fails when a restart did a full load
   instead of resuming (the source's ``loads`` / ``resumes`` counters in
   ``/healthz``) or when a change made while the server was down is not visible
   once it is ready.  The seed then writes the ``jobsummary`` documents too
   (``--jobs``, the default with restarts), so that the restart has job records
   to take back from the store (it reads none of the documents again).

Prints a table; ``--json FILE`` writes the envelope of :mod:`wmstats.bench._common`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from typing import IO, Any, Final

import requests
import ujson
from wmstats_couchdb import CouchClient, SourceState, quote, redact, split_server_url
from wmstats_couchdb.seed import seed_couchdb

from wmstats.bench._common import (
    envelope,
    rss_kib,
    spread,
    start_server,
    stop_server,
    write_json,
)
from wmstats.convert import Problem
from wmstats.mock import MockGenerator
from wmstats.source import ACTIVE_STATUSES

__all__ = ["STORES", "main", "measure"]

#: The cache server's stores the benchmark runs on (sqlite: in a temporary file).
STORES: Final = ("memory", "sqlite")


@contextlib.contextmanager
def _couchdb(url: str | None, in_memory: bool) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    from wmstats.testing.couchdb_server import PouchServer

    with PouchServer(in_memory=in_memory, startup_timeout=60) as server:
        yield server.url


def _read(client: CouchClient, db: str, batch: int, decode: bool,
          state: SourceState | None = None) -> tuple[int, int]:
    """Page through ``_all_docs?include_docs=true``; (rows, bytes).

    :param decode: decode the JSON too.
    :param state: also convert every document into it (implies ``decode``).
    """
    session = requests.Session()
    session.auth = client.auth
    headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
    rows = size = 0
    params: dict[str, str] = {"include_docs": "true", "limit": str(batch)}
    try:
        while True:
            with session.get(f"{client.base_url}/{quote(db)}/_all_docs", params=params,
                             headers=headers, timeout=600) as response:
                response.raise_for_status()
                content = response.content
            size += len(content)
            if decode or state is not None:
                page = ujson.loads(content)["rows"]
                count, last = len(page), page[-1]["id"] if page else None
                if state is not None:
                    problems: list[Problem] = []
                    touched: set[str] = set()
                    for row in page:
                        state.update(db, row["id"], row.get("doc"), problems, touched, touched)
            else:
                # Only the last row's id is needed for the next page.
                count = content.count(b'"key":')
                tail = content.rfind(b'{"id":')
                last = ujson.loads(content[tail:].split(b",", 1)[0] + b"}")["id"] \
                    if count else None
            rows += count
            if count < batch:
                return rows, size
            params = {"include_docs": "true", "limit": str(batch),
                      "startkey": ujson.dumps(last), "skip": "1"}
    finally:
        session.close()


def _start_server(source_url: str, store_url: str, log: IO[str], timeout: float
                  ) -> tuple[subprocess.Popen[str], str]:
    proc, (url,) = start_server(["cache-server", "--port", "0", "--quiet", "--store",
                                 store_url, "--source", source_url], log, timeout)
    return proc, url


def _until_ready(http: requests.Session, proc: subprocess.Popen[str], url: str,
                 timeout: float) -> dict[str, Any]:
    """Poll ``/healthz`` until it answers 200; its answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with http.get(url + "/healthz", timeout=30) as response:
            health: dict[str, Any] = response.json()
        if response.status_code == 200:
            return health
        if proc.poll() is not None:
            raise RuntimeError("the cache server died while loading")
        time.sleep(0.02)
    raise RuntimeError(f"the cache server was not ready within {timeout} s")


def _visible(http: requests.Session, base: str, name: str, field: str, value: int,
             timeout: float) -> float:
    """Poll until workflow ``name`` shows ``field == value``; the time it was first seen."""
    url = f"{base}/fetch"
    params = {"RequestName": name, "fields": f"RequestName,{field}", "limit": "1"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with http.get(url, params=params, headers={"Accept": "application/json"},
                      timeout=30) as response:
            rows = response.json().get("workflows", []) if response.status_code == 200 else []
        if rows and rows[0].get(field) == value:
            return time.perf_counter()
        time.sleep(0.002)
    raise RuntimeError(f"change of {name}.{field} not visible within {timeout} s")


def measure(server_url: str, workflows: int, *, updates: int = 100, batch_size: int = 500,
            bulk: int = 1000, seed: int = 0, log: IO[str] | None = None,
            store: str = "memory", restarts: int | None = None, jobs: bool | None = None,
            down_changes: int = 20) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the benchmark on a CouchDB server; returns (results, details).

    :param store: the cache server's store, ``memory`` or ``sqlite`` (a temporary file).
    :param restarts: warm restarts timed (sqlite only; default 3 with sqlite, else 0).
    :param jobs: seed the ``jobsummary`` documents too (default: when restarting).
    :param down_changes: documents changed while the server is down, per restart.
    :raises RuntimeError: when a restart loaded everything instead of resuming, or a
        change made while the server was down is not visible once it is ready.
    """
    log = log if log is not None else sys.stderr
    if store not in STORES:
        raise ValueError(f"store must be one of {', '.join(STORES)}, got {store!r}")
    if restarts is None:
        restarts = 3 if store == "sqlite" else 0
    if restarts and store != "sqlite":
        raise ValueError("restarts need a store that keeps checkpoints (sqlite)")
    jobs = bool(restarts) if jobs is None else jobs
    base, auth = split_server_url(server_url)
    client = CouchClient(base, auth=auth, timeout=600)
    suffix = uuid.uuid4().hex[:8]
    req_db, wms_db = f"bench_reqmgr_{suffix}", f"bench_wmstats_{suffix}"
    results: dict[str, Any] = {}
    details: dict[str, Any] = {"server": redact(server_url), "requests_db": req_db,
                               "wmstats_db": wms_db, "batch_size": batch_size, "store": store,
                               "jobs": jobs}
    tmp = tempfile.TemporaryDirectory(prefix="wmstats-bench-") if store == "sqlite" else None
    store_url = f"sqlite:///{tmp.name}/bench.db" if tmp is not None else "memory://"
    try:
        log.write(f"seeding {workflows:,} workflows...\n")
        log.flush()
        seeded = seed_couchdb(client, workflows, seed=seed, requests_db=req_db,
                              wmstats_db=wms_db, batch_size=batch_size, jobs=jobs)
        if seeded.failed:
            raise RuntimeError(f"CouchDB refused {seeded.failed} seeded documents: "
                               f"{'; '.join(seeded.first_errors)}")
        results["seed_seconds"] = seeded.seconds
        results["documents"] = (seeded.requests + seeded.agent_requests + seeded.agent_infos
                                + seeded.jobsummaries)
        results["jobsummaries"] = seeded.jobsummaries
        for label in ("read_raw", "read_decode", "read_decode_convert"):
            start = time.perf_counter()
            total = 0
            state = SourceState(ACTIVE_STATUSES) if label == "read_decode_convert" else None
            for db in (req_db, wms_db):
                total += _read(client, db, batch_size, label != "read_raw", state)[1]
            results[f"{label}_seconds"] = time.perf_counter() - start
            del state
        results["read_bytes"] = total

        netloc = base.split("://", 1)[1]
        creds = "" if auth is None else (f"{urllib.parse.quote(auth[0], safe='')}:"
                                         f"{urllib.parse.quote(auth[1], safe='')}@")
        scheme = "couchdbs" if base.startswith("https") else "couchdb"
        source_url = (f"{scheme}://{creds}{netloc}?requests_db={req_db}&wmstats_db={wms_db}"
                      f"&batch_size={batch_size}")
        log.write("starting the cache server on the source...\n")
        log.flush()
        started = time.perf_counter()
        proc, url = _start_server(source_url, store_url, log, timeout=120)
        try:
            with requests.Session() as http:
                health = _until_ready(http, proc, url, timeout=3600)
                results["load_until_ready_seconds"] = time.perf_counter() - started
                if health["source"].get("loads") != 1 or health["source"].get("resumes"):
                    raise RuntimeError(f"the first start did not load everything: "
                                       f"{health['source']}")
                results["source_load_seconds"] = health["source"]["last_load_seconds"]
                results["workflows_served"] = health["workflows"]
                rss = rss_kib(proc.pid)
                results["server_rss_mib"] = rss.get("VmRSS", 0) / 1024 or None
                results["server_peak_rss_mib"] = rss.get("VmHWM", 0) / 1024 or None
                latencies = _updates(client, http, url, req_db, wms_db, workflows, updates,
                                     seed)
                for key, value in spread(latencies, 1000.0).items():
                    results[f"change_visible_{key}_ms"] = value
                results["updates"] = len(latencies)
                if bulk:
                    count, seconds = _bulk_update(client, http, url, wms_db,
                                                  min(bulk, workflows), seed)
                    results["bulk_update_documents"] = count
                    results["bulk_update_seconds"] = seconds
                    results["bulk_update_documents_per_second"] = count / seconds
                rss = rss_kib(proc.pid)
                results["server_rss_after_updates_mib"] = rss.get("VmRSS", 0) / 1024 or None
                if restarts:
                    results["cold_start_seconds"] = results["load_until_ready_seconds"]
                    proc = _restarts(client, http, proc, url, source_url, store_url,
                                     (req_db, wms_db), workflows, restarts, down_changes,
                                     seed, log, results, details)
        finally:
            stop_server(proc)
        details["server_exit_status"] = proc.returncode
        if tmp is not None:
            results["sqlite_file_mib"] = os.path.getsize(
                os.path.join(tmp.name, "bench.db")) / 2**20
    finally:
        for db in (req_db, wms_db):
            with contextlib.suppress(Exception):
                client.request("DELETE", "/" + quote(db), ok_missing=True)
        client.close()
        if tmp is not None:
            tmp.cleanup()
    results["load_vs_read_decode"] = (results.get("source_load_seconds") or 0) / max(
        results.get("read_decode_seconds") or 1e-9, 1e-9)
    return results, details


def _updates(client: CouchClient, http: requests.Session, url: str, req_db: str, wms_db: str,
             workflows: int, count: int, seed: int) -> list[float]:
    """``count`` changes, each polled until visible; the latencies in seconds."""
    gen = MockGenerator(seed=seed)
    step = max(1, workflows // max(1, count))
    latencies: list[float] = []
    for n in range(count):
        i = (n * step) % workflows
        docs = gen.documents(i)
        for _ in range(workflows):  # a workflow the source shows (not an archived one)
            if docs[0]["RequestStatus"] in ACTIVE_STATUSES:
                break
            i = (i + 1) % workflows
            docs = gen.documents(i)
        name = docs[0]["RequestName"]
        if n % 2 == 0 or len(docs) == 1:
            db, doc_id = req_db, docs[0]["_id"]
        else:
            db, doc_id = wms_db, docs[1]["_id"]
        doc = client.request("GET", f"/{quote(db)}/{quote(doc_id)}")
        if db == req_db:
            field, value = "RequestPriority", 900_000 + n
            doc["RequestPriority"] = value
        else:
            before = http.get(f"{url}/fetch", params={"RequestName": name, "limit": "1",
                                                       "fields": "RequestName,Success"},
                              headers={"Accept": "application/json"}, timeout=30).json()
            field = "Success"
            value = before["workflows"][0]["Success"] + 1000
            doc["status"]["success"] = doc["status"].get("success", 0) + 1000
        client.request("PUT", f"/{quote(db)}/{quote(doc_id)}", body=doc)
        written = time.perf_counter()
        latencies.append(_visible(http, url, name, field, value, timeout=60) - written)
    return latencies


def _success(http: requests.Session, url: str, name: str) -> int:
    with http.get(f"{url}/fetch", params={"RequestName": name, "limit": "1",
                                          "fields": "RequestName,Success"},
                  headers={"Accept": "application/json"}, timeout=30) as response:
        value: int = response.json()["workflows"][0]["Success"]
    return value


def _bulk_update(client: CouchClient, http: requests.Session, url: str, wms_db: str,
                 workflows: int, seed: int) -> tuple[int, float]:
    """Change the agent_request documents of ``workflows`` workflows in one ``_bulk_docs``;
    (documents, seconds from CouchDB's answer until the last one is visible)."""
    gen = MockGenerator(seed=seed)
    ids = [doc["_id"] for i in range(workflows) for doc in gen.documents(i)[1:]]
    body = client.request("POST", f"/{quote(wms_db)}/_all_docs",
                          params={"include_docs": True}, body={"keys": ids})
    docs = [row["doc"] for row in body["rows"] if row.get("doc")]
    for doc in docs:
        doc["status"]["success"] = doc["status"].get("success", 0) + 1
    last = docs[-1]["workflow"]
    expected = _success(http, url, last) + sum(d["workflow"] == last for d in docs)
    client.request("POST", f"/{quote(wms_db)}/_bulk_docs", body={"docs": docs})
    written = time.perf_counter()
    # One feed applies changes in sequence order: the last one visible means all are.
    deadline = time.monotonic() + 600
    while _success(http, url, last) != expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the bulk update did not show within 600 s")
        time.sleep(0.01)
    return len(docs), time.perf_counter() - written


def _down_changes(gen: MockGenerator, workflows: int, count: int, offset: int
                  ) -> list[tuple[str, bool, dict[str, Any]]]:
    """Up to ``count`` distinct workflows the source shows, to change while the server
    is down: (name, whether its ``agent_request`` is changed (else its request),
    its generated documents), alternating the two kinds."""
    step = max(1, workflows // max(1, count))
    chosen: list[tuple[str, bool, dict[str, Any]]] = []
    names: set[str] = set()
    for k in range(workflows):
        if len(chosen) >= count:
            break
        docs = gen.documents((offset + k * step + k // max(1, workflows // step)) % workflows)
        name = docs[0]["RequestName"]
        if docs[0]["RequestStatus"] not in ACTIVE_STATUSES or name in names:
            continue
        agent = len(chosen) % 2 == 1 and len(docs) > 1
        names.add(name)
        chosen.append((name, agent, docs[1] if agent else docs[0]))
    return chosen


def _restarts(client: CouchClient, http: requests.Session, proc: subprocess.Popen[str],
              url: str, source_url: str, store_url: str, dbs: tuple[str, str],
              workflows: int, restarts: int, down_changes: int, seed: int, log: IO[str],
              results: dict[str, Any], details: dict[str, Any]) -> subprocess.Popen[str]:
    """Time ``restarts`` warm restarts of the server ``proc`` (see the module doc),
    adding the figures to ``results``; the process of the server running at the end.

    :raises RuntimeError: when a restart loaded everything instead of resuming, or a
        change made while the server was down is not visible once it is ready.
    """
    req_db, wms_db = dbs
    gen = MockGenerator(seed=seed)
    info = client.request("GET", "/" + quote(wms_db))
    results["agent_documents"] = info.get("doc_count") if isinstance(info, dict) else None
    served = results["workflows_served"]
    ready: list[float] = []
    listening: list[float] = []
    applied: list[int] = []
    rounds: list[dict[str, Any]] = []
    for n in range(restarts):
        changes = _down_changes(gen, workflows, down_changes, offset=n + 1)
        # What each change will show: its counters as served now, plus 1000.
        expected: list[tuple[str, str, int]] = []
        for k, (name, agent, _doc) in enumerate(changes):
            if agent:
                expected.append((name, "Success", _success(http, url, name) + 1000))
            else:
                expected.append((name, "RequestPriority", 800_000 + n * 1000 + k))
        stop_server(proc)
        for (_name, agent, generated), (_, _field, value) in zip(changes, expected,
                                                                 strict=True):
            db = wms_db if agent else req_db
            doc = client.request("GET", f"/{quote(db)}/{quote(generated['_id'])}")
            if agent:
                doc["status"]["success"] = doc["status"].get("success", 0) + 1000
            else:
                doc["RequestPriority"] = value
            client.request("PUT", f"/{quote(db)}/{quote(doc['_id'])}", body=doc)
        log.write(f"restart {n + 1}/{restarts}: {len(changes)} documents changed while the "
                  f"server was down; starting it again...\n")
        log.flush()
        started = time.perf_counter()
        proc, url = _start_server(source_url, store_url, log, timeout=600)
        try:
            listening.append(time.perf_counter() - started)
            health = _until_ready(http, proc, url, timeout=3600)
            ready.append(time.perf_counter() - started)
            source = health["source"]
            if source.get("loads") != 0 or source.get("resumes") != 1:
                raise RuntimeError(
                    f"restart {n + 1} did not resume from the kept sequences: loads="
                    f"{source.get('loads')}, resumes={source.get('resumes')} (a full load "
                    f"is not a warm restart)")
            missing = []
            for name, field, value in expected:
                with http.get(f"{url}/fetch", params={"RequestName": name, "limit": "1",
                                                      "fields": f"RequestName,{field}"},
                              headers={"Accept": "application/json"},
                              timeout=30) as response:
                    rows = response.json().get("workflows", [])
                shown = rows[0].get(field) if rows else None
                if shown != value:
                    missing.append(f"{name}.{field} = {shown!r}, expected {value!r}")
            if missing:
                raise RuntimeError(f"restart {n + 1}: changes made while the server was down "
                                   f"are not visible once it is ready: {'; '.join(missing)}")
            if health["workflows"] != served:
                raise RuntimeError(f"restart {n + 1}: {health['workflows']} workflows served "
                                   f"after the restart, {served} before")
            applied.append(int(source.get("updates_applied") or 0))
            rounds.append({"ready_seconds": ready[-1], "listening_seconds": listening[-1],
                           "changed_while_down": len(changes), "source": source})
        except BaseException:
            stop_server(proc)
            raise
    results["warm_restarts"] = len(ready)
    results["warm_restart_changed_documents"] = len(changes)
    results["warm_restart_seconds_median"] = statistics.median(ready)
    results["warm_restart_seconds_min"] = min(ready)
    results["warm_restart_seconds_max"] = max(ready)
    results["warm_restart_listening_seconds_median"] = statistics.median(listening)
    results["warm_restart_changes_applied_median"] = statistics.median(applied)
    results["warm_over_cold_start"] = (results["warm_restart_seconds_median"]
                                       / results["cold_start_seconds"])
    rss = rss_kib(proc.pid)
    results["warm_restart_rss_mib"] = rss.get("VmRSS", 0) / 1024 or None
    details["warm_restarts"] = rounds
    return proc


def _report(workflows: int, results: dict[str, Any], out: IO[str]) -> None:
    r = results
    out.write(f"\n== CouchDB source, {workflows:,} workflows, {r['documents']:,} documents, "
              f"{r['read_bytes'] / 1e6:,.0f} MB ==\n")
    out.write(f"seed (_bulk_docs):                   {r['seed_seconds']:8.1f} s\n")
    out.write(f"read _all_docs (bytes only):         {r['read_raw_seconds']:8.1f} s\n")
    out.write(f"read _all_docs + JSON decode:        {r['read_decode_seconds']:8.1f} s\n")
    out.write(f"read + decode + convert (one thread): {r['read_decode_convert_seconds']:7.1f} s\n")
    out.write(f"full load (source's own time):       {r['source_load_seconds']:8.1f} s\n")
    out.write(f"server start until /healthz ready:   {r['load_until_ready_seconds']:8.1f} s\n")
    out.write(f"server RSS after load (peak):        {r['server_rss_mib'] or 0:8.0f} MiB "
              f"({r['server_peak_rss_mib'] or 0:.0f} MiB)\n")
    out.write(f"change -> visible, {r['updates']} updates:      "
              f"p50 {r['change_visible_p50_ms']:.0f} ms, p99 {r['change_visible_p99_ms']:.0f} ms "
              f"(max {r['change_visible_max_ms']:.0f} ms)\n")
    if "bulk_update_seconds" in r:
        out.write(f"bulk update of {r['bulk_update_documents']:,} agent_request documents "
                  f"visible after {r['bulk_update_seconds']:.1f} s "
                  f"({r['bulk_update_documents_per_second']:,.0f} documents/s)\n")
    if "warm_restart_seconds_median" in r:
        out.write(f"cold start (full load into sqlite):  {r['cold_start_seconds']:8.1f} s\n")
        out.write(f"warm restart until /healthz ready:   "
                  f"{r['warm_restart_seconds_median']:8.2f} s median of {r['warm_restarts']} "
                  f"(min {r['warm_restart_seconds_min']:.2f}, max "
                  f"{r['warm_restart_seconds_max']:.2f}; listening after "
                  f"{r['warm_restart_listening_seconds_median']:.2f} s) = "
                  f"{r['warm_over_cold_start']:.2f}x the cold start\n")
        out.write(f"  each resumed, {r['warm_restart_changed_documents']} documents changed "
                  f"while down, {r['warm_restart_changes_applied_median']:.0f} changes "
                  f"applied; the agent database holds {r['agent_documents'] or 0:,} documents "
                  f"({r['jobsummaries']:,} jobsummary), none read again\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench couchdb-source``: see the module docstring."""
    parser = argparse.ArgumentParser(prog="wmstats bench couchdb-source",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workflows", "-n", type=int, default=10_000)
    parser.add_argument("--url", default=os.environ.get("WMSTATS_COUCHDB_URL"),
                        help="an existing CouchDB (default: start a pouchdb-server)")
    parser.add_argument("--in-memory", action="store_true",
                        help="the pouchdb-server started keeps its data in memory")
    parser.add_argument("--updates", type=int, default=100,
                        help="changes timed until visible (default 100)")
    parser.add_argument("--batch-size", type=int, default=500,
                        help="rows per page (the source's default) and documents per "
                             "_bulk_docs (default 500)")
    parser.add_argument("--bulk", type=int, default=1000, metavar="N",
                        help="then change the agent_request documents of N workflows in one "
                             "_bulk_docs and time until all are visible (default 1000; 0: "
                             "skip)")
    parser.add_argument("--store", choices=STORES, default="memory",
                        help="the cache server's store (default memory; sqlite: a "
                             "temporary file, and the warm restarts are timed)")
    parser.add_argument("--restarts", type=int, default=None, metavar="N",
                        help="with --store sqlite: warm restarts timed (default 3; 0: none)")
    parser.add_argument("--down-changes", type=int, default=20, metavar="N",
                        help="documents changed in CouchDB while the server is down, per "
                             "restart: half requests, half agent_request (default 20)")
    parser.add_argument("--jobs", action=argparse.BooleanOptionalAction, default=None,
                        help="also seed the jobsummary documents (default: with restarts, "
                             "which read them again)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.workflows < 10 or args.updates < 1 or args.batch_size < 1:
        parser.error("need --workflows >= 10, --updates >= 1, --batch-size >= 1")
    if args.restarts is not None and args.restarts < 0 or args.down_changes < 1:
        parser.error("need --restarts >= 0, --down-changes >= 1")
    if args.restarts and args.store != "sqlite":
        parser.error("--restarts needs --store sqlite (a store that keeps checkpoints)")
    with _couchdb(args.url, args.in_memory) as url:
        results, details = measure(url, args.workflows, updates=args.updates,
                                   batch_size=args.batch_size, bulk=args.bulk, seed=args.seed,
                                   store=args.store, restarts=args.restarts, jobs=args.jobs,
                                   down_changes=args.down_changes)
    details["couchdb"] = "given" if args.url else (
        "pouchdb-server " + ("in memory" if args.in_memory else "on disk"))
    _report(args.workflows, results, sys.stdout)
    if args.json:
        write_json(args.json, envelope("couchdb-source", args.workflows, results, details))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
