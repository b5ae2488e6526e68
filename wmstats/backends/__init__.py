"""Built-in store backends.

Only :mod:`wmstats.backends.memory` is built in; the sqlite and CouchDB backends
are plugins (``plugins/``) found through the ``wmstats.backends`` entry points
(see :mod:`wmstats.store`).  :mod:`wmstats.backends.codec` is the compact record
encoding the backends share.
"""

__all__: list[str] = []
