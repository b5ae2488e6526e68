"""``wmstats cache-server`` / ``wmstats serve``: start, answer, stop cleanly on signals."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from wmstats import serve

URL = re.compile(r"wmstats cache server: (http://127\.0\.0\.1:\d+)/")


pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


def _parse(add: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)  # type: ignore[operator]
    return parser.parse_args(argv)


def test_arguments_and_defaults() -> None:
    args = _parse(serve.add_cache_server_arguments, [])
    assert (args.store, args.host, args.port, args.mock) == ("memory://", "127.0.0.1", 8250, 0)
    args = _parse(serve.add_serve_arguments, ["--mock", "5", "--store", "sqlite:///x.db"])
    assert (args.port, args.ui_port, args.mock, args.store) == (8250, 8251, 5, "sqlite:///x.db")
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        _parse(serve.add_cache_server_arguments, ["--port", "70000"])
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        _parse(serve.add_cache_server_arguments, ["--mock", "-1"])
    args = _parse(serve.add_cache_server_arguments, [])
    assert (args.wmcore_prefix, args.no_wmcore, args.wmcore_stale_after) == (None, False, 1800)
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        _parse(serve.add_serve_arguments, ["--no-wmcore", "--wmcore-prefix", "/x"])


@contextlib.contextmanager
def _process(*argv: str, stderr: IO[str] | None = None
             ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m wmstats.serve ARGV`` until it prints its URL; killed (by PID) if left.

    :param stderr: where its stderr goes (default: with its stdout).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "wmstats.serve", *argv],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if stderr is None else stderr, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        url = None
        seen = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = URL.search(line)
            if match:
                url = match.group(1)
        assert url is not None, "".join(seen)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cache_server_process_stops_cleanly(sig: signal.Signals) -> None:
    with _process("cache-server", "--port", "0", "--mock", "15", "--quiet") as (proc, url):
        with requests.get(url + "/healthz", timeout=10) as response:
            assert response.json()["workflows"] == 15
        with requests.get(url + "/fetch?limit=2&fields=RequestName", timeout=10) as response:
            assert len(response.json()["workflows"]) == 2
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        assert "wmstats cache server: stopped" in proc.stdout.read()


@pytest.mark.parametrize(("level", "shown"), [("INFO", True), ("WARNING", False)])
def test_the_cache_server_process_writes_its_log_records(tmp_path: Path, level: str,
                                                         shown: bool) -> None:
    path, err = tmp_path / "logged.db", tmp_path / "stderr"
    with open(err, "w") as stderr, _process(
            "cache-server", "--port", "0", "--mock", "6", "--store", f"sqlite:///{path}",
            "--quiet", "--log-level", level, stderr=stderr) as (proc, url):
        # The store's warming ends with a record at INFO.
        deadline = time.monotonic() + 30
        while True:
            with requests.get(url + "/metrics", timeout=10) as response:
                if "\nwmstats_store_warming 0.0\n" in response.text:
                    break
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    output = err.read_text()
    line = re.search(r"^\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\] wmstats\.sqlite INFO: "
                     r"sqlite store: read \S*logged\.db", output, re.M)
    assert (line is not None) == shown, output


def _run_in_thread(target: object, args: argparse.Namespace
                   ) -> tuple[threading.Thread, threading.Event, list[int], io.StringIO]:
    stop = threading.Event()
    status: list[int] = []
    out = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(out):
            status.append(target(args, stop))  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    return thread, stop, status, out


def _wait_for_url(out: io.StringIO, thread: threading.Thread) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and thread.is_alive():
        match = URL.search(out.getvalue())
        if match:
            return match.group(1)
        time.sleep(0.02)
    raise AssertionError(out.getvalue())


def test_serve_runs_the_cache_server_in_process(tmp_path: object) -> None:
    args = _parse(serve.add_serve_arguments, ["--port", "0", "--ui-port", "0", "--mock", "8",
                                              "--quiet"])
    with contextlib.redirect_stderr(io.StringIO()):
        thread, stop, status, out = _run_in_thread(serve.run_serve, args)
        try:
            url = _wait_for_url(out, thread)
            with requests.get(url + "/info", timeout=10) as response:
                assert response.json()["backend"] == "memory"
            # The UI server starts after the cache server: wait for its line, then
            # check that it serves the page and reads the cache server.
            deadline = time.monotonic() + 30
            ui = None
            while ui is None and time.monotonic() < deadline:
                ui = re.search(r"wmstats UI server: (http://\S+?)/?$", out.getvalue(), re.M)
                time.sleep(0.02)
            assert ui is not None, out.getvalue()
            with requests.get(ui.group(1) + "/", timeout=10) as response:
                assert response.status_code == 200
                assert "text/html" in response.headers["Content-Type"]
        finally:
            stop.set()
            thread.join(timeout=30)
    assert status == [0]
    assert "wmstats: stopped" in out.getvalue()


def test_cache_server_on_sqlite(tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    path = f"{tmp_path}/served.db"
    args = _parse(serve.add_cache_server_arguments,
                  ["--port", "0", "--mock", "6", "--store", f"sqlite:///{path}", "--quiet"])
    caplog.set_level("INFO", logger="wmstats.sqlite")
    with contextlib.redirect_stderr(io.StringIO()):
        thread, stop, status, out = _run_in_thread(serve.run_cache_server, args)
        try:
            url = _wait_for_url(out, thread)
            with requests.get(url + "/healthz", timeout=10) as response:
                assert response.json()["backend"] == "sqlite"
                assert response.json()["workflows"] == 6
            # The server has the store read its file into the page cache.
            deadline = time.monotonic() + 30
            while not any("into the page cache" in r.getMessage() and path in r.getMessage()
                          for r in caplog.records):
                assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
                time.sleep(0.02)
            with requests.get(url + "/metrics", timeout=10) as response:
                assert "\nwmstats_store_warming 0.0\n" in response.text
        finally:
            stop.set()
            thread.join(timeout=30)
    assert status == [0]


def test_startup_errors() -> None:
    err = io.StringIO()
    args = _parse(serve.add_cache_server_arguments, ["--store", "nosuch://x"])
    with contextlib.redirect_stderr(err):
        assert serve.run_cache_server(args) == 2
    assert "cannot open store" in err.getvalue()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = _parse(serve.add_cache_server_arguments, ["--port", str(port)])
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert serve.run_cache_server(args) == 1
        assert "cannot listen" in err.getvalue()


@pytest.mark.parametrize(("argv", "prefix"), [
    ([], "/wmstatsserver/data"),
    (["--wmcore-prefix", "/reqmon/api"], "/reqmon/api"),
    (["--no-wmcore"], None),
])
def test_cache_server_mounts_the_wmcore_api(argv: list[str], prefix: str | None) -> None:
    """The WMCore-compatible API next to the cache API, on the same store."""
    args = _parse(serve.add_cache_server_arguments, ["--port", "0", "--mock", "9", "--quiet",
                                                     *argv])
    with contextlib.redirect_stderr(io.StringIO()):
        thread, stop, status, out = _run_in_thread(serve.run_cache_server, args)
        try:
            url = _wait_for_url(out, thread)
            with requests.get(url + "/healthz", timeout=10) as response:
                assert response.json()["workflows"] == 9
            default = url + "/wmstatsserver/data/requestcache"
            if prefix is None:
                assert "WMCore-compatible" not in out.getvalue()
                with requests.get(default, timeout=10) as response:
                    assert response.status_code == 404  # the cache app's own 404
                return
            assert f"wmstats WMCore-compatible API: {url}{prefix}/\n" in out.getvalue()
            with requests.get(url + prefix + "/requestcache", timeout=10) as response:
                (entries,) = response.json()["result"]
                assert 0 < len(entries) <= 9
            with requests.get(url + prefix + "/filtered_requests?x=1", timeout=10) as response:
                assert response.status_code == 400 and response.json()["parameter"] == "x"
        finally:
            stop.set()
            thread.join(timeout=30)
    assert status == [0]


def test_bad_wmcore_prefix_is_refused() -> None:
    err = io.StringIO()
    args = _parse(serve.add_cache_server_arguments, ["--wmcore-prefix", "no-slash"])
    with contextlib.redirect_stderr(err):
        assert serve.run_cache_server(args) == 2
    assert "wmcore_prefix must be a path" in err.getvalue()


def test_servers_run_with_a_short_thread_switch_interval() -> None:
    """A process's own run (main thread) switches threads every SWITCH_INTERVAL, so
    a CPU-bound request does not hold a cheap one for 5 ms at a time; the previous
    interval comes back when the servers stop, and a run from another thread leaves
    the interpreter's setting alone."""
    before = sys.getswitchinterval()
    assert before != serve.SWITCH_INTERVAL
    stop = threading.Event()
    seen: list[float] = []

    def watch() -> None:
        time.sleep(0.3)
        seen.append(sys.getswitchinterval())
        stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    serve.serve_until_stopped([], stop)
    watcher.join()
    assert seen == [serve.SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before

    other = threading.Event()
    inside: list[float] = []

    def run() -> None:
        serve.serve_until_stopped([], other)
        inside.append(sys.getswitchinterval())

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(0.3)
    during = sys.getswitchinterval()
    other.set()
    runner.join()
    assert during == before and inside == [before]
