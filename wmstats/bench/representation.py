"""Benchmark: dynamic WMCore documents vs static records, and converter speed.

``wmstats bench representation --workflows 10000`` reports, for the same mock
workflows in both forms (the dynamic documents: request + ``agent_request`` +
``agent_info``; the static records: every record of every bundle + the agents):

* bytes as NDJSON, raw and gzip (level 1, as the cache server sends it), and of the ``Workflow`` records alone
  (what a table page ships);
* parse CPU (``ujson`` and, for reference, the standard library ``json``) and
  serialize CPU (``ujson.dumps`` of the documents; ``unstructure`` +
  ``ujson.dumps`` of the records, as the cache server does), measured chunk by
  chunk (``--chunk`` workflows, so memory stays bounded at any size): median
  over ``--repeat`` runs after a warm-up, with min and max;
* converter throughput over the whole set (documents per second, parse excluded);
* resident memory of N workflows held as Python objects -- dynamic dicts, their
  JSON text, static bundles, ``Workflow`` records alone -- each built in a fresh
  subprocess (``VmRSS`` after minus before, after ``gc.collect()``), also per
  10,000 workflows;
* with ``--parts shapes``: converter documents/s as the number of tasks and sites
  per workflow grows (``MockGenerator(max_tasks=T, max_sites=S)``, ``--shapes``).

CPU times are process CPU seconds (``time.process_time``).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import ujson

from wmstats.bench._common import envelope, rss_kib, write_json
from wmstats.convert import DocumentConverter
from wmstats.mock import MockGenerator
from wmstats.serialize import converter

__all__ = ["DEFAULT_SHAPES", "RSS_VARIANTS", "held_rss", "main", "measure", "measure_shapes"]

#: ``max_tasks x max_sites`` combinations for the converter scaling (``10x30`` is the
#: mock generator's default).
DEFAULT_SHAPES: Final = "1x1,3x5,10x30,20x60"

#: What :func:`held_rss` can hold: name -> description.
RSS_VARIANTS: Final = {
    "dynamic_dicts": "WMCore documents as dicts (what WMStats holds today)",
    "dynamic_text": "WMCore documents as JSON text (bytes)",
    "static_records": "static attrs records (whole bundles + agents)",
    "static_workflows": "static Workflow records alone",
}

def _gzip() -> Any:
    return zlib.compressobj(1, zlib.DEFLATED, 31)  # the cache server's level


class _Timings:
    """Per-chunk CPU times of one figure; summed over chunks."""

    def __init__(self) -> None:
        self.p50 = self.low = self.high = 0.0

    def add(self, fn: Callable[[], object], repeat: int, warm: bool) -> None:
        if warm:
            fn()
        times = []
        for _ in range(max(1, repeat)):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        self.p50 += statistics.median(times)
        self.low += min(times)
        self.high += max(times)

    def figures(self, name: str) -> dict[str, float]:
        return {f"{name}_s": self.p50, f"{name}_s_min": self.low, f"{name}_s_max": self.high}


def _parse_all(loads: Callable[[bytes], Any], lines: Sequence[bytes]) -> None:
    for line in lines:
        loads(line)


def _dump_all(dumps: Callable[[Any], Any], objects: Iterable[Any]) -> None:
    for obj in objects:
        dumps(obj)


def measure(workflows: int, seed: int = 0, repeat: int = 5, chunk: int = 10_000,
            json_cap: int = 10_000) -> dict[str, float]:
    """Measure both representations of ``workflows`` mock workflows.

    :param chunk: workflows per measured chunk (bounds memory).
    :param json_cap: the standard library ``json`` (a reference: slow) is timed on
        the first chunks up to this many workflows only; its figures are also given
        per workflow.
    :returns: a flat dict of figures (counts, bytes, CPU seconds, rates, ratios).
    """
    gen = MockGenerator(seed=seed)
    unstructure = converter().unstructure
    totals: dict[str, float] = dict.fromkeys(
        ("documents", "records", "dynamic_bytes", "static_bytes", "static_workflow_only_bytes"),
        0)
    gz = {"dynamic": _gzip(), "static": _gzip(), "static_workflow_only": _gzip()}
    gz_bytes = dict.fromkeys(gz, 0)
    timings: dict[str, _Timings] = {}
    all_dyn_lines: list[bytes] = []
    json_workflows = 0

    def timing(name: str) -> _Timings:
        return timings.setdefault(name, _Timings())

    for start in range(0, workflows, chunk):
        count = min(chunk, workflows - start)
        docs = [d for i in range(start, start + count) for d in gen.documents(i)]
        bundles = list(gen.bundles(count, start))
        records: list[Any] = [r for b in bundles for r in b.records()]
        if start == 0:
            docs[:0] = gen.agent_documents()
            records += gen.agents()
        dyn_lines = [ujson.dumps(d).encode() for d in docs]
        sta_lines = [ujson.dumps(unstructure(r)).encode() for r in records]
        wf_lines = [ujson.dumps(unstructure(b.workflow)).encode() for b in bundles]
        for kind, lines in (("dynamic", dyn_lines), ("static", sta_lines),
                            ("static_workflow_only", wf_lines)):
            text = b"\n".join(lines) + b"\n"
            totals[f"{kind}_bytes"] += len(text)
            gz_bytes[kind] += len(gz[kind].compress(text))
        totals["documents"] += len(docs)
        totals["records"] += len(records)
        warm = start == 0
        timing("dynamic_parse_ujson").add(lambda: _parse_all(ujson.loads, dyn_lines), repeat,
                                          warm)
        timing("static_parse_ujson").add(lambda: _parse_all(ujson.loads, sta_lines), repeat,
                                         warm)
        timing("dynamic_serialize_ujson").add(lambda: _dump_all(ujson.dumps, docs), repeat,
                                              warm)
        timing("static_serialize_ujson").add(
            lambda: _dump_all(lambda r: ujson.dumps(unstructure(r)), records), repeat, warm)
        if start < json_cap:  # the standard library, for reference, on a prefix only
            json_workflows += count
            timing("dynamic_parse_json").add(lambda: _parse_all(json.loads, dyn_lines),
                                             repeat, warm)
            timing("static_parse_json").add(lambda: _parse_all(json.loads, sta_lines),
                                            repeat, warm)
            timing("dynamic_serialize_json").add(lambda: _dump_all(json.dumps, docs), repeat,
                                                 warm)
            timing("static_serialize_json").add(
                lambda: _dump_all(lambda r: json.dumps(unstructure(r)), records), repeat, warm)
        all_dyn_lines += dyn_lines
        del docs, bundles, records, sta_lines, wf_lines
    for kind, compressor in gz.items():
        gz_bytes[kind] += len(compressor.flush())
        totals[f"{kind}_gzip_bytes"] = gz_bytes[kind]

    convert = _convert_times(all_dyn_lines, repeat)
    del all_dyn_lines
    gc.collect()
    figures: dict[str, float] = {"workflows": workflows, "json_workflows": json_workflows,
                                 **totals}
    for name, t in timings.items():
        figures.update(t.figures(name))
        counted = json_workflows if name.endswith("_json") else workflows
        figures[f"{name}_us_per_workflow"] = t.p50 / max(1, counted) * 1e6
    figures.update({
        "convert_s": statistics.median(convert),
        "convert_s_min": min(convert),
        "convert_s_max": max(convert),
    })
    convert_s = figures["convert_s"]
    if convert_s > 0:
        figures["convert_docs_per_s"] = totals["documents"] / convert_s
        figures["convert_workflows_per_s"] = workflows / convert_s
    for key in ("bytes", "gzip_bytes", "parse_ujson_s", "parse_json_s", "serialize_ujson_s",
                "serialize_json_s"):  # the json ones: same prefix for both, so comparable
        dyn = figures[f"dynamic_{key}"]
        if dyn:
            figures[f"static_over_dynamic_{key}"] = figures[f"static_{key}"] / dyn
    for key in ("bytes", "gzip_bytes"):
        figures[f"static_workflow_only_over_dynamic_{key}"] = (
            figures[f"static_workflow_only_{key}"] / figures[f"dynamic_{key}"])
    if workflows:
        figures["dynamic_bytes_per_workflow"] = figures["dynamic_bytes"] / workflows
        figures["static_bytes_per_workflow"] = figures["static_bytes"] / workflows
    return figures


def _convert_times(lines: Sequence[bytes], repeat: int) -> list[float]:
    """CPU seconds to convert every document (parsed just before, parse not counted)."""
    sample = lines[: min(len(lines), 2000)]
    _convert_once(sample)  # warm-up on a sample: the full set may be large
    runs = max(1, repeat if len(lines) <= 200_000 else min(repeat, 3))
    return [_convert_once(lines) for _ in range(runs)]


def _convert_once(lines: Sequence[bytes]) -> float:
    conv = DocumentConverter()
    loads = ujson.loads
    clock = time.process_time
    spent = 0.0
    for line in lines:
        doc = loads(line)
        start = clock()
        conv.add(doc)
        spent += clock() - start
    start = clock()
    for _ in conv.bundles():
        pass
    conv.agents()
    spent += clock() - start
    del conv
    gc.collect()
    return spent


def _build(variant: str, workflows: int, seed: int) -> Any:
    gen = MockGenerator(seed=seed)
    if variant == "dynamic_dicts":
        return list(gen.iter_documents(workflows))
    if variant == "dynamic_text":
        return [ujson.dumps(d).encode() for d in gen.iter_documents(workflows)]
    if variant == "static_records":
        return list(gen.bundles(workflows)), gen.agents()
    if variant == "static_workflows":
        return [b.workflow for b in gen.bundles(workflows)]
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(RSS_VARIANTS)}")


def held_rss(variant: str, workflows: int, seed: int = 0) -> dict[str, float]:
    """Resident memory of ``workflows`` workflows held as ``variant``, in this process.

    Call it in a fresh process (:func:`main` does): the figure is the growth of
    ``VmRSS`` while building and keeping the objects.
    """
    gc.collect()
    before = rss_kib().get("VmRSS", 0)
    held = _build(variant, workflows, seed)
    gc.collect()
    after = rss_kib()
    mib = (after.get("VmRSS", 0) - before) / 1024
    del held
    return {"held_mib": mib, "per_10k_mib": mib * 10_000 / max(1, workflows),
            "peak_mib": after.get("VmHWM", 0) / 1024}


def _rss_in_subprocesses(workflows: int, seed: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for variant in RSS_VARIANTS:
        done = subprocess.run([sys.executable, "-m", "wmstats.bench.representation",
                               "--rss-variant", variant, "--workflows", str(workflows),
                               "--seed", str(seed)], stdout=subprocess.PIPE, check=True)
        for key, value in json.loads(done.stdout).items():
            figures[f"rss_{variant}_{key}"] = value
    dyn = figures.get("rss_dynamic_dicts_held_mib")
    if dyn:
        figures["static_over_dynamic_rss"] = figures["rss_static_records_held_mib"] / dyn
        figures["static_workflows_over_dynamic_rss"] = (
            figures["rss_static_workflows_held_mib"] / dyn)
    return figures


def parse_shapes(spec: str) -> list[tuple[int, int]]:
    """``"1x1,10x30"`` -> ``[(1, 1), (10, 30)]`` (max_tasks x max_sites)."""
    shapes = []
    for item in spec.split(","):
        tasks, sep, sites = item.strip().partition("x")
        if not sep or not tasks.isdigit() or not sites.isdigit() or not int(tasks) or \
                not int(sites):
            raise ValueError(f"bad shape {item!r}: expected TASKSxSITES, e.g. 10x30")
        shapes.append((int(tasks), int(sites)))
    return shapes


def measure_shapes(workflows: int, shapes: Sequence[tuple[int, int]], seed: int = 0,
                   repeat: int = 3) -> dict[str, float]:
    """Converter speed for each ``(max_tasks, max_sites)`` over ``workflows`` workflows."""
    figures: dict[str, float] = {"shape_workflows": workflows}
    for tasks, sites in shapes:
        gen = MockGenerator(seed=seed, max_tasks=tasks, max_sites=sites)
        lines = [ujson.dumps(d).encode() for d in gen.iter_documents(workflows)]
        records = sum(len(list(b.records())) for b in gen.bundles(workflows))
        times = _convert_times(lines, repeat)
        seconds = statistics.median(times)
        key = f"shape_{tasks}x{sites}"
        figures[f"{key}_docs_per_workflow"] = len(lines) / workflows
        figures[f"{key}_records_per_workflow"] = records / workflows
        figures[f"{key}_kib_per_workflow"] = sum(map(len, lines)) / 1024 / workflows
        figures[f"{key}_convert_s"] = seconds
        if seconds > 0:
            figures[f"{key}_docs_per_s"] = len(lines) / seconds
            figures[f"{key}_workflows_per_s"] = workflows / seconds
        figures[f"{key}_us_per_workflow"] = seconds / workflows * 1e6
    return figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmstats bench representation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", "-n", type=int, default=10_000,
                        help="mock workflows (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed repetitions per figure (default 5)")
    parser.add_argument("--chunk", type=int, default=10_000,
                        help="workflows per measured chunk (default 10000)")
    parser.add_argument("--json-cap", type=int, default=10_000,
                        help="time the standard library json on this many workflows at most "
                             "(default 10000)")
    parser.add_argument("--parts", default="main,rss",
                        help="comma-separated, from main, rss, shapes (default main,rss)")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES,
                        help=f"max_tasks x max_sites for the shapes part "
                             f"(default {DEFAULT_SHAPES})")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--rss-variant", choices=sorted(RSS_VARIANTS), help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark: prints the figures (and writes JSON with ``--json``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.workflows < 1 or args.repeat < 1 or args.chunk < 1:
        parser.error("--workflows, --repeat and --chunk must be at least 1")
    if args.rss_variant:
        print(json.dumps(held_rss(args.rss_variant, args.workflows, args.seed)))
        return 0
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"main", "rss", "shapes"}:
        parser.error(f"--parts: expected main, rss and/or shapes, got {args.parts!r}")
    try:
        shapes = parse_shapes(args.shapes)
    except ValueError as exc:
        parser.error(str(exc))
    figures: dict[str, float] = {}
    if "main" in parts:
        figures.update(measure(args.workflows, args.seed, args.repeat, args.chunk,
                               args.json_cap))
    if "rss" in parts:
        figures.update(_rss_in_subprocesses(args.workflows, args.seed))
    if "shapes" in parts:
        figures.update(measure_shapes(args.workflows, shapes, args.seed, args.repeat))
    width = max(map(len, figures))
    for key, value in figures.items():
        shown = f"{value:,.4f}" if isinstance(value, float) else f"{value:,}"
        print(f"{key:<{width}}  {shown}")
    if args.json:
        write_json(args.json, envelope("representation", args.workflows, figures,
                                       {"rss_variants": RSS_VARIANTS, "parts": sorted(parts),
                                        "repeat": args.repeat}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
