"""The WMCore-compatible API: today's ``/wmstatsserver/data/*``, answered from the store.

WMCore services read today's WMStats server (reqmon) through
``WMCore.Services.WMStatsServer.WMStatsServer`` at ``<host>/wmstatsserver/data/<api>``.
:class:`WMCoreApp` answers the same calls, with reqmon 2.4.5.9's parameters and
reply shapes, from the store the cache server reads (the rules are in
:mod:`wmstats.wmcore`; ``docs/wmcore-compat.md`` lists every API, who calls it,
and every difference from reqmon)::

    cache = CacheApp(source="couchdb://localhost:5984")
    cherrypy.tree.mount(cache, "/wmstats", CacheApp.mount_config())
    cherrypy.tree.mount(WMCoreApp(cache=cache), "/wmstatsserver/data",
                        WMCoreApp.mount_config())

``wmstats cache-server`` and ``wmstats serve`` mount it at :data:`DEFAULT_PREFIX`
next to the cache API.  In a WMCore deployment, a view of class
``wmstats.web.wmcore.WMCoreApp`` with ``cache_view`` naming the ``CacheApp`` view
reads that view's store and source.

Every reply is ``{"result": [...]}`` written as WMCore's REST ``JSONFormat`` does
(one item per line), streamed from the store batch by batch, gzip-compressed when
asked.  ``globallocks``, ``protectedlfns``, ``protectedlfns_final`` and
``filtered_requests`` answer 503 (which WMCore's client raises on) while their list
could be incomplete or stale: before the source's first full load, while the
source has had no answer from upstream for longer than ``stale_after`` seconds,
and (the first three) when no request is active.  Parameters are checked by
whitelist; every refusal is a JSON error naming what was wrong, also for what
CherryPy refuses before dispatch (no ``Host``, a malformed cookie: see
:mod:`wmstats.web._errors`).  Authentication is the cache app's when the API reads
one (``--auth cms-headers`` covers both), else its own ``auth`` options.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs
import cherrypy  # type: ignore[import-untyped]

from wmstats._procfs import rss_kib
from wmstats._version import __version__
from wmstats.jobdetail import DEFAULT_SAMPLE_SIZE, jobdetail
from wmstats.query import Filter, Query
from wmstats.query.model import MAX_PATTERN, MAX_VALUES
from wmstats.schema import Workflow
from wmstats.source import Source, open_source
from wmstats.store import Store, StoreError, open_store
from wmstats.web._encode import Tally, dumps
from wmstats.web._auth import AUTH_MODES, DEFAULT_OPEN_PATHS, CmsHeaderAuth, make_auth
from wmstats.web._config import config_values, to_int, wsgi_application
from wmstats.web._errors import APP_CP_CONFIG, ApiError, install_json_errors
from wmstats.web._negotiate import (
    JSON,
    JSON_ONLY,
    check_path_encoding,
    choose_type,
    parse_query_string,
    wants_gzip,
)
from wmstats.web._reply import Reply, check_method, guarded, not_modified, send
from wmstats.wmcore import (
    CACHE_STATUSES,
    CONDITION_KEYS,
    JOB_INFO_STATUSES,
    LOCK_STATUSES,
    REQUEST_KEYS,
    Condition,
    ConditionError,
    RequestView,
    agent_teams,
    final_output_lfns,
    global_locks,
    is_finished,
    parse_condition,
    protected_lfns,
)

__all__ = ["DEFAULT_PREFIX", "APIS", "WMCoreConfig", "WMCoreApp", "build_application"]

#: Where ``wmstats cache-server`` and ``wmstats serve`` mount the API by default
#: (where WMCore's client looks: ``<host>/wmstatsserver`` + ``/data``).
DEFAULT_PREFIX: Final = "/wmstatsserver/data"
_TEXT: Final = "text/plain"
#: What the list APIs offer (reqmon offers ``text/plain`` first: see the docs).
_JSON_OR_TEXT: Final = (JSON, _TEXT)
#: Seconds a client is told to wait after a 503.
_RETRY_AFTER: Final = "60"
#: reqmon's ``X-Error-Detail`` texts, by status (WMCore's client logs them).
_DETAIL: Final = {400: "Invalid input parameter", 403: "Forbidden", 404: "API not supported",
                  405: "Method not allowed", 406: "Not acceptable",
                  413: "Request entity too large", 414: "Request-URI too long",
                  503: "Service unavailable", 500: "Server error"}
_HEADERS: Final = {"X-Content-Type-Options": "nosniff"}


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not value >= minimum:  # NaN too
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value}")
    return check


@attrs.frozen(kw_only=True)
class WMCoreConfig:
    """Options of a :class:`WMCoreApp` (all optional).

    :param store: a store URL (opened by the app, closed by :meth:`WMCoreApp.close`)
        or an open :class:`~wmstats.store.Store`; ignored when the app reads a cache
        app's store (``cache``, ``cache_view``).
    :param source: a source URL or :class:`~wmstats.source.Source` keeping the store
        filled (as :class:`~wmstats.web.cache.CacheConfig`'s); its readiness and
        last contact guard the lists.
    :param cache_view: in a WMCore deployment, the name of the ``CacheApp`` view
        whose store and source to read (looked up in ``RESTMain.views`` when this
        view is built, else at its first request).
    :param stale_after: seconds without an answer from upstream after which the
        source's data counts as stale (default 30 minutes).
    :param gzip_level: zlib level of gzip replies.
    :param chunk_size: bytes per chunk handed to the HTTP server.
    :param max_query_length: longest accepted query string (414 above).
    :param batch_size: requests read from the store at a time.
    :param auth: ``"none"`` or ``"cms-headers"``: require the CMSWEB front-end's
        signed ``cms-auth*`` headers (:mod:`wmstats.web._auth`), 403 without.  An
        app reading a cache app (``cache``, ``cache_view``) also checks whatever
        that app checks.
    :param hmac_key_file: the file holding the HMAC key (for ``cms-headers``).
    :param auth_open: first path segments (API names) that need no authentication.
    """

    store: str | Store = "memory://"
    source: str | Source | None = None
    cache_view: str | None = None
    stale_after: float = attrs.field(default=1800.0, converter=float,
                                     validator=_at_least(0.0))
    gzip_level: int = attrs.field(default=1, converter=to_int, validator=_at_least(1))
    chunk_size: int = attrs.field(default=64 * 1024, converter=to_int,
                                  validator=_at_least(1))
    max_query_length: int = attrs.field(default=16 * 1024, converter=to_int,
                                        validator=_at_least(1))
    batch_size: int = attrs.field(default=500, converter=to_int, validator=_at_least(1))
    auth: str = attrs.field(default="none", validator=attrs.validators.in_(AUTH_MODES))
    hmac_key_file: str | None = None
    auth_open: str | tuple[str, ...] = DEFAULT_OPEN_PATHS

    def __attrs_post_init__(self) -> None:
        if self.gzip_level > 9:
            raise ValueError(f"gzip_level must be 1..9, got {self.gzip_level}")
        if not isinstance(self.store, (str, Store)):
            raise TypeError(f"store must be a store URL or a Store, got {self.store!r}")
        if self.source is not None and not isinstance(self.source, (str, Source)):
            raise TypeError(f"source must be a source URL or a Source, got {self.source!r}")

    @classmethod
    def from_object(cls, config: Any = None, /, **overrides: Any) -> WMCoreConfig:
        """Options read from ``config``'s attributes (those it has), then ``overrides``.

        :raises TypeError: for an unknown keyword in ``overrides``.
        """
        values = config_values(cls, config, overrides, "WMCoreApp")
        return cls(**values)


@attrs.frozen
class _Api:
    """One API: its handler, what it offers, and what it takes.

    :param item: the name of its path parameter (``request/<name>``), if any.
    :param params: the query parameters it takes (each at most once).
    :param conditions: it takes ``filtered_requests``' conditions and masks.
    :param guarded: it answers 503 while the data may be incomplete or stale.
    :param data: it reads the store (503 until the source's first load).
    :param jobs: it reads the job records (its ETag follows them, not the snapshot).
    """

    name: str
    handler: Callable[[WMCoreApp, _Call], Reply] = attrs.field(eq=False, repr=False)
    types: tuple[str, ...]
    summary: str
    item: str | None = None
    params: tuple[str, ...] = ()
    conditions: bool = False
    guarded: bool = False
    data: bool = True
    jobs: bool = False


@attrs.frozen
class _Call:
    """One request as a handler sees it."""

    api: _Api
    value: str | None
    params: dict[str, list[str]]
    media: str
    gz: bool
    if_none_match: str | None
    query_string: str


def _ascii(text: str, limit: int = 300) -> str:
    """``text`` fit for a header value: printable ASCII, at most ``limit`` characters."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return safe[:limit]


def _error(status: int, detail: str, *, parameter: str | None = None,
           reason: str | None = None, headers: Mapping[str, str] | None = None) -> ApiError:
    """An error with reqmon's ``X-Error-*`` headers as well as the JSON body."""
    out = {"X-Error-Http": str(status), "X-Error-Detail": reason or _DETAIL.get(status, "Error"),
           "X-Error-Info": _ascii(detail)}
    out.update(headers or {})
    return ApiError(status, detail, parameter=parameter, headers=out)


class WMCoreApp:
    """The CherryPy root object of the WMCore-compatible API.

    Built the WMCore way, ``WMCoreApp(app, config, mount)``, or from keywords::

        WMCoreApp(cache=cache_app)                       # the cache app's store and source
        WMCoreApp(store="sqlite:////data/wmstats.db", stale_after=600)

    :param app: WMCore's ``RESTMain`` (its ``views`` give the ``cache_view``).
    :param config: an object (or mapping) with :class:`WMCoreConfig` attributes.
    :param mount: the mount point (informational).
    :param cache: a :class:`~wmstats.web.cache.CacheApp` whose store and source to
        read (and whose metrics count these requests too).
    :param options: :class:`WMCoreConfig` options.
    """

    _cp_config: ClassVar[dict[str, Any]] = dict(APP_CP_CONFIG)
    #: JSON errors and no traceback from the start of every request, even those
    #: CherryPy refuses before dispatch (:func:`~wmstats.web._errors.install_json_errors`).
    JSON_ERRORS: ClassVar[bool] = True

    def __init__(self, app: Any = None, config: Any = None, mount: str = "", *,
                 cache: Any = None, **options: Any) -> None:
        install_json_errors()
        self.app = app
        self.mount = mount
        self.config = WMCoreConfig.from_object(config, **options)
        self._auth: CmsHeaderAuth | None = make_auth(
            self.config.auth, self.config.hmac_key_file, self.config.auth_open)
        #: the check of the cache app this API reads, if it has one
        self._cache_auth: CmsHeaderAuth | None = None
        self._owns_store = self._owns_source = False
        self._store: Store | None = None
        self._source: Source | None = None
        self.metrics: Any = None
        #: WMCore's views, where ``cache_view`` is looked up once they are all built
        self._rest_views: Mapping[str, Any] | None = None
        if cache is None and self.config.cache_view:
            views = getattr(app, "views", None)
            if not isinstance(views, Mapping):
                raise ValueError(f"cache_view {self.config.cache_view!r}: the app given "
                                 f"({app!r}) has no views (WMCore's RESTMain has)")
            # RESTMain builds its views in no set order: look it up at the first request.
            self._rest_views = views
            cache = views.get(self.config.cache_view)
        if cache is not None:
            self._bind(cache)
        elif self._rest_views is None:
            given_source = self.config.source
            store = given_source.store if isinstance(given_source, Source) else self.config.store
            opened = store if isinstance(store, Store) else open_store(store)
            self._store, self._owns_store = opened, not isinstance(store, Store)
            if given_source is not None:
                try:
                    self._source = (given_source if isinstance(given_source, Source)
                                    else open_source(given_source, opened))
                except BaseException:
                    self.close()
                    raise
                self._owns_source = not isinstance(given_source, Source)
                self._source.start()
        self._started = time.time()

    def _bind(self, cache: Any) -> None:
        """Read ``cache``'s store and source, count in its metrics."""
        self._store = cache.store
        self._source = cache.source
        self.metrics = getattr(cache, "metrics", None)
        self._cache_auth = getattr(cache, "auth", None)

    def _ready_store(self) -> Store:
        """The store; looks the ``cache_view`` up first if needed.

        :raises ApiError: 503 while that view does not exist.
        """
        if self._store is None:
            name = self.config.cache_view
            views = self._rest_views
            found = None if views is None else views.get(name or "")
            if found is None:
                raise _error(503, f"the cache_view {name!r} this API reads is not configured",
                             headers={"Retry-After": _RETRY_AFTER})
            self._bind(found)
        assert self._store is not None
        return self._store

    @staticmethod
    def mount_config() -> dict[str, dict[str, Any]]:
        """Application config for ``cherrypy.tree.mount(app, prefix, config)``."""
        return {"/": dict(WMCoreApp._cp_config)}

    @property
    def store(self) -> Store:
        """The store every API reads.

        :raises ApiError: while the ``cache_view`` it reads does not exist.
        """
        return self._ready_store()

    @property
    def source(self) -> Source | None:
        """The source filling the store, if any."""
        self._ready_store()
        return self._source

    def close(self) -> None:
        """Stop the source and close the store, each if this app opened it."""
        if self._owns_source and self._source is not None:
            self._source.close()
        if self._owns_store and self._store is not None:
            self.store.close()

    def __enter__(self) -> WMCoreApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ dispatch

    def _default(self, /, *path: str, **_params: Any) -> Any:
        """Every request: find the API, validate, negotiate, answer."""
        request = cherrypy.serving.request
        start = time.perf_counter()
        api = APIS.get(path[0]) if path else None
        endpoint = f"wmcore/{api.name}" if api is not None else "wmcore/unknown"
        if self.metrics is not None:
            self.metrics.started()

        def answer() -> Reply:
            self._authenticate(path, request.headers)
            if api is None:
                raise _error(404, f"no API {'/'.join(path)!r}; the APIs are: "
                                  f"{', '.join(APIS)}")
            check_method(request.method, "; the API is read-only")
            try:
                check_path_encoding(request.wsgi_environ or {})
            except ApiError as exc:
                raise _error(exc.status, exc.detail) from None
            try:
                return self._answer(api, path[1:], request)
            except StoreError:
                cherrypy.log(f"store error on {request.path_info}", traceback=True,
                             severity=logging.ERROR)
                raise _error(503, "the store is not available",
                             headers={"Retry-After": _RETRY_AFTER}) from None

        reply = guarded(answer, request.path_info)
        if reply.status < 400:
            reply.headers = {"Vary": "Accept, Accept-Encoding",
                             "Cache-Control": "no-store, no-cache, must-revalidate",
                             **reply.headers}
        metrics = self.metrics

        def done(records: int, sent: int) -> None:
            if metrics is not None:
                metrics.observe(endpoint, reply.status, time.perf_counter() - start, records,
                                sent)
        return send(reply, request, headers=_HEADERS, gzip_level=self.config.gzip_level,
                    done=done)

    #: CherryPy's default dispatcher calls ``default(*segments, **params)``.
    default = cherrypy.expose(_default)

    def _authenticate(self, path: tuple[str, ...], headers: Mapping[str, str]) -> None:
        """403 unless the request passes this app's check and its cache app's."""
        if self._store is None and self._rest_views is not None:
            with contextlib.suppress(ApiError):
                self._ready_store()  # binds the cache view, and so its check
        for check in (self._auth, self._cache_auth):
            if check is not None:
                try:
                    check.check(path, headers)
                except ApiError as exc:
                    raise _error(exc.status, exc.detail) from None

    def _answer(self, api: _Api, rest: tuple[str, ...], request: Any) -> Reply:
        self._ready_store()
        query_string = request.query_string or ""
        params = parse_query_string(query_string, self.config.max_query_length)
        value: str | None = None
        if api.item is None:
            if rest:
                raise _error(404, f"{api.name} takes no path: /{api.name}")
        elif len(rest) != 1 or not rest[0]:
            raise _error(400, f"{api.name} needs one {api.item}: /{api.name}/<{api.item}>",
                         parameter=api.item)
        else:
            value = rest[0]
        if not api.conditions:
            for key, values in params.items():
                if key not in api.params:
                    takes = (f"only {', '.join(api.params)}" if api.params
                             else "no parameters")
                    raise _error(400, f"unknown parameter {key!r}: {api.name} takes {takes}",
                                 parameter=key)
                if len(values) != 1:
                    raise _error(400, f"{key} given {len(values)} times: give it once",
                                 parameter=key)
        headers = request.headers
        try:
            media = choose_type(headers.get("Accept"), None, api.types)
        except ApiError as exc:
            raise _error(exc.status, exc.detail) from None
        if api.data:
            self._check_loaded()
        if api.guarded:
            self._check_current()
        call = _Call(api, value, params, media, wants_gzip(headers.get("Accept-Encoding")),
                     headers.get("If-None-Match"), query_string)
        return api.handler(self, call)

    # ------------------------------------------------------------------ safety

    def _check_loaded(self) -> None:
        """503 until the source has loaded everything once."""
        source = self._source
        if source is not None and not source.status().ready:
            raise _error(503, "the data source has not finished its first full load: the "
                              "data would be incomplete", reason="DataCache is Empty",
                         headers={"Retry-After": _RETRY_AFTER})

    def _check_current(self) -> None:
        """503 while the source has had no answer from upstream for too long."""
        source = self._source
        if source is None:
            return
        gap = source.status().out_of_contact(time.time())
        if gap > self.config.stale_after:
            since = "ever" if gap == float("inf") else f"for {gap:.0f} s"
            raise _error(503, f"the data source has had no answer from upstream {since} "
                              f"(more than {self.config.stale_after:.0f} s): the data may be "
                              f"stale", reason="DataCache is stale",
                         headers={"Retry-After": _RETRY_AFTER})

    def _check_not_empty(self) -> None:
        """503 when no request is active: an empty list would clear everything."""
        query = Query(filters=(Filter("RequestStatus", "eq", CACHE_STATUSES),), limit=0)
        if self.store.query(query).total == 0:
            raise _error(503, "no active request is known: refusing to answer an empty list",
                         reason="DataCache is Empty", headers={"Retry-After": _RETRY_AFTER})

    # ------------------------------------------------------------------ replies

    def _etag(self, call: _Call) -> str:
        """Per snapshot and request: the same question on the same data."""
        data_id = self.store.jobs_snapshot_id if call.api.jobs else self.store.snapshot_id
        key = "\n".join((data_id, call.api.name, call.value or "",
                         call.query_string, call.media))
        digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        return f'"{digest}{"-gzip" if call.gz else ""}"'

    def _result(self, call: _Call, items: Iterable[Any], *, etag: bool = True) -> Reply:
        """``{"result": [...]}`` as WMCore's ``JSONFormat`` writes it, streamed."""
        headers: dict[str, str] = {"X-Rest-Status": "100"}
        if etag:
            tag = self._etag(call)
            cached = not_modified(tag, call.if_none_match)
            if cached is not None:
                return cached
            headers["ETag"] = tag
        tally = Tally()
        content_type = JSON if call.media == JSON else f"{_TEXT};charset=utf-8"
        body = _envelope(items, call.media != JSON, tally, self.config.chunk_size)
        return Reply(body, content_type, headers=headers, tally=tally, compress=call.gz)

    def _requests(self, statuses: Sequence[str], keys: Sequence[str] | None,
                  conditions: Sequence[Condition] = ()) -> Iterator[RequestView]:
        """The cached requests of ``statuses``, in reqmon's order (status by status,
        then by name), as views able to read ``keys`` (``None``: the whole document),
        those matching ``conditions``."""
        batch_size = self.config.batch_size
        pushed = _pushdown(conditions)
        wanted = [*(keys or ()), *(c.key for c in conditions)]
        for status in statuses:
            if "RequestStatus" in pushed and status not in pushed["RequestStatus"]:
                continue
            filters = [Filter("RequestStatus", "eq", (status,))]
            filters += [Filter(k, "eq", v) for k, v in pushed.items() if k != "RequestStatus"]
            job_info = status in JOB_INFO_STATUSES and (
                keys is None or "AgentJobInfo" in wanted)
            batch: list[Workflow] = []
            for workflow in self.store.stream(Query(filters=tuple(filters))):
                batch.append(workflow)
                if len(batch) >= batch_size:
                    yield from self._views(batch, keys, wanted, job_info, conditions)
                    batch = []
            if batch:
                yield from self._views(batch, keys, wanted, job_info, conditions)

    def _views(self, batch: list[Workflow], keys: Sequence[str] | None, wanted: Sequence[str],
               job_info: bool, conditions: Sequence[Condition]) -> Iterator[RequestView]:
        names = {wf.RequestName for wf in batch
                 if keys is None or RequestView.needs_bundle(wf, wanted)}
        parts = RequestView.parts_for(None if keys is None else wanted)
        bundles = self.store.get_parts(names, parts) if names else {}
        for workflow in batch:
            bundle = bundles.get(workflow.RequestName)
            if bundle is None and workflow.RequestName in names:
                continue  # deleted since the batch was read
            view = RequestView(workflow if bundle is None else bundle.workflow, bundle,
                               job_info=job_info)
            if view.matches(conditions):
                yield view

    # ------------------------------------------------------------------ APIs

    def _info(self, call: _Call) -> Reply:
        """``info``: the server's version."""
        return self._result(call, [f"version: {__version__}"], etag=False)

    def _teams(self, call: _Call) -> Reply:
        """``teams``: the teams of the agents' heartbeats."""
        return self._result(call, agent_teams(self.store.get_agents()))

    def _request(self, call: _Call) -> Reply:
        """``request/<name>``: one request's document with ``AgentJobInfo``, any status."""
        assert call.value is not None
        bundle = self.store.get(call.value)
        if bundle is None or not bundle.workflow.HasRequest:
            return self._result(call, [{}])
        view = RequestView(bundle.workflow, bundle, job_info=True)
        return self._result(call, [{call.value: view.document()}])

    def _jobdetail(self, call: _Call) -> Reply:
        """``jobdetail/<name>[?sample_size=N]``: the workflow's jobs by task, state,
        exit code and site, with up to N sample jobsummary documents per group."""
        assert call.value is not None
        size = _sample_size(call.params.get("sample_size"))
        return self._result(call, [jobdetail(self.store.jobs(call.value), size)])

    def _isfinished(self, call: _Call) -> Reply:
        """``isfinished/<name>``: whether every task's jobs are done."""
        assert call.value is not None
        bundle = self.store.get(call.value)
        if bundle is None or not bundle.workflow.HasRequest:
            raise _error(404, f"Cannot find request: {call.value}", parameter="request_name",
                         reason="Cannot find request")
        return self._result(call, [is_finished(bundle)])

    def _requestcache(self, call: _Call) -> Reply:
        """``requestcache``: one object of every active request, streamed."""
        return self._result(call, _one_object(
            (v.workflow.RequestName, v.document())
            for v in self._requests(CACHE_STATUSES, None)))

    def _filtered(self, call: _Call) -> Reply:
        """``filtered_requests``: the requests matching the conditions, masked."""
        masks, conditions = _conditions(call.params)
        views = self._requests(CACHE_STATUSES, masks, conditions)
        if masks is None:
            items: Iterable[Any] = (v.document() for v in views)
        else:
            items = (v.masked(masks) for v in views)
        return self._result(call, items)

    def _globallocks(self, call: _Call) -> Reply:
        """``globallocks``: the datasets of the requests in lock statuses."""
        self._check_not_empty()
        return self._result(call, (value for v in self._requests(LOCK_STATUSES, _LOCK_READ)
                                   for value in global_locks(v)))

    def _protectedlfns(self, call: _Call) -> Reply:
        """``protectedlfns``: every unmerged LFN base of the requests in lock statuses."""
        self._check_not_empty()
        return self._result(call, (value for v in self._requests(
            LOCK_STATUSES, ("OutputModulesLFNBases",)) for value in protected_lfns(v)))

    def _protectedlfns_final(self, call: _Call) -> Reply:
        """``protectedlfns_final``: the unmerged paths of the final output datasets."""
        self._check_not_empty()
        return self._result(call, (value for v in self._requests(LOCK_STATUSES, ())
                                   for value in final_output_lfns(v.workflow)))

    def _proc_status(self, call: _Call) -> Reply:
        """``proc_status``: about this server process."""
        return self._result(call, [{"server": _process_status(self._started)}], etag=False)


#: Keys ``globallocks`` reads.
_LOCK_READ: Final = ("InputDataset", "OutputDatasets", "MCPileup", "DataPileup")
#: Condition keys that map to one Workflow text field compared exactly (and are
#: never merged over a chain's tasks): the store filters on them first.
_PUSHABLE: Final = frozenset({"RequestName", "RequestStatus", "RequestType", "SubRequestType",
                              "Group", "Requestor"})


#: The largest ``sample_size`` taken (far above the samples any store keeps).
_MAX_SAMPLE_SIZE: Final = 1_000_000


def _sample_size(values: list[str] | None) -> int:
    """``jobdetail``'s ``sample_size`` (default 1, as reqmon's).

    :raises ApiError: 400 unless it is a whole number from 0 to 1,000,000.
    """
    if values is None:
        return DEFAULT_SAMPLE_SIZE
    (text,) = values
    if not (text.isascii() and text.isdigit() and len(text) <= 7
            and int(text) <= _MAX_SAMPLE_SIZE):
        raise _error(400, f"sample_size must be a whole number from 0 to "
                          f"{_MAX_SAMPLE_SIZE:,}, got {text[:40]!r}", parameter="sample_size")
    return int(text)


def _pushdown(conditions: Sequence[Condition]) -> dict[str, tuple[str, ...]]:
    """The conditions the store can apply: text values on :data:`_PUSHABLE` keys,
    within the query model's bounds (more values, or longer ones, are matched
    here, as reqmon matches them: no refusal)."""
    out: dict[str, tuple[str, ...]] = {}
    for condition in conditions:
        if condition.key in _PUSHABLE:
            values = tuple(v for v in condition.values
                           if isinstance(v, str) and len(v) <= MAX_PATTERN)
            if values and len(values) == len(condition.values) <= MAX_VALUES \
                    and condition.key not in out:
                out[condition.key] = values
    return out


def _conditions(params: Mapping[str, list[str]]) -> tuple[list[str] | None,
                                                         list[Condition]]:
    """The masks (``None``: whole documents) and conditions of ``filtered_requests``.

    :raises ApiError: 400 naming an unknown key or mask, or a condition that could
        never match.
    """
    masks: list[str] | None = None
    conditions: list[Condition] = []
    for key, values in params.items():
        if key == "mask":
            unknown = [v for v in values if v not in REQUEST_KEYS]
            if unknown:
                raise _error(400, f"unknown mask {unknown[0]!r}: the masks wmstats "
                                  f"supports are {', '.join(REQUEST_KEYS)}",
                             parameter="mask")
            masks = list(dict.fromkeys(values))
            continue
        if key not in REQUEST_KEYS:
            raise _error(400, f"unknown key {key!r}: the keys filtered_requests filters on "
                              f"are {', '.join(CONDITION_KEYS)} (and mask)", parameter=key)
        try:
            conditions.append(parse_condition(key, values))
        except ConditionError as exc:
            raise _error(400, f"{key}: {exc.message}; the keys filtered_requests filters on "
                              f"are {', '.join(CONDITION_KEYS)} (and mask)",
                         parameter=key) from None
    return masks, conditions


def _one_object(pairs: Iterable[tuple[str, Any]]) -> Iterator[Any]:
    """One item: the object of every pair, as ``requestcache`` answers it.

    It is the one line of a reply, so it is built whole here; the reply streams the
    bytes :func:`_envelope` makes of it.
    """
    yield _Members(pairs)


class _Members:
    """An object whose members are written one by one (see :func:`_envelope`)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _envelope(items: Iterable[Any], pretty: bool, tally: Tally,
              chunk_size: int) -> Iterator[bytes]:
    """WMCore's ``JSONFormat`` layout: ``{"result": [``, one item a line (the first
    after a space, the others after a comma), ``]}``; ``pretty`` indents each item
    as ``PrettyJSONFormat`` does.  A ``_Members`` item is written member by member,
    so that ``requestcache`` streams too."""
    encode: Callable[[Any], str] = (
        (lambda v: json.dumps(v, indent=2, ensure_ascii=False)) if pretty else dumps)
    end = "" if pretty else "\n"
    buffer: list[str] = ['{"result": [\n']
    size = 0
    lead = " "
    for item in items:
        if isinstance(item, _Members):
            buffer.append(lead + "{")
            sep = ""
            for name, value in item.pairs:
                text = f"{sep}{dumps(name)}: {encode(value)}"
                buffer.append(text)
                size += len(text)
                sep = ", "
                tally.records += 1
                if size >= chunk_size:
                    yield "".join(buffer).encode("utf-8")
                    buffer, size = [], 0
            buffer.append("}" + end)
        else:
            text = lead + encode(item) + end
            buffer.append(text)
            size += len(text)
            tally.records += 1
        lead = ","
        if size >= chunk_size:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append("]}\n")
    yield "".join(buffer).encode("utf-8")


def _process_status(started: float) -> dict[str, Any]:
    """``proc_status``'s ``server`` object: what the standard library tells about this
    process (reqmon adds psutil's CPU percentage, sampled over a second)."""
    now = time.time()
    times = os.times()
    memory = rss_kib()
    return {
        "pid": os.getpid(),
        "timestamp": time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(now)),
        "time": now,
        "cpu_times": {"user": times.user, "system": times.system,
                      "children_user": times.children_user,
                      "children_system": times.children_system},
        "memory_full_info": {"rss": memory.get("VmRSS", 0) * 1024,
                             "peak_rss": memory.get("VmHWM", 0) * 1024},
        "uptime": now - started,
    }


