"""The UI server: the monitoring page and the thin JSON endpoints it calls, on CherryPy.

:class:`UIApp` is a CherryPy root object built like the cache app, the WMCore
way ``UIApp(app, config, mount)`` or from keywords ``UIApp(cache_url=...)``.  It
holds no data: every answer is read from the cache server over HTTP through
:class:`wmstats.client.CacheClient`, with the page's filters, sort and paging
passed through, and only the columns the table shows (a field mask)::

    application = build_application(cache_url="http://localhost:8250")   # WSGI
    cherrypy.tree.mount(UIApp(cache_url=...), "/wmstats/ui", UIApp.mount_config())

Paths (all ``GET``/``HEAD``; see ``docs/ui.md``):

``/``
    the page (``index.html``); ``/static/<file>`` its script, style sheet, icon.
``/api/workflows``
    one page of table rows (filters, ``q``, ``sort``, ``idx``, ``limit``).
``/api/filters``
    the values of every filter with workflow counts (kept per cache snapshot).
``/api/summary``
    jobs by state and workflows by status of the filtered workflows (the
    cache server's ``/status`` listing with the same filters).
``/api/groups/<campaign|site|agent|release>``
    one row per value with summed counters, for the filtered workflows.
``/api/workflow/<name>``
    one workflow: tasks, sites, output datasets, status history.
``/api/events``
    event progress of some workflows (``name=`` repeated).
``/api/agents``
    every agent's heartbeat (with its derived status and why) and job counters.
``/api/jobs/<name>``
    the job view of one workflow: tasks, then state, exit code and site with
    their jobs and sample errors (``task``, ``state``, ``exitcode``, ``site``).
``/api/alerts``
    what needs attention now (``kind``, ``severity``, ``workflow``, ``agent``,
    ``site``; ``limit=0`` for the counts alone, the tab's badge).
``/api/status``
    whether the cache server answers, and how old its data is.
``/openapi.json``
    the OpenAPI 3.1 document of these endpoints (:mod:`wmstats.web._ui_openapi`).

Every parameter is checked by whitelist; a bad one is a 400 JSON error, a cache
server that does not answer a 503 JSON error.  Every response carries a strict
Content-Security-Policy (scripts and styles only from this origin, no inline
script), ``X-Content-Type-Options: nosniff`` and friends.
"""

from __future__ import annotations

import collections
import concurrent.futures
import html
import importlib.resources
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, TypeVar

import attrs
import cherrypy  # type: ignore[import-untyped]

from wmstats._version import __version__
from wmstats.aggregates import BY_KEY
from wmstats.client import (
    CacheClient,
    ClientError,
    NotFoundError,
    RequestRejectedError,
    ServerError,
    TransportError,
)
from wmstats.serialize import converter, json_dumps
from wmstats.web._encode import dumps_bytes, gzip_bytes
from wmstats.web._auth import AUTH_MODES, DEFAULT_OPEN_PATHS, CmsHeaderAuth, make_auth
from wmstats.web._config import config_values, to_int, wsgi_application
from wmstats.web._errors import APP_CP_CONFIG, ApiError, install_json_errors
from wmstats.web._negotiate import JSON, check_path_encoding, parse_query_string, wants_gzip
from wmstats.web._reply import (
    Reply,
    check_method,
    content_etag,
    guarded,
    not_modified,
    send,
)
from wmstats.web._ui_openapi import ui_openapi_document
from wmstats.web._ui_model import (
    API_ROUTES,
    FILTER_PATHS,
    GROUPS,
    PAGE_CONFIG,
    ROW_FIELDS,
    AlertQuery,
    ApiParams,
    ApiRoute,
    View,
    alert_view,
    event_progress,
    job_view,
    parse_alerts,
    parse_job_filters,
    parse_names,
    parse_view,
    status_summary,
    summary_item,
    workflow_detail,
    workflow_row,
)

__all__ = ["UIConfig", "UIApp", "build_application", "SECURITY_HEADERS"]

