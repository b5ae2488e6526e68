"""Job records from WMAgent's ``jobsummary`` documents: counts and bounded samples.

Agents write one ``jobsummary`` document per job that failed (and per job that
succeeded after a retry) into the ``wmstats`` database and rewrite it at every
state change.  There can be millions.  :class:`JobTable` turns them into the
flat :class:`~wmstats.schema.JobGroup` and :class:`~wmstats.schema.JobSample`
records and keeps them up to date as documents change or go, in memory that does
not grow with the number of documents beyond a 12-byte index entry each
(:class:`wmstats._docindex.DocIndex`):

* a **count** per (workflow, task, state, exit code, site, agent): a document
  counts once, in the group of its current version;
* at most ``samples`` **sample jobs** (:class:`JobOptions`) per (workflow, task,
  state, exit code, site): the first ones in the order WMCore's ``jobdetail``
  reads them (ACDC URL, agent, sorted error types, then job name, in CouchDB's
  collation), each with its error, log locations and, unless switched off, the
  whole document (what ``jobdetail`` returns).

How changes adjust the records without the documents: the index tells which
group a document's previous version counted in, so a changed document moves its
count from the old group to the new one and a deleted document takes it away.
A sample whose document leaves its group (or is deleted) leaves the samples; the
group then holds fewer samples until another document enters it (which takes
the place if it comes early enough in the order).  Counts are always exact;
samples are always current documents of their group, and after a full load they
are exactly the first ones in ``jobdetail`` order.

Pure: no I/O.  Malformed documents never stop the rest: what can be converted
is, and every problem is reported as a :class:`~wmstats.convert.Problem`
(document id, key path, what was wrong), as for the other documents.
"""

from __future__ import annotations

import bisect
import math
import operator
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs
import ujson

from wmstats._deflate import compress
from wmstats._docindex import DocIndex
from wmstats._problem import Problem
from wmstats.query.match import compile_glob
from wmstats.schema import JobGroup, JobSample, WorkflowJobs
from wmstats.serialize import json_bytes, json_dumps

__all__ = [
    "JobOptions",
    "JobEntry",
    "JobTable",
    "GroupKey",
    "JOB_STATES",
    "convert_jobsummary",
    "couch_collation_key",
    "order_key",
    "sample_order",
    "select_jobs",
    "group_samples",
    "JobFilter",
    "cut_text",
]

#: The states a jobsummary document is in (WMCore's ChangeState and ErrorHandler);
#: others are kept as they come.
JOB_STATES: Final[tuple[str, ...]] = ("jobfailed", "jobcooloff", "success", "exhausted",
                                      "createfailed", "submitfailed", "killed")
_MAX_INPUT_FILES: Final = 10


def _positive_int(minimum: int) -> Any:
    def check(_inst: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{attribute.name} must be an integer >= {minimum}, got {value!r}")
    return check


@attrs.frozen(kw_only=True)
class JobOptions:
    """How much of each job is kept.

    :param samples: sample jobs kept per (workflow, task, state, exit code, site).
    :param detail_limit: characters of error details kept in
        :attr:`JobSample.Details <wmstats.schema.JobSample.Details>`.
    :param keep_documents: keep each sample's whole document
        (:attr:`JobSample.Document <wmstats.schema.JobSample.Document>`), which
        WMCore's ``jobdetail`` API returns.
    """

    samples: int = attrs.field(default=3, validator=_positive_int(0))
    detail_limit: int = attrs.field(default=2000, validator=_positive_int(0))
    keep_documents: bool = True


# --------------------------------------------------------------------------- collation


def couch_collation_key(value: Any) -> tuple[Any, ...]:
    """A Python sort key that orders JSON values as CouchDB views do.

    null < false < true < numbers < strings < arrays < objects; arrays element by
    element, objects key/value pair by pair; strings by UTF-16 code units, as
    pouchdb-server compares them (CouchDB itself uses ICU collation, which
    differs only for strings that differ in case or punctuation alone).
    """
    if value is None:
        return (0,)
    if value is False:
        return (1,)
    if value is True:
        return (2,)
    if isinstance(value, (int, float)):
        return (3, value)
    if isinstance(value, str):
        return (4, value.encode("utf-16-be", "surrogatepass"))
    if isinstance(value, (list, tuple)):
        return (5, tuple(couch_collation_key(v) for v in value))
    if isinstance(value, Mapping):
        return (6, tuple((couch_collation_key(str(k)), couch_collation_key(v))
                         for k, v in value.items()))
    return (4, str(value).encode("utf-16-be", "surrogatepass"))


# --------------------------------------------------------------------------- converting


def cut_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}[... {len(text) - limit} characters cut]"


