"""The HTTP server under slow and malformed clients: real sockets on loopback.

Issue 15: 12 connections sending one header line every 5 s, or 50 idle half-sent
requests, held all ten worker threads of cheroot, so every normal request waited
for a minute.  :class:`wmstats.web.WebServer` hands a worker only complete
request heads (:mod:`wmstats.web._guard`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from wmstats.mock import MockGenerator
from wmstats.store import open_store
from wmstats.web import CacheApp, WebServer, build_application
from wmstats.web.ui import build_application as build_ui

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")

HALF_SENT = 50
DRIPPING = 12
#: A generous bound for "answered at once": the issue asks for 1 s; on a shared
#: CI machine a test asserts what would fail without the guard (tens of seconds).
PROMPT = 5.0


@pytest.fixture(scope="module")
def app() -> Iterator[CacheApp]:
    with open_store("memory://") as store:
        gen = MockGenerator(seed=5)
        store.replace(gen.bundles(40), gen.agents())
        yield CacheApp(store=store)


@pytest.fixture
def server(app: CacheApp) -> Iterator[WebServer]:
    with WebServer(build_application(app), threads=10) as server:
        yield server


def _connect(server: WebServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _half_sent(server: WebServer) -> socket.socket:
    sock = _connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return sock


def _read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    out = b""
    with contextlib.suppress(socket.timeout, ConnectionResetError):
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


@contextlib.contextmanager
def _dripping(server: WebServer, count: int, every: float) -> Iterator[list[socket.socket]]:
    """``count`` connections each sending one more header line every ``every`` s."""
    socks = [_half_sent(server) for _ in range(count)]
    stop = threading.Event()

    def drip() -> None:
        n = 0
        while not stop.wait(every):
            n += 1
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.sendall(f"X-Drip-{n}: {n}\r\n".encode("ascii"))

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield socks
    finally:
        stop.set()
        thread.join(timeout=10)
        for sock in socks:
            sock.close()


def _timed_get(url: str) -> tuple[int, float]:
    start = time.perf_counter()
    response = requests.get(url, timeout=30)
    return response.status_code, time.perf_counter() - start


@pytest.mark.parametrize("build", ["cache", "ui"])
def test_slow_clients_do_not_hold_the_workers(app: CacheApp, build: str) -> None:
    """50 half-sent requests and 12 dripping connections open: a normal request
    is answered at once, on both servers."""
    with contextlib.ExitStack() as stack:
        cache = stack.enter_context(WebServer(build_application(app)))
        if build == "ui":
            server = stack.enter_context(WebServer(build_ui(cache_url=cache.url, warm=False)))
            path = "/api/status"
        else:
            server, path = cache, "/healthz"
        idle = [_half_sent(server) for _ in range(HALF_SENT)]
        stack.callback(lambda: [s.close() for s in idle])
        stack.enter_context(_dripping(server, DRIPPING, 0.2))
        time.sleep(0.5)
        timings = [_timed_get(server.url + path) for _ in range(3)]
    print(f"\n{build}: normal request with {HALF_SENT} half-sent and {DRIPPING} dripping "
          f"connections: {', '.join(f'{t * 1000:.0f} ms' for _, t in timings)}")
    assert all(status == 200 for status, _ in timings)
    assert max(t for _, t in timings) < PROMPT


def test_a_dripping_head_is_cut_off_after_the_timeout(app: CacheApp) -> None:
    """A head that keeps dripping is closed ``timeout`` seconds after it started,
    however often a line arrives."""
    with WebServer(build_application(app), timeout=1.0) as server, \
            _dripping(server, 1, 0.1) as (sock,):
        start = time.monotonic()
        data = _read_all(sock, timeout=15)
        took = time.monotonic() - start
    assert b"200 OK" not in data
    assert 0.5 < took < 10


def test_heads_in_pieces_pipelined_and_kept_alive(server: WebServer) -> None:
    """Heads that arrive in pieces, two pipelined requests, and a kept-alive
    session are all answered normally."""
    sock = _connect(server)
    for piece in (b"GET /healthz HT", b"TP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
        sock.sendall(piece)
        time.sleep(0.05)
    sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n")
    data = _read_all(sock)
    sock.close()
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b'"ready"') < data.index(b'"name"')
    with requests.Session() as http:
        for _ in range(5):
            assert http.get(server.url + "/healthz", timeout=10).status_code == 200


def test_bodies_are_read_before_a_worker_is_given_the_request(server: WebServer) -> None:
    """A declared body is awaited like the head (the API takes none: 405); a body
    above 64 KiB is refused at once."""
    sock = _connect(server)
    sock.sendall(b"POST /fetch HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                 b"Connection: close\r\n\r\n01234")
    time.sleep(0.3)
    with _dripping(server, DRIPPING, 0.2):
        status, took = _timed_get(server.url + "/healthz")
    assert status == 200 and took < PROMPT
    sock.sendall(b"56789")
    data = _read_all(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 405 ") and b'"method_not_allowed"' in data
    sock = _connect(server)
    sock.sendall(b"POST /fetch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    data = _read_all(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 413 ")


def test_connections_beyond_max_waiting_are_closed(app: CacheApp) -> None:
    with WebServer(build_application(app), max_waiting=8) as server:
        socks = [_half_sent(server) for _ in range(20)]
        time.sleep(0.5)
        closed = 0
        for sock in socks:
            sock.settimeout(0.2)
            with contextlib.suppress(socket.timeout):
                if sock.recv(1) == b"":
                    closed += 1
            sock.close()
        assert closed >= 20 - 8
        status, took = _timed_get(server.url + "/healthz")
    assert status == 200 and took < PROMPT


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\n\n",
    b"\xff\xfe GET / HTTP/1.1\r\n\r\n",
    b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
]
#: Odd but answerable: cheroot serves them (no error, and no traceback either).
ODD = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n Folded: y\r\nConnection: close\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=lambda r: repr(r[:30]))
def test_what_cheroot_answers_itself_carries_no_traceback(server: WebServer,
                                                          raw: bytes) -> None:
    sock = _connect(server)
    with contextlib.suppress(OSError):
        sock.sendall(raw)
    data = _read_all(sock)
    sock.close()
    assert b"Traceback" not in data and b'File "' not in data
    if data:
        status = int(data.split(b" ", 2)[1])
        assert 400 <= status < 500 or status == 505, data[:200]
    status, _ = _timed_get(server.url + "/healthz")
    assert status == 200


@pytest.mark.parametrize("raw", ODD, ids=lambda r: repr(r[:30]))
def test_odd_requests_are_served(server: WebServer, raw: bytes) -> None:
    sock = _connect(server)
    sock.sendall(raw)
    data = _read_all(sock, timeout=3)
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Traceback" not in data