_T = TypeVar("_T")
#: The page's files (package data in ``wmstats/web/static``) and their media types.
_STATIC: Final[dict[str, str]] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Headers on every response: the page runs only this origin's script and styles.
SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_EVENTS_SIZE: Final = 20_000
#: Where ``index.html`` receives :data:`~wmstats.web._ui_model.PAGE_CONFIG`.
_CONFIG_SLOT: Final = b"@PAGE_CONFIG@"
#: The listing read first for the filter values: every workflow has exactly one
#: status, so it also tells the snapshot and the number of workflows.
_STATUS: Final = BY_KEY["status"]


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen(kw_only=True)
class UIConfig:
    """Options of a :class:`UIApp` (all optional).

    :param cache_url: the cache server's URL, with its mount prefix.
    :param timeout: seconds to wait for the cache server on each request.
    :param retries: further attempts after a connection error or 5xx (kept low:
        the page shows an error rather than hang).
    :param stale_after: seconds after which data that has not changed is flagged
        stale on the page (0: never).
    :param max_query_length: longest accepted query string (414 above).
    :param warm: read the filter values once in the background when the app is
        built, so that the first page view does not wait for them.
    :param reqmgr_url: ReqMgr2's base URL (``https://cmsweb.cern.ch/reqmgr2``): the
        page links each workflow to ``<url>/fetch?rid=<workflow>``; none when empty.
    :param job_dump_url: the agents' job dump: a URL in which ``{agent}``,
        ``{workflow}`` and ``{job}`` are filled in (without any: ``<url>/<agent>``);
        the page links agents and sample jobs to it; none when empty.
    :param auth: ``"none"`` or ``"cms-headers"``: require the CMSWEB front-end's
        signed ``cms-auth*`` headers (403 without); either way the UI server
        forwards them to the cache server with its requests.
    :param hmac_key_file: the file holding the HMAC key (for ``cms-headers``).
    :param auth_open: first path segments that need no authentication.
    """

    cache_url: str = "http://127.0.0.1:8250"
    timeout: float = attrs.field(default=10.0, converter=_to_float,
                                 validator=_non_negative)
    retries: int = attrs.field(default=1, converter=to_int, validator=_non_negative)
    stale_after: float = attrs.field(default=3600.0, converter=_to_float,
                                     validator=_non_negative)
    max_query_length: int = attrs.field(default=16 * 1024, converter=to_int,
                                        validator=_non_negative)
    warm: bool = attrs.field(default=True, converter=_to_bool)
    reqmgr_url: str = ""
    job_dump_url: str = ""
    auth: str = attrs.field(default="none", validator=attrs.validators.in_(AUTH_MODES))
    hmac_key_file: str | None = None
    auth_open: str | tuple[str, ...] = DEFAULT_OPEN_PATHS

    def __attrs_post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.cache_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"cache_url must be an http(s) URL, got {self.cache_url!r}")
        for name in ("reqmgr_url", "job_dump_url"):
            value = getattr(self, name)
            if value and urllib.parse.urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, got {value!r}")

    def page_config(self) -> dict[str, Any]:
        """What the page is built from: the filters and views, and the link bases."""
        return {**PAGE_CONFIG, "links": {"reqmgr": self.reqmgr_url.rstrip("/"),
                                         "jobDump": self.job_dump_url}}

    @classmethod
    def from_object(cls, source: Any = None, **overrides: Any) -> UIConfig:
        """Options read from ``source``'s attributes (or keys), then ``overrides``.

        :raises TypeError: for an unknown keyword in ``overrides``.
        """
        values = config_values(cls, source, overrides, "UIApp")
        return cls(**values)


@attrs.frozen
class _Asset:
    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


@attrs.frozen
class _Values:
    """The filter value lists (``[[value, workflows], ...]`` per filter) of one
    snapshot, and how many workflows it holds."""

    snapshot: str
    workflows: int
    lists: dict[str, list[list[Any]]]


