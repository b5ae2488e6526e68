"""One registry for every kind of plugin: store backends, data sources, commands.

A :class:`PluginRegistry` maps names to classes of one base class.  The three
registries are :data:`wmstats.store.STORES` (``wmstats.backends`` entry points),
:data:`wmstats.source.SOURCES` (``wmstats.sources``) and
:data:`wmstats.commands.COMMANDS` (``wmstats.commands``).  They all follow the
same rules:

* Built-in plugins are ``"module:Class"`` strings, imported on first use; the
  entry point group is read only for names that are not built in, and never at
  import time.
* A plugin that wmstats knows of but that is not installed raises the registry's
  *missing* error, which says what to install ("install wmstats_couchdb to use
  couchdb://"); so does an entry point that fails to import.  An unknown name
  raises the *unknown* error, listing the names available; an entry point that is
  not a subclass of the base class raises the base error.
* The views :attr:`PluginRegistry.builtins`, :attr:`~PluginRegistry.known` and
  :attr:`~PluginRegistry.aliases` are read-only (:class:`types.MappingProxyType`).

Plugins configured by URL (stores and sources) get their options from the URL's
query string, converted to the types of the class's keyword arguments by
:meth:`PluginRegistry.coerce_options`, with one set of rules:

=====================================  ============================================
annotation                             query string value
=====================================  ============================================
``str``, ``Any``                       as given (an empty value stays ``""``)
``bool``                               ``1 true yes on`` / ``0 false no off``
``int``                                a whole number
``float``                              a finite number (``nan`` and ``inf`` refused)
``X | None``                           ``none`` or ``null`` give ``None``; else X
``tuple[str, ...]``, ``list``,         comma-separated, items stripped, empty
``Sequence``, ``Iterable``, ``set``    items dropped
``pathlib.Path``, ``os.PathLike``      a path
=====================================  ============================================

Words are matched case-insensitively.  An option the class does not take, an
option given twice, or a type that cannot be written in a URL is refused with
the registry's *option* error.
"""

from __future__ import annotations

import collections.abc
import importlib
import importlib.metadata
import inspect
import math
import os
import pathlib
import types
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, Protocol, TypeVar

import attrs

from wmstats.redact import redact_text

__all__ = ["PluginErrors", "PluginRegistry", "UrlConfigurable"]

T = TypeVar("T")


class UrlConfigurable(Protocol):
    """A plugin class that can be built from a URL (stores, sources)."""

    @classmethod
    def url_options(cls, url: urllib.parse.SplitResult) -> dict[str, Any]:
        """Keyword options given by a URL's user, password, host, port and path."""


U = TypeVar("U", bound=UrlConfigurable)


@attrs.frozen
class PluginErrors:
    """The exception classes a registry raises.

    :param error: the base class; raised for an entry point that is not a
        subclass of the registry's base class.
    :param unknown: no plugin of that name (a :class:`LookupError`).
    :param missing: a known plugin that is not installed, or one that fails to
        import (an :class:`ImportError`).
    :param option: a bad URL or option (a :class:`ValueError`).
    """

    error: type[Exception]
    unknown: type[Exception]
    missing: type[Exception]
    option: type[Exception]


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_NONE: Final = frozenset({"none", "null"})
_LISTS: Final = frozenset({tuple, list, set, frozenset, collections.abc.Iterable,
                           collections.abc.Sequence, collections.abc.Collection,
                           collections.abc.Set})


def _url_usage(name: str) -> str:
    return f"{name}://"


