"""Mounting the cache app and the WMCore-compatible API the WMCore way.

* Always: ``CacheApp(app, config, mount)`` and ``WMCoreApp(app, config, mount)``
  with config objects, mounted under prefixes with ``cherrypy.tree.mount`` and
  served by CherryPy's own engine and server (what WMCore's ``RESTMain`` does
  underneath).
* With ``WMSTATS_WMCORE_TESTS=1`` (``tox -e wmcore``, which installs ``reqmon``
  2.4.5.9 from PyPI): inside the real WMCore REST framework,
  ``WMCore.REST.Main.RESTMain`` building the views from a ``WMCore.Configuration``
  and mounting them (a missing WMCore fails there; the other tox environments
  deselect that test, marked ``wmcore``, and it fails when run elsewhere with
  ``CI`` set).
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import os
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cherrypy
import pytest
import requests

from wmstats.testing.fixtures import unavailable
from wmstats.web import CacheApp, WMCoreApp
from wmstats.web._errors import ApiError

WMCORE = os.environ.get("WMSTATS_WMCORE_TESTS") == "1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _global_engine(port: int) -> Iterator[str]:
    """CherryPy's global engine and server on ``port``; everything restored after."""
    keys = ("server.socket_host", "server.socket_port", "engine.autoreload.on", "checker.on",
            "log.screen")
    saved = {key: cherrypy.config.get(key) for key in keys}
    screen = cherrypy.log.screen
    apps_before = set(cherrypy.tree.apps)
    cherrypy.config.update({"server.socket_host": "127.0.0.1", "server.socket_port": port,
                            "engine.autoreload.on": False, "checker.on": False,
                            "log.screen": False})
    cherrypy.log.screen = False
    # A server object left from an earlier start keeps its old address.
    cherrypy.server.httpserver = None
    try:
        cherrypy.engine.start()
        yield f"http://127.0.0.1:{port}"
    finally:
        # exit(), not stop(): a bus that was started and not exited warns at
        # interpreter exit (start() registers an atexit check).
        cherrypy.engine.exit()
        cherrypy.server.httpserver = None
        for script_name in set(cherrypy.tree.apps) - apps_before:
            del cherrypy.tree.apps[script_name]
        cherrypy.config.update({k: v for k, v in saved.items() if v is not None})
        for key, value in saved.items():
            if value is None:
                cherrypy.config.pop(key, None)
        cherrypy.log.screen = screen


def test_tree_mount_under_a_prefix_with_a_config_object() -> None:
    """``Class(app, config, mount)`` + ``cherrypy.tree.mount`` at two prefixes."""
    config = types.SimpleNamespace(store="memory://", mock=25, max_limit=40)
    main = CacheApp(None, config, "/wmstats/cache")
    other = CacheApp.from_options(mock=3)
    try:
        cherrypy.tree.mount(main, "/wmstats/cache", CacheApp.mount_config())
        cherrypy.tree.mount(other, "/other", CacheApp.mount_config())
        with _global_engine(_free_port()) as base, requests.Session() as http:
            with http.get(base + "/wmstats/cache/healthz") as response:
                assert response.status_code == 200 and response.json()["workflows"] == 25
            with http.get(base + "/wmstats/cache/fetch?limit=3&fields=RequestName") as resp:
                assert resp.status_code == 200
                assert resp.links["next"]["url"] == (
                    "/wmstats/cache/fetch?idx=3&limit=3&fields=RequestName")
            with http.get(base + "/wmstats/cache/fetch?limit=41") as response:
                assert response.status_code == 200 and response.json()["limit"] == 40
            with http.get(base + "/wmstats/cache/fetch?limit=1000001") as response:
                assert response.status_code == 413
                assert response.headers["Content-Type"] == "application/json"
            with http.get(base + "/wmstats/cache/openapi.json") as response:
                assert response.json()["servers"] == [{"url": "/wmstats/cache"}]
            with http.get(base + "/other/info") as response:
                assert response.json()["limits"]["max_limit"] == 1000
            with http.get(base + "/other/fetch?limit=1&format=ndjson",
                          headers={"Accept-Encoding": "gzip"}) as response:
                assert response.headers["Content-Encoding"] == "gzip"
                assert len(response.content.splitlines()) == 1
            # Outside every mount: CherryPy's own 404, as HTML (not our app's).
            with http.get(base + "/elsewhere") as response:
                assert response.status_code == 404
    finally:
        main.close()
        other.close()