#: The fields of a :class:`~wmstats.schema.JobSample`, in schema order.
_SAMPLE_FIELDS: Final = tuple(f.name for f in attrs.fields(JobSample))
_DOCUMENT_AT: Final = _SAMPLE_FIELDS.index("Document")
_SAMPLE_VALUES: Final = operator.itemgetter(*_SAMPLE_FIELDS)
_SAMPLE_ATTRS: Final = operator.attrgetter(*_SAMPLE_FIELDS)


def order_key(acdc: str, agent: str, types: Sequence[str], job: str) -> bytes:
    """Where a sample comes in its group, as WMCore's view sorts its documents:
    by ACDC URL, agent, sorted error types, then job name; as bytes that compare
    in that order (UTF-8 code point order, which is the view's UTF-16 order but for
    characters beyond U+FFFF; a list sorts before any longer list it begins)."""
    parts = [acdc.encode("utf-8", "surrogatepass"), b"\0",
             agent.encode("utf-8", "surrogatepass"), b"\0"]
    for kind in types:
        parts += [b"\x01", kind.encode("utf-8", "surrogatepass"), b"\0"]
    parts += [b"\0", job.encode("utf-8", "surrogatepass")]
    return b"".join(parts)


def sample_order(sample: JobSample) -> bytes:
    """Where a sample comes in its group (:func:`order_key` of its fields)."""
    return order_key(sample.ACDC, sample.Agent, sample.ErrorTypes, sample.JobName)


def _build_sample(values: Sequence[Any]) -> JobSample:
    fields = dict(zip(_SAMPLE_FIELDS, values))
    for name in ("ErrorTypes", "LogCollect", "InputFiles"):
        fields[name] = tuple(fields[name])
    return JobSample(**fields)


@attrs.frozen
class JobEntry:
    """What one ``jobsummary`` document contributes.

    :param workflow: its workflow.
    :param key: its sample group in the workflow: (task, state, exit code, site).
    :param agent: its agent.
    :param order: where its sample comes in the group (:func:`order_key`).
    :param values: its sample's field values in schema order, the document left out.
    :param document: the document, when it is to be kept with a sample.
    """

    workflow: str
    key: tuple[str, str, int, str]
    agent: str
    order: bytes
    values: tuple[Any, ...] = attrs.field(repr=False)
    document: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def name(self) -> str:
        """The job name (document id)."""
        return str(self.values[_SAMPLE_FIELDS.index("JobName")])

    @property
    def sample(self) -> JobSample:
        """The sample record, without its document."""
        return _build_sample(self.values)

    def row(self) -> list[Any]:
        """The sample as kept in a group: its values, the document (an object) last."""
        row = list(self.values)
        row[_DOCUMENT_AT] = self.document
        return row

    def kept_sample(self) -> JobSample:
        """The sample record with its document."""
        return _row_sample(self.row())


def _row_sample(row: Sequence[Any]) -> JobSample:
    values = list(row)
    document = values[_DOCUMENT_AT]
    values[_DOCUMENT_AT] = "" if document is None else json_dumps(document)
    return _build_sample(values)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


class _Problems:
    __slots__ = ("doc_id", "problems")

    def __init__(self, doc_id: str, problems: list[Problem]) -> None:
        self.doc_id = doc_id
        self.problems = problems

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.doc_id, path, message))

    def text(self, doc: Mapping[str, Any], key: str, *, null_ok: bool = True) -> str:
        value = doc.get(key)
        if type(value) is str:
            return value
        if value is None:
            if not null_ok:
                self.report(key, "missing; used ''")
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.report(key, f"expected a string, got number {value!r}; converted")
            return str(value)
        if isinstance(value, Mapping) and not value:
            return ""  # old documents write an empty object for an unknown site
        self.report(key, f"expected a string, got {_kind(value)}; used ''")
        return ""

    def integer(self, value: Any, path: str) -> int:
        if type(value) is int:
            return value
        if value is None:
            return 0
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                pass
            else:
                self.report(path, f"expected an integer, got string {value!r}; converted")
                return number
        self.report(path, f"expected an integer, got {_kind(value)} {value!r}; used 0")
        return 0


