"""What a handler of the web apps answers, and handing it to CherryPy.

The cache and UI apps share this: a handler returns a :class:`Reply`;
:func:`guarded` turns whatever it raises into a JSON error reply;
:func:`not_modified` answers 304 when the client's ETag matches; :func:`send`
sets the status and headers on CherryPy's response and returns the body,
gzip-compressed when the reply allows it (whole, or chunk by chunk for a
streamed body).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import attrs
import cherrypy  # type: ignore[import-untyped]

from wmstats.stream import compress_bytes, compress_chunks
from wmstats.web._encode import Tally
from wmstats.web._errors import ApiError, error_body
from wmstats.web._negotiate import JSON, etag_matches

__all__ = [
    "Reply",
    "GZIP_MIN",
    "READ_METHODS",
    "Done",
    "error_reply",
    "guarded",
    "check_method",
    "not_modified",
    "content_etag",
    "send",
]

#: Bodies smaller than this are never gzip-compressed.
GZIP_MIN: Final = 1024
#: The methods both apps answer (the ``Allow`` header of a 405).
READ_METHODS: Final = "GET, HEAD"

#: Called once a reply is sent: ``done(records, body bytes sent)``.
Done = Callable[[int, int], None]


@attrs.define
class Reply:
    """What a handler answers; :func:`send` turns it into the response.

    :param body: the body, whole or as a generator of chunks (streamed).
    :param content_type: the ``Content-Type`` (not sent on a 304).
    :param status: the HTTP status.
    :param headers: headers of this reply (over the app's own).
    :param tally: records in the body (counted while it streams for generators).
    :param compress: whether to compress the body (the client accepts ``coding``
        and the body is not compressed already); bodies under :data:`GZIP_MIN` never
        are.
    :param coding: the content coding to compress with (one of
        :func:`wmstats.stream.available_codings`).
    """

    body: bytes | Iterator[bytes]
    content_type: str = JSON
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    tally: Tally = attrs.field(factory=Tally)
    compress: bool = False
    coding: str = "gzip"


def error_reply(exc: ApiError) -> Reply:
    """The JSON error document of ``exc``, with its status and headers."""
    return Reply(error_body(exc.status, exc.detail, exc.parameter), status=exc.status,
                 headers=dict(exc.headers))


def guarded(build: Callable[[], Reply], where: str) -> Reply:
    """``build()``; what it raises as a JSON error reply.

    An :class:`ApiError` answers as it says; anything else is logged with its
    traceback (on the server only) and answered as a bare 500.

    :param where: the request path, for the log.
    """
    try:
        return build()
    except ApiError as exc:
        return error_reply(exc)
    except Exception:
        cherrypy.log(f"unexpected error on {where}", traceback=True, severity=logging.ERROR)
        return error_reply(ApiError(500, "internal server error"))


def check_method(method: str, note: str = "") -> None:
    """Refuse anything but ``GET`` and ``HEAD``.

    :raises ApiError: 405 with ``Allow: GET, HEAD``.
    """
    if method not in ("GET", "HEAD"):
        raise ApiError(405, f"method {method} not allowed{note}",
                       headers={"Allow": READ_METHODS})


def not_modified(etag: str, if_none_match: str | None) -> Reply | None:
    """A 304 reply when ``If-None-Match`` matches ``etag``, else ``None``."""
    if etag_matches(if_none_match, etag):
        return Reply(b"", status=304, headers={"ETag": etag})
    return None


def content_etag(body: bytes, coding: str | bool | None) -> str:
    """An ETag from a fixed body's content (``-gzip``, ``-zstd``... for a compressed
    form; ``True`` is gzip)."""
    suffix = "-gzip" if coding is True else f"-{coding}" if coding else ""
    return f'"{hashlib.sha1(body).hexdigest()[:20]}{suffix}"'


def _ignore(records: int, sent: int) -> None:
    pass


def send(reply: Reply, request: Any, *, headers: Mapping[str, str] | None = None,
         gzip_level: int = 1, done: Done | None = None) -> Any:
    """Set ``reply``'s status and headers on CherryPy's response; the body to return.

    :param request: CherryPy's request (its method: a HEAD gets no body).
    :param headers: the app's headers for every response (the reply's win).
    :param gzip_level: zlib level when compressing with gzip (the other codings use
        their default levels, :data:`wmstats.stream.CODINGS`).
    :param done: called once with the records and body bytes sent: at once for a
        whole body, when the last chunk is sent (or the client went away) for a
        streamed one.
    """
    finish = done or _ignore
    response = cherrypy.serving.response
    response.status = reply.status
    out = response.headers
    out.pop("Content-Type", None)
    if reply.status != 304:
        out["Content-Type"] = reply.content_type
    out.update(headers or {})
    out.update(reply.headers)
    head = request.method == "HEAD"
    if reply.status == 304:
        # Streamed, so that no Content-Length is added to a 304.
        response.stream = True
        finish(0, 0)
        return []
    if isinstance(reply.body, bytes):
        body = reply.body
        if reply.compress and len(body) >= GZIP_MIN:
            body = compress_bytes(body, reply.coding, _level(reply.coding, gzip_level))
            out["Content-Encoding"] = reply.coding
            out.setdefault("Vary", "Accept-Encoding")
        finish(reply.tally.records, 0 if head else len(body))
        return body
    chunks: Iterator[bytes] = reply.body
    if reply.compress:
        out["Content-Encoding"] = reply.coding
        out.setdefault("Vary", "Accept-Encoding")
    if head:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        finish(0, 0)
        return b""
    if reply.compress:
        chunks = compress_chunks(chunks, reply.coding, _level(reply.coding, gzip_level))
    response.stream = True
    tally = reply.tally
    return _observed(chunks, lambda sent: finish(tally.records, sent))


def _level(coding: str, gzip_level: int) -> int | None:
    return gzip_level if coding == "gzip" else None


def _observed(chunks: Iterator[bytes], done: Callable[[int], None]) -> Iterator[bytes]:
    """``chunks``, calling ``done(bytes sent)`` when they end or the client goes away."""
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
    except Exception:
        # The status and headers are sent already: log, and let the HTTP server
        # drop the connection without the final chunk, so the client sees the
        # body is incomplete.
        cherrypy.log("error while streaming a response", traceback=True,
                     severity=logging.ERROR)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        done(sent)
