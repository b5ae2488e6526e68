"""Sign and verify CMSWEB authentication headers with WMCore's own code; run by
the reqmon venv's python.

Not imported by wmstats: :mod:`wmstats.testing.cms_auth` runs this file as a
script with the python of the separate reqmon virtualenv (``ci/install-reqmon.sh``),
where ``WMCore`` lives.  It reads one JSON request on stdin and writes one JSON
answer on stdout::

    {"key": "<hex of the HMAC key>",
     "sign": [{"login": ..., "name": ..., "dn": ..., "method": ..., "roles": {...}}],
     "verify": [[["header", "value"], ...], ...]}

    {"signed": [[["cms-authn-login", "..."], ...], ...],
     "verified": [{"user": {...}} | {"user": null} | {"denied": "..."}, ...]}

Signing is ``WMCore.REST.Test.fake_authz_headers`` (what WMCore's own tests use
to stand in for the CMSWEB front-end); verifying is
``WMCore.REST.Auth.user_info_from_headers`` (what the ``cms_auth`` tool of WMCore's
REST servers runs on every request), with the headers put where it reads them
(``cherrypy.request.headers``, as CherryPy gives them: title-cased names).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

__all__ = ["main"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def main() -> int:
    """Read the request on stdin, answer on stdout."""
    request = json.load(sys.stdin)
    import cherrypy  # type: ignore[import-untyped]
    from cherrypy.lib import httputil  # type: ignore[import-untyped]
    # Imported by name: this runs in reqmon's venv, and mypy may see WMCore there or not.
    user_info_from_headers = importlib.import_module("WMCore.REST.Auth").user_info_from_headers
    fake_authz_headers = importlib.import_module("WMCore.REST.Test").fake_authz_headers

    key = bytes.fromhex(request["key"])
    signed = []
    for user in request.get("sign", []):
        headers = fake_authz_headers(key, method=user.get("method", "HNLogin"),
                                     login=user.get("login", "testuser"),
                                     name=user.get("name", "Test User"),
                                     dn=user.get("dn", "/test/dn"),
                                     roles=user.get("roles", {}), format="list")
        signed.append([[str(k), str(v)] for k, v in headers])
    verified = []
    cherrypy.log.screen = False
    for pairs in request.get("verify", []):
        headers = httputil.HeaderMap()
        for name, value in pairs:
            headers[name] = value
        cherrypy.request.headers = headers
        try:
            user = user_info_from_headers(key)
        except cherrypy.HTTPError as exc:
            verified.append({"denied": f"{exc.status}"})
        except Exception as exc:  # noqa: BLE001 -- reported: WMCore fails on bad input
            verified.append({"error": f"{type(exc).__name__}: {exc}"})
        else:
            verified.append({"user": _jsonable(user)})
    json.dump({"signed": signed, "verified": verified}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
