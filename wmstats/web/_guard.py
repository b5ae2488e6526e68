"""cheroot's WSGI server, guarded against slow clients: :class:`GuardedServer`.

cheroot hands every accepted connection to a worker thread at once, and the
worker blocks reading the request line and headers (each read may wait the whole
socket timeout).  Ten clients that open a connection and send nothing, or send
one header line every few seconds, hold all ten workers: every other request
waits (issue 15: 12 dripping connections stopped the server for a minute, 50
half-sent requests delayed ``/healthz`` by 50 s).

:class:`GuardedServer` hands a connection to a worker only once its request
head is complete (up to the blank line, and a small declared body too).  Until
then the connection waits in cheroot's own selector, and whatever arrived is
read without blocking by the selector thread into a buffer the worker reads
first.  So:

* slow and idle clients cost a file descriptor each, never a worker thread;
* a request head must be complete within ``timeout`` seconds of the connection
  (or of the previous response on a kept-alive connection), however slowly it
  drips: cheroot's own expiry closes it then;
* at most ``max_waiting`` connections wait at once (for their head, or idle
  between two requests); beyond, a connection that would wait is closed.

Everything else is cheroot's: the worker parses and answers the request as
usual (its answers to malformed requests carry no traceback), except a head over
``max_request_header_size`` (64 KiB), which the guard refuses itself with a JSON
414 (request line) or 431 (headers), like every other error of the apps.  Plain TCP only:
the guard stands aside when the server has an SSL adapter (TLS is the
front-end's job, see ``docs/deployment.md``).
"""

from __future__ import annotations

import _pyio  # type: ignore[import-not-found]  # cheroot reads through it
import re
import selectors
import socket
import time
from typing import Any, Final

import cheroot.makefile
import cheroot.server
import cheroot.wsgi

from wmstats.web._errors import error_body

__all__ = ["GuardedServer", "MAX_WAITING", "MAX_BODY"]

#: Connections that may wait for their request head at once.
MAX_WAITING: Final = 1000
#: A declared body up to this size is read before the worker gets the request;
#: a larger one is refused by cheroot (``max_request_body_size``) with 413.
MAX_BODY: Final = 64 * 1024
#: Bytes read without blocking per call while a head arrives.
_CHUNK: Final = 65536
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH: Final = re.compile(rb"\r?\ncontent-length[ \t]*:[ \t]*([0-9]{1,12})[ \t]*\r?\n",
                                    re.IGNORECASE)
_CHUNKED: Final = re.compile(rb"\r?\ntransfer-encoding[ \t]*:", re.IGNORECASE)


class _BufferedSocketIO(socket.SocketIO):
    """A socket's raw reader that first returns the bytes the guard read ahead."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, "rb")
        self.ahead = bytearray()

    def readinto(self, buffer: Any) -> int | None:
        if self.ahead:
            n = min(len(buffer), len(self.ahead))
            buffer[:n] = self.ahead[:n]
            del self.ahead[:n]
            return n
        return super().readinto(buffer)


class _Reader(cheroot.makefile.StreamReader):
    """cheroot's socket reader over :class:`_BufferedSocketIO`."""

    def __init__(self, sock: socket.socket, mode: str = "rb",
                 bufsize: int = _pyio.DEFAULT_BUFFER_SIZE) -> None:
        self._socket_io = _BufferedSocketIO(sock)
        _pyio.BufferedReader.__init__(self, self._socket_io, bufsize)
        self.bytes_read = 0

    @property
    def ahead(self) -> bytearray:
        """The bytes read ahead by the guard, not yet in the reader's buffer."""
        return self._socket_io.ahead

    def _buffered(self) -> bytes:
        # _pyio.BufferedReader's buffer, as cheroot's own has_data reads it.
        buffer: bytes = getattr(self, "_read_buf")
        return buffer[getattr(self, "_read_pos"):]

    def has_data(self) -> bool:
        """Whether bytes wait to be read (in the buffer, or read ahead)."""
        return bool(self._buffered() or self._socket_io.ahead)

    def pending(self) -> bytes:
        """Every byte received and not yet read by the request parser."""
        return bytes(self._buffered()) + bytes(self._socket_io.ahead)


def _make_file(sock: socket.socket, mode: str = "r",
               bufsize: int = _pyio.DEFAULT_BUFFER_SIZE) -> Any:
    """cheroot's ``MakeFile``, with :class:`_Reader` for reading."""
    if "r" in mode:
        return _Reader(sock, mode, bufsize)
    return cheroot.makefile.MakeFile(sock, mode, bufsize)


