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
* A source writes through :meth:`Store.replace_from_source
  <wmstats.store.Store.replace_from_source>` and :meth:`Store.apply_from_source
  <wmstats.store.Store.apply_from_source>`, giving the sequences each write
  reflects (a :class:`~wmstats.store.Checkpoint`) and the state it needs to go on
  (:class:`~wmstats.store.SourceEntry` records).  A store that persists keeps them
  with the snapshot, atomically with the data; a restarted source finds them with
  :meth:`Store.checkpoint <wmstats.store.Store.checkpoint>` and resumes from those
  sequences (:attr:`SourceStatus.resumes`) instead of loading everything, unless
  upstream refuses them.

Sources are found by URL scheme (:func:`load_source`, the :data:`SOURCES`
registry of :mod:`wmstats.plugins`) through the ``wmstats.sources`` entry point
group; :func:`open_source` builds one::

    source = open_source("couchdb://user:secret@localhost:5984?wmstats_db=wmstats", store)
    source.start()

No network I/O happens here; sources live in plugins (``wmstats_couchdb``).
"""

from __future__ import annotations

import abc
import math
import threading
import time
import types
import typing
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs

from wmstats.plugins import PluginErrors, PluginRegistry
from wmstats.store import Store

__all__ = [
    "Source",
    "SourceStatus",
    "SourceError",
    "UnknownSourceError",
    "MissingSourceError",
    "SourceOptionError",
    "ENTRY_POINT_GROUP",
    "SOURCES",
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
    :param last_contact: when the upstream server last answered a request (epoch
        seconds; ``None`` if never).  A running source asks at least every minute or
        so (its change feeds return even when nothing changed), so an old
        ``last_contact`` means the store may be stale.
    :param sequences: database -> last applied sequence (opaque strings).
    :param last_load_seconds: how long the last full load took.
    :param loaded_at: when the last full load finished (epoch seconds).
    :param loads: full loads finished.
    :param resumes: warm starts: resumed from the sequences kept with a persistent
        store's snapshot instead of a full load.
    :param updates_applied: changed documents applied after the loads.
    :param problems: problems found in documents (malformed values, unknown types).
    :param errors: failed requests and loads (each retried).
    :param last_error: the last failure, for humans (``None`` if none yet).
    :param url: where the data comes from (credentials left out).
    """

    ready: bool = False
    connected: bool = False
    last_contact: float | None = None
    sequences: Mapping[str, str] = attrs.field(factory=dict, converter=_seqs)
    last_load_seconds: float | None = None
    loaded_at: float | None = None
    loads: int = 0
    resumes: int = 0
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

    def out_of_contact(self, now: float) -> float:
        """Seconds since the upstream server last answered, at ``now`` (infinite if
        it never did)."""
        if self.last_contact is None:
            return math.inf
        return max(0.0, now - self.last_contact)


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

#: The data sources, by URL scheme, from the ``wmstats.sources`` entry points (see
#: :mod:`wmstats.plugins` for the rules they share with store backends).
SOURCES: Final[PluginRegistry[Source]] = PluginRegistry(
    "source", ENTRY_POINT_GROUP, Source,
    PluginErrors(SourceError, UnknownSourceError, MissingSourceError, SourceOptionError),
    known={"couchdb": "wmstats_couchdb"}, aliases={"couchdbs": "couchdb"},
    positional=("store",))

#: Sources shipped as plugins: scheme -> the distribution/package that provides it
#: (to say what to install when it is missing).
KNOWN_SOURCES: Final[Mapping[str, str]] = SOURCES.known
#: Other schemes of a registered source: ``couchdbs://`` is CouchDB over https.
SCHEME_ALIASES: Final[Mapping[str, str]] = SOURCES.aliases


def load_source(scheme: str) -> type[Source]:
    """The source class registered for a URL scheme (``wmstats.sources`` entry points;
    :meth:`PluginRegistry.load <wmstats.plugins.PluginRegistry.load>`).

    :raises UnknownSourceError: when no source has that scheme.
    :raises MissingSourceError: when the source is known but its plugin is not
        installed or fails to import.
    """
    return SOURCES.load(scheme)


def available_sources() -> dict[str, str]:
    """Every installed source scheme -> ``"module:Class"`` (the entry points)."""
    return SOURCES.available()


def parse_source_url(url: str) -> tuple[str, urllib.parse.SplitResult]:
    """The scheme (lower case) and the parsed URL.

    :raises SourceOptionError: for a string that is not a ``scheme://...`` URL.
    """
    return SOURCES.parse_url(url)


def coerce_source_options(cls: type[Source], raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn string options (a URL query) into typed keyword arguments of ``cls`` (the
    rules are in :mod:`wmstats.plugins`; lists are comma-separated:
    ``statuses=running-open,completed``).

    :raises SourceOptionError: for an unknown option or a value of the wrong type.
    """
    return SOURCES.coerce_options(cls, raw)


def open_source(url: str, store: Store, **options: Any) -> Source:
    """Build a source from a URL; keyword options override those in the URL.

    ``couchdb://[user:password@]host:port[/prefix]?requests_db=...&wmstats_db=...``
    (``couchdbs://`` for https; see the source's class for its options).  The
    source is not started.

    :raises UnknownSourceError, MissingSourceError: see :func:`load_source`.
    :raises SourceOptionError: for a bad URL or option.
    """
    return SOURCES.open(url, store, **options)
