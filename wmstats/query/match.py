"""Matching one value against a filter's operator and values: the predicates
every backend that filters in Python uses (and the reference functions).

No filter may cost more than linear time in the length of the value, whatever
its pattern:

* ``re`` patterns run on RE2 (:func:`compile_regex`, the ``google-re2``
  bindings), whose automata match in time linear in the text; Python's :mod:`re`
  backtracks, and 33 characters (``^(?:.|.){1,18}#``) made it spend minutes on
  one value while holding the GIL.  RE2's syntax is Perl's without
  backreferences and look-around (see :func:`compile_regex`); what it refuses is
  a :class:`PatternError`.
* globs (:func:`compile_glob`) are matched by splitting the pattern at its
  ``*`` and placing each piece at its leftmost position, never backtracking
  (a regular expression of ``.*`` runs, as before, took time to the power of the
  number of stars).

The glob and regex predicates of :func:`scalar_matcher` also check the
request's time budget as they go (:func:`wmstats.query.budget.metered`).

Pure: no I/O, and no import of the model (:mod:`wmstats.query.model` builds on
this module, not the other way round).
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any, Final

import re2  # type: ignore[import-untyped]
from re2 import _re2

from wmstats.query.budget import metered

__all__ = ["PatternError", "REGEX_MAX_MEM", "glob_to_regex", "compile_glob", "compile_regex",
           "required_literal", "scalar_matcher"]

#: Memory RE2 may use for one compiled expression (program and DFA cache): a
#: larger pattern is refused.  With less, RE2's DFA runs out of cache on
#: patterns such as ``.{1,1000}#`` and falls back to its (still linear, but
#: ~40x slower) NFA.
REGEX_MAX_MEM: Final = 2 << 20

_UNANCHORED: Final = _re2.RE2.Anchor.UNANCHORED


class PatternError(ValueError):
    """A regular expression that RE2 does not accept (bad or unsupported syntax,
    or too large), with RE2's own message."""


def glob_to_regex(pattern: str) -> str:
    """The anchored regular expression of a glob (``*`` and ``?`` only).

    For other engines and for tests: :func:`compile_glob` does not use it.
    """
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "(?s:" + "".join(parts) + r")\Z"


class _Piece:
    """A run of a glob between two ``*``: ``?`` * ``lead``, a core, ``?`` * ``trail``.

    ``at(value, pos)`` tells whether it matches at ``pos``; ``find(value, start,
    end)`` the leftmost position at or after ``start`` where it matches within
    ``value[:end]`` (-1 if none).  The core is found with :meth:`str.find` (or,
    when it holds a ``?`` itself, a fixed-length expression of literals and
    ``.``): nothing repeats, so nothing backtracks, and the time is linear in
    ``end - start`` times the piece's length.
    """

    __slots__ = ("size", "only_any", "at", "find")

    def __init__(self, text: str) -> None:
        self.size = len(text)
        core = text.strip("?")
        lead = len(text) - len(text.lstrip("?"))
        trail = self.size - lead - len(core)
        if "?" not in core:
            def at(v: str, pos: int) -> bool:
                return len(v) - pos >= self.size and v.startswith(core, pos + lead)

            def find_core(v: str, start: int, end: int) -> int:
                return v.find(core, start, end)
        else:
            regex = re.compile("".join("." if c == "?" else re.escape(c) for c in core), re.S)
            match, search = regex.match, regex.search

            def at(v: str, pos: int) -> bool:
                return len(v) - pos >= self.size and match(v, pos + lead) is not None

            def find_core(v: str, start: int, end: int) -> int:
                found = search(v, start, end)
                return -1 if found is None else found.start()

        self.only_any = not core
        if not lead and not trail:
            self.at, self.find = at, find_core
            return

        def find(v: str, start: int, end: int) -> int:
            found = find_core(v, start + lead, end - trail)
            return -1 if found < 0 else found - lead

        self.at, self.find = at, find


