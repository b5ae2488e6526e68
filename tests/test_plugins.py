"""The one plugin registry: the same rules for store backends and data sources."""

from __future__ import annotations

import importlib.metadata
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from wmstats.backends.memory import MemoryStore
from wmstats.plugins import PluginRegistry
from wmstats.source import SOURCES, Source, SourceStatus
from wmstats.store import STORES, Store


class _StoreOptions(MemoryStore):
    backend = "options"

    def __init__(self, *, count: int = 1, ratio: float = 0.5, flag: bool = False,
                 where: Path | None = None, name: str = "x", maybe: str | None = "x",
                 items: tuple[str, ...] = (), limit: int | None = None,
                 table: dict[str, int] | None = None) -> None:
        super().__init__()
        self.options = {"count": count, "ratio": ratio, "flag": flag, "where": where,
                        "name": name, "maybe": maybe, "items": items, "limit": limit}


class _SourceOptions(Source):
    scheme = "options"

    def __init__(self, store: Store, *, count: int = 1, ratio: float = 0.5,
                 flag: bool = False, where: Path | None = None, name: str = "x",
                 maybe: str | None = "x", items: tuple[str, ...] = (),
                 limit: int | None = None, table: dict[str, int] | None = None) -> None:
        super().__init__(store)
        self.options = {"count": count, "ratio": ratio, "flag": flag, "where": where,
                        "name": name, "maybe": maybe, "items": items, "limit": limit}

    def start(self) -> None:
        pass

    def stop(self, timeout: float | None = 10.0) -> bool:
        return True

    def status(self) -> SourceStatus:
        return SourceStatus()

    def sequences_for(self, snapshot_id: str) -> Mapping[str, str] | None:
        return None


@attrs.frozen
class Kind:
    """One registry under test, with what it takes to open one of its plugins."""

    registry: PluginRegistry[Any]
    options_class: type[Any]
    args: tuple[Any, ...]
    base: type[Any]
    #: a plugin shipped separately (to check the "install X" message)
    known: str


KINDS = {
    "store": Kind(STORES, _StoreOptions, (), Store, "couchdb"),
    "source": Kind(SOURCES, _SourceOptions, (MemoryStore(),), Source, "couchdb"),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, kind: Kind, **targets: str) -> None:
    group = kind.registry.group
    eps = {name: importlib.metadata.EntryPoint(name, value, group)
           for name, value in targets.items()}
    monkeypatch.setattr(kind.registry, "_entry_points", lambda: eps)


def _with_options_plugin(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    monkeypatch.setitem(kind.registry._builtins, "options",
                        f"{__name__}:{kind.options_class.__name__}")


# --------------------------------------------------------------------------- lookup


def test_views_are_read_only(kind: Kind) -> None:
    for view in (kind.registry.builtins, kind.registry.known, kind.registry.aliases):
        assert isinstance(view, types.MappingProxyType)
        with pytest.raises(TypeError):
            view["evil"] = "os:system"  # type: ignore[index]
    assert kind.registry.known[kind.known] == "wmstats_couchdb"


def test_unknown_name_lists_the_available_ones(monkeypatch: pytest.MonkeyPatch,
                                               kind: Kind) -> None:
    _fake_entry_points(monkeypatch, kind, couchdb="wmstats_couchdb:Anything")
    with pytest.raises(kind.registry.errors.unknown, match="couchdb") as info:
        kind.registry.load("redis")
    assert isinstance(info.value, LookupError)
    with pytest.raises(kind.registry.errors.unknown):
        kind.registry.open("redis://localhost/0", *kind.args)


def test_known_but_missing_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                       kind: Kind) -> None:
    _fake_entry_points(monkeypatch, kind)
    with pytest.raises(kind.registry.errors.missing,
                       match="install wmstats_couchdb .* to use couchdb://") as info:
        kind.registry.load(kind.known)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, kind.registry.errors.error)


@pytest.mark.parametrize("target", ["wmstats_no_such_module:Plugin", "wmstats.schema:NoSuchName"])
def test_plugin_that_fails_to_import(monkeypatch: pytest.MonkeyPatch, kind: Kind,
                                     target: str) -> None:
    _fake_entry_points(monkeypatch, kind, broken=target)
    with pytest.raises(kind.registry.errors.missing,
                       match=f"could not be imported.*{target.split(':')[0]}"):
        kind.registry.load("broken")


