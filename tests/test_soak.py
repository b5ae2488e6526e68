"""Soak: 16 clients against a cache server fed by a live, restarted pouchdb-server.

The cache server runs as its own process (``python -m wmstats.serve cache-server
--source couchdb://...``, started as the benchmarks start it), so its resident
memory is read from ``/proc/PID/status`` without the test's own threads in it.
While it runs:

* 16 client threads each loop over a mix of JSON pages, filtered pages and
  listings, workflow details and full NDJSON streams (gzip-compressed, each one
  checked to hold exactly ``X-Total-Count`` lines);
* one updater thread changes documents in CouchDB (job counters of
  ``agent_request`` documents, priorities of requests), which reach the server
  through ``_changes``, and half way through restarts pouchdb-server (same
  port, same data folder) and goes on updating;
* a sampler reads the server's RSS every 0.2 s.

Then it checks: every request answered 200 (no 5xx, no broken connection or
stream); the RSS's high-water mark over the last third of the run is within a
bound of its high-water mark over the middle third (after the first third,
the warm-up); once the server has applied every change, what it
serves equals a fresh full load of the same CouchDB by a second server (every
workflow's records, the workflow list, the summaries), and every workflow's
``Success`` counter is its value at the start plus exactly what the updater
added.

Length: ``$WMSTATS_SOAK_SECONDS`` (default 20 s, what CI runs) and
``$WMSTATS_SOAK_WORKFLOWS`` (default 300). The memory bound is the issue's 5 %
from :data:`FLAT_SECONDS` on; shorter runs (CI) assert the looser
:data:`SHORT_RSS_BOUND`, because a warm-up of a few seconds on a shared machine
is no stable baseline (see ``docs/deployment.md``, "Soak test"). The figures
are printed (``pytest -s``) as one ``soak:`` line.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest
import requests
from wmstats_couchdb._http import CouchClient, quote
from wmstats_couchdb.seed import seed_couchdb

from wmstats._procfs import rss_kib
from wmstats.bench._common import start_server, stop_server
from wmstats.mock import MockGenerator
from wmstats.source import ACTIVE_STATUSES
from wmstats.testing.couchdb_server import PouchServer
from wmstats.testing.fixtures import require_pouchdb_bin
from wmstats.web import CacheApp, WebServer, build_application

pytestmark = [pytest.mark.soak, pytest.mark.usefixtures("quiet_cherrypy")]

#: Environment variables: the soak's length in seconds and its number of workflows.
SECONDS_ENV: Final = "WMSTATS_SOAK_SECONDS"
WORKFLOWS_ENV: Final = "WMSTATS_SOAK_WORKFLOWS"
CLIENTS: Final = 16
SEED: Final = 15
#: From this length on the last third's RSS peak must be within 5 % of the middle
#: third's (the issue's bound).
FLAT_SECONDS: Final = 120.0
FLAT_RSS_BOUND: Final = 1.05
#: The bound of shorter runs (CI): the arenas are still growing then.
SHORT_RSS_BOUND: Final = 1.10
#: Share of the run that is warm-up; the rest is split in two equal windows whose
#: RSS high-water marks are compared.  Peaks, not single samples: every full
#: stream raises the RSS for a moment and glibc gives much of it back, a sawtooth
#: of ~25 MiB at 300 workflows that made one sample against another a coin toss
#: (runs of the same commit measured -16 % to +26 %).  A leak raises the peaks.
WARMUP_SHARE: Final = 1 / 3
REQUESTS_DB: Final = "soak_requests"
WMSTATS_DB: Final = "soak_wmstats"
#: Source options that notice a lost CouchDB and reconnect quickly.
FAST_SOURCE: Final = "heartbeat=0.2&idle_timeout=5&retry_initial=0.05&retry_max=0.5"


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _get(session: requests.Session, url: str, **headers: str) -> requests.Response:
    return session.get(url, headers={"Accept": "application/json", **headers}, timeout=60)


def _sequences(session: requests.Session, url: str) -> dict[str, str]:
    response = _get(session, url + "/fetch?limit=0")
    assert response.status_code == 200, response.text
    sequences: dict[str, str] = json.loads(response.headers["X-Source-Sequences"])
    return sequences


def _couch_sequences(client: CouchClient) -> dict[str, str]:
    return {db: str(client.request("GET", f"/{quote(db)}")["update_seq"])
            for db in (REQUESTS_DB, WMSTATS_DB)}


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _ready(session: requests.Session, url: str) -> bool:
    try:
        return _get(session, url + "/healthz").status_code == 200
    except requests.ConnectionError:
        return False


def _stream(session: requests.Session, url: str, path: str = "/fetch") -> list[Any]:
    """Every record of ``path`` as one NDJSON stream (gzip), checked complete."""
    params = {"format": "ndjson"} if path != "/fetch" else {"limit": "1000000",
                                                             "format": "ndjson"}
    response = session.get(f"{url}{path}", params=params,
                           headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert response.status_code == 200, response.text
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    if "X-Total-Count" in response.headers:
        assert len(lines) == int(response.headers["X-Total-Count"])
    return lines


def _served(session: requests.Session, url: str) -> dict[str, Any]:
    """What a server serves: every workflow's records, the list, the summaries."""
    workflows = _stream(session, url)
    names = sorted(w["RequestName"] for w in workflows)
    details = {name: _stream(session, url, "/fetch/" + urllib.parse.quote(name, safe=""))
               for name in names}
    listings = {path: _get(session, url + path).json()
                for path in ("/sites", "/campaign", "/agent", "/status", "/team")}
    for listing in listings.values():
        del listing["snapshot"]  # the id of the server's own snapshot
    for item in listings["/agent"]["values"]:
        if item.get("Agent") is not None:
            # Worded at the time of the request ("no heartbeat for 906 d 8 h"): the
            # two servers' answers are seconds apart, across an hour now and then.
            del item["Agent"]["StatusReasons"]
    return {"workflows": workflows, "details": details, "listings": listings}


