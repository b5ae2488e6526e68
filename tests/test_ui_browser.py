"""The real page in a real headless Chromium (Playwright), served by a real UI server
reading a real cache server.

Chromium is Debian's (``ci/install-chromium.sh``; ``$WMSTATS_CHROMIUM`` or
``/usr/bin/chromium``).  Without it these tests skip locally and FAIL in CI.
A screenshot of the main view is saved in ``$WMSTATS_ARTIFACTS`` (default: a
pytest temporary directory, printed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from wmstats.aggregates import AGGREGATES
from wmstats.schema import WorkflowBundle
from wmstats.mock import MockGenerator
from wmstats.query import parse_query
from wmstats.testing.couchdb_server import in_ci
from wmstats.store import open_store
from wmstats.web import CacheApp, WebServer
from wmstats.testing.ui_harness import Stack, chromium_path, launch_chromium, serve_stack
from wmstats.web.cache import build_application as build_cache
from wmstats.web.ui import UIApp
from wmstats.web.ui import build_application as build_ui
from wmstats.testing.fixtures import unavailable

N_WORKFLOWS = 300
XSS = "<img src=x onerror=alert(1)>"
XSS_CAMPAIGN = "<script>alert(2)</script>"
try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - in CI a missing playwright fails loudly
    if in_ci():
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)


pytestmark = pytest.mark.usefixtures("quiet_cherrypy")


@pytest.fixture(scope="module")
def generator() -> MockGenerator:
    return MockGenerator(seed=11)


@pytest.fixture(scope="module")
def stack(generator: MockGenerator) -> Iterator[Stack]:
    bundles = list(generator.bundles(N_WORKFLOWS))
    wf = bundles[7].workflow
    xss = attrs.evolve(wf, RequestName=XSS, Campaign=XSS_CAMPAIGN,
                       Campaigns=(XSS_CAMPAIGN,), RequestStatus="running-open")
    bundles.append(WorkflowBundle(xss))
    with serve_stack(bundles, generator.agents()) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        unavailable("Chromium", "run ci/install-chromium.sh or set WMSTATS_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright, path)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("WMSTATS_ARTIFACTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("ui-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nUI test artifacts (screenshots) in {folder}")
    return folder


class Watched:
    """A page with its console errors, page errors and dialogs recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def renders(self) -> int:
        value = self.page.evaluate("document.documentElement.dataset.renders || '0'")
        return int(value)

    def wait_render(self, after: int) -> None:
        """Wait until the workflow table has been rendered more than ``after`` times."""
        self.page.wait_for_function(
            "n => Number(document.documentElement.dataset.renders || 0) > n", arg=after,
            timeout=15_000)

    def column(self, index: int) -> list[str]:
        texts: list[str] = self.page.eval_on_selector_all(
            "#workflows tbody tr:not(.empty)",
            f"rows => rows.map(r => r.cells[{index}].textContent)")
        return texts

    def count(self) -> int:
        text = self.page.text_content("#count") or ""
        return int(text.split()[0].replace(",", ""))


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    watched = Watched(context.new_page())
    try:
        yield watched
    finally:
        context.close()


def _open(page: Watched, url: str) -> None:
    page.page.goto(url)
    page.wait_render(0)


def checked(page: Any) -> str:
    """The status values checked in the page's filters, comma-separated."""
    values: list[str] = page.eval_on_selector_all(
        "#facets input[name=status]:checked", "els => els.map(e => e.value)")
    return ",".join(values)


def _matching(stack: Stack, **filters: str) -> int:
    return stack.store.query(parse_query(filters, default_limit=0)).total


def test_main_view_loads(page: Watched, stack: Stack, artifacts: Path) -> None:
    _open(page, stack.url)
    p = page.page
    assert page.count() == N_WORKFLOWS + 1
    assert len(page.column(0)) == 50
    p.wait_for_selector("#facets details.facet input[type=checkbox]")
    p.wait_for_selector("#chart-jobs svg rect")
    p.wait_for_selector("#chart-status svg rect")
    p.wait_for_selector("#workflows td.events .bar")  # event progress filled in
    assert p.is_visible("#view-workflows") and not p.is_visible("#banner")
    facets = p.eval_on_selector_all("#facets details.facet", "els => els.map(e => e.dataset.facet)")
    assert facets == [a.key for a in AGGREGATES]
    tabs = p.eval_on_selector_all("#tabs a", "els => els.map(e => e.dataset.view)")
    assert tabs == ["workflows", *(a.key for a in AGGREGATES if a.view), "agents", "alerts"]
    p.wait_for_function("document.getElementById('data-status').textContent.includes('workflows')")
    p.screenshot(path=str(artifacts / "ui-main.png"))
    assert (artifacts / "ui-main.png").stat().st_size > 10_000
    assert page.errors == [] and page.dialogs == []


