"""wmstats: a static-schema monitoring backend for CMS WMCore workflows.

The core is pure (no network I/O): :mod:`wmstats.schema` (records),
:mod:`wmstats.convert` (WMCore documents -> records), :mod:`wmstats.serialize`
(cattrs + orjson), :mod:`wmstats.jsonschema` (JSON Schema of the records) and
:mod:`wmstats.mock` (deterministic mock data).
"""

from wmstats._version import __version__
from wmstats.schema import SCHEMA_VERSION

__all__ = ["__version__", "SCHEMA_VERSION"]
