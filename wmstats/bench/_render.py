"""Rendering of the benchmark report: tables, targets, growth, SVG plots, Markdown.

Everything here reads the results document of :func:`wmstats.bench.report.run_all`
(``sections -> size -> {"results": {figure: number}}``) and never runs anything.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Final

from wmstats.bench._svg import line_plot

__all__ = ["FILL_SIZES", "MACHINE_KEYS", "OPTIONAL", "RUN_AS", "TARGET_SIZE", "benchmark_of",
           "build_markdown", "earlier_invocations", "figure", "fmt", "growth", "invocation",
           "plots", "print_tables", "sizes_of", "tables", "targets"]

#: Optional sections: name -> what must be importable (besides the benchmark itself).
OPTIONAL: Final = {"couchdb-source": "wmstats_couchdb", "couchdb-restart": "wmstats_couchdb",
                   "ui": "playwright", "reqmon": "wmstats_couchdb"}
#: Sections run by a benchmark of another name: section -> (benchmark, its options).
RUN_AS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "couchdb-restart": ("couchdb-source", ("--store", "sqlite")),
    "reqmon": ("wmcore", ("--fill-only",)),
}
#: The sizes issue 13's fill and bytes targets (against reqmon) are stated for.
FILL_SIZES: Final = (10_000, 40_000)


def benchmark_of(section: str) -> tuple[str, tuple[str, ...]]:
    """The ``wmstats bench`` command a section runs, and its options."""
    return RUN_AS.get(section, (section, ()))
#: The size the targets (:func:`targets`) are stated for.
TARGET_SIZE: Final = 100_000


# --------------------------------------------------------------------------- figures


def figure(results: Mapping[str, Any], section: str, size: int | str, key: str) -> float | None:
    """One figure of one section at one size (``None`` when absent)."""
    value = results.get("sections", {}).get(section, {}).get(str(size), {}).get(
        "results", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def sizes_of(results: Mapping[str, Any], section: str) -> list[int]:
    """The sizes a section has results for, ascending."""
    return sorted(int(s) for s in results.get("sections", {}).get(section, {}))


def fmt(value: float | None) -> str:
    """A figure for a table: about three significant digits, thousands separated."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 100 or value == int(value) and size >= 1:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    if size == 0:
        return "0"
    return f"{value:.{max(2, 2 - math.floor(math.log10(size)))}f}"


#: A row of a curated table: (label, section, figure key, scale factor).
Row = tuple[str, str, str, float]

_MB: Final = 1e-6


def _representation_rows() -> list[Row]:
    r = "representation"
    rows: list[Row] = [
        ("documents (dynamic)", r, "documents", 1), ("records (static)", r, "records", 1),
        ("NDJSON MB, dynamic documents", r, "dynamic_bytes", _MB),
        ("NDJSON MB, static records (all)", r, "static_bytes", _MB),
        ("NDJSON MB, static Workflow records only", r, "static_workflow_only_bytes", _MB),
        ("gzip MB, dynamic", r, "dynamic_gzip_bytes", _MB),
        ("gzip MB, static (all)", r, "static_gzip_bytes", _MB),
        ("gzip MB, static Workflow only", r, "static_workflow_only_gzip_bytes", _MB),
    ]
    for op, lib in (("parse", "ujson"), ("serialize", "ujson")):
        for kind in ("dynamic", "static"):
            rows.append((f"{op} CPU s ({lib}), {kind}", r, f"{kind}_{op}_{lib}_s", 1))
    for op in ("parse", "serialize"):
        for kind in ("dynamic", "static"):
            rows.append((f"{op} CPU µs/workflow (stdlib json), {kind}", r,
                         f"{kind}_{op}_json_us_per_workflow", 1))
    rows += [
        ("converter CPU s", r, "convert_s", 1),
        ("converter documents/s", r, "convert_docs_per_s", 1),
        ("converter workflows/s", r, "convert_workflows_per_s", 1),
    ]
    return rows


_RSS_ROWS: Final[tuple[tuple[str, str, str], ...]] = (
    ("dynamic documents as dicts", "representation", "rss_dynamic_dicts_per_10k_mib"),
    ("dynamic documents as JSON text", "representation", "rss_dynamic_text_per_10k_mib"),
    ("static records (bundles + agents)", "representation", "rss_static_records_per_10k_mib"),
    ("static Workflow records only", "representation", "rss_static_workflows_per_10k_mib"),
    ("memory store (process RSS growth)", "stores", "memory.rss_after_load_per_10k_mib"),
    ("sqlite store (process RSS growth)", "stores", "sqlite.rss_after_load_per_10k_mib"),
    ("CouchDB store: pouchdb-server RSS growth", "stores",
     "couchdb.server_rss_delta_per_10k_mib"),
)

_RATIO_ROWS: Final[tuple[tuple[str, str], ...]] = (
    ("raw bytes", "static_over_dynamic_bytes"),
    ("gzip bytes", "static_over_dynamic_gzip_bytes"),
    ("parse CPU (ujson)", "static_over_dynamic_parse_ujson_s"),
    ("parse CPU (stdlib json)", "static_over_dynamic_parse_json_s"),
    ("serialize CPU (ujson)", "static_over_dynamic_serialize_ujson_s"),
    ("resident memory (Python objects)", "static_over_dynamic_rss"),
    ("raw bytes, Workflow records only", "static_workflow_only_over_dynamic_bytes"),
    ("gzip bytes, Workflow records only", "static_workflow_only_over_dynamic_gzip_bytes"),
    ("resident memory, Workflow records only", "static_workflows_over_dynamic_rss"),
)

_STORE_FIGURES: Final[tuple[tuple[str, str], ...]] = (
    ("load s", "load_s"), ("load workflows/s", "load_per_s"),
    ("filtered page p50 ms", "filtered_page_p50_ms"),
    ("filtered page p99 ms", "filtered_page_p99_ms"),
    ("deep page (idx 90%) p50 ms", "deep_page_p50_ms"),
    ("deep page p99 ms", "deep_page_p99_ms"), ("get one p50 ms", "get_p50_ms"),
    ("site aggregate, first, ms", "aggregate_site_first_ms"),
    ("stream NDJSON+gzip records/s", "stream_records_per_s"),
    ("one change: apply p50 ms", "apply_p50_ms"),
    ("one change: visible p50 ms", "change_visible_p50_ms"),
    ("one change: visible p99 ms", "change_visible_p99_ms"),
    ("filtered page after a change p50 ms", "page_after_update_p50_ms"),
    ("RSS growth after load MiB", "rss_after_load_delta_mib"),
    ("RSS growth after queries MiB", "rss_after_queries_delta_mib"),
    ("sqlite file MiB", "db_file_mib"),
    ("server (pouchdb) RSS after MiB", "server_rss_after_mib"),
)

