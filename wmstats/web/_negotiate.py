"""HTTP request parsing for the web apps: query string, Accept, Accept-Encoding, ETags.

Pure functions on header and query-string text; they raise
:class:`~wmstats.web._errors.ApiError` for anything a client must fix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

from wmstats.web._errors import ApiError

__all__ = [
    "JSON",
    "NDJSON",
    "NDJSON_TYPES",
    "DATA_TYPES",
    "JSON_ONLY",
    "FORMATS",
    "parse_query_string",
    "check_path_encoding",
    "choose_type",
    "wants_gzip",
    "choose_coding",
    "etag_matches",
]

JSON: Final = "application/json"
#: The NDJSON media type answered when the client did not name one.
NDJSON: Final = "application/x-ndjson"
NDJSON_TYPES: Final = frozenset({"application/x-ndjson", "application/ndjson"})
#: What data endpoints produce, in server preference order.
DATA_TYPES: Final[tuple[str, ...]] = (JSON, NDJSON, "application/ndjson")
JSON_ONLY: Final[tuple[str, ...]] = (JSON,)
#: ``?format=`` values -> media type.
FORMATS: Final[dict[str, str]] = {"json": JSON, "ndjson": NDJSON}


def parse_query_string(query_string: str, max_length: int) -> dict[str, list[str]]:
    """The parameters of a raw query string, each with all its values, in order.

    :raises ApiError: 414 when longer than ``max_length``, 400 when a percent
        escape is not UTF-8.
    """
    if len(query_string) > max_length:
        raise ApiError(414, f"query string of {len(query_string)} characters; at most "
                            f"{max_length} are accepted")
    try:
        pairs = urllib.parse.parse_qsl(query_string, keep_blank_values=True,
                                       encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "the query string is not valid UTF-8 once percent-decoded") \
            from None
    params: dict[str, list[str]] = {}
    for key, value in pairs:
        params.setdefault(key, []).append(value)
    return params


def check_path_encoding(environ: Mapping[str, Any]) -> None:
    """Refuse a path that is not UTF-8 once percent-decoded (CherryPy would pass it
    on decoded as ISO-8859-1, and ``/fetch/%ff`` would look for a workflow
    named ``\xff``).

    :param environ: the request's WSGI environment (``PATH_INFO`` as PEP 3333
        gives it: the raw bytes decoded as ISO-8859-1).
    :raises ApiError: 400.
    """
    raw = environ.get("PATH_INFO", "")
    if not isinstance(raw, str) or raw.isascii():
        return
    try:
        raw.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        return  # not ISO-8859-1 masquerading bytes: already text
    except UnicodeDecodeError:
        raise ApiError(400, "the path is not valid UTF-8 once percent-decoded") from None


def _weighted(header: str) -> list[tuple[str, float]]:
    """``(token, q)`` of each comma-separated item of an Accept-style header, the
    token lower-cased and ``q`` clamped to [0, 1] (0 when unreadable)."""
    items = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        items.append((parts[0].lower(), q))
    return items


def _media_ranges(accept: str) -> list[tuple[str, str, float]]:
    """``(type, subtype, q)`` of each media range of an Accept header."""
    ranges = []
    for media, q in _weighted(accept):
        if "/" not in media:
            continue
        main, _, sub = media.partition("/")
        ranges.append((main.strip(), sub.strip(), q))
    return ranges


def _quality(media: str, ranges: Sequence[tuple[str, str, float]]) -> float:
    """The q of ``media`` under the most specific matching range (0 if none)."""
    main, _, sub = media.partition("/")
    best_rank, best_q = -1, 0.0
    for r_main, r_sub, q in ranges:
        if r_main == main and r_sub == sub:
            rank = 2
        elif r_main == main and r_sub == "*":
            rank = 1
        elif r_main == "*" and r_sub == "*":
            rank = 0
        else:
            continue
        if rank > best_rank:
            best_rank, best_q = rank, q
    return best_q


def choose_type(accept: str | None, fmt: str | None, offered: Sequence[str]) -> str:
    """The media type to answer with.

    ``fmt`` (the ``format`` query parameter) wins over ``Accept``; without either
    the first offered type is used; a tie goes to the earlier offered type.

    :raises ApiError: 400 for an unknown ``format``, 406 when nothing offered is
        acceptable.
    """
    if fmt is not None:
        media = FORMATS.get(fmt)
        if media is None:
            raise ApiError(400, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})",
                           parameter="format")
        if media in offered:
            return media
        raise ApiError(406, f"format {fmt} is not available here; this endpoint returns "
                            f"{', '.join(offered)}", parameter="format")
    if accept is None or not accept.strip():
        return offered[0]
    ranges = _media_ranges(accept)
    best, best_q = "", 0.0
    for media in offered:
        q = _quality(media, ranges)
        if q > best_q:
            best, best_q = media, q
    if not best:
        raise ApiError(406, f"cannot answer with any type the Accept header allows "
                            f"({accept.strip()[:200]!r}); available: {', '.join(offered)}")
    return best


def wants_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip``, ``x-gzip`` or ``*``, q > 0)."""
    if not accept_encoding:
        return False
    explicit: float | None = None
    star: float | None = None
    for coding, q in _weighted(accept_encoding):
        if coding in ("gzip", "x-gzip"):
            explicit = q if explicit is None else max(explicit, q)
        elif coding == "*":
            star = q
    if explicit is not None:
        return explicit > 0
    return star is not None and star > 0


def choose_coding(accept_encoding: str | None, available: Sequence[str]) -> str | None:
    """The content coding to answer with, or ``None`` for the identity.

    Of the ``available`` codings (best first) the client accepts, the one with the
    highest ``q``; a tie goes to the earlier one.  ``*`` stands for every coding the
    header does not name; ``x-gzip`` is ``gzip``.
    """
    if not accept_encoding:
        return None
    named: dict[str, float] = {}
    star: float | None = None
    for coding, q in _weighted(accept_encoding):
        if coding == "x-gzip":
            coding = "gzip"
        if coding == "*":
            star = q
        elif coding:
            named[coding] = max(q, named.get(coding, 0.0))
    best, best_q = None, 0.0
    for coding in available:
        q = named.get(coding, star if star is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    return best


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` matches ``etag`` (weak comparison, ``*`` matches all)."""
    if not if_none_match:
        return False
    mine = etag[2:] if etag.startswith("W/") else etag
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == mine:
            return True
    return False
