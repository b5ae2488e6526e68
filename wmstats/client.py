"""HTTP client of the wmstats cache server (``requests``).

::

    from wmstats.client import CacheClient

    with CacheClient("http://localhost:8250") as client:
        for wf in client.iter_workflows({"RequestStatus": "running-open"},
                                        fields=["RequestName", "Campaign"]):
            ...                                   # dicts, streamed page by page
        bundle = client.workflow("pdmvserv_task_...")   # WorkflowBundle
        site = client.site("T1_US_FNAL")                # SummaryPage
        for summary in client.sites():                  # one Summary per site
            ...

:meth:`CacheClient.iter_workflows` follows the server's pages as NDJSON over gzip
and parses line by line: memory stays flat whatever the number of workflows.
Pages are read from one store snapshot when possible; if the snapshot changes
between pages, :class:`SnapshotChangedError` is raised (the pages would not fit
together).

Every request has a timeout; connection errors, timeouts and 5xx answers are
retried by urllib3's ``Retry`` (mounted on the session for the server's URL),
with exponential backoff or, on a 503 that says ``Retry-After``, after that
long; a page stream that breaks off once the answer has begun resumes where it
stopped (the client's own loop).  A 4xx answer raises
:class:`RequestRejectedError` (:class:`NotFoundError` for 404) with the server's
``error``, ``detail`` and ``parameter``.
"""

from __future__ import annotations

import time
import typing
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs
import requests
import requests.adapters
import urllib3.util.request
from urllib3.util.retry import Retry

from wmstats._version import __version__
from wmstats.aggregates import BY_KEY
from wmstats.schema import (
    BUNDLE_PARTS,
    Agent,
    Alert,
    JobGroup,
    JobSample,
    Summary,
    Workflow,
    WorkflowBundle,
    WorkflowJobs,
)
from wmstats.serialize import converter, json_loads
from wmstats.stream import CODINGS

__all__ = [
    "CacheClient",
    "SummaryPage",
    "WorkflowPage",
    "AlertList",
    "ClientError",
    "RequestRejectedError",
    "NotFoundError",
    "ServerError",
    "TransportError",
    "SnapshotChangedError",
    "Filters",
    "ACCEPT_ENCODING",
]

#: The content codings this client asks for: those of the server
#: (:data:`wmstats.stream.CODINGS`, best first) that urllib3 decodes here (zstd with
#: ``backports.zstd`` or Python 3.14, br with ``brotli``; gzip always).
ACCEPT_ENCODING: Final = ", ".join(
    coding for coding in CODINGS
    if coding in urllib3.util.request.ACCEPT_ENCODING.split(",")) or "gzip"

#: Filters as query parameters: ``{"RequestStatus": ["running-open", "running-closed"],
#: "RequestPriority.ge": 100000}``; values are turned into strings.
Filters: TypeAlias = Mapping[str, "str | int | bool | Sequence[str | int | bool]"]

NDJSON: Final = "application/x-ndjson"
JSON: Final = "application/json"
_RETRY_STATUS: Final = frozenset({500, 502, 503, 504})
#: Page size when the server does not publish its NDJSON maximum.
_FALLBACK_PAGE: Final = 10_000


class _Retry(Retry):
    """urllib3's ``Retry`` with the client's waits: ``backoff_factor`` before the
    first retry, doubled each time (urllib3 waits nothing before the first), and
    no wait longer than :attr:`max_wait`, a ``Retry-After`` included."""

    #: The longest wait before a retry, seconds.
    max_wait: float = 30.0

    def new(self, **kw: Any) -> Any:
        retry = super().new(**kw)
        retry.max_wait = self.max_wait
        return retry

    def get_backoff_time(self) -> float:
        retries = len(self.history)
        if retries == 0:
            return 0.0
        return float(min(self.max_wait, self.backoff_factor * 2 ** (retries - 1)))

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(self.max_wait, seconds)


class ClientError(Exception):
    """Base class of everything :class:`CacheClient` raises."""


