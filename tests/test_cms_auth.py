"""CMSWEB authentication (``--auth cms-headers``): the front-end's signed headers,
checked the way WMCore REST's ``cms_auth`` tool checks them (issue 15, defect 7).

The headers are signed by WMCore's own ``WMCore.REST.Test.fake_authz_headers``, and
every verdict is compared with WMCore's own ``WMCore.REST.Auth.user_info_from_headers``,
both run in the reqmon venv by a subprocess (:mod:`wmstats.testing.cms_auth`).
"""

from __future__ import annotations

import os
import socket
import types
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

from wmstats.mock import MockGenerator
from wmstats.store import Store, open_store
from wmstats.web import CacheApp, WebServer, build_application
from wmstats.web._auth import CmsHeaderAuth, cms_user, make_auth, signed_message
from wmstats.web.ui import build_application as build_ui

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")

KEY = os.urandom(20)
USERS = [
    {"login": "jdoe", "name": "Jane Doe", "dn": "/DC=ch/DC=cern/CN=jdoe", "method": "X509Cert",
     "roles": {"admin": {"group": ["ReqMgr"], "site": ["T1_US_FNAL"]},
               "production-operator": {"group": ["DataOps"]}}},
    {"login": "amaltaro", "name": "Alan", "dn": "/CN=amaltaro", "method": "HNLogin"},
    {"login": "jörg", "name": "Jörg Müller", "dn": "/CN=Jörg", "method": "SSO"},
]


@pytest.fixture(scope="module")
def signed(reqmon_python: Path) -> list[dict[str, str]]:
    """The headers WMCore's helper makes for :data:`USERS`, signed with :data:`KEY`."""
    from wmstats.testing.cms_auth import wmcore_sign

    return wmcore_sign(KEY, USERS, python=reqmon_python)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("auth") / "header-auth-key"
    path.write_bytes(KEY)
    return str(path)


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with open_store("memory://") as store:
        gen = MockGenerator(seed=4)
        store.replace(gen.bundles(20), gen.agents())
        yield store


class Servers(NamedTuple):
    cache: str
    ui: str
    open_ui: str


@pytest.fixture(scope="module")
def servers(store: Store, key_file: str) -> Iterator[Servers]:
    """A cache server and a UI server requiring the headers, and a UI server that
    does not check them itself (it forwards them to the cache server, which does)."""
    auth = {"auth": "cms-headers", "hmac_key_file": key_file}
    with WebServer(build_application(CacheApp(store=store, **auth))) as cache, \
            WebServer(build_ui(cache_url=cache.url, warm=False, **auth)) as ui, \
            WebServer(build_ui(cache_url=cache.url, warm=False)) as open_ui:
        yield Servers(cache.url, ui.url, open_ui.url)


def _get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(url, headers=headers or {}, timeout=30)