def test_filter_by_status_and_search(page: Watched, stack: Stack) -> None:
    _open(page, stack.url)
    p = page.page
    before = page.renders()
    p.check("#facets input[name=status][value='running-open']")
    page.wait_render(before)
    assert "status=running-open" in p.url
    assert page.count() == _matching(stack, RequestStatus="running-open")
    assert set(page.column(1)) == {"running-open"}
    # Multi-select: a second status adds (OR).
    before = page.renders()
    p.check("#facets input[name=status][value='completed']")
    page.wait_render(before)
    assert page.count() == _matching(stack, RequestStatus="running-open,completed")
    assert set(page.column(1)) <= {"running-open", "completed"}
    chips = p.eval_on_selector_all("#chips .chip-value", "els => els.map(e => e.textContent)")
    assert chips == ["running-open", "completed"]
    # Wildcard search on the name.
    name = page.column(0)[0]
    pattern = "*" + name[5:20] + "*"
    before = page.renders()
    p.fill("#q", pattern)
    p.press("#q", "Enter")
    page.wait_render(before)
    assert name in page.column(0)
    assert page.count() == _matching(stack, RequestStatus="running-open,completed",
                                     RequestName=pattern)
    assert page.errors == []


def test_sort_and_page(page: Watched, stack: Stack) -> None:
    _open(page, stack.url)
    p = page.page
    before = page.renders()
    p.click("#workflows thead button[data-sort=priority]")
    page.wait_render(before)
    assert "sort=-priority" in p.url
    priorities = [int(v.replace(",", "")) for v in page.column(4)]
    assert priorities == sorted(priorities, reverse=True)
    assert priorities[0] == max(w.RequestPriority for w in stack.store.stream(
        parse_query({}, default_limit=None)))
    before = page.renders()
    p.click("#workflows thead button[data-sort=priority]")
    page.wait_render(before)
    priorities = [int(v.replace(",", "")) for v in page.column(4)]
    assert priorities == sorted(priorities) and "sort=priority" in p.url
    first_page = page.column(0)
    before = page.renders()
    p.click("#pager-top button[data-page=next]")
    page.wait_render(before)
    assert "idx=50" in p.url
    assert "page 2 of 7" in (p.text_content("#pager-top") or "")
    second_page = page.column(0)
    assert len(second_page) == 50 and not set(first_page) & set(second_page)
    before = page.renders()
    p.click("#pager-top button[data-page=last]")
    page.wait_render(before)
    assert len(page.column(0)) == (N_WORKFLOWS + 1) - 300
    # 200 rows a page: every row gets its event progress.
    before = page.renders()
    p.select_option("#pager-top select.page-size", "200")
    page.wait_render(before)
    assert "limit=200" in p.url and len(page.column(0)) == 200
    p.wait_for_function("() => document.querySelectorAll('#workflows td.events .bar').length"
                        " === 200", timeout=20_000)
    assert page.errors == []


def test_detail_view_and_back_button(page: Watched, stack: Stack) -> None:
    _open(page, stack.url + "?status=running-open&sort=-priority")
    p = page.page
    assert set(page.column(1)) == {"running-open"}
    name = page.column(0)[0]
    p.click("#workflows tbody tr:first-child a.wf-link")
    p.wait_for_selector("#detail h2.wf-title")
    assert p.text_content("#detail h2.wf-title") == name
    assert "wf=" in p.url and p.is_visible("#view-detail") and not p.is_visible("#view-workflows")
    bundle = stack.store.get(name)
    assert bundle is not None
    p.wait_for_selector("#detail table.tasks tbody tr")
    assert len(p.query_selector_all("#detail table.tasks tbody tr")) == len(
        {t.Task for t in bundle.tasks}) or not bundle.tasks
    assert len(p.query_selector_all("#detail table.sites tbody tr")) == max(
        1, len({s.Site for s in bundle.sites}))
    datasets = p.eval_on_selector_all("#detail table.datasets tbody td.name",
                                      "els => els.map(e => e.textContent)")
    assert datasets == [d.Dataset for d in bundle.datasets]
    # Back: the filtered, sorted list again, the checkbox still checked.
    before = page.renders()
    p.go_back()
    page.wait_render(before)
    assert p.is_visible("#view-workflows") and not p.is_visible("#view-detail")
    assert p.is_checked("#facets input[name=status][value='running-open']")
    assert set(page.column(1)) == {"running-open"} and page.column(0)[0] == name
    # A filter change, then back: the previous filters are restored.
    before = page.renders()
    p.check("#facets input[name=status][value='completed']")
    page.wait_render(before)
    assert page.count() == _matching(stack, RequestStatus="running-open,completed")
    before = page.renders()
    p.go_back()
    page.wait_render(before)
    assert not p.is_checked("#facets input[name=status][value='completed']")
    assert page.count() == _matching(stack, RequestStatus="running-open")
    assert re.search(r"status=running-open(&|$)", p.url) and "completed" not in p.url
    assert page.errors == []


