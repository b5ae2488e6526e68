"""The pouchdb-server test helper (start, stop, restart, ports in use) and its fixtures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from wmstats.testing import couchdb_server as cs
from wmstats.testing import fixtures
from wmstats.testing.couchdb_server import (
    CouchDatabase,
    CouchServerError,
    ExternalCouchServer,
    PouchServer,
    find_pouchdb_bin,
    free_port,
    server_from_environment,
)


def _bin() -> Path:
    return fixtures.require_pouchdb_bin()


def _get(url: str, method: str = "GET", body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still counts as existing; look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def pouchdb_bin() -> Path:
    return _bin()


@pytest.fixture
def listener() -> Iterator[int]:
    """A port held by a plain listening socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_start_answers_and_stop_ends_process(pouchdb_bin: Path) -> None:
    server = PouchServer(pouchdb_bin)
    with server:
        assert server.is_running()
        pid = server.pid
        assert pid is not None
        assert server.url == f"http://127.0.0.1:{server.port}"
        welcome = _get(server.url + "/")
        assert isinstance(welcome, dict) and "version" in welcome
        workdir = server.workdir
        assert workdir is not None and (workdir / "config.json").is_file()
    assert not server.is_running()
    assert server.pid is None
    assert not _alive(pid)
    assert not workdir.exists()
    server.close()  # twice is harmless


def test_restart_keeps_port_and_on_disk_data(pouchdb_bin: Path) -> None:
    with PouchServer(pouchdb_bin, in_memory=False) as server:
        port, pid = server.port, server.pid
        _get(server.url + "/db", "PUT")
        _get(server.url + "/db/doc", "PUT", {"x": 1})
        server.restart()
        assert server.port == port
        assert server.pid != pid
        assert _get(server.url + "/db/doc")["x"] == 1  # type: ignore[index]


def test_kill_then_restart(pouchdb_bin: Path) -> None:
    with PouchServer(pouchdb_bin) as server:
        pid = server.pid
        assert pid is not None
        server.kill()
        assert not server.is_running()
        assert not _alive(pid)
        with pytest.raises(OSError):
            _get(server.url + "/")
        server.restart()
        assert server.is_running()
        assert isinstance(_get(server.url + "/"), dict)


def test_stop_then_start_again(pouchdb_bin: Path) -> None:
    with PouchServer(pouchdb_bin) as server:
        server.stop()
        assert not server.is_running()
        server.start()
        assert server.is_running()
        assert server.start() is server  # already running: no-op


def test_fixed_port_in_use_fails_with_server_output(pouchdb_bin: Path, listener: int) -> None:
    server = PouchServer(pouchdb_bin, port=listener, startup_timeout=10)
    with pytest.raises(CouchServerError, match="in use") as info:
        with server:
            pass
    assert "already in use" in str(info.value)
    assert server.workdir is None  # cleaned up after the failure


def test_taken_port_is_retried_on_another(pouchdb_bin: Path, listener: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ports = iter([listener])
    real_free_port = cs.free_port
    monkeypatch.setattr(cs, "free_port", lambda host="127.0.0.1": next(ports, None)
                        or real_free_port(host))
    with PouchServer(pouchdb_bin) as server:
        assert server.port != listener
        assert isinstance(_get(server.url + "/"), dict)


def test_another_pouchdb_on_the_port_is_not_mistaken_for_ours(pouchdb_bin: Path) -> None:
    with PouchServer(pouchdb_bin) as first:
        second = PouchServer(pouchdb_bin, port=first.port, startup_timeout=10)
        with pytest.raises(CouchServerError, match="in use"):
            second.start()
        second.close()
        assert first.is_running()


def test_dead_server_reports_its_output(tmp_path: Path) -> None:
    script = tmp_path / "bad-server"
    script.write_text("console.error('boom: cannot start'); process.exit(3);\n")
    with pytest.raises(CouchServerError, match="status 3") as info:
        with PouchServer(script, startup_timeout=10):
            pass
    assert "boom: cannot start" in str(info.value)


def test_missing_node_is_a_server_error(pouchdb_bin: Path) -> None:
    with pytest.raises(CouchServerError, match="Node.js"):
        with PouchServer(pouchdb_bin, node="/nonexistent/node"):
            pass


def test_missing_bin_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv(cs.BIN_ENV, str(tmp_path / "nope"))
    with pytest.raises(CouchServerError, match="install-pouchdb.sh"):
        find_pouchdb_bin()
    monkeypatch.delenv(cs.BIN_ENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cs, "_candidate_bins", lambda: [tmp_path / "x"])
    with pytest.raises(CouchServerError, match="install-pouchdb.sh"):
        find_pouchdb_bin()


def test_bin_from_environment(monkeypatch: pytest.MonkeyPatch, pouchdb_bin: Path) -> None:
    monkeypatch.setenv(cs.BIN_ENV, str(pouchdb_bin))
    assert find_pouchdb_bin() == pouchdb_bin


def test_launcher_needs_no_pytest() -> None:
    """The benchmarks start pouchdb-server with it in a plain install, without pytest."""
    code = ("import sys, wmstats.testing.couchdb_server, wmstats.testing.ui_harness\n"
            "print(sorted(m for m in ('pytest', 'playwright', 'hypothesis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_unavailable_fails_in_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception,
                       match=r"CouchDB test server unavailable \(CI is set.*: no server"):
        fixtures.unavailable("CouchDB test server", "no server")
    for value in ("", "false", "0"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception, match="no server"):
            fixtures.unavailable("CouchDB test server", "no server")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        fixtures.unavailable("CouchDB test server", "no server")


def test_external_server_from_environment(monkeypatch: pytest.MonkeyPatch,
                                          couchdb_server: cs.CouchServer) -> None:
    monkeypatch.setenv(cs.URL_ENV, couchdb_server.url + "/")
    with server_from_environment() as server:
        assert isinstance(server, ExternalCouchServer)
        assert server.url == couchdb_server.url
    monkeypatch.setenv(cs.URL_ENV, f"http://user:secret@127.0.0.1:{free_port()}")
    with pytest.raises(CouchServerError, match="no CouchDB answers") as info:
        with server_from_environment():
            pass
    assert "secret" not in str(info.value)


def test_database_fixture_gives_fresh_names_and_cleans_up(
        couchdb_database: CouchDatabase) -> None:
    url = couchdb_database.url
    assert couchdb_database.name.startswith("wmstats_test_")
    _get(url, "PUT")
    _get(url + "_snapshot_1", "PUT")
    _get(couchdb_database.server.url + "/other_" + couchdb_database.name, "PUT")
    couchdb_database.delete_all()
    names = _get(couchdb_database.server.url + "/_all_dbs")
    assert isinstance(names, list)
    assert not [n for n in names if n.startswith(couchdb_database.name)]
    assert "other_" + couchdb_database.name in names
    _get(couchdb_database.server.url + "/other_" + couchdb_database.name, "DELETE")
