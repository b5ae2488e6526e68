"""Smoke test of ``wmstats bench representation`` (figures, not timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wmstats.bench.representation import held_rss, main, measure, measure_shapes, parse_shapes
from wmstats.mock import MockGenerator


def test_measure_counts_both_representations() -> None:
    figures = measure(40, seed=2, repeat=1)
    gen = MockGenerator(seed=2)
    assert figures["documents"] == len(list(gen.iter_documents(40)))
    assert figures["records"] == sum(len(list(b.records())) for b in gen.bundles(40)) + len(
        gen.agents())
    assert 0 < figures["static_workflow_only_bytes"] < figures["static_bytes"]
    assert figures["dynamic_gzip_bytes"] < figures["dynamic_bytes"]
    assert figures["convert_docs_per_s"] > 0
    assert figures["static_over_dynamic_bytes"] == (
        figures["static_bytes"] / figures["dynamic_bytes"])
    for key in ("dynamic_serialize_ujson_s", "static_serialize_ujson_s",
                "static_parse_json_us_per_workflow"):
        assert figures[key] > 0


def test_chunks_do_not_change_the_counts() -> None:
    whole = measure(25, seed=1, repeat=1, chunk=100)
    chunked = measure(25, seed=1, repeat=1, chunk=7, json_cap=7)
    for key in ("documents", "records", "dynamic_bytes", "static_bytes",
                "static_workflow_only_bytes"):
        assert chunked[key] == whole[key], key
    assert chunked["dynamic_gzip_bytes"] == pytest.approx(whole["dynamic_gzip_bytes"], rel=0.01)
    assert chunked["json_workflows"] == 7 and whole["json_workflows"] == 25


def test_held_rss_grows_with_what_is_held() -> None:
    figures = held_rss("static_workflows", 50)
    assert figures["held_mib"] >= 0 and figures["peak_mib"] > 0
    with pytest.raises(ValueError, match="unknown variant"):
        held_rss("nothing", 5)


def test_shapes() -> None:
    assert parse_shapes("1x1, 10x30") == [(1, 1), (10, 30)]
    for bad in ("10", "0x3", "ax3", ""):
        with pytest.raises(ValueError, match="bad shape"):
            parse_shapes(bad)
    figures = measure_shapes(10, [(1, 1), (10, 30)], repeat=1)
    assert figures["shape_1x1_docs_per_s"] > 0
    assert figures["shape_1x1_records_per_workflow"] < figures["shape_10x30_records_per_workflow"]


def test_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    assert main(["-n", "20", "--repeat", "1", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["benchmark"] == "representation" and document["workflows"] == 20
    figures = document["results"]
    assert figures["workflows"] == 20
    assert figures["rss_dynamic_dicts_held_mib"] > 0
    assert document["machine"]["python"]


def test_command_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--parts", "nope"], ["--shapes", "3"], ["-n", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
