"""How the web apps read their options: one rule for the cache, UI and
WMCore-compatible apps.

An app's options are an attrs class; :func:`config_values` reads them from
``None``, a mapping, or any object with attributes (a WMCore ``ConfigSection``),
then applies keyword overrides, refusing unknown keywords by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["config_values", "to_int"]


def to_int(value: Any) -> int:
    """An integer option (``"5"`` from a configuration file too), never a boolean."""
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def config_values(cls: type[Any], config: Any, overrides: Mapping[str, Any],
                  owner: str) -> dict[str, Any]:
    """The options of attrs class ``cls`` found in ``config``, then ``overrides``.

    :param config: ``None``, a mapping, or any object with attributes; what it has
        beyond ``cls``'s fields is ignored.
    :param owner: the app's name, for the error.
    :raises TypeError: for an unknown keyword in ``overrides``.
    """
    names = [f.name for f in attrs.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"unknown {owner} option(s): {', '.join(unknown)} "
                        f"(known: {', '.join(names)})")
    values: dict[str, Any] = {}
    for name in names:
        if isinstance(config, Mapping):
            if name in config:
                values[name] = config[name]
        elif config is not None and hasattr(config, name):
            values[name] = getattr(config, name)
    values.update(overrides)
    return values
