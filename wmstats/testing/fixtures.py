"""pytest fixtures of the test kit (registered by :mod:`wmstats.pytest_plugin`).

* ``couchdb_server`` (session): a running CouchDB-compatible server
  (:class:`~wmstats.testing.couchdb_server.CouchServer`): the one at
  ``$WMSTATS_COUCHDB_URL``, or a pouchdb-server started on a free loopback port;
* ``couchdb_database`` (function): a
  :class:`~wmstats.testing.couchdb_server.CouchDatabase` with a fresh, unused
  database name; every database whose name starts with it is deleted afterwards.

When no server can be found or started the fixtures fail if ``$CI`` is set (a
CI run must never skip silently) and skip with the install command otherwise;
:func:`require_pouchdb_bin` does the same for tests that start their own
:class:`~wmstats.testing.couchdb_server.PouchServer`.

This is the test kit's only module with pytest fixtures; the launcher
(:mod:`wmstats.testing.couchdb_server`) needs no pytest.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from wmstats.testing.couchdb_server import (
    CouchDatabase,
    CouchServer,
    CouchServerError,
    find_pouchdb_bin,
    in_ci,
    server_from_environment,
)

__all__ = ["couchdb_server", "couchdb_database", "require_pouchdb_bin", "unavailable"]


def unavailable(what: str, message: str) -> NoReturn:
    """Fail the test when ``$CI`` is set, else skip it: ``what`` cannot be had here.

    :param what: the missing service (``"CouchDB test server"``).
    :param message: why, and how to install it.
    """
    if in_ci():
        pytest.fail(f"{what} unavailable (CI is set, so this fails instead of skipping): "
                    f"{message}", pytrace=False)
    pytest.skip(f"{what} unavailable: {message}")


def require_pouchdb_bin() -> Path:
    """:func:`~wmstats.testing.couchdb_server.find_pouchdb_bin` for tests: fails
    when ``CI`` is set, skips otherwise."""
    try:
        return find_pouchdb_bin()
    except CouchServerError as exc:
        unavailable("CouchDB test server", str(exc))


@pytest.fixture(scope="session")
def couchdb_server() -> Iterator[CouchServer]:
    """A running CouchDB-compatible server for the whole test session."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(server_from_environment())
        except CouchServerError as exc:
            unavailable("CouchDB test server", str(exc))
        yield server


@pytest.fixture
def couchdb_database(couchdb_server: CouchServer) -> Iterator[CouchDatabase]:
    """A fresh database name on :func:`couchdb_server`; deleted (with every
    database whose name starts with it) after the test."""
    database = CouchDatabase(couchdb_server, "wmstats_test_" + uuid.uuid4().hex[:16])
    try:
        yield database
    finally:
        database.delete_all()
