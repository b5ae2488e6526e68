"""The one error type of the web apps and its JSON body.

Every refusal the cache server makes is an :class:`ApiError`; it becomes a JSON
document ``{"error": ..., "detail": ..., "parameter": ...}`` (``parameter`` only
when one parameter is at fault).  Nothing else ever reaches a client: unexpected
exceptions become a bare 500 ``internal_error`` without a traceback.

That holds before dispatch too, where CherryPy answers itself (a request without
``Host``): :func:`install_json_errors` subscribes :func:`json_errors_hook` to the
engine's ``before_request`` channel, which gives every request to an app whose
root object carries ``JSON_ERRORS = True`` the JSON error page and no traceback
from its start, whatever mounted the app (``cherrypy.tree.mount``, WMCore's
``RESTMain``, :func:`wmstats.web.build_application`); requests to other apps are
left alone.  The same hook drops ``Cookie`` headers: the apps use no cookie, and
one malformed cookie set by another service on a shared domain
(``a=b; $Foo=1``) would otherwise make CherryPy refuse every request of that
browser.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import cherrypy  # type: ignore[import-untyped]
import ujson

__all__ = ["ApiError", "ERROR_CODES", "error_document", "error_body", "error_page",
           "APP_CP_CONFIG", "json_errors_hook", "install_json_errors"]

#: HTTP status -> the short, stable ``error`` code of the JSON error document.
ERROR_CODES: Final[dict[int, str]] = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    414: "uri_too_long",
    422: "query_timeout",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """A request the server refuses, with the HTTP status to answer.

    :param status: the HTTP status code (4xx, or 5xx for server-side failures).
    :param detail: what was wrong, for a human.
    :param parameter: the query parameter (or path part) at fault, if any.
    :param headers: extra response headers (``Allow`` for 405).
    """

    def __init__(self, status: int, detail: str, *, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter
        self.headers = dict(headers or {})

    @property
    def code(self) -> str:
        """The short error code (``bad_request``, ``not_found``...)."""
        return ERROR_CODES.get(self.status, "error")

    def document(self) -> dict[str, Any]:
        """The JSON error document."""
        return error_document(self.status, self.detail, self.parameter)


def error_document(status: int, detail: str, parameter: str | None = None) -> dict[str, Any]:
    """``{"error": code, "detail": detail[, "parameter": name]}``."""
    doc: dict[str, Any] = {"error": ERROR_CODES.get(status, "error"), "detail": detail}
    if parameter is not None:
        doc["parameter"] = parameter
    return doc


def error_body(status: int, detail: str, parameter: str | None = None) -> bytes:
    """The error document as UTF-8 JSON bytes (ASCII-escaped, so any input is safe)."""
    return (ujson.dumps(error_document(status, detail, parameter), ensure_ascii=True,
                        escape_forward_slashes=False) + "\n").encode("ascii")


def error_page(status: str, message: str, traceback: str, version: str) -> str:
    """CherryPy's ``error_page.default``: errors raised by CherryPy itself, as JSON."""
    cherrypy.serving.response.headers["Content-Type"] = "application/json"
    try:
        code = int(str(status).split()[0])
    except (ValueError, IndexError):
        code = 500
    detail = str(message) if code < 500 else "internal server error"
    return error_body(code, detail).decode("ascii")


#: CherryPy configuration that the cache and UI apps carry on their root objects,
#: so that any mount (``cherrypy.tree.mount``, WMCore's ``RESTMain``) gets JSON
#: errors, no tracebacks and no body processing; no global tool is touched.
APP_CP_CONFIG: Final[dict[str, Any]] = {
    "request.show_tracebacks": False,
    "request.process_request_body": False,
    # The handlers parse the raw query string themselves (strict UTF-8 -> 400);
    # latin-1 never fails, so CherryPy's own parsing never answers 404.
    "request.query_string_encoding": "latin-1",
    "error_page.default": error_page,
    "tools.trailing_slash.on": False,
    "tools.encode.on": False,
    "tools.gzip.on": False,
    "tools.sessions.on": False,
}


def json_errors_hook() -> None:
    """``before_request``: JSON errors, no traceback and no cookies for the
    request, if it is for an app whose root has ``JSON_ERRORS = True``."""
    request = cherrypy.serving.request
    app = getattr(request, "app", None)
    if not getattr(getattr(app, "root", None), "JSON_ERRORS", False):
        return
    request.show_tracebacks = False
    request.error_page = {"default": error_page}
    process_headers = request.process_headers

    def without_cookies() -> None:
        request.header_list = [(name, value) for name, value in request.header_list
                               if str(name).lower() != "cookie"]
        process_headers()

    request.process_headers = without_cookies


_installed: set[int] = set()
_install_lock = threading.Lock()


def install_json_errors(engine: Any = None) -> None:
    """Subscribe :func:`json_errors_hook` to ``engine`` (CherryPy's by default),
    once per engine."""
    bus = cherrypy.engine if engine is None else engine
    with _install_lock:
        if id(bus) in _installed:
            return
        bus.subscribe("before_request", json_errors_hook)
        _installed.add(id(bus))
