"""The store backend registry and open_store (the rules shared with sources are
tested for both in ``test_plugins.py``)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from wmstats.backends.memory import MemoryStore
from wmstats.store import (
    BACKENDS,
    ENTRY_POINT_GROUP,
    KNOWN_PLUGINS,
    STORES,
    MissingBackendError,
    Store,
    StoreOptionError,
    UnknownBackendError,
    available_backends,
    coerce_options,
    load_backend,
    open_store,
    parse_store_url,
)


def test_builtins_are_read_only() -> None:
    assert dict(BACKENDS) == {"memory": "wmstats.backends.memory:MemoryStore"}
    assert dict(KNOWN_PLUGINS) == {"sqlite": "wmstats_sqlite", "couchdb": "wmstats_couchdb"}
    assert BACKENDS is STORES.builtins and KNOWN_PLUGINS is STORES.known
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


def test_public_functions_are_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = {"fake": importlib.metadata.EntryPoint("fake", "wmstats.backends.memory:MemoryStore",
                                                 ENTRY_POINT_GROUP)}
    monkeypatch.setattr(STORES, "_entry_points", lambda: eps)
    assert load_backend("fake") is MemoryStore
    assert available_backends() == {"fake": "wmstats.backends.memory:MemoryStore",
                                    "memory": "wmstats.backends.memory:MemoryStore"}
    assert isinstance(open_store("fake://?compress=false"), MemoryStore)
    assert parse_store_url("Fake://")[0] == "fake"
    assert coerce_options(MemoryStore, {"compress": "no"}) == {"compress": False}
    with pytest.raises(UnknownBackendError, match="fake, memory"):
        load_backend("redis")
    with pytest.raises(MissingBackendError, match="install wmstats_sqlite"):
        open_store("sqlite:///x.db")
    with pytest.raises(StoreOptionError, match="not a store backend URL"):
        open_store("memory")


def test_memory_url_takes_no_path() -> None:
    with pytest.raises(StoreOptionError, match="no host or path"):
        open_store("memory://somewhere/else")
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(), MemoryStore)
