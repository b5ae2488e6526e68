"""``wmstats load``: fill a store from mock data or from files.

::

    wmstats load --store sqlite:///wmstats.db --mock 100000 [--seed 0] [--archived 0.9]
    wmstats load --store sqlite:///wmstats.db --input requests.json agents.ndjson
    wmstats load --store sqlite:///wmstats.db --update --input changed.ndjson

Input files hold either WMCore documents (ReqMgr2 requests, ``agent_request``,
``agent_info``, ``jobsummary``, ``requestcache`` entries: a JSON array, a JSON
object keyed by id, one document, or NDJSON), converted with
:class:`~wmstats.convert.DocumentConverter`; or static records as written by
``wmstats mock --records all`` / ``wmstats convert --records all`` (objects
tagged with ``RecordType``, or untagged ``Workflow`` records), grouped back into
one bundle per workflow (``JobGroup`` / ``JobSample`` records into each workflow's
job records; ``Alert`` records are derived by the server, not loaded).

By default the store's whole snapshot is replaced (atomically), and its job
records with those read (or the mock's); ``--update`` upserts the workflows,
agents and job records read instead.  Progress goes to stderr when it
is a terminal; a summary line always does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from wmstats.inputs import InputError, Progress, read_documents
from wmstats.schema import (
    BUNDLE_PARTS,
    RECORD_TYPES,
    Agent,
    Alert,
    JobGroup,
    JobSample,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
)

__all__ = ["add_arguments", "run", "read_inputs", "read_all", "StaticRecordReader"]

#: record type name -> the bundle part that holds it
_PARTS = {cls.__name__: part for part, cls in BUNDLE_PARTS.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``load`` options to a (sub)parser."""
    parser.add_argument("--store", required=True, metavar="URL",
                        help="store URL: memory://, sqlite:///path.db, "
                             "couchdb://user:pass@host:port/db ...")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mock", type=int, metavar="N",
                        help="load N mock workflows (and the mock agents)")
    source.add_argument("--input", nargs="+", metavar="FILE",
                        help="load WMCore documents or static records from files "
                             "('-' for stdin)")
    parser.add_argument("--seed", type=int, default=0, help="mock generator seed (default 0)")
    parser.add_argument("--archived", type=float, default=0.0, metavar="FRACTION",
                        help="with --mock: the share of workflows (0 to 1) made archived "
                             "requests (normal-, aborted-, rejected-archived), as most "
                             "requests ever made are (default 0)")
    parser.add_argument("--update", action="store_true",
                        help="upsert into the current snapshot instead of replacing it")