class RequestRejectedError(ClientError):
    """The server refused the request (HTTP 4xx); retrying the same request is useless.

    :param status: the HTTP status code.
    :param error: the server's short error code (``bad_request``, ``not_found``...).
    :param detail: what was wrong.
    :param parameter: the parameter at fault, if the server named one.
    :param url: the URL requested.
    """

    def __init__(self, status: int, error: str, detail: str, parameter: str | None,
                 url: str) -> None:
        where = f" ({parameter})" if parameter else ""
        super().__init__(f"HTTP {status} {error}{where}: {detail} [{url}]")
        self.status = status
        self.error = error
        self.detail = detail
        self.parameter = parameter
        self.url = url


class NotFoundError(RequestRejectedError):
    """HTTP 404: no such workflow, value or endpoint."""


class ServerError(ClientError):
    """HTTP 5xx, still after every retry.

    :param status: the last HTTP status code.
    :param url: the URL requested.
    """

    def __init__(self, status: int, detail: str, url: str) -> None:
        super().__init__(f"HTTP {status} from the server after retries: {detail} [{url}]")
        self.status = status
        self.url = url


class TransportError(ClientError):
    """The server could not be reached or the answer broke off, still after every retry."""


class SnapshotChangedError(ClientError):
    """The store's snapshot changed between the pages of one iteration."""


@attrs.frozen
class WorkflowPage:
    """One page of workflows (``/fetch`` or the workflow part of a summary page).

    :param workflows: the records as dicts (the field mask applied).
    :param total: workflows matching the query, over all pages.
    :param idx: offset of this page.
    :param limit: page size.
    :param snapshot: the store snapshot it was read from.
    :param next_url: URL of the next page, ``None`` on the last one.
    :param sources: on a server fed by a source (CouchDB): database -> the change
        sequence the snapshot reflects (opaque; compare for equality), else ``None``.
    """

    workflows: tuple[dict[str, Any], ...]
    total: int
    idx: int
    limit: int
    snapshot: str
    next_url: str | None
    sources: Mapping[str, str] | None = None


@attrs.frozen
class SummaryPage:
    """The summary of one site, campaign, agent or release, and a page of its workflows.

    :param summary: job counters and workflows by status.
    :param page: one page of the workflows holding the value.
    :param agent: for an agent, its heartbeat record (if the store has one).
    """

    summary: Summary
    page: WorkflowPage
    agent: Agent | None = None


@attrs.frozen
class AlertList:
    """The alerts of ``/alerts``.

    :param alerts: the alerts (at most ``limit`` when one was given).
    :param total: every alert matching the filters.
    :param counts: alerts per kind (of all of them).
    :param now: when they were evaluated (epoch seconds).
    :param snapshot: the store snapshot they reflect.
    :param agents: agents known, and agents with an alert.
    """

    alerts: tuple[Alert, ...]
    total: int
    counts: Mapping[str, int]
    now: int
    snapshot: str | None
    agents: tuple[int, int]


def _segment(value: str) -> str:
    """``value`` as one path segment: every reserved character percent-encoded, and
    ``.`` and ``..`` too (URL libraries would remove them as dot-segments)."""
    quoted = urllib.parse.quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _params(filters: Filters | None, extra: Mapping[str, Any] | None = None
            ) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in {**(filters or {}), **(extra or {})}.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            else:
                pairs.append((key, str(item)))
    return pairs


def _fields(fields: Sequence[str] | str | None) -> str | None:
    if fields is None:
        return None
    return fields if isinstance(fields, str) else ",".join(fields)


def _sort(sort: Sequence[str] | str | None) -> str | None:
    return _fields(sort)


