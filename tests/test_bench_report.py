"""``wmstats bench report --quick``: the report is produced and well-formed.

One real quick run (every benchmark in its own subprocess, the cache server and,
when pouchdb-server is found -- always in CI -- CouchDB; the couchdb-source and UI
benchmarks when installed and runnable here) feeds the checks below.
Timings are never checked against targets: only that each figure is there and
sane (finite, positive where it must be).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from wmstats.bench import _render, report
from wmstats.bench._common import envelope, percentile, rss_kib, spread
from wmstats.bench._svg import line_plot
from wmstats.cli import main as cli_main
from wmstats.testing.couchdb_server import in_ci

SVG = "{http://www.w3.org/2000/svg}"
QUICK_SIZES = ("200", "1000")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    out = tmp_path_factory.mktemp("report")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = cli_main(["bench", "report", "--quick", "--out", str(out),
                           "--log", str(out / "run.log")])
    return status, out, buffer.getvalue()


@pytest.fixture(scope="module")
def results(quick_run: tuple[int, Path, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((quick_run[1] / "bench" / "results.json").read_text())
    return data


def _numbers(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(path, float(value))]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{path}[{i}]")]
    return []


def test_quick_run_succeeds(quick_run: tuple[int, Path, str], results: dict[str, Any]) -> None:
    status, out, stdout = quick_run
    log = (out / "run.log").read_text()
    assert status == 0, log[-5000:]
    assert [r for r in results["runs"] if r.get("error")] == []
    assert "== Targets ==" in stdout
    assert "== memory store ==" in stdout and "== cache server on the sqlite store ==" in stdout


def test_json_has_machine_and_config(results: dict[str, Any]) -> None:
    machine = results["machine"]
    for key in ("cpu", "cores", "ram_gib", "os", "python", "packages", "date", "git_commit"):
        assert key in machine
    assert machine["cores"] >= 1 and machine["packages"]["wmstats"]
    assert results["config"]["quick"] is True
    assert results["config"]["sizes"] == [200, 1000]
    assert results["duration_s"] > 0


def test_every_number_is_finite(results: dict[str, Any]) -> None:
    bad = [(path, v) for path, v in _numbers(results) if not math.isfinite(v)]
    assert bad == []


def _figures(results: dict[str, Any], section: str, size: str) -> dict[str, float]:
    document = results["sections"][section][size]
    assert document["benchmark"] in ("representation", "stores", "server")
    assert str(document["workflows"]) == size
    figures: dict[str, float] = document["results"]
    return figures


@pytest.mark.parametrize("size", QUICK_SIZES)
def test_representation_figures(results: dict[str, Any], size: str) -> None:
    f = _figures(results, "representation", size)
    assert f["workflows"] == int(size) and f["documents"] > int(size)
    positive = ["dynamic_bytes", "static_bytes", "static_workflow_only_bytes",
                "dynamic_gzip_bytes", "static_gzip_bytes", "convert_docs_per_s",
                "rss_dynamic_dicts_held_mib", "rss_static_records_held_mib"]
    for kind in ("dynamic", "static"):
        for op in ("parse_ujson", "parse_json", "serialize_ujson", "serialize_json"):
            positive += [f"{kind}_{op}_s", f"{kind}_{op}_us_per_workflow"]
    for key in positive:
        assert f[key] > 0, key
    assert f["dynamic_gzip_bytes"] < f["dynamic_bytes"]
    assert f["static_workflow_only_bytes"] < f["static_bytes"]
    assert f["dynamic_parse_ujson_s_min"] <= f["dynamic_parse_ujson_s"] <= \
        f["dynamic_parse_ujson_s_max"]
    for variant in ("dynamic_dicts", "dynamic_text", "static_records", "static_workflows"):
        assert f[f"rss_{variant}_held_mib"] >= 0
        assert f[f"rss_{variant}_peak_mib"] > 0
    assert f["static_over_dynamic_bytes"] == pytest.approx(
        f["static_bytes"] / f["dynamic_bytes"])


def test_optional_sections_ran_or_say_why(results: dict[str, Any]) -> None:
    for section in ("couchdb-source", "ui"):
        if section in results["sections"]:
            (document,) = results["sections"][section].values()
            assert document["benchmark"] == section and document["workflows"] == 200
            assert document["results"] and all(
                math.isfinite(v) for v in document["results"].values())
        else:
            assert results["skipped"][section]
    if "couchdb-restart" in results["sections"]:
        (document,) = results["sections"]["couchdb-restart"].values()
        assert document["benchmark"] == "couchdb-source" and document["workflows"] == 200
        assert document["details"]["store"] == "sqlite"
        f = document["results"]
        assert f["warm_restarts"] == 3 and f["cold_start_seconds"] > 0
        assert 0 < f["warm_restart_seconds_min"] <= f["warm_restart_seconds_median"]
        assert f["jobsummaries"] > 0
        assert [r["source"]["resumes"] for r in document["details"]["warm_restarts"]] == [1] * 3
    else:
        assert results["skipped"]["couchdb-restart"]
    if in_ci():  # pouchdb-server is installed in CI: the CouchDB source must run
        assert {"couchdb-source", "couchdb-restart"} <= set(results["sections"])
    # --quick never runs reqmon (its start and fill are slow); it says why.
    assert "reqmon" not in results["sections"] and results["skipped"]["reqmon"]


_WITHOUT_PLAYWRIGHT = """
import sys
sys.modules["playwright"] = None  # as in a plain install: import playwright fails
from wmstats.bench import report, ui
print(repr(report.unavailable("ui")))
sys.exit(ui.main(["--workflows", "10"]))
"""


def test_ui_benchmark_without_playwright_says_it_is_unavailable() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_PLAYWRIGHT], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "'playwright is not installed'"
    assert done.stderr.startswith("wmstats bench ui: unavailable: playwright is not installed")
    assert "Traceback" not in done.stderr


def test_converter_shapes(results: dict[str, Any]) -> None:
    (document,) = results["sections"]["converter"].values()
    f = document["results"]
    for shape in ("1x1", "3x5", "10x30", "20x60"):
        assert f[f"shape_{shape}_docs_per_s"] > 0
        assert f[f"shape_{shape}_records_per_workflow"] >= 1
    assert f["shape_1x1_records_per_workflow"] < f["shape_20x60_records_per_workflow"]


@pytest.mark.parametrize("size", QUICK_SIZES)
def test_store_figures(results: dict[str, Any], size: str) -> None:
    f = _figures(results, "stores", size)
    backends = ["memory", "sqlite"]
    if size == "200" and (in_ci() or report.pouchdb_available()):
        backends.append("couchdb")
    for backend in backends:
        for key in ("load_s", "load_per_s", "filtered_page_p50_ms", "deep_page_p50_ms",
                    "get_p50_ms", "stream_records_per_s", "stream_gzip_bytes", "rss_peak_mib"):
            assert f[f"{backend}.{key}"] > 0, (backend, key)
        assert f[f"{backend}.filtered_page_p99_ms"] >= f[f"{backend}.filtered_page_p50_ms"]
        assert f[f"{backend}.deep_page_p99_ms"] >= f[f"{backend}.deep_page_p50_ms"]
    if "couchdb" in backends:
        assert f["couchdb.server_rss_after_mib"] > 0
    else:
        assert not any(k.startswith("couchdb.") for k in f)
    assert f["sqlite.db_file_mib"] > 0


@pytest.mark.parametrize("size", QUICK_SIZES)
def test_server_figures(results: dict[str, Any], size: str) -> None:
    f = _figures(results, "server", size)
    for store in ("memory", "sqlite"):
        assert f[f"{store}.streams"] == 20
        assert f[f"{store}.stream_records"] == int(size)
        for key in ("page_p50_ms_max", "page_p99_ms_max", "stream_s", "stream_records_per_s",
                    "stream_gzip_bytes", "rss_loaded_mb", "rss_before_streams_mb",
                    "rss_after_streams_mb", "rss_peak_mb", "load_seconds"):
            assert f[f"{store}.{key}"] > 0, (store, key)
        assert f[f"{store}.page_p99_ms_max"] >= f[f"{store}.page_p50_ms_max"]
        cases = [k for k in f if k.startswith(f"{store}.page[") and k.endswith(".p50_ms")]
        assert len(cases) >= 8  # several idx, with and without filters
        for clients in (1, 4, 16):
            assert f[f"{store}.clients_{clients}.requests_per_s"] > 0
            assert f[f"{store}.clients_{clients}.failures"] == 0
    # Measured after the server's background zstd frames (zstandard is a test extra):
    # the memory store keeps them, so the wait is reported; the sqlite store keeps
    # none (no encoded runs), so there is nothing to wait for.
    assert f["memory.zstd_frames_wait_seconds"] >= 0
    assert "sqlite.zstd_frames_wait_seconds" not in f


def test_production_sized_server(results: dict[str, Any]) -> None:
    # At the largest size only, memory store, production-sized workflows: they hold
    # more per workflow than the generator's defaults.
    assert sorted(results["sections"]["production"]) == ["1000"]
    f = _figures(results, "production", "1000")
    assert f["memory.stream_records"] == 1000 and "sqlite.stream_records" not in f
    assert f["memory.stream_raw_bytes"] > _figures(results, "server", "1000")[
        "memory.stream_raw_bytes"]
    row = {r["target"]: r for r in results["targets"]}[
        "issue 13: resident memory <= 1 GiB on production-sized workflows (memory store)"]
    assert row["status"] in ("met", "not met") and row["workflows"] == 1000


def test_targets_table(results: dict[str, Any]) -> None:
    rows = results["targets"]
    assert {r["status"] for r in rows} <= {"met", "not met", "not measured here"}
    by_target = {r["target"]: r for r in rows}
    assert by_target["static <= half of dynamic: size, raw"]["status"] != "not measured here"
    assert by_target["page fetch p50 <= 5 ms (memory store; limit=100, every idx/filter case)"][
        "workflows"] == 1000
    for section, target in (("ui", "UI: first render <= 1.5 s (real browser)"),
                            ("couchdb-source", "CouchDB: a changed document visible through "
                                               "the API within 2 s"),
                            ("couchdb-restart", "issue 13: warm restart ready <= 5 s (sqlite "
                                                "store, CouchDB source)")):
        if section in results["sections"]:
            assert by_target[target]["status"] in ("met", "not met")
            assert by_target[target]["workflows"] == 200
        else:
            assert by_target[target]["status"] == "not measured here"
    for target in ("issue 13: CouchDB full load <= 0.5x reqmon's fill (same data, one run)",
                   "issue 13: full fetch <= 0.1x reqmon's gzip bytes (zstd)"):
        assert by_target[target]["status"] == "not measured here"


def test_markdown_and_plots(quick_run: tuple[int, Path, str], results: dict[str, Any]) -> None:
    out = quick_run[1]
    text = (out / "benchmarks.md").read_text()
    assert text.startswith("# Benchmarks\n")
    for heading in ("## Machine", "## Method", "## Targets",
                    "## Stores", "## Cache server", "## Scaling"):
        assert heading in text
    # Tables: every row has as many cells as its header.
    for block in re.split(r"\n\n", text):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            widths = {ln.count(" | ") for ln in lines if not ln.startswith("|--")}
            assert len(widths) == 1, block
    images = re.findall(r"!\[[^\]]+\]\((bench/[^)]+\.svg)\)", text)
    assert len(images) >= 6
    assert sorted(p.name for p in (out / "bench").glob("*.svg")) == sorted(
        Path(i).name for i in images) == sorted(results["plots"])
    for image in images:
        root = ET.parse(out / image).getroot()
        assert root.tag == f"{SVG}svg"
        assert root.findtext(f"{SVG}title")
        assert root.findall(f".//{SVG}polyline"), image  # two sizes: a line per series


def test_line_plot_is_valid_svg_and_skips_non_positive() -> None:
    svg = line_plot("t <&>", "workflows", "ms", {"a": [(1000, 2.0), (10_000, 3.5)],
                                                 "zero": [(1000, 0.0), (10_000, -1.0)],
                                                 "nan": [(1000, math.nan)]})
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == "t <&>"
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "zero (no data)" in labels and "a" in labels
    assert len(root.findall(f"{SVG}polyline")) == 1


def test_helpers() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert math.isnan(percentile([], 0.5))
    assert spread([1.0, 2.0, 3.0], 1e3) == {"p50": 2000.0, "p99": 3000.0, "min": 1000.0,
                                             "max": 3000.0}
    assert rss_kib()["VmRSS"] > 0
    doc = envelope("x", 5, {"a": 1, "b": math.inf, "c": None, "d": 2.5})
    assert doc["results"] == {"a": 1, "d": 2.5} and doc["machine"]["cores"]
    assert _render.fmt(1234567.0) == "1,234,567" and _render.fmt(0.01234) == "0.0123"
    assert _render.fmt(None) == "-" and _render.fmt(12.34) == "12.3"


def test_optional_sections_render_generically() -> None:
    """Figures from couchdb-source / ui map into the targets when their names match."""
    results: dict[str, Any] = {"sections": {
        "couchdb-source": {"1000": {"results": {"change_visible_p50_ms": 800.0,
                                                "change_visible_p99_ms": 1900.0,
                                                "source_load_seconds": 12.0,
                                                "read_decode_seconds": 10.0,
                                                "read_raw_seconds": 4.0}}},
        "couchdb-restart": {"1000": {"results": {"cold_start_seconds": 9.4,
                                                 "warm_restart_seconds_median": 6.2,
                                                 "warm_restart_seconds_min": 5.5,
                                                 "warm_restarts": 3}}},
        "ui": {"1000": {"results": {"first_render_ms": 2000.0, "filter_change_ms": 120.0}}},
    }}
    warm = {r["target"]: r for r in _render.targets(results)}[
        "issue 13: warm restart ready <= 5 s (sqlite store, CouchDB source)"]
    assert warm["status"] == "not met" and warm["workflows"] == 1000
    assert warm["measured"].startswith("6.20 s, median of 3 restarts (cold start 9.40 s")
    results["sections"]["couchdb-restart"]["1000"]["results"][
        "warm_restart_seconds_median"] = 4.0
    rows = {r["target"]: r["status"] for r in _render.targets(results)}
    assert rows["issue 13: warm restart ready <= 5 s (sqlite store, CouchDB source)"] == "met"
    assert rows["CouchDB: a changed document visible through the API within 2 s"] == "met"
    assert rows["CouchDB: full load close to the speed of reading _all_docs"] == "met"
    assert rows["UI: first render <= 1.5 s (real browser)"] == "not met"
    assert rows["UI: filter change <= 300 ms"] == "met"
    titles = [t[1] for t in _render.tables(results)]
    assert any(t.startswith("ui") for t in titles)
    assert "couchdb-restart (as reported by 'wmstats bench couchdb-source --store sqlite')" \
        in titles
    results["sections"]["couchdb-restart"]["10000"] = {"results": {
        "cold_start_seconds": 90.0, "warm_restart_seconds_median": 40.0, "seed_seconds": 60.0}}
    results["sections"]["ui"]["10000"] = {"results": {"first_render_ms_p50": 2500.0,
                                                      "first_render_ms_max": 9000.0}}
    drawn = _render.plots(results)
    root = ET.fromstring(drawn["ui.svg"][1])
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "first_render_ms_p50" in labels and "first_render_ms_max" not in labels
    assert "couchdb-source.svg" not in drawn  # one size only: nothing to plot
    labels = [t.text for t in ET.fromstring(drawn["couchdb-restart.svg"][1]).iter(f"{SVG}text")]
    assert "warm_restart_seconds_median" in labels and "cold_start_seconds" in labels
    assert "seed_seconds" not in labels  # the restart figures only


def test_plan_caps_couchdb_and_runs_shapes_once() -> None:
    config = report.Config.full(["representation", "converter", "stores", "server"])
    runs = report.plan(config)
    stores = {r.workflows: r.args for r in runs if r.section == "stores"}
    assert "couchdb" in stores[10_000][1] and "couchdb" not in stores[100_000][1]
    assert [r.section for r in runs].count("converter") == 1
    assert sorted({r.workflows for r in runs if r.section == "server"}) == [
        1_000, 10_000, 100_000]
    production = report.plan(report.Config.full(["production"]))
    assert [(r.section, r.workflows) for r in production] == [("production", 100_000)]
    assert "production" in production[0].args and "memory" in production[0].args
    optional = report.plan(report.Config.full(["couchdb-source", "couchdb-restart", "ui"]))
    assert [(r.section, r.workflows) for r in optional] == [
        ("couchdb-source", 1_000), ("couchdb-restart", 1_000), ("ui", 1_000),
        ("couchdb-source", 10_000), ("couchdb-restart", 10_000), ("ui", 10_000),
        ("ui", 100_000)]
    restart = [r for r in optional if r.section == "couchdb-restart"][0]
    assert restart.benchmark == "couchdb-source"
    assert restart.args[:2] == ("--store", "sqlite") and "--restarts" not in restart.args
    assert [r.benchmark for r in optional if r.section == "couchdb-source"] == [
        "couchdb-source"] * 2
    assert all("--store" not in r.args for r in optional if r.section == "couchdb-source")
    quick = report.plan(report.Config.quick_run(["couchdb-source", "couchdb-restart", "ui"]))
    assert [(r.section, r.workflows) for r in quick] == [
        ("couchdb-source", 200), ("couchdb-restart", 200), ("ui", 200)]


@pytest.mark.parametrize("argv", [["--sizes", "0"], ["--sizes", "x"],
                                  ["--sections", "nope"], ["--repeat", "0"]])
def test_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        report.main([*argv, "--out", "/nonexistent/never-written"])
    assert exc.value.code == 2
    assert "wmstats bench report: error:" in capsys.readouterr().err


def test_rebuild_from_json_and_merge(quick_run: tuple[int, Path, str], results: dict[str, Any],
                                     tmp_path: Path) -> None:
    source = quick_run[1] / "bench" / "results.json"
    with contextlib.redirect_stdout(io.StringIO()):
        assert report.main(["--from-json", str(source), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks\n")
    assert json.loads((tmp_path / "bench" / "results.json").read_text())["sections"] == \
        results["sections"]
    latest: dict[str, Any] = {
        "sections": {"ui": {"1000": {"results": {"first_render_ms_p50": 900.0}}},
                     "server": {"1000": {"results": {"memory.stream_s": 1.0}}}},
        "runs": [{"section": "ui", "workflows": 1000, "seconds": 5.0, "status": 0}],
        "duration_s": 5.0, "config": {"sizes": [1000]}}
    # Each run names its invocation (its start), which a merged report reads.
    assert all(run["invocation"] == results["machine"]["date"] for run in results["runs"])
    merged = report.merge(results, latest)
    assert merged["sections"]["server"]["1000"]["results"] == {"memory.stream_s": 1.0}
    assert merged["sections"]["server"]["200"] == results["sections"]["server"]["200"]
    assert merged["sections"]["representation"] == results["sections"]["representation"]
    assert len(merged["runs"]) == len(results["runs"]) + 1
    assert merged["config"]["sizes"] == [200, 1000]
    assert [inv["date"] for inv in merged["merged_from"]] == [results["machine"]["date"]]
    assert merged["merged_from"][0]["machine"]["cpu"] == results["machine"]["cpu"]


def test_merged_reports_name_every_invocation_and_its_machine(
        results: dict[str, Any]) -> None:
    """Merging again keeps every earlier invocation, and the report says which sections
    each ran, and on which machine when they differ."""
    from wmstats.bench._render import build_markdown

    def invocation_of(date: str, cpu: str, section: str) -> dict[str, Any]:
        machine = {**results["machine"], "date": date, "git_commit": f"c-{date}", "cpu": cpu}
        return {"machine": machine, "command": f"wmstats bench report --sections {section}",
                "config": {"sizes": [1000]}, "duration_s": 1.0,
                "sections": {section: {"1000": {"results": {"x": 1.0}}}},
                "runs": [{"section": section, "workflows": 1000, "seconds": 1.0,
                          "finished": date.replace("T00", "T01"), "status": 0,
                          "invocation": date}]}

    first = invocation_of("2026-01-01T00:00:00+00:00", "CPU A", "ui")
    second = invocation_of("2026-01-02T00:00:00+00:00", "CPU A", "server")
    same = report.merge(first, second)
    text = build_markdown(same)
    assert "merges 2 invocations, on the same machine (below):" in text
    assert "started 2026-01-01T00:00:00+00:00 (commit c-2026-01-01T00:00:00+00:00): `ui`" \
        in text
    third = invocation_of("2026-01-03T00:00:00+00:00", "CPU B", "reqmon")
    both = report.merge(same, third)
    assert [inv["date"][:10] for inv in both["merged_from"]] == ["2026-01-01", "2026-01-02"]
    text = build_markdown(both)
    assert "merges 3 invocations, not all on the same machine, or not known to be" in text
    assert "CPU A (" in text and "): `server`" in text and "): `reqmon`" in text
    assert "same machine (below)" not in text
    # An entry an older version wrote (one, without the machine) still reads.
    legacy = {**second, "merged_from": {"date": "2025-12-31T00:00:00+00:00",
                                        "git_commit": "old", "command": "old command"}}
    text = build_markdown(report.merge(legacy, third))
    assert "machine not recorded" in text and "`old command`" in text
    assert "started 2025-12-31T00:00:00+00:00 (commit old; machine not recorded): its runs " \
        "are not marked" in text


def test_a_run_over_its_time_is_stopped_with_its_children(tmp_path: Path) -> None:
    """A benchmark that overruns is stopped, and so are the processes it started."""
    import subprocess
    import sys
    import time

    child_pid = tmp_path / "child.pid"
    script = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
              f"'import time; time.sleep(120)']); open({str(child_pid)!r}, 'w').write("
              f"str(p.pid)); time.sleep(120)")
    with open(tmp_path / "log", "w") as log:
        start = time.monotonic()
        assert report._run_one([sys.executable, "-c", script], log, timeout=2.0) == -1
    assert time.monotonic() - start < 60
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ")[1].startswith("Z"):
                    break  # a zombie: dead, waiting for init to reap it
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        subprocess.run(["kill", "-9", str(pid)], check=False)
        raise AssertionError("the benchmark's child process survived")
