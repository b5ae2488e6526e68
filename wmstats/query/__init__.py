"""The query model: filters, sort, paging and field masks over :class:`Workflow` records.

Pure: no I/O.  A :class:`Query` is an immutable value that every store
(:mod:`wmstats.store`) understands; :func:`parse_query` builds one from flat
string parameters (an HTTP query string), strictly and by whitelist; the
reference functions :func:`filter_records`, :func:`apply_query`,
:func:`distinct_values` and :func:`summarize` define the semantics every backend
must reproduce (the conformance suite compares backends against them).

Every name is importable from here; they live in six modules:

* :mod:`wmstats.query.model` -- the values and their validation
  (:class:`Query`, :class:`Filter`, :class:`Page`, :class:`FieldSpec`,
  :class:`QueryError`);
* :mod:`wmstats.query.errors` -- :class:`QueryError` and its kinds;
* :mod:`wmstats.query.match` -- matching one value (globs, regular expressions,
  comparisons), in linear time;
* :mod:`wmstats.query.budget` -- the time budget that stops a query's work
  (:func:`time_budget`, :class:`QueryTimeoutError`);
* :mod:`wmstats.query.reference` -- the reference functions over records in memory;
* :mod:`wmstats.query.params` -- :func:`parse_query`, from HTTP parameters.

Semantics
---------
* A :class:`Filter` names one :class:`~wmstats.schema.Workflow` field, an operator
  and one or more values.  A record matches a filter when the field matches *any*
  of the values (OR within a filter); a record matches a query when it matches
  *every* filter (AND across filters).  Tuple fields (``Campaigns``, ``Sites``...)
  match when *any* element matches.
* Operators (:data:`FILTER_OPS`):

  ``eq``
      exact value (strings compare case-sensitively; ints; bools).
  ``glob``
      wildcard on strings, anchored at both ends: ``*`` is any run of characters
      (possibly empty), ``?`` exactly one character, everything else literal.
  ``re``
      RE2 regular expression on strings, unanchored (linear time; Python's
      syntax without backreferences and look-around, see
      :func:`~wmstats.query.match.compile_regex`).
  ``gt`` ``ge`` ``lt`` ``le``
      numeric (and time, epoch seconds) comparisons; one value per filter.
* Sort: any field, ``asc`` or
  ``desc``; ties are always broken by ``RequestName``, in the direction of the
  last sort key (so paging is stable, a descending order is exactly the reverse
  of the ascending one, and one ``(field, RequestName)`` index serves both).  Tuple fields sort by their elements joined with ``"\\x1f"``
  (:func:`sort_value`), which is lexicographic order for ordinary text.
* Paging: ``idx`` is a zero-based offset into the sorted matches, ``limit`` the
  page size (``None``: no limit; ``0``: no records, only the total).
* ``fields`` is a field mask: the records are still :class:`Workflow`, the mask
  is applied when they are turned into dicts (:meth:`Query.projector`).

Every invalid query raises :class:`QueryError`, whose ``field`` names the field
(or parameter) at fault, and whose ``parameter`` names the query parameter when
:func:`parse_query` parsed it; a ``limit`` above the maximum raises its subclass
:class:`LimitError`.
"""

from wmstats.query.budget import time_budget
from wmstats.query.errors import LimitError, QueryError, QueryTimeoutError
from wmstats.query.match import PatternError, compile_glob, compile_regex, glob_to_regex
from wmstats.query.model import (
    AGGREGATE_KEYS,
    FILTER_OPS,
    RANGE_OPS,
    RESERVED_PARAMS,
    SORT_SEPARATOR,
    TIE_BREAK,
    TIME_FIELDS,
    FieldSpec,
    Filter,
    Page,
    Query,
    Scalar,
    field_spec,
    field_specs,
    make_projector,
)
from wmstats.query.params import parse_query, parse_time
from wmstats.query.reference import (
    apply_query,
    compile_filter,
    distinct_values,
    filter_records,
    make_summary,
    sort_records,
    sort_value,
    summarize,
)

__all__ = [
    "QueryError",
    "LimitError",
    "QueryTimeoutError",
    "PatternError",
    "time_budget",
    "Scalar",
    "FieldSpec",
    "FILTER_OPS",
    "RANGE_OPS",
    "TIME_FIELDS",
    "TIE_BREAK",
    "SORT_SEPARATOR",
    "RESERVED_PARAMS",
    "AGGREGATE_KEYS",
    "field_specs",
    "field_spec",
    "Filter",
    "Query",
    "Page",
    "glob_to_regex",
    "compile_glob",
    "compile_regex",
    "make_projector",
    "make_summary",
    "compile_filter",
    "sort_value",
    "filter_records",
    "sort_records",
    "apply_query",
    "distinct_values",
    "summarize",
    "parse_query",
    "parse_time",
]
