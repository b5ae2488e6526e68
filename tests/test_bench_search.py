"""``wmstats bench search`` at a tiny size: it loads, serves, searches and reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wmstats.bench import BENCHMARKS, search


def test_search_benchmark_runs_and_reuses_its_file(tmp_path: Path) -> None:
    assert BENCHMARKS["search"] == "wmstats.bench.search"
    db, out = tmp_path / "s.db", tmp_path / "s.json"
    argv = ["--workflows", "60", "--archived", "0.5", "--requests", "2", "--case-seconds", "1",
            "--db", str(db), "--json", str(out)]
    assert search.main(argv) == 0
    document = json.loads(out.read_text())
    assert document["benchmark"] == "search" and document["workflows"] == 60
    assert document["details"]["reused"] is False and document["details"]["load_per_s"] > 0
    results = document["results"]
    # Every search is built from one real workflow: each finds it (at least).
    labels = [key[len("case["):-len("].matches")] for key in results
              if key.endswith(".matches")]
    assert "name *8 chars*" in labels and "date 1d newest first" in labels
    for label in labels:
        assert results[f"case[{label}].matches"] >= 1, label
        assert results[f"case[{label}].p50_ms"] > 0
    assert results["case[page idx=0].matches"] == 60
    assert results["search_p50_ms_max"] >= results["case[PrepID].p50_ms"]
    assert not any(key.startswith("cold") for key in results)
    # The second run serves the same file without loading it again; --cold also asks
    # each case once on the file dropped from the page cache, before and after the
    # server read it in.
    assert search.main([*argv, "--cold"]) == 0
    again = json.loads(out.read_text())
    assert again["details"]["reused"] is True and again["workflows"] == 60
    assert again["details"]["sample"] == document["details"]["sample"]
    results = again["results"]
    assert results["warming_seconds"] >= 0
    for mode in ("cold_at_once", "cold_after_warming"):
        firsts = again["details"][mode]
        assert list(firsts) == labels
        assert all(first["status"] == 200 and first["ms"] > 0 and first["bytes"] > 0
                   for first in firsts.values()), firsts
        assert results[f"{mode}_ms_max"] == max(first["ms"] for first in firsts.values())
        assert results[f"{mode}_over_budget"] == 0


def test_cold_is_refused_where_the_page_cache_cannot_be_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delattr(os, "posix_fadvise")
    with pytest.raises(SystemExit) as exc:
        search.main(["--workflows", "20", "--db", str(tmp_path / "s.db"), "--cold"])
    assert exc.value.code == 2
    assert "--cold drops the file from the page cache" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()  # refused before filling anything
