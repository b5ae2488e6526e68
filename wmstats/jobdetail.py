"""WMCore's ``jobdetail/<workflow>?sample_size=N`` answer, built from job records.

Today's WMStats server (reqmon) answers ``/wmstatsserver/data/jobdetail/<wf>`` by
reading CouchDB's ``jobsByStatusWorkflow`` view of the ``jobsummary`` documents
(``WMStatsReader.getTaskJobSummaryByRequest`` and ``WMStatsPycurl``):

1. the view reduced to ``[workflow, task, state, exit code, site]`` gives the
   number of jobs of each group;
2. for each group one query asks for the first ``sample_size`` documents from
   ``[workflow, task, state, exit code, site]`` (the site left out when it is
   empty) to that key followed by ``{}``, in view order (ACDC URL, agent, sorted
   error types, then document id);
3. every document returned is put under its own ``workflow -> task -> state ->
   exit code -> site``, ``samples`` gets the document and ``errorCount`` the count
   of the first group whose key, as JSON text, is part of the document's key as
   JSON text.

:func:`jobdetail` does the same over the :class:`~wmstats.schema.JobGroup` and
:class:`~wmstats.schema.JobSample` records of one workflow.  The answer is the
same as reqmon's as long as ``sample_size`` is at most the number of samples
kept per group (:class:`wmstats.jobs.JobOptions`), the samples keep their
documents, and the documents are well formed (a string site, an integer exit
code).  Quirks kept on purpose: a group with an empty site asks for the whole
exit code, so its documents and those of the other sites of that exit code come
back (and its ``errorCount`` stays 0); the order of the groups is the order of
the view (reqmon's is the order its parallel queries happen to answer in).

Pure: no I/O, no web.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wmstats.jobs import couch_collation_key, sample_order
from wmstats.schema import JobSample, WorkflowJobs

__all__ = ["jobdetail", "sample_document", "DEFAULT_SAMPLE_SIZE"]

#: reqmon's default ``sample_size``.
DEFAULT_SAMPLE_SIZE = 1


def sample_document(sample: JobSample) -> dict[str, Any]:
    """The jobsummary document of a sample: the kept one, else one rebuilt from the
    record's fields (when documents are not kept)."""
    if sample.Document:
        doc: dict[str, Any] = json.loads(sample.Document)
        return doc
    errors: dict[str, Any] = {}
    if sample.Step:
        errors[sample.Step] = [{"type": sample.ErrorType, "details": sample.Details,
                                "exitCode": sample.ErrorExitCode}]
    return {"_id": sample.JobName, "type": "jobsummary", "workflow": sample.RequestName,
            "task": sample.Task, "state": sample.State, "exitcode": sample.ExitCode,
            "site": sample.Site, "agent_name": sample.Agent, "acdc_url": sample.ACDC,
            "wmbsid": sample.WMBSId, "jobtype": sample.JobType,
            "retrycount": sample.RetryCount, "errors": errors,
            "eos_log_url": sample.LogURL, "timestamp": sample.Timestamp}


def _key_text(key: Sequence[Any]) -> str:
    # reqmon compares json.dumps texts (default separators, ASCII escapes).
    return json.dumps(list(key))


def jobdetail(jobs: WorkflowJobs | None, sample_size: int = DEFAULT_SAMPLE_SIZE
              ) -> dict[str, Any]:
    """The item of reqmon's ``{"result": [item]}`` for one workflow.

    ``{workflow: {task: {state: {"<exit code>": {site: {"samples": [documents],
    "errorCount": N}}}}}}``, or ``{}`` when the workflow has no job records.  Exit
    codes are string keys, as JSON writes them.

    :param jobs: the workflow's job records (``None``: none).
    :param sample_size: documents asked per group (reqmon's ``sample_size``); a
        size of 0 or less asks for none, as CouchDB's ``limit=0`` does.
    """
    if jobs is None or not jobs.groups:
        return {}
    name = jobs.RequestName
    counts: dict[tuple[str, str, int, str], int] = {}
    for group in jobs.groups:
        key = (group.Task, group.State, group.ExitCode, group.Site)
        counts[key] = counts.get(key, 0) + group.Jobs
    rows = sorted(counts, key=lambda k: couch_collation_key([name, *k]))
    by_group: dict[tuple[str, str, int, str], list[JobSample]] = {}
    for sample in jobs.samples:
        key = (sample.Task, sample.State, sample.ExitCode, sample.Site)
        by_group.setdefault(key, []).append(sample)
    for samples in by_group.values():
        samples.sort(key=sample_order)
    queries: list[tuple[str, int, tuple[str, str, int, str]]] = []
    for key in rows:
        startkey: list[object] = [name, *key[:3]] + ([key[3]] if key[3] else [])
        queries.append((_key_text(startkey), counts[key], key))
    detail: dict[str, Any] = {}
    for _text, _count, key in queries:
        if key[3]:
            found = [(key, s) for s in by_group.get(key, ())]
        else:  # no site in the start key: every site of this exit code
            found = [(k, s) for k in rows if k[:3] == key[:3] for s in by_group.get(k, ())]
        for doc_key, sample in found[:max(0, sample_size)]:
            task, state, code, site = doc_key
            group = (detail.setdefault(name, {}).setdefault(task, {}).setdefault(state, {})
                     .setdefault(str(code), {}).setdefault(site, {}))
            group.setdefault("samples", []).append(sample_document(sample))
            group.setdefault("errorCount", 0)
            text = _key_text([name, *doc_key])
            for start, count, _key in queries:
                if start in text:
                    group["errorCount"] = count
                    break
    return detail
