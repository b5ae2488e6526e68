"""How the web apps read their options: one rule for the cache, UI and
WMCore-compatible apps.

An app's options are an attrs class; :func:`config_values` reads them from
``None``, a mapping, or any object with attributes (a WMCore ``ConfigSection``),
then applies keyword overrides, refusing unknown keywords by name.
:func:`wsgi_application` is how each app becomes a ``cherrypy.Application``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import cherrypy  # type: ignore[import-untyped]
from cherrypy import _cplogging

__all__ = ["config_values", "to_int", "wsgi_application"]


class _LogManager(_cplogging.LogManager):  # type: ignore[misc]
    """CherryPy's log manager, minus the cost of an access line nobody reads.

    CherryPy formats every access line (a ``uuid4``, a date, escaping of each
    field) before handing it to the logger, a tenth of a small request's time.
    With no handler to write it (``--quiet``), the line is not made at all.
    """

    def access(self) -> None:
        if _written(self.access_log, logging.INFO):
            super().access()


#: Handlers that drop every record: the standard library's and CherryPy's own.
_NULL_HANDLERS = (logging.NullHandler, _cplogging.NullHandler)


def _written(log: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` to ``log`` reaches a handler that writes it
    (CherryPy gives its loggers ``NullHandler`` s, which do not)."""
    if not log.isEnabledFor(level):
        return False
    found: logging.Logger | None = log
    while found is not None:
        if any(not isinstance(h, _NULL_HANDLERS) and level >= h.level
               for h in found.handlers):
            return True
        found = found.parent if found.propagate else None
    return False


def wsgi_application(root: Any, script_name: str | None, config: dict[str, Any]) -> Any:
    """A ``cherrypy.Application`` (a WSGI callable) serving ``root``.

    :param script_name: the mount point; ``None`` takes it from each request's
        WSGI ``SCRIPT_NAME``.
    :param config: the app's mount configuration.
    """
    app = cherrypy.Application(root, None if script_name is None else script_name.rstrip("/"),
                               config)
    app.log = _LogManager(id(app), cherrypy.log.logger_root)
    return app


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
