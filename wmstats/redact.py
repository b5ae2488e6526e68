"""Keeping secrets out of output: the one home of the rule.

A store or source URL may carry credentials, in its user part
(``couchdb://user:secret@host/db``) or in its query string
(``couchdb://user@host/?password=secret``).  Whatever wmstats writes -- stderr,
logs, ``/healthz``, ``/info``, ``/metrics``, error bodies -- shows such a URL only
through :func:`redact_url`, and a message that may quote parts of it only
through :func:`redact_text`.  Pure: no I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from typing import Final

__all__ = ["MASK", "SECRET_KEY", "redact_url", "url_secrets", "redact_text"]

#: What a secret is replaced with.
MASK: Final = "***"
#: Query parameter names whose values are secret.
SECRET_KEY: Final = re.compile(r"pass|pwd|secret|token|key|auth|cred|cookie|session",
                               re.IGNORECASE)


def _parts(url: str) -> tuple[str, str | None, str, str | None, str]:
    """``url`` cut as written (nothing re-encoded): the part up to the authority,
    its user info (``None`` without ``@``), the host and path, the query (``None``
    without ``?``) and the fragment with its ``#``."""
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start)
        if found >= 0:
            end = min(end, found)
    authority = url[start:end] if scheme_end >= 0 else ""
    userinfo, at, host = authority.rpartition("@")
    rest, hash_mark, fragment = url[end if scheme_end >= 0 else 0:].partition("#")
    path, question, query = rest.partition("?")
    return (url[:start], userinfo if at else None, host + path,
            query if question else None, hash_mark + fragment)


def _secret_pairs(query: str) -> Iterable[tuple[str, str, str, bool]]:
    """``(key, "=" or "", value, secret?)`` of each item of a query string."""
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        secret = bool(equals and value and SECRET_KEY.search(urllib.parse.unquote_plus(key)))
        yield key, equals, value, secret


def redact_url(url: str, *, user: bool = True) -> str:
    """``url`` with its password, and the values of query parameters whose name
    looks secret (:data:`SECRET_KEY`), replaced by :data:`MASK`; nothing else of
    it changes.

    :param user: keep the user name (for operators' logs); ``False`` drops the
        whole user part (what a page for anyone may show).
    """
    head, userinfo, host_path, query, fragment = _parts(url)
    out = head
    if userinfo is not None:
        name, colon, _password = userinfo.partition(":")
        if user:
            out += f"{name}:{MASK}@" if colon else f"{name}@"
    out += host_path
    if query is not None:
        out += "?" + "&".join(f"{key}{equals}{MASK if secret else value}"
                              for key, equals, value, secret in _secret_pairs(query))
    return out + fragment


def url_secrets(url: str) -> list[str]:
    """The secrets ``url`` carries, as written and percent-decoded: its password
    and the values of its secret-looking query parameters (longest first)."""
    _head, userinfo, _host_path, query, _fragment = _parts(url)
    found: set[str] = set()
    if userinfo is not None:
        _name, colon, password = userinfo.partition(":")
        if colon and password:
            found.update({password, urllib.parse.unquote(password)})
    for _key, _equals, value, secret in _secret_pairs(query or ""):
        if secret:
            found.update({value, urllib.parse.unquote_plus(value)})
    return sorted((s for s in found if s), key=len, reverse=True)


def redact_text(text: str, urls: Iterable[str]) -> str:
    """``text`` with each of ``urls`` redacted (:func:`redact_url`) and every secret
    they carry (:func:`url_secrets`) masked wherever else it appears."""
    urls = [u for u in urls if u]
    for url in urls:
        text = text.replace(url, redact_url(url))
    for url in urls:
        for secret in url_secrets(url):
            text = text.replace(secret, MASK)
    return text