_SERVER_FIGURES: Final[tuple[tuple[str, str], ...]] = (
    ("start + load s", "load_seconds"),
    ("page p50 ms, best case", "page_p50_ms_min"),
    ("page p50 ms, worst case", "page_p50_ms_max"),
    ("page p99 ms, worst case", "page_p99_ms_max"),
    ("page idx=0 p50 ms", "page[idx=0 gzip].p50_ms"),
    ("page filter idx=0 p50 ms", "page[filter idx=0 gzip].p50_ms"),
    ("page sort p50 ms", "page[sort gzip].p50_ms"),
    ("full stream s (median)", "stream_s"),
    ("full stream gzip MB", "stream_gzip_bytes"),
    ("full stream records/s", "stream_records_per_s"),
    ("full stream, no compression, records/s", "stream_identity_records_per_s"),
    ("full stream zstd MB", "stream_zstd_bytes"),
    ("full stream br MB", "stream_br_bytes"),
    ("1 client requests/s", "clients_1.requests_per_s"),
    ("4 clients requests/s", "clients_4.requests_per_s"),
    ("16 clients requests/s", "clients_16.requests_per_s"),
    ("16 clients p99 ms", "clients_16.p99_ms"),
    ("server RSS loaded MiB", "rss_loaded_mb"),
    ("server RSS before streams MiB", "rss_before_streams_mb"),
    ("server RSS after streams MiB", "rss_after_streams_mb"),
    ("RSS growth, stream 1 -> last, MiB", "rss_stream_growth_mb"),
    ("RSS growth, second half of the streams, MiB", "rss_second_half_growth_mb"),
    ("server RSS peak MiB", "rss_peak_mb"),
)


def _prefixed(prefixes: Sequence[str], section: str,
              figures: Sequence[tuple[str, str]]) -> list[Row]:
    return [(label if len(prefixes) == 1 else f"{prefix}: {label}", section, f"{prefix}.{key}",
             _MB if key.endswith("bytes") else 1)
            for prefix in prefixes for label, key in figures]


