/* WMStats page: filters, workflow table, groupings, detail and agent views.
 *
 * Plain JavaScript, no library.  Every value from the server is inserted as text
 * (textContent, createElement, setAttribute on SVG) -- never as HTML.  The view
 * state (filters, search, sort, page, view, open workflow) lives in the URL, so a
 * view can be bookmarked and the back button restores it.
 *
 * For tests and the benchmark: every rendered workflow table bumps
 * <html data-renders>, sets data-ready, and records performance marks
 * ("wmstats:first-render", "wmstats:render").
 */
"use strict";

(function () {
  // The filters and grouping views are the server's (its aggregates): [name, label]
  // pairs in display order, written into index.html by the UI server.
  const CONFIG = JSON.parse(document.querySelector('meta[name="wmstats-config"]').content);
  const FACETS = CONFIG.filters;
  // Text filters (wildcards; plain text matches anywhere): [name, label] pairs.
  const TEXTS = CONFIG.texts || [];
  // Link bases (empty: no link): ReqMgr2, and the agents' job dump template.
  const LINKS = CONFIG.links || {};
  const GROUP_VIEWS = Object.fromEntries(CONFIG.groups);
  const VIEWS = ["workflows", ...CONFIG.groups.map(([name]) => name), "agents", "alerts"];
  // Job view filters in the URL: URL key -> the API's parameter.
  const JOB_FILTERS = [["jtask", "task"], ["jstate", "state"], ["jcode", "exitcode"], ["jsite", "site"]];
  const STATES = [
    ["queued", "Queued"], ["pending", "Pending"], ["running", "Running"],
    ["cooloff", "Cooloff"], ["paused", "Paused"], ["success", "Success"],
    ["failure", "Failure"], ["canceled", "Canceled"], ["other", "Other"],
  ];
  const LIMITS = [25, 50, 100, 200];
  const DEFAULT_LIMIT = 50;
  const STATUS_POLL_MS = 20000;
  const EVENTS_CHUNK = 25;
  const RETRY_MS = 5000;
  const NF = new Intl.NumberFormat("en-US");
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const timings = {renders: 0, summaries: 0, busy: 0, firstRender: null, lastRender: null};
  window.wmstats = timings;

  // ------------------------------------------------------------------ DOM helpers

  /** An element with a class and text (text is always text, never markup). */
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Text that may break after "_" and "-" (workflow and task names): text nodes
   * and <wbr> elements, never markup. */
  function breakable(text) {
    const frag = document.createDocumentFragment();
    const parts = String(text).split(/(?<=[_\-\/])/);
    parts.forEach((part, i) => {
      frag.append(document.createTextNode(part));
      if (i < parts.length - 1) frag.append(document.createElement("wbr"));
    });
    return frag;
  }

  /** A link out (new tab, no referrer) for an http(s) URL; plain text otherwise. */
  function outLink(url, text, cls) {
    if (!/^https?:\/\//i.test(url || "")) return el("span", cls, text);
    const a = el("a", "out" + (cls ? " " + cls : ""), text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function reqmgrUrl(name) {
    return LINKS.reqmgr ? LINKS.reqmgr + "/fetch?rid=" + encodeURIComponent(name) : "";
  }

  /** The job dump of an agent (and of one job of a workflow), from the configured template. */
  function jobDumpUrl(agent, workflow, job) {
    const base = LINKS.jobDump || "";
    if (!base || !agent) return "";
    if (!/\{(agent|workflow|job)\}/.test(base)) return base.replace(/\/+$/, "") + "/" + encodeURIComponent(agent);
    return base.replace(/\{agent\}/g, encodeURIComponent(agent))
      .replace(/\{workflow\}/g, encodeURIComponent(workflow || ""))
      .replace(/\{job\}/g, encodeURIComponent(job || ""));
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function num(value) {
    return value === null || value === undefined ? "" : NF.format(value);
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(value < 0.1 && value > 0 ? 1 : 0) + "%";
  }

  function ago(epoch) {
    if (!epoch) return "";
    const s = Math.max(0, Date.now() / 1000 - epoch);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function isoTime(epoch) {
    return epoch ? new Date(epoch * 1000).toISOString().replace(".000Z", "Z") : "";
  }

  function bytes(n) {
    const units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let i = 0;
    let v = n || 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i ? v.toFixed(1) : String(v)) + " " + units[i];
  }

  /** A progress bar cell content: bar + percentage, or a dash when unknown. */
  function bar(value, cls) {
    const wrap = el("div", "bar" + (cls ? " " + cls : ""));
    if (value === null || value === undefined) {
      wrap.classList.add("unknown");
      wrap.append(el("span", "bar-label", "–"));
      return wrap;
    }
    const fill = el("div", "bar-fill");
    fill.style.width = Math.max(0, Math.min(100, value * 100)).toFixed(1) + "%";
    wrap.append(fill, el("span", "bar-label", pct(value)));
    wrap.title = (value * 100).toFixed(2) + "%";
    return wrap;
  }

  function td(text, cls) {
    return el("td", cls, text);
  }

  function numTd(value, cls) {
    const cell = el("td", "num" + (cls ? " " + cls : ""), num(value));
    if (!value) cell.classList.add("zero");
    return cell;
  }

  // ------------------------------------------------------------------ state <-> URL

  function emptyState() {
    const filters = {};
    for (const [name] of FACETS) filters[name] = [];
    const texts = {};
    for (const [name] of TEXTS) texts[name] = "";
    const jobs = {};
    for (const [key] of JOB_FILTERS) jobs[key] = "";
    return {filters, texts, q: "", sort: "", idx: 0, limit: DEFAULT_LIMIT, view: "workflows", wf: "",
      jobs, akind: "", focus: ""};
  }

  function readState() {
    const params = new URLSearchParams(location.search);
    const st = emptyState();
    for (const [name] of FACETS) st.filters[name] = params.getAll(name).filter((v) => v !== "");
    st.q = params.get("q") || "";
    st.sort = params.get("sort") || "";
    st.idx = Math.max(0, parseInt(params.get("idx") || "0", 10) || 0);
    const limit = parseInt(params.get("limit") || "", 10);
    st.limit = LIMITS.includes(limit) ? limit : DEFAULT_LIMIT;
    const view = params.get("view") || "workflows";
    st.view = VIEWS.includes(view) ? view : "workflows";
    st.wf = params.get("wf") || "";
    for (const [name] of TEXTS) st.texts[name] = params.get(name) || "";
    for (const [key] of JOB_FILTERS) st.jobs[key] = params.get(key) || "";
    st.akind = params.get("akind") || "";
    st.focus = params.get("a") || "";
    return st;
  }

  /** Query parameters of the filters (what the API takes). */
  function filterParams(st) {
    const params = new URLSearchParams();
    for (const [name] of FACETS) for (const v of st.filters[name]) params.append(name, v);
    if (st.q) params.set("q", st.q);
    for (const [name] of TEXTS) if (st.texts[name]) params.set(name, st.texts[name]);
    return params;
  }

  function stateUrl(st) {
    const params = filterParams(st);
    if (st.view !== "workflows") params.set("view", st.view);
    if (st.sort) params.set("sort", st.sort);
    if (st.idx) params.set("idx", String(st.idx));
    if (st.limit !== DEFAULT_LIMIT) params.set("limit", String(st.limit));
    if (st.wf) params.set("wf", st.wf);
    if (st.wf) for (const [key] of JOB_FILTERS) if (st.jobs[key]) params.set(key, st.jobs[key]);
    if (st.view === "alerts" && st.akind) params.set("akind", st.akind);
    if (st.view === "agents" && st.focus) params.set("a", st.focus);
    const text = params.toString();
    return location.pathname + (text ? "?" + text : "");
  }

  let state = readState();

  function navigate(next, replace) {
    if (next.wf !== state.wf) {
      next.jobs = {};
      for (const [key] of JOB_FILTERS) next.jobs[key] = "";
    }
    state = next;
    const url = stateUrl(state);
    if (url !== location.pathname + location.search) {
      if (replace) history.replaceState(null, "", url);
      else history.pushState(null, "", url);
    }
    syncControls();
    refresh();
  }

  function copyState() {
    const st = Object.assign({}, state);
    st.filters = {};
    for (const [name] of FACETS) st.filters[name] = state.filters[name].slice();
    st.texts = Object.assign({}, state.texts);
    st.jobs = Object.assign({}, state.jobs);
    return st;
  }

  // ------------------------------------------------------------------ API calls

  class ApiFailure extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  const inflight = {};
  let busyCount = 0;

  function busy(delta) {
    busyCount = Math.max(0, busyCount + delta);
    timings.busy = busyCount;
    $("busy").hidden = busyCount === 0;
  }

  /** GET api/<path>; a new call with the same slot aborts the previous one. */
  async function api(path, params, slot) {
    if (slot && inflight[slot]) inflight[slot].abort();
    const ctrl = new AbortController();
    if (slot) inflight[slot] = ctrl;
    const query = params && params.toString();
    busy(1);
    try {
      let response;
      try {
        response = await fetch("api/" + path + (query ? "?" + query : ""), {
          signal: ctrl.signal, headers: {Accept: "application/json"}, cache: "no-store",
        });
      } catch (err) {
        if (err.name === "AbortError") throw err;
        throw new ApiFailure(0, "the UI server does not answer");
      }
      let body = null;
      try {
        body = await response.json();
      } catch (err) {
        // Aborted while reading the body (a newer request replaced this one).
        if (err.name === "AbortError") throw err;
        body = null;
      }
      if (!response.ok) {
        throw new ApiFailure(response.status, (body && body.detail) || ("HTTP " + response.status));
      }
      if (body === null || typeof body !== "object") {
        throw new ApiFailure(response.status, "the UI server gave an unusable answer");
      }
      return body;
    } finally {
      busy(-1);
      if (slot && inflight[slot] === ctrl) delete inflight[slot];
    }
  }

  function isAbort(err) {
    return err && err.name === "AbortError";
  }

  // ------------------------------------------------------------------ banner and status

  let bannerKind = "";

  function showBanner(kind, text) {
    const banner = $("banner");
    bannerKind = kind;
    banner.className = "banner " + kind;
    banner.textContent = text;
    banner.hidden = false;
  }

  function hideBanner(kind) {
    if (!kind || bannerKind === kind) {
      $("banner").hidden = true;
      bannerKind = "";
    }
  }

  function failed(err, what) {
    if (isAbort(err)) return;
    if (err instanceof ApiFailure && err.status >= 400 && err.status < 500) {
      showBanner("warning", "Cannot show " + what + ": " + err.detail);
    } else {
      showBanner("error", "Cache server unavailable: cannot load " + what + " (" +
        (err.detail || err.message) + "). Retrying every " + RETRY_MS / 1000 + " s.");
      $("data-status").textContent = "cache server down";
      $("data-status").className = "data-status down";
      retrySoon();
    }
  }

  let retryTimer = 0;

  /** While the cache server is down, ask for the status every RETRY_MS. */
  function retrySoon() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = 0;
      pollStatus();
    }, RETRY_MS);
  }

  let lastSnapshot = null;

  async function pollStatus() {
    let st;
    try {
      st = await api("status", null, "status");
    } catch (err) {
      if (!isAbort(err)) failed(err, "the status");
      return;
    }
    const box = $("data-status");
    if (!st.ready) {
      box.textContent = "cache server down";
      box.className = "data-status down";
      showBanner("error", "Cache server unavailable: " + (st.detail || "no answer") +
        ". The page shows the last data it read; retrying every " + RETRY_MS / 1000 + " s.");
      retrySoon();
      return;
    }
    const age = st.snapshotAge;
    box.textContent = num(st.workflows) + " workflows · " + num(st.agents) + " agents · data changed " +
      (age === null || age === undefined ? "?" : ago(Date.now() / 1000 - age));
    box.className = "data-status" + (st.stale ? " stale" : "");
    // New data: the next view asks for the summary again.
    if (lastSnapshot !== null && st.snapshot !== lastSnapshot) summaryKey = null;
    if (st.stale) {
      showBanner("stale", "Stale data: the cache server's data has not changed for " +
        ago(Date.now() / 1000 - age).replace(" ago", "") + " (more than " +
        Math.round(st.staleAfter / 60) + " min).");
    } else if (bannerKind === "error" || bannerKind === "stale") {
      hideBanner();
      summaryKey = null;
      refresh();
    }
    if (!facetsLoaded && !inflight.filters) loadFacets();
  }

  // ------------------------------------------------------------------ facets (filters)

  let facetsLoaded = false;
  let facetValues = {};
  const facetBoxes = {};

  async function loadFacets() {
    let data;
    try {
      data = await api("filters", null, "filters");
    } catch (err) {
      if (!isAbort(err)) {
        const holder = $("facets");
        holder.replaceChildren(el("p", "muted", "Filters unavailable."));
        failed(err, "the filter values");
      }
      return;
    }
    facetsLoaded = true;
    facetValues = data.filters || {};
    renderFacets();
  }

  function renderFacets() {
    const holder = $("facets");
    const frag = document.createDocumentFragment();
    for (const [name, label] of FACETS) {
      const values = (facetValues[name] || []).slice();
      // Selected values the server does not list (a bookmark) stay selectable.
      for (const v of state.filters[name]) if (!values.some((item) => item[0] === v)) values.push([v, 0]);
      const box = el("details", "facet");
      box.dataset.facet = name;
      if (state.filters[name].length || name === "status") box.open = true;
      const summary = el("summary", null, label);
      const badge = el("span", "facet-count");
      summary.append(" ", badge);
      box.append(summary);
      if (values.length > 10) {
        const find = el("input", "facet-find");
        find.type = "search";
        find.placeholder = "find " + label.toLowerCase() + "…";
        find.setAttribute("aria-label", "find " + label.toLowerCase());
        find.addEventListener("input", () => filterFacetList(box, find.value));
        box.append(find);
      }
      const list = el("ul", "facet-list");
      for (const [value, count] of values) {
        const item = el("li");
        const lab = el("label");
        const input = el("input");
        input.type = "checkbox";
        input.name = name;
        input.value = value;
        input.checked = state.filters[name].includes(value);
        lab.append(input, el("span", "facet-value", value), el("span", "facet-n", num(count)));
        lab.title = value;
        item.append(lab);
        list.append(item);
      }
      if (!values.length) list.append(el("li", "muted", "none"));
      box.append(list);
      facetBoxes[name] = box;
      frag.append(box);
    }
    holder.replaceChildren(frag);
    updateFacetBadges();
  }

  function filterFacetList(box, text) {
    const needle = text.trim().toLowerCase();
    for (const item of box.querySelectorAll("li")) {
      const input = item.querySelector("input");
      item.hidden = Boolean(needle) && !!input && !input.value.toLowerCase().includes(needle);
    }
  }

  function updateFacetBadges() {
    for (const [name] of FACETS) {
      const box = facetBoxes[name];
      if (!box) continue;
      const n = state.filters[name].length;
      box.querySelector(".facet-count").textContent = n ? "(" + n + ")" : "";
    }
  }

  function syncControls() {
    const q = $("q");
    if (document.activeElement !== q) q.value = state.q;
    for (const [name] of TEXTS) {
      const input = $("text-" + name);
      if (input && document.activeElement !== input) input.value = state.texts[name];
    }
    for (const input of document.querySelectorAll("#facets input[type=checkbox]")) {
      input.checked = state.filters[input.name].includes(input.value);
    }
    updateFacetBadges();
    renderChips();
    for (const link of document.querySelectorAll("#tabs a")) {
      const on = link.dataset.view === state.view && !state.wf;
      link.classList.toggle("active", on);
      if (on) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
      const st = copyState();
      st.view = link.dataset.view;
      st.wf = "";
      st.idx = 0;
      link.href = stateUrl(st);
    }
  }

  /** The text filter inputs (input dataset, output dataset, PrepID, site whitelist). */
  function renderTextFilters() {
    const holder = $("texts");
    const frag = document.createDocumentFragment();
    for (const [name, label] of TEXTS) {
      const lab = el("label", "search text-filter");
      const input = el("input");
      input.type = "search";
      input.id = "text-" + name;
      input.name = name;
      input.placeholder = "text or wildcards";
      input.spellcheck = false;
      input.maxLength = 300;
      input.value = state.texts[name] || "";
      input.addEventListener("input", () => {
        clearTimeout(searchTimer);
        searchTimer = setTimeout(commitSearch, 300);
      });
      lab.append(el("span", null, label), input);
      frag.append(lab);
    }
    holder.replaceChildren(frag);
  }

  function renderChips() {
    const holder = $("chips");
    const frag = document.createDocumentFragment();
    for (const [name, label] of FACETS) {
      for (const value of state.filters[name]) {
        const chip = el("button", "chip");
        chip.type = "button";
        chip.title = "remove this filter";
        chip.append(el("span", "chip-key", label + ":"), el("span", "chip-value", value), el("span", "chip-x", "×"));
        chip.addEventListener("click", () => {
          const st = copyState();
          st.filters[name] = st.filters[name].filter((v) => v !== value);
          st.idx = 0;
          navigate(st);
        });
        frag.append(chip);
      }
    }
    for (const [name, label] of TEXTS) {
      const value = state.texts[name];
      if (!value) continue;
      const chip = el("button", "chip");
      chip.type = "button";
      chip.title = "remove this filter";
      chip.append(el("span", "chip-key", label + ":"), el("span", "chip-value", value), el("span", "chip-x", "×"));
      chip.addEventListener("click", () => {
        const st = copyState();
        st.texts[name] = "";
        st.idx = 0;
        navigate(st);
      });
      frag.append(chip);
    }
    if (state.q) {
      const chip = el("button", "chip");
      chip.type = "button";
      chip.append(el("span", "chip-key", "Name:"), el("span", "chip-value", state.q), el("span", "chip-x", "×"));
      chip.addEventListener("click", () => {
        const st = copyState();
        st.q = "";
        st.idx = 0;
        navigate(st);
      });
      frag.append(chip);
    }
    holder.replaceChildren(frag);
  }

  // ------------------------------------------------------------------ summary chart

  /** Horizontal bars, drawn in pixels at the holder's width (text never scales). */
  function drawBars(holder, items, total) {
    if (!items.length) {
      holder.replaceChildren(el("p", "muted", "nothing to show"));
      return;
    }
    const rowH = 16;
    const width = Math.max(260, holder.clientWidth || 420);
    const labelW = 86;
    const valueW = 118;
    const height = items.length * rowH;
    const max = Math.max(1, ...items.map((it) => it.value));
    const svg = svgEl("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars"});
    const title = svgEl("title");
    title.textContent = items.map((it) => it.label + " " + NF.format(it.value)).join(", ");
    svg.append(title);
    items.forEach((it, i) => {
      const y = i * rowH;
      const label = svgEl("text", {x: labelW - 6, y: y + 12, "text-anchor": "end", class: "bar-text"});
      label.textContent = it.label;
      const w = (width - labelW - valueW) * it.value / max;
      const rect = svgEl("rect", {x: labelW, y: y + 2, width: Math.max(it.value ? 1 : 0, w).toFixed(1),
        height: rowH - 4, rx: 2, class: "bar-rect " + (it.cls || "")});
      const value = svgEl("text", {x: labelW + w + 4, y: y + 12, class: "bar-text value"});
      value.textContent = NF.format(it.value) + (total ? " (" + pct(it.value / total) + ")" : "");
      svg.append(label, rect, value);
    });
    holder.replaceChildren(svg);
  }

  /** Vertical columns with slanted labels, drawn in pixels at the holder's width. */
  function drawColumns(holder, items, total) {
    if (!items.length) {
      holder.replaceChildren(el("p", "muted", "nothing to show"));
      return;
    }
    const width = Math.max(260, holder.clientWidth || 420);
    const plotH = 92;
    const labelH = 66;
    const top = 14;
    const left = 44;
    const height = top + plotH + labelH;
    const step = (width - left) / items.length;
    const colW = Math.max(4, Math.min(36, step * 0.7));
    const max = Math.max(1, ...items.map((it) => it.value));
    const svg = svgEl("svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars"});
    const title = svgEl("title");
    title.textContent = items.map((it) => it.label + " " + NF.format(it.value)).join(", ");
    svg.append(title);
    items.forEach((it, i) => {
      const cx = left + step * i + step / 2;
      const h = plotH * it.value / max;
      const rect = svgEl("rect", {x: (cx - colW / 2).toFixed(1), y: (top + plotH - h).toFixed(1), width: colW.toFixed(1),
        height: Math.max(it.value ? 1 : 0, h).toFixed(1), rx: 2, class: "bar-rect " + (it.cls || "")});
      const tip = svgEl("title");
      tip.textContent = it.label + ": " + NF.format(it.value) + (total ? " (" + pct(it.value / total) + ")" : "");
      rect.append(tip);
      const value = svgEl("text", {x: cx.toFixed(1), y: (top + plotH - h - 3).toFixed(1), "text-anchor": "middle",
        class: "bar-text value small"});
      value.textContent = compact(it.value);
      const ly = top + plotH + 10;
      const label = svgEl("text", {x: cx.toFixed(1), y: ly, "text-anchor": "end", class: "bar-text small",
        transform: `rotate(-40 ${cx.toFixed(1)} ${ly})`});
      label.textContent = it.label.length > 16 ? it.label.slice(0, 15) + "…" : it.label;
      svg.append(rect, value, label);
    });
    holder.replaceChildren(svg);
  }

  function compact(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
    if (n >= 1e4) return Math.round(n / 1e3) + "k";
    return NF.format(n);
  }

  let summaryKey = null;

  /** The summary chart; not asked again when only the sort or the page changed. */
  async function loadSummary() {
    const params = filterParams(state);
    const key = params.toString();
    if (key === summaryKey) return;
    summaryKey = key;
    let data;
    try {
      data = await api("summary", params, "summary");
    } catch (err) {
      if (!isAbort(err)) summaryKey = null;
      failed(err, "the summary");
      return;
    }
    const jobs = data.jobs || {};
    drawBars($("chart-jobs"), STATES.map(([key, label]) => ({label, value: jobs[key] || 0, cls: "s-" + key})),
      jobs.created || 0);
    drawColumns($("chart-status"), (data.statuses || []).map(([status, n]) => ({label: status, value: n, cls: "wf"})),
      data.workflows || 0);
    timings.summaries += 1;
    document.dispatchEvent(new CustomEvent("wmstats:summary-rendered"));
  }

  // ------------------------------------------------------------------ workflow table

  // fold: columns that do not fit the window fold away, the highest number first
  // (0: never).
  const COLUMNS = [
    {label: "Workflow", sort: "name", cls: "name", fold: 0},
    {label: "Status", sort: "status", fold: 0},
    {label: "Type", sort: "type", fold: 6},
    {label: "Campaign", sort: "campaign", fold: 3},
    {label: "Priority", sort: "priority", num: true, fold: 4},
    {label: "Queued", num: true, state: "queued", fold: 8},
    {label: "Pending", sort: "pending", num: true, state: "pending", fold: 1},
    {label: "Running", sort: "running", num: true, state: "running", fold: 0},
    {label: "Cooloff", num: true, state: "cooloff", fold: 2},
    {label: "Paused", num: true, state: "paused", fold: 9},
    {label: "Success", sort: "success", num: true, state: "success", fold: 0},
    {label: "Failure", num: true, state: "failure", fold: 0},
    {label: "Jobs done", title: "job progress: (success + failure + canceled) / jobs created", fold: 5},
    {label: "Events", title: "event progress: events written / expected, for the output dataset furthest behind", fold: 7},
    {label: "Fail %", num: true, title: "failure rate: failure / (success + failure)", fold: 1},
    {label: "Changed", sort: "changed", title: "last status change", fold: 5},
  ];

  /** Fold away the columns that do not fit (highest fold number first), so that the
   * table never scrolls sideways; the header says how many are folded. */
  function fitTable(table, columns) {
    const wrap = table.parentElement;
    const cells = (i) => table.querySelectorAll("tr > :nth-child(" + (i + 1) + ")");
    columns.forEach((_, i) => { for (const c of cells(i)) c.classList.remove("folded"); });
    const order = columns.map((c, i) => [c.fold || 0, i]).filter(([f]) => f > 0).sort((a, b) => b[0] - a[0]);
    const folded = [];
    for (const [, i] of order) {
      if (wrap.scrollWidth <= wrap.clientWidth + 1) break;
      for (const c of cells(i)) c.classList.add("folded");
      folded.push(columns[i].label);
    }
    table.dataset.folded = String(folded.length);
    table.title = folded.length ? "columns folded away to fit the window: " + folded.join(", ") : "";
  }

  function sortHeader(row, columns, current, onSort) {
    row.replaceChildren();
    for (const col of columns) {
      const th = el("th", col.num ? "num" : null);
      if (col.title) th.title = col.title;
      if (col.sort) {
        const btn = el("button", "sort", col.label);
        btn.type = "button";
        btn.dataset.sort = col.sort;
        const desc = current === "-" + col.sort;
        const asc = current === col.sort;
        if (asc || desc) {
          btn.classList.add(desc ? "desc" : "asc");
          th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        }
        btn.addEventListener("click", () => onSort(col, asc, desc));
        th.append(btn);
      } else {
        th.textContent = col.label;
      }
      row.append(th);
    }
  }

  function workflowHref(name) {
    const st = copyState();
    st.wf = name;
    return stateUrl(st);
  }

  function nameCell(name) {
    const cell = el("td", "name");
    const link = el("a", "wf-link");
    link.append(breakable(name));
    link.href = workflowHref(name);
    link.title = name;
    link.addEventListener("click", (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      const st = copyState();
      st.wf = name;
      navigate(st);
    });
    cell.append(link);
    return cell;
  }

  let renderStart = 0;

  function markRendered() {
    const now = performance.now();
    timings.renders += 1;
    performance.mark("wmstats:render");
    if (timings.firstRender === null) {
      timings.firstRender = now;
      performance.mark("wmstats:first-render");
    }
    timings.lastRender = {start: renderStart, end: now};
    const root = document.documentElement;
    root.dataset.renders = String(timings.renders);
    root.dataset.ready = "1";
    document.dispatchEvent(new CustomEvent("wmstats:rendered", {detail: {renders: timings.renders}}));
  }

  async function loadTable() {
    const table = $("workflows");
    const params = filterParams(state);
    if (state.sort) params.set("sort", state.sort);
    if (state.idx) params.set("idx", String(state.idx));
    params.set("limit", String(state.limit));
    table.classList.add("loading");
    table.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await api("workflows", params, "table");
    } catch (err) {
      if (isAbort(err)) return;
      table.classList.remove("loading");
      table.removeAttribute("aria-busy");
      failed(err, "the workflows");
      const body = table.tBodies[0];
      if (!body.rows.length) {
        const row = el("tr", "empty");
        const cell = el("td", null, "No data: the workflows could not be loaded.");
        cell.colSpan = COLUMNS.length;
        row.append(cell);
        body.replaceChildren(row);
      }
      return;
    }
    if (bannerKind === "error") hideBanner("error");
    lastSnapshot = data.snapshot;
    renderTable(data);
    table.classList.remove("loading");
    table.removeAttribute("aria-busy");
    markRendered();
    loadEvents(data.rows.map((r) => r.name));
  }

  function renderTable(data) {
    const table = $("workflows");
    const head = table.tHead;
    if (!head.rows.length) head.append(el("tr"));
    sortHeader(head.rows[0], COLUMNS, state.sort, (col, asc, desc) => {
      const st = copyState();
      // First click: numbers descending, text ascending; then toggle.
      if (asc) st.sort = "-" + col.sort;
      else if (desc) st.sort = col.sort;
      else st.sort = col.num || col.sort === "changed" ? "-" + col.sort : col.sort;
      st.idx = 0;
      navigate(st);
    });
    const frag = document.createDocumentFragment();
    for (const r of data.rows) {
      const row = el("tr");
      row.dataset.name = r.name;
      row.append(nameCell(r.name));
      const status = td(r.status, "status");
      status.dataset.status = r.status;
      row.append(status, td(r.type), td(r.campaign, "campaign"), numTd(r.priority));
      for (const [key] of STATES.slice(0, 7)) row.append(numTd(r.jobs[key], "s-" + key));
      const jp = el("td", "progress");
      jp.append(bar(r.jobProgress));
      jp.title = num(r.jobs.success + r.jobs.failure + r.jobs.canceled) + " of " + num(r.jobs.created) +
        " jobs created done; " + num(r.estimated) + " estimated";
      const ev = el("td", "progress events");
      ev.append(el("span", "muted", "…"));
      const fr = el("td", "num", pct(r.failureRate));
      if (r.failureRate > 0.1) fr.classList.add("bad");
      const changed = el("td", "time", ago(r.statusTime));
      changed.title = isoTime(r.statusTime);
      row.append(jp, ev, fr, changed);
      frag.append(row);
    }
    if (!data.rows.length) {
      const row = el("tr", "empty");
      const cell = el("td", null, data.total ? "No workflow on this page." : "No workflow matches these filters.");
      cell.colSpan = COLUMNS.length;
      row.append(cell);
      frag.append(row);
    }
    table.tBodies[0].replaceChildren(frag);
    fitTable(table, COLUMNS);
    $("count").textContent = NF.format(data.total) + (data.total === 1 ? " workflow" : " workflows");
    renderPager($("pager-top"), data);
    renderPager($("pager-bottom"), data);
  }

  function renderPager(holder, data) {
    const pages = Math.max(1, Math.ceil(data.total / state.limit));
    const page = Math.floor(state.idx / state.limit) + 1;
    const frag = document.createDocumentFragment();
    const go = (idx) => {
      const st = copyState();
      st.idx = idx;
      navigate(st);
    };
    const button = (label, idx, enabled, title) => {
      const b = el("button", "page-btn", label);
      b.type = "button";
      b.title = title;
      b.disabled = !enabled;
      b.dataset.page = title;
      b.addEventListener("click", () => go(idx));
      return b;
    };
    frag.append(
      button("«", 0, page > 1, "first"),
      button("‹", Math.max(0, state.idx - state.limit), page > 1, "previous"),
      el("span", "page-of", "page " + NF.format(page) + " of " + NF.format(pages)),
      button("›", state.idx + state.limit, page < pages, "next"),
      button("»", (pages - 1) * state.limit, page < pages, "last"));
    const size = el("select", "page-size");
    size.setAttribute("aria-label", "rows per page");
    for (const n of LIMITS) {
      const opt = el("option", null, n + " / page");
      opt.value = String(n);
      opt.selected = n === state.limit;
      size.append(opt);
    }
    size.addEventListener("change", () => {
      const st = copyState();
      st.limit = parseInt(size.value, 10);
      st.idx = 0;
      navigate(st);
    });
    frag.append(size);
    holder.replaceChildren(frag);
  }

  /** Event progress of the rows, asked in chunks (the names go in the query string). */
  async function loadEvents(names) {
    if (!names.length) return;
    const chunks = [];
    for (let i = 0; i < names.length; i += EVENTS_CHUNK) chunks.push(names.slice(i, i + EVENTS_CHUNK));
    let answers;
    try {
      answers = await Promise.all(chunks.map((chunk, i) => {
        const params = new URLSearchParams();
        for (const n of chunk) params.append("name", n);
        return api("events", params, "events-" + i);
      }));
    } catch (err) {
      if (!isAbort(err)) {
        for (const cell of document.querySelectorAll("#workflows td.events")) cell.replaceChildren(el("span", "muted", "?"));
      }
      return;
    }
    const progress = Object.assign({}, ...answers.map((a) => a.progress || {}));
    for (const row of $("workflows").tBodies[0].rows) {
      const name = row.dataset.name;
      const cell = row.querySelector("td.events");
      if (!cell || name === undefined || !Object.prototype.hasOwnProperty.call(progress, name)) continue;
      cell.replaceChildren(bar(progress[name], "events"));
    }
  }

  // ------------------------------------------------------------------ group views

  let groupSort = {key: "workflows", desc: true};
  let groupData = null;

  const GROUP_COLUMNS = [
    {label: "", key: "value", cls: "name"},
    {label: "Workflows", key: "workflows", num: true},
    {label: "By status"},
    ...STATES.slice(0, 7).map(([key, label]) => ({label, key: "jobs." + key, num: true})),
    {label: "Job progress", key: "jobProgress", num: true},
    {label: "Failure rate", key: "failureRate", num: true},
  ];

  function pick(item, key) {
    return key.split(".").reduce((v, k) => (v === null || v === undefined ? v : v[k]), item);
  }

  async function loadGroups() {
    const by = state.view;
    const table = $("groups");
    table.classList.add("loading");
    let data;
    try {
      data = await api("groups/" + by, filterParams(state), "groups");
    } catch (err) {
      if (isAbort(err)) return;
      table.classList.remove("loading");
      failed(err, "the " + GROUP_VIEWS[by].toLowerCase() + " list");
      return;
    }
    if (bannerKind === "error") hideBanner("error");
    groupData = data;
    renderGroups();
    table.classList.remove("loading");
  }

  function renderGroups() {
    const data = groupData;
    const by = data.by;
    const table = $("groups");
    const columns = GROUP_COLUMNS.map((c) => Object.assign({}, c, c.key ? {sort: c.key} : {}));
    columns[0].label = GROUP_VIEWS[by];
    const head = table.tHead;
    if (!head.rows.length) head.append(el("tr"));
    const current = (groupSort.desc ? "-" : "") + groupSort.key;
    sortHeader(head.rows[0], columns, current, (col, asc) => {
      groupSort = {key: col.sort, desc: col.sort === "value" ? asc : !(groupSort.key === col.sort && groupSort.desc)};
      renderGroups();
    });
    const items = data.items.slice();
    const dir = groupSort.desc ? -1 : 1;
    items.sort((a, b) => {
      const x = pick(a, groupSort.key);
      const y = pick(b, groupSort.key);
      if (x === y) return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    const frag = document.createDocumentFragment();
    for (const item of items) {
      const row = el("tr");
      const cell = el("td", "name");
      const link = el("a", "group-link", item.value || "(none)");
      const st = copyState();
      st.filters[by] = [item.value];
      st.view = "workflows";
      st.idx = 0;
      link.href = stateUrl(st);
      link.title = "show the workflows of " + item.value;
      link.addEventListener("click", (ev) => {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
        ev.preventDefault();
        navigate(st);
      });
      cell.append(link);
      row.append(cell, numTd(item.workflows));
      const statuses = item.statuses.slice().sort((a, b) => b[1] - a[1]);
      const text = statuses.slice(0, 3).map(([s, n]) => s + " " + NF.format(n)).join(" · ") +
        (statuses.length > 3 ? " · …" : "");
      const sc = el("td", "statuses", text);
      sc.title = statuses.map(([s, n]) => s + ": " + NF.format(n)).join("\n");
      row.append(sc);
      for (const [key] of STATES.slice(0, 7)) row.append(numTd(item.jobs[key], "s-" + key));
      const jp = el("td", "progress");
      jp.append(bar(item.jobProgress));
      row.append(jp, el("td", "num", pct(item.failureRate)));
      frag.append(row);
    }
    if (!items.length) {
      const row = el("tr", "empty");
      const c = el("td", null, "Nothing matches these filters.");
      c.colSpan = columns.length;
      row.append(c);
      frag.append(row);
    }
    table.tBodies[0].replaceChildren(frag);
    $("group-count").textContent = NF.format(items.length) + " " + GROUP_VIEWS[by].toLowerCase() +
      (items.length === 1 ? "" : "s");
  }

  // ------------------------------------------------------------------ agent status view

  async function loadAgents() {
    const table = $("agents");
    table.classList.add("loading");
    let data;
    try {
      data = await api("agents", null, "agents");
    } catch (err) {
      if (isAbort(err)) return;
      table.classList.remove("loading");
      failed(err, "the agents");
      return;
    }
    if (bannerKind === "error") hideBanner("error");
    const head = table.tHead;
    const labels = ["Agent", "Team", "Version", "Status", "Why", "Reported", "Heartbeat", "Data upload",
      "Workflows", "Pending", "Running", "Cooloff", "Failure"];
    const hr = el("tr");
    for (const l of labels) hr.append(el("th", null, l));
    head.replaceChildren(hr);
    const frag = document.createDocumentFragment();
    let focused = null;
    for (const item of data.items) {
      const a = item.agent || {};
      const row = el("tr");
      row.dataset.agent = item.value;
      const name = el("td", "name");
      const link = el("a", "group-link");
      link.append(breakable(item.value));
      const st = emptyState();
      st.filters.agent = [item.value];
      link.href = stateUrl(st);
      link.title = "show the workflows of " + item.value;
      link.addEventListener("click", (ev) => {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
        ev.preventDefault();
        navigate(st);
      });
      name.append(link);
      const dump = jobDumpUrl(item.value, "", "");
      if (dump) name.append(" ", outLink(dump, "job dump", "small"));
      const derived = a.DerivedStatus || (item.agent ? "ok" : "unknown");
      const status = el("td", "agent-status", derived);
      status.dataset.agentStatus = derived;
      const reasons = a.StatusReasons || [];
      const why = el("td", "why");
      for (const reason of reasons) why.append(el("div", null, reason));
      if (!reasons.length) why.append(el("span", "muted", item.agent ? "all fine" : "no heartbeat document"));
      const details = (a.ComponentErrors || []).concat(a.DiskUsage || []);
      if (details.length) why.title = details.join("\n");
      const reported = el("td", "reported", a.Status || "");
      reported.title = "the status the agent itself reports";
      const hb = el("td", "time", ago(a.Timestamp));
      hb.title = isoTime(a.Timestamp);
      const up = el("td", "time", ago(a.DataLastUpdate));
      up.title = isoTime(a.DataLastUpdate);
      row.append(name, td(a.AgentTeam || ""), td(a.AgentVersion || ""), status, why, reported, hb, up,
        numTd(item.workflows), numTd(item.jobs.pending), numTd(item.jobs.running), numTd(item.jobs.cooloff),
        numTd(item.jobs.failure));
      if (state.focus && state.focus === item.value) {
        row.classList.add("focus");
        focused = row;
      }
      frag.append(row);
    }
    if (!data.items.length) {
      const row = el("tr", "empty");
      const c = el("td", null, "No agent reports.");
      c.colSpan = labels.length;
      row.append(c);
      frag.append(row);
    }
    table.tBodies[0].replaceChildren(frag);
    table.classList.remove("loading");
    const troubled = data.items.filter((i) => i.agent && i.agent.DerivedStatus && i.agent.DerivedStatus !== "ok").length;
    $("agent-count").textContent = NF.format(data.items.length) + " agents" +
      (troubled ? " · " + NF.format(troubled) + " not ok" : "");
    if (focused) focused.scrollIntoView({block: "center"});
    document.dispatchEvent(new CustomEvent("wmstats:agents-rendered"));
  }

  // ------------------------------------------------------------------ alerts view

  const ALERT_LABELS = {
    "failed": "failed", "config-error": "config error", "site-error": "site error",
    "assigned-stall": "assigned too long", "status-stall": "stalled", "agent-down": "agent down",
    "agent-components": "components down", "agent-data-error": "data error",
    "agent-couch": "CouchDB processes", "agent-proxy": "proxy", "agent-disk": "disk full",
    "agent-status": "agent status",
  };

  function agentHref(url) {
    const st = emptyState();
    st.view = "agents";
    st.focus = url;
    return stateUrl(st);
  }

  function inPageLink(text, st, cls) {
    const link = el("a", cls);
    link.append(breakable(text));
    link.href = stateUrl(st);
    link.addEventListener("click", (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      navigate(st);
    });
    return link;
  }

  async function loadAlerts() {
    const table = $("alerts");
    table.classList.add("loading");
    const params = new URLSearchParams();
    if (state.akind) params.set("kind", state.akind);
    let data;
    try {
      data = await api("alerts", params, "alerts");
    } catch (err) {
      if (isAbort(err)) return;
      table.classList.remove("loading");
      failed(err, "the alerts");
      return;
    }
    if (bannerKind === "error") hideBanner("error");
    renderAlertKinds(data);
    const head = table.tHead;
    const labels = ["", "Alert", "Workflow or agent", "Status", "Since", "What", "Sites", "Jobs f/s/r/p"];
    const hr = el("tr");
    for (const l of labels) hr.append(el("th", null, l));
    head.replaceChildren(hr);
    const frag = document.createDocumentFragment();
    for (const a of data.alerts) {
      const row = el("tr", "alert " + a.severity);
      row.dataset.kind = a.kind;
      const sev = el("td", "severity");
      sev.append(el("span", "sev " + a.severity, a.severity));
      const what = el("td", "name");
      if (a.workflow) {
        const st = copyState();
        st.wf = a.workflow;
        for (const [key] of JOB_FILTERS) st.jobs[key] = "";
        what.append(inPageLink(a.workflow, st, "wf-link"));
        const out = reqmgrUrl(a.workflow);
        if (out) what.append(" ", outLink(out, "ReqMgr2", "small"));
      } else {
        const st = emptyState();
        st.view = "agents";
        st.focus = a.agent;
        what.append(inPageLink(a.agent, st, "agent-link"));
      }
      const status = el("td", "status", a.status);
      if (a.status) status.dataset.status = a.status;
      const since = el("td", "time", ago(a.since));
      since.title = isoTime(a.since);
      const sites = el("td", "sites", a.sites.slice(0, 3).join(", ") + (a.sites.length > 3 ? ", …" : ""));
      sites.title = a.sites.join("\n");
      const jobs = el("td", "num", a.workflow ? [a.failed, a.success, a.running, a.pending].map(num).join(" / ") : "");
      row.append(sev, td(ALERT_LABELS[a.kind] || a.kind, "kind"), what, status, since, td(a.message, "message"),
        sites, jobs);
      frag.append(row);
    }
    if (!data.alerts.length) {
      const row = el("tr", "empty");
      const c = el("td", null, state.akind ? "No alert of this kind." : "Nothing needs attention.");
      c.colSpan = labels.length;
      row.append(c);
      frag.append(row);
    }
    table.tBodies[0].replaceChildren(frag);
    table.classList.remove("loading");
    $("alert-count").textContent = NF.format(data.total) + (data.total === 1 ? " alert" : " alerts") +
      (data.truncated ? " (first " + NF.format(data.shown) + " shown)" : "");
    showBadge(state.akind ? null : data.total);
    document.dispatchEvent(new CustomEvent("wmstats:alerts-rendered"));
  }

  function renderAlertKinds(data) {
    const holder = $("alert-kinds");
    const frag = document.createDocumentFragment();
    const kinds = Object.keys(ALERT_LABELS).filter((k) => data.counts[k] || k === state.akind);
    const button = (kind, label, count) => {
      const b = el("button", "kind-chip" + (state.akind === kind ? " on" : ""));
      b.type = "button";
      b.dataset.kind = kind;
      b.append(el("span", null, label), el("span", "facet-n", count === null ? "" : " " + num(count)));
      b.addEventListener("click", () => {
        const st = copyState();
        st.akind = kind;
        navigate(st);
      });
      return b;
    };
    frag.append(button("", "all", null));
    for (const kind of kinds) frag.append(button(kind, ALERT_LABELS[kind], data.counts[kind] || 0));
    holder.replaceChildren(frag);
  }

  /** The Alerts tab's count badge (null: leave it). */
  function showBadge(total) {
    if (total === null || total === undefined) return;
    const badge = $("alert-badge");
    badge.textContent = total > 999 ? "999+" : String(total);
    badge.hidden = !total;
    badge.title = NF.format(total) + " alerts";
  }

  async function pollBadge() {
    const params = new URLSearchParams();
    params.set("limit", "0");
    try {
      const data = await api("alerts", params, "badge");
      showBadge(data.total);
    } catch (err) {
      // the status poll reports an unreachable server
    }
  }

  // ------------------------------------------------------------------ detail view

  function kvTable(pairs) {
    const dl = el("dl", "kv");
    for (const [key, value] of pairs) {
      if (value === "" || value === null || value === undefined) continue;
      if (Array.isArray(value) && !value.length) continue;
      dl.append(el("dt", null, key));
      const dd = el("dd");
      if (Array.isArray(value)) {
        for (const v of value) dd.append(el("div", null, v));
      } else if (value instanceof Node) {
        dd.append(value);
      } else {
        dd.textContent = String(value);
      }
      dl.append(dd);
    }
    return dl;
  }

  function simpleTable(columns, rows, cls) {
    const table = el("table", "grid " + (cls || ""));
    const head = el("thead");
    const hr = el("tr");
    for (const c of columns) hr.append(el("th", c.num ? "num" : null, c.label));
    head.append(hr);
    const body = el("tbody");
    for (const r of rows) {
      const tr = el("tr");
      for (const c of columns) {
        const v = c.get(r);
        if (v instanceof Node) {
          const cell = el("td", c.cls);
          cell.append(v);
          tr.append(cell);
        } else if (c.num) {
          tr.append(numTd(v, c.cls));
        } else {
          const name = c.cls === "name" && typeof v === "string";
          const cell = el("td", c.cls, name ? null : v);
          if (name) cell.append(breakable(v));
          if (c.title) cell.title = c.title(r);
          tr.append(cell);
        }
      }
      body.append(tr);
    }
    if (!rows.length) {
      const tr = el("tr", "empty");
      const cell = el("td", null, "none");
      cell.colSpan = columns.length;
      tr.append(cell);
      body.append(tr);
    }
    table.append(head, body);
    const wrap = el("div", "table-wrap");
    wrap.append(table);
    return wrap;
  }

  const JOB_COLUMNS = STATES.slice(0, 8).map(([key, label]) => ({label, num: true, cls: "s-" + key, get: (r) => r.jobs[key]}));

  async function loadDetail() {
    const holder = $("detail");
    holder.replaceChildren(el("p", "muted", "Loading " + state.wf + "…"));
    let d;
    try {
      d = await api("workflow/" + encodeURIComponent(state.wf), null, "detail");
    } catch (err) {
      if (isAbort(err)) return;
      if (err instanceof ApiFailure && err.status === 404) {
        holder.replaceChildren(el("p", "empty-state", "No workflow named " + state.wf + "."));
        return;
      }
      holder.replaceChildren(el("p", "empty-state", "Cannot load this workflow."));
      failed(err, "the workflow");
      return;
    }
    if (bannerKind === "error") hideBanner("error");
    const m = d.meta;
    const frag = document.createDocumentFragment();
    const title = el("h2", "wf-title");
    title.append(breakable(d.name));
    frag.append(title);
    const out = reqmgrUrl(d.name);
    if (out) {
      const links = el("div", "links");
      links.append(outLink(out, "ReqMgr2 request page", "reqmgr"));
      frag.append(links);
    }
    const figures = el("div", "figures");
    const fig = (label, node) => {
      const box = el("div", "figure");
      box.append(el("div", "figure-label", label), node);
      figures.append(box);
    };
    const status = el("span", "status", m.RequestStatus);
    status.dataset.status = m.RequestStatus;
    fig("Status", status);
    fig("Jobs created", el("span", "figure-value", num(d.jobs.created)));
    fig("Estimated jobs", el("span", "figure-value", num(m.TotalEstimatedJobs)));
    fig("Job progress", bar(d.jobProgress));
    fig("Event progress", bar(d.eventProgress, "events"));
    fig("Failure rate", el("span", "figure-value", pct(d.failureRate)));
    fig("Cooloff", el("span", "figure-value", num(d.jobs.cooloff)));
    fig("Priority", el("span", "figure-value", num(m.RequestPriority)));
    frag.append(figures);
    const chart = el("div", "chart-body wide");
    drawBars(chart, STATES.map(([key, label]) => ({label, value: d.jobs[key] || 0, cls: "s-" + key})), d.jobs.created);
    frag.append(el("h3", null, "Jobs by state"), chart);
    const jobsHead = el("h3", null, "Failed and retried jobs: by task, state, exit code and site");
    jobsHead.id = "jobs-title";
    const jobsView = el("div", "jobs-view");
    jobsView.id = "jobs-view";
    jobsView.append(el("p", "muted", "Loading the jobs…"));
    frag.append(jobsHead, jobsView);
    frag.append(el("h3", null, "Request"), kvTable([
      ["Type", m.RequestType + (m.SubRequestType ? " / " + m.SubRequestType : "")],
      ["Campaigns", m.Campaigns], ["Teams", m.Teams], ["Group", m.Group], ["Requestor", m.Requestor],
      ["PrepID", m.PrepID], ["Releases", m.CMSSWVersions], ["Architectures", m.ScramArch],
      ["Acquisition eras", m.AcquisitionEras], ["Processing strings", m.ProcessingStrings],
      ["Input dataset", m.InputDataset], ["MC pileup", m.MCPileup], ["Data pileup", m.DataPileup],
      ["Input events", m.TotalInputEvents ? num(m.TotalInputEvents) : ""],
      ["Events requested", m.RequestNumEvents ? num(m.RequestNumEvents) : ""],
      ["Input lumis", m.TotalInputLumis ? num(m.TotalInputLumis) : ""],
      ["Input files", m.TotalInputFiles ? num(m.TotalInputFiles) : ""],
      ["Created", isoTime(m.RequestDate)], ["Status changed", isoTime(m.StatusTime) + (m.StatusTime ? " (" + ago(m.StatusTime) + ")" : "")],
      ["Last agent report", isoTime(m.AgentUpdate)], ["Agents", m.Agents],
      ["Site whitelist", (m.SiteWhitelist || []).join(", ")], ["Site blacklist", (m.SiteBlacklist || []).join(", ")],
    ]));
    frag.append(el("h3", null, "Output datasets"), simpleTable([
      {label: "Dataset", get: (r) => r.dataset, cls: "name"},
      {label: "Events", num: true, get: (r) => r.events},
      {label: "Lumis", num: true, get: (r) => r.lumis},
      {label: "Size", get: (r) => bytes(r.size), cls: "num"},
      {label: "Progress", get: (r) => bar(r.progress, "events"), cls: "progress"},
    ], d.datasets, "datasets"));
    const shortTask = (path) => path.split("/").filter(Boolean).slice(1).join("/") || path;
    frag.append(el("h3", null, "Tasks"), simpleTable([
      {label: "Task", get: (r) => shortTask(r.value), cls: "name", title: (r) => r.value},
      {label: "Job type", get: (r) => r.jobType},
      ...JOB_COLUMNS,
      {label: "Progress", get: (r) => bar(r.jobProgress), cls: "progress"},
    ], d.tasks, "tasks"));
    frag.append(el("h3", null, "Sites"), simpleTable([
      {label: "Site", get: (r) => r.value, cls: "name"},
      {label: "Agents", get: (r) => r.agents.join(", ")},
      ...JOB_COLUMNS,
      {label: "Failure rate", get: (r) => pct(r.failureRate), cls: "num"},
    ], d.sites, "sites"));
    frag.append(el("h3", null, "Status history"), simpleTable([
      {label: "Status", get: (r) => r.Status},
      {label: "Time", get: (r) => isoTime(r.UpdateTime)},
      {label: "By", get: (r) => r.DN, cls: "dn"},
    ], d.transitions.slice().reverse(), "transitions"));
    holder.replaceChildren(frag);
    document.title = d.name + " · WMStats";
    loadJobs(d.name);
  }

  // ------------------------------------------------------------------ job view

  const FOLD_CHARS = 400;
  const FOLD_LINES = 6;

  /** Error details: shown whole when short, folded (first line shown) when long. */
  function detailsText(text) {
    const lines = text.split("\n");
    if (text.length <= FOLD_CHARS && lines.length <= FOLD_LINES) return el("pre", "details", text);
    const box = el("details", "long");
    const first = lines.find((l) => l.trim()) || "";
    box.append(el("summary", null, (first.length > 120 ? first.slice(0, 119) + "…" : first) +
      "  (" + NF.format(text.length) + " characters, " + NF.format(lines.length) + " lines)"));
    box.append(el("pre", "details", text));
    return box;
  }

  function sampleCard(workflow, s) {
    const card = el("div", "sample");
    card.dataset.job = s.job;
    const head = el("div", "sample-head");
    head.append(el("span", "job-name", s.job));
    const dump = jobDumpUrl(s.agent, workflow, s.job);
    head.append(" on ", dump ? outLink(dump, s.agent, "agent") : el("span", "agent", s.agent || "?"));
    if (s.time) {
      const when = el("span", "muted", " · " + ago(s.time));
      when.title = isoTime(s.time);
      head.append(when);
    }
    card.append(head);
    const error = s.step ? s.step + ": " + s.errorType + " (" + s.errorExitCode + ")" : "no error recorded";
    card.append(el("div", "error-line", error));
    if (s.details) card.append(detailsText(s.details));
    const facts = [];
    facts.push(["Job type", s.jobType], ["Retries", String(s.retryCount)], ["WMBS id", s.wmbsId ? String(s.wmbsId) : ""],
      ["Error types", s.errorTypes.join(", ")], ["Worker node", s.workerNode]);
    const kv = kvTable(facts);
    if (s.logUrl) kv.append(el("dt", null, "Log"), (() => { const dd = el("dd"); dd.append(outLink(s.logUrl, s.logUrl)); return dd; })());
    if (s.logArchive) kv.append(el("dt", null, "Log archive"), el("dd", "lfn", s.logArchive));
    if (s.logCollect.length) {
      const dd = el("dd", "lfn");
      for (const lfn of s.logCollect) dd.append(el("div", null, lfn));
      kv.append(el("dt", null, "LogCollect"), dd);
    }
    if (s.inputFiles.length) {
      const dd = el("dd", "lfn");
      for (const lfn of s.inputFiles) dd.append(el("div", null, lfn));
      kv.append(el("dt", null, "Input"), dd);
    }
    card.append(kv);
    return card;
  }

  function jobFilterChips(data) {
    const row = el("div", "job-filters");
    const groups = [["jstate", "State", data.states], ["jcode", "Exit code", data.exitCodes],
      ["jsite", "Site", data.sites]];
    for (const [key, label, values] of groups) {
      const box = el("div", "job-filter");
      box.append(el("span", "chip-key", label + ":"));
      for (const [value, count] of values.slice(0, 12)) {
        const on = state.jobs[key] === String(value);
        const b = el("button", "kind-chip" + (on ? " on" : ""));
        b.type = "button";
        b.dataset.filter = key;
        b.dataset.value = String(value);
        b.append(el("span", null, value === "" ? "(none)" : String(value)), el("span", "facet-n", " " + num(count)));
        b.title = on ? "show every " + label.toLowerCase() : "only " + label.toLowerCase() + " " + value;
        b.addEventListener("click", () => {
          const st = copyState();
          st.jobs[key] = on ? "" : String(value);
          navigate(st);
        });
        box.append(b);
      }
      row.append(box);
    }
    return row;
  }

  async function loadJobs(name) {
    const params = new URLSearchParams();
    for (const [key, param] of JOB_FILTERS) if (state.jobs[key]) params.set(param, state.jobs[key]);
    let data;
    try {
      data = await api("jobs/" + encodeURIComponent(name), params, "jobs");
    } catch (err) {
      if (isAbort(err)) return;
      const holder = $("jobs-view");
      if (holder) holder.replaceChildren(el("p", "empty-state", "Cannot load the jobs of this workflow."));
      failed(err, "the jobs");
      return;
    }
    renderJobs(name, data);
  }

  function renderJobs(name, data) {
    const holder = $("jobs-view");
    if (!holder) return;
    const frag = document.createDocumentFragment();
    const filtering = JOB_FILTERS.some(([key]) => state.jobs[key]);
    if (!data.total && !filtering) {
      holder.replaceChildren(el("p", "empty-state", "No failed or retried job reported for this workflow."));
      document.dispatchEvent(new CustomEvent("wmstats:jobs-rendered"));
      return;
    }
    frag.append(jobFilterChips(data));
    frag.append(el("p", "count", NF.format(data.total) + (data.total === 1 ? " job" : " jobs") +
      (filtering ? " (filtered)" : "") + " in " + NF.format(data.tasks.length) +
      (data.tasks.length === 1 ? " task" : " tasks")));
    for (const task of data.tasks) {
      const section = el("section", "job-task");
      section.dataset.task = task.task;
      const h = el("h4", "task-name");
      h.title = task.task;
      h.append(breakable(task.short), el("span", "facet-n", "  " + NF.format(task.jobs) + " jobs"));
      section.append(h);
      const table = el("table", "grid jobs");
      const thead = el("thead");
      const hr = el("tr");
      for (const [label, numeric] of [["State", false], ["Exit code", true], ["Site", false], ["Agents", false],
        ["Jobs", true], ["Samples", false]]) hr.append(el("th", numeric ? "num" : null, label));
      thead.append(hr);
      const body = el("tbody");
      for (const g of task.groups) {
        const tr = el("tr", "job-group");
        tr.dataset.state = g.state;
        tr.dataset.exitCode = String(g.exitCode);
        tr.dataset.site = g.site;
        const code = el("td", "num code", String(g.exitCode));
        if (g.exitCode) code.classList.add("bad");
        const open = el("td", "open");
        const samplesRow = el("tr", "samples-row");
        samplesRow.hidden = true;
        const cell = el("td");
        cell.colSpan = 6;
        samplesRow.append(cell);
        if (g.samples.length) {
          const btn = el("button", "open-samples", "show " + g.samples.length);
          btn.type = "button";
          btn.setAttribute("aria-expanded", "false");
          btn.addEventListener("click", () => {
            const showing = samplesRow.hidden;
            if (showing && !cell.childNodes.length) for (const s of g.samples) cell.append(sampleCard(name, s));
            samplesRow.hidden = !showing;
            btn.textContent = showing ? "hide" : "show " + g.samples.length;
            btn.setAttribute("aria-expanded", String(showing));
          });
          open.append(btn);
        } else {
          open.append(el("span", "muted", "none kept"));
        }
        tr.append(td(g.state, "state"), code, td(g.site || "(unknown)", "site"), td(g.agents.join(", "), "agents"),
          numTd(g.jobs), open);
        body.append(tr, samplesRow);
      }
      table.append(thead, body);
      const wrap = el("div", "table-wrap");
      wrap.append(table);
      section.append(wrap);
      frag.append(section);
    }
    holder.replaceChildren(frag);
    document.dispatchEvent(new CustomEvent("wmstats:jobs-rendered"));
  }

  // ------------------------------------------------------------------ views

  function showView(id) {
    for (const v of ["view-workflows", "view-groups", "view-agents", "view-alerts", "view-detail"]) {
      $(v).hidden = v !== id;
    }
    const side = id === "view-agents" || id === "view-detail" || id === "view-alerts";
    $("summary").hidden = !(id === "view-workflows" || id === "view-groups");
    $("filters").hidden = side;
    $("chips").hidden = side;
  }

  function refresh() {
    if (state.wf) {
      showView("view-detail");
      const back = copyState();
      back.wf = "";
      $("detail-back").href = stateUrl(back);
      loadDetail();
      return;
    }
    document.title = "WMStats";
    if (state.view === "agents") {
      showView("view-agents");
      loadAgents();
    } else if (state.view === "alerts") {
      showView("view-alerts");
      loadAlerts();
    } else if (GROUP_VIEWS[state.view]) {
      showView("view-groups");
      loadGroups();
      loadSummary();
    } else {
      showView("view-workflows");
      renderStart = performance.now();
      loadTable();
      loadSummary();
    }
  }

  // ------------------------------------------------------------------ events

  function onFacetChange(ev) {
    const input = ev.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "checkbox") return;
    const st = copyState();
    const values = st.filters[input.name].filter((v) => v !== input.value);
    if (input.checked) values.push(input.value);
    st.filters[input.name] = values;
    st.idx = 0;
    navigate(st);
  }

  let searchTimer = 0;

  function commitSearch() {
    clearTimeout(searchTimer);
    const q = $("q").value.trim();
    const texts = {};
    for (const [name] of TEXTS) {
      const input = $("text-" + name);
      texts[name] = input ? input.value.trim() : "";
    }
    if (q === state.q && TEXTS.every(([name]) => texts[name] === state.texts[name])) return;
    const st = copyState();
    st.q = q;
    st.texts = texts;
    st.idx = 0;
    navigate(st);
  }

  /** The view tabs: one per view the server has (a grouping view index.html
   * does not list gets a tab labelled by the server; one it no longer has goes). */
  function syncTabs() {
    const tabs = $("tabs");
    const last = tabs.querySelector('a[data-view="agents"]');
    for (const [name, label] of CONFIG.groups) {
      if (tabs.querySelector('a[data-view="' + CSS.escape(name) + '"]')) continue;
      const link = el("a", null, label);
      link.href = "?view=" + encodeURIComponent(name);
      link.dataset.view = name;
      tabs.insertBefore(link, last);
    }
    for (const link of tabs.querySelectorAll("a[data-view]")) {
      if (!VIEWS.includes(link.dataset.view)) link.remove();
    }
  }

  function init() {
    $("facets").addEventListener("change", onFacetChange);
    $("q").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(commitSearch, 300);
    });
    $("filter-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      commitSearch();
    });
    $("clear-filters").addEventListener("click", () => {
      const st = copyState();
      for (const [name] of FACETS) st.filters[name] = [];
      for (const [name] of TEXTS) st.texts[name] = "";
      st.q = "";
      st.idx = 0;
      $("q").value = "";
      for (const input of document.querySelectorAll("#texts input")) input.value = "";
      navigate(st);
    });
    syncTabs();
    renderTextFilters();
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (!$("view-workflows").hidden) fitTable($("workflows"), COLUMNS);
      }, 150);
    });
    for (const link of document.querySelectorAll("#tabs a")) {
      link.addEventListener("click", (ev) => {
        if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
        ev.preventDefault();
        const st = copyState();
        st.view = link.dataset.view;
        st.wf = "";
        st.idx = 0;
        navigate(st);
      });
    }
    $("detail-back").addEventListener("click", (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      const st = copyState();
      st.wf = "";
      navigate(st);
    });
    $("home").addEventListener("click", (ev) => {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
      ev.preventDefault();
      navigate(emptyState());
    });
    window.addEventListener("popstate", () => {
      state = readState();
      syncControls();
      refresh();
    });
    syncControls();
    refresh();
    loadFacets();
    pollStatus();
    pollBadge();
    setInterval(pollStatus, STATUS_POLL_MS);
    setInterval(pollBadge, STATUS_POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
