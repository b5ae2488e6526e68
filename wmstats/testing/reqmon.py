"""Today's WMStats server, the real reqmon 2.4.5.9, on a CouchDB-protocol server.

The reference for the WMCore-compatible ``/wmstatsserver/data/*`` API: differential
tests compare wmstats' answers with reqmon's, and benchmarks time both side by side.
reqmon (PyPI package ``reqmon``, which bundles ``WMCore/``) lives in a virtualenv of
its own, installed by ``ci/install-reqmon.sh``; this module runs it as a subprocess
of that venv's python and never imports WMCore itself, nor pytest::

    with ReqmonServer(couch.url, reqmgr_db="reqmgr_workload_cache",
                      wmstats_db="wmstats") as reqmon:
        reqmon.result("globallocks")             # the "result" list of the reply
        reqmon.get("filtered_requests", [("RequestStatus", "acquired"),
                                         ("mask", "SiteWhitelist")])
        reqmon.fill_seconds, reqmon.rss()

    wmcore_client_call(reqmon.url, "getGlobalLocks")   # WMCore's own client class

What :class:`ReqmonServer` does, each step answering a failure seen when running
reqmon on pouchdb-server (``docs/wmcore-compat.md`` tells the whole story):

* installs JavaScript equivalents of the Erlang views reqmon queries
  (:data:`REQMGR_DESIGN`, :data:`WMSTATS_DESIGN`) and builds each index with one
  non-stale query (reqmon asks with ``stale=update_after``, which pouchdb answers
  from an empty index);
* serves CouchDB under a ``/couchdb/`` prefix too (:class:`CouchPrefixProxy`), as
  cmsweb does: ``jobdetail`` builds ``<couch_host>/couchdb/<db>/...`` URLs;
* writes ``wmstats_config.py`` and a dummy X509 pair (WMCore's HTTP client refuses
  to start without one, even for ``http://``) into a temporary state folder;
* starts ``wmc-httpd`` in the foreground (``DONT_DAEMONIZE_REST``, else it forks
  and pipes its log to Apache's ``rotatelogs``) with ``PYTHONUNBUFFERED`` set (else
  it re-executes ``python3`` from ``PATH``, not the venv's python), on a free
  loopback port;
* waits until the data cache thread logs ``DataCache is up-to-date with N
  requests data`` and the HTTP port answers;
* stops it by PID: SIGTERM, then SIGKILL after a grace period.

Where the reqmon venv's python is looked up: ``$WMSTATS_REQMON_PYTHON``, else the
default install folder ``.cache/reqmon`` of the current folder or of this checkout
(see :func:`find_reqmon_python`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeAlias

import attrs

from wmstats._procfs import rss_mib

__all__ = [
    "REQMON_VERSION",
    "PYTHON_ENV",
    "INSTALL_COMMAND",
    "REQMGR_DESIGN",
    "WMSTATS_DESIGN",
    "QUERIED_VIEWS",
    "ReqmonError",
    "ReqmonHTTPError",
    "WMCoreClientError",
    "Fill",
    "Reply",
    "ClientResult",
    "CouchPrefixProxy",
    "ReqmonServer",
    "find_reqmon_python",
    "install_views",
    "build_views",
    "seed_mock",
    "wmcore_client_call",
    "wmcore_client_calls",
    "wmcore_constants",
    "wmcore_request_rules",
]

#: The reqmon release this harness runs (``ci/install-reqmon.sh`` pins it).
REQMON_VERSION: Final = "2.4.5.9"
#: Environment variable naming the reqmon venv's python.
PYTHON_ENV: Final = "WMSTATS_REQMON_PYTHON"
#: The command that installs reqmon into the default folder.
INSTALL_COMMAND: Final = "ci/install-reqmon.sh"
_PYTHON_RELPATH: Final = Path(".cache", "reqmon", "bin", "python")
_CLIENT_SCRIPT: Final = Path(__file__).with_name("_wmcore_client.py")
_RULES_SCRIPT: Final = Path(__file__).with_name("_wmcore_request_info.py")
_HOST: Final = "127.0.0.1"
_APP: Final = "wmstatsserver"
#: How many free ports to try when the chosen one is taken before reqmon binds it.
_PORT_ATTEMPTS: Final = 5
#: Environment variables that must not leak from our interpreter into reqmon's.
_FOREIGN_ENV: Final = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                       "PYTHONSAFEPATH", "PYTHONNOUSERSITE")

# JavaScript equivalents of the Erlang views reqmon 2.4.5.9 queries (from the
# WMStatsErl* couchapps of the reqmon package and ReqMgr's couchapp; pouchdb-server
# runs JavaScript only).  RequestDBReader queries _design/ReqMgr of the request
# database, WMStatsReader _design/WMStats of the wmstats database.
#: ``_design/ReqMgr`` of the request database (``reqmgr_workload_cache``).
REQMGR_DESIGN: Final[Mapping[str, Any]] = {
    "_id": "_design/ReqMgr", "language": "javascript", "views": {
        "bystatus": {"map": (
            "function(doc) { var t = null; if (doc.RequestTransition) { "
            "t = doc.RequestTransition[doc.RequestTransition.length - 1].UpdateTime; } "
            "if (doc.RequestStatus) { emit(doc.RequestStatus, t); } }")},
        "byrequest": {"map": (
            "function(doc) { if (doc.RequestName) { emit(doc.RequestName, null); } }")},
        "bystatusandtype": {"map": (
            "function(doc) { if (doc.RequestStatus) { "
            "emit([doc.RequestStatus, doc.RequestType], null); } }")},
    }}
#: ``_design/WMStats`` of the wmstats database (agent_request, agent_info, jobsummary).
WMSTATS_DESIGN: Final[Mapping[str, Any]] = {
    "_id": "_design/WMStats", "language": "javascript", "views": {
        "requestAgentUrl": {"map": (
            "function(doc) { if (doc.type == 'agent_request') { "
            "emit([doc.workflow, doc.agent_url], null); } }"), "reduce": "_count"},
        "latestRequest": {"map": (
            "function(doc) { if (doc.type == 'agent_request') { "
            "emit([doc.workflow, doc.agent_url], null); } }")},
        "agentInfo": {"map": (
            "function(doc) { if (doc.type == 'agent_info') { emit(doc.agent_url, doc); } }")},
        "byAgentURL": {"map": (
            "function(doc) { if (doc.type == 'agent_request') { "
            "emit(doc.agent_url, {'rev': doc._rev}); } }")},
        "allWorkflows": {"map": (
            "function(doc) { if (doc.type == 'agent_request') { emit(doc.workflow, null); } }"),
            "reduce": "_count"},
        "jobsByStatusWorkflow": {"map": (
            "function(doc) { if (doc.type == 'jobsummary' && doc.errors) { var l = []; "
            "for (var s in doc.errors) { for (var o in doc.errors[s]) { "
            "if ('type' in doc.errors[s][o]) { l.push(doc.errors[s][o].type); } } } l.sort(); "
            "emit([doc.workflow, doc.task, doc.state, doc.exitcode, doc.site, doc.acdc_url, "
            "doc.agent_name, l], {'id': doc._id, 'rev': doc._rev}); } }"), "reduce": "_count"},
    }}

#: The views reqmon's data API and cache thread query (the others serve its clean-up
#: task, which the harness does not configure): (database role, view) pairs.
QUERIED_VIEWS: Final = frozenset({
    ("reqmgr", "bystatus"),  # RequestDBReader.getRequestByStatus (cache fill)
    ("wmstats", "requestAgentUrl"), ("wmstats", "latestRequest"),  # AgentJobInfo
    ("wmstats", "agentInfo"),  # teams
    ("wmstats", "jobsByStatusWorkflow"),  # jobdetail
})

# The data cache thread's log (WMCore.WMStats.CherryPyThreads.DataCacheUpdate).
_FILL_RE: Final = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+):INFO:DataCacheUpdate:"
    r"DataCache is up-to-date with (?P<n>\d+) requests data\s*$", re.MULTILINE)
_TOTAL_RE: Final = re.compile(
    r"^(?P<at>\S+ \S+):INFO:DataCacheUpdate:Total time loading data from ReqMgr2 and "
    r"WMStats: (?P<s>[-+0-9.eE]+)\s*$", re.MULTILINE)
# The fill's own error report, and the periodic thread's (an error outside the fill).
_FAIL_RE: Final = re.compile(r"Exception updating DataCache|Periodic Thread ERROR")
_PORT_TAKEN_RE: Final = re.compile(r"Port \d+ not free|Address already in use")

#: Query parameters: a mapping (a list value repeats the key) or (key, value) pairs.
_Params: TypeAlias = "Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | None"


class ReqmonError(RuntimeError):
    """reqmon could not be found, started, filled or stopped."""


class ReqmonHTTPError(ReqmonError):
    """reqmon answered an HTTP error.

    :param reply: the reply (status, headers, body).
    """

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(message)
        self.reply = reply


class WMCoreClientError(Exception):
    """WMCore's client raised; these are the exception's type and attributes.

    :param type: the exception's qualified class name, e.g.
        ``http.client.HTTPException``.
    :param status: the HTTP status the client saw, if any.
    :param reason: the client's reason text (WMCore puts ``X-Error-Detail`` there).
    :param body: the reply body, if the client kept it.
    :param headers: the reply headers, if the client kept them.
    """

    def __init__(self, type: str, message: str, status: int | None = None,
                 reason: str | None = None, body: Any = None,
                 headers: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.status = status
        self.reason = reason
        self.body = body
        self.headers = dict(headers or {})


@attrs.frozen
class Fill:
    """One fill of reqmon's data cache, from its task log.

    :param requests: how many requests the cache holds after it.
    :param seconds: reqmon's own figure (``Total time loading data ...``).
    :param logged_at: the log line's time stamp (``YYYY-mm-dd HH:MM:SS,mmm``, local).
    """

    requests: int
    seconds: float | None
    logged_at: str


@attrs.frozen
class Reply:
    """One HTTP reply: status, headers (names lower-case) and the body as sent."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        """The body, decompressed if gzip, as text."""
        body = self.body
        if self.headers.get("content-encoding", "").lower() == "gzip":
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        :raises ValueError: when it is not JSON (reqmon answers most errors in HTML).
        """
        return json.loads(self.text())


