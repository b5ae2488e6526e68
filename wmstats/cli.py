"""The ``wmstats`` command line.

Sub-commands: ``mock`` (generate data), ``convert`` (WMCore documents ->
static records), ``schema`` (JSON Schema / Markdown reference).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, TextIO

import ujson

from wmstats._argtypes import count as _positive
from wmstats._version import __version__
from wmstats.serialize import json_dumps

__all__ = ["main", "build_parser", "read_documents", "InputError", "Progress"]

#: ``--records`` names -> record type names, in output order.
_RECORD_CHOICES = {
    "workflow": "Workflow",
    "site": "WorkflowSite",
    "task": "WorkflowTask",
    "task-site": "TaskSite",
    "dataset": "DatasetStats",
    "parentage": "ChainParentage",
    "agent": "Agent",
}


class InputError(Exception):
    """The input is not JSON at all (exit status 2)."""


class Progress:
    """Progress on stderr, at most once a second, only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None = None,
                 stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.count = 0
        self._start = self._last = time.monotonic()

    def step(self, n: int = 1) -> None:
        self.count += n
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= 1.0:
                self._last = now
                self._show(now)

    def _show(self, now: float, end: str = "") -> None:
        rate = self.count / max(now - self._start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        self.stream.write(f"\r{self.label}: {self.count}{of} ({rate:,.0f}/s){end}")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self._show(time.monotonic(), "\n")


_json_dumps = json_dumps


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



# --------------------------------------------------------------------------- input


def read_documents(stream: IO[str], name: str = "<stdin>",
                   on_bad_line: Callable[[int, str], None] | None = None) -> Iterator[Any]:
    """Yield the documents of one input: a JSON array, a JSON object keyed by id
    (as ``reqmgr_requests_20.json``), a single document, or NDJSON.

    NDJSON is read line by line (constant memory); a line that is not JSON is
    passed to ``on_bad_line(line_number, message)`` and skipped.

    :raises InputError: when the input is not JSON at all.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        head: Any = ujson.loads(first)
    except ValueError:
        head = _NOT_PARSED
    rest = stream.readline() if head is not _NOT_PARSED else ""
    while rest and not rest.strip():
        rest = stream.readline()
    if head is not _NOT_PARSED and rest:  # two JSON values on two lines: NDJSON
        yield from _ndjson(head, rest, stream, name, on_bad_line)
        return
    text = first + rest + stream.read()
    try:
        value = ujson.loads(text) if head is _NOT_PARSED else head
    except ValueError as exc:
        raise InputError(f"{name}: not JSON, a JSON array or NDJSON ({exc})") from None
    if isinstance(value, list):
        yield from value
    elif isinstance(value, dict) and value and not _looks_like_document(value) and all(
            isinstance(v, dict) for v in value.values()):
        for key, doc in value.items():
            yield doc if "_id" in doc else {"_id": key, **doc}
    else:
        yield value


_NOT_PARSED = object()


def _looks_like_document(value: dict[str, Any]) -> bool:
    return any(k in value for k in ("_id", "type", "RequestName", "workflow", "agent_url"))


def _ndjson(head: Any, second: str, stream: IO[str], name: str,
            on_bad_line: Callable[[int, str], None] | None) -> Iterator[Any]:
    yield head
    line_no = 1
    for line in _chain_first(second, stream):
        line_no += 1
        if not line.strip():
            continue
        try:
            yield ujson.loads(line)
        except ValueError as exc:
            if on_bad_line is None:
                raise InputError(f"{name}:{line_no}: not JSON ({exc})") from None
            on_bad_line(line_no, f"not JSON ({exc}); line skipped")


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


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
            items: Iterable[Any] = gen.iter_documents(args.workflows)
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
            yield _json_dumps(value)

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

    gen = _BundleSource(counted(), conv.agents())
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

    def __init__(self, bundles: Iterable[Any], agents: list[Any]) -> None:
        self._bundles = bundles
        self._agents = agents

    def bundles(self, _n: int) -> Iterable[Any]:
        return self._bundles

    def agents(self) -> list[Any]:
        return self._agents


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


#: ``wmstats bench NAME`` -> module in :mod:`wmstats.bench` with a ``main(argv)``.
_BENCHMARKS = {
    "representation": "wmstats.bench.representation",
    "stores": "wmstats.bench.stores",
    "server": "wmstats.bench.server",
    "ui": "wmstats.bench.ui",
    "couchdb-source": "wmstats_couchdb.bench_source",
    "report": "wmstats.bench.report",
}


def _cmd_couch_seed(args: argparse.Namespace) -> int:
    try:
        from wmstats_couchdb import seed
    except ImportError as exc:
        print(f"wmstats couch-seed: needs the wmstats_couchdb plugin, which is not installed "
              f"({exc}); install wmstats_couchdb (it ships with wmstats, in "
              f"plugins/wmstats_couchdb)", file=sys.stderr)
        return 2
    return seed.run(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    try:
        module = importlib.import_module(_BENCHMARKS[args.benchmark])
    except ImportError as exc:
        print(f"wmstats bench {args.benchmark}: cannot import "
              f"{_BENCHMARKS[args.benchmark]} ({exc}); is its plugin installed?",
              file=sys.stderr)
        return 2
    status: int = module.main(args.args)
    return status


def _couch_seed_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from wmstats_couchdb.seed import add_arguments
    except ImportError:
        # Parsed anyway, so that the command itself can say what to install.
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    add_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``wmstats`` command."""
    parser = argparse.ArgumentParser(
        prog="wmstats", description="Static-schema WMStats: mock data, conversion, schema.")
    parser.add_argument("--version", action="version", version=f"wmstats {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mock = sub.add_parser("mock", help="generate mock workflows (static records or "
                                       "WMCore documents)")
    mock.add_argument("--workflows", "-n", type=_positive, default=1000,
                      help="number of workflows (default 1000)")
    mock.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    mock.add_argument("--dynamic", action="store_true",
                      help="emit WMCore documents (request, agent_request, agent_info) "
                           "instead of static records")
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

    seed_parser = sub.add_parser(
        "couch-seed", help="write mock WMCore documents into CouchDB (for a --source server)",
        description="Write the mock generator's ReqMgr2 request documents and agent_request/"
                    "agent_info documents into CouchDB with _bulk_docs, as a WMStats "
                    "--source server reads them (needs the wmstats_couchdb plugin).")
    _couch_seed_arguments(seed_parser)
    seed_parser.set_defaults(func=_cmd_couch_seed)

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
    bench.add_argument("benchmark", choices=sorted(_BENCHMARKS))
    bench.add_argument("args", nargs=argparse.REMAINDER,
                       help="options of that benchmark")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
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