def _differences(soaked: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Where two :func:`_served` results differ (short, for the assertion message)."""
    found = [f"workflow {a.get('RequestName')}" for a, b in
             zip(soaked["workflows"], fresh["workflows"], strict=False) if a != b]
    if len(soaked["workflows"]) != len(fresh["workflows"]):
        found.append("number of workflows")
    for part in ("details", "listings"):
        found += [f"{part} {key}" for key in sorted({*soaked[part], *fresh[part]})
                  if soaked[part].get(key) != fresh[part].get(key)]
    return found


class _Clients:
    """The 16 clients: each loops over a mix of requests until ``stop`` is set."""

    def __init__(self, url: str, names: list[str], stop: threading.Event) -> None:
        self.url = url
        self.names = names
        self.stop = stop
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def _one(self, session: requests.Session, rng: random.Random) -> tuple[str, int]:
        kind = rng.choice(("page", "page", "filter", "filter", "listing", "detail", "stream"))
        url = self.url
        if kind == "page":
            path = (f"/fetch?idx={rng.randrange(len(self.names))}&limit=50"
                    f"&sort={rng.choice(('-RequestPriority', 'RequestDate', 'RequestName'))}")
        elif kind == "filter":
            path = rng.choice((
                "/fetch?RequestStatus=running-open,running-closed&limit=20",
                f"/fetch?RequestName=*{rng.randrange(10)}*&limit=20&fields=RequestName,Success",
                f"/fetch?RequestName.re={rng.randrange(10)}[0-9]$&limit=30",
                "/fetch?RequestPriority=>=100000&sort=-RequestPriority&limit=40",
                "/status?RequestType=ReReco,MonteCarlo",
                "/sites?RequestStatus=running-open",
            ))
        elif kind == "listing":
            path = rng.choice(("/sites", "/campaign", "/agent", "/status", "/team",
                               "/type", "/release"))
        elif kind == "detail":
            path = "/fetch/" + urllib.parse.quote(rng.choice(self.names), safe="")
        else:
            response = session.get(url + "/fetch", params={"limit": "1000000",
                                                           "format": "ndjson"},
                                   headers={"Accept-Encoding": "gzip"}, timeout=60)
            lines = response.text.count("\n")
            if response.status_code == 200 and lines != int(response.headers["X-Total-Count"]):
                raise AssertionError(f"a stream of {lines} lines, X-Total-Count "
                                     f"{response.headers['X-Total-Count']}")
            return kind, response.status_code
        response = _get(session, url + path, **({"Accept-Encoding": "gzip"}
                                                 if rng.random() < 0.5 else {}))
        response.json()  # the whole body, parsed
        return kind, response.status_code

    def run(self, number: int) -> None:
        rng = random.Random(SEED * 100 + number)
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    kind, status = self._one(session, rng)
                except (requests.RequestException, ValueError, AssertionError) as exc:
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.statuses[status] += 1
                    self.kinds[kind] += 1


class _Updater:
    """Changes documents in CouchDB until ``stop``; restarts pouchdb-server at ``restart_at``."""

    def __init__(self, couch: PouchServer, workflows: int, stop: threading.Event,
                 restart_at: float) -> None:
        self.couch = couch
        self.stop = stop
        self.restart_at = restart_at
        docs = list(MockGenerator(seed=SEED).iter_documents(workflows))
        self.agent_docs = [(d["_id"], d["workflow"]) for d in docs
                           if d.get("type") == "agent_request"]
        self.request_ids = [d["_id"] for d in docs if "RequestName" in d]
        self.added: Counter[str] = Counter()
        self.updates = 0
        self.updates_after_restart = 0
        self.restarted = False
        self.pids: tuple[int | None, int | None] = (couch.pid, None)

    def _change(self, client: CouchClient, db: str, doc_id: str,
                change: Callable[[dict[str, Any]], None]) -> None:
        doc = client.request("GET", f"/{quote(db)}/{quote(doc_id)}")
        change(doc)
        client.request("PUT", f"/{quote(db)}/{quote(doc_id)}", body=doc)

    def run(self) -> None:
        rng = random.Random(SEED)
        client = CouchClient(self.couch.url, timeout=30)
        try:
            while not self.stop.is_set():
                if not self.restarted and time.monotonic() >= self.restart_at:
                    client.close()
                    self.couch.restart()
                    client = CouchClient(self.couch.url, timeout=30)
                    self.restarted = True
                    self.pids = (self.pids[0], self.couch.pid)
                if rng.random() < 0.75:
                    doc_id, workflow = rng.choice(self.agent_docs)
                    more = rng.randrange(1, 50)

                    def bump(doc: dict[str, Any], more: int = more) -> None:
                        doc["status"]["success"] = doc["status"].get("success", 0) + more
                    self._change(client, WMSTATS_DB, doc_id, bump)
                    self.added[workflow] += more
                else:
                    def prioritize(doc: dict[str, Any],
                                   priority: int = rng.randrange(1, 300000)) -> None:
                        doc["RequestPriority"] = priority
                    self._change(client, REQUESTS_DB, rng.choice(self.request_ids), prioritize)
                self.updates += 1
                self.updates_after_restart += self.restarted
                time.sleep(0.02)
        finally:
            client.close()


class _Sampler:
    """The server's RSS (KiB) every ``interval`` seconds until ``stop``."""

    def __init__(self, pid: int, stop: threading.Event, interval: float = 0.2) -> None:
        self.pid = pid
        self.stop = stop
        self.interval = interval
        self.samples: list[tuple[float, int]] = []

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.samples.append((time.monotonic(), rss_kib(self.pid)["VmRSS"]))


@contextlib.contextmanager
def _cache_server(source: str) -> Iterator[tuple[int, str]]:
    with tempfile.TemporaryFile("w+") as log:
        proc, (url,) = start_server(["cache-server", "--port", "0", "--quiet", "--source",
                                     source], log, timeout=60)
        try:
            yield proc.pid, url
        finally:
            stop_server(proc)
            log.seek(0)
            assert "Traceback" not in log.read()


def test_soak() -> None:
    require_pouchdb_bin()
    seconds = _env_number(SECONDS_ENV, 20.0)
    workflows = int(_env_number(WORKFLOWS_ENV, 300))
    with contextlib.ExitStack() as stack:
        couch = stack.enter_context(PouchServer(in_memory=False))
        client = CouchClient(couch.url, timeout=60)
        stack.callback(lambda: client.close())
        seeded = seed_couchdb(client, workflows, seed=SEED, requests_db=REQUESTS_DB,
                              wmstats_db=WMSTATS_DB, batch_size=100)
        assert seeded.failed == 0, seeded.first_errors
        source = (f"couchdb://127.0.0.1:{couch.port}?requests_db={REQUESTS_DB}"
                  f"&wmstats_db={WMSTATS_DB}&{FAST_SOURCE}")
        pid, url = stack.enter_context(_cache_server(source))
        session = stack.enter_context(requests.Session())
        _wait(lambda: _ready(session, url), 120, "the first full load")
        before = {w["RequestName"]: w["Success"] for w in _stream(session, url)}
        shown = [d for d in MockGenerator(seed=SEED).iter_documents(workflows)
                 if d.get("RequestStatus") in ACTIVE_STATUSES]
        assert len(before) == len(shown) > workflows / 2

        stop = threading.Event()
        began = time.monotonic()
        clients = _Clients(url, sorted(before), stop)
        updater = _Updater(couch, workflows, stop, restart_at=began + seconds / 2)
        sampler = _Sampler(pid, stop)
        rss_start = rss_kib(pid)["VmRSS"]
        with concurrent.futures.ThreadPoolExecutor(CLIENTS + 2) as pool:
            futures = [pool.submit(clients.run, i) for i in range(CLIENTS)]
            futures += [pool.submit(updater.run), pool.submit(sampler.run)]
            concurrent.futures.wait(futures, timeout=seconds,
                                    return_when=concurrent.futures.FIRST_EXCEPTION)
            stop.set()
            for future in futures:
                future.result(timeout=120)  # re-raises what a thread raised
        duration = time.monotonic() - began
        rss_end = rss_kib(pid)["VmRSS"]

        # the soaked server applies every change, then serves what a fresh load does
        want = _couch_sequences(client)
        _wait(lambda: _sequences(session, url) == want, 60, "the last changes")
        fresh = stack.enter_context(CacheApp(source=source))
        fresh_server = stack.enter_context(WebServer(build_application(fresh)))
        _wait(lambda: _ready(session, fresh_server.url), 120, "the fresh full load")
        assert _sequences(session, fresh_server.url) == want
        health = _get(session, url + "/healthz").json()["source"]
        soaked_data = _served(session, url)
        fresh_data = _served(session, fresh_server.url)

    middle_from = began + seconds * WARMUP_SHARE
    last_from = middle_from + seconds * (1 - WARMUP_SHARE) / 2
    middle = [kib for at, kib in sampler.samples if middle_from <= at < last_from]
    last = [kib for at, kib in sampler.samples if at >= last_from] + [rss_end]
    assert len(middle) >= 5, sampler.samples  # the sampler kept up
    peak_middle, peak_last = max(middle), max(last)
    requests_done = sum(clients.statuses.values())
    print(f"\nsoak: {duration:.1f} s, {CLIENTS} clients, {workflows} workflows, "
          f"{requests_done} requests {dict(clients.kinds)}, statuses "
          f"{dict(clients.statuses)}, errors {len(clients.errors)}, {updater.updates} "
          f"updates ({updater.updates_after_restart} after the restart of pouchdb-server "
          f"{updater.pids}), RSS start {rss_start / 1024:.1f} MiB, peak of the middle "
          f"third {peak_middle / 1024:.1f} MiB, of the last third {peak_last / 1024:.1f} "
          f"MiB, end {rss_end / 1024:.1f} MiB, source {health}, data equal "
          f"{soaked_data == fresh_data}")

    assert clients.errors == []
    assert set(clients.statuses) == {200}, clients.statuses
    assert requests_done >= CLIENTS and all(clients.kinds[k] for k in
                                            ("page", "filter", "listing", "detail", "stream"))
    assert updater.restarted and updater.updates_after_restart > 0
    assert updater.pids[0] != updater.pids[1]
    # the server lost CouchDB and followed its feeds on from where they were
    assert health["errors"] >= 1 and health["loads"] == 1, health
    bound = FLAT_RSS_BOUND if seconds >= FLAT_SECONDS else SHORT_RSS_BOUND
    assert peak_last <= peak_middle * bound, (peak_middle, peak_last, bound)
    assert _differences(soaked_data, fresh_data) == []
    after = {w["RequestName"]: w["Success"] for w in soaked_data["workflows"]}
    assert after == {name: success + updater.added[name] for name, success in before.items()}