def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Any glob: each piece between stars at its leftmost place after the last.

    A piece of only ``?`` (``*?*``) is a number of characters to skip before the
    next piece.
    """
    pieces = [_Piece(p) for p in pattern.split("*")]
    if len(pieces) == 1:
        only = pieces[0]
        return lambda v: len(v) == only.size and only.at(v, 0)
    head, tail = pieces[0], pieces[-1]
    steps: list[tuple[int, _Piece]] = []
    skip = 0
    for piece in pieces[1:-1]:
        if piece.only_any:
            skip += piece.size
        else:
            steps.append((skip, piece))
            skip = 0
    last_skip = skip
    shortest = head.size + tail.size + last_skip + sum(k + p.size for k, p in steps)

    def matches(v: str) -> bool:
        n = len(v)
        if n < shortest or (head.size and not head.at(v, 0)):
            return False
        end = n - tail.size
        if tail.size and not tail.at(v, end):
            return False
        pos = head.size
        for skipped, piece in steps:
            found = piece.find(v, pos + skipped, end)
            if found < 0:
                return False
            pos = found + piece.size
        return pos + last_skip <= end

    return matches


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """A predicate for one glob (``*`` any run of characters, ``?`` one
    character, the rest literal, anchored at both ends); linear time."""
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
    return _glob_matcher(pattern)


#: Characters with a meaning outside a class in RE2 syntax.
_SPECIAL: Final = frozenset("\\.^$|?*+()[]{}")
#: Escapes of a letter that stand for one atom (a class or an assertion): they end
#: a literal run.  Any other escaped letter or digit (``\\Q``, ``\\x41``,
#: ``\\pL``, ``\\101``...) makes :func:`required_literal` give up.
_ATOM_ESCAPES: Final = frozenset("dDwWsSbBAz")
_REPEAT: Final = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


def required_literal(pattern: str) -> str | None:
    """A literal that every text an RE2 ``pattern`` matches must contain, or
    ``None`` when this conservative reading finds none.

    Only plain characters of the top-level concatenation count (not those in a
    group, a class, or under a quantifier); a top-level ``|``, a flag group
    (``(?i)``...) or an escape it does not know makes it give up.  It is a
    filter in front of RE2 (``literal in value`` costs far less than a call into
    RE2), so it must never name a literal a match could lack.
    """
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i, n = 0, len(pattern)

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < n:
        char = pattern[i]
        if char not in _SPECIAL:
            if depth == 0:
                run.append(char)
            i += 1
            continue
        if char == "\\":
            if i + 1 >= n:
                return None
            escaped = pattern[i + 1]
            if escaped.isalnum() or not escaped.isascii():
                if escaped not in _ATOM_ESCAPES:
                    return None
                end_run()
            elif depth == 0:
                run.append(escaped)
            i += 2
            continue
        if char in "?*+{":
            if char == "{":
                repeat = _REPEAT.match(pattern, i)
                if repeat is None:
                    return None
                i = repeat.end()
            else:
                i += 1
            if depth == 0 and run:
                run.pop()  # the quantified character may be absent or repeated
            end_run()
            continue
        if char == "[":
            close = _class_end(pattern, i)
            if close < 0:
                return None
            end_run()
            i = close + 1
            continue
        if char == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
                name = re.match(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>", pattern[i:])
                if name is None:
                    return None  # a flag group: (?i), (?s:...), ...
                i += name.end()
            else:
                i += 3 if pattern.startswith("(?:", i) else 1
            end_run()
            depth += 1
            continue
        if char == ")":
            if depth == 0:
                return None
            depth -= 1
            end_run()
            i += 1
            continue
        if char == "|":
            if depth == 0:
                return None
            i += 1
            continue
        end_run()  # . ^ $ and } outside a repetition
        i += 1
    end_run()
    return max(runs, key=len) if runs else None


def _class_end(pattern: str, start: int) -> int:
    """The index of the ``]`` closing the class opened at ``start`` (-1: none, or
    a POSIX class inside it, which this reading does not follow)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern.startswith("[:", i):
            return -1
        if pattern[i] == "]":
            return i
        i += 1
    return -1


def _options() -> Any:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.never_capture = True  # only "is there a match": RE2 can use its DFA
    options.log_errors = False    # refusals are answered, not logged to stderr
    return options


@functools.lru_cache(maxsize=64)
def compile_regex(pattern: str) -> Callable[[str], bool]:
    """An unanchored search predicate for one RE2 regular expression.

    RE2 syntax (https://github.com/google/re2/wiki/Syntax) is Perl's and Python's
    without backreferences (``\\1``), look-around (``(?=``, ``(?!``, ``(?<=``),
    possessive or atomic groups, and ``\\Z`` (write ``\\z``); a repetition count
    is at most 1000; ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII-only; ``.``
    matches any character but a newline (``(?s)`` for any).  Flags ``(?i)``,
    ``(?m)``, ``(?s)``, ``(?U)`` work as groups or at the start.

    :raises PatternError: for what RE2 refuses, with its message.
    """
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise PatternError("the pattern is not valid Unicode text") from None
    regexp = _re2.RE2(encoded, _options())
    if not regexp.ok():
        raise PatternError(regexp.error())
    match = regexp.Match

    def search(value: str) -> bool:
        text = value.encode("utf-8", "surrogatepass")
        return bool(match(_UNANCHORED, text, 0, len(text))[0][0] >= 0)

    literal = required_literal(pattern)
    if not literal:
        return search
    # A value without the literal cannot match: most values never reach RE2.
    return lambda value: literal in value and search(value)


def scalar_matcher(op: str, values: Sequence[Any]) -> Callable[[Any], bool]:
    """A predicate on one scalar value for operator ``op`` and its (validated)
    ``values``: see :meth:`wmstats.query.Filter.matcher`.  Glob and regex
    predicates check the time budget (:func:`wmstats.query.budget.metered`)."""
    if op == "eq":
        if len(values) == 1:
            only = values[0]
            # bool is an int subclass: compare types too so True != 1.
            return lambda v: v == only and type(v) is type(only)
        wanted = frozenset(values)
        return lambda v: v in wanted
    if op in ("glob", "re"):
        if op == "glob":
            predicates = [compile_glob(str(p)) for p in values]
        else:
            predicates = [compile_regex(str(p)) for p in values]
        if len(predicates) == 1:
            return metered(typing.cast(Callable[[Any], bool], predicates[0]))
        return metered(lambda v: any(p(v) for p in predicates))
    bound = values[0]
    if op == "gt":
        return lambda v: v > bound
    if op == "ge":
        return lambda v: v >= bound
    if op == "lt":
        return lambda v: v < bound
    return lambda v: v <= bound
