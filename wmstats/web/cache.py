"""The cache server: the proposal's read-only REST API over one store, on CherryPy.

:class:`CacheApp` is a CherryPy root object.  Build it the WMCore way,
``CacheApp(app, config, mount)`` with ``config`` any object holding the options
of :class:`CacheConfig` as attributes (a WMCore ``ConfigSection``), or from
keywords, ``CacheApp(store="sqlite:////data/wmstats.db", max_limit=500)``; then
mount it anywhere::

    cherrypy.tree.mount(app, "/wmstats", CacheApp.mount_config())
    # or, without the global tree:
    application = build_application(app, "/wmstats")   # a WSGI callable

Endpoints (all ``GET``/``HEAD``; see ``docs/http.md`` and ``/openapi.json``):
``/fetch``, ``/fetch/<workflow>``, ``/sites[/<site>]``, ``/campaign[/<campaign>]``,
``/agent[/<agent>]``, ``/release[/<release>]``, ``/status[/<status>]``,
``/type[/<type>]``, ``/team[/<team>]``, ``/jobs/<workflow>``, ``/alerts``,
``/healthz``, ``/metrics``, ``/info``, ``/openapi.json``, ``/schema``.

Every request goes through :meth:`CacheApp.default`: find its route in
:data:`ROUTES` (one per endpoint, each with the method answering it), whitelist
the parameters, negotiate the media type and encoding, then call the route's
handler, which answers 304 when the ETag matches or builds the body.  Pages are
generators over the store, encoded record by record and gzip-compressed chunk by
chunk, so memory stays flat whatever the page size.  Every refusal is a JSON
error; nothing else (no traceback) ever reaches a client.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs
import cherrypy  # type: ignore[import-untyped]
import cherrypy.process.plugins  # type: ignore[import-untyped]

from wmstats._version import __version__
from wmstats.aggregates import AGGREGATES
from wmstats.alerts import AlertRules
from wmstats.jsonschema import json_schema
from wmstats.query import (
    RESERVED_PARAMS,
    LimitError,
    Query,
    QueryError,
    QueryTimeoutError,
    make_summary,
    parse_query,
    time_budget,
)
from wmstats.schema import (
    BUNDLE_PARTS,
    COUNTER_FIELDS,
    SCHEMA_VERSION,
    Agent,
    Summary,
)
from wmstats.serialize import converter
from wmstats.source import Source, open_source
from wmstats.stream import FRAME_LEVEL, available_codings
from wmstats.store import EncodedRuns, Store, StoreError, open_store
from wmstats.web._drill import (
    ALERT_OPTIONS,
    JOB_OPTIONS,
    AlertFeed,
    agents_now,
    alerts_reply,
    jobs_reply,
)
from wmstats.web._frames import FrameWarmer
from wmstats.web._encode import (
    Tally,
    document_body,
    dumps,
    dumps_bytes,
    ndjson_body,
)
from wmstats.web._auth import AUTH_MODES, DEFAULT_OPEN_PATHS, CmsHeaderAuth, make_auth
from wmstats.web._config import config_values, to_int, wsgi_application
from wmstats.web._errors import APP_CP_CONFIG, ApiError, install_json_errors
from wmstats.web._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from wmstats.web._metrics import Metrics
from wmstats.web._negotiate import (
    DATA_TYPES,
    JSON_ONLY,
    NDJSON_TYPES,
    check_path_encoding,
    choose_type,
    parse_query_string,
    choose_coding,
)
from wmstats.web._openapi import english_list, openapi_document
from wmstats.web._reply import (
    GZIP_MIN,
    Reply,
    check_method,
    content_etag,
    guarded,
    not_modified,
    send,
)
from wmstats.web._routes import AGENTS, METRICS_TYPE, Call, Params, Route, Router
from wmstats.web.wmcore import DEFAULT_PREFIX

__all__ = ["CacheConfig", "CacheApp", "SourcePlugin", "build_application", "ROUTES",
           "HEALTH_DETAILS"]

_ETAG_SAFE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: Seconds a client is told to wait while the source has not loaded yet.
_RETRY_AFTER: Final = "5"
#: The start of a workflow's NDJSON line among records of several types.
_TAG_WORKFLOW: Final = b'{"RecordType":"Workflow"'
#: Headers on every response.
_HEADERS: Final = {"X-Content-Type-Options": "nosniff"}
#: Values of ``health_detail``.
HEALTH_DETAILS: Final = ("basic", "full")
#: What ``health_detail="basic"`` leaves out of the source's status: who the
#: upstream is and what it said (user names, host names, error texts).
_PRIVATE_SOURCE_KEYS: Final = frozenset({"url", "last_error"})


def _positive(minimum: int) -> Callable[[Any, attrs.Attribute[int], int], None]:
    def check(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value}")
    return check


def _to_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"expected seconds, got {value!r}")
    seconds = float(value)
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"expected seconds >= 0, got {value!r}")
    return seconds


@attrs.frozen(kw_only=True)
class CacheConfig:
    """Options of a :class:`CacheApp` (all optional).

    :param store: a store URL for :func:`wmstats.store.open_store` (the app opens
        it and closes it in :meth:`CacheApp.close`), or an open
        :class:`~wmstats.store.Store` (shared; the caller closes it).
    :param default_limit: page size when ``limit`` is not given.
    :param max_limit: the most workflows in an ``application/json`` page (a larger
        ``limit`` is capped to it).
    :param max_stream_limit: largest ``limit`` for NDJSON (413 above); NDJSON
        pages are streamed from the store, so this may be large.
    :param gzip_level: zlib level of gzip responses (1 is the fastest).
    :param chunk_size: bytes per chunk handed to the HTTP server when streaming.
    :param max_query_length: longest accepted query string (414 above).
    :param mock: if > 0, fill the store with this many mock workflows (and the
        mock agents) when the app is built; for demos and tests.
    :param mock_seed: seed of the mock generator.
    :param source: where the data comes from: a source URL for
        :func:`wmstats.source.open_source` (e.g. ``couchdb://host:5984``; the app
        opens it on its store, starts it and stops it in :meth:`CacheApp.close`),
        or a :class:`~wmstats.source.Source` (its store is served; the app starts
        it, the caller stops it).  Until its first load, data endpoints answer 503.
    :param alert_assigned_seconds: a request ``assigned`` for longer raises an
        ``assigned-stall`` alert (0: never); see :class:`wmstats.alerts.AlertRules`.
    :param alert_status_stall_seconds: a running request without running jobs for
        longer raises ``status-stall`` (0: never, the default).
    :param alert_site_error_ratio: failed / finished jobs above which a request
        raises ``site-error``.
    :param alert_agent_stale_seconds: an agent whose heartbeat is older is ``down``.
    :param query_budget: seconds of work one request's queries may take (filters,
        counts, aggregates); past it the work is stopped and the request answered
        422 (:func:`wmstats.query.time_budget`).  0: no budget.
    :param health_detail: what ``/healthz`` tells a client that is not
        authenticated: ``"basic"`` (readiness, counts, ages and the source's
        counters, without the upstream URL, user name and error texts) or
        ``"full"`` (everything).  Authenticated clients always get everything.
    :param auth: ``"none"`` or ``"cms-headers"``: require the CMSWEB front-end's
        signed ``cms-auth*`` headers (:mod:`wmstats.web._auth`); 403 without.
    :param hmac_key_file: the file holding the HMAC key shared with the
        front-ends (for ``cms-headers``).
    :param auth_open: first path segments that need no authentication
        (comma-separated, or a list): ``healthz,metrics`` by default.
    :param zstd_frame_level: the zstd level at which the full fetch's workflows are
        kept compressed, in runs, by a background thread at the lowest CPU priority
        (:class:`wmstats.stream.FrameCache`; stores that keep their records encoded,
        such as ``memory://``); 0: never (every zstd body compressed as it is sent).
    :param wmcore_prefix: where ``wmstats cache-server`` and ``wmstats serve`` mount
        the WMCore-compatible API (:mod:`wmstats.web.wmcore`) next to this app,
        reading its store and source; empty: not at all.
    """

    store: str | Store = "memory://"
    default_limit: int = attrs.field(default=100, converter=to_int, validator=_positive(0))
    max_limit: int = attrs.field(default=1000, converter=to_int, validator=_positive(1))
    max_stream_limit: int = attrs.field(default=1_000_000, converter=to_int,
                                        validator=_positive(1))
    gzip_level: int = attrs.field(default=1, converter=to_int, validator=_positive(1))
    chunk_size: int = attrs.field(default=64 * 1024, converter=to_int,
                                  validator=_positive(1))
    max_query_length: int = attrs.field(default=16 * 1024, converter=to_int,
                                        validator=_positive(1))
    mock: int = attrs.field(default=0, converter=to_int, validator=_positive(0))
    mock_seed: int = attrs.field(default=0, converter=to_int)
    source: str | Source | None = None
    alert_assigned_seconds: int = attrs.field(default=AlertRules().assigned_seconds,
                                              converter=to_int, validator=_positive(0))
    alert_status_stall_seconds: int = attrs.field(
        default=AlertRules().status_stall_seconds, converter=to_int, validator=_positive(0))
    alert_site_error_ratio: float = attrs.field(default=AlertRules().site_error_ratio,
                                                converter=float)
    alert_agent_stale_seconds: int = attrs.field(default=AlertRules().agent_stale_seconds,
                                                 converter=to_int, validator=_positive(0))
    query_budget: float = attrs.field(default=1.0, converter=_to_seconds)
    health_detail: str = attrs.field(default="basic", validator=attrs.validators.in_(
        HEALTH_DETAILS))
    auth: str = attrs.field(default="none", validator=attrs.validators.in_(AUTH_MODES))
    hmac_key_file: str | None = None
    auth_open: str | tuple[str, ...] = DEFAULT_OPEN_PATHS
    wmcore_prefix: str = attrs.field(default=DEFAULT_PREFIX, converter=str)
    zstd_frame_level: int = attrs.field(default=FRAME_LEVEL, converter=to_int,
                                        validator=_positive(0))

    def __attrs_post_init__(self) -> None:
        prefix = self.wmcore_prefix
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")
                       or "//" in prefix or "?" in prefix or "#" in prefix):
            raise ValueError(f"wmcore_prefix must be a path like /wmstatsserver/data (or "
                             f"empty), got {prefix!r}")
        if self.gzip_level > 9:
            raise ValueError(f"gzip_level must be 1..9, got {self.gzip_level}")
        if self.zstd_frame_level > 22:
            raise ValueError(f"zstd_frame_level must be 0..22, got {self.zstd_frame_level}")
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit ({self.default_limit}) is above max_limit "
                             f"({self.max_limit})")
        if self.max_limit > self.max_stream_limit:
            raise ValueError(f"max_limit ({self.max_limit}) is above max_stream_limit "
                             f"({self.max_stream_limit})")
        if not isinstance(self.store, (str, Store)):
            raise TypeError(f"store must be a store URL or a Store, got {self.store!r}")
        if self.source is not None and not isinstance(self.source, (str, Source)):
            raise TypeError(f"source must be a source URL or a Source, got {self.source!r}")
        if self.source is not None and self.mock:
            raise ValueError("give either mock or source: the source fills the store")
        if isinstance(self.source, Source) and self.store not in ("memory://",
                                                                 self.source.store):
            raise ValueError("a Source object brings its own store: do not give another one")
        self.alert_rules()  # ValueError for a bad threshold

    @classmethod
    def from_object(cls, config: Any = None, /, **overrides: Any) -> CacheConfig:
        """Options read from ``config``'s attributes (those it has), then ``overrides``.

        :param config: ``None``, a mapping, or any object with attributes (a WMCore
            ``ConfigSection``); unknown attributes are ignored.
        :raises TypeError: for an unknown keyword in ``overrides``.
        """
        values = config_values(cls, config, overrides, "CacheApp")
        if "default_limit" not in values and "max_limit" in values:
            # Only a maximum given: the default page follows it down.
            values["default_limit"] = min(100, to_int(values["max_limit"]))
        return cls(**values)

    def alert_rules(self) -> AlertRules:
        """The alert thresholds of this configuration."""
        return AlertRules(assigned_seconds=self.alert_assigned_seconds,
                          status_stall_seconds=self.alert_status_stall_seconds,
                          site_error_ratio=self.alert_site_error_ratio,
                          agent_stale_seconds=self.alert_agent_stale_seconds)

    def limits(self) -> dict[str, int]:
        """The paging limits, as published by ``/info`` and ``/openapi.json``."""
        return {"default_limit": self.default_limit, "max_limit": self.max_limit,
                "max_stream_limit": self.max_stream_limit}


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.pop(name, None)
    if values is None:
        return None
    if len(values) != 1:
        raise ApiError(400, "given more than once", parameter=name)
    return values[0]


def _etag(snapshot: str, media: str, coding: str | None) -> str:
    sid = snapshot if _ETAG_SAFE.match(snapshot) else hashlib.sha1(
        snapshot.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    kind = "ndjson" if media in NDJSON_TYPES else "json"
    return f'"{sid}-{kind}{"-" + coding if coding else ""}"'


def _tagged(line: bytes) -> bytes:
    """A workflow's JSON object with ``"RecordType": "Workflow"`` as its first key."""
    return _TAG_WORKFLOW + (b"," + line[1:] if len(line) > 2 else b"}")


def _unstructure(value: Any) -> Any:
    return converter().unstructure(value)


class CacheApp:
    """The cache server's CherryPy root object.

    WMCore mounts views as ``Class(app, config, mount)``; keywords override (or
    replace) ``config``'s attributes::

        CacheApp(rest_main, view_config, "/wmstats/cache")
        CacheApp(store="memory://", mock=1000)

    :param app: the WMCore ``RESTMain`` (unused; accepted for the WMCore signature).
    :param config: an object (or mapping) with :class:`CacheConfig` attributes.
    :param mount: the mount point (informational; links follow the request's
        own script name).
    :param options: :class:`CacheConfig` options.
    """

    #: CherryPy configuration carried by the object itself, so that any mount
    #: (``cherrypy.tree.mount``, WMCore's ``RESTMain``) gets JSON errors, no
    #: tracebacks and no body processing; no global tool is touched.
    _cp_config: ClassVar[dict[str, Any]] = dict(APP_CP_CONFIG)
    #: JSON errors and no traceback from the start of every request, even those
    #: CherryPy refuses before dispatch (:func:`~wmstats.web._errors.install_json_errors`).
    JSON_ERRORS: ClassVar[bool] = True

    def __init__(self, app: Any = None, config: Any = None, mount: str = "",
                 **options: Any) -> None:
        install_json_errors()
        self.app = app
        self.mount = mount
        self.config = CacheConfig.from_object(config, **options)
        self._auth: CmsHeaderAuth | None = make_auth(
            self.config.auth, self.config.hmac_key_file, self.config.auth_open)
        store = self.config.store
        given = self.config.source
        if isinstance(given, Source):
            store = given.store
        if isinstance(store, Store):
            self._store, self._owns_store = store, False
        else:
            self._store, self._owns_store = open_store(store), True
        #: the alerts, kept up to date by the store's writes
        self.alert_feed = AlertFeed(self._store, self.config.alert_rules())
        self._source: Source | None = None
        self._owns_source = False
        if given is not None:
            try:
                self._source = given if isinstance(given, Source) else open_source(
                    given, self._store)
            except BaseException:
                self.close()
                raise
            self._owns_source = not isinstance(given, Source)
            self._source.start()
        if self.config.mock:
            from wmstats.mock import MockGenerator

            gen = MockGenerator(seed=self.config.mock_seed)
            self._store.replace(gen.bundles(self.config.mock), gen.agents())
            self._store.replace_jobs(gen.iter_jobs(self.config.mock))
        #: the full fetch's zstd frames, if kept (:mod:`wmstats.web._frames`)
        self.frames: FrameWarmer | None = None
        if self.config.zstd_frame_level and "zstd" in available_codings() \
                and self._store.encoded_runs() is not None:
            self.frames = FrameWarmer(self._store, self.config.zstd_frame_level)
        self._started = time.time()
        self.metrics = Metrics(gauges=self._gauges)
        self.metrics.set_info({"version": __version__, "schema_version": SCHEMA_VERSION,
                               "backend": self._backend()})
        self._seen: tuple[str, float] = ("", self._started)
        self._seen_lock = threading.Lock()
        self._docs: dict[str, bytes] = {}
        try:
            self._snapshot()
        except Exception:  # a store that is down now may answer later: /healthz says
            cherrypy.log("the store does not answer yet", traceback=True,
                         severity=logging.WARNING)

    @classmethod
    def from_options(cls, **options: Any) -> CacheApp:
        """A cache app from :class:`CacheConfig` keywords alone."""
        return cls(None, None, "", **options)

    @staticmethod
    def mount_config() -> dict[str, dict[str, Any]]:
        """Application config for ``cherrypy.tree.mount(app, prefix, config)``.

        The object's ``_cp_config`` already carries everything; this adds the
        same at the application level, so errors raised before dispatch (a bad
        ``Host`` header) are JSON as well.
        """
        return {"/": dict(CacheApp._cp_config)}

    @property
    def store(self) -> Store:
        """The one store every endpoint reads."""
        return self._store

    @property
    def auth(self) -> CmsHeaderAuth | None:
        """The CMSWEB header check of this app (``None``: no authentication); an
        app reading this one's store (:class:`~wmstats.web.wmcore.WMCoreApp`)
        checks the same."""
        return self._auth

    @property
    def source(self) -> Source | None:
        """The source that fills the store, if any."""
        return self._source

    def close(self) -> None:
        """Stop the source and close the store, each if the app opened it."""
        self.alert_feed.close()
        frames: FrameWarmer | None = getattr(self, "frames", None)  # None while building
        if frames is not None:
            frames.close()
        if self._owns_source and self._source is not None:
            self._source.close()
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> CacheApp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ dispatch

    def _default(self, /, *path: str, **_params: Any) -> Any:
        """Every request: route, validate, negotiate, answer."""
        request = cherrypy.serving.request
        start = time.perf_counter()
        self.metrics.started()
        found = _ROUTER.find(path)
        endpoint = "unknown" if found is None else (found[0].template or "index")

        def answer() -> Reply:
            request.wmstats_user = None if self._auth is None else self._auth.check(
                path, request.headers)
            if found is None:
                raise ApiError(404, f"no endpoint at /{'/'.join(path)} (see /openapi.json)")
            check_method(request.method, "; the API is read-only")
            check_path_encoding(request.wsgi_environ or {})
            params = parse_query_string(request.query_string or "",
                                        self.config.max_query_length)
            try:
                # Data endpoints run their queries within the time budget; health,
                # metrics and the fixed documents do not.
                with time_budget(self.config.query_budget if found[0].data else None):
                    return self._answer(found[0], found[1], params, request.headers)
            except StoreError:
                cherrypy.log(f"store error on {request.path_info}", traceback=True,
                             severity=logging.ERROR)
                raise ApiError(503, "the store is not available") from None
            except QueryTimeoutError as exc:
                raise ApiError(422, exc.message) from None

        reply = guarded(answer, request.path_info)
        if reply.status < 400:
            reply.headers = {"Vary": "Accept, Accept-Encoding", "Cache-Control": "no-cache",
                             **reply.headers}
        return send(reply, request, headers=_HEADERS, gzip_level=self.config.gzip_level,
                    done=lambda records, sent: self.metrics.observe(
                        endpoint, reply.status, time.perf_counter() - start, records, sent))

    #: CherryPy's default dispatcher calls ``default(*path_segments, **params)``
    #: for every path, since the object has no other exposed attribute.
    default = cherrypy.expose(_default)

    def _answer(self, route: Route, value: str | None, params: dict[str, list[str]],
                headers: Mapping[str, str]) -> Reply:
        """Whitelist the parameters, negotiate, and call the route's handler."""
        self._whitelist(route, params)
        fmt = _single(params, "format")
        media = route.types[0] if route.params is Params.NONE else choose_type(
            headers.get("Accept"), fmt, route.types)
        if route.data and self._source is not None and not self._source.ready:
            raise ApiError(503, "the data source has not finished its first load; see "
                                "/healthz", headers={"Retry-After": _RETRY_AFTER})
        coding = choose_coding(headers.get("Accept-Encoding"), available_codings())
        call = Call(route, value, params, media, coding is not None,
                    headers.get("If-None-Match"), coding)
        return route.handler(self, call)

    @staticmethod
    def _whitelist(route: Route, params: dict[str, list[str]]) -> None:
        """Refuse parameters the route does not take (filters are checked later)."""
        for key in params:
            if route.params is Params.OPTIONS:
                if key != "format" and key not in {o.name for o in route.options}:
                    raise ApiError(400, f"unknown parameter {key[:60]!r}: /{route.template} "
                                        f"takes {', '.join(o.name for o in route.options)} "
                                        f"and format", parameter=key[:60])
                continue
            if route.params is Params.NONE or (route.params is Params.FORMAT
                                               and key != "format"):
                raise ApiError(400, f"unknown parameter {key!r}: /{route.template} takes "
                                    + ("no parameters" if route.params is Params.NONE
                                       else "only 'format'"), parameter=key)
            if route.params is Params.FILTERS and key in RESERVED_PARAMS:
                raise ApiError(400, f"/{route.template} lists every value: it takes "
                                    f"filters but no {key!r}", parameter=key)

    # ------------------------------------------------------------------ helpers

    def _backend(self) -> str:
        return self._store.backend or type(self._store).__name__

    def _agents_now(self, urls: list[str] | None = None) -> list[Agent]:
        """The agent records, their status derived now with this server's rules."""
        return agents_now(self._store, self.alert_feed.rules, time.time(), urls)

    def _snapshot(self) -> str:
        """The store's snapshot id, noting when it was first seen."""
        sid = self._store.snapshot_id
        if sid != self._seen[0]:
            with self._seen_lock:
                if sid != self._seen[0]:
                    self._seen = (sid, time.time())
        return sid

    def _sources(self, sid: str) -> dict[str, str] | None:
        """The source sequences snapshot ``sid`` reflects (``None``: no source or unknown)."""
        if self._source is None:
            return None
        found = self._source.sequences_for(sid)
        return None if found is None else dict(found)

    def _data_headers(self, sid: str, etag: str,
                      sources: dict[str, str] | None) -> dict[str, str]:
        headers = {"X-Snapshot-Id": sid, "ETag": etag}
        if sources is not None:
            headers["X-Source-Sequences"] = dumps(sources)
        return headers

    def _snapshot_age(self) -> float | None:
        sid, since = self._seen
        return max(0.0, time.time() - since) if sid else None

    def _query(self, call: Call, paged: bool) -> Query:
        """The call's query parameters as a :class:`Query` (paged: ``limit`` at most
        ``max_stream_limit``, and a JSON page capped at ``max_limit`` workflows)."""
        try:
            if paged:
                query = parse_query(call.params, default_limit=self.config.default_limit,
                                    max_limit=self.config.max_stream_limit)
                if call.media not in NDJSON_TYPES and query.limit is not None \
                        and query.limit > self.config.max_limit:
                    query = query.page(query.idx, self.config.max_limit)
                return query
            return parse_query(call.params, default_limit=None)
        except LimitError as exc:
            raise ApiError(413, f"limit {exc.limit} is above the maximum of {exc.maximum}",
                           parameter="limit") from None
        except QueryError as exc:
            parameter = exc.parameter or exc.field
            detail = exc.message if parameter.partition(".")[0] == exc.field else \
                f"{exc.field}: {exc.message}"
            raise ApiError(400, detail, parameter=parameter) from None

    def _next_url(self, idx: int) -> str:
        """This request's URL with ``idx`` replaced."""
        request = cherrypy.serving.request
        pairs: list[tuple[str, str]] = []
        seen_idx = False
        for key, value in urllib.parse.parse_qsl(request.query_string or "",
                                                 keep_blank_values=True):
            if key == "idx":
                if not seen_idx:
                    pairs.append(("idx", str(idx)))
                    seen_idx = True
                continue
            pairs.append((key, value))
        if not seen_idx:
            pairs.insert(0, ("idx", str(idx)))
        if not any(k == "limit" for k, _ in pairs):
            pairs.insert(1, ("limit", str(self.config.default_limit)))
        path = urllib.parse.quote((request.script_name or "") + (request.path_info or "/"),
                                  safe="/:@!$&'()*+,;=-._~")
        return path + "?" + urllib.parse.urlencode(pairs, safe=",:*",
                                                   quote_via=urllib.parse.quote)

    def _page(self, query: Query, call: Call, head: dict[str, Any],
              lines: list[dict[str, Any]], snapshot_hint: str) -> Reply:
        """One page of workflows: the first batch read now, the rest streamed.

        The workflows come as JSON text from the store
        (:meth:`~wmstats.store.Store.query_encoded`): a store that keeps its
        records encoded answers without encoding them again.
        """
        assert query.limit is not None
        media = call.media
        if self.frames is not None and call.coding == "zstd" and call.gz \
                and media in NDJSON_TYPES and not lines and not query.filters \
                and not query.sort and query.fields is None and query.idx == 0:
            runs = self._store.encoded_runs()
            if runs is not None and query.limit >= runs.total:
                return self._framed(runs, call, snapshot_hint)
        first = min(query.limit, self.config.max_limit)
        page = self._store.query_encoded(query.page(query.idx, first))
        total, sid = page.total, page.snapshot or snapshot_hint
        records: Iterable[bytes] = page.lines
        remaining = min(query.limit, max(0, total - query.idx)) - len(page.lines)
        if remaining > 0 and len(page.lines) == first:
            records = itertools.chain(page.lines, self._store.stream_encoded(
                query.page(query.idx + first, query.limit - first)))
        next_idx = query.idx + query.limit
        next_url = self._next_url(next_idx) if query.limit and next_idx < total else None
        sources = self._sources(sid)
        headers = {"X-Total-Count": str(total),
                   **self._data_headers(sid, _etag(sid, media, call.coding), sources)}
        if next_url is not None:
            headers["Link"] = f'<{next_url}>; rel="next"'
        tally = Tally()
        chunk = self.config.chunk_size
        body: bytes | Iterator[bytes]
        if media in NDJSON_TYPES:
            items: Iterable[Any] = records
            if lines:
                # Mixed record types: each workflow line is tagged too.
                items = itertools.chain(lines, map(_tagged, records))
            body = ndjson_body(items, _unstructure, tally, chunk)
        else:
            head.update({"total": total, "idx": query.idx, "limit": query.limit,
                         "snapshot": sid, "sources": sources, "next": next_url})
            body = document_body(head, "workflows", records, _unstructure, tally, chunk)
        if remaining <= 0:
            # The whole page is read already: one body with its Content-Length,
            # compressed at once, instead of a chunked stream (fewer writes and
            # less work for both sides on every page).
            body = b"".join(body)
        return Reply(body, media, headers=headers, tally=tally, compress=call.gz,
                     coding=call.coding or "gzip")

    def _framed(self, runs: EncodedRuns, call: Call, snapshot_hint: str) -> Reply:
        """Every workflow as NDJSON in zstd: the kept frames of the runs that did not
        change, the others compressed as they are sent (:mod:`wmstats.web._frames`)."""
        assert self.frames is not None
        sid = runs.snapshot or snapshot_hint
        tally = Tally()

        def counted_runs() -> Iterator[tuple[str, Sequence[bytes]]]:
            for key, lines in runs.runs:
                tally.records += len(lines)
                yield key, lines

        headers = {"X-Total-Count": str(runs.total), "Content-Encoding": "zstd",
                   **self._data_headers(sid, _etag(sid, call.media, call.coding),
                                        self._sources(sid))}
        body = self.frames.frames(counted_runs(), self.config.chunk_size)
        return Reply(body, call.media, headers=headers, tally=tally)

    def _document(self, key: str, build: Callable[[], Any], call: Call) -> Reply:
        """A fixed JSON document, encoded once."""
        body = self._docs.get(key)
        if body is None:
            body = self._docs[key] = dumps_bytes(build())
        etag = content_etag(body, call.coding if len(body) >= GZIP_MIN else None)
        cached = not_modified(etag, call.if_none_match)
        if cached is not None:
            return cached
        return Reply(body, headers={"ETag": etag}, compress=call.gz, coding=call.coding or "gzip")

    # ------------------------------------------------------------------ endpoints

    def _fetch(self, call: Call) -> Reply:
        """``/fetch``: one page of workflows."""
        query = self._query(call, paged=True)
        sid = self._snapshot()
        cached = not_modified(_etag(sid, call.media, call.coding), call.if_none_match)
        if cached is not None:
            return cached
        return self._page(query, call, {}, [], sid)

    def _workflow(self, call: Call) -> Reply:
        """``/fetch/<workflow>``: one workflow bundle, every part of it."""
        assert call.value is not None
        media = call.media
        sid = self._snapshot()
        etag = _etag(sid, media, call.coding)
        cached = not_modified(etag, call.if_none_match)
        if cached is not None:
            return cached
        bundle = self._store.get(call.value)
        if bundle is None:
            raise ApiError(404, f"no workflow named {call.value!r}", parameter=call.route.item)
        sources = self._sources(sid)
        tally = Tally()
        if media in NDJSON_TYPES:
            lines = [dumps({"RecordType": type(r).__name__, **_unstructure(r)})
                     for r in bundle.records()]
            tally.records = len(lines)
            body = ("\n".join(lines) + "\n").encode("utf-8")
        else:
            doc = {"snapshot": sid, "sources": sources,
                   "workflow": _unstructure(bundle.workflow)}
            for name, records in bundle.parts():
                doc[name] = [_unstructure(r) for r in records]
            tally.records = sum(1 for _ in bundle.records())
            body = dumps_bytes(doc)
        return Reply(body, media, headers=self._data_headers(sid, etag, sources),
                     tally=tally, compress=call.gz, coding=call.coding or "gzip")

    def _values(self, call: Call) -> Reply:
        """``/<collection>``: every value of an aggregate with its summary."""
        aggregate = call.route.aggregate
        assert aggregate is not None
        by, media = aggregate.key, call.media
        query = self._query(call, paged=False)
        sid = self._snapshot()
        etag = _etag(sid, media, call.coding)
        cached = not_modified(etag, call.if_none_match)
        if cached is not None:
            return cached
        summaries = self._store.aggregate(by, query if query.filters else None)
        items: list[dict[str, Any]] = [_unstructure(s) for s in summaries]
        if call.route.carries_agent:
            self._attach_agents(items, listed_only=bool(query.filters))
        tally = Tally()
        sources = self._sources(sid)
        if media in NDJSON_TYPES:
            body = ndjson_body(items, _unstructure, tally, self.config.chunk_size)
        else:
            body = document_body({"by": by, "snapshot": sid, "sources": sources,
                                  "total": len(items)}, "values",
                                 items, _unstructure, tally, self.config.chunk_size)
        return Reply(body, media, headers=self._data_headers(sid, etag, sources),
                     tally=tally, compress=call.gz, coding=call.coding or "gzip")

    def _attach_agents(self, items: list[dict[str, Any]], listed_only: bool) -> None:
        """Each agent summary with its heartbeat record (``Agent``, or None); unless
        ``listed_only``, agents without a workflow are added with zero counters."""
        agents = {a.AgentURL: a for a in self._agents_now()}
        if not listed_only:
            listed = {item["Value"] for item in items}
            zero = [0] * len(COUNTER_FIELDS)
            items += [_unstructure(make_summary(AGENTS.key, url, zero, {}))
                      for url in agents if url not in listed]
            items.sort(key=lambda item: str(item["Value"]))
        for item in items:
            agent = agents.get(item["Value"])
            item["Agent"] = None if agent is None else _unstructure(agent)

    def _summary(self, call: Call) -> Reply:
        """``/<collection>/<value>``: one value's summary and a page of its workflows."""
        aggregate, value = call.route.aggregate, call.value
        assert aggregate is not None and value is not None
        by = aggregate.key
        query = self._query(call, paged=True)
        sid = self._snapshot()
        cached = not_modified(_etag(sid, call.media, call.coding), call.if_none_match)
        if cached is not None:
            return cached
        summary: Summary = self._store.summary(by, value)
        agent: Agent | None = None
        if call.route.carries_agent:
            found = self._agents_now([value])
            agent = found[0] if found else None
        if summary.Workflows == 0 and agent is None:
            raise ApiError(404, f"no workflow has {by} {value!r}", parameter=call.route.item)
        if query.filters:
            summary = self._store.summary(by, value, query)
        narrowed = query.where(aggregate.field, "eq", value)
        head: dict[str, Any] = {"summary": _unstructure(summary)}
        lines: list[dict[str, Any]] = [{"RecordType": "Summary", **head["summary"]}]
        if call.route.carries_agent:
            head["agent"] = None if agent is None else _unstructure(agent)
            if agent is not None:
                lines.append({"RecordType": "Agent", **head["agent"]})
        return self._page(narrowed, call, head, lines, sid)

    def _health(self, call: Call) -> Reply:
        """``/healthz``: whether the store answers (and the source has loaded)."""
        backend = self._backend()
        full = self._full_detail()
        source = None if self._source is None else self._source.status()
        source_doc = None if source is None else {
            key: value for key, value in source.to_dict().items()
            if full or key not in _PRIVATE_SOURCE_KEYS}
        try:
            sid = self._snapshot()
            workflows = self._store.count()
            agents = len(self._store.get_agents())
        except Exception as exc:  # any failure of the store means "not ready"
            cherrypy.log("health check failed", traceback=True, severity=logging.WARNING)
            doc: dict[str, Any] = {
                "ready": False, "snapshot": None, "snapshot_age_seconds": None,
                "workflows": None, "agents": None, "backend": backend, "source": source_doc,
                "detail": f"the store does not answer ({type(exc).__name__})"}
            return Reply(dumps_bytes(doc), status=503, headers={"Cache-Control": "no-store"})
        doc = {"ready": True, "snapshot": sid, "snapshot_age_seconds": self._snapshot_age(),
               "workflows": workflows, "agents": agents, "backend": backend,
               "source": source_doc}
        if source is not None and not source.ready:
            doc["ready"] = False
            doc["detail"] = "the data source has not finished its first load" + (
                f" (last error: {source.last_error})" if full and source.last_error else "")
            return Reply(dumps_bytes(doc), status=503,
                         headers={"Cache-Control": "no-store", "Retry-After": _RETRY_AFTER})
        return Reply(dumps_bytes(doc), headers={"Cache-Control": "no-store"})

    def _full_detail(self) -> bool:
        """Whether this request may see everything ``/healthz`` knows (full detail
        for anyone, or an authenticated client)."""
        return (self.config.health_detail == "full"
                or getattr(cherrypy.serving.request, "wmstats_user", None) is not None)

    def _metrics(self, call: Call) -> Reply:
        """``/metrics``: the Prometheus text exposition of this app."""
        return Reply(self.metrics.render().encode("utf-8"), METRICS_CONTENT_TYPE,
                     headers={"Cache-Control": "no-store"}, compress=call.gz, coding=call.coding or "gzip")

    def _gauges(self) -> dict[str, tuple[str, float | None]]:
        """The app's gauges, read at each scrape of ``/metrics``."""
        gauges: dict[str, tuple[str, float | None]] = {}
        try:
            self._snapshot()
            workflows: float | None = self._store.count()
            agents: float | None = len(self._store.get_agents())
            warming: float | None = float(self._store.warming)
            up = 1.0
        except Exception:
            cherrypy.log("metrics: store failed", traceback=True, severity=logging.WARNING)
            workflows = agents = warming = None
            up = 0.0
        gauges["store_up"] = ("1 when the store answers, else 0.", up)
        gauges["store_workflows"] = ("Workflows in the current snapshot.", workflows)
        gauges["store_agents"] = ("Agents in the current snapshot.", agents)
        gauges["store_warming"] = ("1 while the store reads what queries will need into "
                                   "memory after starting (Store.warm), else 0.",
                                   warming)
        gauges["snapshot_age_seconds"] = (
            "Seconds since this server first saw the current snapshot.", self._snapshot_age())
        gauges["uptime_seconds"] = ("Seconds since the app was built.",
                                    time.time() - self._started)
        if self.frames is not None:
            gauges["zstd_frames_stale"] = (
                "Runs of workflows whose zstd frame of the full fetch is not compressed "
                "at zstd_frame_level yet (0: all are).", float(self.frames.stale()))
        if self._source is not None:
            status = self._source.status()
            gauges["source_ready"] = ("1 once the source finished its first full load.",
                                      float(status.ready))
            gauges["source_connected"] = ("1 while the source's last upstream request "
                                          "succeeded.", float(status.connected))
            gauges["source_last_load_seconds"] = ("Duration of the source's last full load.",
                                                  status.last_load_seconds)
            gauges["source_loads"] = ("Full loads the source finished (count).",
                                      float(status.loads))
            gauges["source_resumes"] = ("Warm starts of the source: resumed from the "
                                        "sequences kept with the store (count).",
                                        float(status.resumes))
            gauges["source_updates_applied"] = ("Changed upstream documents applied (count).",
                                                float(status.updates_applied))
            gauges["source_problems"] = ("Problems found in upstream documents (count; the "
                                         "log names the documents).", float(status.problems))
            gauges["source_errors"] = ("Failed upstream requests or loads, each retried "
                                       "(count).", float(status.errors))
        return gauges

    def _info(self, call: Call) -> Reply:
        """``/info`` (and ``/``): server identity, limits and endpoints."""
        return self._document("info", lambda: {
            "name": "wmstats cache server",
            "version": __version__,
            "schema_version": SCHEMA_VERSION,
            "backend": self._backend(),
            "limits": self.config.limits(),
            "formats": list(DATA_TYPES),
            "endpoints": ["/" + r.template for r in ROUTES],
        }, call)

    def _schema(self, call: Call) -> Reply:
        """``/schema``: the JSON Schema of the records."""
        return self._document("schema", json_schema, call)

    def _openapi(self, call: Call) -> Reply:
        """``/openapi.json``: this server's OpenAPI description (per mount point)."""
        script = cherrypy.serving.request.script_name or "/"
        return self._document(f"openapi:{script}", lambda: openapi_document(
            script, self.config.limits(), ROUTES,
            auth_open=None if self._auth is None else self._auth.open_paths), call)


def _routes() -> tuple[Route, ...]:
    """The routing table: every endpoint with the method answering it."""
    app = CacheApp
    parts = english_list(cls.__name__ for cls in BUNDLE_PARTS.values())
    routes = [
        Route("", None, Params.FORMAT, JSON_ONLY, "Server identity and links (as /info).",
              app._info),
        Route("fetch", None, Params.PAGED, DATA_TYPES,
              "Workflows matching the filters, one page, sorted.", app._fetch, data=True),
        Route("fetch", "workflow", Params.FORMAT, DATA_TYPES,
              f"One workflow with its {parts} records.", app._workflow, data=True),
    ]
    for a in AGGREGATES:
        routes.append(Route(a.segment, None, Params.FILTERS, DATA_TYPES,
                            f"Every known {a.noun} with its summary (job counters, "
                            f"workflows by status).", app._values, a, data=True))
        routes.append(Route(a.segment, a.param, Params.PAGED, DATA_TYPES,
                            f"The summary of one {a.noun} and its workflows, one page.",
                            app._summary, a, data=True))
    routes += [
        Route("jobs", "workflow", Params.OPTIONS, DATA_TYPES,
              "The workflow's jobs by task, state, exit code, site and agent, with sample "
              "jobs, from the agents' jobsummary documents.", jobs_reply, data=True,
              options=JOB_OPTIONS),
        Route("alerts", None, Params.OPTIONS, DATA_TYPES,
              "What needs attention now: request and agent alerts.", alerts_reply,
              data=True, options=ALERT_OPTIONS),
        Route("healthz", None, Params.FORMAT, JSON_ONLY,
              "Readiness: whether the store answers, its snapshot id and age.", app._health),
        Route("metrics", None, Params.NONE, (METRICS_TYPE,),
              "Prometheus metrics: requests, latencies, records, snapshot age.", app._metrics),
        Route("info", None, Params.FORMAT, JSON_ONLY,
              "Server and schema versions, store backend, limits.", app._info),
        Route("openapi.json", None, Params.FORMAT, JSON_ONLY,
              "This OpenAPI description.", app._openapi),
        Route("schema", None, Params.FORMAT, JSON_ONLY,
              "The JSON Schema of the records.", app._schema),
    ]
    return tuple(routes)


#: Every endpoint of the cache server, with its handler.
ROUTES: Final[tuple[Route, ...]] = _routes()
_ROUTER: Final = Router(ROUTES)


class SourcePlugin(cherrypy.process.plugins.SimplePlugin):  # type: ignore[misc]
    """Run a :class:`~wmstats.source.Source` with a CherryPy engine (WMCore deployments).

    The source starts when the engine starts and stops when it stops (or exits)::

        source = open_source("couchdb://localhost:5984", store)
        SourcePlugin(cherrypy.engine, source).subscribe()
        cherrypy.tree.mount(CacheApp(source=source), "/wmstats", CacheApp.mount_config())

    (:class:`CacheApp` also starts the source it is given; starting twice is harmless.)

    :param bus: the engine (``cherrypy.engine``).
    :param source: the source to run.
    :param stop_timeout: seconds to wait for the source's threads at stop.
    """

    def __init__(self, bus: Any, source: Source, stop_timeout: float = 10.0) -> None:
        super().__init__(bus)
        self.source = source
        self.stop_timeout = stop_timeout

    def start(self) -> None:
        """Start the source (engine ``start``)."""
        self.bus.log(f"starting the data source {self.source!r}")
        self.source.start()

    def stop(self) -> None:
        """Stop the source (engine ``stop``)."""
        if not self.source.stop(self.stop_timeout):
            self.bus.log(f"the data source {self.source!r} did not stop within "
                         f"{self.stop_timeout} s", level=logging.WARNING)


def build_application(root: CacheApp | None = None, script_name: str | None = None,
                      **options: Any) -> Any:
    """A ``cherrypy.Application`` (a WSGI callable) serving a cache app.

    It is not mounted on the global ``cherrypy.tree``: serve it with any WSGI
    server (:class:`wmstats.web.WebServer`, or under a prefix with cheroot's
    ``PathInfoDispatcher``), or mount it with ``cherrypy.tree.mount(application)``.

    :param root: the app; built from ``options`` when ``None``.
    :param script_name: the mount point; ``None`` takes it from each request's
        WSGI ``SCRIPT_NAME`` (``""`` at the root of a server).
    """
    if root is None:
        root = CacheApp.from_options(**options)
    elif options:
        raise TypeError("give either an app or its options, not both")
    return wsgi_application(root, script_name, CacheApp.mount_config())
