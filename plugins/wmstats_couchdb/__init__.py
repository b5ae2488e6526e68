"""wmstats storage backend and data source for CouchDB (plugin).

* :class:`CouchStore` -- the store backend (entry point ``couchdb`` in
  ``wmstats.backends``): ``open_store("couchdb://user:password@host:5984/wmstats")``
  or ``CouchStore("wmstats", host=..., port=...)``;
* :class:`~wmstats_couchdb.source.CouchSource` -- the data source that keeps a
  store filled from WMCore's CouchDB (entry point ``couchdb`` in
  ``wmstats.sources``);
* :mod:`wmstats_couchdb.seed` -- the ``wmstats couch-seed`` command (entry point
  in ``wmstats.commands``) and :func:`~wmstats_couchdb.seed.seed_couchdb`;
* :class:`CouchClient` (JSON requests to one server), :func:`split_server_url`,
  :func:`redact` and :class:`SourceState` (the documents read so far, converted
  the way the source does it) for tools such as the benchmarks.
"""

from wmstats_couchdb._http import (
           CouchClient,
           CouchError,
           quote,
           redact,
           split_server_url,
)
from wmstats_couchdb._state import SourceState
from wmstats_couchdb.store import CouchStore

__all__ = ["CouchStore", "CouchError", "CouchClient", "SourceState", "quote", "redact",
           "split_server_url"]
