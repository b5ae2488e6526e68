"""Driving the UI in a real headless Chromium (tests and ``wmstats bench ui``).

Nothing here imports Playwright: :func:`launch_chromium` takes the object of
``sync_playwright()`` from its caller, so that a plain install (without the test
extras) can import this module and say that the browser benchmark is unavailable.


* :func:`chromium_path` -- the system Chromium (``$WMSTATS_CHROMIUM`` or
  ``/usr/bin/chromium``); Playwright's own browser download is never used;
* :func:`launch_chromium` -- launch it headless through Playwright;
* :func:`serve_stack` -- a cache server (memory store) and a UI server, each a
  :class:`~wmstats.web.WebServer` on a free loopback port, in this process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from wmstats.schema import Agent, WorkflowBundle, WorkflowJobs
from wmstats.store import Store, open_store
from wmstats.web import CacheApp, WebServer
from wmstats.web import build_application as build_cache
from wmstats.web.ui import UIApp
from wmstats.web.ui import build_application as build_ui

__all__ = ["CHROMIUM_ARGS", "chromium_path", "launch_chromium", "Stack", "serve_stack"]

#: Flags for a quiet, offline headless Chromium in containers and CI.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage")
_DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    """The Chromium executable: ``$WMSTATS_CHROMIUM``, else ``/usr/bin/chromium``,
    else ``chromium`` on the ``PATH``; ``None`` when there is none."""
    configured = os.environ.get("WMSTATS_CHROMIUM", "").strip()
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    if os.access(_DEFAULT_CHROMIUM, os.X_OK):
        return _DEFAULT_CHROMIUM
    return shutil.which("chromium")


def launch_chromium(playwright: Any, executable: str | None = None) -> Any:
    """A headless Chromium browser (Playwright ``Browser``).

    :param playwright: the object of ``sync_playwright()``.
    :param executable: the browser; default :func:`chromium_path`.
    :raises FileNotFoundError: when there is no Chromium.
    """
    path = executable or chromium_path()
    if path is None or not Path(path).exists():
        raise FileNotFoundError("no Chromium: install Debian's 'chromium' (ci/install-chromium.sh)"
                                " or point WMSTATS_CHROMIUM at one")
    return playwright.chromium.launch(executable_path=path, headless=True,
                                      args=list(CHROMIUM_ARGS))


@attrs.define
class Stack:
    """A running cache server and UI server.

    :param cache: the cache server's HTTP server (``stop()`` it to test outages).
    :param ui: the UI server's HTTP server.
    :param cache_app: the cache app.
    :param ui_app: the UI app.
    :param store: the store behind the cache server.
    """

    cache: WebServer
    ui: WebServer
    cache_app: CacheApp
    ui_app: UIApp
    store: Store

    @property
    def cache_url(self) -> str:
        """The cache server's URL."""
        return self.cache.url

    @property
    def url(self) -> str:
        """The page's URL (with the final slash)."""
        return self.ui.url + "/"


@contextlib.contextmanager
def serve_stack(bundles: Iterable[WorkflowBundle], agents: Iterable[Agent] = (),
                jobs: Iterable[WorkflowJobs] = (), **ui_options: Any) -> Iterator[Stack]:
    """A memory store holding ``bundles`` (and the job records ``jobs``), served by a
    cache and a UI server.

    :param ui_options: :class:`~wmstats.web.ui.UIConfig` options.
    """
    with open_store("memory://") as store:
        store.replace(bundles, agents)
        store.replace_jobs(jobs)
        cache_app = CacheApp(store=store)
        with WebServer(build_cache(cache_app)) as cache:
            ui_app = UIApp(cache_url=cache.url, **ui_options)
            try:
                with WebServer(build_ui(ui_app)) as ui:
                    yield Stack(cache, ui, cache_app, ui_app, store)
            finally:
                ui_app.close()
                cache_app.close()
