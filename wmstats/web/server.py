"""A WSGI app on a cheroot HTTP server in a background thread: :class:`WebServer`.

CherryPy's own ``cherrypy.server`` serves the global ``cherrypy.tree`` from the
global engine: one tree per process.  :class:`WebServer` serves one app on one
port with no global state, so a process can run the cache and UI servers on two
ports, and a test suite can start and stop as many servers as it likes.

It runs cheroot guarded against slow clients (:mod:`wmstats.web._guard`): a
worker thread gets a connection only once its request head has arrived, so
idle, half-sent and dripping connections never hold the workers, and a head
must arrive within ``timeout`` seconds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from wmstats.web._guard import MAX_WAITING, GuardedServer

__all__ = ["WebServer"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WebServer:
    """Serve a WSGI application (such as a ``cherrypy.Application``) on one port.

    ::

        with WebServer(build_application(CacheApp(store=store)), port=0) as server:
            requests.get(server.url + "/healthz")

    :param app: the WSGI application.
    :param host: address to bind (loopback by default).
    :param port: port to bind; 0 picks a free one (see :attr:`port` once started).
    :param threads: worker threads (they only ever hold complete requests).
    :param name: server name in the ``Server`` header.
    :param timeout: seconds a request head may take to arrive, a kept-alive
        connection may stay idle, and one socket read or write may wait.
    :param max_waiting: connections that may wait (for a request head, or idle
        between requests) at once; more are closed.
    """

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0,
                 threads: int = 10, name: str | None = None, timeout: float = 10.0,
                 max_waiting: int = MAX_WAITING) -> None:
        self.host = host
        self._server = GuardedServer(
            (host, port), app, numthreads=threads, server_name=name,
            request_queue_size=128, timeout=timeout, shutdown_timeout=5,
            max_waiting=max_waiting)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        """``http://host:port`` (after :meth:`start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> WebServer:
        """Bind, start serving in a thread, and wait until ready.

        :raises OSError: when the address cannot be bound.
        :raises TimeoutError: when the server is not ready in time.
        """
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._check_free()
        self._server.prepare()
        self._thread = threading.Thread(target=self._server.serve,
                                        name=f"wmstats-http-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.ready:
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"HTTP server on {self.url} not ready after {timeout} s")
            time.sleep(0.005)
        return self

    def _check_free(self) -> None:
        """Raise the bind error now if the port is taken.

        cheroot leaks its socket when ``bind`` fails (a ResourceWarning later);
        binding a probe first reports the same error without the leak.
        """
        host, port = self._server.bind_addr
        if not port:
            return
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))

    def stop(self) -> None:
        """Stop serving and wait for the worker threads (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.stop()
        thread.join(timeout=30)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
