"""Writes of the sqlite store, each inside the caller's write transaction: creating
and rebuilding the tables, inserting and deleting bundles and agents, and
publishing a new snapshot id.
"""

from __future__ import annotations

import collections
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Final

import ujson

from wmstats.backends.codec import (
    decode_bundle,
    decode_line,
    decode_workflow,
    encode_line,
    encode_parts,
    record_values,
)
from wmstats.schema import Agent, WorkflowBundle
from wmstats.serialize import json_dumps
from wmstats.store import Checkpoint, SourceEntry
from wmstats_sqlite._schema import (
    BATCH,
    SCHEMA_VERSION,
    TEXT_FIELDS,
    TEXT_FTS,
    TEXT_TRIGRAMS,
    Layout,
    quote,
)

__all__ = ["TrigramCounts", "new_id", "create", "drop_older", "migrate", "rebuild_site_sums",
           "rebuild_trigrams", "count_trigrams", "insert", "delete", "insert_agents",
           "keep_checkpoint", "drop_checkpoint", "write_entries", "finish"]

#: The text values (:data:`~wmstats_sqlite._schema.TEXT_FIELDS`, as the text
#: index holds them) a write has added (+1) and removed (-1): what :func:`insert`
#: and :func:`delete` collect, :func:`count_trigrams` turns into the changes of
#: :data:`~wmstats_sqlite._schema.TEXT_TRIGRAMS` (an update that keeps a
#: workflow's text cancels out before any trigram is counted).
TrigramCounts = collections.Counter[tuple[str, ...]]
#: :func:`count_trigrams` counts again from the index when more than 1/this of
#: the workflows have changed text (about where the two cost the same).
_RECOUNT: Final = 10


def new_id() -> str:
    """A new snapshot id."""
    return uuid.uuid4().hex


def create(con: sqlite3.Connection, layout: Layout, fresh: bool) -> None:
    """Create the tables (``fresh``: and the meta rows) of the current layout; bring
    ``site_sum`` up to the aggregate table."""
    for statement in (*layout.create, *layout.indexes):
        con.execute(statement)
    if fresh:
        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                        [("schema", SCHEMA_VERSION), ("snapshot", new_id()),
                         ("count", "0"), ("site_sums", layout.site_sum_keys)])
    con.execute("INSERT OR IGNORE INTO meta (key, value) SELECT 'next_row', "
                "COALESCE(MAX(row), 0) + 1 FROM workflow")
    stored = con.execute("SELECT value FROM meta WHERE key = 'site_sums'").fetchone()
    if stored is None or stored[0] != layout.site_sum_keys:
        rebuild_site_sums(con, layout)


def migrate(con: sqlite3.Connection, layout: Layout, version: str) -> None:
    """Bring a file of a layout of :data:`~wmstats_sqlite._schema.MIGRATES_FROM` to
    the current one: each stored record rewritten as its JSON line (layouts 6 and 7
    keep positional JSON in ``workflow_doc.doc``), and the text trigram index built
    from the stored values (it replaces layout 7's name index); the trigram counts
    counted from that index (layout 8 has the index, not the counts).  The
    snapshot id stays: the records are the same."""
    if version != "8":
        _text_index(con, layout)
    create(con, layout, fresh=False)
    rebuild_trigrams(con)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))


def _text_index(con: sqlite3.Connection, layout: Layout) -> None:
    """Layouts 6 and 7 to 8: records as JSON lines, the text trigram index."""
    con.execute("DROP TABLE IF EXISTS workflow_name_fts")
    con.execute("ALTER TABLE workflow_doc RENAME COLUMN doc TO line")
    last = 0
    while True:  # a batch at a time, in constant memory
        found = con.execute("SELECT row, line FROM workflow_doc WHERE row > ? ORDER BY row "
                            "LIMIT ?", (last, BATCH)).fetchall()
        if not found:
            break
        con.executemany("UPDATE workflow_doc SET line = ? WHERE row = ?",
                        [(encode_line(decode_workflow(doc)), row) for row, doc in found])
        last = found[-1][0]
    create(con, layout, fresh=False)
    con.execute(f"DELETE FROM {TEXT_FTS}")
    con.execute(f"INSERT INTO {TEXT_FTS} (rowid, {layout.text_columns}) "
                f"SELECT row, {layout.text_columns} FROM workflow")


