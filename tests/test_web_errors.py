"""Malformed requests that the HTTP layer lets through get JSON errors from the app,
never CherryPy's HTML page with a traceback, on both servers and in any mount.

Issue 15: a request without ``Host``, or with the cookie ``a=b; $Foo=1``, got
CherryPy's HTML error page with a full traceback; the UI's
``/api/workflow/%2e%2e`` and ``/api/workflow/.`` were 500s.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import cherrypy
import pytest
import ujson

from wmstats.mock import MockGenerator
from wmstats.store import Store, open_store
from wmstats.web import CacheApp, WebServer, build_application
from wmstats.web.ui import UIApp
from wmstats.web.ui import build_application as build_ui

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


class Servers(NamedTuple):
    cache: WebServer
    ui: WebServer
    tree: WebServer
    prefix: str


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with open_store("memory://") as store:
        gen = MockGenerator(seed=2)
        store.replace(gen.bundles(30), gen.agents())
        yield store


@pytest.fixture(scope="module")
def servers(store: Store) -> Iterator[Servers]:
    """The cache and UI servers as ``wmstats serve`` runs them, and a cache app
    mounted on CherryPy's global tree (as ``cherrypy.tree.mount`` users and WMCore
    do), served without the engine."""
    prefix = f"/mounted-{uuid.uuid4().hex[:8]}"
    mounted = CacheApp(None, {"store": store}, prefix)
    cherrypy.tree.mount(mounted, prefix, CacheApp.mount_config())
    try:
        with WebServer(build_application(CacheApp(store=store))) as cache, \
                WebServer(build_ui(cache_url=cache.url, warm=False)) as ui, \
                WebServer(cherrypy.tree) as tree:
            yield Servers(cache, ui, tree, prefix)
    finally:
        del cherrypy.tree.apps[prefix]


def _raw(server: WebServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        with contextlib.suppress(socket.timeout):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _targets(servers: Servers) -> list[tuple[WebServer, str]]:
    return [(servers.cache, "/healthz"), (servers.ui, "/api/status"),
            (servers.tree, servers.prefix + "/healthz")]


def _json_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"] == "application/json", (status, body[:200])
    assert b"Traceback" not in body and b"<html" not in body.lower()
    doc: dict[str, Any] = ujson.loads(body)
    assert set(doc) <= {"error", "detail", "parameter"} and doc["error"] and doc["detail"]
    return doc


def test_no_host_is_a_json_400(servers: Servers) -> None:
    for server, path in _targets(servers):
        status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nConnection: close\r\n"
                                              f"\r\n".encode())
        assert status == 400, path
        assert "Host" in _json_error(status, headers, body)["detail"]
        # HTTP/1.0 needs no Host.
        status, _, _ = _raw(server, f"GET {path} HTTP/1.0\r\n\r\n".encode())
        assert status == 200, path


@pytest.mark.parametrize("cookie", ["a=b; $Foo=1", "=;;;", "a=\"unterminated", "\x7f=1",
                                    "x" * 5000 + "=1"])
def test_cookies_are_ignored(servers: Servers, cookie: str) -> None:
    """The apps use no cookie: a malformed one set on a shared domain by another
    service does not break the requests of that browser."""
    for server, path in _targets(servers):
        status, _, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}"
                                       f"\r\nConnection: close\r\n\r\n".encode("latin-1"))
        assert status == 200, (path, body[:200])


def test_a_path_that_is_not_utf8_is_a_json_400(servers: Servers) -> None:
    for server, path in ((servers.cache, "/fetch/%ff%fe"), (servers.ui, "/api/workflow/%c3"),
                         (servers.tree, servers.prefix + "/sites/%e2%82")):
        status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                              f"Connection: close\r\n\r\n".encode())
        assert status == 400, path
        assert "UTF-8" in _json_error(status, headers, body)["detail"]
    # Valid UTF-8 in a path is a value like any other.
    status, headers, body = _raw(servers.cache, "GET /fetch/%E5%B7%A5 HTTP/1.1\r\nHost: x\r\n"
                                                "Connection: close\r\n\r\n".encode())
    assert status == 404 and "工" in _json_error(status, headers, body)["detail"]


@pytest.mark.parametrize("name", ["%2e%2e", ".", "..", "%2E", "%2e", "a%2F..", "%00"])
def test_dot_names_are_names_not_500s(servers: Servers, name: str) -> None:
    """``/api/workflow/%2e%2e`` made the UI fetch /fetch (the cache's list) and
    fail with a KeyError: now every such name is looked up as the name it is."""
    for server, path in ((servers.ui, f"/api/workflow/{name}"),
                         (servers.cache, f"/fetch/{name}"),
                         (servers.tree, f"{servers.prefix}/fetch/{name}")):
        status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                              f"Connection: close\r\n\r\n".encode())
        assert status == 404, (path, body[:200])
        assert _json_error(status, headers, body)["error"] == "not_found"


def test_ui_workflow_with_a_real_dotted_name(store: Store, servers: Servers) -> None:
    """A workflow really named ``..`` is found through both servers."""
    bundle = next(iter(store.get_many([store.query().records[0].RequestName]).values()))
    renamed = type(bundle)(workflow=type(bundle.workflow)(RequestName=".."))
    store.apply([renamed])
    try:
        status, _, body = _raw(servers.ui, b"GET /api/workflow/%2e%2e HTTP/1.1\r\nHost: x\r\n"
                                           b"Connection: close\r\n\r\n")
        assert status == 200 and ujson.loads(body)["name"] == ".."
    finally:
        store.apply(deletes=[".."])


def test_every_app_root_asks_for_json_errors() -> None:
    assert CacheApp.JSON_ERRORS and UIApp.JSON_ERRORS


def test_an_oversized_head_is_a_json_414_or_431(servers: Servers) -> None:
    """A request head over 64 KiB is refused by the connection guard as JSON
    (cheroot would answer in plain text): 414 for the request line, 431 for the
    headers; a normal request is answered right after."""
    for server, path in _targets(servers):
        status, headers, body = _raw(server, f"GET {path}?a={'x' * 70_000} HTTP/1.1\r\n"
                                              f"Host: x\r\nConnection: close\r\n\r\n".encode())
        assert status == 414 and _json_error(status, headers, body)["error"] == "uri_too_long"
        many = "".join(f"X-Filler-{i}: {'y' * 4000}\r\n" for i in range(20))
        status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n{many}"
                                              f"Connection: close\r\n\r\n".encode())
        assert status == 431
        assert _json_error(status, headers, body)["error"] == "headers_too_large"
        status, _, _ = _raw(server, f"GET {path} HTTP/1.0\r\n\r\n".encode())
        assert status == 200, path
