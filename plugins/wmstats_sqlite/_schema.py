"""The sqlite store's table layout: its version, the tables and indexes, and the
rows one bundle becomes (see :mod:`wmstats_sqlite` for what each table holds).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from wmstats.aggregates import AGGREGATES
from wmstats.query import SORT_SEPARATOR, field_specs
from wmstats.schema import COUNTER_FIELDS, Workflow, WorkflowBundle

__all__ = ["SCHEMA_VERSION", "MIGRATES_FROM", "INDEXED_FIELDS", "TEXT_FIELDS", "N_COUNTERS",
           "BATCH", "TEXT_FTS", "TEXT_CONTENT", "TEXT_TRIGRAMS", "TRIGRAM", "trigrams", "quote",
           "older", "Layout"]

#: Bumped when the table layout changes (see :mod:`wmstats_sqlite` for older files).
#: 3: ``site_sum`` keyed by aggregate.  4: the status history is a bundle part
#: (RequestTransition records), no longer a Workflow field.  5: the bundle blob holds
#: the ChainArgs and AgentRequest parts too.  6: Agent records have the heartbeat
#: details and derived status (schema 2.2); job records (``job_doc``).
#: 7: ``workflow_name_fts``.  8: ``workflow_doc.line`` (the record as the JSON text a
#: server writes, instead of positional JSON) and ``workflow_text_fts`` (trigrams of
#: the name, PrepID and datasets, instead of ``workflow_name_fts``).  9:
#: ``workflow_text_trigram`` (how many workflows hold each trigram, per text field).
SCHEMA_VERSION: Final = "9"
#: The layouts older files are brought to the current one from, when opened.
MIGRATES_FROM: Final = ("6", "7", "8")
#: Workflow columns with an ``(field, RequestName)`` index.
INDEXED_FIELDS: Final = (
    "RequestStatus", "RequestType", "SubRequestType", "Campaign", "Group", "Requestor",
    "PrepID", "CMSSWVersion", "InputDataset", "RequestPriority", "RequestDate",
    "StatusTime", "AgentUpdate",
)
#: Counter columns of ``site_sum`` (``c0``, ``c1``... in COUNTER_FIELDS order).
N_COUNTERS: Final = len(COUNTER_FIELDS)
#: The fields whose wildcards (``*text*``) read their candidates from the trigram
#: index :data:`TEXT_FTS` (one column each; tuple fields joined as in ``workflow``):
#: what operators search by (the UI's name search and text filters).
TEXT_FIELDS: Final = ("RequestName", "PrepID", "InputDataset", "OutputDatasets")
#: Rows per ``executemany``, names or rows per ``IN (...)`` list.
BATCH: Final = 500
#: The trigram index of :data:`TEXT_FIELDS` (rowid = ``workflow.row``): ``*text*``
#: searches on them read their candidates from it instead of testing every value.
TEXT_FTS: Final = "workflow_text_fts"
#: FTS5's own table of the values :data:`TEXT_FTS` indexes (``id`` = rowid, then
#: ``c0``, ``c1``... in :data:`TEXT_FIELDS` order): a narrow table to test
#: candidates against.
TEXT_CONTENT: Final = f"{TEXT_FTS}_content"
#: ``(field, term, docs)``: how many workflows hold each trigram (``term``) in each
#: text field (``field``: its position in :data:`TEXT_FIELDS`), so that a search
#: reads only the rarest trigrams of its pattern from :data:`TEXT_FTS`.
TEXT_TRIGRAMS: Final = "workflow_text_trigram"
#: The length of the terms of :data:`TEXT_FTS` (and of the shortest run of plain
#: characters of a pattern it can look up).
TRIGRAM: Final = 3


def trigrams(value: str) -> set[str]:
    """The terms of :data:`TEXT_FTS` that hold ``value`` (the trigram tokenizer's,
    case-sensitive: every run of 3 characters)."""
    return {value[i:i + TRIGRAM] for i in range(len(value) - TRIGRAM + 1)}


def _columns() -> tuple[str, ...]:
    """Workflow columns: every field that filters can name, in schema order."""
    return tuple(field_specs())


def quote(name: str) -> str:
    """A column or table name, quoted (keeps reserved words such as "Group" usable)."""
    # Only schema field and table names get here (validated by Filter/Query).
    assert name.isidentifier(), name
    return f'"{name}"'


def older(version: str) -> bool:
    """Whether a stored layout version is older than :data:`SCHEMA_VERSION`."""
    return version.isdigit() and int(version) < int(SCHEMA_VERSION)


class Layout:
    """The tables of one store: DDL, insert statements and row builders (built once
    per store, reading the schema and the aggregate table)."""

    def __init__(self) -> None:
        specs = field_specs()
        self.columns = _columns()
        self.many = tuple(name for name in self.columns if specs[name].many)
        self.field_ids = {name: i for i, name in enumerate(self.columns)}
        cols = ", ".join(quote(c) for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.insert_workflow = f"INSERT INTO workflow (row, {cols}) VALUES (?, {marks})"
        counters = ", ".join(f"c{i}" for i in range(N_COUNTERS))
        self.insert_sum = (f"INSERT INTO site_sum (row, agg, name, {counters}) "
                           f"VALUES (?, ?, ?, {', '.join('?' for _ in range(N_COUNTERS))})")
        #: (aggregate key, WorkflowSite field, Workflow field) of the aggregates
        #: that sum WorkflowSite records, read from the table when the store is made.
        self.site_sums = tuple((a.key, a.site_field, a.field) for a in AGGREGATES
                               if a.site_field is not None)
        self.site_sum_keys = ",".join(key for key, _site, _field in self.site_sums)
        col_defs = ", ".join(
            f"{quote(name)} {'TEXT' if specs[name].kind == 'str' else 'INTEGER'} NOT NULL"
            for name in self.columns)
        self.create_meta = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                            "value TEXT NOT NULL)")
        # Case-sensitive trigrams, as our globs are, with positions: a phrase is then
        # exactly a substring (Queries.condition); the values are kept in it too, a
        # narrow table to test candidates against.
        self.text_columns = ", ".join(quote(name) for name in TEXT_FIELDS)
        self.create_text_fts = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TEXT_FTS} USING "
                                f"fts5({self.text_columns}, "
                                f"tokenize='trigram case_sensitive 1')")
        self.insert_text = (f"INSERT INTO {TEXT_FTS} (rowid, {self.text_columns}) "
                            f"VALUES (?, {', '.join('?' for _ in TEXT_FIELDS)})")
        self.create_trigrams = (f"CREATE TABLE IF NOT EXISTS {TEXT_TRIGRAMS} (field INTEGER "
                                f"NOT NULL, term TEXT NOT NULL, docs INTEGER NOT NULL, "
                                f"PRIMARY KEY (field, term)) WITHOUT ROWID")
        self.create = [
            self.create_meta,
            f"CREATE TABLE IF NOT EXISTS workflow (row INTEGER PRIMARY KEY, {col_defs})",
            "CREATE UNIQUE INDEX IF NOT EXISTS workflow_name ON workflow (RequestName)",
            "CREATE TABLE IF NOT EXISTS workflow_value (field INTEGER NOT NULL, "
            "value NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (field, value, row)) "
            "WITHOUT ROWID",
            "DROP INDEX IF EXISTS workflow_value_row",
            "CREATE INDEX IF NOT EXISTS workflow_value_by_row ON workflow_value (row, field)",
            "CREATE TABLE IF NOT EXISTS workflow_doc (row INTEGER PRIMARY KEY, "
            "line BLOB NOT NULL, parts BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS site_sum (row INTEGER NOT NULL, agg TEXT NOT NULL, "
            f"name TEXT NOT NULL, "
            f"{', '.join(f'c{i} INTEGER NOT NULL' for i in range(N_COUNTERS))}, "
            f"PRIMARY KEY (row, agg, name)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS agent (url TEXT PRIMARY KEY, doc TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS source_entry (key TEXT PRIMARY KEY, "
            "grp TEXT NOT NULL, data BLOB NOT NULL)",
            "CREATE INDEX IF NOT EXISTS source_entry_by_group ON source_entry (grp)",
            self.create_text_fts,
            self.create_trigrams,
        ]
        self.indexes = [
            f"CREATE INDEX IF NOT EXISTS workflow_by_{name} ON workflow "
            f"({quote(name)}, RequestName)" for name in INDEXED_FIELDS
        ]
        self.drop_indexes = [f"DROP INDEX IF EXISTS workflow_by_{name}"
                             for name in INDEXED_FIELDS]

    def workflow_row(self, row: int, wf: Workflow) -> list[Any]:
        """The ``workflow`` row of a workflow (tuples joined, as they sort)."""
        values: list[Any] = [row]
        for name in self.columns:
            value = getattr(wf, name)
            if isinstance(value, tuple):
                value = SORT_SEPARATOR.join(value)
            values.append(value)
        return values

    @staticmethod
    def text_row(row: int, wf: Workflow) -> list[Any]:
        """The :data:`TEXT_FTS` row of a workflow (tuples joined, as in ``workflow``)."""
        values: list[Any] = [row]
        for name in TEXT_FIELDS:
            value = getattr(wf, name)
            values.append(SORT_SEPARATOR.join(value) if isinstance(value, tuple) else value)
        return values

    @staticmethod
    def trigram_terms(text: Sequence[str]) -> Iterator[tuple[int, str]]:
        """``(field, term)`` of each trigram the :data:`TEXT_FIELDS` values ``text``
        (as in :meth:`text_row`) hold: one workflow's share of :data:`TEXT_TRIGRAMS`."""
        for field, value in enumerate(text):
            for term in trigrams(value):
                yield field, term

    def value_rows(self, row: int, wf: Workflow) -> Iterator[tuple[int, str, int]]:
        """The ``workflow_value`` rows of a workflow: one per distinct tuple element."""
        for name in self.many:
            field_id = self.field_ids[name]
            for value in set(getattr(wf, name)):
                yield field_id, value, row

    def sum_rows(self, row: int, bundle: WorkflowBundle) -> list[list[Any]]:
        """Per aggregate of :attr:`site_sums`, the WorkflowSite counters summed per
        value; only for the values the workflow holds (a site in ``Workflow.Sites``,
        an agent in ``Workflow.Agents``: what :func:`wmstats.query.summarize` counts)."""
        if not self.site_sums or not bundle.sites:
            return []
        sums: dict[tuple[str, str], list[int]] = {}
        wf = bundle.workflow
        held = [(key, site_field, frozenset(getattr(wf, field)))
                for key, site_field, field in self.site_sums]
        for ws in bundle.sites:
            counts = [getattr(ws, name) for name in COUNTER_FIELDS]
            for key, site_field, values in held:
                value = getattr(ws, site_field)
                if value not in values:
                    continue
                acc = sums.get((key, value))
                if acc is None:
                    sums[key, value] = counts[:]
                else:
                    for i, count in enumerate(counts):
                        acc[i] += count
        return [[row, key, name, *counts] for (key, name), counts in sums.items()]