def _errors(reader: _Problems, raw: Any, exit_code: int
            ) -> tuple[str, str, int, str, tuple[str, ...]]:
    """(step, type, exit code, details) of the error that explains the job's exit
    code (else the first error), and every error type sorted."""
    if not isinstance(raw, Mapping):
        if isinstance(raw, list) and not raw:
            return "", "", 0, "", ()
        reader.report("errors", f"expected an object of steps, got {_kind(raw)}; ignored")
        return "", "", 0, "", ()
    chosen: tuple[str, str, int, str] | None = None
    first: tuple[str, str, int, str] | None = None
    types: list[str] = []
    for step, items in raw.items():
        if items is None:
            continue
        if not isinstance(items, list):
            reader.report(f"errors.{step}", f"expected a list of errors, got {_kind(items)}; "
                                            f"ignored")
            continue
        for i, item in enumerate(items):
            path = f"errors.{step}[{i}]"
            if not isinstance(item, Mapping):
                reader.report(path, f"expected an object, got {_kind(item)}; ignored")
                continue
            kind = item.get("type")
            if kind is not None and not isinstance(kind, str):
                reader.report(f"{path}.type", f"expected a string, got {_kind(kind)}; "
                                              f"converted")
                kind = json_dumps(kind)
            if "type" in item:
                types.append(kind or "")
            details = item.get("details")
            if details is not None and not isinstance(details, str):
                reader.report(f"{path}.details", f"expected a string, got {_kind(details)}; "
                                                 f"converted")
                details = json_dumps(details)
            code = reader.integer(item.get("exitCode"), f"{path}.exitCode")
            entry = (str(step), kind or "", code, details or "")
            if first is None:
                first = entry
            if chosen is None and code == exit_code and exit_code:
                chosen = entry
    # JavaScript's default sort (the view's): by UTF-16 code units.
    types.sort(key=lambda t: t.encode("utf-16-be", "surrogatepass"))
    step, kind, code, details = chosen or first or ("", "", 0, "")
    return step, kind, code, details, tuple(types)


def _log_archive(reader: _Problems, raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, list):
        reader.report("output", f"expected a list of files, got {_kind(raw)}; ignored")
        return ""
    for item in raw:
        if isinstance(item, Mapping) and item.get("type") == "logArchive":
            lfn = item.get("lfn")
            if isinstance(lfn, str):
                return lfn
    return ""


