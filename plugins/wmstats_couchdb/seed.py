"""Seed CouchDB with mock WMCore documents: the ``wmstats couch-seed`` command.

Writes what :class:`~wmstats.mock.MockGenerator` renders as WMCore documents
into the two databases a WMStats server reads: ReqMgr2 request documents into
the requests database (``reqmgr_workload_cache``), ``agent_request`` and
``agent_info`` documents (and, with ``jobs``, the ``jobsummary`` documents of the
failed jobs) into the WMStats database (``wmstats``), with ``_bulk_docs`` in
batches.  The documents are made in a background thread while
the previous batch is written, so memory stays flat.  :class:`SeedCommand` is
registered in the ``wmstats.commands`` entry point group (:mod:`wmstats.commands`)::

    wmstats couch-seed --url http://127.0.0.1:5984 --workflows 40000
    wmstats couch-seed --workflows 2000 --jobs --now $(date +%s)    # a live demo
    seed_couchdb(CouchClient("http://127.0.0.1:5984"), 1000)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import attrs

from wmstats._argtypes import count as _count
from wmstats.commands import Command
from wmstats.mock import MockGenerator
from wmstats_couchdb._http import (
    CouchClient,
    CouchError,
    quote,
    redact,
    split_server_url,
)
from wmstats_couchdb._prefetch import prefetched

__all__ = ["SeedResult", "seed_couchdb", "SeedCommand", "add_arguments", "run", "main",
           "DEFAULT_REQUESTS_DB", "DEFAULT_WMSTATS_DB"]

#: ReqMgr2's request database in WMCore deployments.
DEFAULT_REQUESTS_DB = "reqmgr_workload_cache"
#: The WMStats database (agent_request, agent_info) in WMCore deployments.
DEFAULT_WMSTATS_DB = "wmstats"


@attrs.frozen
class SeedResult:
    """What :func:`seed_couchdb` wrote.

    :param workflows: workflows generated.
    :param requests: request documents written.
    :param agent_requests: ``agent_request`` documents written.
    :param agent_infos: ``agent_info`` documents written.
    :param failed: documents CouchDB refused (conflicts: the id exists already).
    :param jobsummaries: ``jobsummary`` documents written.
    :param seconds: wall time.
    :param first_errors: the first refusals, ``"id: error: reason"``.
    """

    workflows: int
    requests: int
    agent_requests: int
    agent_infos: int
    failed: int
    seconds: float
    first_errors: tuple[str, ...] = ()
    jobsummaries: int = 0


def _ensure_db(client: CouchClient, name: str, reset: bool) -> None:
    path = "/" + quote(name)
    if reset:
        client.request("DELETE", path, ok_missing=True)
    try:
        client.request("PUT", path)
    except CouchError as exc:
        if exc.status != 412:  # 412: exists already
            raise


def _batches(gen: MockGenerator, workflows: int, start: int, batch_size: int,
             agent_docs: bool, jobs: bool = False
             ) -> Iterator[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]:
    """(workflows done, request docs, wmstats docs), each list up to ``batch_size``."""
    requests: list[dict[str, Any]] = []
    wmstats: list[dict[str, Any]] = gen.agent_documents() if agent_docs else []
    for i in range(start, start + workflows):
        docs = gen.documents(i)
        requests.append(docs[0])
        wmstats.extend(docs[1:])
        if jobs:
            wmstats.extend(gen.job_documents(i))
        if len(requests) >= batch_size or len(wmstats) >= batch_size:
            yield i - start + 1, requests, wmstats
            requests, wmstats = [], []
    if requests or wmstats:
        yield workflows, requests, wmstats


def seed_couchdb(client: CouchClient, workflows: int, *, seed: int = 0, start: int = 0,
                 requests_db: str = DEFAULT_REQUESTS_DB, wmstats_db: str = DEFAULT_WMSTATS_DB,
                 batch_size: int = 1000, reset: bool = False, agent_info: bool = True,
                 progress: Callable[[int, float], None] | None = None, jobs: bool = False,
                 now: int | None = None) -> SeedResult:
    """Write mock workflows ``start`` .. ``start + workflows - 1`` into CouchDB.

    The databases are created if missing.

    :param reset: delete both databases first.
    :param agent_info: also write the mock agents' ``agent_info`` documents.
    :param progress: called after each batch with (workflows done, seconds).
    :param jobs: also write each workflow's ``jobsummary`` documents.
    :param now: the mock's reference time (default its fixed one,
        :data:`wmstats.mock.DEFAULT_NOW`; the current time makes a live demo).
    :raises CouchError: when CouchDB fails (documents it refuses are counted, not
        raised).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    began = time.monotonic()
    for name in (requests_db, wmstats_db):
        _ensure_db(client, name, reset)
    gen = MockGenerator(seed=seed) if now is None else MockGenerator(seed=seed, now=now)
    counts = {"request": 0, "agent_request": 0, "agent_info": 0, "jobsummary": 0}
    failed = 0
    errors: list[str] = []
    for done, requests, wmstats in prefetched(_batches(gen, workflows, start, batch_size,
                                                       agent_info, jobs), depth=2):
        for db, docs in ((requests_db, requests), (wmstats_db, wmstats)):
            if not docs:
                continue
            answer = client.request("POST", f"/{quote(db)}/_bulk_docs", body={"docs": docs})
            refused = {row.get("id") for row in answer if isinstance(row, dict)
                       and row.get("error")}
            for row in answer:
                if isinstance(row, dict) and row.get("error") and len(errors) < 10:
                    errors.append(f"{row.get('id')}: {row.get('error')}: {row.get('reason')}")
            failed += len(refused)
            for doc in docs:
                if doc.get("_id") not in refused:
                    kind = doc.get("type") or "request"
                    counts[kind] = counts.get(kind, 0) + 1
        if progress is not None:
            progress(done, time.monotonic() - began)
    return SeedResult(workflows=workflows, requests=counts["request"],
                      agent_requests=counts["agent_request"], agent_infos=counts["agent_info"],
                      failed=failed, seconds=time.monotonic() - began,
                      first_errors=tuple(errors), jobsummaries=counts["jobsummary"])


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wmstats couch-seed``."""
    parser.add_argument("--url", default="http://127.0.0.1:5984",
                        help="CouchDB server, http(s)://[user:password@]host:port "
                             "(default http://127.0.0.1:5984)")
    parser.add_argument("--workflows", "-n", type=_count, default=1000,
                        help="number of mock workflows (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="mock generator seed (default 0)")
    parser.add_argument("--start", type=_count, default=0,
                        help="index of the first workflow (to add more later; default 0)")
    parser.add_argument("--requests-db", default=DEFAULT_REQUESTS_DB,
                        help=f"request database (default {DEFAULT_REQUESTS_DB})")
    parser.add_argument("--wmstats-db", default=DEFAULT_WMSTATS_DB,
                        help=f"agent_request/agent_info database (default {DEFAULT_WMSTATS_DB})")
    parser.add_argument("--batch-size", type=_count, default=1000,
                        help="documents per _bulk_docs request (default 1000)")
    parser.add_argument("--reset", action="store_true",
                        help="delete both databases first")
    parser.add_argument("--no-agent-info", dest="agent_info", action="store_false",
                        help="do not write the agent_info documents")
    parser.add_argument("--jobs", action="store_true",
                        help="also write the workflows' jobsummary documents (failed jobs)")
    parser.add_argument("--now", type=int, default=None, metavar="EPOCH",
                        help="the mock's reference time (default its fixed one); "
                             "--now $(date +%%s) makes the agents' heartbeats current")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for each CouchDB answer (default 300)")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``wmstats couch-seed``; progress and the summary go to ``out`` (stderr)."""
    out = out if out is not None else sys.stderr
    try:
        base, auth = split_server_url(args.url)
    except ValueError as exc:
        print(f"wmstats couch-seed: {exc}", file=out)
        return 2
    if args.batch_size < 1:
        print("wmstats couch-seed: --batch-size must be >= 1", file=out)
        return 2
    last = [0.0]

    def progress(done: int, seconds: float) -> None:
        if seconds - last[0] >= 2.0 or done == args.workflows:
            last[0] = seconds
            out.write(f"  {done:,}/{args.workflows:,} workflows ({seconds:.0f} s)\n")
            out.flush()

    client = CouchClient(base, auth=auth, timeout=args.timeout)
    out.write(f"seeding {redact(args.url)} with {args.workflows:,} mock workflows "
              f"({args.requests_db}, {args.wmstats_db})...\n")
    try:
        result = seed_couchdb(client, args.workflows, seed=args.seed, start=args.start,
                              requests_db=args.requests_db, wmstats_db=args.wmstats_db,
                              batch_size=args.batch_size, reset=args.reset,
                              agent_info=args.agent_info, progress=progress,
                              jobs=args.jobs, now=args.now)
    except CouchError as exc:
        print(f"wmstats couch-seed: {exc}", file=out)
        return 1
    finally:
        client.close()
    out.write(f"wrote {result.requests:,} request, {result.agent_requests:,} agent_request and "
              f"{result.agent_infos:,} agent_info documents"
              + (f" and {result.jobsummaries:,} jobsummary documents" if args.jobs else "")
              + f" in {result.seconds:.1f} s\n")
    if result.failed:
        out.write(f"{result.failed:,} documents refused (already there? use --reset), e.g.:\n")
        for line in result.first_errors:
            out.write(f"  {line}\n")
        return 1
    return 0


class SeedCommand(Command):
    """``wmstats couch-seed`` (entry point ``couch-seed`` in ``wmstats.commands``)."""

    help = "write mock WMCore documents into CouchDB (for a --source server)"
    description = ("Write the mock generator's ReqMgr2 request documents and agent_request/"
                   "agent_info documents into CouchDB with _bulk_docs, as a WMStats "
                   "--source server reads them (needs the wmstats_couchdb plugin).")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The options: :func:`add_arguments`."""
        add_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        """Seed, as :func:`run`."""
        return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmstats_couchdb.seed [options]``."""
    parser = argparse.ArgumentParser(prog="wmstats couch-seed",
                                     description="Write mock WMCore documents into CouchDB.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
