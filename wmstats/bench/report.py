"""Benchmark report: every benchmark at several sizes, with tables, plots and targets.

``wmstats bench report`` runs, for each size (default 1,000 / 10,000 / 100,000
mock workflows; ``--quick``: 200 / 1,000 with fewer repetitions, for CI), each
benchmark in its own subprocess (so memory figures never mix):

* ``representation`` -- dynamic documents vs static records (bytes, parse and
  serialize CPU, resident memory held as Python objects, converter docs/s);
* ``converter`` -- converter speed vs tasks/sites per workflow (once);
* ``stores`` -- memory, sqlite and CouchDB (a pouchdb-server started for the run,
  only up to ``--couchdb-max`` workflows: its load is slow);
* ``server`` -- the cache server over loopback (pages, full streams, concurrency,
  server RSS);
* ``production`` -- the same on production-sized mock workflows (up to 6 tasks, 12
  sites and 3 agents each; ``--mock-size production``), memory store, at the
  largest size only: what the server holds and serves with realistic documents;
* ``couchdb-source``, ``couchdb-restart`` and ``ui`` where they can run (the
  CouchDB source with the ``wmstats_couchdb`` plugin and a pouchdb-server, on the
  memory store, and on the sqlite store with its warm restarts timed:
  ``wmstats bench couchdb-source --store sqlite``; the UI with playwright, which a
  plain install lacks, and Chromium; with ``--quick`` at the smallest size only),
  rendered generically; the report lists the sections left out and why;
* ``reqmon`` where reqmon 2.4.5.9 is installed (``ci/install-reqmon.sh`` or
  ``$WMSTATS_REQMON_PYTHON``) and a pouchdb-server found: ``wmstats bench wmcore
  --fill-only`` up to ``--reqmon-max`` workflows (default 40,000; at 1,000 and
  10,000 of the default sizes), issue 13's fill and bytes targets against reqmon.
  ``--quick`` leaves it out unless ``--sections`` names it.

It then writes ``OUT/benchmarks.md`` (tables, the design's targets,
growth exponents), SVG plots of the scaling curves in ``OUT/bench/`` and every
figure with the machine description in ``OUT/bench/results.json``; and prints
the tables.  Timings are never pass/fail: the targets table says what is met.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import attrs

from wmstats.bench import BENCHMARKS
from wmstats.bench._common import machine, write_json
from wmstats.bench._render import (
    OPTIONAL,
    benchmark_of,
    build_markdown,
    earlier_invocations,
    invocation,
    plots,
    print_tables,
    targets,
)

__all__ = ["SECTIONS", "Config", "Run", "main", "merge", "plan", "reqmon_missing", "run_all",
           "unavailable", "write_report"]

#: The sections, in the order of the report.
SECTIONS: Final = ("representation", "converter", "stores", "server", "production",
                   "couchdb-source", "couchdb-restart", "ui", "reqmon")


@attrs.frozen
class Config:
    """What to run.  :meth:`full` and :meth:`quick_run` are the two presets."""

    sizes: tuple[int, ...]
    sections: tuple[str, ...]
    repeat: int = 5
    mid_repeat: int = 3
    large_repeat: int = 1
    rounds: int = 30
    couchdb_rounds: int = 5
    requests: int = 200
    streams: int = 20
    concurrency_seconds: float = 5.0
    couchdb_max: int = 10_000
    couchdb: bool = True
    reqmon_max: int = 40_000
    shape_workflows: int = 2_000
    rss_max: int = 10_000
    seed: int = 0
    timeout: float = 3 * 3600.0
    quick: bool = False

    @classmethod
    def full(cls, sections: Sequence[str]) -> Config:
        """The default: 1k / 10k / 100k."""
        return cls(sizes=(1_000, 10_000, 100_000), sections=tuple(sections))

    @classmethod
    def quick_run(cls, sections: Sequence[str]) -> Config:
        """The CI smoke run (about a minute here): small sizes, few repetitions."""
        return cls(sizes=(200, 1_000), sections=tuple(sections), repeat=1, mid_repeat=1,
                   large_repeat=1, rounds=3, couchdb_rounds=2, requests=10, streams=20,
                   concurrency_seconds=0.3, couchdb_max=200, shape_workflows=100,
                   timeout=600.0, quick=True)

    def repeat_at(self, size: int) -> int:
        """Timed repetitions at ``size``: fewer for larger sizes (one pass is long)."""
        if size <= 1_000:
            return self.repeat
        return min(self.repeat, self.mid_repeat if size <= 10_000 else self.large_repeat)


@attrs.frozen
class Run:
    """One benchmark subprocess: ``wmstats bench BENCHMARK --workflows N ARGS``."""

    section: str
    benchmark: str
    workflows: int
    args: tuple[str, ...] = ()

    def command(self, json_path: Path) -> list[str]:
        """The command line."""
        return [sys.executable, "-m", "wmstats", "bench", self.benchmark,
                "--workflows", str(self.workflows), *self.args, "--json", str(json_path)]


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def chromium() -> str | None:
    """A Chromium executable, if one is found (as the UI benchmark looks)."""
    from wmstats.testing.ui_harness import chromium_path

    return chromium_path()


def pouchdb_available() -> bool:
    """Whether a pouchdb-server can be started here (its bin script and node found)."""
    from wmstats.testing.couchdb_server import CouchServerError, find_pouchdb_bin

    try:
        find_pouchdb_bin()
    except CouchServerError:
        return False
    return shutil.which("node") is not None


def reqmon_missing() -> str | None:
    """Why reqmon 2.4.5.9 cannot be run here (``None`` when it can)."""
    from wmstats.testing.reqmon import ReqmonError, find_reqmon_python

    try:
        find_reqmon_python()
    except ReqmonError as exc:
        return str(exc)
    return None


def unavailable(section: str) -> str | None:
    """Why ``section`` cannot run here (``None`` when it can)."""
    if section not in OPTIONAL:
        return None
    benchmark = benchmark_of(section)[0]
    if benchmark not in BENCHMARKS or not _module_exists(BENCHMARKS[benchmark]):
        return f"'wmstats bench {benchmark}' is not installed"
    if not _module_exists(OPTIONAL[section]):
        return f"{OPTIONAL[section]} is not installed"
    if section == "ui" and chromium() is None:
        return "no Chromium found"
    if benchmark == "couchdb-source" or section == "reqmon":
        if not pouchdb_available():
            return "no pouchdb-server found"
    if section == "reqmon":
        return reqmon_missing()
    return None


def plan(config: Config) -> list[Run]:
    """Every benchmark subprocess of a report, smallest size first."""
    runs: list[Run] = []
    for size in config.sizes:
        repeat = str(config.repeat_at(size))
        for section in config.sections:
            if section == "representation":
                parts = "main,rss" if size <= config.rss_max else "main"
                runs.append(Run(section, "representation", size,
                                ("--repeat", repeat, "--parts", parts, "--seed",
                                 str(config.seed))))
            elif section == "converter" and size == config.sizes[0]:
                runs.append(Run(section, "representation", config.shape_workflows,
                                ("--repeat", str(config.repeat), "--parts", "shapes",
                                 "--seed", str(config.seed))))
            elif section == "stores":
                backends = ["memory", "sqlite"]
                if config.couchdb and size <= config.couchdb_max:
                    backends.append("couchdb")
                runs.append(Run(section, "stores", size,
                                ("--backends", ",".join(backends), "--rounds",
                                 str(config.rounds), "--couchdb-rounds",
                                 str(config.couchdb_rounds), "--seed", str(config.seed))))
            elif section == "server":
                runs.append(Run(section, "server", max(size, 100),
                                ("--requests", str(config.requests), "--streams",
                                 str(config.streams), "--concurrency-seconds",
                                 str(config.concurrency_seconds), "--seed", str(config.seed))))
            elif section == "production" and size == config.sizes[-1]:
                runs.append(Run(section, "server", max(size, 100),
                                ("--store", "memory", "--mock-size", "production",
                                 "--requests", str(config.requests), "--streams",
                                 str(min(config.streams, 5)), "--clients", "16",
                                 "--concurrency-seconds", str(config.concurrency_seconds),
                                 "--seed", str(config.seed))))
            elif section in OPTIONAL and config.quick and size != config.sizes[0]:
                continue  # the smoke run: the other helpers' benchmarks once, small
            elif section == "couchdb-source" and size <= config.couchdb_max:
                runs.append(Run(section, section, size))
            elif section == "couchdb-restart" and size <= config.couchdb_max:
                # The figures before the restarts are the couchdb-source section's (on
                # the memory store): few of them here.
                benchmark, options = benchmark_of(section)
                runs.append(Run(section, benchmark, size,
                                (*options, "--updates", "10", "--bulk", "0")))
            elif section == "ui":
                runs.append(Run(section, section, size))
            elif section == "reqmon" and size <= config.reqmon_max:
                benchmark, options = benchmark_of(section)
                runs.append(Run(section, benchmark, size,
                                (*options, "--repeat", repeat, "--seed", str(config.seed))))
    return runs


def _run_one(command: Sequence[str], log: IO[str], timeout: float) -> int:
    """Run one benchmark in its own session; on timeout stop its whole process group
    (the servers it started too), by its PID.  The exit status, -1 on timeout."""
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 30.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        return -1


def run_all(config: Config, workdir: Path, log: IO[str], progress: IO[str] | None = None,
            partial: Path | None = None) -> dict[str, Any]:
    """Run every benchmark of :func:`plan`; the collected results document.

    :param partial: where to write the results so far after each run (to rebuild a
        report from an interrupted run with ``--from-json``).
    """
    progress = progress or sys.stderr
    started = time.monotonic()
    results: dict[str, Any] = {"report": "wmstats bench report", "format": 1,
                               "machine": machine(), "config": attrs.asdict(config),
                               "sections": {}, "runs": []}
    for run in plan(config):
        path = workdir / f"{run.section}-{run.workflows}.json"
        command = run.command(path)
        print(f"[{run.section} {run.workflows:,}] running...", file=progress, flush=True)
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        begin = time.monotonic()
        status = _run_one(command, log, config.timeout)
        seconds = time.monotonic() - begin
        entry: dict[str, Any] = {
            "section": run.section, "workflows": run.workflows, "seconds": round(seconds, 1),
            "status": status, "command": " ".join(command[1:]),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            # the invocation it belongs to, once merged with others (its start)
            "invocation": results["machine"].get("date")}
        if status == 0 and path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            document.pop("machine", None)
            results["sections"].setdefault(run.section, {})[str(run.workflows)] = document
        else:
            entry["error"] = "timed out" if status == -1 else f"exit status {status}"
        results["runs"].append(entry)
        results["duration_s"] = round(time.monotonic() - started, 1)
        if partial is not None:
            write_json(partial, results)
        print(f"[{run.section} {run.workflows:,}] {entry.get('error', 'done')} in "
              f"{seconds:.0f} s", file=progress, flush=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    return results


def merge(previous: Mapping[str, Any], latest: dict[str, Any]) -> dict[str, Any]:
    """``latest`` plus every section/size of ``previous`` that ``latest`` did not run;
    ``merged_from`` lists every earlier invocation (those ``previous`` merged too)."""
    for section, by_size in previous.get("sections", {}).items():
        for size, document in by_size.items():
            latest["sections"].setdefault(section, {}).setdefault(size, document)
    latest["runs"] = [*previous.get("runs", []), *latest["runs"]]
    latest["duration_s"] = round(previous.get("duration_s", 0) + latest.get("duration_s", 0), 1)
    latest["config"]["sizes"] = sorted(set(latest["config"].get("sizes", ()))
                                       | set(previous.get("config", {}).get("sizes", ())))
    latest["merged_from"] = [*earlier_invocations(previous), invocation(previous)]
    return latest


def write_report(results: dict[str, Any], out: Path, json_path: Path | None = None) -> Path:
    """Write the Markdown, the SVG plots and the JSON under ``out``; the Markdown path."""
    svg_dir = out / "bench"
    svg_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets(results)
    drawn = plots(results)
    for stale in svg_dir.glob("*.svg"):
        if stale.name not in drawn:
            stale.unlink()
    for name, (_title, svg) in drawn.items():
        (svg_dir / name).write_text(svg, encoding="utf-8")
    results["plots"] = {name: title for name, (title, _svg) in drawn.items()}
    json_path = json_path or svg_dir / "results.json"
    write_json(json_path, results)
    markdown = out / "benchmarks.md"
    markdown.write_text(build_markdown(results, Path(os.path.relpath(json_path, out)).as_posix()),
                        encoding="utf-8")
    return markdown


# --------------------------------------------------------------------------- command


def _sizes(text: str) -> tuple[int, ...]:
    sizes = []
    for item in text.split(","):
        item = item.strip().lower().replace("_", "")
        factor = 1000 if item.endswith("k") else 1
        try:
            value = int(item.rstrip("k")) * factor
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a size: {item!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"sizes must be at least 1: {item!r}")
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("no size given")
    return tuple(sorted(set(sizes)))


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(unknown)}; known: "
                                         f"{', '.join(SECTIONS)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmstats bench report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke size: 200 and 1,000 workflows, few repetitions")
    parser.add_argument("--sizes", type=_sizes,
                        help="comma-separated workflow counts, e.g. 1k,10k,100k "
                             "(default 1000,10000,100000; --quick: 200,1000)")
    parser.add_argument("--out", type=Path, default=Path("docs"),
                        help="folder for benchmarks.md and bench/*.svg, bench/results.json "
                             "(default docs)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="the results JSON (default OUT/bench/results.json)")
    parser.add_argument("--sections", type=_names,
                        help=f"only these sections (from {', '.join(SECTIONS)}; default: "
                             f"all, the optional ones when installed)")
    parser.add_argument("--skip", type=_names, default=[], help="sections to leave out")
    parser.add_argument("--couchdb-max", type=int,
                        help="largest size CouchDB is measured at (default 10000; "
                             "--quick: 200)")
    parser.add_argument("--reqmon-max", type=int,
                        help="largest size the reqmon section runs at (default 40000; "
                             "about 12 minutes at 40,000 on a quiet 2-core machine)")
    parser.add_argument("--no-couchdb", action="store_true",
                        help="leave the CouchDB store out of the stores section")
    parser.add_argument("--repeat", type=int, help="timed repetitions up to 10,000 "
                        "workflows (default 5; --quick: 1)")
    parser.add_argument("--concurrency-seconds", type=float,
                        help="seconds per concurrency level (default 5; --quick: 0.3)")
    parser.add_argument("--rss-max", type=int,
                        help="largest size the representation RSS variants (per 10,000 "
                             "workflows) run at (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, metavar="FILE",
                        help="the benchmarks' own output (default: a temporary file)")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="do not run: rebuild the report from a results JSON")
    parser.add_argument("--merge", type=Path, metavar="FILE",
                        help="keep the sections and sizes of this earlier results JSON that "
                             "this run does not run (e.g. add --sections ui to a full run)")
    return parser


def _select(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    wanted = list(args.sections or SECTIONS)
    skipped: dict[str, str] = {}
    for section in list(wanted):
        if section in args.skip:
            wanted.remove(section)
            continue
        why = unavailable(section)
        if not why and section == "reqmon" and args.quick and not args.sections:
            why = ("--quick leaves it out (reqmon's start and fill are the slow part; "
                   "--sections reqmon runs it)")
        if why:
            wanted.remove(section)
            skipped[section] = why
    return wanted, skipped


def _config(args: argparse.Namespace, sections: Sequence[str]) -> Config:
    base = Config.quick_run(sections) if args.quick else Config.full(sections)
    changes: dict[str, Any] = {"seed": args.seed}
    for name in ("sizes", "couchdb_max", "reqmon_max", "repeat", "concurrency_seconds",
                 "rss_max"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    from wmstats.testing.couchdb_server import in_ci

    if args.no_couchdb or (args.quick and not in_ci() and not pouchdb_available()):
        changes["couchdb"] = False
    elif not pouchdb_available():
        raise SystemExit("wmstats bench report: no pouchdb-server found for the CouchDB "
                         "store (set $WMSTATS_POUCHDB_BIN or run ci/install-pouchdb.sh), or "
                         "pass --no-couchdb")
    return attrs.evolve(base, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench report``: see the module docstring."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        for name in ("couchdb_max", "reqmon_max", "repeat", "rss_max"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1")
        sections, skipped = _select(args)
        config = _config(args, sections)
        if not config.couchdb and "stores" in sections:
            skipped.setdefault("stores: couchdb",
                               "no pouchdb-server found" if not args.no_couchdb
                               else "--no-couchdb")
        with tempfile.TemporaryDirectory(prefix="wmstats-report-") as tmp:
            log_path = args.log or Path(tmp) / "run.log"
            partial = log_path.with_name(log_path.name + ".partial.json") if args.log else None
            print(f"wmstats bench report: {len(plan(config))} runs, output of each in "
                  f"{log_path}" + (f", results so far in {partial}" if partial else ""),
                  file=sys.stderr)
            with open(log_path, "w", encoding="utf-8") as log:
                results = run_all(config, Path(tmp), log, partial=partial)
            if any(r.get("error") for r in results["runs"]) and args.log is None:
                sys.stderr.write(Path(log_path).read_text(encoding="utf-8")[-20_000:])
        results["skipped"] = skipped
        results["command"] = "wmstats bench report " + " ".join(
            argv if argv is not None else sys.argv[1:])
        if args.merge:
            previous = json.loads(args.merge.read_text(encoding="utf-8"))
            results = merge(previous, results)
            results["skipped"] = {k: v for k, v in skipped.items()
                                  if k not in results["sections"]}
    markdown = write_report(results, args.out, args.json)
    print_tables(results)
    print(f"\nreport: {markdown}; plots in {args.out / 'bench'}; figures in "
          f"{args.json or args.out / 'bench' / 'results.json'}")
    return 1 if any(r.get("error") for r in results.get("runs", [])) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