def rebuild_trigrams(con: sqlite3.Connection) -> None:
    """Count :data:`~wmstats_sqlite._schema.TEXT_TRIGRAMS` again from the text
    index (FTS5's ``fts5vocab``: one pass over the index, in C), after a write that
    filled the index without counting."""
    con.execute(f"DELETE FROM {TEXT_TRIGRAMS}")
    con.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{TEXT_TRIGRAMS}_vocab USING "
                f"fts5vocab(main, {TEXT_FTS}, 'col')")
    try:
        fields = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(TEXT_FIELDS))
        con.execute(f"INSERT INTO {TEXT_TRIGRAMS} (field, term, docs) "
                    f"SELECT CASE col {fields} END, term, doc "
                    f"FROM temp.{TEXT_TRIGRAMS}_vocab")
    finally:
        con.execute(f"DROP TABLE temp.{TEXT_TRIGRAMS}_vocab")


def count_trigrams(con: sqlite3.Connection, counts: TrigramCounts) -> None:
    """Write the changes of the text values ``counts`` holds to
    :data:`~wmstats_sqlite._schema.TEXT_TRIGRAMS` (terms no workflow holds any more
    are dropped); when they are many (a tenth of the workflows or more) count
    every trigram again from the index instead (:func:`rebuild_trigrams`), which
    costs less than counting theirs here."""
    changed_text = [(text, n) for text, n in counts.items() if n]
    size = int(con.execute("SELECT value FROM meta WHERE key = 'count'").fetchone()[0])
    if len(changed_text) * _RECOUNT > size:
        rebuild_trigrams(con)
        return
    terms: collections.Counter[tuple[int, str]] = collections.Counter()
    for text, n in changed_text:
        for term in Layout.trigram_terms(text):
            terms[term] += n
    changed = [(field, term, n) for (field, term), n in terms.items() if n]
    con.executemany(f"INSERT INTO {TEXT_TRIGRAMS} (field, term, docs) VALUES (?, ?, ?) "
                    f"ON CONFLICT (field, term) DO UPDATE SET docs = docs + excluded.docs",
                    changed)
    con.executemany(f"DELETE FROM {TEXT_TRIGRAMS} WHERE field = ? AND term = ? AND docs <= 0",
                    [(field, term) for field, term, n in changed if n < 0])


def rebuild_site_sums(con: sqlite3.Connection, layout: Layout) -> None:
    """Recompute ``site_sum`` from the stored bundles (the aggregate table has
    changed since the file was written); a new snapshot id, as answers change."""
    con.execute("DELETE FROM site_sum")
    cursor = con.execute("SELECT row, line, parts FROM workflow_doc")
    while True:
        found = cursor.fetchmany(BATCH)
        if not found:
            break
        con.executemany(layout.insert_sum, [
            s for row, line, parts in found
            for s in layout.sum_rows(row, decode_bundle(decode_line(line), parts))])
    con.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [("site_sums", layout.site_sum_keys), ("snapshot", new_id())])