class CacheClient:
    """A client of one cache server.

    :param base_url: the server's URL, with its mount prefix
        (``http://host:8250`` or ``https://host/wmstats``).
    :param timeout: seconds to connect, and to wait for each read.
    :param retries: further attempts after a connection error, timeout or 5xx.
    :param backoff: seconds before the first retry, doubled each time; a 503 with
        ``Retry-After`` waits what the server says instead.
    :param max_wait: the longest wait before a retry (``Retry-After`` included).
    :param page_size: workflows per request when iterating; by default the
        server's NDJSON maximum (read once from ``/info``), so that an iteration
        is one request, read from one snapshot, whenever it can be.
    :param session: a ``requests.Session`` to use (the client does not close it,
        but mounts its retrying adapter on it for ``base_url``).

    :attr:`headers` holds extra headers sent with every request (the UI server
    forwards a user's CMSWEB authentication headers through it).
    """

    def __init__(self, base_url: str, *, timeout: float | tuple[float, float] = (5.0, 60.0),
                 retries: int = 3, backoff: float = 0.5, max_wait: float = 30.0,
                 page_size: int | None = None,
                 session: requests.Session | None = None) -> None:
        if retries < 0 or backoff < 0 or max_wait < 0 or (
                page_size is not None and page_size < 1):
            raise ValueError("retries, backoff and max_wait must be >= 0, page_size >= 1")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.page_size = page_size
        #: extra headers sent with every request
        self.headers: dict[str, str] = {}
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.session.headers.setdefault("User-Agent", f"wmstats-client/{__version__}")
        retry = _Retry(total=retries, status_forcelist=_RETRY_STATUS,
                       allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=backoff,
                       raise_on_status=False, respect_retry_after_header=True)
        retry.max_wait = max_wait
        self.session.mount(self.base_url, requests.adapters.HTTPAdapter(max_retries=retry))
        # /healthz is asked once: a 503 there is an answer, not a failure.
        self.session.mount(self._url("healthz"), requests.adapters.HTTPAdapter(max_retries=0))

    def close(self) -> None:
        """Close the HTTP session (if the client made it)."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _url(self, path: str) -> str:
        return urllib.parse.urljoin(self.base_url, path.lstrip("/"))

    def _sleep(self, attempt: int) -> None:
        """The wait before resuming a broken body (urllib3 waits before the others)."""
        time.sleep(min(self.backoff * (2 ** attempt), self.max_wait))

    def _request(self, path: str, params: Sequence[tuple[str, str]] = (), *,
                 accept: str = JSON, stream: bool = False) -> requests.Response:
        """GET (retried by the session's adapter); returns a 2xx response (open
        if ``stream``).

        :raises RequestRejectedError: on 4xx.
        :raises ServerError: on 5xx after the retries.
        :raises TransportError: on connection errors after the retries.
        """
        url = self._url(path)
        headers = {**self.headers, "Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
        try:
            response = self.session.get(url, params=list(params) or None, headers=headers,
                                        timeout=self.timeout, stream=stream)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(f"cannot reach {url}: {exc}") from exc
        if response.status_code < 400:
            return response
        try:
            body = response.content
        except requests.RequestException:
            body = b""
        finally:
            response.close()
        self._raise_for(response.status_code, body, response.url)

    @staticmethod
    def _raise_for(status: int, body: bytes, url: str) -> typing.NoReturn:
        try:
            doc = json_loads(body) if body else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        detail = str(doc.get("detail") or body[:200].decode("utf-8", "replace"))
        if status >= 500:
            raise ServerError(status, detail, url)
        cls = NotFoundError if status == 404 else RequestRejectedError
        parameter = doc.get("parameter")
        raise cls(status, str(doc.get("error") or "error"), detail,
                  None if parameter is None else str(parameter), url)

    def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """GET a JSON document (retried, as a whole, also when its body breaks off)."""
        attempt = 0
        while True:
            response = self._request(path, params, stream=True)
            try:
                return json_loads(response.content)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                if attempt >= self.retries:
                    raise TransportError(f"answer from {response.url} broke off: {exc}") \
                        from exc
            except ValueError as exc:
                raise ClientError(f"{response.url} did not answer JSON: {exc}") from exc
            finally:
                response.close()
            self._sleep(attempt)
            attempt += 1

    @staticmethod
    def _lines(response: requests.Response) -> Iterator[bytes]:
        """The non-empty lines of a streamed body (decompressed), one at a time."""
        rest = b""
        for chunk in response.iter_content(chunk_size=64 * 1024):
            if not chunk:
                continue
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line:
                    yield line
        if rest.strip():
            yield rest

    # ------------------------------------------------------------------ workflows

    def iter_workflows(self, filters: Filters | None = None, *,
                       sort: Sequence[str] | str | None = None,
                       fields: Sequence[str] | str | None = None, idx: int = 0,
                       limit: int | None = None, page_size: int | None = None,
                       path: str = "fetch") -> Iterator[dict[str, Any]]:
        """Every workflow matching ``filters``, as dicts, following the pages.

        Streams NDJSON over gzip and parses one line at a time (constant memory).
        A page whose stream breaks off is re-requested from the first record not yet
        returned.

        :param filters: query parameters filtering the workflows (see docs/http.md).
        :param sort: fields, ``-Field`` for descending.
        :param fields: field mask.
        :param idx: offset of the first workflow.
        :param limit: at most this many workflows (``None``: all).
        :param page_size: workflows per request (default: the client's).
        :param path: the paged endpoint (``fetch``, ``sites/T1_US_FNAL``...).
        :raises SnapshotChangedError: when the store changed between two pages.
        """
        size = page_size or self.page_size or self._stream_limit()
        base = _params(filters, {"sort": _sort(sort), "fields": _fields(fields)})
        tagged = path.strip("/") != "fetch"
        position = idx
        remaining = limit
        snapshot: str | None = None
        attempt = 0
        while remaining is None or remaining > 0:
            want = size if remaining is None else min(size, remaining)
            params = [*base, ("idx", str(position)), ("limit", str(want))]
            response = self._request(path, params, accept=NDJSON, stream=True)
            got = 0
            try:
                sid = response.headers.get("X-Snapshot-Id", "")
                if snapshot is None:
                    snapshot = sid
                elif sid != snapshot:
                    raise SnapshotChangedError(
                        f"the store changed from snapshot {snapshot} to {sid} after "
                        f"{position - idx} workflows; start the iteration again")
                total = int(response.headers.get("X-Total-Count", "0"))
                for line in self._lines(response):
                    record = json_loads(line)
                    if tagged:
                        if record.pop("RecordType", None) != "Workflow":
                            continue
                    got += 1
                    yield record
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                if attempt >= self.retries:
                    raise TransportError(f"page stream from {response.url} broke off: "
                                         f"{exc}") from exc
                self._sleep(attempt)
                attempt += 1
                position += got
                if remaining is not None:
                    remaining -= got
                continue
            finally:
                response.close()
            attempt = 0
            position += got
            if remaining is not None:
                remaining -= got
            if got < want or position >= total:
                return

    def _stream_limit(self) -> int:
        """The server's largest NDJSON page, asked once (10,000 if it does not say)."""
        if self.page_size is None:
            try:
                limits = self.info().get("limits", {})
                self.page_size = int(limits.get("max_stream_limit", _FALLBACK_PAGE))
            except (ClientError, TypeError, ValueError, AttributeError):
                return _FALLBACK_PAGE
        return self.page_size

    def iter_workflow_records(self, filters: Filters | None = None, *,
                              sort: Sequence[str] | str | None = None,
                              limit: int | None = None) -> Iterator[Workflow]:
        """Like :meth:`iter_workflows` without a field mask, as :class:`Workflow` records."""
        structure = converter().structure
        for record in self.iter_workflows(filters, sort=sort, limit=limit):
            yield structure(record, Workflow)

    def fetch(self, filters: Filters | None = None, *, idx: int = 0, limit: int | None = None,
              sort: Sequence[str] | str | None = None,
              fields: Sequence[str] | str | None = None) -> WorkflowPage:
        """One page of ``/fetch`` (JSON).

        :param limit: page size (default: the server's).
        """
        doc = self._get_json("fetch", _params(filters, {
            "idx": idx, "limit": limit, "sort": _sort(sort), "fields": _fields(fields)}))
        return _page(doc)

    def count(self, filters: Filters | None = None) -> int:
        """How many workflows match ``filters``."""
        return self.fetch(filters, limit=0).total

    def workflow(self, name: str) -> WorkflowBundle:
        """One workflow with its site, task, task-site, dataset and parentage records.

        :raises NotFoundError: when the server does not know it.
        """
        if not name:
            raise NotFoundError(404, "not_found", "no workflow has an empty name", None,
                                self.base_url + "fetch/")
        doc = self._get_json("fetch/" + _segment(name))
        if not isinstance(doc.get("workflow"), dict):
            raise ClientError(f"the answer for workflow {name!r} holds no workflow")
        structure = converter().structure
        parts = {key: tuple(structure(r, cls) for r in doc.get(key, ()))
                 for key, cls in BUNDLE_PARTS.items()}
        return WorkflowBundle(structure(doc["workflow"], Workflow), **parts)

    def jobs(self, name: str, where: Mapping[str, Sequence[str | int] | str | int] | None = None,
             *, documents: bool = False) -> WorkflowJobs:
        """``/jobs/<name>``: the workflow's job records.

        :param where: ``task``, ``state``, ``exitcode``, ``site``, ``agent`` -> values
            (alternatives), wildcards allowed but for ``exitcode``.
        :param documents: also the samples' whole jobsummary documents.
        :raises NotFoundError: when the server knows neither the workflow nor jobs of it.
        """
        params = [(key, str(v)) for key, values in (where or {}).items()
                  for v in ([values] if isinstance(values, (str, int)) else values)]
        if documents:
            params.append(("documents", "true"))
        doc = self._get_json("jobs/" + _segment(name), params)
        structure = converter().structure
        return WorkflowJobs(str(doc["workflow"]),
                            tuple(structure(g, JobGroup) for g in doc["groups"]),
                            tuple(structure(s, JobSample) for s in doc["samples"]))

    def alerts(self, where: Mapping[str, Sequence[str] | str] | None = None, *,
               limit: int | None = None) -> AlertList:
        """``/alerts``: what needs attention now.

        :param where: ``kind``, ``severity``, ``workflow``, ``agent``, ``site`` -> values
            (alternatives).
        :param limit: the most alerts to return (``total`` counts them all).
        """
        params = [(key, v) for key, values in (where or {}).items()
                  for v in ([values] if isinstance(values, str) else values)]
        if limit is not None:
            params.append(("limit", str(limit)))
        doc = self._get_json("alerts", params)
        structure = converter().structure
        agents = doc.get("agents") or {}
        return AlertList(tuple(structure(a, Alert) for a in doc["alerts"]), int(doc["total"]),
                         {str(k): int(v) for k, v in (doc.get("counts") or {}).items()},
                         int(doc["now"]), doc.get("snapshot"),
                         (int(agents.get("total", 0)), int(agents.get("alerting", 0))))

    # ------------------------------------------------------------------ summaries

    def summary(self, by: str, value: str, filters: Filters | None = None, *, idx: int = 0,
                limit: int | None = None, sort: Sequence[str] | str | None = None,
                fields: Sequence[str] | str | None = None) -> SummaryPage:
        """The summary of one value and a page of its workflows.

        :param by: the collection path: ``sites``, ``campaign``, ``agent``,
            ``release``, ``status``, ``type`` or ``team`` (the ``segment`` of each
            aggregate of :data:`wmstats.aggregates.AGGREGATES`).
        :raises NotFoundError: when no workflow (nor agent) has that value.
        """
        doc = self._get_json(f"{by}/" + _segment(value), _params(
            filters, {"idx": idx, "limit": limit, "sort": _sort(sort),
                      "fields": _fields(fields)}))
        structure = converter().structure
        agent = doc.get("agent")
        return SummaryPage(structure(doc["summary"], Summary), _page(doc),
                           None if agent is None else structure(agent, Agent))

    def site(self, name: str, filters: Filters | None = None, **page: Any) -> SummaryPage:
        """``/sites/<name>``: see :meth:`summary`."""
        return self.summary(BY_KEY["site"].segment, name, filters, **page)

    def campaign(self, name: str, filters: Filters | None = None, **page: Any) -> SummaryPage:
        """``/campaign/<name>``: see :meth:`summary`."""
        return self.summary(BY_KEY["campaign"].segment, name, filters, **page)

    def agent(self, url: str, filters: Filters | None = None, **page: Any) -> SummaryPage:
        """``/agent/<url>``: see :meth:`summary` (``.agent`` holds its record)."""
        return self.summary(BY_KEY["agent"].segment, url, filters, **page)

    def release(self, name: str, filters: Filters | None = None, **page: Any) -> SummaryPage:
        """``/release/<name>``: see :meth:`summary`."""
        return self.summary(BY_KEY["release"].segment, name, filters, **page)

    def values(self, by: str, filters: Filters | None = None) -> list[Summary]:
        """Every known value of ``by`` (a collection path, as for :meth:`summary`)
        with its summary, counting only workflows matching ``filters``.

        ``values("status", filters)`` gives the workflow count and summed job
        counters per status of exactly the filtered workflows."""
        return self.values_with_snapshot(by, filters)[1]

    def values_with_snapshot(self, by: str, filters: Filters | None = None
                             ) -> tuple[str, list[Summary]]:
        """:meth:`values` and the id of the store snapshot they were read from."""
        doc = self._get_json(by, _params(filters))
        structure = converter().structure
        return str(doc["snapshot"]), [
            structure({k: v for k, v in item.items() if k != "Agent"}, Summary)
            for item in doc["values"]]

    def sites(self, filters: Filters | None = None) -> list[Summary]:
        """Every site with its summary."""
        return self.values(BY_KEY["site"].segment, filters)

    def campaigns(self, filters: Filters | None = None) -> list[Summary]:
        """Every campaign with its summary."""
        return self.values(BY_KEY["campaign"].segment, filters)

    def agents(self, filters: Filters | None = None) -> list[tuple[Summary, Agent | None]]:
        """Every agent with its summary and heartbeat record."""
        doc = self._get_json(BY_KEY["agent"].segment, _params(filters))
        structure = converter().structure
        out: list[tuple[Summary, Agent | None]] = []
        for item in doc["values"]:
            record = item.get("Agent")
            out.append((structure({k: v for k, v in item.items() if k != "Agent"}, Summary),
                        None if record is None else structure(record, Agent)))
        return out

    def releases(self, filters: Filters | None = None) -> list[Summary]:
        """Every CMSSW release with its summary."""
        return self.values(BY_KEY["release"].segment, filters)

    # ------------------------------------------------------------------ service

    def health(self) -> dict[str, Any]:
        """``/healthz``, asked once, without retries: ``{"ready": true, ...}``, or
        ``{"ready": false, "detail": ...}`` when the store or the server does not answer.
        """
        url = self._url("healthz")
        try:
            with self.session.get(url, headers={**self.headers, "Accept": JSON},
                                  timeout=self.timeout) as resp:
                doc = json_loads(resp.content) if resp.status_code in (200, 503) else None
        except (requests.RequestException, ValueError) as exc:
            return {"ready": False, "detail": f"{url}: {exc}"}
        if not isinstance(doc, dict):
            return {"ready": False, "detail": f"{url}: HTTP {resp.status_code}"}
        return doc

    def info(self) -> dict[str, Any]:
        """``/info``: versions, backend, limits."""
        doc: dict[str, Any] = self._get_json("info")
        return doc

    def openapi(self) -> dict[str, Any]:
        """``/openapi.json``."""
        doc: dict[str, Any] = self._get_json("openapi.json")
        return doc

    def schema(self) -> dict[str, Any]:
        """``/schema``: the JSON Schema of the records."""
        doc: dict[str, Any] = self._get_json("schema")
        return doc


def _page(doc: Mapping[str, Any]) -> WorkflowPage:
    sources = doc.get("sources")
    return WorkflowPage(tuple(doc["workflows"]), int(doc["total"]), int(doc["idx"]),
                        int(doc["limit"]), str(doc["snapshot"]), doc.get("next"),
                        {str(k): str(v) for k, v in sources.items()}
                        if isinstance(sources, dict) else None)

