"""The CherryPy web apps: the cache server (:mod:`wmstats.web.cache`).

* :class:`CacheApp` — the cache server's root object, constructible the WMCore
  way (``CacheApp(app, config, mount)``) or from keywords, mountable under any
  prefix with ``cherrypy.tree.mount(app, prefix, CacheApp.mount_config())``;
* :func:`build_application` — the app as a ``cherrypy.Application`` (WSGI);
* :class:`WebServer` — a WSGI app on its own port, in a thread, no global state.
"""

from wmstats.web.server import WebServer
from wmstats.web.cache import CacheApp, CacheConfig, build_application

__all__ = ["CacheApp", "CacheConfig", "WebServer", "build_application"]