@attrs.frozen
class ClientResult:
    """What one call of WMCore's client gave: a value, or the error it raised."""

    value: Any = None
    error: WMCoreClientError | None = None

    @property
    def ok(self) -> bool:
        """Whether the call returned."""
        return self.error is None

    def unwrap(self) -> Any:
        """The value; raises the client's error instead if there was one."""
        if self.error is not None:
            raise self.error
        return self.value


# --------------------------------------------------------------------------- install


def _candidate_pythons() -> list[Path]:
    roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    return list(dict.fromkeys(root / _PYTHON_RELPATH for root in roots))


def find_reqmon_python() -> Path:
    """The python of the reqmon virtualenv.

    ``$WMSTATS_REQMON_PYTHON`` if set, else ``.cache/reqmon/bin/python`` under the
    current folder or under the checkout this module lives in.

    :raises ReqmonError: when there is none; the message says how to install it.
    """
    env = os.environ.get(PYTHON_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ReqmonError(f"${PYTHON_ENV}={env} is not a file; run {INSTALL_COMMAND} "
                              f"and point ${PYTHON_ENV} at what it prints")
        return path
    candidates = _candidate_pythons()
    for path in candidates:
        if path.is_file():
            return path
    raise ReqmonError("reqmon is not installed (looked for "
                      + ", ".join(str(p) for p in candidates)
                      + f"); run {INSTALL_COMMAND} from the repository root, or set "
                        f"${PYTHON_ENV} to the python of a venv holding reqmon=={REQMON_VERSION}")


# --------------------------------------------------------------------------- CouchDB


def _split_auth(url: str) -> tuple[str, str | None]:
    """``url`` without ``user:password@``, and the Basic auth header value (or None)."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    if parts.username is None:
        return urllib.parse.urlunsplit(parts), None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    token = (f"{urllib.parse.unquote(parts.username)}:"
             f"{urllib.parse.unquote(parts.password or '')}")
    return (urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
            "Basic " + base64.b64encode(token.encode()).decode())


def _couch(url: str, method: str = "GET", body: Any = None, timeout: float = 600.0) -> Any:
    """One CouchDB request; returns the parsed JSON answer.

    :raises urllib.error.HTTPError: on an error status.
    """
    plain, auth = _split_auth(url)
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(plain, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _db_url(couch_url: str, db: str) -> str:
    return f"{couch_url.rstrip('/')}/{urllib.parse.quote(db, safe='')}"


def install_views(couch_url: str, reqmgr_db: str = "reqmgr_workload_cache",
                  wmstats_db: str = "wmstats") -> None:
    """Put :data:`REQMGR_DESIGN` and :data:`WMSTATS_DESIGN` into the two databases.

    Creates the databases if missing; replaces a design document that differs.
    """
    for db, design in ((reqmgr_db, REQMGR_DESIGN), (wmstats_db, WMSTATS_DESIGN)):
        base = _db_url(couch_url, db)
        try:
            _couch(base, "PUT")
        except urllib.error.HTTPError as exc:
            if exc.code != 412:  # exists already
                raise
        doc_url = f"{base}/{design['_id']}"
        wanted = dict(design)
        try:
            current = _couch(doc_url)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        else:
            if {k: current.get(k) for k in wanted} == wanted:
                continue
            wanted["_rev"] = current["_rev"]
        _couch(doc_url, "PUT", wanted)


def build_views(couch_url: str, reqmgr_db: str = "reqmgr_workload_cache",
                wmstats_db: str = "wmstats", *, all_views: bool = True,
                timeout: float = 3600.0) -> float:
    """Bring the view indexes up to date with one non-stale query per view.

    Call it after writing documents and before reqmon reads them: reqmon queries
    with ``stale=update_after``, which pouchdb-server answers from the index as it
    is (empty before the first build) and only then updates it.  pouchdb-server
    builds each view separately, a few ms per document.

    :param all_views: every view of the two design documents; with ``False`` only
        :data:`QUERIED_VIEWS`.
    :returns: the seconds it took.
    """
    began = time.monotonic()
    for role, db, design in (("reqmgr", reqmgr_db, REQMGR_DESIGN),
                             ("wmstats", wmstats_db, WMSTATS_DESIGN)):
        base = _db_url(couch_url, db)
        for view in design["views"]:
            if all_views or (role, view) in QUERIED_VIEWS:
                _couch(f"{base}/{design['_id']}/_view/{view}?limit=1", timeout=timeout)
    return time.monotonic() - began


def seed_mock(couch_url: str, workflows: int, *, seed: int = 0, start: int = 0,
              reqmgr_db: str = "reqmgr_workload_cache", wmstats_db: str = "wmstats",
              reset: bool = False, agent_info: bool = True, jobs: bool = False) -> Any:
    """Write mock workflows ``start`` .. ``start + workflows - 1`` with ``wmstats
    couch-seed``'s code (the wmstats_couchdb plugin): request documents into
    ``reqmgr_db``; agent_request, (with ``agent_info``) agent_info and (with
    ``jobs``) the failed jobs' jobsummary documents into ``wmstats_db``.

    :returns: its :class:`~wmstats_couchdb.seed.SeedResult`.
    :raises ReqmonError: when some documents were refused.
    """
    from wmstats_couchdb._http import CouchClient, split_server_url
    from wmstats_couchdb.seed import seed_couchdb

    base, auth = split_server_url(couch_url)
    client = CouchClient(base, auth=auth, timeout=600.0)
    try:
        result = seed_couchdb(client, workflows, seed=seed, start=start,
                              requests_db=reqmgr_db, wmstats_db=wmstats_db, reset=reset,
                              agent_info=agent_info, jobs=jobs)
    finally:
        client.close()
    if result.failed:
        raise ReqmonError(f"seeding refused {result.failed} documents: "
                          + "; ".join(result.first_errors))
    return result


# --------------------------------------------------------------------------- proxy

_HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "host"})


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    upstream_host: str
    upstream_port: int
    upstream_path: str
    upstream_auth: str | None
    prefix: str
    io_timeout: float

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-reply is not an error worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return None

    def _forward(self) -> None:
        server = self.server
        path = self.path
        prefix = server.prefix
        if path == prefix or path.startswith((prefix + "/", prefix + "?")):
            path = path[len(prefix):]
        if not path.startswith("/"):
            path = "/" + path
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if server.upstream_auth and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = server.upstream_auth
        upstream = http.client.HTTPConnection(server.upstream_host, server.upstream_port,
                                              timeout=server.io_timeout)
        try:
            try:
                upstream.request(self.command, server.upstream_path + path, body=body,
                                 headers=headers)
                response = upstream.getresponse()
            except OSError as exc:
                message = json.dumps({"error": "bad_gateway", "reason": str(exc)}).encode()
                self.send_response_only(502)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        no_body = (self.command == "HEAD" or response.status in (204, 304)
                   or 100 <= response.status < 200)
        length = response.getheader("Content-Length")
        if no_body:
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            return
        if length is not None:
            self.send_header("Content-Length", length)
            self.end_headers()
            while chunk := response.read(65536):
                self.wfile.write(chunk)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := response.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_COPY = _forward


class CouchPrefixProxy:
    """A CouchDB server also served under a path prefix, by a thread in this process.

    ``http://127.0.0.1:P/couchdb/<rest>`` goes to ``<upstream>/<rest>``; any other
    path goes to the upstream unchanged.  Bodies are streamed both ways; the
    upstream's credentials (``user:password@`` in its URL) are added to every
    request that has none.  On cmsweb CouchDB sits under ``/couchdb/``, and
    reqmon's ``jobdetail`` builds such URLs whatever ``couch_host`` says.

    :param upstream: the CouchDB URL, ``http://[user:password@]host:port[/path]``.
    :param prefix: the path prefix (default ``/couchdb``).
    :param timeout: seconds to wait for the upstream.
    """

    def __init__(self, upstream: str, prefix: str = "/couchdb", *,
                 timeout: float = 600.0) -> None:
        plain, auth = _split_auth(upstream)
        parts = urllib.parse.urlsplit(plain)
        if parts.scheme != "http" or not parts.hostname:
            raise ReqmonError(f"CouchPrefixProxy: only http:// upstreams are supported, "
                              f"not {plain!r}")
        self.upstream = plain
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = parts.path.rstrip("/")
        self._auth = auth
        self.prefix = "/" + prefix.strip("/")
        self.timeout = timeout
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (known once started)."""
        if self._server is None:
            raise ReqmonError("the proxy has not been started")
        return f"http://{_HOST}:{self._server.server_address[1]}"

    @property
    def prefixed_url(self) -> str:
        """``http://127.0.0.1:PORT/couchdb``: CouchDB under the prefix."""
        return self.url + self.prefix

    def start(self) -> CouchPrefixProxy:
        """Listen on a free loopback port; returns ``self``."""
        if self._server is not None:
            return self
        server = _ProxyServer((_HOST, 0), _ProxyHandler)
        server.upstream_host, server.upstream_port = self._host, self._port
        server.upstream_path, server.upstream_auth = self._path, self._auth
        server.prefix, server.io_timeout = self.prefix, self.timeout
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="couch-prefix-proxy",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections being served finish by themselves)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None

    def __enter__(self) -> CouchPrefixProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --------------------------------------------------------------------------- reqmon