def _table(results: Mapping[str, Any], rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a figure-per-row, size-per-column table (empty rows dropped)."""
    sizes = sorted({s for section in {r[1] for r in rows} for s in sizes_of(results, section)})
    body = []
    for label, section, key, scale in rows:
        values = [figure(results, section, size, key) for size in sizes]
        if all(v is None for v in values):
            continue
        body.append([label, *(fmt(None if v is None else v * scale) for v in values)])
    return ["figure", *(f"{s:,}" for s in sizes)], body


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]],
                    numeric: bool = True) -> str:
    align = "---:" if numeric else "---"
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + [align] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _text_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    rows = [list(header), *map(list, body)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))) for row in rows)


def _stores_in(results: Mapping[str, Any], section: str) -> list[str]:
    names: list[str] = []
    for document in results.get("sections", {}).get(section, {}).values():
        for key in document.get("results", {}):
            prefix = key.partition(".")[0]
            if "." in key and prefix not in names:
                names.append(prefix)
    return names


def _generic_rows(results: Mapping[str, Any], section: str) -> list[Row]:
    keys: list[str] = []
    for document in results.get("sections", {}).get(section, {}).values():
        keys += [k for k in document.get("results", {}) if k not in keys]
    return [(key, section, key, 1) for key in keys]


def tables(results: Mapping[str, Any]) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """Every table of the report: (section, title, header, rows)."""
    out: list[tuple[str, str, list[str], list[list[str]]]] = []

    def add(section: str, title: str, rows: Sequence[Row]) -> None:
        header, body = _table(results, rows)
        if body:
            out.append((section, title, header, body))

    add("representation", "Dynamic documents vs static records", _representation_rows())
    add("representation", "Static / dynamic ratios (below 0.5 = static at most half)",
        [(label, "representation", key, 1) for label, key in _RATIO_ROWS])
    add("memory", "Resident memory per 10,000 workflows, MiB",
        [(label, section, key, 1) for label, section, key in _RSS_ROWS])
    shapes = results.get("sections", {}).get("converter", {})
    for document in shapes.values():
        figures = document.get("results", {})
        names = sorted({k.split("_")[1] for k in figures if k.startswith("shape_")
                        and k.count("_") >= 2 and "x" in k.split("_")[1]},
                       key=lambda s: tuple(int(p) for p in s.split("x")))
        body = [[f"{name} ({int(figures.get('shape_workflows', 0)):,} workflows)",
                 *(fmt(figures.get(f"shape_{name}_{key}")) for key in
                   ("docs_per_workflow", "records_per_workflow", "kib_per_workflow",
                    "docs_per_s", "workflows_per_s", "us_per_workflow"))]
                for name in names]
        if body:
            out.append(("converter", "Converter speed vs tasks x sites per workflow "
                        "(MockGenerator max_tasks x max_sites)",
                        ["max_tasks x max_sites", "docs/workflow", "records/workflow",
                         "KiB/workflow", "docs/s", "workflows/s", "µs/workflow"], body))
    label = {"memory": "memory store", "sqlite": "sqlite store", "couchdb": "CouchDB store"}
    for store in _stores_in(results, "stores"):
        add("stores", label.get(store, store), _prefixed([store], "stores", _STORE_FIGURES))
    for store in _stores_in(results, "server"):
        add("server", f"cache server on the {label.get(store, store)}",
            _prefixed([store], "server", _SERVER_FIGURES))
    for store in _stores_in(results, "production"):
        add("production", f"cache server on the {label.get(store, store)}, production-sized "
                          f"workflows", _prefixed([store], "production", _SERVER_FIGURES))
    for section in OPTIONAL:
        benchmark, options = benchmark_of(section)
        add(section, f"{section} (as reported by "
                     f"'wmstats bench {' '.join((benchmark, *options))}')",
            _generic_rows(results, section))
    return out


# --------------------------------------------------------------------------- targets


def _largest(results: Mapping[str, Any], section: str) -> int | None:
    sizes = sizes_of(results, section)
    return sizes[-1] if sizes else None


def _find(figures: Mapping[str, Any], *words: str,
          preferred: Sequence[str] = ()) -> tuple[str, float] | None:
    """A figure of another benchmark: the first of ``preferred`` present, else the
    first whose name holds every word."""
    for key in preferred:
        if isinstance(figures.get(key), (int, float)):
            return key, float(figures[key])
    for key, value in figures.items():
        low = key.lower()
        if all(w in low for w in words) and isinstance(value, (int, float)):
            return key, float(value)
    return None


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The performance targets (stated here, one row each), each against the largest
    size measured.

    :returns: rows with ``target``, ``measured``, ``status`` (``met``, ``not met`` or
        ``not measured here``), ``workflows`` (the size it was measured at) and ``note``.
    """
    rows: list[dict[str, Any]] = []

    def row(target: str, value: str, met: bool | None, size: int | None,
            note: str = "", stated: Sequence[int] = (TARGET_SIZE,)) -> None:
        if met is None:
            status, size = "not measured here", None
        else:
            status = "met" if met else "not met"
        if size is not None and size < max(stated):
            note = (note + "; " if note else "") + "target is for " + " and ".join(
                f"{s:,}" for s in stated)
        rows.append({"target": target, "measured": value, "status": status,
                     "workflows": size, "note": note})

    def at(section: str, key: str) -> tuple[float | None, int | None]:
        """The figure at the largest size that has it."""
        for size in reversed(sizes_of(results, section)):
            value = figure(results, section, size, key)
            if value is not None:
                return value, size
        return None, None

    for store in ("memory", "sqlite"):
        (p50, size), (p99, _) = (at("server", f"{store}.page_p50_ms_max"),
                                 at("server", f"{store}.page_p99_ms_max"))
        row(f"page fetch p50 <= 5 ms ({store} store; limit=100, every idx/filter case)",
            f"{fmt(p50)} ms (worst case)", None if p50 is None else p50 <= 5, size)
        row(f"page fetch p99 <= 25 ms ({store} store)", f"{fmt(p99)} ms (worst case)",
            None if p99 is None else p99 <= 25, size)
        rate, size = at("server", f"{store}.stream_records_per_s")
        row(f"full NDJSON+gzip stream >= 50,000 records/s ({store} store)",
            f"{fmt(rate)} records/s", None if rate is None else rate >= 50_000, size)
        (growth, size), (late, _), (base, _), (streams, _) = (
            at("server", f"{store}.rss_stream_growth_mb"),
            at("server", f"{store}.rss_second_half_growth_mb"),
            at("server", f"{store}.rss_before_streams_mb"), at("server", f"{store}.streams"))
        flat = None if late is None or base is None or streams is None or streams < 20 \
            else late <= max(0.01 * base, 2.0)
        row(f"server memory flat over 20 full streams ({store} store)",
            f"{fmt(late)} MiB growth over streams {fmt((streams or 0) // 2)}-{fmt(streams)}",
            flat, size, f"flat = at most 1 % (or 2 MiB) growth over the second half; "
                        f"{fmt(growth)} MiB from stream 1 to {fmt(streams)}")
    # Issue 13 (performance, round two), memory store.
    rate, size = at("server", "memory.stream_records_per_s")
    row("issue 13: full NDJSON+gzip stream >= 150,000 records/s (memory store)",
        f"{fmt(rate)} records/s", None if rate is None else rate >= 150_000, size)
    rate, size = at("server", "memory.stream_identity_records_per_s")
    row("issue 13: full NDJSON stream without gzip >= 300,000 records/s (memory store)",
        f"{fmt(rate)} records/s", None if rate is None else rate >= 300_000, size)
    (p50, size), (p99, _) = (at("server", "memory.page[idx=0 gzip].p50_ms"),
                             at("server", "memory.page[idx=0 gzip].p99_ms"))
    row("issue 13: /fetch?limit=100, full records, gzip: p50 <= 2 ms, p99 <= 10 ms "
        "(memory store)", f"p50 {fmt(p50)} ms, p99 {fmt(p99)} ms",
        None if p50 is None or p99 is None else p50 <= 2 and p99 <= 10, size)
    (p50, size), (p99, _) = (at("stores", "memory.change_visible_p50_ms"),
                             at("stores", "memory.change_visible_p99_ms"))
    row("issue 13: a change visible p50 <= 20 ms, p99 <= 50 ms (memory store, in process)",
        f"p50 {fmt(p50)} ms, p99 {fmt(p99)} ms",
        None if p50 is None or p99 is None else p50 <= 20 and p99 <= 50, size,
        "apply() of one changed workflow, then the query that reads it back")
    _reqmon_targets(results, row)
    rate, size = at("server", "memory.clients_16.requests_per_s")
    row("issue 13: 16 concurrent clients >= 2x today's requests/s (memory store)",
        f"{fmt(rate)} requests/s", None if rate is None else rate >= 230, size,
        "today: 115 requests/s at 100,000 (docs/benchmarks.md before issue 13), so >= 230")
    for store, limit, unit in (("memory", 1024, "1 GiB"), ("sqlite", 300, "300 MiB")):
        (after, size), (later, _), (peak, _) = (
            at("server", f"{store}.rss_after_streams_mb"),
            at("server", f"{store}.rss_after_concurrency_mb"), at("server", f"{store}.rss_peak_mb"))
        rss = max((v for v in (after, later) if v is not None), default=None)
        row(f"resident memory, {store} backend <= {unit} (cache server process)",
            f"{fmt(rss)} MiB (peak {fmt(peak)} MiB)", None if rss is None else rss <= limit, size,
            "RSS after the streams and concurrency runs; the peak includes generating "
            "the mock data in the same process")
    (after, size), (later, _), (peak, _) = (
        at("production", "memory.rss_after_streams_mb"),
        at("production", "memory.rss_after_concurrency_mb"),
        at("production", "memory.rss_peak_mb"))
    rss = max((v for v in (after, later) if v is not None), default=None)
    row("issue 13: resident memory <= 1 GiB on production-sized workflows (memory store)",
        f"{fmt(rss)} MiB (peak {fmt(peak)} MiB)", None if rss is None else rss <= 1024, size,
        "up to 6 tasks, 12 sites and 3 agents per workflow (--mock-size production); RSS "
        "after the streams and concurrency runs")
    p50, size = at("server", "sqlite.page_p50_ms_max")
    row("issue 13: /fetch?limit=100 p50 <= 10 ms (sqlite store, every idx/filter case)",
        f"{fmt(p50)} ms (worst case)", None if p50 is None else p50 <= 10, size)
    # Issue 13, target 7: every request ever made (wmstats bench search).
    p50, size = at("search", "page_p50_ms")
    row("issue 13: all statuses on the sqlite store: page p50 <= 20 ms",
        f"{fmt(p50)} ms (worst page)", None if p50 is None else p50 <= 20, size,
        "wmstats bench search --archived 0.9", stated=(1_000_000,))
    (p50, size), (p99, _) = (at("search", "search_p50_ms_max"),
                             at("search", "search_p99_ms_max"))
    row("issue 13: all statuses on the sqlite store: search by name wildcard, PrepID, "
        "dataset, date range p50 <= 50 ms", f"{fmt(p50)} ms (worst search; p99 {fmt(p99)} ms)",
        None if p50 is None else p50 <= 50, size,
        "wmstats bench search --archived 0.9", stated=(1_000_000,))
    alone_keys = {"static_over_dynamic_bytes": "static_workflow_only_over_dynamic_bytes",
                  "static_over_dynamic_gzip_bytes": "static_workflow_only_over_dynamic_gzip_bytes",
                  "static_over_dynamic_rss": "static_workflows_over_dynamic_rss"}
    for label, key in (("size, raw", "static_over_dynamic_bytes"),
                       ("size, gzip", "static_over_dynamic_gzip_bytes"),
                       ("parse CPU (ujson)", "static_over_dynamic_parse_ujson_s"),
                       ("RAM as Python objects", "static_over_dynamic_rss")):
        ratio, size = at("representation", key)
        alone, _ = at("representation", alone_keys.get(key, ""))
        row(f"static <= half of dynamic: {label}", f"static/dynamic = {fmt(ratio)}",
            None if ratio is None else ratio <= 0.5, size,
            f"Workflow records alone: {fmt(alone)}" if alone is not None else
            "all records of every workflow")
    source, size = _latest_results(results, "couchdb-source")
    found = _find(source, "visible", "p99", preferred=("change_visible_p99_ms",))
    median = _find(source, "visible", "p50", preferred=("change_visible_p50_ms",))
    row("CouchDB: a changed document visible through the API within 2 s",
        f"p99 {_show(found)}" + (f", p50 {_show(median)}" if median else "")
        if found else "-", None if found is None else _seconds(found) <= 2.0, size,
        f"over {fmt(source.get('updates'))} changes" if found else "")
    load = _find(source, "source_load", preferred=("source_load_seconds",))
    decode = _find(source, "read_decode_seconds", preferred=("read_decode_seconds",))
    raw = _find(source, "read_raw_seconds", preferred=("read_raw_seconds",))
    ratio = load[1] / decode[1] if load and decode and decode[1] > 0 else None
    row("CouchDB: full load close to the speed of reading _all_docs",
        f"load {fmt(load[1])} s vs read+decode {fmt(decode[1])} s = {fmt(ratio)}x"
        if load and decode and ratio is not None else "-",
        None if ratio is None else ratio <= 2.0, size,
        "close = at most 2x the time to read and decode _all_docs"
        + (f"; raw read {fmt(raw[1])} s" if raw else ""))
    restart, size = _latest_results(results, "couchdb-restart")
    warm, cold = restart.get("warm_restart_seconds_median"), restart.get("cold_start_seconds")
    row("issue 13: warm restart ready <= 5 s (sqlite store, CouchDB source)",
        f"{fmt(warm)} s, median of {fmt(restart.get('warm_restarts'))} restarts (cold start "
        f"{fmt(cold)} s: {fmt(restart.get('warm_over_cold_start'))}x)" if warm is not None
        else "-", None if warm is None else warm <= 5.0, size,
        f"process start until /healthz ready, each a resume with "
        f"{fmt(restart.get('warm_restart_changed_documents'))} documents changed while down; "
        f"the agent database holds {fmt(restart.get('agent_documents'))} documents "
        f"({fmt(restart.get('jobsummaries'))} jobsummary), none read again" if warm is not None
        else "")
    ui, size = _latest_results(results, "ui")
    first = _find(ui, "first", "render", preferred=("first_render_ms_p50",))
    change = _find(ui, "filter", preferred=("filter_change_ms_p50",))
    row("UI: first render <= 1.5 s (real browser)",
        f"{_show(first)} (`{first[0]}`)" if first else "-",
        None if first is None else _seconds(first) <= 1.5, size)
    row("UI: filter change <= 300 ms", f"{_show(change)} (`{change[0]}`)" if change else "-",
        None if change is None else _seconds(change) <= 0.3, size)
    return rows


def _reqmon_targets(results: Mapping[str, Any], row: Callable[..., None]) -> None:
    """Issue 13's targets against reqmon (section ``reqmon``, ``wmstats bench wmcore
    --fill-only``): each met when met at every size of :data:`FILL_SIZES` measured
    (at every size measured when none of them is); the text shows each size."""
    sizes = sizes_of(results, "reqmon")
    judged = [s for s in sizes if s in FILL_SIZES] or sizes

    def judge(key: str, limit: float) -> bool | None:
        values = [figure(results, "reqmon", s, key) for s in judged]
        return None if not values or None in values else all(
            v is not None and v <= limit for v in values)

    def load(size: int) -> str:
        ratio, ours, theirs = (figure(results, "reqmon", size, k) for k in
                               ("fill_ratio", "wmstats_load_seconds", "reqmon_fill_seconds"))
        return f"{fmt(ratio)}x at {size:,} ({fmt(ours)} s vs {fmt(theirs)} s)"

    def sent(size: int) -> str:
        ratios = {c: figure(results, "reqmon", size, f"full_fetch_{c}_over_reqmon_gzip")
                  for c in ("zstd", "br", "gzip")}
        return f"at {size:,}: " + ", ".join(f"{c} {fmt(r)}x" for c, r in ratios.items())

    largest = sizes[-1] if sizes else None
    row("issue 13: CouchDB full load <= 0.5x reqmon's fill (same data, one run)",
        "; ".join(load(s) for s in sizes) or "-", judge("fill_ratio", 0.5), largest,
        "wmstats' source load over reqmon's first fill (each its own figure, views "
        "built before, pouchdb-server warm)", FILL_SIZES)
    row("issue 13: full fetch <= 0.1x reqmon's gzip bytes (zstd)",
        "; ".join(sent(s) for s in sizes) or "-",
        judge("full_fetch_zstd_over_reqmon_gzip", 0.1), largest,
        "wmstats' full NDJSON fetch over reqmon's gzip requestcache reply", FILL_SIZES)


def _latest_results(results: Mapping[str, Any],
                    section: str) -> tuple[dict[str, Any], int | None]:
    size = _largest(results, section)
    if size is None:
        return {}, None
    found: dict[str, Any] = results["sections"][section][str(size)].get("results", {})
    return found, size


def _show(found: tuple[str, float]) -> str:
    """A time figure with its unit."""
    key, value = found
    return f"{fmt(value)} ms" if key.endswith("_ms") or "_ms_" in key else f"{fmt(value)} s"


def _seconds(found: tuple[str, float]) -> float:
    """A figure in seconds, from its name's unit suffix (``_ms`` or ``_s``)."""
    key, value = found
    return value / 1e3 if key.endswith("_ms") or "_ms_" in key else value


# --------------------------------------------------------------------------- plots


def _series(results: Mapping[str, Any], section: str, key: str,
            scale: float = 1.0) -> list[tuple[float, float]]:
    points = []
    for size in sizes_of(results, section):
        value = figure(results, section, size, key)
        if value is not None:
            points.append((float(size), value * scale))
    return points


#: Targets drawn on plots: file name -> {label: y}.
_REFERENCES: Final[dict[str, dict[str, float]]] = {
    "server-pages.svg": {"target p50 5 ms": 5.0, "target p99 25 ms": 25.0},
    "memory.svg": {"target memory store 1 GiB": 1024.0, "target sqlite 300 MiB": 300.0},
}

#: Plots: file name -> (title, y label, [(series label, section, key, scale)]).
_PLOTS: Final[dict[str, tuple[str, str, list[tuple[str, str, str, float]]]]] = {
    "representation-bytes.svg": ("NDJSON size", "MB", [
        ("dynamic raw", "representation", "dynamic_bytes", _MB),
        ("static raw", "representation", "static_bytes", _MB),
        ("Workflow only raw", "representation", "static_workflow_only_bytes", _MB),
        ("dynamic gzip", "representation", "dynamic_gzip_bytes", _MB),
        ("static gzip", "representation", "static_gzip_bytes", _MB),
        ("Workflow only gzip", "representation", "static_workflow_only_gzip_bytes", _MB)]),
    "representation-cpu.svg": ("Parse, serialize, convert CPU", "CPU seconds", [
        ("parse dynamic", "representation", "dynamic_parse_ujson_s", 1),
        ("parse static", "representation", "static_parse_ujson_s", 1),
        ("serialize dynamic", "representation", "dynamic_serialize_ujson_s", 1),
        ("serialize static", "representation", "static_serialize_ujson_s", 1),
        ("convert", "representation", "convert_s", 1)]),
    "memory.svg": ("Resident memory", "MiB", [
        ("dynamic dicts", "representation", "rss_dynamic_dicts_held_mib", 1),
        ("static records", "representation", "rss_static_records_held_mib", 1),
        ("Workflow records", "representation", "rss_static_workflows_held_mib", 1),
        ("memory store", "stores", "memory.rss_after_load_delta_mib", 1),
        ("sqlite store", "stores", "sqlite.rss_after_load_delta_mib", 1),
        ("server, memory", "server", "memory.rss_after_streams_mb", 1),
        ("server, sqlite", "server", "sqlite.rss_after_streams_mb", 1),
        ("pouchdb-server", "stores", "couchdb.server_rss_after_mib", 1)]),
    "stores-load.svg": ("Store load time", "seconds", [
        ("memory", "stores", "memory.load_s", 1), ("sqlite", "stores", "sqlite.load_s", 1),
        ("couchdb", "stores", "couchdb.load_s", 1)]),
    "stores-query.svg": ("Store page query latency (p50)", "ms", [
        ("memory filtered", "stores", "memory.filtered_page_p50_ms", 1),
        ("memory deep", "stores", "memory.deep_page_p50_ms", 1),
        ("sqlite filtered", "stores", "sqlite.filtered_page_p50_ms", 1),
        ("sqlite deep", "stores", "sqlite.deep_page_p50_ms", 1),
        ("couchdb filtered", "stores", "couchdb.filtered_page_p50_ms", 1),
        ("couchdb deep", "stores", "couchdb.deep_page_p50_ms", 1)]),
    "server-pages.svg": ("Cache server page latency (limit=100)", "ms", [
        ("memory p50 worst", "server", "memory.page_p50_ms_max", 1),
        ("memory p99 worst", "server", "memory.page_p99_ms_max", 1),
        ("sqlite p50 worst", "server", "sqlite.page_p50_ms_max", 1),
        ("sqlite p99 worst", "server", "sqlite.page_p99_ms_max", 1)]),
    "server-stream.svg": ("Full NDJSON+gzip stream", "seconds", [
        ("memory", "server", "memory.stream_s", 1), ("sqlite", "server", "sqlite.stream_s", 1)]),
    "server-clients.svg": ("Cache server throughput", "requests/s", [
        ("memory, 1 client", "server", "memory.clients_1.requests_per_s", 1),
        ("memory, 4 clients", "server", "memory.clients_4.requests_per_s", 1),
        ("memory, 16 clients", "server", "memory.clients_16.requests_per_s", 1),
        ("sqlite, 1 client", "server", "sqlite.clients_1.requests_per_s", 1),
        ("sqlite, 16 clients", "server", "sqlite.clients_16.requests_per_s", 1)]),
}


def plots(results: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """SVG plots of the scaling curves: file name -> (title, SVG text)."""
    out = {}
    for name, (title, y_label, specs) in _PLOTS.items():
        series = {label: _series(results, section, key, scale)
                  for label, section, key, scale in specs}
        series = {label: points for label, points in series.items() if points}
        if series and name == "server-stream.svg":
            series["target: 50,000 records/s"] = [(float(n), n / 50_000)
                                                   for n in sizes_of(results, "server")]
        if series:
            out[name] = (title, line_plot(title, "workflows", y_label, series,
                                          _REFERENCES.get(name)))
    for section in OPTIONAL:
        keys = list(_PLOT_KEYS.get(section, ())) or [
            row[2] for row in _generic_rows(results, section)
            if _TIME_FIGURE.search(row[2]) and not re.search(r"_(min|max)_", row[2])][:8]
        if len(sizes_of(results, section)) > 1 and keys:
            series = {key: _series(results, section, key, 1e-3 if "_ms" in key else 1.0)
                      for key in keys}
            title = f"{section}: times (median where repeated)"
            refs = {"couchdb-source": {"target change visible 2 s": 2.0},
                    "couchdb-restart": {"target warm restart 5 s": 5.0},
                    "ui": {"target first render 1.5 s": 1.5,
                           "target filter change 0.3 s": 0.3}}.get(section)
            out[f"{section}.svg"] = (title, line_plot(title, "workflows", "seconds", series,
                                                      refs))
    return out


#: The figures plotted for an optional section (default: its first time figures).
_PLOT_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "couchdb-restart": ("cold_start_seconds", "warm_restart_seconds_median",
                        "warm_restart_listening_seconds_median"),
}
#: A time figure of another benchmark (a median or single value, not a spread).
_TIME_FIGURE: Final = re.compile(r"(_ms|_s|_seconds)(_p50)?$|_p50_ms$")


# --------------------------------------------------------------------------- growth


def growth(results: Mapping[str, Any]) -> list[list[str]]:
    """Log-log slope of key figures from the smallest to the largest size.

    About 1 means linear in the number of workflows, about 0 constant.
    """
    picks = [("representation", "dynamic_parse_ujson_s", "parse CPU, dynamic"),
             ("representation", "convert_s", "converter CPU"),
             ("representation", "rss_static_records_held_mib", "RSS, static records"),
             ("stores", "memory.load_s", "memory store load"),
             ("stores", "sqlite.load_s", "sqlite store load"),
             ("stores", "memory.filtered_page_p50_ms", "memory store filtered page p50"),
             ("stores", "sqlite.filtered_page_p50_ms", "sqlite store filtered page p50"),
             ("stores", "memory.deep_page_p50_ms", "memory store deep page p50"),
             ("stores", "sqlite.deep_page_p50_ms", "sqlite store deep page p50"),
             ("server", "memory.page_p50_ms_max", "server page p50 (memory)"),
             ("server", "sqlite.page_p50_ms_max", "server page p50 (sqlite)"),
             ("server", "memory.stream_s", "full stream time (memory)"),
             ("server", "sqlite.stream_s", "full stream time (sqlite)"),
             ("server", "memory.rss_after_streams_mb", "server RSS (memory)"),
             ("server", "sqlite.rss_after_streams_mb", "server RSS (sqlite)")]
    rows = []
    for section, key, label in picks:
        points = [(x, y) for x, y in _series(results, section, key) if y > 0]
        if len(points) < 2:
            continue
        (x0, y0), (x1, y1) = points[0], points[-1]
        slope = math.log(y1 / y0) / math.log(x1 / x0)
        verdict = ("constant" if abs(slope) < 0.2 else "linear" if 0.8 <= slope <= 1.2
                   else "sub-linear" if slope < 0.8 else "super-linear")
        rows.append([label, f"{int(x0):,} -> {int(x1):,}", fmt(y0), fmt(y1), f"{slope:.2f}",
                     verdict])
    return rows


# --------------------------------------------------------------------------- output


#: The machine figures that say whether two invocations ran on the same machine.
MACHINE_KEYS: Final = ("cpu", "cores", "ram_gib", "os", "python")


def invocation(results: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`wmstats.bench.report.merge` keeps of one invocation: when, which
    commit, the command, its configuration and its machine."""
    machine = results.get("machine", {})
    return {"date": machine.get("date"), "git_commit": machine.get("git_commit"),
            "command": results.get("command"), "config": results.get("config"),
            "machine": {key: machine.get(key) for key in MACHINE_KEYS}}


def earlier_invocations(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The invocations merged into ``results``, oldest first (``merged_from``: a list,
    or one entry without its machine as an older version wrote it)."""
    merged = results.get("merged_from") or []
    return [dict(merged)] if isinstance(merged, Mapping) else [dict(m) for m in merged]


def _machine_text(machine: Mapping[str, Any] | None) -> str:
    if not machine or not any(machine.values()):
        return "machine not recorded"
    return (f"{machine.get('cpu')} ({machine.get('cores')} cores), RAM "
            f"{machine.get('ram_gib')} GiB, {machine.get('os')}, Python {machine.get('python')}")


def _merged_lines(results: Mapping[str, Any]) -> list[str]:
    earlier = earlier_invocations(results)
    if not earlier:
        return []
    invocations = [*earlier, invocation(results)]
    # Each run names the invocation it belongs to (runs an older version wrote do not).
    starts = [inv.get("date") for inv in invocations]
    ran: list[set[str]] = [set() for _ in invocations]
    for run in results.get("runs", []):
        if run.get("invocation") in starts:
            ran[starts.index(run["invocation"])].add(run["section"])
    machines = [inv.get("machine") for inv in invocations]
    same = all(m and any(m.values()) and m == machines[-1] for m in machines)
    lines = [f"This report merges {len(invocations)} invocations, "
             + ("on the same machine (below):" if same else
                "not all on the same machine, or not known to be (each is named; the "
                "Machine section below is the latest's):"), ""]
    for i, (inv, sections) in enumerate(zip(invocations, ran)):
        which = (", ".join(f"`{s}`" for s in sorted(sections)) if sections
                 else "its runs are not marked (an older version; the Runs table dates them)")
        where = "" if same else f"; {_machine_text(inv.get('machine'))}"
        lines.append(f"- {'the latest' if i == len(invocations) - 1 else 'an earlier'}, "
                     f"started {inv.get('date')} (commit {inv.get('git_commit') or 'unknown'}"
                     f"{where}): {which}")
    lines += ["", "A section rerun by a later invocation keeps the earlier one's figures at "
              "the sizes the later did not run; the Runs table at the end dates each "
              "benchmark.", ""]
    return lines


def _machine_lines(m: Mapping[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items() if v)
    return [f"- CPU: {m.get('cpu')} ({m.get('cores')} cores), RAM {m.get('ram_gib')} GiB",
            f"- OS: {m.get('os')}; Python {m.get('python')}",
            f"- packages: {packages}",
            f"- date: {m.get('date')}; git commit: {m.get('git_commit') or 'unknown'}"]


_METHOD: Final = """\
Each benchmark runs in its own subprocess per size (and the stores, the RSS
variants and the cache server in further subprocesses), so resident memory
figures never mix. Resident memory is process-level RSS (`VmRSS`, peak `VmHWM`
from `/proc/PID/status`), after `gc.collect()`, minus the RSS before where it
says "growth". CPU timings (representation, converter) are process CPU time,
median over repetitions after a warm-up, with min/max in the JSON; latencies are
wall-clock p50/p99 over bounded request loops after warm-up requests. All HTTP
goes over 127.0.0.1; the cache server runs in its own process
(`wmstats cache-server --mock N`) and the client in the benchmark process, on
the same machine (so client CPU competes with the server's). The machine is
shared and noisy: read the figures as orders of magnitude and trends."""


_INTROS: Final = {
    "representation": """\
The same mock workflows as dynamic WMCore documents (request, `agent_request` and
`agent_info` documents: what WMStats holds today) and as static records (every record
of every workflow bundle, plus the agents). "Workflow only" is the `Workflow` records
alone: what a table page ships. Parse: `ujson.loads` per NDJSON line; serialize:
`ujson.dumps` of each document vs `unstructure` + `ujson.dumps` of each record (what
the cache server does); gzip at level 1 (the cache server's). CPU seconds are medians
over 5 (1,000 workflows), 3 (10,000) or 1 (100,000) repetitions after a warm-up,
measured in chunks of 10,000 workflows; the standard library `json` is timed on the
first 10,000 workflows only and given per workflow. The converter time excludes
parsing.""",
    "memory": """\
Resident memory per 10,000 workflows. Held as Python objects: the RSS growth of a
fresh process that builds and keeps N workflows in that form (run at sizes up to
10,000; per-workflow memory is flat, see the columns). Stores: the RSS growth of the
benchmark process after `store.replace()` (memory, sqlite), and of the
pouchdb-server process for CouchDB. At small sizes fixed costs (sqlite's page
cache, the pouchdb-server heap) dominate the per-10,000 figure.""",
    "converter": """\
`DocumentConverter` over the documents of mock workflows made with
`MockGenerator(max_tasks=T, max_sites=S)`: the generator draws up to these many
tasks and sites, so records per workflow shows what it made.""",
    "stores": """\
Load: `store.replace()` of N mock workflows and the agents, the mock generation time
subtracted. Filtered page: `limit=100` over seven realistic filters and sorts at a
random `idx` in the first 1,000 matches (30 rounds; CouchDB 5); deep page: `idx` at
90 % of N, default and priority sort. Stream: every workflow as NDJSON + gzip in
the benchmark process. CouchDB is a pouchdb-server in memory started for the run,
measured up to {couchdb_max:,} workflows only.""",
    "server": """\
The cache server in its own process (`wmstats cache-server --mock N`), the client
in the benchmark process, over 127.0.0.1. Page cases (`limit=100`, gzip): `idx` 0,
N/4, N/2 and N-100; a status filter at `idx` 0 and 2000; a name glob with a
priority filter; a sort by priority; a field mask; and two without gzip. Best and
worst case: the lowest and highest p50 over the cases (each at most 200 requests
or 10 s after 5 warm-up requests). Full stream: `limit=N`, NDJSON + gzip, 20 times;
RSS growth is from after the first stream to after the last. Concurrency: 1, 4 and
16 client threads for 5 s each, over the same page cases.""",
    "production": """\
The same cache server benchmark on production-sized mock workflows
(`wmstats cache-server --mock-size production`: up to 6 tasks, 12 sites and 3 agents
per workflow, as production's documents are), memory store, at the largest size
only, with at most 5 full streams and 16 concurrent clients.""",
    "couchdb-source": """\
The cache server fed by CouchDB (`wmstats bench couchdb-source`, see
`docs/couchdb-source.md`): a pouchdb-server seeded with N workflows, read as
`_all_docs` (raw, decoded, decoded and converted), the server's full load from it,
and the time from a document change in CouchDB to its visibility through the API.
Run up to {couchdb_max:,} workflows.""",
    "reqmon": """\
wmstats next to today's reqmon 2.4.5.9 (`wmstats bench wmcore --fill-only`, see
`docs/wmcore-compat.md`): one pouchdb-server seeded with N workflows, reqmon's views
built first (which also warms pouchdb-server for both), then the wmstats cache server
on it (`wmstats_load_seconds`: its source's full load), then reqmon
(`reqmon_fill_seconds`: its own first fill); `fill_ratio` is the first over the second.
Then `requestcache` from both (gzip, as WMCore's client asks) and wmstats' full
fetch in each coding, its bytes over reqmon's gzip reply. Run up to {reqmon_max:,}
workflows.""",
    "couchdb-restart": """\
Warm restarts of the cache server fed by CouchDB on the sqlite store
(`wmstats bench couchdb-source --store sqlite`, see `docs/couchdb-source.md`,
"Warm restarts"): the seed includes the jobsummary documents; the cold start is
the first full load into a new sqlite file; then, three times, the server is
stopped, 20 documents (requests' priorities, agent_request counters) are changed
in CouchDB, and the server is started on the same file: the time from process
start until `/healthz` says ready, each checked to be a resume (not a full load)
that shows every change made while it was down. Run up to {couchdb_max:,} workflows.""",
    "ui": """\
The UI page in headless Chromium (`wmstats bench ui`, see `docs/ui.md`): first
render, and the redraw after a filter, search, sort or page change, over several
repetitions (p50, p90, max), with the bytes the page transferred.""",
}


def build_markdown(results: Mapping[str, Any], json_link: str = "bench/results.json",
                   svg_dir: str = "bench") -> str:
    """The Markdown report (``json_link``, ``svg_dir``: relative to the report)."""
    config = results.get("config", {})
    sizes = ", ".join(f"{s:,}" for s in config.get("sizes", ()))
    lines = ["# Benchmarks", "",
             f"Latest run of `wmstats bench report`{' --quick' if config.get('quick') else ''}"
             f" at {sizes} mock workflows (mock generator defaults), "
             f"{fmt(results.get('duration_s'))} s in all. Every figure is in "
             f"[`{json_link}`]({json_link}).", "",
             *_merged_lines(results),
             "## Machine", "", *_machine_lines(results.get("machine", {})), "",
             "## Method", "", _METHOD, ""]
    couchdb_max = config.get("couchdb_max")
    if couchdb_max:
        lines += [f"CouchDB (a pouchdb-server started by the benchmark, in memory) is measured "
                  f"only up to {couchdb_max:,} workflows: its load of 100,000 workflows takes "
                  f"about 8 minutes here, so it is not run at larger sizes.", ""]
    skipped = results.get("skipped", {})
    for section, why in skipped.items():
        lines += [f"Section `{section}` not run: {why}.", ""]
    failed = [r for r in results.get("runs", []) if r.get("error")]
    for run in failed:
        lines += [f"**Failed:** `{run['section']}` at {run['workflows']:,} workflows "
                  f"({run['error']}).", ""]
    lines += ["## Targets", "",
              _markdown_table(["target", "measured", "workflows", "status", "note"],
                              [[t["target"], t["measured"],
                                f"{t['workflows']:,}" if t["workflows"] else "-",
                                f"**{t['status']}**", t["note"]]
                               for t in results.get("targets", [])], numeric=False), ""]
    plot_files = results.get("plots", {})
    titles = {"representation": "Representation: dynamic documents vs static records",
              "memory": "Resident memory", "converter": "Converter",
              "stores": "Stores", "server": "Cache server",
              "production": "Cache server, production-sized workflows",
              "couchdb-source": "CouchDB source",
              "couchdb-restart": "CouchDB source: warm restarts (sqlite store)",
              "ui": "UI in a real browser", "reqmon": "Next to reqmon"}
    plot_sections = {"representation-bytes.svg": "representation",
                     "representation-cpu.svg": "representation", "memory.svg": "memory",
                     "stores-load.svg": "stores", "stores-query.svg": "stores",
                     "server-pages.svg": "server", "server-stream.svg": "server",
                     "server-clients.svg": "server", "couchdb-source.svg": "couchdb-source",
                     "couchdb-restart.svg": "couchdb-restart",
                     "ui.svg": "ui", "reqmon.svg": "reqmon"}
    by_section: dict[str, list[tuple[str, list[str], list[list[str]]]]] = {}
    for section, title, header, body in tables(results):
        by_section.setdefault(section, []).append((title, header, body))
    for section, section_tables in by_section.items():
        lines += [f"## {titles.get(section, section)}", ""]
        intro = _INTROS.get(section, "").format(couchdb_max=couchdb_max or 0,
                                                reqmon_max=config.get("reqmon_max") or 0)
        if intro:
            lines += [intro, ""]
        for title, header, body in section_tables:
            lines += [f"### {title}", "", _markdown_table(header, body), ""]
        lines += [f"![{plot_title}]({svg_dir}/{name})" + "\n"
                  for name, plot_title in plot_files.items()
                  if plot_sections.get(name) == section]
    rows = growth(results)
    if rows:
        lines += ["## Scaling", "",
                  "Growth exponent: the slope of log(figure) over log(workflows) between the "
                  "smallest and the largest size (1 = linear, 0 = constant).", "",
                  _markdown_table(["figure", "workflows", "first", "last", "exponent",
                                   "growth"], rows), ""]
    runs = results.get("runs", [])
    if runs:
        lines += ["## Runs", "",
                  "Each benchmark subprocess, its wall time and when it finished"
                  + (f" (this report merges {len(earlier_invocations(results)) + 1} "
                     f"invocations)" if results.get("merged_from") else "") + ".", "",
                  _markdown_table(["benchmark", "workflows", "seconds", "finished", "status"],
                                  [[r["section"], f"{r['workflows']:,}", fmt(r["seconds"]),
                                    r.get("finished", "-"), r.get("error", "ok")]
                                   for r in runs]), ""]
    lines += ["## Reproduce", "", "```sh",
              "wmstats bench report                    # 1k / 10k / 100k: rewrites docs/"
              "benchmarks.md, docs/bench/",
              "wmstats bench report --quick --out /tmp/bench        # the CI smoke size "
              "(~1 minute)",
              "wmstats bench report --sizes 1k,10k --sections stores,server --out /tmp/b",
              "wmstats bench report --sections ui --merge docs/bench/results.json  "
              "# add one section",
              "wmstats bench report --from-json docs/bench/results.json   "
              "# re-render only",
              "wmstats bench report --sizes 10k,40k --sections reqmon --out /tmp/r  "
              "# issue 13's fill and bytes",
              "wmstats bench representation|stores|server|ui|couchdb-source|wmcore --help  "
              "# one benchmark",
              "```", "",
              f"The command that made this report: `{results.get('command', '-')}`"
              + "".join(f", merged into the results of `{inv['command']}`"
                        for inv in reversed(earlier_invocations(results))
                        if inv.get("command"))
              + ".", ""]
    return "\n".join(lines)


def print_tables(results: Mapping[str, Any], out: IO[str] | None = None) -> None:
    """The tables and the targets as plain text (on ``out``, default stdout)."""
    out = out or sys.stdout
    for _section, title, header, body in tables(results):
        out.write(f"\n== {title} ==\n{_text_table(header, body)}\n")
    rows = growth(results)
    if rows:
        out.write("\n== Scaling (log-log slope) ==\n" + _text_table(
            ["figure", "workflows", "first", "last", "exponent", "growth"], rows) + "\n")
    out.write("\n== Targets ==\n" + _text_table(
        ["target", "measured", "status"],
        [[t["target"], t["measured"], t["status"]] for t in results.get("targets", [])]) + "\n")
    out.flush()
