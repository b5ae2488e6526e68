"""The test kit shipped with wmstats.

* :mod:`wmstats.testing.store_suite` -- the store conformance suite
  (:class:`~wmstats.testing.store_suite.StoreSuite`) every backend's tests subclass;
* :mod:`wmstats.testing.data` -- small hand-shaped data sets for those tests;
* :mod:`wmstats.testing.couchdb_server` -- start and stop a CouchDB-compatible
  server (pouchdb-server); needs no pytest, so the benchmarks use it too;
* :mod:`wmstats.testing.ui_harness` -- a cache and a UI server in this process,
  and the system Chromium driven through Playwright (tests and ``wmstats bench ui``);
* :mod:`wmstats.testing.fixtures` -- the pytest fixtures ``couchdb_server`` and
  ``couchdb_database`` (registered by :mod:`wmstats.pytest_plugin`).

Runtime code (the core, the backends, the sources, the web apps) never imports
this package; nothing is imported by ``import wmstats.testing`` itself, so
importing the package does not require pytest.
"""

__all__: list[str] = []