def drop_older(con: sqlite3.Connection, layout: Layout) -> None:
    """Drop every table of an older layout and create the current ones (nothing to
    do if the file already has the current layout)."""
    version = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if version is not None and version[0] == SCHEMA_VERSION:
        return
    # Virtual tables first: dropping one drops its shadow tables too.
    tables = [name for (name,) in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY sql NOT LIKE 'CREATE VIRTUAL%'")]
    for table in tables:
        con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    con.execute("DELETE FROM meta")
    create(con, layout, fresh=True)


def delete(con: sqlite3.Connection, names: Iterable[str],
           counts: TrigramCounts | None = None) -> None:
    """Delete the named workflows (unknown names are ignored).

    :param counts: where to take their trigrams off (``None``: the caller counts
        them again, :func:`rebuild_trigrams`).
    """
    params = [(name,) for name in names]
    if counts is not None:
        text = ", ".join(quote(name) for name in TEXT_FIELDS)
        for (name,) in params:
            for found in con.execute(f"SELECT {text} FROM workflow WHERE RequestName = ?",
                                     (name,)):
                counts[tuple(found)] -= 1
    for table in ("workflow_value", "workflow_doc", "site_sum"):
        con.executemany(f"DELETE FROM {table} WHERE row IN "
                        f"(SELECT row FROM workflow WHERE RequestName = ?)", params)
    con.executemany(f"DELETE FROM {TEXT_FTS} WHERE rowid IN "
                    f"(SELECT row FROM workflow WHERE RequestName = ?)", params)
    con.executemany("DELETE FROM workflow WHERE RequestName = ?", params)


def insert(con: sqlite3.Connection, layout: Layout, bundles: Iterable[WorkflowBundle], *,
           compress: bool, counts: TrigramCounts | None = None) -> None:
    """Insert bundles under new row numbers (a second bundle of one name wins), in
    constant memory: a batch at a time.

    Row numbers come from a counter that never goes back (``meta.next_row``), so
    one row number always stands for the same content: the store's decoded
    workflow cache is keyed by it.

    :param compress: zlib-compress the part blobs.
    :param counts: where to count the trigrams of the workflows written and
        replaced (``None``: the caller counts them again, :func:`rebuild_trigrams`).
    """
    next_row = int(con.execute("SELECT value FROM meta WHERE key = 'next_row'")
                   .fetchone()[0])
    #: name -> (row, bundle) of the batch; a later bundle of a name replaces the earlier
    batch: dict[str, tuple[int, WorkflowBundle]] = {}

    def flush() -> None:
        names = list(batch)
        marks = ", ".join("?" for _ in names)
        # Names written by an earlier batch of this write (or before it): the later wins.
        delete(con, [name for (name,) in con.execute(
            f"SELECT RequestName FROM workflow WHERE RequestName IN ({marks})", names)],
            counts)
        rows = list(batch.values())
        con.executemany(layout.insert_workflow,
                        [layout.workflow_row(row, b.workflow) for row, b in rows])
        text = [layout.text_row(row, b.workflow) for row, b in rows]
        con.executemany(layout.insert_text, text)
        if counts is not None:
            for values in text:
                counts[tuple(values[1:])] += 1
        con.executemany("INSERT INTO workflow_value (field, value, row) VALUES (?, ?, ?)",
                        [v for row, b in rows for v in layout.value_rows(row, b.workflow)])
        con.executemany("INSERT INTO workflow_doc (row, line, parts) VALUES (?, ?, ?)",
                        [(row, encode_line(b.workflow),
                          encode_parts(b, compress=compress)) for row, b in rows])
        con.executemany(layout.insert_sum,
                        [s for row, b in rows for s in layout.sum_rows(row, b)])
        batch.clear()

    for bundle in bundles:
        name = bundle.workflow.RequestName
        batch.pop(name, None)
        batch[name] = (next_row, bundle)
        next_row += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    con.execute("UPDATE meta SET value = ? WHERE key = 'next_row'", (str(next_row),))


def insert_agents(con: sqlite3.Connection, agents: Iterable[Agent]) -> None:
    """Insert or replace agent records."""
    con.executemany("INSERT OR REPLACE INTO agent (url, doc) VALUES (?, ?)",
                    ((a.AgentURL, json_dumps(record_values(a))) for a in agents))


def keep_checkpoint(con: sqlite3.Connection, checkpoint: Checkpoint) -> None:
    """Keep a source's checkpoint with the snapshot being written."""
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint', ?)",
                (ujson.dumps({"source": checkpoint.source,
                              "sequences": dict(checkpoint.sequences)}),))


def drop_checkpoint(con: sqlite3.Connection) -> None:
    """Forget the checkpoint and the source's entries (a write that is not the source's)."""
    if con.execute("DELETE FROM meta WHERE key = 'checkpoint'").rowcount:
        con.execute("DELETE FROM source_entry")


def write_entries(con: sqlite3.Connection, entries: Iterable[SourceEntry],
                  deleted: Iterable[str] = ()) -> None:
    """Insert or replace a source's entries (by key), then delete those keyed ``deleted``."""
    batch: list[tuple[str, str, bytes]] = []
    statement = "INSERT OR REPLACE INTO source_entry (key, grp, data) VALUES (?, ?, ?)"
    for entry in entries:
        batch.append((entry.key, entry.group, entry.data))
        if len(batch) >= BATCH:
            con.executemany(statement, batch)
            batch.clear()
    con.executemany(statement, batch)
    con.executemany("DELETE FROM source_entry WHERE key = ?", [(key,) for key in deleted])


def finish(con: sqlite3.Connection) -> str:
    """Publish the write: a new snapshot id and the workflow count.

    :returns: the new snapshot id.
    """
    sid = new_id()
    count = con.execute("SELECT COUNT(*) FROM workflow").fetchone()[0]
    con.executemany("UPDATE meta SET value = ? WHERE key = ?",
                    [(sid, "snapshot"), (str(count), "count")])
    return sid
