"""The text of filter values: regular expressions the parser matches, and the
OpenAPI document publishes, so that the document says exactly what is accepted.

Each expression uses only syntax common to Python's :mod:`re` and ECMA-262 (the
dialect of JSON Schema ``pattern``): classes, non-capturing groups,
alternation, counted repetition.  :mod:`wmstats.query.params` matches values
with them (:func:`full`), :mod:`wmstats.web._openapi` anchors them as patterns
(:func:`anchored`).  Pure.

* integers (:data:`INTEGER`): an optional sign, digits, within 64 bits
  (-9223372036854775808..9223372036854775807, leading zeros allowed);
* times (:data:`TIME`): an integer (epoch seconds), or a calendar date
  ``YYYY-MM-DD`` (a real day: 29 February only in leap years), optionally
  followed by ``THH:MM``, ``:SS``, ``.fff`` or ``.ffffff``, and ``Z`` or an offset
  ``+HH:MM`` / ``-HH:MM`` (no offset: UTC);
* booleans (:data:`BOOLEAN`): ``true``, ``false``, ``1``, ``0``, ``yes``, ``no``
  in any letter case;
* a number filter written plainly (:func:`number_items`): comma-separated items,
  each an exact value, a comparison (``>=N``, ``>N``, ``<=N``, ``<N``) or an
  inclusive range (``N..M``, ``N..``, ``..M``).
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = ["INTEGER", "TIME", "BOOLEAN", "BOOLEAN_WORDS", "MAX_TEXT", "MAX_ITEMS",
           "number_items", "text_items", "anchored", "full"]

#: The longest string value (and glob or regex pattern) of a filter.
MAX_TEXT: Final = 1000
#: The most comma-separated items in one plain parameter value.
MAX_ITEMS: Final = 1000


def _at_most(limit: str) -> str:
    """Digit strings of ``len(limit)`` digits whose value is at most ``limit``."""
    parts = []
    for i, digit in enumerate(limit):
        if digit != "0":
            below = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            rest = len(limit) - i - 1
            parts.append(limit[:i] + below + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(limit)
    return "(?:" + "|".join(parts) + ")"


def _integer() -> str:
    positive = f"(?:[0-9]{{1,18}}|{_at_most(str(2 ** 63 - 1))})"
    negative = f"(?:[0-9]{{1,18}}|{_at_most(str(2 ** 63))})"
    return f"(?:\\+?0*{positive}|-0*{negative})"


def _date() -> str:
    year = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
    # Years divisible by 4, except centuries not divisible by 400 (no year 0).
    leap = ("(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
            "|(?:0[48]|[2468][048]|[13579][26])00)")
    any_year = ("(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
                "|(?:0[13-9]|1[0-2])-(?:29|30)"
                "|(?:0[13578]|1[02])-31")
    return f"(?:{year}-(?:{any_year})|{leap}-02-29)"


def _time() -> str:
    clock = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{3}|\\.[0-9]{6})?)?"
    zone = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    return f"(?:{_INTEGER}|{_date()}(?:T{clock}{zone}?)?)"


_INTEGER: Final = _integer()
#: An integer within 64 bits.
INTEGER: Final = _INTEGER
#: An epoch time or an ISO 8601 date (and time).
TIME: Final = _time()
#: The words a boolean filter takes (any letter case).
BOOLEAN_WORDS: Final = ("true", "false", "1", "0", "yes", "no")
#: A boolean.
BOOLEAN: Final = "(?:" + "|".join(
    "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)
    for word in BOOLEAN_WORDS) + ")"


def number_items(scalar: str) -> str:
    """A plain number (or time) filter value: comma-separated exact values,
    comparisons and ranges of ``scalar``."""
    item = f"(?:(?:>=|<=|>|<)?{scalar}|{scalar}\\.\\.(?:{scalar})?|\\.\\.{scalar})"
    return f"{item}(?:,{item}){{0,{MAX_ITEMS - 1}}}"


def text_items() -> str:
    """A plain string filter value: comma-separated items of at most
    :data:`MAX_TEXT` characters."""
    item = f"[^,]{{0,{MAX_TEXT}}}"
    return f"{item}(?:,{item}){{0,{MAX_ITEMS - 1}}}"


def anchored(expression: str) -> str:
    """``expression`` as a whole-value pattern (JSON Schema ``pattern``)."""
    return f"^(?:{expression})$"


@functools.lru_cache(maxsize=32)
def full(expression: str) -> re.Pattern[str]:
    """``expression`` compiled, for :meth:`re.Pattern.fullmatch`."""
    return re.compile(expression)