_CONFIG_TEMPLATE: Final = '''\
# reqmon {version} configuration written by wmstats.testing.reqmon (see REQMON.md).
from WMCore.Configuration import Configuration
{expiry}
config = Configuration()
main = config.section_("main")
srv = main.section_("server")
srv.thread_pool = {thread_pool!r}
srv.socket_host = {host!r}
main.application = {app!r}
main.port = {port!r}
main.index = "ui"
main.local_base = {host!r}
# no main.authz_defaults: the cms_auth tool stays off, so no front-end headers are needed
app = config.section_(main.application)
app.admin = "nobody@localhost"
app.description = app.title = "reqmon (wmstats reference)"
data = config.section_("views").section_("data")
data.object = "WMCore.WMStats.Service.RestApiHub.RestApiHub"
# request/, isfinished/, teams, jobdetail/ read CouchDB through this URL
data.couch_host = {couch_host!r}
data.couch_reqmgr_db = {reqmgr_db!r}
data.couch_wmstats_db = {wmstats_db!r}
data.couch_config_cache_db = "reqmgr_config_cache"
data.couch_workload_summary_db = "workloadsummary"
data.dbs_url = "https://cmsweb.cern.ch/dbs/prod/global/DBSReader"
tasks = config.section_("extensions").section_("dataCacheTasks")
tasks.object = "WMCore.WMStats.CherryPyThreads.DataCacheUpdate.DataCacheUpdate"
# the data cache fill reads CouchDB through these URLs
tasks.wmstats_url = {fill_wmstats_url!r}
tasks.reqmgrdb_url = {fill_reqmgr_url!r}
tasks.dataCacheUpdateDuration = {duration!r}
tasks.getJobInfo = {job_info!r}
tasks.log_file = {task_log!r}
'''
_EXPIRY_TEMPLATE: Final = '''\
# DataCache counts its data expired {expiry} s after a fill (reqmon hard-codes 300 and
# never calls setDuration: a shorter dataCacheUpdateDuration alone never refills).
from WMCore.WMStats.DataStructs.DataCache import DataCache
DataCache.setDuration({expiry!r})
'''


