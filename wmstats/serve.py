"""The server commands: ``wmstats cache-server`` and ``wmstats serve``.

``cache-server`` serves the cache API (:class:`wmstats.web.CacheApp`) at the root
of one port, and the WMCore-compatible API (:class:`wmstats.web.WMCoreApp`, today's
``/wmstatsserver/data/*``) under ``--wmcore-prefix`` of the same port; ``serve``
runs everything in one process: the cache server (port 8250, with the
WMCore-compatible API) and, when :mod:`wmstats.web.ui` is installed, the UI server
(port 8251).
Both stop cleanly on SIGINT (Ctrl-C) and SIGTERM.  ``--mock N`` fills the store
with N generated workflows first, so nothing else is needed to try it out::

    wmstats serve --mock 2000            # dated from now: the demo looks alive
    wmstats cache-server --store sqlite:////var/lib/wmstats.db --port 8250

The functions here are what :mod:`wmstats.cli` calls; ``python -m wmstats.serve
cache-server ...`` runs them without the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, Final, TextIO

import cheroot.wsgi

from wmstats._argtypes import count as _count
from wmstats._procfs import limit_arenas
from wmstats.alerts import AlertRules
from wmstats.redact import redact_text, redact_url
from wmstats.schema import WorkflowBundle
from wmstats.source import SourceError
from wmstats.store import Store, StoreError, open_store
from wmstats.web import CacheApp, WebServer, WMCoreApp, build_application
from wmstats.web import wmcore as wmcore_web
from wmstats.web._auth import AUTH_MODES, DEFAULT_OPEN_PATHS

__all__ = [
    "add_cache_server_arguments",
    "run_cache_server",
    "add_serve_arguments",
    "run_serve",
    "add_ui_server_arguments",
    "run_ui_server",
    "fill_mock",
    "MOCK_SIZES",
    "serve_until_stopped",
    "main",
]

CACHE_PORT = 8250
UI_PORT = 8251
#: What ``--mock-size`` takes (see :func:`fill_mock`).
MOCK_SIZES: Final = ("default", "production")
#: The interpreter's thread switch interval while the servers run (seconds; Python's
#: default is 0.005).  A request doing CPU work (a costly filter at 100,000
#: workflows) holds the GIL for a whole interval at a time, and a cheap request
#: (``/healthz``) waits for many of them: measured with ``wmstats bench hostile
#: --workflows 100000``, the health check's worst case fell from 175 ms to 54 ms.
SWITCH_INTERVAL: Final = 0.001



def _ratio(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"not a ratio between 0 and 1: {value}")
    return number


def _link_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reqmgr-url", default="", metavar="URL",
                        help="ReqMgr2's base URL (e.g. https://cmsweb.cern.ch/reqmgr2): the "
                             "page links each workflow to its request page; none when unset")
    parser.add_argument("--job-dump-url", default="", metavar="URL",
                        help="URL of an agent's job dump, {agent}, {workflow} and {job} "
                             "filled in (without them: URL/<agent>); none when unset")


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds >= 0: {value}")
    return number


def _port(value: str) -> int:
    number = _count(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {value}")
    return number


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="memory://", metavar="URL",
                        help="store URL: memory:// (default), sqlite:////path/file.db, "
                             "couchdb://host:5984/db")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--mock", type=_count, default=0, metavar="N",
                        help="first fill the store with N generated workflows (and the mock "
                             "agents)")
    parser.add_argument("--source", metavar="URL",
                        help="keep the store filled from WMCore's CouchDB: "
                             "couchdb://[user:pass@]host:5984[?requests_db=...&wmstats_db=...] "
                             "(couchdbs:// for https; see docs/couchdb-source.md); the server "
                             "starts at once and answers 503 until the first load is done")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the mock generator (default 0)")
    parser.add_argument("--mock-now", type=int, default=None, metavar="EPOCH",
                        help="the mock's reference time (default: now, so that the agents' "
                             "heartbeats are current and the alerts live)")
    rules = AlertRules()
    parser.add_argument("--alert-assigned-seconds", type=_count,
                        default=rules.assigned_seconds, metavar="SECONDS",
                        help="alert on requests 'assigned' for longer than this (default "
                             f"{rules.assigned_seconds}; 0: never)")
    parser.add_argument("--alert-status-stall-seconds", type=_count,
                        default=rules.status_stall_seconds, metavar="SECONDS",
                        help="alert on running requests without running jobs for longer "
                             f"than this (default {rules.status_stall_seconds}: never)")
    parser.add_argument("--alert-site-error-ratio", type=_ratio,
                        default=rules.site_error_ratio, metavar="RATIO",
                        help="alert when failed / finished jobs is above this (default "
                             f"{rules.site_error_ratio})")
    parser.add_argument("--alert-agent-stale-seconds", type=_count,
                        default=rules.agent_stale_seconds, metavar="SECONDS",
                        help="an agent whose heartbeat is older is down (default "
                             f"{rules.agent_stale_seconds})")
    parser.add_argument("--mock-size", choices=MOCK_SIZES, default="default",
                        help="size of the mock workflows: the generator's defaults, or "
                             "production-sized ones (up to 6 tasks, 12 sites per task and "
                             "3 agents, each running workflow filled to them)")
    parser.add_argument("--threads", type=_count, default=10,
                        help="HTTP worker threads per server (default 10)")
    parser.add_argument("--max-limit", type=_count, default=1000, metavar="N",
                        help="largest page for application/json (default 1000)")
    parser.add_argument("--query-budget", type=_seconds, default=1.0, metavar="SECONDS",
                        help="stop the work of a request whose filters take longer than "
                             "this and answer 422 (default 1; 0: no budget)")
    _log_arguments(parser)
    wmcore = parser.add_mutually_exclusive_group()
    wmcore.add_argument("--wmcore-prefix", metavar="PATH",
                        help="where to serve the WMCore-compatible API, today's "
                             "/wmstatsserver/data/* (default "
                             f"{wmcore_web.DEFAULT_PREFIX}; docs/wmcore-compat.md)")
    wmcore.add_argument("--no-wmcore", action="store_true",
                        help="do not serve the WMCore-compatible API")
    parser.add_argument("--wmcore-stale-after", type=_count, default=1800, metavar="SECONDS",
                        help="the WMCore-compatible lists (globallocks, protectedlfns...) "
                             "answer 503 once the source has had no answer from CouchDB for "
                             "this long (default 1800)")
    _auth_arguments(parser)


def _auth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auth", choices=AUTH_MODES, default="none",
                        help="cms-headers: require the CMSWEB front-end's signed cms-auth* "
                             "headers (403 without); default none")
    parser.add_argument("--hmac-key", metavar="FILE",
                        help="the HMAC key shared with the front-ends (for --auth cms-headers)")
    parser.add_argument("--auth-open", default=",".join(DEFAULT_OPEN_PATHS), metavar="PATHS",
                        help="first path segments open without authentication "
                             f"(comma-separated; default {','.join(DEFAULT_OPEN_PATHS)})")


def _auth_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"auth": args.auth, "hmac_key_file": args.hmac_key, "auth_open": args.auth_open}


def add_cache_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``wmstats cache-server``."""
    _common_arguments(parser)
    parser.add_argument("--port", type=_port, default=CACHE_PORT,
                        help=f"port (default {CACHE_PORT}; 0 picks a free one)")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``wmstats serve``."""
    _common_arguments(parser)
    _link_arguments(parser)
    parser.add_argument("--port", "--cache-port", dest="port", type=_port,
                        default=CACHE_PORT,
                        help=f"port of the cache server (default {CACHE_PORT})")
    parser.add_argument("--ui-port", type=_port, default=UI_PORT,
                        help=f"port of the UI server (default {UI_PORT})")


def fill_mock(store: Store, n: int, seed: int = 0, out: TextIO | None = None,
              now: int | None = None, size: str = "default") -> str:
    """Replace the store's snapshot with ``n`` mock workflows and the mock agents, and
    its job records with theirs.

    :param out: where to report progress (every 10,000 workflows), if anywhere.
    :param now: the mock's reference time (default: now, so that the demo looks
        alive: current heartbeats, some agents late, alerts firing).
    :param size: one of :data:`MOCK_SIZES`: ``default`` (the generator's defaults) or
        ``production`` (:meth:`~wmstats.mock.MockGenerator.production_sized`).
    :returns: the new snapshot id.
    """
    from wmstats.mock import MockGenerator

    if size not in MOCK_SIZES:
        raise ValueError(f"unknown mock size {size!r} (known: {', '.join(MOCK_SIZES)})")
    when = int(time.time()) if now is None else now
    gen = (MockGenerator.production_sized(seed, now=when) if size == "production"
           else MockGenerator(seed=seed, now=when))
    start = time.monotonic()

    def progress() -> Iterator[WorkflowBundle]:
        for i, bundle in enumerate(gen.bundles(n), 1):
            if out is not None and i % 10_000 == 0:
                out.write(f"  {i:,}/{n:,} mock workflows ({time.monotonic() - start:.0f} s)\n")
                out.flush()
            yield bundle

    sid = store.replace(progress(), gen.agents())
    store.replace_jobs(gen.iter_jobs(n))
    return sid


def serve_until_stopped(servers: Sequence[WebServer],
                        stop: threading.Event | None = None) -> None:
    """Run started servers until SIGINT/SIGTERM (or ``stop`` is set), then stop them.

    Signal handlers and the thread switch interval (:data:`SWITCH_INTERVAL`) are
    set only when called from the main thread (the process's own run); they are
    restored afterwards.
    """
    event = stop if stop is not None else threading.Event()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    interval = sys.getswitchinterval()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        while not event.wait(0.25):
            pass
    finally:
        for server in servers:
            server.stop()
        for signum, old in previous.items():
            signal.signal(signum, old)
        sys.setswitchinterval(interval)


#: ``--log-level`` choices, for the ``wmstats.*`` loggers (the data source's loads and
#: problems, the sqlite store's warming...).
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
#: How the ``wmstats.*`` records are written to stderr (CherryPy's date format).
LOG_FORMAT: Final = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"


def _log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no access log (errors are still logged to stderr)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="INFO",
                        help="least severe record of wmstats' own loggers written to "
                             "stderr: the source's loads and the problems it finds, the "
                             "store's warming (default INFO)")


@contextlib.contextmanager
def _logging(quiet: bool, level: str = "INFO") -> Iterator[None]:
    """While the servers run (restored afterwards): with ``quiet``, no access log; the
    ``wmstats.*`` loggers' records from ``level`` up written to stderr, unless the
    process has configured logging itself (the root logger has a handler)."""
    # Each app logs its access lines at INFO on its own child logger, which
    # propagates to CherryPy's global access logger and its screen handler: take
    # that handler off and stop the propagation there.
    access = logging.getLogger("cherrypy.access")
    handlers, propagate = list(access.handlers), access.propagate
    if quiet:
        for handler in handlers:
            access.removeHandler(handler)
        access.propagate = False
    ours = logging.getLogger("wmstats")
    saved_level = ours.level
    ours.setLevel(level)
    added: logging.Handler | None = None
    if not logging.root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter(LOG_FORMAT, "%d/%b/%Y:%H:%M:%S"))
        ours.addHandler(added)
    try:
        yield
    finally:
        if added is not None:
            ours.removeHandler(added)
        ours.setLevel(saved_level)
        if quiet:
            for handler in handlers:
                access.addHandler(handler)
            access.propagate = propagate


def _open(args: argparse.Namespace) -> tuple[Store, CacheApp] | None:
    source_url = getattr(args, "source", None)
    if source_url and args.mock:
        print("wmstats: --source and --mock exclude each other (the source fills the store)",
              file=sys.stderr)
        return None
    urls = [args.store, source_url or ""]
    try:
        store = open_store(args.store)
    except (StoreError, ValueError) as exc:
        print(f"wmstats: cannot open store {redact_url(args.store)}: "
              f"{redact_text(str(exc), urls)}", file=sys.stderr)
        return None
    try:
        if args.mock:
            print(f"filling the {store.backend} store with {args.mock:,} mock workflows...",
                  file=sys.stderr, flush=True)
            fill_mock(store, args.mock, args.seed, sys.stderr, getattr(args, "mock_now", None),
                      args.mock_size)
        # A store file not read since the machine started: its pages come in now,
        # in the background, not one by one during the first requests.
        store.warm()
        prefix = "" if getattr(args, "no_wmcore", False) else getattr(args, "wmcore_prefix", None)
        options = {} if prefix is None else {"wmcore_prefix": prefix}
        app = CacheApp(store=store, max_limit=args.max_limit,
                       default_limit=min(100, args.max_limit), source=source_url or None,
                       alert_assigned_seconds=args.alert_assigned_seconds,
                       alert_status_stall_seconds=args.alert_status_stall_seconds,
                       alert_site_error_ratio=args.alert_site_error_ratio,
                       alert_agent_stale_seconds=args.alert_agent_stale_seconds,
                       query_budget=args.query_budget, **_auth_options(args),
                       **options)
    except SourceError as exc:
        store.close()
        print(f"wmstats: cannot use source {redact_url(source_url or '')}: "
              f"{redact_text(str(exc), urls)}", file=sys.stderr)
        return None
    except ValueError as exc:  # the authentication and wmcore_prefix options
        store.close()
        print(f"wmstats: {redact_text(str(exc), urls)}", file=sys.stderr)
        return None
    except BaseException:
        store.close()
        raise
    return store, app


def _application(app: CacheApp, stale_after: float = 1800.0) -> Any:
    """The WSGI application of a cache server: the cache app at the root and, unless
    its ``wmcore_prefix`` is empty, the WMCore-compatible API there (same store and
    source)."""
    cache = build_application(app)
    prefix = app.config.wmcore_prefix
    if not prefix:
        return cache
    wmcore = wmcore_web.build_application(WMCoreApp(cache=app, stale_after=stale_after))
    return cheroot.wsgi.PathInfoDispatcher(  # type: ignore[no-untyped-call]
        {"/": cache, prefix: wmcore})


def _announce(url: str, app: CacheApp) -> None:
    """The start-up lines of a cache server (the first one is what scripts look for)."""
    print(f"wmstats cache server: {url}/ ({_describe(app)})", flush=True)
    if app.config.wmcore_prefix:
        print(f"wmstats WMCore-compatible API: {url}{app.config.wmcore_prefix}/", flush=True)


def _stale_after(args: argparse.Namespace) -> float:
    return float(getattr(args, "wmcore_stale_after", 1800))


def _describe(app: CacheApp) -> str:
    store = app.store
    try:
        count = f"{store.count():,} workflows"
    except Exception as exc:  # report, but serve anyway: /healthz tells the rest
        count = f"not answering: {type(exc).__name__}"
    text = f"{store.backend or type(store).__name__} store, {count}"
    if app.source is not None:
        text += f"; source {app.source!r}, " + ("ready" if app.source.ready else "loading")
    return text


def run_cache_server(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``wmstats cache-server``: serve the cache API until SIGINT/SIGTERM.

    :param stop: set it to stop the server (for embedding and tests).
    :returns: the exit status (0 after a clean stop).
    """
    if stop is None:  # the process's own server: before its threads start
        limit_arenas()
    with _logging(args.quiet, args.log_level):
        return _run_cache_server(args, stop)


def _run_cache_server(args: argparse.Namespace, stop: threading.Event | None) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    store, app = opened
    try:
        server = WebServer(_application(app, _stale_after(args)), args.host, args.port,
                           threads=args.threads)
        try:
            server.start()
        except OSError as exc:
            print(f"wmstats: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        _announce(server.url, app)
        serve_until_stopped([server], stop)
        print("wmstats cache server: stopped", flush=True)
        return 0
    finally:
        app.close()
        store.close()


def _ui_application(cache_url: str, **options: Any) -> Any | None:
    """The UI app (``wmstats.web.ui.build_application(cache_url=...)``), if installed."""
    try:
        module = importlib.import_module("wmstats.web.ui")
    except ImportError:
        return None
    build = getattr(module, "build_application", None)
    return None if build is None else build(cache_url=cache_url, **options)


def run_serve(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``wmstats serve``: the cache server and the UI server in one process.

    :param stop: set it to stop the servers (for embedding and tests).
    :returns: the exit status (0 after a clean stop).
    """
    if stop is None:  # the process's own servers: before their threads start
        limit_arenas()
    with _logging(args.quiet, args.log_level):
        return _run_serve(args, stop)


def _run_serve(args: argparse.Namespace, stop: threading.Event | None) -> int:
    opened = _open(args)
    if opened is None:
        return 2
    store, app = opened
    servers: list[WebServer] = []
    try:
        try:
            cache = WebServer(_application(app, _stale_after(args)), args.host, args.port,
                              threads=args.threads).start()
            servers.append(cache)
            _announce(cache.url, app)
            ui_app = _ui_application(cache.url, reqmgr_url=args.reqmgr_url,
                                     job_dump_url=args.job_dump_url, **_auth_options(args))
            if ui_app is None:
                print("wmstats UI server: not available (wmstats.web.ui is not installed)",
                      flush=True)
            else:
                ui = WebServer(ui_app, args.host, args.ui_port, threads=args.threads).start()
                servers.append(ui)
                print(f"wmstats UI server: {ui.url}/", flush=True)
        except OSError as exc:
            print(f"wmstats: cannot listen on {args.host}: {exc}", file=sys.stderr)
            for server in servers:
                server.stop()
            return 1
        serve_until_stopped(servers, stop)
        print("wmstats: stopped", flush=True)
        return 0
    finally:
        app.close()
        store.close()


def add_ui_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``wmstats ui-server``."""
    parser.add_argument("--cache", default=f"http://127.0.0.1:{CACHE_PORT}", metavar="URL",
                        help=f"URL of the cache server, with its mount prefix (default "
                             f"http://127.0.0.1:{CACHE_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=UI_PORT,
                        help=f"port (default {UI_PORT}; 0 picks a free one)")
    parser.add_argument("--threads", type=_count, default=10,
                        help="HTTP worker threads (default 10)")
    parser.add_argument("--stale-after", type=_count, default=3600, metavar="SECONDS",
                        help="flag the data as stale on the page when it has not changed "
                             "for this long (default 3600; 0: never)")
    _log_arguments(parser)
    _link_arguments(parser)
    _auth_arguments(parser)


def run_ui_server(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``wmstats ui-server``: serve the page for a running cache server until stopped.

    :param stop: set it to stop the server (for embedding and tests).
    :returns: the exit status (0 after a clean stop).
    """
    from wmstats.web.ui import UIApp
    from wmstats.web.ui import build_application as build_ui

    try:
        app = UIApp(cache_url=args.cache, stale_after=args.stale_after,
                    reqmgr_url=args.reqmgr_url, job_dump_url=args.job_dump_url,
                    **_auth_options(args))
    except ValueError as exc:
        print(f"wmstats: {exc}", file=sys.stderr)
        return 2
    with _logging(args.quiet, args.log_level):
        try:
            server = WebServer(build_ui(app), args.host, args.port, threads=args.threads)
            try:
                server.start()
            except OSError as exc:
                print(f"wmstats: cannot listen on {args.host}:{args.port}: {exc}",
                      file=sys.stderr)
                return 1
            print(f"wmstats UI server: {server.url}/ (cache server {args.cache})", flush=True)
            serve_until_stopped([server], stop)
            print("wmstats UI server: stopped", flush=True)
            return 0
        finally:
            app.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wmstats.serve {cache-server,ui-server,serve} [options]``."""
    parser = argparse.ArgumentParser(prog="python -m wmstats.serve")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cache_server_arguments(sub.add_parser("cache-server", help="the cache API server"))
    add_serve_arguments(sub.add_parser("serve", help="cache and UI servers"))
    add_ui_server_arguments(sub.add_parser("ui-server", help="the UI server (the page)"))
    args = parser.parse_args(argv)
    if args.command == "cache-server":
        return run_cache_server(args)
    if args.command == "ui-server":
        return run_ui_server(args)
    return run_serve(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
