"""Reads of the sqlite store: filters, sort and paging as SQL, and the statements
behind every read (each runs on a connection the caller holds a read transaction
on; caching is the store's).

Every statement binds its values as parameters; column names come only from the
schema (:class:`~wmstats_sqlite._schema.Layout`).  Regular expressions go through
the ``REGEXP`` function (:func:`regexp`: RE2, as on every backend; registered on
each connection), wildcards through ``GLOB`` with ``[`` escaped (sqlite's GLOB
gives up on a ``*`` once the rest of the pattern cannot match the rest of the
value, so it never backtracks into exponential time; a pattern with a NUL, which
ends a GLOB pattern, as an anchored RE2 expression: :func:`glob_test`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import ujson

from wmstats.aggregates import Aggregate
from wmstats.backends.codec import decode_bundle, decode_line, record_from_values
from wmstats.query import (
    SORT_SEPARATOR,
    Filter,
    Query,
    Scalar,
    compile_regex,
    field_specs,
    make_summary,
)
from wmstats.schema import COUNTER_FIELDS, Agent, Summary, WorkflowBundle
from wmstats.serialize import json_bytes, json_loads_stored
from wmstats_sqlite._schema import (
    BATCH,
    INDEXED_FIELDS,
    N_COUNTERS,
    TEXT_CONTENT,
    TEXT_FIELDS,
    TEXT_FTS,
    TEXT_TRIGRAMS,
    Layout,
    quote,
    trigrams,
)

__all__ = ["ANY_DRIVER", "regexp", "glob_test", "text_terms", "rarest_terms", "text_match",
           "whole_value_glob", "project_lines", "Queries"]

#: :meth:`Queries.where`: let sqlite pick the filter that drives the query.
ANY_DRIVER: Final = object()


def regexp(pattern: str, value: object) -> bool:
    """sqlite's ``REGEXP``: the same RE2 search as every other backend
    (:func:`wmstats.query.compile_regex`, unanchored, linear time)."""
    return value is not None and compile_regex(pattern)(str(value))


def _glob(pattern: str) -> str:
    """Our glob (only ``*`` and ``?`` special) as an sqlite GLOB pattern."""
    return pattern.replace("[", "[[]")


def glob_test(column: str, pattern: str) -> tuple[str, list[Any]]:
    """SQL testing ``column`` against our glob ``pattern``: sqlite's ``GLOB``, or
    for a pattern with a NUL (which ends a pattern for ``GLOB``) the same glob as
    an anchored RE2 expression (``REGEXP``)."""
    if "\0" not in pattern:
        return f"{column} GLOB ?", [_glob(pattern)]
    body = "".join(".*" if char == "*" else "." if char == "?" else
                   char if char.isalnum() else f"\\x{{{ord(char):x}}}" for char in pattern)
    return f"{column} REGEXP ?", [f"\\A(?s:{body})\\z"]


#: At most this many trigrams of a pattern are read from the text index.
_MAX_TERMS: Final = 3
#: A trigram besides the rarest is read when at most this many times as many
#: workflows hold it: reading its postings costs less than testing the candidates
#: it would rule out.
_TERM_SPREAD: Final = 2


#: A glob on a text field tested per row tests membership of its trigram
#: candidates first when there are fewer than this many times the rows tested
#: (reading one from the index costs less than a tenth of testing a value).
_PRETEST: Final = 16
#: Testing a candidate's value costs about this many times as much as reading one
#: posting of the trigram index.
_VERIFY: Final = 16
#: With other filters, a glob on a text field whose rarest trigram is held by more
#: than 1/this of the workflows does not drive the query from the trigram index.
_SELECTIVE: Final = 8
#: An entry of an index walked and tested there costs this many times less than a
#: row read (by rowid) and sorted.
_CHEAP_WALK: Final = 16
#: At most this many values of an ``eq`` filter are merged as ordered index
#: ranges (:meth:`Queries.page_rows`).
_MAX_ARMS: Final = 32


def text_terms(pattern: str) -> list[str]:
    """The trigrams of a glob's runs of plain characters (every value it matches
    holds each of them), in the order they first appear; none when no run is 3
    characters long."""
    terms: dict[str, None] = {}
    for run in pattern.replace("?", "*").split("*"):
        for term in sorted(trigrams(run), key=run.index):
            if "\0" not in term:  # FTS5 reads a query up to its first NUL
                terms[term] = None
    return list(terms)


def rarest_terms(terms: Sequence[str], docs: Mapping[str, int]) -> list[str]:
    """The trigrams to read from the index: the rarest (a term ``docs`` does not
    know is held by no workflow), and those at most :data:`_TERM_SPREAD` times as
    common, :data:`_MAX_TERMS` at most."""
    ranked = sorted(terms, key=lambda term: docs.get(term, 0))
    fewest = docs.get(ranked[0], 0)
    return [term for term in ranked[:_MAX_TERMS] if docs.get(term, 0) <= _TERM_SPREAD * fewest
            or term == ranked[0]]


def text_match(field: str, terms: Iterable[str]) -> str:
    """The FTS5 query of the rows whose ``field`` holds every trigram of ``terms``
    (each one a quoted phrase: nothing in it is FTS5 syntax)."""
    return "{" + field + "} : (" + " AND ".join(
        '"' + term.replace('"', '""') + '"' for term in terms) + ")"


def whole_value_glob(field: str, pattern: str) -> bool:
    """Whether a glob on ``field`` is the glob of its stored value (as
    :data:`TEXT_CONTENT` holds it): a scalar's, or ``*text*`` on a tuple field
    joined by ``SORT_SEPARATOR`` (text without ``?`` or the separator is in the
    joined value exactly when it is in one element)."""
    if not field_specs()[field].many:
        return True
    core = pattern[1:-1]
    return (len(pattern) >= 2 and pattern[0] == pattern[-1] == "*" and "*" not in core
            and "?" not in core and SORT_SEPARATOR not in core)


def project_lines(lines: Iterable[bytes], fields: Sequence[str] | None) -> list[bytes]:
    """Stored JSON lines (:func:`wmstats.backends.codec.encode_line`) with a field
    mask applied (as they are without one)."""
    if fields is None:
        return list(lines)
    names = tuple(dict.fromkeys(fields))
    out = []
    for line in lines:
        values = json_loads_stored(line)
        out.append(json_bytes({name: values[name] for name in names}))
    return out


class Queries:
    """The SQL of queries over one store's :class:`~wmstats_sqlite._schema.Layout`."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.sum_columns = ", ".join(f"SUM(s.c{i})" for i in range(N_COUNTERS))
        self.workflow_sums = ", ".join(f"SUM(w.{quote(c)})" for c in COUNTER_FIELDS)

    # ------------------------------------------------------------------ filters

    def condition(self, con: sqlite3.Connection, flt: Filter, drive: bool = True,
                  text_index: bool = True, tested: int = 0) -> tuple[str, list[Any]]:
        """SQL for one filter on the workflow table aliased ``w``.

        :param drive: whether sqlite may drive the query from this filter's index.
            ``False`` writes it as a per-row test instead (a unary ``+`` on the
            column; an ``EXISTS`` probe of the primary key for tuple fields).
        :param text_index: whether a glob on a text field may read its candidates
            from the trigram index (else, driving, it is a ``GLOB`` on the column:
            a prefix narrows a walk of the column's own index).
        :param tested: about how many rows a per-row test runs on: a glob on a
            text field whose candidates are not many more (:data:`_PRETEST`) tests
            a row's membership of them first, a lookup in a set read once from the
            trigram index, before the test of its value.
        """
        spec = flt.spec
        if not drive and tested and flt.field in TEXT_FIELDS and flt.op == "glob":
            rows, params, fewest = self.text_rows(con, flt)
            if rows is not None and fewest < _PRETEST * tested:
                test, more = self.condition(con, flt, drive=False)
                return f"+w.row IN ({rows}) AND ({test})", [*params, *more]
        if drive and text_index and flt.field in TEXT_FIELDS and flt.op == "glob":
            found = self.text_candidates(con, flt)
            if found is not None:
                sql, params, exact = found
                if exact:
                    return sql, params
                test, more = self.condition(con, flt, drive=False)
                return f"({sql}) AND ({test})", [*params, *more]
        if spec.many:
            inner, params = self._value_condition("v.value", flt)
            params = [self.layout.field_ids[flt.field], *params]
            if drive:
                return (f"w.row IN (SELECT v.row FROM workflow_value v WHERE v.field = ? "
                        f"AND ({inner}))", params)
            return (f"EXISTS (SELECT 1 FROM workflow_value v WHERE v.field = ? "
                    f"AND v.row = w.row AND ({inner}))", params)
        return self._value_condition(f"{'' if drive else '+'}w.{quote(flt.field)}", flt)

    @staticmethod
    def trigram_docs(con: sqlite3.Connection, field: str, terms: Sequence[str]
                     ) -> dict[str, int]:
        """How many workflows hold each of ``terms`` in ``field`` (a text field),
        for those some workflow holds."""
        docs: dict[str, int] = {}
        number = TEXT_FIELDS.index(field)
        for start in range(0, len(terms), BATCH):
            chunk = terms[start:start + BATCH]
            docs.update(con.execute(
                f"SELECT term, docs FROM {TEXT_TRIGRAMS} WHERE field = ? AND term IN "
                f"({', '.join('?' for _ in chunk)})", [number, *chunk]))
        return docs

    def text_candidates(self, con: sqlite3.Connection, flt: Filter, column: str = "w.row"
                        ) -> tuple[str, list[Any], bool] | None:
        """A glob on a text field as rows of the text trigram index: the SQL (``column
        IN (...)``), its parameters, and whether they are exactly the matching rows
        (else a superset, to test); ``None`` when a pattern has no run of 3 plain
        characters (every row would be a candidate).

        The index is read for the rarest trigrams of each pattern only
        (:func:`rarest_terms`, counted in :data:`TEXT_TRIGRAMS`): a common
        trigram's postings are most of the index.  Their rows are candidates, each
        tested by a ``GLOB`` of its value in :data:`TEXT_CONTENT` (exact when
        :func:`whole_value_glob`); or ``*text*`` whose trigrams are all common
        is read as the phrase ``text`` (:meth:`_text_match`)."""
        parts: list[str] = []
        params: list[Any] = []
        all_exact = True
        number = TEXT_FIELDS.index(flt.field)
        for value in flt.values:
            pattern = str(value)
            found = self._text_match(con, flt.field, pattern)
            if found is None:
                return None
            match, _fewest, phrase = found
            rows = f"SELECT rowid FROM {TEXT_FTS} WHERE {TEXT_FTS} MATCH ?"
            if phrase is not None:
                parts.append(f"{column} IN ({rows})")
                params.append(phrase)
            elif whole_value_glob(flt.field, pattern):
                test, more = glob_test(f"c.c{number}", pattern)
                parts.append(f"{column} IN (SELECT c.id FROM {TEXT_CONTENT} c WHERE c.id IN "
                             f"({rows}) AND {test})")
                params += [match, *more]
            else:
                parts.append(f"{column} IN ({rows})")
                params.append(match)
                all_exact = False
        return " OR ".join(parts), params, all_exact

    def text_rows(self, con: sqlite3.Connection, flt: Filter
                  ) -> tuple[str | None, list[Any], int]:
        """The rows of the trigram index that hold the rarest trigrams of each
        pattern of a glob on a text field (a superset of its matches): a ``SELECT``
        (``None`` when a pattern has no run of 3 plain characters), its
        parameters, and how many rows it finds at most (by :data:`TEXT_TRIGRAMS`)."""
        matches: list[str] = []
        most = 0
        for value in flt.values:
            found = self._text_match(con, flt.field, str(value))
            if found is None:
                return None, [], 0
            matches.append(found[0])
            most += found[1]
        rows = " UNION ALL ".join(f"SELECT rowid FROM {TEXT_FTS} WHERE {TEXT_FTS} MATCH ?"
                                  for _ in matches)
        return rows, matches, most

    def _text_match(self, con: sqlite3.Connection, field: str, pattern: str
                    ) -> tuple[str, int, str | None] | None:
        """The FTS5 query of a pattern's rarest trigrams (:func:`rarest_terms`), how
        many rows hold the rarest, and for ``*text*`` whose trigrams are all
        common the query of the phrase ``text`` instead (exactly its matches: a
        phrase of trigrams is a substring; reading every trigram's postings then
        costs less than testing the rarest one's rows, :data:`_VERIFY`);
        ``None`` when it has no trigram."""
        terms = text_terms(pattern)
        if not terms:
            return None
        docs = self.trigram_docs(con, field, terms)
        chosen = rarest_terms(terms, docs)
        fewest = docs.get(chosen[0], 0)
        run = pattern[1:-1]
        phrase = None
        if (len(pattern) > 2 and pattern == f"*{run}*" and not set(run) & {"*", "?", "\0"}
                and whole_value_glob(field, pattern)
                and sum(docs.get(term, 0) for term in terms) < _VERIFY * fewest):
            phrase = "{" + field + '} : ("' + run.replace('"', '""') + '")'
        return text_match(field, chosen), fewest, phrase

    @staticmethod
    def _value_condition(column: str, flt: Filter) -> tuple[str, list[Any]]:
        values = list(flt.values)
        if flt.op == "eq":
            if len(values) == 1:
                return f"{column} = ?", values
            return f"{column} IN ({', '.join('?' for _ in values)})", values
        if flt.op == "glob":
            tests = [glob_test(column, str(value)) for value in values]
            return (" OR ".join(sql for sql, _ in tests),
                    [param for _, more in tests for param in more])
        if flt.op == "re":
            return " OR ".join(f"{column} REGEXP ?" for _ in values), values
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[flt.op]
        return f"{column} {symbol} ?", values

    def where(self, con: sqlite3.Connection, filters: Sequence[Filter],
              driver: Filter | None | object = ANY_DRIVER,
              sort_field: str = "", tested: int = 0, size: int = 0) -> tuple[str, list[Any]]:
        """The WHERE clause of the filters (AND).

        :param driver: the one filter whose index may drive the query; ``None``
            for none (walk the sort order); :data:`ANY_DRIVER` to let sqlite choose.
        :param sort_field: filters on this field stay indexable (they narrow the
            walk of the sort order's own index; a wildcard as a ``GLOB`` of the
            column, not from the trigram index).
        :param tested: about how many rows the per-row tests run on
            (:meth:`condition`).
        :param size: how many workflows there are: with other filters, a text glob
            that is not selective (:data:`_SELECTIVE`) is a ``GLOB`` of its column,
            so that sqlite drives the query from another filter's index.
        """
        if not filters:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        driver_field = driver.field if isinstance(driver, Filter) else None
        for flt in filters:
            chosen = driver is ANY_DRIVER or flt is driver or flt.field == driver_field
            text_index = chosen and not (
                size and len(filters) > 1 and driver is ANY_DRIVER and flt.op == "glob"
                and flt.field in TEXT_FIELDS
                and self.text_rows(con, flt)[2] * _SELECTIVE > size)
            sql, values = self.condition(con, flt, chosen or flt.field == sort_field,
                                         text_index=text_index, tested=tested)
            parts.append(f"({sql})")
            params.extend(values)
        return " WHERE " + " AND ".join(parts), params

    @staticmethod
    def ordered_by_index(query: Query) -> bool:
        """Whether an index holds the query's order (one field, then RequestName,
        both in one direction)."""
        spec = query.sort_spec()
        if spec[0][0] == "RequestName":
            return True
        return (len(spec) == 2 and spec[0][0] in INDEXED_FIELDS and spec[1][0] == "RequestName"
                and spec[0][1] == spec[1][1])

    @staticmethod
    def order_by(query: Query) -> str:
        """The ORDER BY clause of the query's sort (with its tie-break)."""
        return " ORDER BY " + ", ".join(
            f"w.{quote(name)} {'DESC' if direction == 'desc' else 'ASC'}"
            for name, direction in query.sort_spec())

    # ------------------------------------------------------------------ reads

    def count(self, con: sqlite3.Connection, filters: Sequence[Filter], size: int = 0) -> int:
        """How many workflows match every filter (of ``size`` workflows, when known:
        :meth:`where`)."""
        if len(filters) == 1 and filters[0].field in TEXT_FIELDS and filters[0].op == "glob":
            # Every workflow is in the trigram index: count there, without the table.
            found = self.text_candidates(con, filters[0], "t.id")
            if found is not None and found[2]:
                total: int = con.execute(
                    f"SELECT COUNT(*) FROM {TEXT_CONTENT} t WHERE {found[0]}",
                    found[1]).fetchone()[0]
                return total
        where, params = self.where(con, filters, size=size)
        counted: int = con.execute(f"SELECT COUNT(*) FROM workflow w{where}",
                                   params).fetchone()[0]
        return counted

    def page_rows(self, con: sqlite3.Connection, query: Query, total: int, count: int,
                  count_of: Callable[[Filter], int]) -> list[int]:
        """The rows of the query's page, in order.

        :param total: how many workflows match the query.
        :param count: how many workflows there are.
        :param count_of: how many match one filter (the store remembers them).
        """
        limit = -1 if query.limit is None else query.limit
        # When many rows match, walking the sort order's index and testing each row
        # finds the page sooner than sorting every match: steer sqlite to it.
        # Otherwise let the most selective filter drive, and test the others per row.
        wanted = query.idx + (total if query.limit is None else query.limit)
        driver: Filter | None | object = ANY_DRIVER
        spec = query.sort_spec()
        # Rows walked (or read from the driver) to find the page, about.
        walked = wanted * count // max(total, 1)
        tested = 0
        if self.ordered_by_index(query) and (
                total * total > wanted * count
                or self._cheap_walk(con, query.filters, spec[0][0], walked, total, count_of)):
            driver = None
            tested = walked
        elif len(query.filters) > 1:
            driver = min(query.filters, key=count_of)
            tested = count_of(driver)
        # Several values of an indexed field, in name order: each value's range of
        # its (field, RequestName) index is in that order already, and merging them
        # reads about wanted * matches of the field / total entries, no sort.
        spec = query.sort_spec()
        merged = [flt for flt in query.filters
                  if flt.op == "eq" and flt.field in INDEXED_FIELDS
                  and 2 <= len(set(flt.values)) <= _MAX_ARMS] if spec[0][0] == "RequestName" else []
        if merged:
            merge = min(merged, key=count_of)
            if driver is None or wanted * count_of(merge) < total * (tested or total):
                return self._merged_rows(con, query, merge, limit,
                                         wanted * count_of(merge) // max(total, 1))
        if driver is not None and spec[0][0] == "RequestName":
            found = self._text_page(con, query, limit)
            if found is not None:
                return found
        where, params = self.where(con, query.filters, driver, spec[0][0], tested, count)
        return [r for (r,) in con.execute(
            f"SELECT w.row FROM workflow w{where}{self.order_by(query)} LIMIT ? OFFSET ?",
            [*params, limit, query.idx])]

    @staticmethod
    def name_rows(con: sqlite3.Connection, descending: bool, bound: str | None, offset: int,
                  limit: int) -> list[int]:
        """The rows of a page of every workflow in name order that starts ``offset``
        names after ``bound`` (:meth:`wmstats_sqlite._ranks.RankMarks.seek`: names
        ``>=`` it ascending, ``<`` it descending; ``None``: from the first name)."""
        direction, compare = ("DESC", "<") if descending else ("ASC", ">=")
        where, params = ("", []) if bound is None else (f" WHERE w.RequestName {compare} ?",
                                                        [bound])
        return [r for (r,) in con.execute(
            f"SELECT w.row FROM workflow w{where} ORDER BY w.RequestName {direction} "
            f"LIMIT ? OFFSET ?", [*params, limit, offset])]

    def _text_page(self, con: sqlite3.Connection, query: Query, limit: int
                   ) -> list[int] | None:
        """The rows of a page sorted by name whose filters are all text globs with
        exact candidates, read from the narrow :data:`TEXT_CONTENT` (it holds the
        name to sort by: no workflow row is read); ``None`` for other queries."""
        parts: list[str] = []
        params: list[Any] = []
        for flt in query.filters:
            if flt.field not in TEXT_FIELDS or flt.op != "glob":
                return None
            found = self.text_candidates(con, flt, "t.id")
            if found is None or not found[2]:
                return None
            parts.append(f"({found[0]})")
            params += found[1]
        if not parts:
            return None
        direction = "DESC" if query.sort_spec()[0][1] == "desc" else "ASC"
        name = f"t.c{TEXT_FIELDS.index('RequestName')}"
        return [r for (r,) in con.execute(
            f"SELECT t.id FROM {TEXT_CONTENT} t WHERE {' AND '.join(parts)} "
            f"ORDER BY {name} {direction} LIMIT ? OFFSET ?", [*params, limit, query.idx])]

    def _cheap_walk(self, con: sqlite3.Connection, filters: Sequence[Filter], sort_field: str,
                    walked: int, total: int, count_of: Callable[[Filter], int]) -> bool:
        """Whether walking ``walked`` entries of the sort order's index costs less
        than reading the rows the best filter drives to and sorting them, when
        each entry walked is tested without reading its row: every filter is on
        the sort field (tested on the index entry), or a text glob with few enough
        trigram candidates to test membership of first (:meth:`condition`)."""
        for flt in filters:
            if flt.field == sort_field:
                continue
            if flt.field not in TEXT_FIELDS or flt.op != "glob":
                return False
            rows, _params, fewest = self.text_rows(con, flt)
            if rows is None or fewest >= _PRETEST * walked:
                return False
        driven = total if len(filters) <= 1 else min(count_of(flt) for flt in filters)
        return walked < _CHEAP_WALK * driven

    def _merged_rows(self, con: sqlite3.Connection, query: Query, merge: Filter, limit: int,
                     tested: int) -> list[int]:
        """The rows of a page sorted by name, read as one ordered range of the
        ``(field, RequestName)`` index per value of the ``eq`` filter ``merge``,
        merged (``UNION ALL`` of ranges in one order: sqlite merges them as it
        reads, no sort); the other filters tested per row (on about ``tested``
        rows)."""
        others = [flt for flt in query.filters if flt is not merge]
        direction = "DESC" if query.sort_spec()[0][1] == "desc" else "ASC"
        column = f"w.{quote(merge.field)}"
        arms: list[str] = []
        params: list[Any] = []
        for value in dict.fromkeys(merge.values):
            where, more = self.where(con, others, None, "RequestName", tested)
            test = f" AND {where[len(' WHERE '):]}" if where else ""
            arms.append(f"SELECT w.row, w.RequestName FROM workflow w "
                        f"WHERE {column} = ?{test}")
            params += [value, *more]
        return [r for r, _name in con.execute(
            " UNION ALL ".join(arms) + f" ORDER BY 2 {direction} LIMIT ? OFFSET ?",
            [*params, limit, query.idx])]

    @staticmethod
    def lines(con: sqlite3.Connection, rows: Sequence[int]) -> list[bytes]:
        """The stored JSON lines of some rows, in their order."""
        found: dict[int, bytes] = {}
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            marks = ", ".join("?" for _ in chunk)
            found.update(con.execute(
                f"SELECT row, line FROM workflow_doc WHERE row IN ({marks})", chunk))
        return [found[row] for row in rows]

    @staticmethod
    def bundles(con: sqlite3.Connection, names: Sequence[str],
                only: Collection[str] | None = None) -> dict[str, WorkflowBundle]:
        """The bundles of the named workflows that exist, by name (``only`` those
        parts, when given)."""
        found: dict[str, WorkflowBundle] = {}
        for start in range(0, len(names), BATCH):
            chunk = names[start:start + BATCH]
            marks = ", ".join("?" for _ in chunk)
            for line, parts in con.execute(
                    f"SELECT d.line, d.parts FROM workflow w JOIN workflow_doc d "
                    f"ON d.row = w.row WHERE w.RequestName IN ({marks})", chunk):
                workflow = decode_line(line)
                found[workflow.RequestName] = decode_bundle(workflow, parts, only)
        return found

    def stream(self, con: sqlite3.Connection, query: Query, batch_size: int
               ) -> Iterator[list[bytes]]:
        """The stored JSON lines of every record of ``query`` in order,
        ``batch_size`` at a time."""
        where, params = self.where(con, query.filters)
        limit = -1 if query.limit is None else query.limit
        cursor = con.execute(
            f"SELECT d.line FROM workflow w JOIN workflow_doc d ON d.row = w.row"
            f"{where}{self.order_by(query)} LIMIT ? OFFSET ?", [*params, limit, query.idx])
        while True:
            found = cursor.fetchmany(batch_size)
            if not found:
                return
            yield [line for (line,) in found]

    def distinct(self, con: sqlite3.Connection, field: str,
                 filters: Sequence[Filter]) -> list[tuple[Scalar, int]]:
        """Each value of a (filterable) field with the number of matching workflows."""
        spec = field_specs()[field]
        where, params = self.where(con, filters)
        if spec.many:
            cond = " AND " + where[len(" WHERE "):] if where else ""
            join = " JOIN workflow w ON w.row = v.row" if where else ""
            statement = (f"SELECT v.value, COUNT(*) FROM workflow_value v{join} "
                         f"WHERE v.field = ?{cond} GROUP BY v.value ORDER BY v.value")
            params = [self.layout.field_ids[field], *params]
        else:
            column = f"w.{quote(field)}"
            statement = (f"SELECT {column}, COUNT(*) FROM workflow w{where} "
                         f"GROUP BY {column} ORDER BY {column}")
        found = con.execute(statement, params).fetchall()
        if spec.kind == "bool":
            return [(bool(value), count) for value, count in found]
        return [(value, count) for value, count in found]

    def aggregate(self, con: sqlite3.Connection, agg: Aggregate,
                  filters: Sequence[Filter]) -> list[Summary]:
        """The summaries of one aggregate over the matching workflows."""
        field = agg.field
        where, params = self.where(con, filters)
        cond = " AND " + where[len(" WHERE "):] if where else ""
        if field_specs()[field].many:
            key = "v.value"
            source = ("workflow_value v JOIN workflow w ON w.row = v.row "
                      "WHERE v.field = ?" + cond)
            key_params = [self.layout.field_ids[field], *params]
        else:
            key = f"w.{quote(field)}"
            source = "workflow w" + where
            key_params = list(params)
        statuses: dict[str, dict[str, int]] = {}
        counters: dict[str, list[int]] = {}
        for value, status, count in con.execute(
                f"SELECT {key}, w.RequestStatus, COUNT(*) FROM {source} "
                f"GROUP BY {key}, w.RequestStatus", key_params):
            statuses.setdefault(value, {})[status] = count
        if agg.sums_sites:
            # site_sum holds only the values the workflow holds (see Layout.sum_rows),
            # so no membership test is needed.
            join = " JOIN workflow w ON w.row = s.row" if where else ""
            found = con.execute(f"SELECT s.name, {self.sum_columns} FROM site_sum s{join} "
                                f"WHERE s.agg = ?{cond} GROUP BY s.name", [agg.key, *params])
        else:
            found = con.execute(f"SELECT {key}, {self.workflow_sums} FROM {source} "
                                f"GROUP BY {key}", key_params)
        for value, *sums in found:
            counters[value] = sums
        zero = [0] * N_COUNTERS
        return [make_summary(agg.key, value, counters.get(value, zero), statuses[value])
                for value in sorted(statuses)]

    @staticmethod
    def agents(con: sqlite3.Connection, urls: Iterable[str] | None) -> list[Agent]:
        """Agent records sorted by URL: all of them, or those of the given URLs."""
        if urls is None:
            found = con.execute("SELECT doc FROM agent ORDER BY url").fetchall()
        else:
            wanted = sorted(set(urls))
            found = []
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start:start + BATCH]
                found.extend(con.execute(
                    f"SELECT doc FROM agent WHERE url IN ({', '.join('?' for _ in chunk)})"
                    f" ORDER BY url", chunk).fetchall())
        return [record_from_values(Agent, ujson.loads(doc)) for (doc,) in found]
