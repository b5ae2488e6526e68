"""The backend registry and open_store."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from wmstats import store as store_module
from wmstats.backends.memory import MemoryStore
from wmstats.store import (
    BACKENDS,
    MissingBackendError,
    Store,
    StoreError,
    StoreOptionError,
    UnknownBackendError,
    available_backends,
    coerce_options,
    load_backend,
    open_store,
    parse_store_url,
)


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, **targets: str) -> None:
    eps = {name: importlib.metadata.EntryPoint(name, value, store_module.ENTRY_POINT_GROUP)
           for name, value in targets.items()}
    monkeypatch.setattr(store_module, "_entry_points", lambda: eps)


def test_builtins_are_read_only() -> None:
    assert dict(BACKENDS) == {"memory": "wmstats.backends.memory:MemoryStore"}
    with pytest.raises(TypeError):
        BACKENDS["evil"] = "os:system"  # type: ignore[index]


def test_load_builtin_and_plugins() -> None:
    assert load_backend("memory") is MemoryStore
    sqlite = load_backend("sqlite")
    assert sqlite.__name__ == "SqliteStore" and issubclass(sqlite, Store)
    assert {"memory", "sqlite", "couchdb"} <= set(available_backends())


def test_builtin_does_not_read_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: Any) -> Any:
        raise AssertionError("entry points read for a built-in backend")
    monkeypatch.setattr(importlib.metadata, "entry_points", boom)
    assert load_backend("memory") is MemoryStore
    assert isinstance(open_store("memory://"), MemoryStore)


def test_unknown_backend_lists_available(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, sqlite="wmstats_sqlite:SqliteStore")
    with pytest.raises(UnknownBackendError, match="memory, sqlite") as info:
        load_backend("redis")
    assert isinstance(info.value, LookupError)
    with pytest.raises(UnknownBackendError):
        open_store("redis://localhost/0")


def test_known_but_missing_plugin_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch)
    with pytest.raises(MissingBackendError, match="install wmstats_couchdb") as info:
        load_backend("couchdb")
    assert isinstance(info.value, ImportError)


def test_plugin_that_fails_to_import(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, broken="wmstats_no_such_module:Store")
    with pytest.raises(MissingBackendError, match="could not be imported"):
        load_backend("broken")


def test_plugin_that_is_not_a_store(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, odd="collections:OrderedDict")
    with pytest.raises(StoreError, match="not a Store subclass"):
        load_backend("odd")


def test_incomplete_backend_fails_when_built() -> None:
    class Incomplete(Store):
        def replace(self, bundles: Any, agents: Any = ()) -> str:
            return ""

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_import_does_no_work() -> None:
    code = textwrap.dedent("""
        import importlib.metadata, sys
        def boom(*a, **k):
            raise SystemExit("entry points read at import time")
        importlib.metadata.entry_points = boom
        import wmstats.store, wmstats.query, wmstats.stream
        assert "wmstats.backends.memory" not in sys.modules
        assert "wmstats_sqlite" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_parse_store_url() -> None:
    name, parts = parse_store_url("CouchDB://user:p%40ss@host:5984/db?timeout=3")
    assert name == "couchdb"
    assert (parts.username, parts.password, parts.hostname, parts.port, parts.path) == (
        "user", "p%40ss", "host", 5984, "/db")
    for bad in ("memory", "/tmp/x.db", "://x"):
        with pytest.raises(StoreOptionError):
            parse_store_url(bad)


class _Options(MemoryStore):
    backend = "options"

    def __init__(self, *, count: int = 1, ratio: float = 0.5, flag: bool = False,
                 where: Path | None = None, name: str = "x") -> None:
        super().__init__()
        self.options = (count, ratio, flag, where, name)


def test_coerce_options_follows_annotations() -> None:
    got = coerce_options(_Options, {"count": "7", "ratio": "2", "flag": "yes",
                                    "where": "/tmp/a", "name": "n"})
    assert got == {"count": 7, "ratio": 2.0, "flag": True, "where": Path("/tmp/a"),
                   "name": "n"}
    assert coerce_options(_Options, {"where": "none"}) == {"where": None}
    for bad, message in (({"count": "x"}, "count: expected an integer"),
                         ({"flag": "maybe"}, "flag: expected a boolean"),
                         ({"colour": "red"}, "unknown option 'colour'")):
        with pytest.raises(StoreOptionError, match=message):
            coerce_options(_Options, bad)


def test_open_store_keywords_override_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(store_module._BUILTIN, "options", f"{__name__}:_Options")
    opened = open_store("options://?count=3&flag=1", flag=False)
    assert isinstance(opened, _Options) and opened.options[:3] == (3, 0.5, False)
    with pytest.raises(StoreOptionError, match="twice"):
        open_store("options://?count=3&count=4")
    with pytest.raises(StoreOptionError, match="bad options"):
        open_store("options://", nonsense=1)


def test_memory_url_takes_no_path() -> None:
    with pytest.raises(StoreOptionError, match="no host or path"):
        open_store("memory://somewhere/else")
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(), MemoryStore)
