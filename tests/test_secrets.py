"""No secret of a store or source URL in any output: stderr, logs, /healthz,
/info, /metrics, error bodies (issue 15, defect 4).

``wmstats cache-server --store 'couchdb://user:secret@host/db'`` printed the
password in its error; ``--source 'couchdb://user@host/?password=secret&bogus=1'``
echoed ``password=secret``; ``/healthz`` showed the CouchDB user name and the
upstream error text to anyone.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from wmstats.redact import MASK, redact_text, redact_url, url_secrets
from wmstats.store import StoreError
from wmstats.web import CacheApp

SECRET = "s3cr3t-Pa55"
USER = "operator7"
URL = re.compile(r"wmstats cache server: (http://127\.0\.0\.1:\d+)/")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("url", "redacted"), [
    ("couchdb://user:pw@host:5984/db", "couchdb://user:***@host:5984/db"),
    ("couchdb://user@host/?password=pw&bogus=1", "couchdb://user@host/?password=***&bogus=1"),
    ("couchdb://h/?Token=a%20b&api_key=k&x=1", "couchdb://h/?Token=***&api_key=***&x=1"),
    ("couchdb://u:p%40ss@h/?pwd=&SESSION=z", "couchdb://u:***@h/?pwd=&SESSION=***"),
    ("sqlite:////data/wmstats.db", "sqlite:////data/wmstats.db"),
    ("memory://", "memory://"),
])
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_redact_without_user_and_in_text() -> None:
    assert redact_url("couchdbs://u:p@h:443/x?q=1", user=False) == "couchdbs://h:443/x?q=1"
    url = "couchdb://u:p%40ss@h/?password=two%20words"
    assert url_secrets(url) == ["two%20words", "two words", "p%40ss", "p@ss"]
    text = f"cannot open {url}: auth with 'p@ss' failed; sent two words"
    clean = redact_text(text, [url])
    assert "p@ss" not in clean and "two words" not in clean and "p%40ss" not in clean
    assert clean.count(MASK) >= 3 and clean.startswith("cannot open couchdb://u:***@h/")


def _run_cli(*args: str) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "wmstats", "cache-server", "--port", "0",
                           *args], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    return done.stdout + done.stderr


@pytest.mark.parametrize("args", [
    ("--store", f"couchdb://{USER}:{SECRET}@127.0.0.1:{{port}}/db"),
    ("--store", f"couchdb://{USER}@127.0.0.1:{{port}}/db?bogus=1&password={SECRET}"),
    ("--store", f"sqlite:///wmstats.db?password={SECRET}"),
    ("--store", f"memory://{USER}:{SECRET}@x/?token={SECRET}"),
    ("--store", f"planet://{USER}:{SECRET}@x/"),
    ("--source", f"couchdb://{USER}@127.0.0.1:{{port}}/?password={SECRET}&bogus=1"),
    ("--source", f"couchdb://{USER}:{SECRET}@127.0.0.1:99999/"),
    ("--source", f"couchdb://{USER}:{SECRET}@/"),
    ("--source", f"http://{USER}:{SECRET}@127.0.0.1/"),
], ids=lambda a: " ".join(a).replace(SECRET, "S"))
def test_cli_errors_hide_the_password(args: tuple[str, str]) -> None:
    """What the command says about a URL it cannot use names it without its secret."""
    out = _run_cli(args[0], args[1].replace("{port}", str(_closed_port())))
    assert "wmstats: cannot" in out
    assert SECRET not in out and "Traceback" not in out


def test_store_errors_raised_to_a_mounting_framework_hide_the_password() -> None:
    """WMCore's RESTMain logs what a view's constructor raises, with its chain."""
    for url in (f"couchdb://{USER}:{SECRET}@127.0.0.1:{_closed_port()}/db",
                f"couchdb://{USER}@127.0.0.1:{_closed_port()}/db?password={SECRET}&x=1"):
        with pytest.raises(StoreError) as info:
            CacheApp(store=url)
        assert SECRET not in "".join(traceback.format_exception(info.value))


@pytest.fixture
def served_with_failing_source(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``wmstats cache-server`` fed by a CouchDB that refuses connections, its
    source URL carrying a password in the query string; its log file."""
    log = tmp_path / "server.log"
    source = f"couchdb://{USER}@127.0.0.1:{_closed_port()}/?password={SECRET}&timeout=1"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wmstats", "cache-server", "--port", "0", "--source", source],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = URL.search(line)
        assert found, line
        yield found.group(1), log
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=60)[0]
        log.write_text(log.read_text() + line + rest)


def test_no_secret_in_any_output_of_a_running_server(
        served_with_failing_source: tuple[str, Path]) -> None:
    url, log = served_with_failing_source
    deadline = time.monotonic() + 30
    with requests.Session() as http:
        while True:  # until the source has failed at least once
            health = http.get(url + "/healthz", timeout=10)
            if health.json()["source"]["errors"] > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        doc = health.json()
        assert health.status_code == 503 and doc["source"]["errors"] > 0
        # Basic detail for anyone: counts and ages, not who or what failed.
        assert "url" not in doc["source"] and "last_error" not in doc["source"]
        assert USER not in health.text and "127.0.0.1" not in health.text
        wmcore = "/wmstatsserver/data"  # the WMCore-compatible API, served next to it
        for path in ("/healthz", "/info", "/metrics", "/fetch?limit=1", "/sites",
                     "/openapi.json", "/nowhere", f"{wmcore}/info", f"{wmcore}/proc_status",
                     f"{wmcore}/globallocks", f"{wmcore}/requestcache", f"{wmcore}/nowhere"):
            response = http.get(url + path, timeout=10)
            assert SECRET not in response.text and SECRET not in str(response.headers), path
            assert response.status_code < 500 or path.startswith((
                "/fetch", "/sites", "/healthz", f"{wmcore}/globallocks",
                f"{wmcore}/requestcache")), (path, response.status_code)
    time.sleep(0.5)
    assert SECRET not in log.read_text()


def test_full_health_detail_names_the_upstream_without_its_password() -> None:
    source = f"couchdb://{USER}:{SECRET}@127.0.0.1:{_closed_port()}/?timeout=1"
    with CacheApp(source=source, health_detail="full") as app:
        status = app.source.status() if app.source is not None else None
        assert status is not None and USER in status.url and SECRET not in status.url
        assert SECRET not in repr(app.source)