def _strings_of(reader: _Problems, raw: Any, path: str, key: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    out: list[str] = []
    if isinstance(raw, Mapping):  # logArchiveLFN: {lfn: true}
        out = [str(k) for k in raw]
    elif isinstance(raw, list):
        for item in raw:
            value = item.get(key) if key and isinstance(item, Mapping) else item
            if isinstance(value, str) and value:
                out.append(value)
    else:
        reader.report(path, f"expected a list, got {_kind(raw)}; ignored")
    return tuple(out)


def convert_jobsummary(doc: Mapping[str, Any], problems: list[Problem],
                       options: JobOptions = JobOptions(), *,
                       doc_id: str | None = None) -> JobEntry | None:
    """Convert one ``jobsummary`` document.

    :param doc: the document as CouchDB serves it.
    :param problems: :class:`~wmstats.convert.Problem` entries are appended here.
    :param options: what to keep.
    :param doc_id: its id, when ``doc`` has no ``_id`` (a change's ``id``).
    :returns: ``None`` when it names no workflow (reported).
    """
    name = doc.get("_id")
    if not isinstance(name, str) or not name:
        name = doc_id or ""
    reader = _Problems(name or "<no id>", problems)
    if not name:
        reader.report("_id", "jobsummary without an id; skipped")
        return None
    workflow = reader.text(doc, "workflow")
    if not workflow:
        reader.report("workflow", "jobsummary without a workflow name; skipped")
        return None
    task = reader.text(doc, "task", null_ok=False)
    state = reader.text(doc, "state", null_ok=False)
    exit_code = reader.integer(doc.get("exitcode"), "exitcode")
    site = reader.text(doc, "site")
    agent = reader.text(doc, "agent_name")
    acdc = reader.text(doc, "acdc_url")
    step, kind, code, details, types = _errors(reader, doc.get("errors"), exit_code)
    node = doc.get("worker_node_info")
    host = node.get("HostName") if isinstance(node, Mapping) else None
    fields = {
        "RequestName": workflow, "Task": task, "State": state, "ExitCode": exit_code,
        "Site": site, "JobName": name, "Agent": agent, "ACDC": acdc,
        "WMBSId": reader.integer(doc.get("wmbsid"), "wmbsid"),
        "JobType": reader.text(doc, "jobtype"),
        "RetryCount": reader.integer(doc.get("retrycount"), "retrycount"),
        "Step": step, "ErrorType": kind, "ErrorExitCode": code,
        "Details": cut_text(details, options.detail_limit), "ErrorTypes": types,
        "LogArchive": _log_archive(reader, doc.get("output")),
        "LogURL": reader.text(doc, "eos_log_url"),
        "LogCollect": _strings_of(reader, doc.get("logArchiveLFN"), "logArchiveLFN", None),
        "WorkerNode": host if isinstance(host, str) else "",
        "InputFiles": _strings_of(reader, doc.get("inputfiles"), "inputfiles",
                                  "lfn")[:_MAX_INPUT_FILES],
        "Timestamp": reader.integer(doc.get("timestamp"), "timestamp"),
        "Document": "",
    }
    document = (doc if "_id" in doc else {"_id": name, **doc}) if options.keep_documents \
        else None
    return JobEntry(workflow, (task, state, exit_code, site), agent,
                    order_key(acdc, agent, types, name),
                    _SAMPLE_VALUES(fields), document)


# --------------------------------------------------------------------------- the table


class _Group:
    """One (workflow, task, state, exit code, site): jobs per agent, and its samples,
    packed: their order keys and job names as they are (to place newcomers), their
    rows (values and document) in one zlib-compressed JSON blob (a group's samples
    share most of their text, so they compress well together)."""

    __slots__ = ("counts", "orders", "names", "blob")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.orders: list[bytes] = []
        self.names: list[str] = []
        self.blob = b""

    def rows(self) -> list[list[Any]]:
        if not self.blob:
            return []
        rows: list[list[Any]] = ujson.loads(zlib.decompress(self.blob))
        return rows

    def pack(self, rows: list[list[Any]]) -> None:
        self.blob = compress(json_bytes(rows)) if rows else b""


#: A sample group of a workflow: (task, state, exit code, site).
GroupKey = tuple[str, str, int, str]
_FineKey = tuple[str, GroupKey, str]


class JobTable:
    """Job records of every ``jobsummary`` document seen, kept up to date as they change.

    :param options: what to keep per job and how many samples per group.
    :param load: for a table filled lazily from records kept elsewhere (a restarted
        source's store): called with a workflow's name before a document is counted
        in it, so that the caller can :meth:`adopt` the workflow's records first.
    """

    def __init__(self, options: JobOptions = JobOptions(),
                 load: Callable[[str], None] | None = None) -> None:
        self.options = options
        self._load = load
        self._groups: dict[str, dict[GroupKey, _Group]] = {}
        self._index = DocIndex()
        #: (workflow, group key, agent) of each group number the index holds
        self._fine: list[_FineKey | None] = []
        self._fine_ids: dict[_FineKey, int] = {}
        self._free: list[int] = []
        #: one object for each equal name (workflows, tasks, sites, agents, states)
        self._shared: dict[str, str] = {}

    def __len__(self) -> int:
        """How many documents are counted."""
        return len(self._index)

    def __contains__(self, doc_id: object) -> bool:
        """Whether document ``doc_id`` counts in the table."""
        return isinstance(doc_id, str) and self._index.get(doc_id) is not None

    def where(self, doc_id: str) -> tuple[str, GroupKey, str] | None:
        """Where document ``doc_id`` counts: (workflow, group, agent), or ``None``."""
        number = self._index.get(doc_id)
        return None if number is None else self._fine[number]

    def workflows(self) -> list[str]:
        """Every workflow with job records."""
        return list(self._groups)

    def index_bytes(self) -> int:
        """Memory of the per-document index, in bytes."""
        return self._index.nbytes()

    def compact(self) -> None:
        """Pack the recent index changes (after a full load)."""
        self._index.compact()

    # ------------------------------------------------------------------ writes

    def update(self, doc_id: str, doc: Any, problems: list[Problem]) -> set[str]:
        """Take back what document ``doc_id`` counted for, then count ``doc``.

        ``doc_id`` is the document's ``_id`` (its samples' job name).

        :param doc: its new version, or ``None`` when it was deleted.
        :param problems: problems found in ``doc`` are appended here.
        :returns: the workflows the document counted in before or counts in now
            (their records may have changed; a caller that failed to store them can
            apply the same document again and be told again).
        """
        entry = None
        if doc is not None:
            if isinstance(doc, Mapping):
                entry = convert_jobsummary(doc, problems, self.options, doc_id=doc_id)
            else:
                problems.append(Problem(doc_id, "", f"expected a JSON object, got "
                                                    f"{_kind(doc)}; skipped"))
        if entry is not None and self._load is not None:
            self._load(entry.workflow)
        changed: set[str] = set()
        old = self._index.get(doc_id)
        if old is not None:
            fine = self._fine[old]
            assert fine is not None
            workflow, key, agent = fine
            group = self._groups[workflow][key]
            if entry is not None and (entry.workflow, entry.key, entry.agent) == fine:
                self._offer(group, entry)
                changed.add(workflow)
                return changed
            self._take(old, fine, group, doc_id)
            self._index.delete(doc_id)
            changed.add(workflow)
        if entry is not None:
            share = self._shared.setdefault
            task, state, code, site = entry.key
            workflow = share(entry.workflow, entry.workflow)
            key = (share(task, task), share(state, state), code, share(site, site))
            agent = share(entry.agent, entry.agent)
            number = self._number((workflow, key, agent))
            groups = self._groups.setdefault(workflow, {})
            target = groups.get(key)
            if target is None:
                target = groups[key] = _Group()
            target.counts[agent] = target.counts.get(agent, 0) + 1
            self._offer(target, entry)
            self._index.set(doc_id, number)
            changed.add(workflow)
        return changed

    def _number(self, fine: _FineKey) -> int:
        """The group number of ``fine`` (a free one, or a new one, the first time)."""
        number = self._fine_ids.get(fine)
        if number is None:
            number = self._free.pop() if self._free else len(self._fine)
            if number == len(self._fine):
                self._fine.append(fine)
            else:
                self._fine[number] = fine
            self._fine_ids[fine] = number
        return number

    def _take(self, number: int, fine: _FineKey, group: _Group, doc_id: str) -> None:
        workflow, key, agent = fine
        left = group.counts[agent] - 1
        if left:
            group.counts[agent] = left
        else:
            del group.counts[agent]
            del self._fine_ids[fine]
            self._fine[number] = None
            self._free.append(number)
        if doc_id in group.names:
            at = group.names.index(doc_id)
            rows = group.rows()
            del group.orders[at], group.names[at], rows[at]
            group.pack(rows)
        if not group.counts:
            groups = self._groups[workflow]
            del groups[key]
            if not groups:
                del self._groups[workflow]

    def _offer(self, group: _Group, entry: JobEntry) -> bool:
        """Put ``entry``'s sample among the group's if it belongs there; whether the
        samples changed."""
        name = entry.name
        limit = self.options.samples
        row = entry.row()
        if name in group.names:
            at = group.names.index(name)
            rows = group.rows()
            if group.orders[at] == entry.order and rows[at] == ujson.loads(json_bytes(row)):
                return False
            del group.orders[at], group.names[at], rows[at]
        else:
            if len(group.names) >= limit and (not group.names or entry.order >= group.orders[-1]):
                return False
            rows = group.rows()
        at = bisect.bisect_right(group.orders, entry.order)
        group.orders.insert(at, entry.order)
        group.names.insert(at, name)
        rows.insert(at, row)
        del group.orders[limit:], group.names[limit:], rows[limit:]
        group.pack(rows)
        return True

    def adopt(self, jobs: WorkflowJobs, documents: Iterable[tuple[str, GroupKey, str]]) -> None:
        """Take one workflow's records as this table made them before (kept by a
        store), with the documents that count in them, instead of its documents.

        :param jobs: the workflow's records (:meth:`jobs` of the table that counted
            its documents).
        :param documents: (document id, group, agent) of each document counted in
            them.
        :raises ValueError: when the table knows the workflow already, or the
            documents do not add up to the records' counts and samples.
        """
        name = jobs.RequestName
        if name in self._groups:
            raise ValueError(f"the job records of {name!r} are in the table already")
        groups: dict[GroupKey, _Group] = {}
        for record in jobs.groups:
            key = (record.Task, record.State, record.ExitCode, record.Site)
            groups.setdefault(key, _Group()).counts[record.Agent] = record.Jobs
        placed: dict[str, tuple[GroupKey, str]] = {}
        tally: dict[tuple[GroupKey, str], int] = {}
        for doc_id, key, agent in documents:
            if doc_id in placed:
                raise ValueError(f"document {doc_id!r} of {name!r} is counted twice")
            placed[doc_id] = (key, agent)
            tally[key, agent] = tally.get((key, agent), 0) + 1
        counts = {(key, agent): jobs for key, group in groups.items()
                  for agent, jobs in group.counts.items()}
        if tally != counts:
            raise ValueError(f"the kept documents of {name!r} do not add up to its job counts")
        rows: dict[GroupKey, list[tuple[bytes, str, list[Any]]]] = {}
        for sample in jobs.samples:
            key = (sample.Task, sample.State, sample.ExitCode, sample.Site)
            if placed.get(sample.JobName) != (key, sample.Agent):
                raise ValueError(f"sample {sample.JobName!r} of {name!r} is not a document "
                                 f"counted in its group")
            row = list(_SAMPLE_ATTRS(sample))
            document = row[_DOCUMENT_AT]
            row[_DOCUMENT_AT] = ujson.loads(document) if document else None
            rows.setdefault(key, []).append((sample_order(sample), sample.JobName, row))
        share = self._shared.setdefault
        name = share(name, name)
        for key, kept in rows.items():
            kept.sort(key=operator.itemgetter(0))
            group = groups[key]
            group.orders = [order for order, _, _ in kept]
            group.names = [job for _, job, _ in kept]
            group.pack([row for _, _, row in kept])
        for doc_id, (key, agent) in placed.items():
            task, state, code, site = key
            self._index.set(doc_id, self._number(
                (name, (share(task, task), share(state, state), code, share(site, site)),
                 share(agent, agent))))
        if groups:
            self._groups[name] = groups

    def remove_workflow(self, name: str) -> bool:
        """Forget the groups of one workflow (its documents stay in the index until
        they change or go).  Unused by the sources; for tests and tools."""
        return self._groups.pop(name, None) is not None

    # ------------------------------------------------------------------ reads

    def jobs(self, name: str) -> WorkflowJobs:
        """The records of one workflow (empty when it has none)."""
        groups = self._groups.get(name, {})
        records: list[JobGroup] = []
        samples: list[JobSample] = []
        for key in sorted(groups):
            group = groups[key]
            task, state, code, site = key
            for agent in sorted(group.counts):
                records.append(JobGroup(RequestName=name, Task=task, State=state,
                                        ExitCode=code, Site=site, Agent=agent,
                                        Jobs=group.counts[agent]))
            samples.extend(_row_sample(row) for row in group.rows())
        return WorkflowJobs(name, tuple(records), tuple(samples))

    def all_jobs(self) -> Iterator[WorkflowJobs]:
        """The records of every workflow that has some."""
        for name in list(self._groups):
            yield self.jobs(name)


# --------------------------------------------------------------------------- filtering


def _matcher(values: Collection[str]) -> Any:
    if not values:
        return None
    globs = [compile_glob(v) for v in values]
    return lambda text: any(g(text) for g in globs)


@attrs.frozen(kw_only=True)
class JobFilter:
    """Which job records to keep: values are alternatives (OR), fields combine (AND);
    ``*`` and ``?`` are wildcards in text values.

    :param task: full task paths, or task names (the last path segment).
    :param state: job states.
    :param exit_code: exit codes.
    :param site: sites.
    :param agent: agents.
    """

    task: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    exit_code: tuple[int, ...] = ()
    site: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.task or self.state or self.exit_code or self.site or self.agent)


