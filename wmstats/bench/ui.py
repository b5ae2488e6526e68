"""Benchmark: the UI page in a real headless Chromium, at N workflows.

``wmstats bench ui --workflows 100000 [--repeat 5] [--json FILE]`` (or ``python -m
wmstats.bench.ui ...``) starts ``python -m wmstats.serve serve --mock N`` (the
cache server on a memory store and the UI server, in one process, as ``wmstats
serve`` runs them) on free ports, then drives the page with Playwright and the
system Chromium (``$WMSTATS_CHROMIUM`` or ``/usr/bin/chromium``) and measures:

* **first render**: navigation start to the workflow table rendered (the page's
  own ``performance.now()`` when it draws the table), in a fresh browser context
  each time (no HTTP cache); the very first load after the server started is
  reported apart (``first_render_cold_ms``);
* **filter change**: a click on a status checkbox to the table redrawn with the
  answer (``filter_change_ms``), and to the summary chart redrawn
  (``filter_change_summary_ms``); likewise a name search, a sort and a page turn;
* **bytes**: everything the page transferred for its first view (HTML, script,
  styles, every API answer, from the Resource Timing entries), and per filter
  change; the page never downloads the whole data set.

Medians and p90 over ``--repeat`` repetitions go to stdout, and with ``--json``
into the envelope of :mod:`wmstats.bench._common` (``results`` flat).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from wmstats._argtypes import count as _count
from wmstats.bench._common import (
    CACHE_URL,
    UI_URL,
    envelope,
    percentile,
    start_server,
    stop_server,
    write_json,
)
from wmstats.testing.ui_harness import chromium_path, launch_chromium

__all__ = ["main", "measure", "screenshot", "unavailable"]

#: Statuses clicked in turn for the filter-change figures (those of the mock data).
_STATUSES = ("running-open", "completed", "acquired", "running-closed", "assigned",
             "closed-out", "new")

_CLICK_AND_WAIT = """
async ([selector, event]) => {
  const done = new Promise((resolve) => document.addEventListener(
      "wmstats:rendered", () => resolve(performance.now()), {once: true}));
  const summary = new Promise((resolve) => document.addEventListener(
      "wmstats:summary-rendered", () => resolve(performance.now()), {once: true}));
  const before = performance.getEntriesByType("resource").length;
  const start = performance.now();
  const target = document.querySelector(selector);
  if (!target) throw new Error("nothing at " + selector);
  if (event === "enter") {
    target.form.requestSubmit();
  } else {
    target.click();
  }
  const table = await done;
  const chart = event === "page" ? table : await summary;
  return {table: table - start, summary: chart - start, before};
}
"""

_SETTLED = "() => window.wmstats && window.wmstats.busy === 0"

_BYTES_SINCE = """
(from) => {
  const entries = performance.getEntriesByType("resource").slice(from);
  return entries.reduce((n, e) => n + (e.transferSize || 0), 0);
}
"""

_FIRST_VIEW_BYTES = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  return {bytes: (nav ? nav.transferSize : 0) + res.reduce((n, e) => n + (e.transferSize || 0), 0),
          requests: 1 + res.length,
          largest: Math.max(0, ...res.map((e) => e.transferSize || 0))};
}
"""


def _start(workflows: int, seed: int, log: IO[str], timeout: float
           ) -> tuple[subprocess.Popen[str], str, str, float]:
    started = time.monotonic()
    proc, (cache, ui) = start_server(
        ["serve", "--port", "0", "--ui-port", "0", "--quiet", "--mock", str(workflows),
         "--seed", str(seed)], log, timeout, (CACHE_URL, UI_URL))
    return proc, cache, ui, time.monotonic() - started


def _wait_ready(ui: str, timeout: float) -> None:
    """Until the UI server has its filter values (read once, in the background)."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(ui + "/api/filters", timeout=timeout).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the UI server at {ui} did not get ready")
        time.sleep(0.5)


def _stats(prefix: str, values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"{prefix}_p50": round(statistics.median(values), 1),
            f"{prefix}_p90": round(percentile(values, 0.9), 1),
            f"{prefix}_max": round(max(values), 1)}


def _first_view(browser: Any, url: str) -> tuple[float, dict[str, Any]]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => document.documentElement.dataset.ready === '1'",
                               timeout=60_000)
        first = float(page.evaluate("window.wmstats.firstRender"))
        page.wait_for_function("() => window.wmstats.summaries > 0", timeout=60_000)
        page.wait_for_function(_SETTLED, timeout=60_000)
        sizes: dict[str, Any] = page.evaluate(_FIRST_VIEW_BYTES)
        return first, sizes
    finally:
        context.close()


def screenshot(browser: Any, url: str, path: str) -> None:
    """Save a picture of the main view (1600 x 1000), once everything is drawn."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => window.wmstats && window.wmstats.summaries > 0",
                               timeout=60_000)
        page.wait_for_selector("#facets input[name=status]", state="attached",
                               timeout=60_000)
        page.wait_for_function(_SETTLED, timeout=60_000)
        page.wait_for_function(
            "() => document.getElementById('data-status').textContent.includes('workflows')",
            timeout=60_000)
        page.screenshot(path=path)
    finally:
        context.close()