class PluginRegistry(Generic[T]):
    """Plugin classes of one base class, by name.

    :param kind: what the plugins are, for messages (``"store backend"``, ``"source"``).
    :param group: the entry point group plugins register in.
    :param base: the class every plugin must subclass (``T``, which may be abstract).
    :param errors: the exception classes to raise.
    :param builtins: built-in plugins, name -> ``"module:Class"``.
    :param known: plugins shipped separately, name -> the distribution that
        provides it (to say what to install when it is missing).
    :param aliases: other names of a plugin (``couchdbs`` -> ``couchdb``).
    :param positional: constructor arguments given by the caller, not by options
        (a source's ``store``).
    :param usage: how a user names a plugin, for messages (default ``name://``).
    """

    def __init__(self, kind: str, group: str, base: type, errors: PluginErrors, *,
                 builtins: Mapping[str, str] | None = None,
                 known: Mapping[str, str] | None = None,
                 aliases: Mapping[str, str] | None = None,
                 positional: tuple[str, ...] = (),
                 usage: Callable[[str], str] = _url_usage) -> None:
        self.kind = kind
        self.group = group
        self.base = base
        self.errors = errors
        self.positional = positional
        self.usage = usage
        self._builtins = dict(builtins or {})
        self._known = dict(known or {})
        self._aliases = dict(aliases or {})
        self.builtins: Mapping[str, str] = types.MappingProxyType(self._builtins)
        self.known: Mapping[str, str] = types.MappingProxyType(self._known)
        self.aliases: Mapping[str, str] = types.MappingProxyType(self._aliases)

    def __repr__(self) -> str:
        return f"PluginRegistry({self.kind!r}, group={self.group!r})"

    # ------------------------------------------------------------------ lookup

    def _entry_points(self) -> dict[str, importlib.metadata.EntryPoint]:
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=self.group)}

    def _check(self, obj: Any, what: str) -> type[T]:
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise self.errors.error(f"{what} is not a {self.base.__module__}."
                                    f"{self.base.__qualname__} subclass")
        return typing.cast("type[T]", obj)

    def load(self, name: str) -> type[T]:
        """The plugin class registered under ``name`` (or one of its aliases).

        Built-ins are looked up first; the entry points are read only for other
        names.

        :raises errors.unknown: when no plugin has that name.
        :raises errors.missing: when the plugin is known but not installed, or
            fails to import.
        :raises errors.error: when the entry point is not a subclass of the base.
        """
        key = self._aliases.get(name, name)
        target = self._builtins.get(key)
        if target is not None:
            module_name, _, attr = target.partition(":")
            return self._check(getattr(importlib.import_module(module_name), attr), target)
        entry = self._entry_points().get(key)
        if entry is None:
            plugin = self._known.get(key)
            if plugin is not None:
                raise self.errors.missing(
                    f"the {self.usage(name)} {self.kind} is provided by the {plugin!r} plugin, "
                    f"which is not installed: install {plugin} (it ships with wmstats, in "
                    f"plugins/{plugin}) to use {self.usage(name)}")
            raise self.errors.unknown(f"no {self.kind} named {name!r} (available: "
                                      f"{', '.join(self.names()) or 'none'})")
        try:
            obj = entry.load()
        except (ImportError, AttributeError) as exc:
            raise self.errors.missing(
                f"the {self.usage(name)} {self.kind} ({entry.value}) could not be imported: "
                f"{exc}; install its plugin and its dependencies to use "
                f"{self.usage(name)}") from exc
        return self._check(obj, f"entry point {key} = {entry.value}")

    def available(self) -> dict[str, str]:
        """Every installed plugin: name -> ``"module:Class"`` (built-ins win)."""
        found = {name: ep.value for name, ep in self._entry_points().items()}
        return {**found, **self._builtins}

    def names(self) -> list[str]:
        """Every name :meth:`load` accepts here (aliases included), sorted."""
        return sorted({*self._builtins, *self._aliases, *self._entry_points()})

    # ------------------------------------------------------------------ URLs

    def parse_url(self, url: str) -> tuple[str, urllib.parse.SplitResult]:
        """The plugin name (the URL scheme, lower case) and the parsed URL.

        :raises errors.option: for a value that is not a ``scheme://...`` URL.
        """
        if not isinstance(url, str) or "://" not in url:
            raise self.errors.option(f"not a {self.kind} URL (expected scheme://...): {url!r}")
        parts = urllib.parse.urlsplit(url)
        if not parts.scheme:
            raise self.errors.option(f"{self.kind} URL without a scheme: {url!r}")
        return parts.scheme.lower(), parts

    def query_options(self, parts: urllib.parse.SplitResult) -> dict[str, str]:
        """The options of a URL's query string, as text.

        :raises errors.option: for an option given twice.
        """
        query: dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key in query:
                raise self.errors.option(f"option {key!r} given twice in the {self.kind} URL")
            query[key] = value
        return query

    def coerce_options(self, cls: type[Any], raw: Mapping[str, str]) -> dict[str, Any]:
        """Turn text options (a URL query) into typed keyword arguments of ``cls``,
        by the rules of the module docstring.

        :raises errors.option: for an unknown option or a value of the wrong type.
        """
        hints = typing.get_type_hints(cls.__init__)
        params = inspect.signature(cls.__init__).parameters
        accepted = {name for name, p in params.items()
                    if name != "self" and name not in self.positional
                    and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        label = getattr(cls, "backend", "") or getattr(cls, "scheme", "") or cls.__name__
        out: dict[str, Any] = {}
        for name, text in raw.items():
            if name not in accepted:
                raise self.errors.option(f"unknown option {name!r} for the {label} {self.kind} "
                                         f"(known: {', '.join(sorted(accepted)) or 'none'})")
            out[name] = self._convert(name, text, hints.get(name, str))
        return out

    def _convert(self, name: str, text: str, hint: Any) -> Any:
        fail = self.errors.option
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(hint)
            real = [a for a in args if a is not type(None)]
            if len(real) < len(args) and text.strip().lower() in _NONE:
                return None
            errors: list[Exception] = []
            for arg in real:
                try:
                    return self._convert(name, text, arg)
                except fail as exc:
                    errors.append(exc)
            raise errors[-1] if errors else fail(f"option {name}: bad value {text!r}")
        if origin in _LISTS or hint in _LISTS:
            return tuple(item.strip() for item in text.split(",") if item.strip())
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise fail(f"option {name}: expected a boolean, got {text!r}")
        if hint is int or hint is float:
            try:
                number = hint(text)
            except ValueError:
                kind = "an integer" if hint is int else "a number"
                raise fail(f"option {name}: expected {kind}, got {text!r}") from None
            if isinstance(number, float) and not math.isfinite(number):
                raise fail(f"option {name}: expected a finite number, got {text!r}")
            return number
        if hint is str or hint is Any:
            return text
        if origin is os.PathLike or hint is os.PathLike or (
                isinstance(hint, type) and issubclass(hint, pathlib.PurePath)):
            path_type = hint if isinstance(hint, type) and issubclass(
                hint, pathlib.PurePath) else pathlib.Path
            return path_type(text)
        raise fail(f"option {name} cannot be given in a URL")

    def open(self: PluginRegistry[U], url: str, *args: Any, **options: Any) -> U:
        """Build a plugin from a URL; keyword ``options`` override those in the URL.

        The URL's scheme names the plugin (:meth:`load`); its user, password,
        host, port and path go through the class's ``url_options``; its query
        string through :meth:`coerce_options`.

        :param args: positional constructor arguments (a source's store).
        :raises errors.unknown, errors.missing: see :meth:`load`.
        :raises errors.option: for a bad URL or option.
        """
        try:
            name, parts = self.parse_url(url)
            cls = self.load(name)
            query = self.query_options(parts)
            kwargs = cls.url_options(parts)
            kwargs.update(self.coerce_options(cls, query))
        except (self.errors.option, self.errors.unknown, self.errors.missing) as exc:
            # A message quoting the URL must not quote its password.
            message = redact_text(str(exc), [url])
            if message == str(exc):
                raise
            raise type(exc)(message) from None
        kwargs.update(options)
        try:
            return cls(*args, **kwargs)
        except TypeError as exc:
            raise self.errors.option(f"bad options for the {name} {self.kind}: {exc}") from exc