def select_jobs(jobs: WorkflowJobs, where: JobFilter) -> WorkflowJobs:
    """The records of ``jobs`` that match ``where`` (a sample matches on its group's
    fields and its agent)."""
    if not where:
        return jobs
    task = _matcher(where.task)
    state = _matcher(where.state)
    site = _matcher(where.site)
    agent = _matcher(where.agent)
    codes = frozenset(where.exit_code)

    def keep(record: JobGroup | JobSample) -> bool:
        if task is not None and not (task(record.Task)
                                     or task(record.Task.rsplit("/", 1)[-1])):
            return False
        if state is not None and not state(record.State):
            return False
        if codes and record.ExitCode not in codes:
            return False
        if site is not None and not site(record.Site):
            return False
        return agent is None or agent(record.Agent)

    return WorkflowJobs(jobs.RequestName, tuple(g for g in jobs.groups if keep(g)),
                        tuple(s for s in jobs.samples if keep(s)))


def group_samples(jobs: WorkflowJobs) -> dict[tuple[str, str, int, str], list[JobSample]]:
    """The samples of each (task, state, exit code, site), in sample order."""
    out: dict[tuple[str, str, int, str], list[JobSample]] = {}
    for sample in jobs.samples:
        out.setdefault((sample.Task, sample.State, sample.ExitCode, sample.Site),
                       []).append(sample)
    return out