def _forbidden(response: requests.Response) -> None:
    assert response.status_code == 403, (response.status_code, response.text[:200])
    assert response.headers["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["error"] == "forbidden" and "not allowed" in doc["detail"]
    assert "Traceback" not in response.text


@pytest.mark.reqmon
def test_signed_headers_open_every_endpoint(servers: Servers,
                                            signed: list[dict[str, str]]) -> None:
    for headers in signed:
        for path in ("/fetch?limit=2", "/info", "/openapi.json", "/sites", "/healthz"):
            assert _get(servers.cache + path, headers).status_code == 200, path
        for path in ("/api/workflows", "/api/filters", "/api/summary", "/"):
            assert _get(servers.ui + path, headers).status_code == 200, path
        # The UI server that does not check forwards the headers: the cache server does.
        assert _get(servers.open_ui + "/api/workflows", headers).status_code == 200


@pytest.mark.reqmon
def test_no_or_bad_headers_are_a_json_403(servers: Servers,
                                          signed: list[dict[str, str]]) -> None:
    good = signed[0]
    other_key = {**good, "cms-authn-hmac": "0" * 40}
    renamed = {**good, "cms-authn-login": "root"}
    unsigned = {k: v for k, v in good.items() if k != "cms-authn-hmac"}
    anonymous = {"cms-auth-status": "NONE"}
    extra_role = {**good, "cms-authz-admin": "group:everything"}
    for headers in ({}, other_key, renamed, unsigned, anonymous, extra_role):
        for path in ("/fetch?limit=2", "/info", "/openapi.json", "/nowhere", "/fetch/x"):
            _forbidden(_get(servers.cache + path, headers))
        for path in ("/api/workflows", "/", "/static/app.js", "/api/nowhere"):
            _forbidden(_get(servers.ui + path, headers))
        # Without headers of its own, the open UI server passes the cache's 403 on.
        _forbidden(_get(servers.open_ui + "/api/workflows", headers))


@pytest.mark.reqmon
def test_healthz_and_metrics_stay_open(servers: Servers) -> None:
    assert _get(servers.cache + "/healthz").status_code == 200
    metrics = _get(servers.cache + "/metrics")
    assert metrics.status_code == 200 and "wmstats_store_up" in metrics.text


@pytest.mark.reqmon
def test_the_verdicts_are_wmcore_s(signed: list[dict[str, str]], reqmon_python: Path) -> None:
    """Every set of headers WMCore accepts names the same user here, every one it
    refuses (or fails on) is refused here.  Where WMCore lets an unauthenticated
    request through (status NONE), wmstats refuses it: it asks for a user."""
    from wmstats.testing.cms_auth import wmcore_verify

    good = signed[0]
    cases: list[dict[str, str]] = [*signed]
    cases += [
        {},
        {"cms-auth-status": "NONE"},
        {k: v for k, v in good.items() if k != "cms-authn-hmac"},
        {**good, "cms-authn-hmac": good["cms-authn-hmac"].upper()},
        {**good, "cms-authn-hmac": good["cms-authn-hmac"][:-1] + "0"},
        {**good, "cms-authn-name": "Someone Else"},
        {**good, "cms-authn-extra": "x"},
        {**good, "cms-authz-admin": "site:t1-us-fnal"},
        {**good, "cms-authz-admin": "nocolon"},
        {k.upper(): v for k, v in good.items()},
        {k.title(): v for k, v in good.items()},
        {**good, "cms-auth-status": "OK ", "x-other": "ignored"},
        {**good, "cms-auth-status": "FAILED"},  # not signed: WMCore only reads NONE
    ]
    theirs = wmcore_verify(KEY, cases, python=reqmon_python)
    for headers, verdict in zip(cases, theirs):
        try:
            ours = cms_user(headers, KEY)
        except ValueError:
            ours = None
        user = verdict.get("user")
        if user is None:
            assert ours is None, (headers, verdict)
            continue
        assert ours is not None, (headers, verdict)
        assert (ours.login, ours.name, ours.dn, ours.method) == (
            user["login"], user["name"], user["dn"], user["method"])
        assert {role: {(kind, name) for kind in ("site", "group") for name in kinds[kind]}
                for role, kinds in user["roles"].items()} == {
            role: set(pairs) for role, pairs in ours.roles.items()}
    accepted = sum(1 for v in theirs if v.get("user"))
    assert accepted >= len(signed) + 4  # the signed ones, with other name cases...


@pytest.mark.reqmon
def test_authenticated_clients_see_full_health_detail(key_file: str,
                                                      signed: list[dict[str, str]]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = f"couchdb://operator@127.0.0.1:{port}/?password=pw&timeout=1"
    with CacheApp(source=source, auth="cms-headers", hmac_key_file=key_file) as app, \
            WebServer(build_application(app)) as server:
        anonymous = _get(server.url + "/healthz").json()
        known = _get(server.url + "/healthz", signed[1]).json()
    assert "url" not in anonymous["source"]
    assert "operator@127.0.0.1" in known["source"]["url"] and "pw" not in known["source"]["url"]


def test_wmcore_style_config_keys(store: Store, key_file: str) -> None:
    """The options come from a WMCore view section like any other."""
    view = types.SimpleNamespace(store=store, auth="cms-headers", hmac_key_file=key_file,
                                 auth_open="healthz")
    app = CacheApp(None, view, "/wmstats")
    with WebServer(build_application(app)) as server:
        assert _get(server.url + "/healthz").status_code == 200
        _forbidden(_get(server.url + "/metrics"))  # not open in this configuration
        openapi = _get(server.url + "/openapi.json")
        _forbidden(openapi)


def test_bad_auth_configuration_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for kwargs, words in (({"auth": "cms-headers"}, "hmac_key_file"),
                          ({"auth": "cms-headers", "hmac_key_file": str(empty)}, "empty"),
                          ({"auth": "cms-headers", "hmac_key_file": str(tmp_path / "no")},
                           "cannot read"),
                          ({"auth": "kerberos"}, "auth")):
        with pytest.raises(ValueError) as info:
            CacheApp(**kwargs)
        assert words in str(info.value)
    assert make_auth("none", None, None) is None


def test_signed_message_and_a_local_signature() -> None:
    """The message layout (WMCore's), checked on a signature made here."""
    import hashlib
    import hmac

    headers = {"cms-auth-status": "OK", "cms-authn-login": "ab", "cms-authz-x": "group:g"}
    assert signed_message(headers) == b"h f v 2h b v 7#cms-authn-loginabcms-authz-xgroup:g" \
        .replace(b" ", b"")
    headers["cms-authn-hmac"] = hmac.new(b"k", signed_message(headers), hashlib.sha1).hexdigest()
    user = cms_user(headers, b"k")
    assert user.login == "ab" and user.roles == {"x": frozenset({("group", "g")})}
    with pytest.raises(ValueError):
        cms_user(headers, b"other")
    auth = CmsHeaderAuth(b"k")
    assert auth.check(("healthz",), {}) is None and "b'k'" not in repr(auth)


def test_cli_refuses_cms_headers_without_a_key() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "wmstats", "cache-server", "--port", "0",
                           "--auth", "cms-headers"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "--hmac-key" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.reqmon
def test_the_wmcore_api_checks_the_headers_too(store: Store, key_file: str,
                                               signed: list[dict[str, str]]) -> None:
    """``--auth cms-headers`` on a cache server covers its WMCore-compatible API
    (it answered anyone); a standalone WMCoreApp takes the options from a WMCore
    view section.  Refusals are JSON 403s with reqmon's X-Error headers."""
    from wmstats.serve import _application
    from wmstats.web import WMCoreApp
    from wmstats.web import wmcore as wmcore_web

    cache = CacheApp(store=store, auth="cms-headers", hmac_key_file=key_file)
    view = types.SimpleNamespace(store=store, auth="cms-headers", hmac_key_file=key_file)
    with WebServer(_application(cache)) as both, \
            WebServer(wmcore_web.build_application(WMCoreApp(None, view, "/data"))) as alone:
        for base in (both.url + wmcore_web.DEFAULT_PREFIX, alone.url):
            for path in ("/info", "/requestcache", "/filtered_requests?mask=RequestName",
                         "/nowhere", "/request/%ff"):
                for headers in ({}, {**signed[0], "cms-authn-login": "root"},
                                {"cms-auth-status": "NONE"}):
                    response = _get(base + path, headers)
                    _forbidden(response)
                    assert response.headers["X-Error-Http"] == "403"
                assert _get(base + path, signed[0]).status_code in (200, 400, 404), path
            assert _get(base + "/info", signed[1]).json()["result"][0].startswith("version")
