"""The errors of the query model: :class:`QueryError` and its kinds.

Their own module, so that every part of :mod:`wmstats.query` (the model, the
matchers, the time budget) raises them without importing the others.  Pure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QueryError", "LimitError", "QueryTimeoutError"]


class QueryError(ValueError):
    """A query that cannot be run: unknown field, bad value, bad regex, bad paging.

    :param field: the field or parameter at fault.
    :param message: what is wrong with it.
    :param parameter: the query parameter that carried it, when the query was
        parsed from parameters (:func:`~wmstats.query.parse_query` sets it:
        ``RequestDate.ge`` for a bad date there, ``sort`` for an unknown sort field).
    """

    def __init__(self, field: str, message: str, parameter: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.parameter = parameter

    def at(self, parameter: str) -> QueryError:
        """This error, naming ``parameter`` (unless it names one already)."""
        if self.parameter is None:
            self.parameter = parameter
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.message, self.parameter))


class LimitError(QueryError):
    """A ``limit`` above the largest page allowed (HTTP servers answer 413).

    :param limit: the page size asked for (``None``: unbounded).
    :param maximum: the largest page size allowed.
    """

    def __init__(self, limit: int | None, maximum: int) -> None:
        super().__init__("limit", f"must be at most {maximum}, got {limit}", "limit")
        self.limit = limit
        self.maximum = maximum

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.limit, self.maximum))


class QueryTimeoutError(QueryError):
    """The query's work went past its time budget and was stopped.

    A :class:`~wmstats.query.QueryError` (so code that refuses bad queries also
    refuses these), with ``field`` ``"query"``; HTTP servers answer 422; see
    :func:`wmstats.query.budget.time_budget`.

    :param seconds: the budget that was spent.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__("query", f"the filters took longer than the time budget of "
                                  f"{seconds:g} s and were stopped; use simpler patterns "
                                  f"(fewer wildcards, a literal prefix)")
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seconds,))
