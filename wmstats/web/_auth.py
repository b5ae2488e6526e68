"""CMSWEB authentication: checking the front-end's signed ``cms-auth*`` headers.

At CMSWEB the front-ends authenticate users (X509, SSO) and pass who they are to
the back-ends in headers -- ``cms-auth-status``, ``cms-authn-login``,
``cms-authn-name``, ``cms-authn-dn``, ``cms-authn-method``, one
``cms-authz-<role>: site:<site> group:<group> ...`` per role -- signed with an
HMAC key shared by front-ends and back-ends (``cms-authn-hmac``).  WMCore's REST
servers check them with the ``cms_auth`` tool (``WMCore.REST.Auth``); with
``auth="cms-headers"`` the wmstats apps do the same check:

* the signed message is, over the ``cms-authn-*`` and ``cms-authz-*`` headers
  but ``cms-authn-hmac``, sorted by (lower-case) name,
  ``"h%xv%x" % (len(name), len(value))`` for each, then ``#``, then
  ``name + value`` for each; its HMAC-SHA1 under the key, in hex, must equal
  ``cms-authn-hmac`` (compared in constant time);
* a request without ``cms-auth-status``, with ``cms-auth-status: NONE`` (the
  front-end let it through unauthenticated), without ``cms-authn-hmac``, with a
  wrong one, or with malformed role headers is refused: ``403`` JSON.

Where it differs from WMCore, it is stricter: WMCore lets requests from
127.0.0.1 through without any header, lets ``cms-auth-status: NONE`` through as
anonymous, and fails with a 500 on a missing HMAC or a malformed role header
(``tests/test_cms_auth.py`` compares the verdicts with WMCore's own code).
Paths named in ``open_paths`` (by default ``healthz`` and ``metrics``, for
probes and scrapers) need no headers; a valid signature there still counts
(``/healthz`` then shows everything).  Pure apart from reading the key file.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import attrs
import cherrypy  # type: ignore[import-untyped]

from wmstats.web._errors import ApiError

__all__ = ["AUTH_MODES", "DEFAULT_OPEN_PATHS", "CmsUser", "CmsHeaderAuth", "cms_user",
           "signed_message", "make_auth"]

#: Values of the apps' ``auth`` option.
AUTH_MODES: Final = ("none", "cms-headers")
#: First path segments that need no authentication unless configured otherwise.
DEFAULT_OPEN_PATHS: Final = ("healthz", "metrics")
_REFUSED: Final = "You are not allowed to access this resource"


@attrs.frozen
class CmsUser:
    """Who the front-end says made the request.

    :param login: account login name.
    :param name: the person's name.
    :param dn: X509 subject.
    :param method: how the front-end authenticated them (``X509Cert``, ``HNLogin``...).
    :param roles: role -> the ``(kind, name)`` pairs it holds (kind ``site`` or
        ``group``), from the ``cms-authz-<role>`` headers.
    """

    login: str | None = None
    name: str | None = None
    dn: str | None = None
    method: str | None = None
    roles: Mapping[str, frozenset[tuple[str, str]]] = attrs.field(factory=dict)


def _cms_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items
            if str(name).lower().startswith("cms-auth")}


def signed_message(headers: Mapping[str, str]) -> bytes:
    """The message the front-end signs, from lower-case ``cms-auth*`` headers
    (``WMCore.REST.Auth.user_info_from_headers``)."""
    prefix = suffix = ""
    for name in sorted(headers):
        if name[:9] in ("cms-authn", "cms-authz") and name != "cms-authn-hmac":
            value = headers[name]
            prefix += "h%xv%x" % (len(name), len(value))
            suffix += f"{name}{value}"
    return (prefix + "#" + suffix).encode("utf-8")


def cms_user(headers: Mapping[str, str] | Iterable[tuple[str, str]], key: bytes) -> CmsUser:
    """The user the headers name, once their signature checks out.

    :param headers: the request's headers (any case).
    :raises ValueError: when they are missing, unsigned, wrongly signed or malformed
        (the message says which; it never quotes a signature).
    """
    cms = _cms_headers(headers)
    status = cms.get("cms-auth-status")
    if status is None:
        raise ValueError("no authentication headers from the front-end")
    if status == "NONE":
        raise ValueError("the front-end did not authenticate the request")
    given = cms.get("cms-authn-hmac")
    if not given:
        raise ValueError("the authentication headers are not signed")
    expected = hmac.new(key, signed_message(cms), hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
        raise ValueError("the signature of the authentication headers does not match")
    roles: dict[str, frozenset[tuple[str, str]]] = {}
    for name, value in cms.items():
        if not name.startswith("cms-authz-"):
            continue
        pairs = set()
        for item in value.split():
            kind, colon, what = item.partition(":")
            if not colon or kind not in ("site", "group") or ":" in what:
                raise ValueError(f"malformed role header {name}")
            pairs.add((kind, what))
        roles[name[len("cms-authz-"):]] = frozenset(pairs)
    return CmsUser(login=cms.get("cms-authn-login"), name=cms.get("cms-authn-name"),
                   dn=cms.get("cms-authn-dn"), method=cms.get("cms-authn-method"),
                   roles=roles)


@attrs.frozen
class CmsHeaderAuth:
    """The ``cms-headers`` check of one app.

    :param key: the HMAC key shared with the front-ends.
    :param open_paths: first path segments that need no authentication.
    """

    key: bytes = attrs.field(repr=False)
    open_paths: frozenset[str] = frozenset(DEFAULT_OPEN_PATHS)

    def __attrs_post_init__(self) -> None:
        if not self.key:
            raise ValueError("the HMAC key is empty")

    def check(self, path: tuple[str, ...], headers: Mapping[str, str]) -> CmsUser | None:
        """The request's user; ``None`` on an open path without valid headers.

        :raises ApiError: 403 elsewhere without valid headers.
        """
        try:
            return cms_user(headers, self.key)
        except ValueError as exc:
            if (path[0] if path else "") in self.open_paths:
                return None
            cherrypy.log(f"authentication refused: {exc}", severity=logging.WARNING)
            raise ApiError(403, f"{_REFUSED}: {exc}") from None


def make_auth(mode: str, key_file: str | None,
              open_paths: Iterable[str] | str | None) -> CmsHeaderAuth | None:
    """The check an app's ``auth`` options ask for (``None`` for ``"none"``).

    :param mode: one of :data:`AUTH_MODES`.
    :param key_file: the file holding the HMAC key (required for ``cms-headers``).
    :param open_paths: first path segments open without authentication; a
        comma-separated string or a list (``None``: :data:`DEFAULT_OPEN_PATHS`).
    :raises ValueError: for an unknown mode, a missing or empty key file.
    """
    if mode not in AUTH_MODES:
        raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {mode!r}")
    if mode == "none":
        return None
    if not key_file:
        raise ValueError("auth='cms-headers' needs hmac_key_file (--hmac-key FILE)")
    try:
        key = Path(key_file).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the HMAC key file {key_file}: "
                         f"{exc.strerror or exc}") from None
    if not key:
        raise ValueError(f"the HMAC key file {key_file} is empty")
    if open_paths is None:
        paths: Iterable[str] = DEFAULT_OPEN_PATHS
    elif isinstance(open_paths, str):
        paths = open_paths.split(",")
    else:
        paths = open_paths
    return CmsHeaderAuth(key, frozenset(p.strip().strip("/") for p in paths if p.strip()))

