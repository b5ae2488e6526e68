"""The CherryPy web apps: the cache server and the UI server.

* :class:`CacheApp` (:mod:`wmstats.web.cache`) -- the cache server's root
  object, the read-only REST API over one store, constructible the WMCore way
  (``CacheApp(app, config, mount)``) or from keywords, mountable under any prefix
  with ``cherrypy.tree.mount(app, prefix, CacheApp.mount_config())``;
* :func:`build_application` -- the cache app as a ``cherrypy.Application`` (WSGI);
* :class:`wmstats.web.ui.UIApp` -- the UI server: the monitoring page and the
  JSON endpoints it calls, reading the cache server through
  :class:`wmstats.client.CacheClient` (``wmstats.web.ui.build_application``);
* :class:`WebServer` (:mod:`wmstats.web.server`) -- a WSGI app on its own port,
  in a thread, no global state.

The two apps share their error documents (``_errors``), request parsing and
negotiation (``_negotiate``) and replies (``_reply``).
"""

from wmstats.web.cache import CacheApp, CacheConfig, build_application
from wmstats.web.server import WebServer

__all__ = ["CacheApp", "CacheConfig", "WebServer", "build_application"]