def measure(ui: str, repeat: int, executable: str | None = None,
            screenshot_path: str | None = None) -> dict[str, Any]:
    """Drive the page at ``ui`` (a running UI server); the figures.

    :param repeat: repetitions of each measurement.
    :param executable: the Chromium to use (default: the system one).
    :param screenshot_path: if given, save a picture of the main view there.
    """
    from playwright.sync_api import sync_playwright

    url = ui.rstrip("/") + "/"
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        try:
            cold, cold_sizes = _first_view(browser, url)
            firsts, views = [], []
            for _ in range(repeat):
                first, sizes = _first_view(browser, url)
                firsts.append(first)
                views.append(sizes)
            table: dict[str, list[float]] = {"filter": [], "search": [], "sort": [],
                                             "page": []}
            chart: dict[str, list[float]] = {"filter": [], "search": [], "sort": []}
            change_bytes: list[float] = []
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            try:
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("() => document.documentElement.dataset.ready === '1'",
                                       timeout=60_000)
                page.wait_for_selector("#facets input[name=status]", state="attached",
                                       timeout=60_000)
                present = page.eval_on_selector_all(
                    "#facets input[name=status]", "els => els.map(e => e.value)")
                statuses = [s for s in _STATUSES if s in present] or list(present)[:3]
                for i in range(repeat):
                    status = statuses[i % len(statuses)]
                    selector = f"#facets input[name=status][value='{status}']"
                    for _turn in ("on", "off"):
                        page.wait_for_function(_SETTLED, timeout=60_000)
                        got = page.evaluate(_CLICK_AND_WAIT, [selector, "click"])
                        table["filter"].append(got["table"])
                        chart["filter"].append(got["summary"])
                        page.wait_for_function(_SETTLED, timeout=60_000)
                        change_bytes.append(page.evaluate(_BYTES_SINCE, got["before"]))
                    # A name search (the box is read on submit), then cleared.
                    for text in (f"*{status[:3]}*", ""):
                        page.fill("#q", text)
                        page.wait_for_function(_SETTLED, timeout=60_000)
                        got = page.evaluate(_CLICK_AND_WAIT, ["#q", "enter"])
                        table["search"].append(got["table"])
                        chart["search"].append(got["summary"])
                    page.wait_for_function(_SETTLED, timeout=60_000)
                    got = page.evaluate(_CLICK_AND_WAIT,
                                        ["#workflows thead button[data-sort=priority]", "page"])
                    table["sort"].append(got["table"])
                    page.wait_for_function(_SETTLED, timeout=60_000)
                    got = page.evaluate(_CLICK_AND_WAIT,
                                        ["#pager-top button[data-page=next]", "page"])
                    table["page"].append(got["table"])
            finally:
                context.close()
            if screenshot_path:
                screenshot(browser, url + "?sort=-priority", screenshot_path)
        finally:
            browser.close()
    results.update(_stats("first_render_ms", firsts))
    results["first_render_cold_ms"] = round(cold, 1)
    results.update(_stats("filter_change_ms", table["filter"]))
    results.update(_stats("filter_change_summary_ms", chart["filter"]))
    results.update(_stats("search_change_ms", table["search"]))
    results.update(_stats("search_change_summary_ms", chart["search"]))
    results.update(_stats("sort_change_ms", table["sort"]))
    results.update(_stats("page_change_ms", table["page"]))
    results["first_view_bytes"] = statistics.median(v["bytes"] for v in views)
    results["first_view_requests"] = statistics.median(v["requests"] for v in views)
    results["first_view_largest_response_bytes"] = max(v["largest"] for v in views)
    results["first_view_cold_bytes"] = cold_sizes["bytes"]
    results["filter_change_bytes_p50"] = statistics.median(change_bytes)
    return results


def _print(figures: dict[str, Any], workflows: int) -> None:
    print(f"UI in headless Chromium, {workflows:,} workflows")
    for key, value in figures.items():
        print(f"  {key:40s} {value:>14,.1f}")


def unavailable() -> str | None:
    """Why the benchmark cannot run here (``None`` when it can): Playwright is a test
    extra, which a plain install lacks."""
    try:
        found = importlib.util.find_spec("playwright") is not None
    except (ImportError, ValueError):  # a broken install, or import blocked
        found = False
    if not found:
        return ("playwright is not installed (pip install 'wmstats[test]', or "
                "pip install playwright; the system Chromium is used)")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``wmstats bench ui``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="wmstats bench ui", description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", "-n", type=_count, default=10_000,
                        help="mock workflows behind the cache server (default 10,000)")
    parser.add_argument("--repeat", type=_count, default=5,
                        help="repetitions of each measurement (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="mock generator seed")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for the servers to start (default 900)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="also save a picture of the main view (docs/img/ui-main.png)")
    parser.add_argument("--ui", metavar="URL",
                        help="measure an already running UI server instead of starting one")
    args = parser.parse_args(argv)
    why = unavailable()
    if why is not None:
        print(f"wmstats bench ui: unavailable: {why}", file=sys.stderr)
        return 2
    if chromium_path() is None:
        print("wmstats bench ui: no Chromium (install Debian's chromium, or set "
              "WMSTATS_CHROMIUM)", file=sys.stderr)
        return 2
    repeat = max(1, args.repeat)
    start_s = None
    proc = None
    if args.ui:
        ui = args.ui.rstrip("/")
    else:
        print(f"starting 'wmstats serve --mock {args.workflows:,}'...", file=sys.stderr,
              flush=True)
        proc, _cache, ui, start_s = _start(args.workflows, args.seed, sys.stderr, args.timeout)
    try:
        _wait_ready(ui, args.timeout)
        figures = measure(ui, repeat, screenshot_path=args.screenshot)
    finally:
        if proc is not None:
            stop_server(proc)
    if start_s is not None:
        figures["server_start_s"] = round(start_s, 1)
    _print(figures, args.workflows)
    if args.json:
        write_json(args.json, envelope("ui", args.workflows, figures, {
            "repeat": repeat, "ui": None if proc is not None else ui,
            "chromium": chromium_path(),
            "method": "first render: navigationStart -> table drawn (performance.now in the "
                      "page), fresh context each; changes: click -> table / summary drawn"}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
