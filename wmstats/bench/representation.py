"""Benchmark: dynamic WMCore documents vs static records, and converter speed.

``wmstats bench representation --workflows 10000`` reports, for the same mock
workflows in both forms: bytes (raw and gzip), parse CPU (ujson and the
standard library ``json``), and converter throughput (documents per second).
Timings are medians over repetitions (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import ujson

from wmstats.convert import DocumentConverter
from wmstats.mock import MockGenerator
from wmstats.serialize import converter

__all__ = ["measure", "main"]


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def measure(workflows: int, seed: int = 0, repeat: int = 5) -> dict[str, Any]:
    """Measure both representations of ``workflows`` mock workflows.

    :returns: a flat dict of figures (bytes, seconds, rates, ratios).
    """
    gen = MockGenerator(seed=seed)
    docs = list(gen.iter_documents(workflows))
    unstructure = converter().unstructure
    records = [unstructure(r) for b in gen.bundles(workflows) for r in b.records()]
    records += [unstructure(a) for a in gen.agents()]
    # What a workflow table page needs: the Workflow records alone.
    workflow_text = "\n".join(ujson.dumps(unstructure(b.workflow))
                              for b in gen.bundles(workflows)).encode()
    dyn_text = "\n".join(ujson.dumps(d) for d in docs).encode()
    sta_text = "\n".join(ujson.dumps(r) for r in records).encode()
    dyn_lines = dyn_text.splitlines()
    sta_lines = sta_text.splitlines()

    def convert() -> None:
        conv = DocumentConverter()
        for doc in docs:
            conv.add(doc)
        for _ in conv.bundles():
            pass

    convert()  # warm-up
    convert_s = _median_seconds(convert, repeat)
    figures: dict[str, Any] = {
        "workflows": workflows,
        "documents": len(docs),
        "records": len(records),
        "dynamic_bytes": len(dyn_text),
        "static_bytes": len(sta_text),
        "dynamic_gzip_bytes": len(gzip.compress(dyn_text, 6)),
        "static_gzip_bytes": len(gzip.compress(sta_text, 6)),
        "static_workflow_only_bytes": len(workflow_text),
        "static_workflow_only_gzip_bytes": len(gzip.compress(workflow_text, 6)),
        "dynamic_parse_ujson_s": _median_seconds(lambda: [ujson.loads(x) for x in dyn_lines],
                                                 repeat),
        "static_parse_ujson_s": _median_seconds(lambda: [ujson.loads(x) for x in sta_lines],
                                                repeat),
        "dynamic_parse_json_s": _median_seconds(lambda: [json.loads(x) for x in dyn_lines],
                                                repeat),
        "static_parse_json_s": _median_seconds(lambda: [json.loads(x) for x in sta_lines],
                                               repeat),
        "convert_s": convert_s,
        "convert_docs_per_s": len(docs) / convert_s if convert_s else float("inf"),
    }
    for key in ("bytes", "gzip_bytes", "parse_ujson_s", "parse_json_s"):
        dyn = figures[f"dynamic_{key}"]
        figures[f"static_over_dynamic_{key}"] = figures[f"static_{key}"] / dyn if dyn else 0.0
    for key in ("bytes", "gzip_bytes"):
        figures[f"static_workflow_only_over_dynamic_{key}"] = (
            figures[f"static_workflow_only_{key}"] / figures[f"dynamic_{key}"])
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wmstats bench representation",
                                     description=__doc__)
    parser.add_argument("--workflows", "-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.workflows, args.seed, args.repeat)
    width = max(map(len, figures))
    for key, value in figures.items():
        shown = f"{value:,.4f}" if isinstance(value, float) else f"{value:,}"
        print(f"{key:<{width}}  {shown}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
