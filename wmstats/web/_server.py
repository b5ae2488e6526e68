"""Former home of :class:`wmstats.web.server.WebServer`, kept only for
``wmstats/web/_ui_harness.py`` until it leaves the runtime package (issue 14);
import :mod:`wmstats.web.server` (or :mod:`wmstats.web`) instead."""

from wmstats.web.server import WebServer

__all__ = ["WebServer"]