def test_wmcore_api_mounted_next_to_a_cache_app() -> None:
    """``WMCoreApp(app, config, mount)`` reading the cache app's store (``cache``)."""
    cache = CacheApp(None, types.SimpleNamespace(mock=30), "/wmstats")
    compat = WMCoreApp(None, types.SimpleNamespace(stale_after=60), "/wmstatsserver/data",
                       cache=cache)
    try:
        assert compat.store is cache.store and compat.config.stale_after == 60
        cherrypy.tree.mount(cache, "/wmstats", CacheApp.mount_config())
        cherrypy.tree.mount(compat, "/wmstatsserver/data", WMCoreApp.mount_config())
        with _global_engine(_free_port()) as base, requests.Session() as http:
            with http.get(base + "/wmstatsserver/data/requestcache") as response:
                assert response.status_code == 200
                (entries,) = response.json()["result"]
                assert 0 < len(entries) <= 30
            with http.get(base + "/wmstatsserver/data/filtered_requests?Bogus=1") as response:
                assert response.status_code == 400
                assert response.json()["parameter"] == "Bogus"
            # Its requests are counted in the cache app's metrics.
            with http.get(base + "/wmstats/metrics") as response:
                assert 'endpoint="wmcore/requestcache"' in response.text
    finally:
        compat.close()
        cache.close()
    # RESTMain builds views in no set order: a cache_view built later is found later.
    views: dict[str, Any] = {}
    later = WMCoreApp(types.SimpleNamespace(views=views), types.SimpleNamespace(
        cache_view="cache"))
    with pytest.raises(ApiError) as refused:
        later.store
    assert refused.value.status == 503 and "cache_view 'cache'" in refused.value.detail
    views["cache"] = cache
    assert later.store is cache.store
    with pytest.raises(ValueError, match="has no views"):
        WMCoreApp(None, types.SimpleNamespace(cache_view="cache"))


# --------------------------------------------------------------------------- real WMCore


def _wmcore_config(port: int) -> Any:
    from WMCore.Configuration import Configuration

    config = Configuration()
    main = config.section_("main")
    main.application = "wmstats"
    main.port = port
    main.index = "cache"
    main.silent = True
    server = main.section_("server")
    server.socket_host = "127.0.0.1"
    app = config.section_("wmstats")
    app.admin = "cms-comp-ops-workflow-team@cern.ch"
    app.description = "wmstats cache server"
    app.title = "wmstats"
    views = config.section_("views")
    cache = views.section_("cache")
    cache.object = "wmstats.web.cache.CacheApp"
    cache.store = "memory://"
    cache.mock = 20
    cache.max_limit = 50
    api = views.section_("api")
    api.object = "wmstats.web.cache.CacheApp"
    api.mock = 4
    # The WMCore-compatible API reading the "cache" view's store (built before it).
    data = views.section_("data")
    data.object = "wmstats.web.wmcore.WMCoreApp"
    data.cache_view = "cache"
    data.stale_after = 600
    return config


@pytest.mark.wmcore
def test_mounted_by_wmcore_restmain(tmp_path: Path) -> None:
    """WMCore's RESTMain builds ``CacheApp(self, view, path)`` from its configuration."""
    if not WMCORE:  # the other tox environments deselect it (-m "not wmcore")
        unavailable("WMCore's REST framework", "run it with tox -e wmcore (which installs "
                                               "reqmon and sets WMSTATS_WMCORE_TESTS=1)")
    # The wmcore tox environment installs reqmon: a missing WMCore is a failure there.
    main_module = importlib.import_module("WMCore.REST.Main")
    port = _free_port()
    switch = sys.getswitchinterval()
    saved_log = cherrypy.log
    server = main_module.RESTMain(_wmcore_config(port), str(tmp_path))
    server.validate_config()
    server.setup_server()
    sys.setswitchinterval(switch)  # RESTMain raises it to 10 s for its own server
    _thread.stack_size(0)
    server.install_application()
    try:
        assert isinstance(server.views["cache"], CacheApp)
        assert server.views["cache"].config.max_limit == 50
        assert isinstance(server.views["data"], WMCoreApp)
        assert server.views["data"].store is server.views["cache"].store
        with _global_engine(port) as base, requests.Session() as http:
            with http.get(base + "/wmstats/healthz") as response:
                assert response.status_code == 200 and response.json()["workflows"] == 20
            with http.get(base + "/wmstats/fetch?limit=2&fields=RequestName") as response:
                assert len(response.json()["workflows"]) == 2
                assert response.links["next"]["url"].startswith("/wmstats/fetch?idx=2")
            with http.get(base + "/wmstats/fetch?limit=51") as response:
                assert response.status_code == 200 and response.json()["limit"] == 50
            with http.get(base + "/wmstats/fetch?limit=1000001") as response:
                assert response.status_code == 413
                assert response.json()["parameter"] == "limit"
            with http.get(base + "/wmstats/api/fetch?format=ndjson&fields=RequestName") as resp:
                assert resp.status_code == 200 and len(resp.content.splitlines()) == 4
            with http.get(base + "/wmstats/api/sites") as response:
                assert response.json()["by"] == "site"
            with http.get(base + "/wmstats/bogus?x=1") as response:
                assert response.status_code == 404
                assert "Traceback" not in response.text
            # Refused by CherryPy before dispatch: JSON all the same; cookies ignored.
            with http.get(base + "/wmstats/healthz",
                          headers={"Cookie": "a=b; $Foo=1"}) as response:
                assert response.status_code == 200
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /wmstats/healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
                raw = b"".join(iter(lambda: sock.recv(65536), b""))
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
            assert b"Traceback" not in body and b'"bad_request"' in body
            with http.get(base + "/wmstats/data/requestcache") as response:
                (entries,) = response.json()["result"]
                assert 0 < len(entries) <= 20  # the cache view's 20 mock workflows
            with http.get(base + "/wmstats/data/filtered_requests?mask=Bogus") as response:
                assert response.status_code == 400 and response.json()["parameter"] == "mask"
            with http.get(base + "/wmstats/data/info") as response:
                assert response.json()["result"][0].startswith("version: ")
    finally:
        for view in server.views.values():
            view.close()
        cherrypy.log = saved_log