class ReqmonServer:
    """reqmon 2.4.5.9 (``wmc-httpd``) on 127.0.0.1, reading a CouchDB server.

    :param couch_url: the CouchDB server, ``http://[user:password@]host:port``.
    :param reqmgr_db: the request database (ReqMgr2 request documents).
    :param wmstats_db: the WMStats database (agent_request, agent_info, jobsummary).
    :param python: the reqmon venv's python (default :func:`find_reqmon_python`).
    :param port: the port; default a free one (and another if it gets taken).
    :param cache_duration: seconds between two runs of the data cache thread
        (``dataCacheUpdateDuration``; reqmon's deployments use 300).
    :param cache_expiry: seconds after a fill that the cache counts as expired, so
        that the next run refills it (``DataCache._duration``).  ``None`` keeps
        reqmon's hard-coded 300: then a run every ``cache_duration`` seconds refills
        only once 300 s have passed -- and with ``cache_duration=300``, as deployed,
        only every other run.  ``0`` refills on every run: use it with a short
        ``cache_duration`` to test refills (:meth:`wait_for_refill`).
    :param job_info: attach ``AgentJobInfo`` to the job-info statuses
        (``getJobInfo``; True as deployed).
    :param prepare_views: install and build the views before starting.
    :param all_views: build every view; ``False`` builds only :data:`QUERIED_VIEWS`
        (the others are never read here; saves ~40 % of the build at large sizes).
    :param thread_pool: CherryPy worker threads (30 as deployed).
    :param startup_timeout: seconds to wait for the HTTP port.
    :param fill_timeout: seconds to wait for the first fill after that.
    :param stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    :param keep_state: keep the state folder (config, logs) after :meth:`close`.

    Attributes once started: :attr:`url`, :attr:`data_url`, :attr:`pid`,
    :attr:`state_dir`, :attr:`fill_seconds` (reqmon's own time for the first fill),
    :attr:`views_seconds`, :attr:`start_seconds` (process start to HTTP answering),
    :attr:`ready_seconds` (process start to cache filled).
    """

    def __init__(self, couch_url: str, *, reqmgr_db: str = "reqmgr_workload_cache",
                 wmstats_db: str = "wmstats", python: str | Path | None = None,
                 port: int | None = None, cache_duration: int = 300,
                 cache_expiry: int | None = None, job_info: bool = True,
                 prepare_views: bool = True, all_views: bool = True,
                 thread_pool: int = 30,
                 startup_timeout: float = 120.0, fill_timeout: float = 1800.0,
                 stop_timeout: float = 15.0, keep_state: bool = False) -> None:
        if cache_duration < 1:
            raise ValueError("cache_duration must be >= 1 second")
        if cache_expiry is not None and cache_expiry < 0:
            raise ValueError("cache_expiry must be >= 0")
        self.couch_url = couch_url.rstrip("/")
        self.reqmgr_db = reqmgr_db
        self.wmstats_db = wmstats_db
        self.python = Path(python) if python is not None else find_reqmon_python()
        self.cache_duration = cache_duration
        self.cache_expiry = cache_expiry
        self.job_info = job_info
        self.prepare_views = prepare_views
        self.all_views = all_views
        self.thread_pool = thread_pool
        self.startup_timeout = startup_timeout
        self.fill_timeout = fill_timeout
        self.stop_timeout = stop_timeout
        self.keep_state = keep_state
        self._fixed_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._proxy: CouchPrefixProxy | None = None
        self._state: Path | None = None
        self.views_seconds: float | None = None
        self.start_seconds: float | None = None
        self.ready_seconds: float | None = None
        self._first_fill: Fill | None = None

    # ------------------------------------------------------------------ state

    @property
    def port(self) -> int:
        """The HTTP port (known once started)."""
        if self._port is None:
            raise ReqmonError("reqmon has not been started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/wmstatsserver``: what WMCore's client takes."""
        return f"http://{_HOST}:{self.port}/{_APP}"

    @property
    def data_url(self) -> str:
        """``.../wmstatsserver/data``: the REST API's base."""
        return self.url + "/data"

    @property
    def couch_prefix_url(self) -> str:
        """CouchDB under ``/couchdb`` (reqmon's ``couch_host``), once started."""
        if self._proxy is None:
            raise ReqmonError("reqmon has not been started")
        return self._proxy.prefixed_url

    @property
    def pid(self) -> int | None:
        """PID of the ``wmc-httpd`` process, or ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def state_dir(self) -> Path | None:
        """The folder holding ``wmstats_config.py``, the X509 pair and the logs."""
        return self._state

    @property
    def fill_seconds(self) -> float | None:
        """reqmon's own time for the first cache fill (from its task log)."""
        return self._first_fill.seconds if self._first_fill is not None else None

    @property
    def first_fill(self) -> Fill | None:
        """The first cache fill, once started."""
        return self._first_fill

    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def rss(self, key: str = "VmRSS") -> float | None:
        """Resident memory of the process in MiB (``VmHWM`` for the peak)."""
        return None if self.pid is None else rss_mib(self.pid, key)

    def task_log(self) -> str:
        """The data cache thread's log."""
        return self._read("dataCacheTasks.log")

    def server_log(self) -> str:
        """What ``wmc-httpd`` printed (CherryPy's log, tracebacks)."""
        return self._read("server.out")

    def _read(self, name: str) -> str:
        if self._state is None:
            return ""
        try:
            return (self._state / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of both logs, for error messages."""
        def tail(text: str) -> str:
            return "\n".join(text.splitlines()[-lines:])
        return (f"--- {self._state}/dataCacheTasks.log ---\n{tail(self.task_log())}\n"
                f"--- {self._state}/server.out ---\n{tail(self.server_log())}")

    def fills(self) -> list[Fill]:
        """Every cache fill the task log records, oldest first."""
        log = self.task_log()
        totals = [(m.start(), m.group("s")) for m in _TOTAL_RE.finditer(log)]
        found = []
        for match in _FILL_RE.finditer(log):
            seconds = next((float(s) for at, s in totals if at > match.start()), None)
            found.append(Fill(requests=int(match.group("n")), seconds=seconds,
                              logged_at=match.group("at")))
        return found

    # ------------------------------------------------------------- lifecycle

    def start(self) -> ReqmonServer:
        """Prepare the views, start the proxy and reqmon, wait for the first fill.

        :raises ReqmonError: when reqmon dies, does not answer or does not fill
            its cache in time (the message holds the tail of its logs).
        """
        if self.is_running():
            return self
        if not self.python.is_file():
            raise ReqmonError(f"{self.python} does not exist; run {INSTALL_COMMAND}")
        if self._state is None:
            self._state = Path(tempfile.mkdtemp(prefix="wmstats-reqmon-"))
        if self.prepare_views:
            began = time.monotonic()
            install_views(self.couch_url, self.reqmgr_db, self.wmstats_db)
            build_views(self.couch_url, self.reqmgr_db, self.wmstats_db,
                        all_views=self.all_views)
            self.views_seconds = time.monotonic() - began
        if self._proxy is None:
            self._proxy = CouchPrefixProxy(self.couch_url).start()
        _write_dummy_x509(self._state)
        attempts = 1 if self._fixed_port is not None else _PORT_ATTEMPTS
        for attempt in range(attempts):
            if self._fixed_port is None and (self._port is None or attempt > 0):
                from wmstats.testing.couchdb_server import free_port

                self._port = free_port(_HOST)
            if self._launch():
                return self
        raise ReqmonError(f"reqmon: port {self._port} is in use; gave up after {attempts} "
                          f"attempt(s)\n{self.log_tail()}")

    def _config(self) -> str:
        assert self._state is not None and self._proxy is not None
        plain, auth = _split_auth(self.couch_url)
        # The fill reads CouchDB directly (no proxy in the timings) unless it needs
        # credentials, which WMCore's CouchDB client would log; the proxy adds them.
        fill_base = plain if auth is None else self._proxy.prefixed_url
        expiry = ("" if self.cache_expiry is None
                  else _EXPIRY_TEMPLATE.format(expiry=self.cache_expiry))
        return _CONFIG_TEMPLATE.format(
            version=REQMON_VERSION, expiry=expiry, thread_pool=self.thread_pool, host=_HOST,
            app=_APP, port=self.port, couch_host=self._proxy.prefixed_url,
            reqmgr_db=self.reqmgr_db, wmstats_db=self.wmstats_db,
            fill_wmstats_url=_db_url(fill_base, self.wmstats_db),
            fill_reqmgr_url=_db_url(fill_base, self.reqmgr_db),
            duration=self.cache_duration, job_info=self.job_info,
            task_log=str(self._state / "dataCacheTasks.log"))

    def _environment(self) -> dict[str, str]:
        assert self._state is not None
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env.update(_wmcore_environment(self._state))
        env["DONT_DAEMONIZE_REST"] = "True"
        return env

    def _command(self) -> list[str]:
        assert self._state is not None
        # wmc-httpd is a script of the venv; run it with the venv's python (its
        # shebang names "python", which may not be on PATH).
        httpd = self.python.parent / "wmc-httpd"
        return [str(self.python), str(httpd), "-r", "-d", str(self._state),
                str(self._state / "wmstats_config.py")]

    def _launch(self) -> bool:
        """Start one process; ``True`` once filled, ``False`` if its port was taken."""
        assert self._state is not None
        (self._state / "wmstats_config.py").write_text(self._config())
        for name in ("dataCacheTasks.log", "server.out"):
            with contextlib.suppress(FileNotFoundError):
                (self._state / name).unlink()
        began = time.monotonic()
        with open(self._state / "server.out", "wb") as out:
            try:
                self._proc = subprocess.Popen(
                    self._command(), cwd=self._state, env=self._environment(),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
            except OSError as exc:
                raise ReqmonError(f"cannot run {self.python}: {exc}") from exc
        deadline = began + self.startup_timeout
        answering = False
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                if _PORT_TAKEN_RE.search(self.server_log()):
                    return False
                raise ReqmonError(f"reqmon exited with status {code} before filling its "
                                  f"cache\ncommand: {' '.join(self._command())}\n"
                                  f"{self.log_tail()}")
            if not answering and self._answers():
                answering = True
                self.start_seconds = time.monotonic() - began
                deadline = time.monotonic() + self.fill_timeout
            if answering:
                fills = self.fills()
                if fills:
                    self._first_fill = fills[0]
                    self.ready_seconds = time.monotonic() - began
                    return True
                if _FAIL_RE.search(self.task_log()):
                    self._terminate()
                    raise ReqmonError(f"reqmon failed to fill its cache\n{self.log_tail(80)}")
            if time.monotonic() > deadline:
                self._terminate()
                what = "fill its cache" if answering else f"answer on {self.url}"
                limit = self.fill_timeout if answering else self.startup_timeout
                raise ReqmonError(f"reqmon did not {what} within {limit:.0f} s\n"
                                  f"{self.log_tail()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            reply = self.fetch("info", timeout=5.0)
        except (OSError, http.client.HTTPException):
            return False
        return reply.status == 200

    def wait_for_refill(self, timeout: float | None = None) -> Fill:
        """Wait for the next cache fill after the latest one logged; returns it.

        Refills happen only when the cache has expired (see ``cache_expiry``).
        Documents written since the last :func:`build_views` may be missed by the
        refill (reqmon reads views with ``stale=update_after``): call
        :meth:`refresh_views` first.

        :param timeout: seconds (default two cache runs plus ``fill_timeout``).
        :raises ReqmonError: on timeout or when reqmon dies.
        """
        fills = self.fills()
        last = fills[-1].logged_at if fills else ""
        limit = timeout if timeout is not None else 2 * self.cache_duration + self.fill_timeout
        deadline = time.monotonic() + limit
        while True:
            if not self.is_running():
                raise ReqmonError(f"reqmon is not running\n{self.log_tail()}")
            newer = [fill for fill in self.fills() if fill.logged_at > last]
            if newer:
                return newer[0]
            if time.monotonic() > deadline:
                hint = ("" if self.cache_expiry is not None else
                        " (cache_expiry=None keeps reqmon's 300 s expiry; pass "
                        "cache_expiry=0 to refill on every run)")
                raise ReqmonError(f"no refill within {limit:.0f} s{hint}\n{self.log_tail()}")
            time.sleep(0.1)

    def refresh_views(self) -> float:
        """:func:`build_views` on this server's databases; returns the seconds."""
        return build_views(self.couch_url, self.reqmgr_db, self.wmstats_db,
                           all_views=self.all_views)

    def stop(self) -> None:
        """Stop reqmon (SIGTERM, SIGKILL after ``stop_timeout``) and the proxy."""
        self._terminate()
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """:meth:`stop`, then remove the state folder (unless ``keep_state``)."""
        self.stop()
        if self._state is not None and not self.keep_state:
            shutil.rmtree(self._state, ignore_errors=True)
            self._state = None

    def __enter__(self) -> ReqmonServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReqmonServer(url={self._port and self.url!r}, pid={self.pid})"

    # ------------------------------------------------------------------ HTTP

    def fetch(self, api: str, params: _Params = None, *, gzip: bool = False,
              accept: str = "application/json", timeout: float = 600.0) -> Reply:
        """``GET <data_url>/<api>?<params>``; any status, body as sent.

        :param api: e.g. ``"globallocks"``, ``"request/<name>"``.
        :param params: a mapping (a list value repeats the key) or (key, value) pairs,
            e.g. ``[("mask", "A"), ("mask", "B")]``.
        :param gzip: ask for a gzip body (``Accept-Encoding: gzip``).
        """
        url = f"{self.data_url}/{api.lstrip('/')}"
        query = _query(params)
        if query:
            url += "?" + query
        headers = {"Accept": accept, "Accept-Encoding": "gzip" if gzip else "identity"}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(status=response.status, body=response.read(),
                             headers={k.lower(): v for k, v in response.headers.items()})
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(status=exc.code, body=exc.read(),
                             headers={k.lower(): v for k, v in exc.headers.items()})

    def get(self, api: str, params: _Params = None, *, gzip: bool = False,
            timeout: float = 600.0) -> Any:
        """The parsed JSON reply of ``GET <data_url>/<api>`` (the ``{"result": [...]}``
        envelope).

        :raises ReqmonHTTPError: on an error status (its ``reply`` has the details:
            reqmon's errors come as HTML with ``X-Error-*`` headers).
        """
        reply = self.fetch(api, params, gzip=gzip, timeout=timeout)
        if reply.status >= 400:
            detail = "; ".join(f"{k}: {v}" for k, v in reply.headers.items()
                               if k.startswith("x-error"))
            raise ReqmonHTTPError(f"GET {api} answered {reply.status} ({detail})", reply)
        return reply.json()

    def result(self, api: str, params: _Params = None, **kwargs: Any) -> list[Any]:
        """The ``result`` list of :meth:`get`."""
        value: list[Any] = self.get(api, params, **kwargs)["result"]
        return value


def _query(params: _Params) -> str:
    if params is None:
        return ""
    if isinstance(params, Mapping):
        return urllib.parse.urlencode(
            [(k, v) for k, values in params.items()
             for v in ([values] if isinstance(values, str) else values)])
    return urllib.parse.urlencode(list(params))


# --------------------------------------------------------------------------- WMCore client


def _write_dummy_x509(folder: Path) -> tuple[Path, Path]:
    """A key/cert pair for WMCore's HTTP layer, which only checks that they exist
    (for ``http://`` URLs curl never reads them)."""
    key, cert = folder / "hostkey.pem", folder / "hostcert.pem"
    for path in (key, cert):
        if not path.exists():
            path.write_text("dummy: WMCore's Requests class insists on an X509 pair; "
                            "plain http never reads it\n")
            path.chmod(0o600)
    return key, cert


def _wmcore_environment(folder: Path) -> dict[str, str]:
    """What WMCore's HTTP layer needs: an X509 pair, a cache folder, unbuffered output."""
    key, cert = _write_dummy_x509(folder)
    cache = folder / "wmcore-cache"
    cache.mkdir(exist_ok=True)
    return {"X509_HOST_KEY": str(key), "X509_HOST_CERT": str(cert),
            "WMCORE_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}


def _run_client(request: Mapping[str, Any], python: str | Path | None,
                timeout: float, script: Path = _CLIENT_SCRIPT) -> dict[str, Any]:
    exe = Path(python) if python is not None else find_reqmon_python()
    with tempfile.TemporaryDirectory(prefix="wmstats-wmcore-client-") as folder:
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env.update(_wmcore_environment(Path(folder)))
        try:
            done = subprocess.run([str(exe), str(script)], input=json.dumps(request),
                                  capture_output=True, text=True, env=env, cwd=folder,
                                  timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReqmonError(f"WMCore client ({exe}) failed: {exc}") from exc
    if done.returncode != 0:
        raise ReqmonError(f"WMCore client ({exe}) exited with status {done.returncode}:\n"
                          f"{done.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def wmcore_client_calls(url: str, calls: Iterable[tuple[str, Sequence[Any], Mapping[str, Any]]],
                        *, python: str | Path | None = None,
                        timeout: float = 600.0) -> list[ClientResult]:
    """Call methods of WMCore's ``WMStatsServer(url)`` in one reqmon-venv process.

    :param url: the server's base, e.g. :attr:`ReqmonServer.url`
        (``http://host:port/wmstatsserver``; the client appends ``/data``).
    :param calls: ``(method, args, kwargs)`` each; ``method`` is a public method of
        ``WMCore.Services.WMStatsServer.WMStatsServer.WMStatsServer`` or
        ``"_getResult"`` (args ``["teams"]``, ``["request/<name>"]``...).
    :returns: one :class:`ClientResult` per call, in order.
    :raises ReqmonError: when the helper process itself fails.
    """
    request = {"url": url, "calls": [{"method": m, "args": list(a), "kwargs": dict(k)}
                                     for m, a, k in calls]}
    answer = _run_client(request, python, timeout)
    results = []
    for item in answer["results"]:
        if item["ok"]:
            results.append(ClientResult(value=item["value"]))
        else:
            error = item["error"]
            results.append(ClientResult(error=WMCoreClientError(
                error["type"], error["message"], status=error.get("status"),
                reason=error.get("reason"), body=error.get("body"),
                headers=error.get("headers"))))
    return results


def wmcore_client_call(url: str, method: str, *args: Any, python: str | Path | None = None,
                       timeout: float = 600.0, **kwargs: Any) -> Any:
    """``WMStatsServer(url).<method>(*args, **kwargs)`` run by WMCore's own code.

    Example: ``wmcore_client_call(url, "getFilteredActiveData",
    {"RequestStatus": "acquired"}, ["SiteWhitelist"])``.

    :raises WMCoreClientError: when WMCore's client raises.
    """
    (result,) = wmcore_client_calls(url, [(method, args, kwargs)], python=python,
                                    timeout=timeout)
    return result.unwrap()


@functools.lru_cache(maxsize=4)
def _constants(python: str) -> Mapping[str, Any]:
    answer = _run_client({"constants": True}, python, 120.0)
    constants: Mapping[str, Any] = answer["constants"]
    if answer.get("wmcore_version") != REQMON_VERSION:
        raise ReqmonError(f"{python} runs WMCore {answer.get('wmcore_version')}, not "
                          f"{REQMON_VERSION}; run {INSTALL_COMMAND}")
    return constants


def wmcore_constants(python: str | Path | None = None) -> Mapping[str, Any]:
    """The request status lists of ``WMCore.ReqMgr.DataStructs.RequestStatus`` as the
    installed reqmon has them: ``ACTIVE_STATUS``, ``ACTIVE_STATUS_FILTER``,
    ``WMSTATS_JOB_INFO``, ``WMSTATS_NO_JOB_INFO``, ``REQUEST_STATE_LIST``.

    reqmon's cache holds the requests in ``WMSTATS_JOB_INFO + WMSTATS_NO_JOB_INFO``
    (``AgentJobInfo`` only for the first); ``globallocks`` and ``protectedlfns`` take
    those in ``ACTIVE_STATUS_FILTER["RequestStatus"]``.

    :raises ReqmonError: when the venv is missing or holds another version.
    """
    exe = Path(python) if python is not None else find_reqmon_python()
    return _constants(str(exe))


def wmcore_request_rules(documents: Mapping[str, Mapping[str, Any]], keys: Sequence[str],
                         conditions: Sequence[Mapping[str, Any]] = (), *,
                         python: str | Path | None = None,
                         timeout: float = 600.0) -> dict[str, Any]:
    """reqmon's own request rules applied to ``documents``, in the reqmon venv
    (``wmstats/testing/_wmcore_request_info.py``): per document, ``RequestInfo.get``
    of each key, ``andFilterCheck`` of each condition, ``protectedLFNs``, and the
    ``globallocks`` / ``protectedlfns`` values (``DataCache.filterData``).

    :param documents: request name -> request document (with ``AgentJobInfo`` where
        reqmon's cache would attach it).
    :param conditions: ``{key: value or [values]}`` each, as ``filtered_requests``
        passes them.
    :returns: ``{"get", "matches", "protected_lfns", "global_locks", "lfn_bases",
        "errors"}``, each by request name.
    """
    return _run_client({"documents": documents, "keys": list(keys),
                        "conditions": [dict(c) for c in conditions]}, python, timeout,
                       _RULES_SCRIPT)