class StaticRecordReader:
    """Group static records (dicts, as unstructured by :mod:`wmstats.serialize`) into
    bundles.  Records of one workflow may come in any order."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow] = {}
        self.parts: dict[str, dict[str, list[Any]]] = {}
        self.agents: list[Agent] = []
        #: workflow -> (JobGroup records, JobSample records)
        self.job_records: dict[str, tuple[list[JobGroup], list[JobSample]]] = {}

    @staticmethod
    def accepts(doc: Any) -> bool:
        """Whether ``doc`` is a static record rather than a WMCore document."""
        return isinstance(doc, dict) and (
            "RecordType" in doc or ("HasRequest" in doc and "RequestName" in doc))

    def add(self, doc: dict[str, Any]) -> None:
        """Add one record.

        :raises ValueError: for an unknown ``RecordType`` or a record that does not
            fit its type.
        """
        from wmstats.serialize import StructureError, structure

        data = dict(doc)
        kind = data.pop("RecordType", "Workflow")
        cls = RECORD_TYPES.get(kind)
        if cls is None:
            raise ValueError(f"unknown RecordType {kind!r}")
        try:
            record = structure(data, cls)
        except StructureError as exc:
            raise ValueError(f"not a valid {kind} record: {exc}") from None
        if isinstance(record, Workflow):
            self.workflows[record.RequestName] = record
        elif isinstance(record, Agent):
            self.agents.append(record)
        elif isinstance(record, Alert):
            raise ValueError("Alert records are derived by the server, not loaded")
        elif isinstance(record, JobGroup):
            self.job_records.setdefault(record.RequestName, ([], []))[0].append(record)
        elif isinstance(record, JobSample):
            self.job_records.setdefault(record.RequestName, ([], []))[1].append(record)
        else:
            self.parts.setdefault(record.RequestName, {}).setdefault(
                _PARTS[kind], []).append(record)

    def jobs(self) -> list[WorkflowJobs]:
        """The job records read, per workflow."""
        return [WorkflowJobs(name, tuple(groups), tuple(samples))
                for name, (groups, samples) in self.job_records.items()]

    def bundles(self) -> Iterator[WorkflowBundle]:
        """One bundle per workflow record (part records without one are dropped)."""
        for name, workflow in self.workflows.items():
            parts = self.parts.get(name, {})
            yield WorkflowBundle(workflow=workflow,
                                 **{attr: tuple(records) for attr, records in parts.items()})


def read_all(paths: Iterable[str]
             ) -> tuple[list[WorkflowBundle], list[Agent], list[str], list[WorkflowJobs]]:
    """Read files of WMCore documents and/or static records.

    :returns: bundles, agents, the conversion problems (as text), and the job
        records (of jobsummary documents and of JobGroup/JobSample records).
    :raises OSError: when a file cannot be read.
    :raises ValueError: when a file is not JSON or holds a bad static record.
    """
    from wmstats.convert import DocumentConverter

    converter = DocumentConverter()
    static = StaticRecordReader()
    for path in paths:
        name = "<stdin>" if path == "-" else path
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        try:
            for doc in read_documents(stream, name):
                if StaticRecordReader.accepts(doc):
                    static.add(doc)
                else:
                    converter.add(doc)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        finally:
            if stream is not sys.stdin:
                stream.close()
    bundles = [*static.bundles(), *converter.bundles()]
    agents = [*static.agents, *converter.agents()]
    return (bundles, agents, [str(p) for p in converter.problems],
            [*static.jobs(), *converter.jobs()])


def read_inputs(paths: Iterable[str]) -> tuple[list[WorkflowBundle], list[Agent], list[str]]:
    """:func:`read_all` without the job records: bundles, agents, problems."""
    bundles, agents, problems, _jobs = read_all(paths)
    return bundles, agents, problems


def run(args: argparse.Namespace) -> int:
    """Run ``wmstats load``; returns the exit status (0 ok, 1 problems, 2 bad usage)."""
    from wmstats.store import StoreError, open_store

    err: TextIO = sys.stderr
    try:
        store = open_store(args.store)
    except (StoreError, OSError) as exc:
        print(f"wmstats load: {exc}", file=err)
        return 2
    problems: list[str] = []
    try:
        start = time.monotonic()
        if args.mock is not None:
            if args.mock < 0:
                print("wmstats load: --mock needs a number >= 0", file=err)
                return 2
            if not 0.0 <= args.archived <= 1.0:
                print("wmstats load: --archived needs a number from 0 to 1", file=err)
                return 2
            from wmstats.mock import MockGenerator

            generator = MockGenerator(args.seed, archived=args.archived)
            agents = generator.agents()
            bundles: Iterable[WorkflowBundle] = generator.bundles(args.mock)
            total: int | None = args.mock
            jobs: Iterable[WorkflowJobs] = generator.iter_jobs(args.mock)
        else:
            try:
                read, agents, problems, jobs = read_all(args.input)
            except (OSError, ValueError) as exc:
                print(f"wmstats load: {exc}", file=err)
                return 2
            bundles, total = read, len(read)
        progress = Progress("loading workflows", total, err)

        def counting() -> Iterator[WorkflowBundle]:
            for bundle in bundles:
                progress.step()
                yield bundle
            progress.done()

        if args.update:
            sid = store.apply(upserts=counting(), agents=agents)
            store.apply_jobs(jobs)
        else:
            sid = store.replace(counting(), agents)
            store.replace_jobs(jobs)
        elapsed = time.monotonic() - start
        for problem in problems:
            print(f"problem: {problem}", file=err)
        print(f"wmstats load: {progress.count} workflows and {len(agents)} agents "
              f"{'upserted into' if args.update else 'loaded into'} {args.store} in "
              f"{elapsed:.1f} s ({progress.count / max(elapsed, 1e-9):,.0f}/s); snapshot {sid}"
              + (f"; {len(problems)} conversion problems" if problems else ""), file=err)
        return 1 if problems else 0
    finally:
        store.close()
