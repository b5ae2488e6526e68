"""Smoke test of ``wmstats bench representation`` (figures, not timings)."""

from __future__ import annotations

import json
from pathlib import Path

from wmstats.bench.representation import main, measure
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


def test_command_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    assert main(["-n", "20", "--repeat", "1", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["workflows"] == 20
