"""What a source keeps between updates: the converted parts of every document.

Pure (no I/O but through a :class:`Backing`).  For each upstream document, keyed
by ``(database, _id)``, the state holds what :mod:`wmstats.convert` made of it:
the :class:`~wmstats.convert.RequestPart` of a request whose status is shown, the
:class:`~wmstats.schema.Agent` of an ``agent_info``, and for an
``agent_request`` its agent, timestamp and the document itself, compressed
(about a tenth of its :class:`~wmstats.convert.AgentPart` in memory).  A
full load packs the ``agent_request`` documents without converting them
(``convert=False``) and converts each when its workflow is merged, so it never
holds every converted report at once; changed documents are converted when
they arrive and kept until :meth:`SourceState.forget_converted`.  A workflow's
other reports are converted again when one of them changes (a millisecond each;
their problems are reported only the first time).  A changed or deleted
document first takes back what its previous version contributed, then adds the
new one;
:meth:`SourceState.update` says which workflows and agents changed, and
:meth:`SourceState.bundle` re-merges just those (the same
:func:`~wmstats.convert.merge_workflow` that
:class:`~wmstats.convert.DocumentConverter` uses, so the result equals converting
all documents at once).

``jobsummary`` documents go to a :class:`~wmstats.jobs.JobTable`, which keeps only
counts, a few samples per group and a 12-byte index entry per document (which
group it counts in), so a changed or deleted one (a ``_changes`` deletion carries
only the id) adjusts the counts without the documents being kept;
:meth:`SourceState.update` says which workflows' job records changed.

What the state keeps can be written next to the snapshot (:meth:`SourceState.entries`,
:meth:`SourceState.take_changes`: :class:`~wmstats.store.SourceEntry` records, one
per kept document, grouped by workflow) and read back lazily: a state made with a
:class:`Backing` (:class:`StoreBacking` reads a store's
:meth:`~wmstats.store.Store.source_entries` and bundles) loads a workflow's kept
documents the first time a change touches it, so a restarted source resumes
without reading everything again.  The job table is kept that way too: an entry
per ``jobsummary`` document says where it counts (group and agent, filed under its
workflow), and a workflow's job records are read back from the store
(:meth:`~wmstats.store.Store.get_jobs`) and handed to the table
(:meth:`~wmstats.jobs.JobTable.adopt`) with those entries the first time a change
touches it.  The entry :func:`jobs_snapshot_entry` names the store's job snapshot
the entries go with (the source writes the job records first, then the entries):
a restarted source whose store holds other job records loads everything.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple, Protocol

import attrs
import ujson

from wmstats._deflate import compress
from wmstats.convert import (
    IGNORED_DOC_TYPES,
    AgentPart,
    Problem,
    RequestPart,
    convert_agent_info,
    convert_agent_request,
    convert_request,
    merge_workflow,
    request_part,
)
from wmstats.jobs import GroupKey, JobOptions, JobTable
from wmstats.schema import Agent, Workflow, WorkflowBundle, WorkflowJobs
from wmstats.serialize import json_bytes, json_loads
from wmstats.store import SourceEntry, Store

__all__ = ["SourceState", "Key", "PackedReport", "pack_report", "Backing", "StoreBacking", "StaleEntries", "ENTRY_FORMAT",
           "entry_key", "split_entry_key", "jobs_snapshot_entry"]

#: ``(database, document id)``
Key = tuple[str, str]

#: The format of packed parts and entries: a checkpoint written with another one is
#: not used (the source loads everything instead).
ENTRY_FORMAT: Final = "state-2"
#: Entry data kinds (first byte): a request (its part is the stored bundle's), an
#: agent report (the packed document), an agent_info (the agent's URL), a jobsummary
#: (JSON ``[task, state, exit code, site, agent]``: where it counts), the job
#: snapshot the entries go with (its id).
_REQUEST: Final = b"R"
_REPORT: Final = b"A"
_INFO: Final = b"I"
_JOB: Final = b"J"
_JOBS_SNAPSHOT: Final = b"S"
#: The entry group of agent_info documents (workflow names are never empty).
_AGENTS: Final = ""
#: Separates the database from the document id in an entry key (not allowed in
#: CouchDB database names).
_SEP: Final = "\x1f"
#: The key and group of the job snapshot entry (no workflow is named so).
_JOBS_KEY: Final = _SEP + "jobs"
_JOBS_GROUP: Final = _SEP


def entry_key(key: Key) -> str:
    """The :class:`~wmstats.store.SourceEntry` key of a document."""
    return f"{key[0]}{_SEP}{key[1]}"


def split_entry_key(text: str) -> Key:
    """The inverse of :func:`entry_key`."""
    db, _, doc_id = text.partition(_SEP)
    return db, doc_id


def jobs_snapshot_entry(snapshot_id: str) -> SourceEntry:
    """The entry naming the store's job snapshot (:attr:`Store.jobs_snapshot_id
    <wmstats.store.Store.jobs_snapshot_id>`) that the kept entries go with."""
    return SourceEntry(_JOBS_KEY, _JOBS_GROUP, _JOBS_SNAPSHOT + snapshot_id.encode())


class StaleEntries(Exception):
    """Kept entries do not match the stored snapshot (load everything again)."""


class _Report(NamedTuple):
    """One ``agent_request`` document as kept: who, when, and the zlib-compressed JSON."""

    agent: str
    timestamp: int
    blob: bytes


def _pack(doc: dict[str, Any]) -> bytes:
    return compress(json_bytes(doc))


def _unpack(blob: bytes, problems: list[Problem]) -> AgentPart:
    # json_loads: orjson (twice as fast as ujson here) unless the text may hold an
    # integer beyond 64 bits, which it reads exactly as ujson does
    part = convert_agent_request(json_loads(zlib.decompress(blob)), problems)
    if part is None:  # it named its workflow, else it would not have been kept
        raise StaleEntries("a kept agent_request does not name its workflow")
    return part


def _quick_report(doc: dict[str, Any]) -> tuple[str, str, int] | None:
    """Workflow, agent and timestamp of a well-formed agent_request, without converting it."""
    workflow, agent, timestamp = doc.get("workflow"), doc.get("agent_url"), doc.get("timestamp")
    if type(workflow) is str and workflow and type(agent) is str and type(timestamp) is int:
        return workflow, agent, timestamp
    return None


class PackedReport(NamedTuple):
    """A well-formed ``agent_request`` document packed without converting it
    (:func:`pack_report`): what :meth:`SourceState.update_packed` takes."""

    workflow: str
    agent: str
    timestamp: int
    blob: bytes


def pack_report(doc_id: str, doc: Any) -> PackedReport | None:
    """What :meth:`SourceState.update` with ``convert=False`` keeps of a document,
    made anywhere (a reader process): ``None`` unless the document is a live,
    well-formed ``agent_request`` (those go to :meth:`SourceState.update` whole)."""
    if (not isinstance(doc, dict) or doc.get("type") != "agent_request"
            or doc.get("_deleted") or doc_id.startswith("_design/")):
        return None
    quick = _quick_report(doc)
    if quick is None:
        return None
    return PackedReport(*quick, _pack(doc))


#: Workflow fields of few distinct values (strings, tuples of strings), shared between
#: the kept requests; fields unique to a workflow (names, datasets) would only make
#: the table grow.
_SHARED_FIELDS: Final = ("RequestStatus", "RequestType", "SubRequestType", "Campaign",
                         "Campaigns", "Teams", "Group", "Requestor", "CMSSWVersion",
                         "CMSSWVersions", "ScramArch", "AcquisitionEras", "ProcessingStrings",
                         "MCPileup", "DataPileup", "SiteWhitelist", "SiteBlacklist",
                         "UnmergedLFNBase")


class _Canon:
    """One object for each equal string or tuple of strings of the kept request records.

    Site lists, campaigns, releases... repeat across thousands of requests; sharing
    them makes a kept request about a third smaller.  The statuses and DNs of the
    status history (a few distinct ones over seven steps per request) are shared
    too, which halves the history's size.
    """

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}

    def request(self, part: RequestPart) -> RequestPart:
        # Records the converter (or the store) has just made for this state alone:
        # replacing a value by an equal, shared one is not observable (and much
        # cheaper than rebuilding the frozen record).
        workflow = part.workflow
        values = self._values
        setdefault = values.setdefault
        for step in part.transitions:
            status, dn = step.Status, step.DN
            shared_status, shared_dn = setdefault(status, status), setdefault(dn, dn)
            if shared_status is not status:
                object.__setattr__(step, "Status", shared_status)
            if shared_dn is not dn:
                object.__setattr__(step, "DN", shared_dn)
        for name in _SHARED_FIELDS:
            value = getattr(workflow, name)
            if value:
                same = setdefault(value, value)
                if same is not value:
                    object.__setattr__(workflow, name, same)
        return part


def _is_jobsummary(doc_id: str, doc: Any) -> bool:
    """Whether a document (``None`` when deleted) is a live ``jobsummary``."""
    return (isinstance(doc, dict) and doc.get("type") == "jobsummary"
            and not doc.get("_deleted") and not doc_id.startswith("_design/"))


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


class Backing(Protocol):
    """Where a state finds what it kept before a restart."""

    def entries(self, keys: Iterable[str] = (), groups: Iterable[str] = ()
                ) -> list[SourceEntry]:
        """The kept entries with these keys or in these groups."""

    def requests(self, names: Iterable[str]) -> Mapping[str, RequestPart]:
        """The request parts of these workflows, from the stored bundles."""

    def agents(self, urls: Iterable[str]) -> Mapping[str, Agent]:
        """The stored agent records of these URLs."""

    def jobs(self, names: Iterable[str]) -> Mapping[str, WorkflowJobs]:
        """The stored job records of these workflows (those that have some)."""


class StoreBacking:
    """A :class:`Backing` reading a store's kept entries and its snapshot."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def entries(self, keys: Iterable[str] = (), groups: Iterable[str] = ()
                ) -> list[SourceEntry]:
        return self.store.source_entries(keys=keys, groups=groups)

    def requests(self, names: Iterable[str]) -> Mapping[str, RequestPart]:
        found = {}
        for name, bundle in self.store.get_many(names).items():
            part = request_part(bundle)
            if part is not None:
                found[name] = part
        return found

    def agents(self, urls: Iterable[str]) -> Mapping[str, Agent]:
        return {agent.AgentURL: agent for agent in self.store.get_agents(urls)}

    def jobs(self, names: Iterable[str]) -> Mapping[str, WorkflowJobs]:
        return self.store.get_jobs(names)


class SourceState:
    """The converted parts of the documents read so far.

    :param statuses: request statuses whose workflows are shown; ``None`` shows
        every workflow, including those with agent reports but no request document
        (as :func:`~wmstats.convert.convert_documents` does).  Job records are kept
        for every workflow.
    :param job_options: what the job records keep.
    :param jobs_db: the database whose ``jobsummary`` documents count (``None``:
        any); job records are keyed by document id alone.
    :param backing: where the entries kept before a restart are read from, one
        workflow at a time as changes touch it (see the module docstring).
    :param keeps_entries: whether :meth:`entries` will be asked for (a store that
        keeps checkpoints): a state without a backing then notes the keys of the
        ``jobsummary`` documents it counts until the first :meth:`take_changes`
        (the job table keeps no document ids).
    :raises StaleEntries: (from the methods that read the backing) when the kept
        entries do not match the stored snapshot.
    """

    def __init__(self, statuses: Collection[str] | None,
                 job_options: JobOptions = JobOptions(), jobs_db: str | None = None,
                 backing: Backing | None = None, *, keeps_entries: bool = True) -> None:
        self.statuses = None if statuses is None else frozenset(statuses)
        self.jobs_db = jobs_db
        #: the job records of the jobsummary documents
        self.jobs = JobTable(job_options, load=None if backing is None else self._load)
        #: keys of the jobsummary documents counted, for :meth:`entries`
        self._job_keys: list[Key] | None = [] if keeps_entries and backing is None else None
        #: workflow -> request part (only requests whose status is shown)
        self._requests: dict[str, RequestPart] = {}
        self._request_keys: dict[Key, str] = {}
        #: workflow -> document key -> its report (every agent_request document)
        self._parts: dict[str, dict[Key, _Report]] = {}
        #: converted parts of the reports read since :meth:`forget_converted`
        self._converted: dict[Key, AgentPart] = {}
        #: reports packed without converting them: their problems are not reported yet
        self._unchecked: set[Key] = set()
        self._part_keys: dict[Key, str] = {}
        self._agents: dict[str, Agent] = {}
        self._agent_keys: dict[Key, str] = {}
        #: documents skipped on purpose (design documents, ignored types)
        self.ignored = 0
        self._canon = _Canon()
        #: keys changed since :meth:`take_changes`
        self._changed: set[Key] = set()
        self._backing = backing
        #: workflows whose kept entries were read from the backing (or need none)
        self._loaded: set[str] = set()
        if backing is not None:
            self._load_agents(backing)

    # ------------------------------------------------------------------ backing

    def _load_agents(self, backing: Backing) -> None:
        infos = backing.entries(groups=[_AGENTS])
        urls = {entry.key: entry.data[1:].decode() for entry in infos}
        stored = backing.agents(set(urls.values()))
        for text, url in urls.items():
            agent = stored.get(url)
            if agent is not None:
                self._agents[url] = agent
                self._agent_keys[split_entry_key(text)] = url

    def _load(self, name: str) -> None:
        """Read the kept entries of workflow ``name`` from the backing (once)."""
        backing = self._backing
        if backing is None or name in self._loaded:
            return
        self._loaded.add(name)
        entries = backing.entries(groups=[name])
        if not entries:
            return
        requests = (backing.requests([name])
                    if any(e.data[:1] == _REQUEST for e in entries) else {})
        documents: list[tuple[str, GroupKey, str]] = []
        for entry in entries:
            key = split_entry_key(entry.key)
            kind, data = entry.data[:1], entry.data[1:]
            if kind == _REQUEST:
                request = requests.get(name)
                if request is None:
                    raise StaleEntries(f"a kept request of {name!r} is not in the store")
                self._requests[name] = self._canon.request(request)
                self._request_keys[key] = name
            elif kind == _REPORT:
                part = _unpack(data, [])  # its problems were reported before the restart
                if part.workflow != name:
                    raise StaleEntries(f"a kept report of {part.workflow!r} is filed "
                                       f"under {name!r}")
                self._parts.setdefault(name, {})[key] = _Report(part.agent, part.timestamp,
                                                               data)
                self._converted[key] = part
                self._part_keys[key] = name
            elif kind == _JOB:
                try:
                    task, state, code, site, agent = ujson.loads(data)
                except ValueError as exc:
                    raise StaleEntries(f"a kept jobsummary entry of {name!r} is not "
                                       f"[task, state, exit code, site, agent]") from exc
                documents.append((key[1], (task, state, code, site), agent))
            else:
                raise StaleEntries(f"unknown kept entry {entry.key!r} of {name!r}")
        if documents:
            jobs = backing.jobs([name]).get(name)
            if jobs is None:
                raise StaleEntries(f"the kept job records of {name!r} are not in the store")
            try:
                self.jobs.adopt(jobs, documents)
            except ValueError as exc:
                raise StaleEntries(str(exc)) from exc

    def kept_jobs_snapshot(self) -> str | None:
        """The job snapshot id the kept entries go with (:func:`jobs_snapshot_entry`),
        ``None`` without a backing or such an entry."""
        if self._backing is None:
            return None
        for entry in self._backing.entries(keys=[_JOBS_KEY]):
            if entry.data[:1] == _JOBS_SNAPSHOT:
                return entry.data[1:].decode()
        return None

    def _load_key(self, key: Key) -> None:
        """Read the workflow a kept document belongs to, unless it is known already."""
        if (self._backing is None or key in self._request_keys or key in self._part_keys
                or key in self._agent_keys or (self._job_db(key[0]) and key[1] in self.jobs)):
            return
        for entry in self._backing.entries(keys=[entry_key(key)]):
            if entry.group != _AGENTS:
                self._load(entry.group)

    # ------------------------------------------------------------------ reads

    def shown(self, name: str) -> bool:
        """Whether workflow ``name`` belongs in the store."""
        self._load(name)
        if self.statuses is None:
            return name in self._requests or name in self._parts
        return name in self._requests

    def names(self) -> list[str]:
        """Every workflow shown (requests first, then agent-only ones); with a
        backing, only those read so far."""
        if self.statuses is None:
            return list(dict.fromkeys([*self._requests, *self._parts]))
        return list(self._requests)

    def bundle(self, name: str, problems: list[Problem] | None = None) -> WorkflowBundle:
        """The merged records of one workflow.

        :param problems: problems of agent reports converted here for the first
            time are appended to it.
        """
        self._load(name)
        return merge_workflow(name, self._requests.get(name), self._agent_parts(name, problems))

    def keep_written(self, workflows: Iterable[Workflow]) -> None:
        """Keep each of ``workflows`` (merged by :meth:`bundle` and just written to the
        store) as its request's workflow: :func:`~wmstats.convert.merge_workflow`
        sets every field the agents' reports fill, so the merged record serves as
        the base of the next merge as the converted one did.  The state and the
        store then share one record, and what a store holds only once (the memory
        store keeps some values only in a row's JSON text) is held once."""
        requests = self._requests
        for workflow in workflows:
            part = requests.get(workflow.RequestName)
            if part is not None and workflow.HasRequest:
                requests[workflow.RequestName] = attrs.evolve(part, workflow=workflow)

    def bundles(self, problems: list[Problem] | None = None) -> Iterator[WorkflowBundle]:
        """One bundle per shown workflow."""
        for name in self.names():
            yield self.bundle(name, problems)

    def agent(self, url: str) -> Agent | None:
        """The agent record of ``url``, if its ``agent_info`` document was read."""
        return self._agents.get(url)

    def agents(self) -> list[Agent]:
        """Every agent record, sorted by URL."""
        return [self._agents[url] for url in sorted(self._agents)]

    def _agent_parts(self, name: str, problems: list[Problem] | None) -> list[AgentPart]:
        """One part per agent; of two documents from one agent the newer counts."""
        by_agent: dict[str, tuple[Key, _Report]] = {}
        for key, report in self._parts.get(name, {}).items():
            old = by_agent.get(report.agent)
            if old is None or old[1].timestamp <= report.timestamp:
                by_agent[report.agent] = (key, report)
        parts = []
        for key, report in by_agent.values():
            part = self._converted.get(key)
            if part is None:
                first = key in self._unchecked
                part = _unpack(report.blob, problems if first and problems is not None
                               else [])
                self._unchecked.discard(key)
            parts.append(part)
        return parts

    def job_records(self, name: str) -> WorkflowJobs:
        """The job records of one workflow (empty when it has none)."""
        return self.jobs.jobs(name)

    def all_job_records(self) -> Iterator[WorkflowJobs]:
        """The job records of every workflow that has some."""
        return self.jobs.all_jobs()

    def forget_converted(self) -> None:
        """Drop the converted parts of ``agent_request`` documents (keep them packed)."""
        self._converted.clear()

    # ------------------------------------------------------------------ kept entries

    def _job_db(self, db: str) -> bool:
        """Whether ``jobsummary`` documents of ``db`` count."""
        return self.jobs_db is None or db == self.jobs_db

    def _entry(self, key: Key) -> SourceEntry | None:
        if self._job_db(key[0]):
            where = self.jobs.where(key[1])
            if where is not None:
                workflow, (task, state, code, site), agent = where
                return SourceEntry(entry_key(key), workflow,
                                   _JOB + json_bytes([task, state, code, site, agent]))
        name = self._request_keys.get(key)
        if name is not None:
            return SourceEntry(entry_key(key), name, _REQUEST)
        name = self._part_keys.get(key)
        if name is not None:
            return SourceEntry(entry_key(key), name, _REPORT + self._parts[name][key].blob)
        url = self._agent_keys.get(key)
        if url is not None:
            return SourceEntry(entry_key(key), _AGENTS, _INFO + url.encode())
        return None

    def entries(self) -> Iterator[SourceEntry]:
        """An entry per kept document (without a backing: everything it holds; its
        ``jobsummary`` documents only until the first :meth:`take_changes`, and only
        with ``keeps_entries``)."""
        for keys in (self._request_keys, self._part_keys, self._agent_keys,
                     self._job_keys or ()):
            for key in list(keys):
                entry = self._entry(key)
                if entry is not None:
                    yield entry

    def take_changes(self) -> tuple[list[SourceEntry], list[str]]:
        """The entries of the documents changed since the last call, and the keys of
        those no longer kept; starts collecting anew."""
        kept: list[SourceEntry] = []
        gone: list[str] = []
        for key in self._changed:
            entry = self._entry(key)
            if entry is None:
                gone.append(entry_key(key))
            else:
                kept.append(entry)
        self._changed = set()
        self._job_keys = None  # from now on, the changed keys carry them
        return kept, gone

    # ------------------------------------------------------------------ writes

    def update(self, db: str, doc_id: str, doc: Any, problems: list[Problem],
               workflows: set[str], agents: set[str], *, convert: bool = True,
               jobs: set[str] | None = None) -> None:
        """Take back what document ``(db, doc_id)`` contributed, then add ``doc``.

        :param doc: the new version, or ``None`` for a deleted document.
        :param problems: problems found in ``doc`` are appended here.
        :param workflows: names of the workflows that changed are added here.
        :param agents: URLs of the agents that changed are added here.
        :param convert: ``False`` packs a well-formed ``agent_request`` without
            converting it; it is converted (and its problems reported) when its
            workflow is first merged (:meth:`bundle`), so that a full load never
            holds every converted report at once.
        :param jobs: names of the workflows whose job records changed are added here.
        """
        key = (db, doc_id)
        self._load_key(key)
        changed_jobs: set[str] = set()
        job_db = self._job_db(db)
        if job_db and _is_jobsummary(doc_id, doc):
            # The table takes back the previous version itself (and keeps a sample
            # that stays in its group in place).
            self._remove(key, workflows, agents)
            changed_jobs = self.jobs.update(doc_id, doc, problems)
            if self._job_keys is not None:
                self._job_keys.append(key)
        else:
            self._remove(key, workflows, agents)
            if job_db:
                changed_jobs = self.jobs.update(doc_id, None, problems)
            if doc is not None:
                self._add(key, doc, problems, workflows, agents, convert)
        self._changed.add(key)
        if jobs is not None:
            jobs |= changed_jobs

    def update_packed(self, db: str, doc_id: str, report: PackedReport,
                      problems: list[Problem], workflows: set[str], agents: set[str]) -> None:
        """:meth:`update` with ``convert=False`` of an ``agent_request`` document
        already packed by :func:`pack_report` (the same result)."""
        key = (db, doc_id)
        self._load_key(key)
        self._remove(key, workflows, agents)
        if self._job_db(db):
            self.jobs.update(doc_id, None, problems)
        self._add_report(key, (report.workflow, report.agent, report.timestamp), report.blob,
                         None, problems, workflows)
        self._changed.add(key)

    def _remove(self, key: Key, workflows: set[str], agents: set[str]) -> None:
        name = self._request_keys.pop(key, None)
        if name is not None:
            self._requests.pop(name, None)
            workflows.add(name)
        name = self._part_keys.pop(key, None)
        if name is not None:
            parts = self._parts.get(name)
            if parts is not None:
                parts.pop(key, None)
                if not parts:
                    del self._parts[name]
            self._converted.pop(key, None)
            self._unchecked.discard(key)
            workflows.add(name)
        url = self._agent_keys.pop(key, None)
        if url is not None:
            self._agents.pop(url, None)
            agents.add(url)

    def _add(self, key: Key, doc: Any, problems: list[Problem], workflows: set[str],
             agents: set[str], convert: bool) -> None:
        doc_id = key[1]
        if not isinstance(doc, dict):
            problems.append(Problem(doc_id, "", f"expected a JSON object, got {_kind(doc)}; "
                                                f"skipped"))
            return
        if doc.get("_deleted") or doc_id.startswith("_design/"):
            self.ignored += 1
            return
        doc_type = doc.get("type")
        if doc_type == "agent_request":
            quick = None if convert else _quick_report(doc)
            part = None
            if quick is None:
                part = convert_agent_request(doc, problems)
                if part is None:
                    return
                quick = (part.workflow, part.agent, part.timestamp)
            self._add_report(key, quick, _pack(doc), part, problems, workflows)
        elif doc_type == "agent_info":
            agent = convert_agent_info(doc, problems)
            if agent is not None:
                old = self._agents.get(agent.AgentURL)
                if old is not None and old.Timestamp > agent.Timestamp:
                    problems.append(Problem(doc_id, "agent_url", f"another agent_info "
                                            f"document of {agent.AgentURL!r} is newer; "
                                            f"kept that one"))
                    return
                self._agents[agent.AgentURL] = agent
                self._agent_keys[key] = agent.AgentURL
                agents.add(agent.AgentURL)
        elif doc_type == "reqmgr_request" or (
                doc_type is None and ("RequestName" in doc or "RequestStatus" in doc)):
            request = convert_request(doc, problems)
            if request is None:
                return
            name = request.workflow.RequestName
            self._load(name)
            workflows.add(name)
            if self.statuses is None or request.workflow.RequestStatus in self.statuses:
                if name in self._requests:
                    problems.append(Problem(doc_id, "", "another request document has "
                                            "this name; this one replaces it"))
                self._requests[name] = self._canon.request(request)
                self._request_keys[key] = name
        elif isinstance(doc_type, str) and doc_type in IGNORED_DOC_TYPES:
            self.ignored += 1
        else:
            problems.append(Problem(doc_id, "type", f"unknown document type {doc_type!r}; "
                                                    f"skipped"))

    def _add_report(self, key: Key, quick: tuple[str, str, int], blob: bytes,
                    part: AgentPart | None, problems: list[Problem],
                    workflows: set[str]) -> None:
        """Keep an ``agent_request`` document: packed, and converted unless ``part``
        is ``None`` (then it is converted when its workflow is merged)."""
        workflow, agent_url, timestamp = quick
        self._load(workflow)
        parts = self._parts.setdefault(workflow, {})
        if any(p.agent == agent_url for p in parts.values()):
            problems.append(Problem(key[1], "agent_url", f"another agent_request "
                                    f"document of {agent_url!r} for workflow {workflow!r}; "
                                    f"the newer is kept"))
        parts[key] = _Report(agent_url, timestamp, blob)
        if part is None:
            self._unchecked.add(key)
        else:
            self._converted[key] = part
        self._part_keys[key] = workflow
        workflows.add(workflow)
