"""The source contract, the source registry and :func:`open_source`.

A *source* keeps a :class:`~wmstats.store.Store` filled from where the data
lives (WMCore's CouchDB in production): one full load that replaces the store's
snapshot, then incremental updates applied with :meth:`Store.apply
<wmstats.store.Store.apply>`.  It runs in background threads: :meth:`Source.start`
returns at once, :meth:`Source.stop` stops it cleanly, and the server built on the
store answers while the source works (``/healthz`` says when it is ready).

Contract for sources:

* :meth:`Source.start` is idempotent and never raises because the upstream
  server is down: the source retries (with a capped backoff) and reports the
  failure in :meth:`Source.status`.
* Until the first full load has finished the source is not ready; the store is
  not touched before that load is complete, and a load that fails half way leaves
  the previous snapshot as it was.
* :meth:`Source.status` tells how far the source got: the last applied sequence
  of each upstream database (opaque strings, compare them for equality only).
* :meth:`Source.sequences_for` maps a store snapshot id (the one a response was
  read from) to the sequences that snapshot reflects, so a response can say
  exactly which upstream state it shows.

Sources are found by URL scheme (:func:`load_source`) through the
``wmstats.sources`` entry point group; :func:`open_source` builds one::

    source = open_source("couchdb://user:secret@localhost:5984?wmstats_db=wmstats", store)
    source.start()

No network I/O happens here; sources live in plugins (``wmstats_couchdb``).
"""

from __future__ import annotations

import abc
import importlib.metadata
import inspect
import math
import threading
import time
import types
import typing
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final

import attrs

from wmstats.store import Store

__all__ = [
    "Source",
    "SourceStatus",
    "SourceError",
    "UnknownSourceError",
    "MissingSourceError",
    "SourceOptionError",
    "ENTRY_POINT_GROUP",
    "KNOWN_SOURCES",
    "SCHEME_ALIASES",
    "ACTIVE_STATUSES",
    "load_source",
    "available_sources",
    "open_source",
    "parse_source_url",
    "coerce_source_options",
]

#: Entry point group that plugins register their source classes in.
ENTRY_POINT_GROUP: Final = "wmstats.sources"

_KNOWN: Final[dict[str, str]] = {
    "couchdb": "wmstats_couchdb",
}
#: Sources shipped as plugins: scheme -> the distribution/package that provides it
#: (to say what to install when it is missing).
KNOWN_SOURCES: Final[Mapping[str, str]] = types.MappingProxyType(_KNOWN)

_ALIASES: Final[dict[str, str]] = {"couchdbs": "couchdb"}
#: Other schemes of a registered source: ``couchdbs://`` is CouchDB over https.
SCHEME_ALIASES: Final[Mapping[str, str]] = types.MappingProxyType(_ALIASES)

#: WMCore's active request statuses (``ACTIVE_STATUS`` in
#: ``WMCore/ReqMgr/DataStructs/RequestStatus.py``): what WMStats shows by default.
ACTIVE_STATUSES: Final[tuple[str, ...]] = (
    "new", "assignment-approved", "assigned", "staging", "staged", "acquired",
    "running-open", "running-closed", "failed", "force-complete", "completed",
    "closed-out", "announced", "aborted", "aborted-completed", "rejected",
)


class SourceError(Exception):
    """Base class of the errors raised by sources and the source registry."""


class UnknownSourceError(SourceError, LookupError):
    """No source is registered for that URL scheme."""


class MissingSourceError(SourceError, ImportError):
    """A known source whose plugin is not installed (or fails to import)."""


class SourceOptionError(SourceError, ValueError):
    """A bad source URL or option."""


