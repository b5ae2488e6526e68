"""``wmstats bench couchdb-source --store sqlite``: the warm restarts, at a tiny size,
against a real pouchdb-server (the session's) and real cache server processes.

Timings are never checked: only that each restart was a resume that showed the
changes made while the server was down, and that a restart that loads everything
fails the benchmark instead of being timed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import pytest

from wmstats.bench import couchdb_source
from wmstats.testing.couchdb_server import CouchServer


def test_restarts_resume_and_show_the_changes_made_while_down(
        couchdb_server: CouchServer, tmp_path: Path) -> None:
    path = tmp_path / "restart.json"
    status = couchdb_source.main(["--url", couchdb_server.url, "--workflows", "30",
                                  "--updates", "2", "--bulk", "0", "--store", "sqlite",
                                  "--restarts", "2", "--down-changes", "6",
                                  "--json", str(path)])
    assert status == 0
    document = json.loads(path.read_text())
    assert document["benchmark"] == "couchdb-source" and document["workflows"] == 30
    assert document["details"]["store"] == "sqlite" and document["details"]["jobs"] is True
    f = document["results"]
    assert f["warm_restarts"] == 2 and f["warm_restart_changed_documents"] == 6
    assert f["jobsummaries"] > 0 and f["agent_documents"] >= f["jobsummaries"]
    assert f["cold_start_seconds"] > 0 and f["sqlite_file_mib"] > 0
    assert 0 < f["warm_restart_seconds_min"] <= f["warm_restart_seconds_median"] \
        <= f["warm_restart_seconds_max"]
    assert f["warm_over_cold_start"] == pytest.approx(
        f["warm_restart_seconds_median"] / f["cold_start_seconds"])
    rounds = document["details"]["warm_restarts"]
    assert len(rounds) == 2
    for restart in rounds:
        # Resumed, not loaded, and applied at least the documents changed while down.
        assert restart["source"]["resumes"] == 1 and restart["source"]["loads"] == 0
        assert restart["source"]["updates_applied"] >= 6
        assert restart["changed_while_down"] == 6


def test_a_restart_that_loads_everything_fails_the_benchmark(
        couchdb_server: CouchServer, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    start = couchdb_source._start_server

    def forgetful(source_url: str, store_url: str, log: IO[str], timeout: float) -> Any:
        # The sqlite file (and its checkpoint) gone before the restart: a full load.
        if started:
            file = store_url.removeprefix("sqlite:///")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(file + suffix):
                    os.remove(file + suffix)
        started.append(store_url)
        return start(source_url, store_url, log, timeout)

    monkeypatch.setattr(couchdb_source, "_start_server", forgetful)
    with pytest.raises(RuntimeError, match="restart 1 did not resume from the kept "
                                           "sequences: loads=1, resumes=0"):
        couchdb_source.measure(couchdb_server.url, 20, updates=1, bulk=0, store="sqlite",
                               restarts=1, down_changes=2)
    assert len(started) == 2 and started[0].startswith("sqlite:///")


@pytest.mark.parametrize("argv", [["--restarts", "2"],  # the memory store keeps no checkpoint
                                  ["--store", "sqlite", "--restarts", "-1"],
                                  ["--store", "sqlite", "--down-changes", "0"],
                                  ["--store", "nope"]])
def test_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        couchdb_source.main(["--workflows", "10", *argv])
    assert exc.value.code == 2
    assert "wmstats bench couchdb-source: error:" in capsys.readouterr().err