def test_entry_point_that_is_not_a_plugin(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    _fake_entry_points(monkeypatch, kind, odd="collections:OrderedDict", evil="os:system")
    name = f"{kind.base.__module__}.{kind.base.__qualname__}"
    for bad in ("odd", "evil"):
        with pytest.raises(kind.registry.errors.error, match=f"not a {name} subclass"):
            kind.registry.load(bad)


def test_builtins_do_not_read_entry_points(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    _with_options_plugin(monkeypatch, kind)

    def boom(**_: Any) -> Any:
        raise AssertionError("entry points read for a built-in plugin")

    monkeypatch.setattr(importlib.metadata, "entry_points", boom)
    assert kind.registry.load("options") is kind.options_class
    assert isinstance(kind.registry.open("options://", *kind.args), kind.options_class)


@pytest.mark.parametrize("url", ["", "memory", "/tmp/x.db", "localhost:5984", "://x", 42])
def test_not_a_url(kind: Kind, url: Any) -> None:
    with pytest.raises(kind.registry.errors.option):
        kind.registry.parse_url(url)


def test_parse_url(kind: Kind) -> None:
    name, parts = kind.registry.parse_url("CouchDB://user:p%40ss@host:5984/db?timeout=3")
    assert name == "couchdb"
    assert (parts.username, parts.password, parts.hostname, parts.port, parts.path) == (
        "user", "p%40ss", "host", 5984, "/db")


# --------------------------------------------------------------------------- options


def test_coerce_options_follows_annotations(kind: Kind) -> None:
    coerce = kind.registry.coerce_options
    got = coerce(kind.options_class, {"count": "7", "ratio": "2", "flag": "yes",
                                      "where": "/tmp/a", "name": "", "maybe": "",
                                      "items": "a, b,,c", "limit": "3"})
    assert got == {"count": 7, "ratio": 2.0, "flag": True, "where": Path("/tmp/a"),
                   "name": "", "maybe": "", "items": ("a", "b", "c"), "limit": 3}
    assert coerce(kind.options_class, {"where": "none", "maybe": "NULL", "limit": " None"}) == {
        "where": None, "maybe": None, "limit": None}
    assert coerce(kind.options_class, {"flag": " Off", "items": ""}) == {"flag": False,
                                                                        "items": ()}


@pytest.mark.parametrize(("raw", "message"), [
    ({"count": "x"}, "count: expected an integer"),
    ({"count": "2.5"}, "count: expected an integer"),
    ({"limit": ""}, "limit: expected an integer"),  # "" is not None
    ({"ratio": "many"}, "ratio: expected a number"),
    ({"ratio": "nan"}, "ratio: expected a finite number"),
    ({"ratio": "inf"}, "ratio: expected a finite number"),
    ({"ratio": "-Infinity"}, "ratio: expected a finite number"),
    ({"flag": "maybe"}, "flag: expected a boolean"),
    ({"flag": ""}, "flag: expected a boolean"),
    ({"table": "a=1"}, "table cannot be given in a URL"),
    ({"colour": "red"}, "unknown option 'colour' for the options"),
    ({"store": "x"}, "unknown option 'store'"),  # a source's store is not an option
])
def test_coerce_options_refuses(kind: Kind, raw: dict[str, str], message: str) -> None:
    with pytest.raises(kind.registry.errors.option, match=message):
        kind.registry.coerce_options(kind.options_class, raw)


def test_open_keywords_override_url(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    _with_options_plugin(monkeypatch, kind)
    opened = kind.registry.open("options://?count=3&flag=1&items=x,y", *kind.args, flag=False)
    assert isinstance(opened, kind.options_class)
    assert opened.options["count"] == 3 and opened.options["flag"] is False
    assert opened.options["items"] == ("x", "y") and opened.options["ratio"] == 0.5
    with pytest.raises(kind.registry.errors.option, match="given twice") as info:
        kind.registry.open("options://?count=3&count=4", *kind.args)
    assert "count=4" not in str(info.value)  # the URL (credentials) is not echoed
    with pytest.raises(kind.registry.errors.option, match="bad options"):
        kind.registry.open("options://", *kind.args, nonsense=1)
    with pytest.raises(kind.registry.errors.option, match="no host or path"):
        kind.registry.open("options://somewhere/else", *kind.args)
