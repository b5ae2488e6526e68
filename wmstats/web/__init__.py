"""The CherryPy web apps: the cache server and the UI server.

* :mod:`wmstats.web.cache` -- the cache server, the REST API over one store
  (``docs/http.md``).  :class:`CacheApp` is its root object, constructible the
  WMCore way (``CacheApp(app, config, mount)``) or from keywords, mountable under
  any prefix with ``cherrypy.tree.mount(app, prefix, CacheApp.mount_config())``;
  :func:`build_application` gives it as a ``cherrypy.Application`` (WSGI).
* :mod:`wmstats.web.ui` -- the UI server: the monitoring page and the thin JSON
  endpoints it calls, reading everything from a cache server through
  :class:`wmstats.client.CacheClient` (``docs/ui.md``).  :class:`~wmstats.web.ui.UIApp`
  is built the same ways; ``wmstats.web.ui.build_application`` is its WSGI app.
* :mod:`wmstats.web.wmcore` -- the WMCore-compatible API (today's
  ``/wmstatsserver/data/*``, ``docs/wmcore-compat.md``): :class:`WMCoreApp`, built
  the same ways, reading a cache app's store and source; ``wmstats serve`` mounts
  it next to the cache server.
* :class:`WebServer` (:mod:`wmstats.web.server`) -- a WSGI app on its own port, in a thread, no global state
  (both servers of ``wmstats serve`` run in one).

The two apps share their error documents (``_errors``), request parsing and
negotiation (``_negotiate``) and replies (``_reply``); they import no benchmark
or test code (``.importlinter``).
"""

from wmstats.web.cache import CacheApp, CacheConfig, build_application
from wmstats.web.server import WebServer
from wmstats.web.wmcore import WMCoreApp

__all__ = ["CacheApp", "CacheConfig", "WMCoreApp", "WebServer", "build_application"]
