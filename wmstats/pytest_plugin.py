"""pytest plugin: realistic WMStats data in one line, from the mock generator.

Installed with wmstats (entry point ``pytest11``), so any project's tests can
ask for these fixtures without importing anything::

    def test_my_poller(mock_documents):
        # ReqMgr2 request, agent_request and agent_info documents, as in CouchDB
        ...

    def test_my_view(mock_bundles):
        # static records: one WorkflowBundle per workflow
        ...

Override ``wmstats_seed`` or ``wmstats_workflows`` in a ``conftest.py`` to
change what is generated; ``wmstats_mock`` gives the generator itself.

``couchdb_server`` (session) and ``couchdb_database`` (a fresh database name,
deleted afterwards) give a real CouchDB-protocol server: the one at
``WMSTATS_COUCHDB_URL``, or a pouchdb-server started on a free loopback port
(installed by ``ci/install-pouchdb.sh``; with ``CI`` set a missing server fails
the test instead of skipping it).  They are defined in
:mod:`wmstats.testing.fixtures`, which only this plugin imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from wmstats.testing.fixtures import couchdb_database, couchdb_server

if TYPE_CHECKING:  # the generator is imported only when a fixture is used
    from wmstats.mock import MockGenerator
    from wmstats.schema import Agent, Workflow, WorkflowBundle

__all__ = [
    "couchdb_server",
    "couchdb_database",
    "wmstats_seed",
    "wmstats_workflows",
    "wmstats_mock",
    "mock_bundles",
    "mock_workflows",
    "mock_agents",
    "mock_documents",
]


@pytest.fixture
def wmstats_seed() -> int:
    """Seed of the mock generator (override to get other data)."""
    return 0


@pytest.fixture
def wmstats_workflows() -> int:
    """How many workflows the list fixtures hold (override to get more)."""
    return 50


@pytest.fixture
def wmstats_mock(wmstats_seed: int) -> MockGenerator:
    """The deterministic mock generator for ``wmstats_seed``."""
    from wmstats.mock import MockGenerator

    return MockGenerator(seed=wmstats_seed)


@pytest.fixture
def mock_bundles(wmstats_mock: MockGenerator, wmstats_workflows: int) -> list[WorkflowBundle]:
    """Static records of ``wmstats_workflows`` workflows, one bundle each."""
    return list(wmstats_mock.bundles(wmstats_workflows))


@pytest.fixture
def mock_workflows(mock_bundles: list[WorkflowBundle]) -> list[Workflow]:
    """The Workflow records of :func:`mock_bundles`."""
    return [b.workflow for b in mock_bundles]


@pytest.fixture
def mock_agents(wmstats_mock: MockGenerator) -> list[Agent]:
    """The Agent records of the mock agents."""
    return wmstats_mock.agents()


@pytest.fixture
def mock_documents(wmstats_mock: MockGenerator, wmstats_workflows: int) -> list[dict[str, Any]]:
    """WMCore documents for the same workflows as :func:`mock_bundles`: agent_info
    documents first, then each request document followed by its agent_request ones."""
    return list(wmstats_mock.iter_documents(wmstats_workflows))
