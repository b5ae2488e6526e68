"""Call WMCore's own ``WMStatsServer`` client; run by the reqmon venv's python.

Not imported by wmstats: :func:`wmstats.testing.reqmon.wmcore_client_calls` runs
this file as a script with the python of the separate reqmon virtualenv (see
``ci/install-reqmon.sh``), where the ``WMCore`` package lives.  It reads one JSON
request on stdin and writes one JSON answer on stdout::

    {"url": "http://127.0.0.1:8249/wmstatsserver",
     "calls": [{"method": "getGlobalLocks", "args": [], "kwargs": {}}],
     "constants": false}

    {"results": [{"ok": true, "value": [...]}
                 | {"ok": false, "error": {"type": ..., "message": ..., "status": ...,
                                           "reason": ..., "body": ..., "headers": ...}}],
     "constants": {...} | null, "wmcore_version": "2.4.5.9"}

``method`` is a public method of
``WMCore.Services.WMStatsServer.WMStatsServer.WMStatsServer`` (``getActiveData``,
``getFilteredActiveData``, ``getChildParentDatasetMap``, ``getProtectedLFNs``,
``getGlobalLocks``), or ``"_getResult"`` to fetch any other API (``teams``,
``request/<name>``...) through the same client code.  With ``constants`` the answer
also carries the status lists of ``WMCore.ReqMgr.DataStructs.RequestStatus``.

The environment needs what WMCore's HTTP layer insists on: an X509 key/cert pair
named by ``X509_HOST_KEY``/``X509_HOST_CERT`` (only their existence is checked for
``http://`` URLs) and a writable ``WMCORE_CACHE_DIR``.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

__all__ = ["main"]

_STATUS_NAMES = ("ACTIVE_STATUS", "ACTIVE_STATUS_FILTER", "WMSTATS_JOB_INFO",
                 "WMSTATS_NO_JOB_INFO", "REQUEST_STATE_LIST")


def _default(value: Any) -> Any:
    """What ``json`` cannot write itself: sets (as lists) and bytes (as text)."""
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _error(exc: BaseException) -> dict[str, Any]:
    """What a caller needs to know about an exception WMCore's client raised."""
    headers = getattr(exc, "headers", None)  # set by WMCore's Requests / pycurl_manager
    body = getattr(exc, "result", None)
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "status": getattr(exc, "status", None),
        "reason": getattr(exc, "reason", None),
        "body": body,
        "headers": headers if isinstance(headers, dict) else None,
    }


def _call(client: Any, method: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    if method.startswith("_") and method != "_getResult":
        return {"ok": False, "error": {"type": "ValueError", "status": None, "reason": None,
                                       "body": None, "headers": None,
                                       "message": f"private method {method!r} refused"}}
    try:
        value = getattr(client, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 -- reported: the caller asserts on it
        return {"ok": False, "error": _error(exc)}
    return {"ok": True, "value": value}


def main() -> int:
    """Read the request on stdin, answer on stdout; exit status 0 unless it is malformed."""
    request = json.load(sys.stdin)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logger = logging.getLogger("wmcore-client")
    answer: dict[str, Any] = {"results": [], "constants": None}
    wmcore = importlib.import_module("WMCore")
    answer["wmcore_version"] = getattr(wmcore, "__version__", None)
    if request.get("constants"):
        statuses = importlib.import_module("WMCore.ReqMgr.DataStructs.RequestStatus")
        answer["constants"] = {name: getattr(statuses, name) for name in _STATUS_NAMES}
    calls = request.get("calls") or []
    if calls:
        module = importlib.import_module("WMCore.Services.WMStatsServer.WMStatsServer")
        client = module.WMStatsServer(request["url"], logger=logger)
        for call in calls:
            answer["results"].append(_call(client, call["method"], list(call.get("args", [])),
                                           dict(call.get("kwargs", {}))))
    # One write: json.dump() would write piece by piece, and with PYTHONUNBUFFERED
    # (which WMCore's environment sets) each piece is a system call.
    sys.stdout.write(json.dumps(answer, default=_default) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
