"""A thin CouchDB HTTP client over ``requests``: JSON in and out, errors, counters.

One :class:`requests.Session` per thread (a session is not meant to be shared
between threads), all closed by :meth:`CouchClient.close`.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import requests
import ujson

from wmstats.store import StoreError

__all__ = ["CouchClient", "CouchError", "quote"]

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


def _dumps(value: Any) -> str:
    return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False)


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
        query: dict[str, str] = {}
        for key, value in (params or {}).items():
            if key in _JSON_PARAMS:
                query[key] = _dumps(value)
            elif isinstance(value, bool):
                query[key] = "true" if value else "false"
            else:
                query[key] = str(value)
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
            try:
                answer = ujson.loads(content)
                error, reason = str(answer.get("error", "")), str(answer.get("reason", ""))
            except (ValueError, AttributeError):
                error, reason = "http_error", content[:200].decode(errors="replace")
            raise CouchError(status, error, reason, method, path)
        return ujson.loads(content) if content else None

    def close(self) -> None:
        """Close every session (of every thread)."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
