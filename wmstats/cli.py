"""The ``wmstats`` command line.

Sub-commands:

* ``mock`` -- generate mock workflows, as static records or WMCore documents;
* ``convert`` -- WMCore documents -> static records (NDJSON);
* ``schema`` -- the JSON Schema of the records, or its Markdown reference;
* ``cache-server`` -- serve the cache REST API (:mod:`wmstats.serve`);
* ``serve`` -- the cache server and the UI server in one process;
* ``ui-server`` -- serve the monitoring page for a cache server;
* ``load`` -- fill a store from mock data or files (:mod:`wmstats.load`);
* ``bench`` -- run a benchmark (:data:`wmstats.bench.BENCHMARKS`);
* commands of installed plugins, from the ``wmstats.commands`` entry points
  (:mod:`wmstats.commands`): ``couch-seed`` (write mock documents into CouchDB,
  from the ``wmstats_couchdb`` plugin).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO

from wmstats._argtypes import count as _positive
from wmstats._version import __version__
from wmstats.inputs import InputError, Progress, read_documents
from wmstats.serialize import json_dumps

# InputError, Progress and read_documents live in wmstats.inputs; re-exported here
# for the callers that found them in this module.
__all__ = ["main", "build_parser", "read_documents", "InputError", "Progress"]

#: ``--records`` names -> record type names, in output order.
_RECORD_CHOICES = {
    "workflow": "Workflow",
    "site": "WorkflowSite",
    "task": "WorkflowTask",
    "task-site": "TaskSite",
    "dataset": "DatasetStats",
    "parentage": "ChainParentage",
    "transition": "RequestTransition",
    "chain": "ChainArgs",
    "agent-request": "AgentRequest",
    "agent": "Agent",
    "job-group": "JobGroup",
    "job-sample": "JobSample",
}


def _record_types(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return list(_RECORD_CHOICES.values())
    unknown = [n for n in names if n not in _RECORD_CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown record type(s) {', '.join(unknown) or value!r}; choose from "
            f"{', '.join(_RECORD_CHOICES)} or 'all'")
    return [_RECORD_CHOICES[n] for n in names]


def _open_output(path: str | None) -> TextIO:
    if path in (None, "-"):
        return sys.stdout
    return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller


# --------------------------------------------------------------------------- commands


def _cmd_mock(args: argparse.Namespace) -> int:
    from wmstats.mock import MockGenerator
    from wmstats.serialize import converter

    gen = MockGenerator(seed=args.seed)
    progress = Progress("workflows", args.workflows)
    out = _open_output(args.output)
    try:
        if args.dynamic:
            items: Iterable[Any] = gen.iter_documents(args.workflows, jobs=True)
            progress.label = "documents"
            progress.total = None
        else:
            items = _static_records(gen, args.workflows, args.records, progress)
        _write_values(out, items, args.format, progress if args.dynamic else None,
                      converter().unstructure)
    finally:
        if out is not sys.stdout:
            out.close()
    progress.done()
    return 0


def _static_records(gen: Any, n: int, types: list[str], progress: Progress) -> Iterator[Any]:
    tagged = len(types) > 1
    wanted = set(types)
    for bundle in gen.bundles(n):
        progress.step()
        for record in bundle.records():
            name = type(record).__name__
            if name in wanted:
                yield (name, record) if tagged else record
    if "Agent" in wanted:
        for agent in gen.agents():
            yield ("Agent", agent) if tagged else agent
    if wanted & {"JobGroup", "JobSample"}:
        for jobs in gen.iter_jobs(n):
            for record in jobs.records():
                name = type(record).__name__
                if name in wanted:
                    yield (name, record) if tagged else record


def _write_values(out: TextIO, items: Iterable[Any], fmt: str, progress: Progress | None,
                  unstructure: Callable[[Any], Any]) -> None:
    def encoded() -> Iterator[str]:
        for item in items:
            if progress is not None:
                progress.step()
            if isinstance(item, tuple):  # (record type name, record)
                value = {"RecordType": item[0], **unstructure(item[1])}
            elif isinstance(item, dict):
                value = item
            else:
                value = unstructure(item)
            yield json_dumps(value)

    if fmt == "json":
        out.write("[")
        for i, text in enumerate(encoded()):
            out.write(",\n" if i else "\n")
            out.write(text)
        out.write("\n]\n")
    else:
        batch: list[str] = []
        for text in encoded():
            batch.append(text)
            if len(batch) >= 1000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
    out.flush()


def _cmd_convert(args: argparse.Namespace) -> int:
    from wmstats.convert import DocumentConverter, Problem
    from wmstats.schema import COUNTER_FIELDS
    from wmstats.serialize import converter

    conv = DocumentConverter()
    progress = Progress("documents")
    files = args.files or ["-"]
    for path in files:
        name = "<stdin>" if path == "-" else path

        def bad_line(line_no: int, message: str, name: str = name) -> None:
            conv.problems.append(Problem(f"{name}:{line_no}", "", message))

        try:
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            print(f"wmstats convert: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        try:
            for doc in read_documents(stream, name, bad_line):
                conv.add(doc)
                progress.step()
        except InputError as exc:
            print(f"wmstats convert: {exc}", file=sys.stderr)
            return 2
        except UnicodeDecodeError as exc:
            print(f"wmstats convert: {name}: not UTF-8 text ({exc.reason})", file=sys.stderr)
            return 2
        finally:
            if stream is not sys.stdin:
                stream.close()
    progress.done()

    bundles = conv.bundles()
    counts = {"workflows": 0, "jobs": 0}

    def counted() -> Iterator[Any]:
        for bundle in bundles:
            counts["workflows"] += 1
            counts["jobs"] += sum(getattr(bundle.workflow, f) for f in COUNTER_FIELDS)
            yield bundle

    gen = _BundleSource(counted(), conv.agents(), conv.jobs())
    _write_values(sys.stdout, _static_records(gen, 0, args.records, Progress("workflows")),
                  "ndjson", None, converter().unstructure)
    for problem in conv.problems:
        print(f"problem: {problem}", file=sys.stderr)
    bad_docs = len({p.doc_id for p in conv.problems})
    print(f"wmstats convert: {counts['workflows']} workflows, {len(conv.agents())} agents, "
          f"{counts['jobs']} jobs; {len(conv.problems)} problems in {bad_docs} documents"
          + (f"; {conv.ignored} documents ignored" if conv.ignored else ""),
          file=sys.stderr)
    return 1 if conv.problems else 0


class _BundleSource:
    """Adapts converted bundles to the generator interface :func:`_static_records` uses."""

    def __init__(self, bundles: Iterable[Any], agents: list[Any],
                 jobs: Iterable[Any] = ()) -> None:
        self._bundles = bundles
        self._agents = agents
        self._jobs = jobs

    def bundles(self, _n: int) -> Iterable[Any]:
        return self._bundles

    def agents(self) -> list[Any]:
        return self._agents

    def iter_jobs(self, _n: int) -> Iterable[Any]:
        return self._jobs


def _cmd_schema(args: argparse.Namespace) -> int:
    from wmstats.jsonschema import json_schema, render_markdown

    text = render_markdown() if args.markdown else json.dumps(json_schema(), indent=2) + "\n"
    if args.check:
        try:
            with open(args.check, encoding="utf-8") as f:
                current = f.read()
        except OSError as exc:
            print(f"wmstats schema: cannot read {args.check}: {exc.strerror}", file=sys.stderr)
            return 1
        if current != text:
            print(f"wmstats schema: {args.check} is out of date; regenerate it with "
                  f"'wmstats schema {'--markdown ' if args.markdown else ''}-o {args.check}'",
                  file=sys.stderr)
            return 1
        return 0
    out = _open_output(args.output)
    try:
        out.write(text)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    from wmstats.bench import BENCHMARKS

    try:
        module = importlib.import_module(BENCHMARKS[args.benchmark])
    except ImportError as exc:
        print(f"wmstats bench {args.benchmark}: cannot import "
              f"{BENCHMARKS[args.benchmark]} ({exc}); is its plugin installed?",
              file=sys.stderr)
        return 2
    status: int = module.main(args.args)
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wmstats`` command."""
    parser = argparse.ArgumentParser(
        prog="wmstats", description="Static-schema WMStats: servers, stores, mock data, "
                        "conversion, schema, benchmarks.")
    parser.add_argument("--version", action="version", version=f"wmstats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mock = sub.add_parser("mock", help="generate mock workflows (static records or "
                                       "WMCore documents)")
    mock.add_argument("--workflows", "-n", type=_positive, default=1000,
                      help="number of workflows (default 1000)")
    mock.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    mock.add_argument("--dynamic", action="store_true",
                      help="emit WMCore documents (request, agent_request, agent_info, "
                           "jobsummary) instead of static records")
    mock.add_argument("--format", choices=("ndjson", "json"), default="ndjson",
                      help="NDJSON (default) or one JSON array")
    mock.add_argument("--records", type=_record_types, default=["Workflow"],
                      metavar="TYPES",
                      help="static record types, comma-separated: "
                           f"{', '.join(_RECORD_CHOICES)} or all (default workflow); with "
                           "more than one, each line gets a RecordType key")
    mock.add_argument("-o", "--output", help="output file (default stdout)")
    mock.set_defaults(func=_cmd_mock)

    convert = sub.add_parser(
        "convert", help="convert WMCore documents to static records (NDJSON on stdout)",
        description="Read WMCore documents (JSON array, JSON object keyed by id, single "
                    "document or NDJSON) and write static records as NDJSON. Problems go "
                    "to stderr. Exit status: 0 no problems, 1 some documents had "
                    "problems, 2 unusable input.")
    convert.add_argument("files", nargs="*", metavar="FILE",
                         help="input files ('-' or none: stdin)")
    convert.add_argument("--records", type=_record_types, default=["Workflow"],
                         metavar="TYPES",
                         help="record types to write, comma-separated: "
                              f"{', '.join(_RECORD_CHOICES)} or all (default workflow)")
    convert.set_defaults(func=_cmd_convert)

    schema = sub.add_parser("schema", help="print the JSON Schema of the static records")
    schema.add_argument("--markdown", action="store_true",
                        help="the human-readable reference (docs/schema.md) instead")
    schema.add_argument("--check", metavar="FILE",
                        help="exit 1 unless FILE holds exactly this output")
    schema.add_argument("-o", "--output", help="output file (default stdout)")
    schema.set_defaults(func=_cmd_schema)

    from wmstats import load
    from wmstats import serve as serve_cmd
    from wmstats.bench import BENCHMARKS

    cache = sub.add_parser("cache-server", help="serve the cache REST API (docs/http.md)")
    serve_cmd.add_cache_server_arguments(cache)
    cache.set_defaults(func=serve_cmd.run_cache_server)
    srv = sub.add_parser("serve", help="the cache server (port 8250) and the UI server "
                                       "(port 8251) in one process")
    serve_cmd.add_serve_arguments(srv)
    srv.set_defaults(func=serve_cmd.run_serve)
    ui = sub.add_parser("ui-server", help="serve the monitoring page for a cache server "
                                          "(docs/ui.md)")
    serve_cmd.add_ui_server_arguments(ui)
    ui.set_defaults(func=serve_cmd.run_ui_server)

    load_parser = sub.add_parser(
        "load", help="fill a store (memory://, sqlite:///path.db, couchdb://...) from "
                     "mock data or files",
        description="Fill a store from mock workflows or from files of WMCore documents "
                    "or static records; the snapshot is replaced atomically unless "
                    "--update is given.")
    load.add_arguments(load_parser)
    load_parser.set_defaults(func=load.run)

    bench = sub.add_parser("bench", help="run a benchmark (see 'wmstats bench NAME -h')",
                           add_help=True)
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS))
    bench.add_argument("args", nargs=argparse.REMAINDER,
                       help="options of that benchmark")
    bench.set_defaults(func=_cmd_bench)
    _plugin_commands(sub)
    return parser


def _plugin_commands(sub: Any) -> None:
    """A sub-parser for each plugin command, and for each known one that is missing
    (which then says what to install)."""
    from wmstats.commands import COMMANDS, CommandError

    taken = set(sub.choices)
    for name in sorted({*COMMANDS.available(), *COMMANDS.known} - taken):
        try:
            command = COMMANDS.load(name)()
        except CommandError as exc:
            parser = sub.add_parser(name, help=f"(not available: needs the "
                                               f"{COMMANDS.known.get(name, 'its')} plugin)")
            # Any arguments are taken, so that the command itself says what to install.
            parser.set_defaults(func=_unavailable(name, str(exc)), any_arguments=True)
            continue
        parser = sub.add_parser(name, help=command.help,
                                description=command.description or command.help)
        command.add_arguments(parser)
        parser.set_defaults(func=command.run)


def _unavailable(name: str, why: str) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(f"wmstats {name}: {why}", file=sys.stderr)
        return 2
    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        status: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (e.g. ``| head``): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
