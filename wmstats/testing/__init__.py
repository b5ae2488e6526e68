"""Test helpers shipped with wmstats.

* :mod:`wmstats.testing.store_suite` -- the store conformance suite
  (:class:`~wmstats.testing.store_suite.StoreSuite`) every backend's tests subclass;
* :mod:`wmstats.testing.data` -- small hand-shaped data sets for those tests;
* :mod:`wmstats.testing.couchdb_server` -- a CouchDB-compatible server for tests.

Nothing here is imported by ``import wmstats.testing`` itself, so importing the
package does not require pytest.
"""

__all__: list[str] = []
