"""The sqlite store backend (``sqlite:///relative.db``, ``sqlite:////abs/path.db``).

Standard library :mod:`sqlite3`, one database file in WAL mode, so any number of
readers (threads or processes) read while one writer writes.

Tables:

``workflow``
    one row per workflow: ``row`` (integer key) and one column per scalar
    :class:`~wmstats.schema.Workflow` field; tuple fields hold their elements
    joined by ``"\\x1f"`` (their sort key).  Indexes ``(Field, RequestName)`` on
    the fields people filter and sort on (:data:`INDEXED_FIELDS`).
``workflow_value``
    one row per element of a tuple field: ``(field, value, row)``, the primary
    key, so "any element matches" filters are index lookups.
``workflow_doc``
    the workflow record as the JSON text a server writes (``line``: pages and
    streams are read from it, never decoded) and the bundle's other records (one
    blob, :mod:`wmstats.backends.codec`: sites, tasks, task-sites, datasets,
    parentage, status history, chain arguments, agent reports), read only for the page returned and by
    :meth:`SqliteStore.get_many`.
``site_sum``
    per workflow and per aggregate that sums WorkflowSite records (``site``,
    ``agent``: see :data:`wmstats.aggregates.AGGREGATES`), the workflow's
    WorkflowSite counters summed per value (``agg``, ``name``): what those
    aggregates add up.
``workflow_text_fts``
    an FTS5 trigram index of :data:`~wmstats_sqlite._schema.TEXT_FIELDS` (name,
    PrepID, input and output datasets; case-sensitive, rowid = ``workflow.row``):
    a wildcard on one of them with a run of 3 or more plain characters reads its
    candidates there instead of testing every value (layout 8); only for the
    rarest trigrams of its pattern, each candidate then tested against the
    index's own copy of the values (``workflow_text_fts_content``).
``workflow_text_trigram``
    how many workflows hold each trigram of ``workflow_text_fts``, per field:
    what picks the rarest trigrams of a pattern (layout 9; counted from the index
    by a replace, kept in step by every other write, or counted again after one
    that changes many).
``agent``, ``meta``
    agent records (JSON); the layout version, the snapshot id, the workflow
    count and the aggregates ``site_sum`` holds (when the aggregate table
    changes, ``site_sum`` is rebuilt from the stored records on opening).
``job_doc``
    each workflow's job records (one blob, :mod:`wmstats.backends.jobcodec`),
    made by the first job write; ``meta.jobs_snapshot`` is their id.

A file of layout 6, 7 or 8 is migrated when opened: 6 and 7 (positional JSON
records; 7 with a name-only index) have their records rewritten as JSON lines and
the text index built; the trigram counts are counted from the index.  A file of an older layout is opened but cannot be read:
:meth:`SqliteStore.replace` rebuilds it in the current layout.  A file of a newer
layout is refused.

Filters, sort, paging, distinct and aggregates are all SQL with bound
parameters (column names come only from the schema whitelist); regular
expressions go through a registered ``REGEXP`` function, wildcards through
``GLOB`` with ``[`` escaped (``REGEXP`` for a pattern with a NUL).  A
whole-snapshot replace runs in one transaction (indexes dropped, rows rewritten,
indexes rebuilt, ``ANALYZE``): a failure rolls back and the previous snapshot
stays as it was.

The package's parts: ``_schema`` (the layout: version, DDL, the rows a bundle
becomes), ``_writes`` (writes inside a transaction), ``_queries`` (reads: filters
as SQL, the statements of every read), ``_store`` (:class:`SqliteStore`:
connections and their page caches, transactions, count caches), ``_jobs`` (the job records).
"""

from wmstats_sqlite._schema import INDEXED_FIELDS, SCHEMA_VERSION
from wmstats_sqlite._store import SqliteStore

__all__ = ["SqliteStore", "INDEXED_FIELDS", "SCHEMA_VERSION"]
