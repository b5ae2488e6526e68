"""A thin CouchDB HTTP client over ``requests``: JSON in and out, errors, counters.

One :class:`requests.Session` per thread (a session is not meant to be shared
between threads), all closed by :meth:`CouchClient.close`.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Final, NoReturn

import requests
import ujson
import urllib3

from wmstats.redact import redact_url as redact
from wmstats.serialize import json_dumps, json_loads
from wmstats.store import StoreError

__all__ = ["CouchClient", "CouchError", "quote", "split_server_url", "redact"]

_JSON_PARAMS: Final = frozenset({"key", "keys", "startkey", "endkey", "start_key", "end_key"})
class CouchError(StoreError):
    """CouchDB answered with an error (or could not be reached).

    :param status: the HTTP status (0 when there was no answer).
    :param error: CouchDB's ``error`` (e.g. ``not_found``, ``conflict``).
    :param reason: CouchDB's ``reason``.
    """

    def __init__(self, status: int, error: str, reason: str, method: str = "",
                 path: str = "") -> None:
        super().__init__(f"CouchDB {method} {path}: {status} {error}: {reason}".strip())
        self.status = status
        self.error = error
        self.reason = reason

    @property
    def missing_database(self) -> bool:
        """Whether the error says the database does not exist.

        CouchDB says ``Database does not exist.``, pouchdb-server ``no_db_file``.
        """
        return self.status == 404 and ("database" in self.reason.lower()
                                       or self.reason == "no_db_file")


def quote(segment: str) -> str:
    """A URL path segment (database names may hold ``/``)."""
    return urllib.parse.quote(segment, safe="")


def split_server_url(url: str) -> tuple[str, tuple[str, str] | None]:
    """``http(s)://[user:password@]host[:port][/prefix]`` -> base URL and Basic auth.

    ``couchdb://`` and ``couchdbs://`` mean ``http://`` and ``https://``; the
    port defaults to 5984 (http) or 443 (https).

    :raises ValueError: for another scheme, no host or a bad port.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = {"couchdb": "http", "couchdbs": "https"}.get(parts.scheme.lower(),
                                                           parts.scheme.lower())
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a CouchDB server URL (http(s)://host:port): {redact(url)!r}")
    port = parts.port or (443 if scheme == "https" else 5984)  # ValueError for a bad port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"
    auth = None
    if parts.username is not None:
        auth = (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
    return base, auth


def _read_timeout(exc: BaseException) -> bool:
    """Whether a ``requests`` error is a read timeout (raised as several types)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
            return True
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = inner or seen.__cause__ or seen.__context__
    return False


_dumps: Final = json_dumps


class CouchClient:
    """JSON requests to one CouchDB server.

    :param base_url: ``scheme://host:port`` (no credentials, no trailing slash).
    :param auth: ``(user, password)`` for Basic auth, or ``None``.
    :param timeout: seconds to wait for the connection and for each read.
    :param gzip: ask for gzip-compressed responses (worth it off loopback only).
    """

    def __init__(self, base_url: str, *, auth: tuple[str, str] | None = None,
                 timeout: float = 60.0, gzip: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.gzip = gzip
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._closed = False
        #: Number of requests made and bytes received (bodies, after decoding).
        self.requests = 0
        self.bytes_received = 0
        #: The last requests made: ``(method, path)``.
        self.log: deque[tuple[str, str]] = deque(maxlen=200)

    def _session(self) -> requests.Session:
        if self._closed:
            raise StoreError("the CouchDB store is closed")
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self.auth
            session.headers["Accept"] = "application/json"
            session.headers["Accept-Encoding"] = "gzip" if self.gzip else "identity"
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, data: bytes | None = None, timeout: float | None = None,
                ok_missing: bool = False) -> Any:
        """Send one request and return the decoded JSON answer.

        :param path: the path after the server URL, starting with ``/``.
        :param params: query parameters; keys such as ``startkey`` are JSON-encoded.
        :param body: a JSON body.
        :param ok_missing: return ``None`` for a 404 instead of raising.
        :raises CouchError: for an error status or a failed connection.
        """
        query = self._query(params)
        headers = {}
        if body is not None:
            data = _dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.requests += 1
        self.log.append((method, path))
        try:
            with self._session().request(method, self.base_url + path, params=query,
                                         data=data, headers=headers,
                                         timeout=timeout or self.timeout) as response:
                content = response.content
                status = response.status_code
        except requests.RequestException as exc:
            raise CouchError(0, type(exc).__name__, str(exc), method, path) from exc
        self.bytes_received += len(content)
        if status >= 400:
            if status == 404 and ok_missing:
                return None
            self._raise(status, content, method, path)
        return json_loads(content) if content else None

    @staticmethod
    def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
        query: dict[str, str] = {}
        for key, value in (params or {}).items():
            if key in _JSON_PARAMS:
                query[key] = _dumps(value)
            elif isinstance(value, bool):
                query[key] = "true" if value else "false"
            else:
                query[key] = str(value)
        return query

    @staticmethod
    def _raise(status: int, content: bytes, method: str, path: str) -> NoReturn:
        try:
            answer = ujson.loads(content)
            error, reason = str(answer.get("error", "")), str(answer.get("reason", ""))
        except (ValueError, AttributeError):
            error, reason = "http_error", content[:200].decode(errors="replace")
        raise CouchError(status, error, reason, method, path)

    def feed(self, path: str, params: Mapping[str, Any], *, read_timeout: float,
             stop: threading.Event | None = None, max_seconds: float | None = None) -> Any:
        """GET a ``_changes`` feed that may wait (``feed=longpoll``) and decode it.

        Sent with ``Accept-Encoding: identity`` (a compressed feed may be held
        back until it ends) and read as it arrives, so that the heartbeats (blank
        lines) a server sends while it waits (``heartbeat=`` parameter) let the
        caller stop.  pouchdb-server ignores ``timeout`` and ``limit`` on such
        feeds: never rely on the server ending them.

        :param read_timeout: seconds without any byte (heartbeats included) after
            which the feed counts as idle.
        :param stop: when set, the feed is closed at the next heartbeat.
        :param max_seconds: close the feed after this long without an answer.
        :returns: the decoded body; ``None`` when stopped, idle or past
            ``max_seconds`` (ask again).
        :raises CouchError: for an error status or a failed connection.
        """
        query = self._query(params)
        self.requests += 1
        self.log.append(("GET", path))
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        parts: list[bytes] = []
        try:
            with self._session().get(self.base_url + path, params=query, stream=True,
                                     headers={"Accept-Encoding": "identity"},
                                     timeout=(self.timeout, read_timeout)) as response:
                if response.status_code >= 400:
                    self._raise(response.status_code, response.content, "GET", path)
                for chunk in response.iter_content(chunk_size=None):
                    parts.append(chunk)
                    if (stop is not None and stop.is_set()) or (
                            deadline is not None and time.monotonic() > deadline):
                        return None
        except requests.RequestException as exc:
            if _read_timeout(exc):
                return None
            raise CouchError(0, type(exc).__name__, str(exc), "GET", path) from exc
        content = b"".join(parts)
        self.bytes_received += len(content)
        try:
            return json_loads(content) if content.strip() else None
        except ValueError as exc:
            # The connection broke in the middle of the body.
            raise CouchError(0, "incomplete_body", str(exc), "GET", path) from exc

    def all_docs(self, db: str, limit: int) -> Iterator[list[Any]]:
        """The rows of ``_all_docs?include_docs=true`` of ``db``, a page of ``limit``
        rows at a time (paged by ``startkey``).

        :raises CouchError: for an error status, a failed connection or an answer
            without rows.
        """
        path = f"/{quote(db)}/_all_docs"
        params: dict[str, Any] = {"include_docs": True, "limit": limit}
        while True:
            body = self.request("GET", path, params=params)
            rows = body.get("rows") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise CouchError(0, "bad_answer", "_all_docs without rows", "GET", path)
            yield rows
            if len(rows) < limit:
                return
            params = {"include_docs": True, "limit": limit,
                      "startkey": rows[-1].get("id"), "skip": 1}

    def close_thread_session(self) -> None:
        """Close the calling thread's session (a thread that is about to end)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            return
        self._local.session = None
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
        session.close()

    def close(self) -> None:
        """Close every session (of every thread)."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
