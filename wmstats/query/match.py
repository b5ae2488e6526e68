"""Matching one value against a filter's operator and values: the predicates
every backend that filters in Python uses (and the reference functions).

Pure: no I/O, and no import of the model (:mod:`wmstats.query.model` builds on
this module, not the other way round).
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["glob_to_regex", "compile_glob", "scalar_matcher"]


def glob_to_regex(pattern: str) -> str:
    """The anchored regular expression of a glob (``*`` and ``?`` only)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "(?s:" + "".join(parts) + r")\Z"


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A fast predicate for one glob: literal parts use ``in``/``startswith``/``==``."""
    if "?" not in pattern:
        if "*" not in pattern:
            return pattern.__eq__
        core = pattern.strip("*")
        if "*" not in core:
            lead, trail = pattern.startswith("*"), pattern.endswith("*")
            if lead and trail:
                return lambda v: core in v
            if trail:
                return lambda v: v.startswith(core)
            return lambda v: v.endswith(core)
    lead = pattern.startswith("*")
    trail = pattern.endswith("*")
    body = glob_to_regex(pattern.strip("*"))[len("(?s:"):-len(r")\Z")]
    regex = re.compile("(?s:" + body + ")" + ("" if trail else r"\Z"))
    if lead:
        search = regex.search
        return lambda v: search(v) is not None
    match = regex.match
    return lambda v: match(v) is not None


def scalar_matcher(op: str, values: Sequence[Any]) -> Callable[[Any], bool]:
    """A predicate on one scalar value for operator ``op`` and its (validated)
    ``values``: see :meth:`wmstats.query.Filter.matcher`."""
    if op == "eq":
        if len(values) == 1:
            only = values[0]
            # bool is an int subclass: compare types too so True != 1.
            return lambda v: v == only and type(v) is type(only)
        wanted = frozenset(values)
        return lambda v: v in wanted
    if op in ("glob", "re"):
        if op == "glob":
            globs = [compile_glob(str(p)) for p in values]
            if len(globs) == 1:
                return typing.cast(Callable[[Any], bool], globs[0])
            return lambda v: any(g(v) for g in globs)
        compiled = [re.compile(str(p)) for p in values]
        if len(compiled) == 1:
            search = compiled[0].search
            return lambda v: search(str(v)) is not None
        return lambda v: any(c.search(str(v)) is not None for c in compiled)
    bound = values[0]
    if op == "gt":
        return lambda v: v > bound
    if op == "ge":
        return lambda v: v >= bound
    if op == "lt":
        return lambda v: v < bound
    return lambda v: v <= bound