def _apis() -> dict[str, _Api]:
    app = WMCoreApp
    apis = [
        _Api("info", app._info, JSON_ONLY, "The server's version.", data=False),
        _Api("teams", app._teams, JSON_ONLY, "The teams of the agents' heartbeats."),
        _Api("request", app._request, JSON_ONLY,
             "One request's document with its agents' reports (AgentJobInfo).",
             item="request_name"),
        _Api("jobdetail", app._jobdetail, _JSON_OR_TEXT,
             "A workflow's jobs by task, state, exit code and site, with sample "
             "jobsummary documents.", item="request_name", params=("sample_size",),
             jobs=True),
        _Api("isfinished", app._isfinished, JSON_ONLY,
             "Whether every task of a request has completed all its jobs.",
             item="request_name"),
        _Api("requestcache", app._requestcache, _JSON_OR_TEXT,
             "Every active request's document, with AgentJobInfo for the running ones."),
        _Api("filtered_requests", app._filtered, _JSON_OR_TEXT,
             "Active requests matching conditions, whole or masked.", conditions=True,
             guarded=True),
        _Api("protectedlfns", app._protectedlfns, _JSON_OR_TEXT,
             "Every unmerged LFN base of the active requests.", guarded=True),
        _Api("protectedlfns_final", app._protectedlfns_final, _JSON_OR_TEXT,
             "The unmerged paths of the active requests' final output.", guarded=True),
        _Api("globallocks", app._globallocks, _JSON_OR_TEXT,
             "Every input, output and pileup dataset of the active requests.",
             guarded=True),
        _Api("proc_status", app._proc_status, _JSON_OR_TEXT, "About the server process.",
             data=False),
    ]
    return {api.name: api for api in apis}


#: Every API, by name.
APIS: Final[Mapping[str, _Api]] = _apis()


def build_application(root: WMCoreApp | None = None, script_name: str | None = None,
                      **options: Any) -> Any:
    """A ``cherrypy.Application`` (a WSGI callable) serving a :class:`WMCoreApp`.

    :param root: the app; built from ``options`` when ``None``.
    :param script_name: the mount point; ``None`` takes it from each request's WSGI
        ``SCRIPT_NAME``.
    """
    if root is None:
        root = WMCoreApp(**options)
    elif options:
        raise TypeError("give either an app or its options, not both")
    return wsgi_application(root, script_name, WMCoreApp.mount_config())