class _Lru(collections.OrderedDict[Any, Any]):
    """A small least-recently-used map (callers hold the app's lock)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_item(self, key: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _load_assets(page_config: Mapping[str, Any]) -> dict[str, _Asset]:
    """The page's files; ``index.html`` with the page config written in."""
    folder = importlib.resources.files("wmstats.web") / "static"
    assets = {}
    for name, media in _STATIC.items():
        body = (folder / name).read_bytes()
        if name == "index.html":
            if _CONFIG_SLOT not in body:
                raise RuntimeError(f"index.html has no {_CONFIG_SLOT!r} for the page config")
            config = html.escape(json_dumps(page_config), quote=True)
            body = body.replace(_CONFIG_SLOT, config.encode("utf-8"))
        assets[name] = _Asset(body, gzip_bytes(body, 6), content_etag(body, False), media)
    return assets


class UIApp:
    """The UI server's CherryPy root object.

    :param app: the WMCore ``RESTMain`` (unused; accepted for the WMCore signature).
    :param config: an object (or mapping) with :class:`UIConfig` attributes.
    :param mount: the mount point (informational; the page uses relative URLs).
    :param options: :class:`UIConfig` options.
    """

    _cp_config: ClassVar[dict[str, Any]] = dict(APP_CP_CONFIG)
    #: JSON errors and no traceback from the start of every request, even those
    #: CherryPy refuses before dispatch (:func:`~wmstats.web._errors.install_json_errors`).
    JSON_ERRORS: ClassVar[bool] = True

    def __init__(self, app: Any = None, config: Any = None, mount: str = "",
                 **options: Any) -> None:
        install_json_errors()
        self.app = app
        self.mount = mount
        self.config = UIConfig.from_object(config, **options)
        self._auth: CmsHeaderAuth | None = make_auth(
            self.config.auth, self.config.hmac_key_file, self.config.auth_open)
        self._assets = _load_assets(self.config.page_config())
        self._local = threading.local()
        self._clients: list[CacheClient] = []
        self._lock = threading.Lock()
        self._values: _Values | None = None
        self._events = _Lru(_EVENTS_SIZE)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="wmstats-ui")
        self._closed = False
        if self.config.warm:
            self._pool.submit(self._warm)

    @classmethod
    def from_options(cls, **options: Any) -> UIApp:
        """A UI app from :class:`UIConfig` keywords alone."""
        return cls(None, None, "", **options)

    @staticmethod
    def mount_config() -> dict[str, dict[str, Any]]:
        """Application config for ``cherrypy.tree.mount(app, prefix, config)``."""
        return {"/": dict(UIApp._cp_config)}

    def close(self) -> None:
        """Stop the background work and close the HTTP sessions (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients, self._clients = self._clients, []
        self._pool.shutdown(wait=True, cancel_futures=True)
        for client in clients:
            client.close()

    def __enter__(self) -> UIApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ cache client

    def _client(self, forward: Mapping[str, str] | None = None) -> CacheClient:
        """This thread's client of the cache server (sessions are not shared),
        sending ``forward`` (the browser's CMSWEB headers) with its requests; by
        default those of the request this thread serves."""
        client: CacheClient | None = getattr(self._local, "client", None)
        if client is None:
            timeout = self.config.timeout
            # Short waits: the page shows an error rather than hang (even when the
            # cache server asks for a longer Retry-After while its source loads).
            client = CacheClient(self.config.cache_url, timeout=(min(3.0, timeout), timeout),
                                 retries=self.config.retries, backoff=0.1, max_wait=1.0)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        client.headers = dict(getattr(self._local, "forward", {}) if forward is None
                              else forward)
        return client

    def _warm(self) -> None:
        try:
            self._value_cache()
        except Exception:  # the cache server may come up later; the page will ask again
            cherrypy.log("UI: could not read the filter values yet",
                         severity=logging.INFO)

    # ------------------------------------------------------------------ dispatch

    def _default(self, /, *path: str, **_params: Any) -> Any:
        request = cherrypy.serving.request

        # The browser's CMSWEB headers go to the cache server with the requests
        # made for it (which checks them, if it asks for them).
        self._local.forward = {name: value for name, value in request.headers.items()
                               if str(name).lower().startswith("cms-auth")}

        def answer() -> Reply:
            if self._auth is not None:
                self._auth.check(path, request.headers)
            check_method(request.method)
            check_path_encoding(request.wsgi_environ or {})
            params = parse_query_string(request.query_string or "",
                                        self.config.max_query_length)
            return self._route(path, params, request)

        reply = guarded(answer, request.path_info)
        reply.compress = reply.content_type == JSON and wants_gzip(
            request.headers.get("Accept-Encoding"))
        return send(reply, request, headers=SECURITY_HEADERS)

    default = cherrypy.expose(_default)

    def _route(self, path: tuple[str, ...], params: dict[str, list[str]],
               request: Any) -> Reply:
        if not path or path == ("index.html",):
            if not path and not (request.path_info or "").endswith("/"):
                # Mounted at /prefix and asked for /prefix: the page's relative
                # URLs need the slash.
                target = (request.script_name or "") + "/"
                return Reply(b"", status=301, headers={"Location": target})
            # The query string is the page's own state (read by its script).
            return self._asset("index.html", request)
        head, rest = path[0], path[1:]
        if head == "static" and len(rest) == 1 and rest[0] in self._assets \
                and rest[0] != "index.html":
            _no_params(params)
            return self._asset(rest[0], request)
        if head == "favicon.ico" and not rest:
            _no_params(params)
            return self._asset("favicon.svg", request)
        if head == "openapi.json" and not rest:
            _no_params(params)
            doc = ui_openapi_document(request.script_name or "/", API_ROUTES,
                                      auth_open=None if self._auth is None
                                      else self._auth.open_paths)
            return Reply(dumps_bytes(doc), headers={"Cache-Control": "no-cache"})
        api = _API.get(rest[0]) if head == "api" and rest else None
        value = "/".join(rest[1:])
        if api is None or (api.route.item is not None) != bool(value):
            raise ApiError(404, f"no endpoint at /{'/'.join(path)}")
        arg = _parse(api.route, params)
        answer = self._ask(lambda: api.handler(self, value, arg))
        return Reply(dumps_bytes(answer), headers={"Cache-Control": "no-store"})

    @staticmethod
    def _ask(handler: Callable[[], _T]) -> _T:
        """Run a handler that asks the cache server; its failures as API errors."""
        try:
            return handler()
        except NotFoundError as exc:
            raise ApiError(404, exc.detail, parameter=exc.parameter) from None
        except RequestRejectedError as exc:
            # Too long, not allowed, too costly: as the cache server said; else 400.
            raise ApiError(exc.status if exc.status in (403, 414, 422) else 400,
                           f"the cache server refused the query: {exc.detail}",
                           parameter=exc.parameter) from None
        except (TransportError, ServerError) as exc:
            cherrypy.log(f"UI: cache server failed: {exc}", severity=logging.WARNING)
            raise ApiError(503, "the cache server does not answer") from None
        except ClientError as exc:
            cherrypy.log(f"UI: bad answer from the cache server: {exc}",
                         severity=logging.WARNING)
            raise ApiError(503, "the cache server gave an unusable answer") from None

    def _asset(self, name: str, request: Any) -> Reply:
        asset = self._assets[name]
        gz = wants_gzip(request.headers.get("Accept-Encoding"))
        etag = asset.etag[:-1] + '-gzip"' if gz else asset.etag
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        cached = not_modified(etag, request.headers.get("If-None-Match"))
        if cached is not None:
            cached.headers.update(headers)
            return cached
        if gz:
            headers["Content-Encoding"] = "gzip"
            return Reply(asset.gzipped, asset.content_type, headers=headers)
        return Reply(asset.body, asset.content_type, headers=headers)

    # ------------------------------------------------------------------ endpoints
    # Each takes the path value after /api/<name>/ ("" for none) and the query
    # parameters, checks them, and asks the cache server.

    def _workflows(self, _value: str, view: View) -> dict[str, Any]:
        """``/api/workflows``: one page of table rows."""
        page = self._client().fetch(view.cache_filters(), idx=view.idx, limit=view.limit,
                                    sort=view.cache_sort(), fields=ROW_FIELDS)
        return {"total": page.total, "idx": page.idx, "limit": page.limit,
                "snapshot": page.snapshot,
                "rows": [workflow_row(record) for record in page.workflows]}

    def _summary(self, _value: str, view: View) -> dict[str, Any]:
        """``/api/summary``: jobs by state and workflows by status of the view's
        workflows: the cache server's per-status aggregation with the view's filters."""
        unstructure = converter().unstructure
        snapshot, items = self._client().values_with_snapshot(_STATUS.segment,
                                                              view.cache_filters())
        return {"snapshot": snapshot, **status_summary(unstructure(s) for s in items)}

    def _filter_values(self, _value: str, _arg: None) -> dict[str, Any]:
        """``/api/filters``: every filter's values with workflow counts."""
        values = self._value_cache()
        return {"snapshot": values.snapshot, "workflows": values.workflows,
                "filters": values.lists}

    def _value_cache(self) -> _Values:
        """The filter value lists, read again only when the cache's snapshot changed.

        The status listing is always read (one cheap request: the cache server
        keeps unfiltered aggregates per snapshot) and tells the snapshot; the
        other lists are read again only when it differs from the kept one.
        """
        client = self._client()
        snapshot, statuses = client.values_with_snapshot(_STATUS.segment)
        current = self._values
        if current is not None and current.snapshot == snapshot:
            return current
        lists = {_STATUS.key: [[s.Value, s.Workflows] for s in statuses]}
        for name, path in FILTER_PATHS.items():
            if name not in lists:
                lists[name] = [[s.Value, s.Workflows] for s in client.values(path)]
        values = _Values(snapshot, sum(s.Workflows for s in statuses), lists)
        self._values = values
        return values

    def _groups(self, by: str, view: View) -> dict[str, Any]:
        """``/api/groups/<by>``: one row per value, for the view's workflows."""
        if by not in GROUPS:
            raise ApiError(404, f"no endpoint at /api/groups/{by} (groups: "
                                f"{', '.join(GROUPS)})")
        unstructure = converter().unstructure
        items = [summary_item(unstructure(s))
                 for s in self._client().values(GROUPS[by], view.cache_filters())]
        return {"by": by, "items": items}

    def _workflow(self, name: str, _arg: None) -> dict[str, Any]:
        """``/api/workflow/<name>``: the detail view of one workflow."""
        bundle = self._client().workflow(name)
        unstructure = converter().unstructure
        doc = {"workflow": unstructure(bundle.workflow)}
        doc.update((part, [unstructure(r) for r in records]) for part, records in bundle.parts())
        return workflow_detail(doc)

    def _event_progress(self, _value: str, names: list[str]) -> dict[str, Any]:
        """``/api/events``: event progress of some workflows, kept per snapshot."""
        client = self._client()
        snapshot = client.fetch(limit=0).snapshot
        out: dict[str, float | None] = {}
        missing = []
        with self._lock:
            for name in names:
                key = (snapshot, name)
                if key in self._events:
                    out[name] = self._events.get_item(key)
                else:
                    missing.append(name)

        # Bounded fan-out: at most MAX_NAMES cache requests for this browser
        # request, on the app's four threads, none started after the timeout.
        forward = client.headers
        deadline = time.monotonic() + self.config.timeout

        def one(name: str) -> tuple[str, float | None, bool]:
            if time.monotonic() > deadline:
                return name, None, False
            try:
                bundle = self._client(forward).workflow(name)
            except NotFoundError:
                return name, None, True
            unstructure = converter().unstructure
            return name, event_progress(unstructure(bundle.workflow),
                                        [unstructure(d) for d in bundle.datasets]), True

        for name, progress, known in self._pool.map(one, missing):
            out[name] = progress
            if known:
                with self._lock:
                    self._events.put((snapshot, name), progress)
        return {"snapshot": snapshot, "progress": out}

    def _agents(self, _value: str, _arg: None) -> dict[str, Any]:
        """``/api/agents``: every agent's heartbeat record and job counters."""
        unstructure = converter().unstructure
        items = []
        for summary, agent in self._client().agents():
            item = summary_item(unstructure(summary))
            item["agent"] = None if agent is None else unstructure(agent)
            items.append(item)
        return {"items": items}

    def _jobs(self, name: str, where: dict[str, list[str]]) -> dict[str, Any]:
        """``/api/jobs/<name>``: the job view of one workflow."""
        jobs = self._client().jobs(name, where)
        unstructure = converter().unstructure
        return job_view({"workflow": jobs.RequestName,
                         "jobs": sum(g.Jobs for g in jobs.groups),
                         "groups": [unstructure(g) for g in jobs.groups],
                         "samples": [unstructure(s) for s in jobs.samples]})

    def _alerts(self, _value: str, query: AlertQuery) -> dict[str, Any]:
        """``/api/alerts``: what needs attention now (``limit=0``: the counts alone)."""
        found = self._client().alerts(query.where, limit=query.limit)
        unstructure = converter().unstructure
        return alert_view([unstructure(a) for a in found.alerts], found.total, found.counts,
                          found.now)

    def _status(self, _value: str, _arg: None) -> dict[str, Any]:
        """``/api/status``: whether the cache server answers, and how old its data is."""
        health = self._client().health()
        ready = bool(health.get("ready"))
        age = health.get("snapshot_age_seconds")
        stale_after = self.config.stale_after
        stale = bool(ready and stale_after and isinstance(age, (int, float))
                     and age > stale_after)
        return {"ready": ready, "stale": stale, "staleAfter": stale_after,
                "snapshot": health.get("snapshot"), "snapshotAge": age,
                "workflows": health.get("workflows"), "agents": health.get("agents"),
                "backend": health.get("backend"), "version": __version__,
                "detail": None if ready else "the cache server does not answer"}


@attrs.frozen
class _Api:
    """One ``/api/<name>`` endpoint: its route (:data:`API_ROUTES`) and the method
    answering it, given the path value and the parsed parameters (:func:`_parse`)."""

    route: ApiRoute
    handler: Callable[[UIApp, str, Any], dict[str, Any]]


_HANDLERS: Final[dict[str, Callable[[UIApp, str, Any], dict[str, Any]]]] = {
    "workflows": UIApp._workflows,
    "summary": UIApp._summary,
    "filters": UIApp._filter_values,
    "groups": UIApp._groups,
    "workflow": UIApp._workflow,
    "events": UIApp._event_progress,
    "agents": UIApp._agents,
    "jobs": UIApp._jobs,
    "alerts": UIApp._alerts,
    "status": UIApp._status,
}
#: Every ``/api/<name>`` endpoint.
_API: Final[dict[str, _Api]] = {r.name: _Api(r, _HANDLERS[r.name]) for r in API_ROUTES}
if set(_HANDLERS) != set(_API):
    raise RuntimeError("API_ROUTES and the UI handlers disagree")


def _parse(route: ApiRoute, params: dict[str, list[str]]
           ) -> View | list[str] | dict[str, list[str]] | AlertQuery | None:
    """The query parameters of an ``/api`` request, checked as its route says."""
    if route.params is ApiParams.NONE:
        _no_params(params)
        return None
    if route.params is ApiParams.NAMES:
        return parse_names(params)
    if route.params is ApiParams.JOBS:
        return parse_job_filters(params)
    if route.params is ApiParams.ALERTS:
        return parse_alerts(params)
    return parse_view(params, paged=route.params is ApiParams.PAGED)


def _no_params(params: Mapping[str, list[str]]) -> None:
    for key in params:
        raise ApiError(400, f"unknown parameter {key[:60]!r}; this path takes none",
                       parameter=key[:60])


def build_application(root: UIApp | None = None, script_name: str | None = None,
                      **options: Any) -> Any:
    """A ``cherrypy.Application`` (a WSGI callable) serving a UI app.

    ``build_application(cache_url="http://localhost:8250")`` is what ``wmstats
    serve`` and ``wmstats ui-server`` run.

    :param root: the app; built from ``options`` when ``None``.
    :param script_name: the mount point; ``None`` takes it from each request's
        WSGI ``SCRIPT_NAME``.
    """
    if root is None:
        root = UIApp.from_options(**options)
    elif options:
        raise TypeError("give either an app or its options, not both")
    return wsgi_application(root, script_name, UIApp.mount_config())
