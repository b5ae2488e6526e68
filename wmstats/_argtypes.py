"""argparse value types shared by the command-line modules."""

from __future__ import annotations

import argparse

__all__ = ["count"]


def count(value: str) -> int:
    """A whole number >= 0 (an argparse ``type``)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return number