def test_xss_payload_is_shown_as_text(page: Watched, stack: Stack) -> None:
    _open(page, stack.url + "?q=" + "%3Cimg")
    p = page.page
    assert page.column(0) == [XSS]
    assert page.column(3) == [XSS_CAMPAIGN]
    assert p.query_selector("img") is None
    assert p.query_selector("#workflows script") is None
    # The campaign facet lists the payload as text too.
    p.wait_for_selector("#facets details[data-facet=campaign] input", state="attached")
    values = p.eval_on_selector_all("#facets details[data-facet=campaign] .facet-value",
                                    "els => els.map(e => e.textContent)")
    assert XSS_CAMPAIGN in values
    p.click("#workflows tbody tr:first-child a.wf-link")
    p.wait_for_selector("#detail h2.wf-title")
    assert p.text_content("#detail h2.wf-title") == XSS
    assert p.title().startswith(XSS)
    p.wait_for_timeout(300)
    assert p.query_selector("img") is None
    assert page.dialogs == [] and page.errors == []


def test_group_and_agent_views(page: Watched, stack: Stack) -> None:
    _open(page, stack.url)
    p = page.page
    p.click("#tabs a[data-view=campaign]")
    p.wait_for_selector("#groups:not(.loading) tbody a.group-link")
    assert "view=campaign" in p.url
    campaigns = {s.Value: s.Workflows for s in stack.store.aggregate("campaign")}
    shown = p.eval_on_selector_all(
        "#groups tbody tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    assert {name: int(n.replace(",", "")) for name, n in shown} == campaigns
    # The rows are sorted by workflows, most first; a click on a value filters by it.
    top = shown[0][0]
    before = page.renders()
    p.click("#groups tbody tr:first-child a.group-link")
    page.wait_render(before)
    assert p.is_visible("#view-workflows")
    assert page.count() == campaigns[top]
    p.click("#tabs a[data-view=site]")
    # Not the campaign rows still shown while the site rows load.
    p.wait_for_selector("#groups:not(.loading) tbody a.group-link")
    sites = p.eval_on_selector_all("#groups tbody tr", "rows => rows.length")
    expected = stack.store.aggregate("site", parse_query({"Campaigns": top}, default_limit=None))
    assert sites == len(expected) > 0
    p.click("#tabs a[data-view=agents]")
    p.wait_for_selector("#agents tbody td.agent-status")
    agents = p.eval_on_selector_all("#agents tbody tr", "rows => rows.length")
    assert agents == len({a.AgentURL for a in stack.store.get_agents()}
                         | {s.Value for s in stack.store.aggregate("agent")})
    assert not p.is_visible("#filters")
    assert page.errors == []


def test_error_banner_when_the_cache_server_stops(browser: Any,
                                                  generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(30), generator.agents()) as running:
        context = browser.new_context()
        try:
            page = Watched(context.new_page())
            _open(page, running.url)
            p = page.page
            assert not p.is_visible("#banner")
            p.wait_for_selector("#facets input[name=status]")
            running.cache.stop()
            p.click("#facets input[name=status] >> nth=0")
            p.wait_for_selector("#banner.error", timeout=15_000)
            text = p.text_content("#banner") or ""
            assert "Cache server unavailable" in text
            assert "down" in (p.text_content("#data-status") or "")
        finally:
            context.close()


def test_stale_banner(browser: Any, generator: MockGenerator) -> None:
    with serve_stack(generator.bundles(10), generator.agents(), stale_after=0.001,
                     warm=False) as running:
        context = browser.new_context()
        try:
            page = Watched(context.new_page())
            _open(page, running.url)
            page.page.wait_for_selector("#banner.stale", timeout=15_000)
            assert "Stale data" in (page.page.text_content("#banner") or "")
            assert page.count() == 10  # the data is still shown
        finally:
            context.close()


class _Switch:
    """A WSGI app that passes requests to ``app``, or answers 503 while ``down``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.down = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.down:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error": "unavailable", "detail": "switched off"}']
        return self.app(environ, start_response)


def test_page_recovers_when_the_cache_server_answers_again(
        browser: Any, generator: MockGenerator) -> None:
    with open_store("memory://") as store:
        store.replace(generator.bundles(40), generator.agents())
        cache_app = CacheApp(store=store)
        switch = _Switch(build_cache(cache_app))
        with WebServer(switch) as cache:
            ui_app = UIApp(cache_url=cache.url, warm=False)
            try:
                with WebServer(build_ui(ui_app)) as ui:
                    context = browser.new_context()
                    try:
                        page = Watched(context.new_page())
                        _open(page, ui.url + "/")
                        p = page.page
                        p.wait_for_selector("#facets input[name=status]")
                        switch.down = True
                        p.click("#facets input[name=status] >> nth=1")
                        p.wait_for_selector("#banner.error", timeout=15_000)
                        switch.down = False
                        # The page asks again every 5 s and redraws by itself.
                        p.wait_for_selector("#banner", state="hidden", timeout=20_000)
                        p.wait_for_function(
                            "() => !document.querySelector('#workflows.loading')")
                        status = checked(p)
                        assert status and page.count() == store.query(parse_query(
                            {"RequestStatus": status}, default_limit=0)).total
                        assert "down" not in (p.text_content("#data-status") or "")
                    finally:
                        context.close()
            finally:
                ui_app.close()
                cache_app.close()