class _Connection(cheroot.server.HTTPConnection):
    """cheroot's connection, reading through :class:`_Reader` (on plain TCP)."""

    #: when this connection started waiting for its current request head
    waiting_since: float | None = None

    def __init__(self, server: Any, sock: socket.socket,
                 makefile: Any = cheroot.makefile.MakeFile) -> None:
        plain = makefile is cheroot.makefile.MakeFile
        super().__init__(server, sock, _make_file if plain else makefile)


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole request head (and its small declared body)."""
    start = len(data) - len(data.lstrip(b"\r\n"))  # empty lines before a request
    end = _HEAD_END.search(data, start)
    if end is None:
        return False
    head = b"\n" + data[start:end.start()] + b"\n"
    if _CHUNKED.search(head):
        return True  # the worker reads (or refuses) it
    length = _CONTENT_LENGTH.search(head)
    if length is None:
        return True
    size = int(length.group(1))
    return size > MAX_BODY or len(data) - end.end() >= size


class GuardedServer(cheroot.wsgi.Server):
    """cheroot's WSGI server that gives a worker only complete request heads.

    Takes cheroot's arguments, and:

    :param max_waiting: connections that may wait for their request head at once.
    """

    ConnectionClass = _Connection

    def __init__(self, *args: Any, max_waiting: int = MAX_WAITING, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_waiting = max_waiting
        self.max_request_body_size = MAX_BODY
        self.max_request_header_size = 64 * 1024

    def process_conn(self, conn: Any) -> None:
        """Hand ``conn`` to a worker if its request head is complete, else let it
        wait in the selector (called by the selector thread, and by a worker
        returning a kept-alive connection whose buffer holds more)."""
        if not isinstance(getattr(conn, "rfile", None), _Reader):  # TLS: not guarded
            super().process_conn(conn)
            return
        state = self._read_ahead(conn)
        if state == "ready":
            conn.waiting_since = None
            super().process_conn(conn)
        elif state == "wait":
            self._wait(conn)
        elif state == "too_large":
            self._refuse_too_large(conn)
        else:
            conn.close()

    def _refuse_too_large(self, conn: _Connection) -> None:
        """Answer a head over ``max_request_header_size`` with a JSON error (414 for
        a request line that long, else 431) and close: cheroot would answer in
        plain text."""
        data = conn.rfile.pending()
        line_end = data.find(b"\n")
        long_line = line_end < 0 or line_end > self.max_request_header_size
        status = 414 if long_line else 431
        reason = "URI Too Long" if long_line else "Request Header Fields Too Large"
        body = error_body(status, (
            f"the request line is longer than {self.max_request_header_size} bytes"
            if long_line else
            f"the request headers are larger than {self.max_request_header_size} bytes"))
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        try:
            conn.socket.settimeout(self.timeout)
            conn.socket.sendall(head.encode("ascii") + body)
        except OSError:
            pass
        conn.close()

    def _read_ahead(self, conn: _Connection) -> str:
        """Read what has arrived without blocking: ``ready``, ``wait``,
        ``too_large`` (a head over ``max_request_header_size``) or ``gone``."""
        reader: _Reader = conn.rfile
        limit = self.max_request_header_size + MAX_BODY
        data = reader.pending()
        if _complete(data) or len(data) > limit:
            return self._judge(data)
        sock = conn.socket
        try:
            sock.settimeout(0.0)
            while len(data) <= limit:
                try:
                    chunk = sock.recv(_CHUNK)
                except (BlockingIOError, InterruptedError):
                    break
                if not chunk:
                    # The client closed its side: nothing more will come.
                    return "ready" if data.strip() else "gone"
                reader.ahead.extend(chunk)
                data += chunk
        except OSError:
            return "gone"
        finally:
            try:
                sock.settimeout(self.timeout)
            except OSError:
                pass
        return self._judge(data) if _complete(data) or len(data) > limit else "wait"

    def _judge(self, data: bytes) -> str:
        """``ready``, or ``too_large`` when the head itself is over the limit."""
        start = len(data) - len(data.lstrip(b"\r\n"))
        end = _HEAD_END.search(data, start)
        head_size = (end.start() if end is not None else len(data)) - start
        return "too_large" if head_size > self.max_request_header_size else "ready"

    def _wait(self, conn: _Connection) -> None:
        """Register ``conn`` in cheroot's selector until more of its head arrives.

        Its ``last_used`` is when it started waiting, so that cheroot's expiry
        closes it ``timeout`` seconds later however slowly the head drips.  A
        connection that would exceed ``max_waiting`` is closed instead.
        """
        if conn.waiting_since is None:
            conn.waiting_since = conn.last_used or time.time()
        conn.last_used = conn.waiting_since
        manager: Any = getattr(self, "_connections")
        if manager._num_connections >= self.max_waiting:
            conn.close()
            return
        try:
            manager._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)
        except (OSError, ValueError, KeyError):
            conn.close()
