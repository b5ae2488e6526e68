"""wmstats storage backend for CouchDB (plugin; entry point ``couchdb``).

``open_store("couchdb://user:password@host:5984/wmstats")`` or
``CouchStore("wmstats", host=..., port=...)``; see :class:`CouchStore`.
"""

from wmstats_couchdb._http import CouchError
from wmstats_couchdb.store import CouchStore

__all__ = ["CouchStore", "CouchError"]
