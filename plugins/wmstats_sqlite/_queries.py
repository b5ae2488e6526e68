"""Reads of the sqlite store: filters, sort and paging as SQL, and the statements
behind every read (each runs on a connection the caller holds a read transaction
on; caching is the store's).

Every statement binds its values as parameters; column names come only from the
schema (:class:`~wmstats_sqlite._schema.Layout`).  Regular expressions go through
the ``REGEXP`` function (:func:`regexp`: RE2, as on every backend; registered on
each connection), wildcards through ``GLOB`` with ``[`` escaped (sqlite's GLOB
gives up on a ``*`` once the rest of the pattern cannot match the rest of the
value, so it never backtracks into exponential time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Final

import ujson

from wmstats.aggregates import Aggregate
from wmstats.backends.codec import decode_bundle, decode_line, record_from_values
from wmstats.query import Filter, Query, Scalar, compile_regex, field_specs, make_summary
from wmstats.schema import COUNTER_FIELDS, Agent, Summary, WorkflowBundle
from wmstats.serialize import json_bytes, json_loads_stored
from wmstats_sqlite._schema import (
    BATCH,
    INDEXED_FIELDS,
    N_COUNTERS,
    TEXT_FIELDS,
    TEXT_FTS,
    Layout,
    quote,
)

__all__ = ["ANY_DRIVER", "regexp", "text_search", "project_lines", "Queries"]

#: :meth:`Queries.where`: let sqlite pick the filter that drives the query.
ANY_DRIVER: Final = object()


def regexp(pattern: str, value: object) -> bool:
    """sqlite's ``REGEXP``: the same RE2 search as every other backend
    (:func:`wmstats.query.compile_regex`, unanchored, linear time)."""
    return value is not None and compile_regex(pattern)(str(value))


def _glob(pattern: str) -> str:
    """Our glob (only ``*`` and ``?`` special) as an sqlite GLOB pattern."""
    return pattern.replace("[", "[[]")


#: The shortest run of plain characters the text trigram index can look up.
_TRIGRAM: Final = 3


def text_search(field: str, pattern: str) -> tuple[str, bool] | None:
    """How the text trigram index finds the values of ``field`` (one of
    :data:`~wmstats_sqlite._schema.TEXT_FIELDS`) a glob matches.

    :returns: the FTS5 query (every run of 3 or more plain characters as a phrase
        in the field's column, all of them: the candidates), and whether the
        candidates are exactly the matches (``*text*``: a phrase of trigrams is a
        substring, and of one element of a tuple field, as the text holds no
        separator); ``None`` when the pattern has no such run (every value is a
        candidate).
    """
    runs = [run for run in pattern.replace("?", "*").split("*") if run]
    long = [run for run in runs if len(run) >= _TRIGRAM]
    if not long:
        return None
    phrases = " AND ".join('"' + run.replace('"', '""') + '"' for run in long)
    return "{" + field + "} : (" + phrases + ")", len(runs) == 1 and pattern == f"*{runs[0]}*"


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

    def condition(self, flt: Filter, drive: bool = True) -> tuple[str, list[Any]]:
        """SQL for one filter on the workflow table aliased ``w``.

        :param drive: whether sqlite may drive the query from this filter's index.
            ``False`` writes it as a per-row test instead (a unary ``+`` on the
            column; an ``EXISTS`` probe of the primary key for tuple fields).
        """
        spec = flt.spec
        if drive and flt.field in TEXT_FIELDS and flt.op == "glob":
            found = self._text_candidates(flt)
            if found is not None:
                sql, params, exact = found
                if exact:
                    return sql, params
                test, more = self.condition(flt, drive=False)
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
    def _text_candidates(flt: Filter, column: str = "w.row"
                         ) -> tuple[str, list[Any], bool] | None:
        """A glob on a text field as rows of the text trigram index: the SQL (``column
        IN (...)``), its parameters, and whether they are exactly the matching rows
        (else a superset, to test); ``None`` when a pattern has no run of 3 plain
        characters (every row would be a candidate)."""
        parts: list[str] = []
        params: list[Any] = []
        all_exact = True
        many = flt.spec.many
        for pattern in flt.values:
            found = text_search(flt.field, str(pattern))
            if found is None:
                return None
            query, exact = found
            # A scalar's value is in the index: tested there, the rows are exact.
            test = "" if exact or many else f" AND f.{quote(flt.field)} GLOB ?"
            parts.append(f"{column} IN (SELECT f.rowid FROM {TEXT_FTS} f WHERE "
                         f"{TEXT_FTS} MATCH ?{test})")
            params += [query] if exact or many else [query, _glob(str(pattern))]
            all_exact = all_exact and (exact or not many)
        return " OR ".join(parts), params, all_exact

    @staticmethod
    def _value_condition(column: str, flt: Filter) -> tuple[str, list[Any]]:
        values = list(flt.values)
        if flt.op == "eq":
            if len(values) == 1:
                return f"{column} = ?", values
            return f"{column} IN ({', '.join('?' for _ in values)})", values
        if flt.op == "glob":
            return (" OR ".join(f"{column} GLOB ?" for _ in values),
                    [_glob(str(v)) for v in values])
        if flt.op == "re":
            return " OR ".join(f"{column} REGEXP ?" for _ in values), values
        symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[flt.op]
        return f"{column} {symbol} ?", values

    def where(self, filters: Sequence[Filter], driver: Filter | None | object = ANY_DRIVER,
              sort_field: str = "") -> tuple[str, list[Any]]:
        """The WHERE clause of the filters (AND).

        :param driver: the one filter whose index may drive the query; ``None``
            for none (walk the sort order); :data:`ANY_DRIVER` to let sqlite choose.
        :param sort_field: filters on this field stay indexable (they narrow the
            walk of the sort order's own index).
        """
        if not filters:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        driver_field = driver.field if isinstance(driver, Filter) else None
        for flt in filters:
            sql, values = self.condition(flt, driver is ANY_DRIVER or flt is driver
                                         or flt.field in (sort_field, driver_field))
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

    def count(self, con: sqlite3.Connection, filters: Sequence[Filter]) -> int:
        """How many workflows match every filter."""
        if len(filters) == 1 and filters[0].field in TEXT_FIELDS and filters[0].op == "glob":
            # Every workflow is in the trigram index: count there, without the table.
            found = self._text_candidates(filters[0], "t.rowid")
            if found is not None and found[2]:
                total: int = con.execute(
                    f"SELECT COUNT(*) FROM {TEXT_FTS} t WHERE {found[0]}",
                    found[1]).fetchone()[0]
                return total
        where, params = self.where(filters)
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
        if self.ordered_by_index(query) and total * total > wanted * count:
            driver = None
        elif len(query.filters) > 1:
            driver = min(query.filters, key=count_of)
        where, params = self.where(query.filters, driver, query.sort_spec()[0][0])
        return [r for (r,) in con.execute(
            f"SELECT w.row FROM workflow w{where}{self.order_by(query)} LIMIT ? OFFSET ?",
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
        where, params = self.where(query.filters)
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
        where, params = self.where(filters)
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
        where, params = self.where(filters)
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
