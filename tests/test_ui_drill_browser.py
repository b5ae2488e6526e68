"""The operators' drill-down in a real headless Chromium: the job view of a workflow,
the Alerts tab with its badge, the agents' derived status, links out, text filters
and a workflow table that fits a 1,400-pixel window.

Every value from the server is inserted as text: an error text and a workflow name
holding ``<img src=x onerror=alert(1)>`` must show literally, with no image element
and no dialog.  Screenshots of each view go to ``$WMSTATS_ARTIFACTS`` (default: a
pytest temporary directory); ``WMSTATS_DOC_SCREENSHOTS=docs/img`` writes the
documentation's pictures instead (from a mock dated now, so that it looks alive).
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from wmstats.jobs import JobTable
from wmstats.mock import MockGenerator
from wmstats.query import parse_query
from wmstats.schema import WorkflowBundle, WorkflowJobs
from wmstats.testing.couchdb_server import in_ci
from wmstats.testing.ui_harness import Stack, chromium_path, launch_chromium, serve_stack
from wmstats.testing.fixtures import unavailable

try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - in CI a missing playwright fails loudly
    if in_ci():
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("quiet_cherrypy")

N_WORKFLOWS = 240
XSS = "<img src=x onerror=alert(1)>"
NOW = 1_760_000_000
LONG = "Traceback (most recent call last):\n" + "".join(
    f"  File \"step{k}.py\", line {k}, in run\n    go({k})\n" for k in range(200))
REQMGR = "https://cmsweb.example/reqmgr2"
DUMP = "https://{agent}/jobdump?wf={workflow}&job={job}"


def _special_jobs(name: str, now: int) -> list[dict[str, Any]]:
    """Failed jobs of one workflow: one with HTML in its error text, one very long."""
    docs = []
    for n, (code, details) in enumerate(((60307, f"storage said {XSS} (HTTP 500)"),
                                         (8001, LONG), (8001, "short"))):
        docs.append({"_id": f"special-{n}", "type": "jobsummary", "workflow": name,
                     "task": f"/{name}/Special_Task-1", "state": "jobfailed", "exitcode": code,
                     "site": "T2_XX_Special", "agent_name": "vocms0250.cern.ch",
                     "acdc_url": "https://acdc", "retrycount": 3, "jobtype": "Processing",
                     "errors": {"cmsRun1": [{"type": "Fatal Exception", "details": details,
                                             "exitCode": code}], "logArch1": []},
                     "eos_log_url": f"https://eos.example/logs/{n}.tar.gz",
                     "output": [{"type": "logArchive", "lfn": f"/store/logs/{n}.tar.gz"}],
                     "timestamp": now - 3600 * (n + 1)})
    return docs


def _data(gen: MockGenerator) -> tuple[list[WorkflowBundle], list[WorkflowJobs], str]:
    bundles = list(gen.bundles(N_WORKFLOWS))
    jobs = {j.RequestName: j for j in gen.iter_jobs(N_WORKFLOWS)}
    # A workflow with a hostile name, failed (so it has an alert), with jobs.
    base = bundles[3].workflow
    bundles.append(WorkflowBundle(attrs.evolve(base, RequestName=XSS, RequestStatus="failed")))
    special = next(b.workflow.RequestName for b in bundles if b.workflow.RequestName in jobs)
    table = JobTable()
    for doc in _special_jobs(special, gen.now):
        table.update(doc["_id"], doc, [])
    extra = table.jobs(special)  # added to the mock's records of that workflow
    mine = jobs[special]
    jobs[special] = WorkflowJobs(special, mine.groups + extra.groups, mine.samples + extra.samples)
    xss_jobs = JobTable()
    for doc in _special_jobs(XSS, gen.now):
        xss_jobs.update(doc["_id"], doc, [])
    jobs[XSS] = xss_jobs.jobs(XSS)
    return bundles, list(jobs.values()), special


@pytest.fixture(scope="module")
def data() -> tuple[MockGenerator, list[WorkflowBundle], list[WorkflowJobs], str]:
    gen = MockGenerator(seed=12, now=NOW)
    bundles, jobs, special = _data(gen)
    return gen, bundles, jobs, special


@pytest.fixture(scope="module")
def stack(data: Any) -> Iterator[Stack]:
    gen, bundles, jobs, _special = data
    with serve_stack(bundles, gen.agents(), jobs, reqmgr_url=REQMGR,
                     job_dump_url=DUMP) as running:
        yield running


@pytest.fixture(scope="module")
def bare_stack(data: Any) -> Iterator[Stack]:
    """The same data, no link bases configured."""
    gen, bundles, jobs, _special = data
    with serve_stack(bundles, gen.agents(), jobs) as running:
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
    folder = Path(configured) if configured else tmp_path_factory.mktemp("ui-drill")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page with its console errors, page errors and dialogs recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def clean(self) -> None:
        assert self.errors == [] and self.dialogs == [], (self.errors, self.dialogs)


def _page(browser: Any, width: int = 1400, height: int = 900) -> tuple[Any, Watched]:
    context = browser.new_context(viewport={"width": width, "height": height})
    return context, Watched(context.new_page())


@pytest.fixture
def page(browser: Any) -> Iterator[Watched]:
    context, watched = _page(browser)
    try:
        yield watched
    finally:
        context.close()


def _rendered(p: Any) -> None:
    p.wait_for_function("() => document.documentElement.dataset.ready === '1'", timeout=20_000)


# --------------------------------------------------------------------------- job view


def test_job_view_of_a_workflow(page: Watched, stack: Stack, data: Any,
                                artifacts: Path) -> None:
    _gen, _bundles, _jobs, special = data
    jobs = stack.store.jobs(special)
    assert jobs is not None
    p = page.page
    p.goto(stack.url + "?wf=" + urllib.parse.quote(special, safe=""))
    p.wait_for_selector("#jobs-view .job-task", timeout=20_000)
    # Tasks, then state, exit code and site with their jobs (summed over agents).
    tasks = p.eval_on_selector_all("#jobs-view .job-task", "els => els.map(e => e.dataset.task)")
    assert set(tasks) == {g.Task for g in jobs.groups}
    rows = p.eval_on_selector_all(
        "#jobs-view tr.job-group",
        "rows => rows.map(r => [r.closest('section').dataset.task, r.dataset.state, "
        "Number(r.dataset.exitCode), r.dataset.site, "
        "Number(r.cells[4].textContent.replace(/,/g, ''))])")
    expected: dict[tuple[str, str, int, str], int] = {}
    for g in jobs.groups:
        key = (g.Task, g.State, g.ExitCode, g.Site)
        expected[key] = expected.get(key, 0) + g.Jobs
    assert {(t, s, c, site): n for t, s, c, site, n in rows} == expected
    # Samples are folded until a group is opened.
    section = f"#jobs-view section[data-task='/{special}/Special_Task-1']"
    assert p.locator(f"{section} .sample").count() == 0
    p.click(f"{section} tr.job-group[data-exit-code='60307'] button.open-samples")
    p.wait_for_selector(f"{section} .sample")
    card = p.locator(f"{section} .sample").first
    assert XSS in card.inner_text()  # shown literally ...
    assert p.locator("#jobs-view img").count() == 0  # ... never as markup
    assert card.locator("a.out", has_text="vocms0250.cern.ch").get_attribute("href") == (
        "https://vocms0250.cern.ch/jobdump?wf=" + urllib.parse.quote(special, safe="")
        + "&job=special-0")
    assert card.locator("a.out", has_text="eos.example").get_attribute("rel") == (
        "noopener noreferrer")
    # A long error text is folded: its first line shows, the rest when opened.
    p.click(f"{section} tr.job-group[data-exit-code='8001'] button.open-samples")
    long_box = p.locator(f"{section} details.long").first
    long_box.wait_for()
    assert long_box.get_attribute("open") is None
    assert "Traceback" in long_box.locator("summary").inner_text()
    assert not long_box.locator("pre").is_visible()
    long_box.locator("summary").click()
    assert long_box.locator("pre").is_visible()
    shown = long_box.locator("pre").inner_text()
    # cut to the kept length (2,000 characters), saying how much was cut
    assert "go(40)" in shown and shown.endswith("characters cut]") and "go(199)" not in shown
    # Filter the jobs by exit code: one click on its chip.
    p.click("#jobs-view button[data-filter='jcode'][data-value='8001']")
    p.wait_for_function("() => location.search.includes('jcode=8001')")
    p.wait_for_selector("#jobs-view .job-task")
    p.wait_for_function("() => [...document.querySelectorAll('#jobs-view tr.job-group')]"
                        ".every(r => r.dataset.exitCode === '8001')")
    # ReqMgr2's request page, from the configured base.
    link = p.locator("#detail .links a.reqmgr")
    assert link.get_attribute("href") == REQMGR + "/fetch?rid=" + urllib.parse.quote(
        special, safe="")
    p.screenshot(path=str(artifacts / "ui-jobs.png"), full_page=True)
    page.clean()


def test_hostile_workflow_name_and_jobs_show_as_text(page: Watched, stack: Stack) -> None:
    p = page.page
    p.goto(stack.url + "?wf=" + urllib.parse.quote(XSS, safe=""))
    p.wait_for_selector("#jobs-view .job-task", timeout=20_000)
    assert XSS in p.locator("#detail h2.wf-title").inner_text().replace("\u200b", "")
    for button in p.locator("#jobs-view button.open-samples").all():
        button.click()
    assert XSS in p.locator("#jobs-view").inner_text()
    assert p.locator("#detail img").count() == 0
    page.clean()


def test_no_links_out_when_no_base_is_configured(page: Watched, bare_stack: Stack,
                                                 data: Any) -> None:
    _gen, _bundles, _jobs, special = data
    p = page.page
    p.goto(bare_stack.url + "?wf=" + urllib.parse.quote(special, safe=""))
    p.wait_for_selector("#jobs-view .job-task", timeout=20_000)
    p.click("#jobs-view button.open-samples >> nth=0")
    p.wait_for_selector("#jobs-view .sample")
    assert p.locator("#detail .links").count() == 0
    assert p.locator("#jobs-view .sample-head a").count() == 0
    p.goto(bare_stack.url + "?view=agents")
    p.wait_for_selector("#agents tbody tr")
    assert p.locator("#agents a.out").count() == 0
    page.clean()


# --------------------------------------------------------------------------- alerts


def test_alerts_tab(page: Watched, stack: Stack, artifacts: Path) -> None:
    p = page.page
    p.goto(stack.url)
    _rendered(p)
    total = len(stack.cache_app.alert_feed.current().alerts(time.time(),
                                                             stack.store.get_agents()))
    p.wait_for_function("() => !document.getElementById('alert-badge').hidden", timeout=20_000)
    assert p.text_content("#alert-badge") == str(total)
    p.click("#tabs a[data-view='alerts']")
    p.wait_for_selector("#alerts tbody tr.alert", timeout=20_000)
    assert p.locator("#alerts tbody tr.alert").count() == total
    assert p.text_content("#alert-count") == f"{total:,} alerts"
    kinds = p.eval_on_selector_all("#alerts tbody tr.alert", "rows => rows.map(r => r.dataset.kind)")
    assert {"failed", "agent-down"} <= set(kinds)
    # The hostile workflow name is a link, shown as text.
    xss_row = p.locator("#alerts tbody tr.alert", has_text=XSS).first
    assert xss_row.count() == 1 and p.locator("#alerts img").count() == 0
    p.screenshot(path=str(artifacts / "ui-alerts.png"))
    # A kind chip filters.
    p.click("#alert-kinds button[data-kind='failed']")
    p.wait_for_function("() => location.search.includes('akind=failed')")
    p.wait_for_function("() => [...document.querySelectorAll('#alerts tbody tr.alert')]"
                        ".every(r => r.dataset.kind === 'failed')")
    # A workflow alert links to the workflow, an agent alert to the agent.
    p.click("#alerts tbody tr.alert a.wf-link >> nth=0")
    p.wait_for_selector("#view-detail:not([hidden]) #jobs-view", timeout=20_000)
    assert "wf=" in p.url
    p.goto(stack.url + "?view=alerts&akind=agent-down")
    p.wait_for_selector("#alerts tbody tr.alert a.agent-link")
    agent = p.locator("#alerts tbody tr.alert a.agent-link").first.inner_text()
    p.click("#alerts tbody tr.alert a.agent-link >> nth=0")
    p.wait_for_selector("#agents tr.focus", timeout=20_000)
    assert p.locator("#agents tr.focus").get_attribute("data-agent") == agent
    page.clean()


def test_agent_status_is_derived_and_explained(page: Watched, stack: Stack,
                                               artifacts: Path) -> None:
    p = page.page
    p.goto(stack.url + "?view=agents")
    p.wait_for_selector("#agents tbody tr", timeout=20_000)
    statuses = p.eval_on_selector_all("#agents td.agent-status", "els => els.map(e => e.textContent)")
    # The pinned mock's heartbeats are long past: every agent is down, and says why.
    assert statuses and set(statuses) == {"down"}
    reasons = p.eval_on_selector_all("#agents td.why", "els => els.map(e => e.textContent)")
    assert all("no heartbeat for" in r for r in reasons)
    dump = p.locator("#agents a.out").first.get_attribute("href")
    assert dump is not None and dump.startswith("https://") and "jobdump" in dump
    page.clean()


# --------------------------------------------------------------------------- the table


def test_the_table_fits_1400_pixels(browser: Any, stack: Stack) -> None:
    folded = {}
    for width in (1400, 1920):
        context, watched = _page(browser, width)
        try:
            p = watched.page
            p.goto(stack.url + "?limit=100")
            _rendered(p)
            sizes = p.evaluate("(() => { const w = document.querySelector('#workflows')"
                               ".parentElement; return [w.scrollWidth, w.clientWidth]; })()")
            assert sizes[0] <= sizes[1] + 1, (width, sizes)
            assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            folded[width] = int(p.get_attribute("#workflows", "data-folded") or "0")
            # Names break at "_" and "-": <wbr> after each.
            assert p.locator("#workflows td.name wbr").count() > 100
            watched.clean()
        finally:
            context.close()
    assert folded[1400] >= folded[1920]
    # The essential columns never fold.
    context, watched = _page(browser, 1400)
    try:
        p = watched.page
        p.goto(stack.url)
        _rendered(p)
        visible = p.eval_on_selector_all(
            "#workflows thead th:not(.folded)", "els => els.map(e => e.textContent)")
        assert {"Workflow", "Status", "Running", "Success", "Failure"} <= {
            v.replace(" ↕", "").strip() for v in visible}
    finally:
        context.close()


@pytest.mark.parametrize(("field", "param"), [("PrepID", "prepid"),
                                              ("InputDataset", "input"),
                                              ("OutputDatasets", "output"),
                                              ("SiteWhitelist", "whitelist")])
def test_text_filters(page: Watched, stack: Stack, field: str, param: str) -> None:
    records = [w for w in stack.store.stream() if getattr(w, field)]
    value = getattr(records[5], field)
    text = (value[0] if isinstance(value, tuple) else value)[2:14]
    p = page.page
    p.goto(stack.url)
    _rendered(p)
    before = int(p.evaluate("document.documentElement.dataset.renders"))
    p.fill(f"#text-{param}", text)
    p.press(f"#text-{param}", "Enter")
    p.wait_for_function("n => Number(document.documentElement.dataset.renders) > n", arg=before)
    assert f"{param}=" in p.url
    expected = stack.store.query(parse_query({f"{field}.glob": f"*{text}*"},
                                             default_limit=0)).total
    count = int((p.text_content("#count") or "0").split()[0].replace(",", ""))
    assert count == expected > 0
    chips = p.eval_on_selector_all("#chips .chip-value", "els => els.map(e => e.textContent)")
    assert chips == [text]
    page.clean()


# --------------------------------------------------------------------------- pictures


def test_screenshots_of_each_view(browser: Any, artifacts: Path) -> None:
    """The pictures of docs/ui.md, from a mock dated now (agents alive, some late)."""
    target = Path(os.environ.get("WMSTATS_DOC_SCREENSHOTS") or artifacts)
    target.mkdir(parents=True, exist_ok=True)
    gen = MockGenerator(seed=1, now=int(time.time()))
    bundles, jobs, special = _data(gen)
    with serve_stack(bundles, gen.agents(), jobs, reqmgr_url=REQMGR,
                     job_dump_url=DUMP) as live:
        context, watched = _page(browser, 1400, 900)
        try:
            p = watched.page
            p.goto(live.url + "?sort=-priority")
            _rendered(p)
            p.wait_for_selector("#chart-jobs svg rect")
            p.wait_for_function("() => !document.getElementById('alert-badge').hidden")
            p.screenshot(path=str(target / "ui-main.png"))
            p.set_viewport_size({"width": 1400, "height": 1300})
            p.goto(live.url + "?wf=" + urllib.parse.quote(special, safe=""))
            p.wait_for_selector("#jobs-view .job-task", timeout=20_000)
            p.click("#jobs-view tr.job-group[data-exit-code='60307'] button.open-samples")
            p.click("#jobs-view tr.job-group[data-exit-code='8001'] button.open-samples")
            p.wait_for_selector("#jobs-view details.long")
            p.screenshot(path=str(target / "ui-jobs.png"))
            p.set_viewport_size({"width": 1400, "height": 900})
            p.goto(live.url + "?view=alerts")
            p.wait_for_selector("#alerts tbody tr.alert", timeout=20_000)
            p.screenshot(path=str(target / "ui-alerts.png"))
            p.goto(live.url + "?view=agents")
            p.wait_for_selector("#agents tbody tr", timeout=20_000)
            p.screenshot(path=str(target / "ui-agents.png"))
            watched.clean()
        finally:
            context.close()
    for name in ("ui-main.png", "ui-jobs.png", "ui-alerts.png", "ui-agents.png"):
        assert (target / name).stat().st_size > 20_000, name