def _seqs(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class SourceStatus:
    """What a source has done so far.

    :param ready: the first full load has finished (the store holds source data).
    :param connected: the last request to the upstream server succeeded.
    :param sequences: database -> last applied sequence (opaque strings).
    :param last_load_seconds: how long the last full load took.
    :param loaded_at: when the last full load finished (epoch seconds).
    :param loads: full loads finished.
    :param updates_applied: changed documents applied after the loads.
    :param problems: problems found in documents (malformed values, unknown types).
    :param errors: failed requests and loads (each retried).
    :param last_error: the last failure, for humans (``None`` if none yet).
    :param url: where the data comes from (credentials left out).
    """

    ready: bool = False
    connected: bool = False
    sequences: Mapping[str, str] = attrs.field(factory=dict, converter=_seqs)
    last_load_seconds: float | None = None
    loaded_at: float | None = None
    loads: int = 0
    updates_applied: int = 0
    problems: int = 0
    errors: int = 0
    last_error: str | None = None
    url: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``/healthz`` shows)."""
        out = attrs.asdict(self, recurse=False)
        out["sequences"] = dict(self.sequences)
        return out


class Source(abc.ABC):
    """Fills one store from an upstream database and keeps it up to date.

    :param store: the store to fill.

    Subclasses take the store as first argument and their options as typed
    keyword arguments, and override :meth:`url_options` to map a URL's user,
    password, host, port and path to those options.
    """

    #: The URL scheme the source is registered under.
    scheme: ClassVar[str] = ""

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """Keyword options given by a URL's user, password, host, port and path.

        The query string is handled by :func:`open_source`.  The default accepts
        a bare ``scheme://`` only.

        :raises SourceOptionError: for URL parts the source does not understand.
        """
        if url.netloc or url.path not in ("", "/"):
            raise SourceOptionError(f"{cls.scheme or cls.__name__} source URLs take no "
                                    f"host or path: {url.geturl()!r}")
        return {}

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The store this source fills (the source never closes it)."""
        return self._store

    @abc.abstractmethod
    def start(self) -> None:
        """Start the background work (full load, then updates); returns at once.

        Calling it again while running does nothing.
        """

    @abc.abstractmethod
    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the background work and wait for it.

        :param timeout: seconds to wait (``None``: as long as it takes).
        :returns: whether every thread has ended.
        """

    @abc.abstractmethod
    def status(self) -> SourceStatus:
        """The current :class:`SourceStatus`."""

    @abc.abstractmethod
    def sequences_for(self, snapshot_id: str) -> Mapping[str, str] | None:
        """The upstream sequences the store's snapshot ``snapshot_id`` reflects.

        :returns: database -> sequence, or ``None`` for a snapshot this source did
            not write (or wrote too long ago to remember).
        """

    @property
    def ready(self) -> bool:
        """Whether the first full load has finished."""
        return self.status().ready

    def wait_ready(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Wait until :attr:`ready` (or ``timeout`` seconds); returns :attr:`ready`."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        event = threading.Event()
        while not self.ready:
            if time.monotonic() >= deadline:
                return False
            event.wait(poll)
        return True

    def close(self) -> None:
        """Stop the source (see :meth:`stop`)."""
        self.stop()

    def __enter__(self) -> typing.Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- registry


def _check(cls: Any, what: str) -> type[Source]:
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise SourceError(f"{what} is not a wmstats.source.Source subclass")
    return cls


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_source(scheme: str) -> type[Source]:
    """The source class registered for a URL scheme (``wmstats.sources`` entry points).

    :raises UnknownSourceError: when no source has that scheme.
    :raises MissingSourceError: when the source is known but its plugin is not
        installed or fails to import.
    """
    name = _ALIASES.get(scheme, scheme)
    entry = _entry_points().get(name)
    if entry is None:
        plugin = _KNOWN.get(name)
        if plugin is not None:
            raise MissingSourceError(
                f"the {scheme}:// source is provided by the {plugin!r} plugin, which is "
                f"not installed: install {plugin} (it ships with wmstats, in "
                f"plugins/{plugin}) to use {scheme}://")
        known = sorted({*_ALIASES, *_entry_points()})
        raise UnknownSourceError(f"no source for {scheme}:// URLs "
                                 f"(available: {', '.join(known) or 'none'})")
    try:
        cls = entry.load()
    except (ImportError, AttributeError) as exc:
        raise MissingSourceError(
            f"the {scheme}:// source ({entry.value}) could not be imported: {exc}; "
            f"install its plugin and its dependencies to use {scheme}://") from exc
    return _check(cls, f"entry point {name} = {entry.value}")


def available_sources() -> dict[str, str]:
    """Every installed source scheme -> ``"module:Class"`` (the entry points)."""
    return {name: ep.value for name, ep in _entry_points().items()}


def parse_source_url(url: str) -> tuple[str, urllib.parse.SplitResult]:
    """The scheme (lower case) and the parsed URL.

    :raises SourceOptionError: for a string that is not a ``scheme://...`` URL.
    """
    if not isinstance(url, str) or "://" not in url:
        raise SourceOptionError(f"not a source URL (expected e.g. couchdb://host:5984): "
                                f"{url!r}")
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme:
        raise SourceOptionError(f"source URL without a scheme: {url!r}")
    return parts.scheme.lower(), parts


_LISTS: Final = (tuple, list, set, frozenset, Iterable, Sequence)


def _convert(name: str, text: str, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        if len(real) < len(args) and text.strip().lower() in ("none", "null"):
            return None
        errors: list[str] = []
        for arg in real:
            try:
                return _convert(name, text, arg)
            except SourceOptionError as exc:
                errors.append(str(exc))
        raise SourceOptionError(errors[-1] if errors else f"option {name}: bad value {text!r}")
    if origin in _LISTS or hint in _LISTS:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SourceOptionError(f"option {name}: expected a boolean, got {text!r}")
    if hint in (int, float):
        try:
            number = hint(text)
        except ValueError:
            kind = "an integer" if hint is int else "a number"
            raise SourceOptionError(f"option {name}: expected {kind}, got {text!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise SourceOptionError(f"option {name}: expected a finite number, got {text!r}")
        return number
    if hint is str or hint is Any:
        return text
    raise SourceOptionError(f"option {name} cannot be given in a URL")


def coerce_source_options(cls: type[Source], raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn string options (a URL query) into typed keyword arguments of ``cls``.

    Lists are comma-separated (``statuses=running-open,completed``).

    :raises SourceOptionError: for an unknown option or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls.__init__)
    params = inspect.signature(cls.__init__).parameters
    accepted = {name for name, p in params.items()
                if name not in ("self", "store") and p.kind in (p.KEYWORD_ONLY,
                                                                p.POSITIONAL_OR_KEYWORD)}
    out: dict[str, Any] = {}
    for name, text in raw.items():
        if name not in accepted:
            raise SourceOptionError(f"unknown option {name!r} for the "
                                    f"{cls.scheme or cls.__name__} source (known: "
                                    f"{', '.join(sorted(accepted)) or 'none'})")
        out[name] = _convert(name, text, hints.get(name, str))
    return out


def open_source(url: str, store: Store, **options: Any) -> Source:
    """Build a source from a URL; keyword options override those in the URL.

    ``couchdb://[user:password@]host:port[/prefix]?requests_db=...&wmstats_db=...``
    (``couchdbs://`` for https; see the source's class for its options).  The
    source is not started.

    :raises UnknownSourceError, MissingSourceError: see :func:`load_source`.
    :raises SourceOptionError: for a bad URL or option.
    """
    scheme, parts = parse_source_url(url)
    cls = load_source(scheme)
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            raise SourceOptionError(f"option {key!r} given twice in the source URL")
        query[key] = value
    kwargs = cls.url_options(parts)
    kwargs.update(coerce_source_options(cls, query))
    kwargs.update(options)
    try:
        return cls(store, **kwargs)
    except TypeError as exc:
        raise SourceOptionError(f"bad options for the {scheme} source: {exc}") from exc
