"""The static schema as a JSON Schema (draft 2020-12) and as Markdown.

Both are derived from the attrs classes in :mod:`wmstats.schema`, so they
cannot drift from the code: ``docs/schema.md`` is this module's Markdown
output, checked by the test suite and by ``tox -e docs``.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Final

import attrs

from wmstats.schema import COUNTER_PREFIXES, RECORD_TYPES, SCHEMA_VERSION, record_key

__all__ = ["DROPPED_KEYS", "json_schema", "record_schema", "render_markdown"]

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

#: Keys of WMCore documents that the static schema drops on purpose, and why.
DROPPED_KEYS: Final[dict[str, str]] = {
    "request: Task1..TaskN / Step1..StepN sub-documents, other than the keys of "
    "ChainArgs": (
        "dynamic keys; the values operators and WMCore services read (TaskName/StepName, "
        "Campaign, CMSSWVersion, ScramArch, AcquisitionEra, ProcessingString, PrepID, "
        "InputDataset, MCPileup, DataPileup, RequestNumEvents) are kept per level as "
        "ChainArgs records and merged into the Workflow list fields, the rest (splitting, "
        "config cache ids, memory, time per event...) is job configuration nobody "
        "monitors"),
    "request: ChainParentageMap": "kept, but as ChainParentage records (one per TaskN/StepN)",
    "request: configuration and bookkeeping keys (ConfigCacheID, ConfigCacheUrl, "
    "CouchURL, CouchDBName, CouchWorkloadDBName, RequestWorkflow, DbsUrl, DQM*, "
    "Dashboard*, GlobalTag*, BlockClose*, *MergeSize, *MergeEvents, Memory, Multicore, "
    "SizePerEvent, TimePerEvent, FilterEfficiency, SoftTimeout, HardTimeout, GracePeriod, "
    "LumiList, RunWhitelist, RunBlacklist, BlockWhitelist, BlockBlacklist, Override, "
    "Comments, DN, RequestorDN, VoGroup, VoRole, Custodial*, NonCustodial*, "
    "AutoApproveSubscriptionSites, SubscriptionPriority, ...)": (
        "workload configuration, not monitoring data; read it from ReqMgr2 when needed"),
    "request: PriorityTransition": "history of priority changes; RequestPriority keeps "
                                   "the current one",
    "agent_request: _id, _rev, type, agent": (
        "CouchDB bookkeeping; the agent is identified by agent_url"),
    "agent_request: team (legacy)": (
        "the request's Teams field is the source of truth; agent_team is kept in "
        "AgentRequest"),
    "agent_request: output_progress (legacy)": (
        "superseded by tasks.<task>.sites.<site>.dataset, which becomes DatasetStats"),
    "agent_request: tasks.<task>.skipped.<key other than skippedFiles>": (
        "reported as a conversion problem when present"),
    "agent_info: acdc, components, workers, WMBS_INFO, LocalWQ_INFO, drain_stats (but "
    "workflows_completed), agent, the other keys of down_component_detail entries": (
        "agent internals; the status, down components with their error lines, disks, "
        "proxy, CouchDB processes and data error summarise them"),
    "jobsummary: lumis, output (but the log archive), outputdataset, state_history, "
    "cms_location, worker_node_info (but HostName), inputfiles beyond 10, "
    "errors beyond the one that explains the exit code (their types are kept)": (
        "per-job detail: counted per group in JobGroup, kept whole only for the sample "
        "jobs (JobSample.Document)"),
    "documents of type tier0_request, workqueue_element": (
        "not part of the WMStats cache; skipped without a problem"),
}


def _json_type(tp: Any) -> dict[str, Any]:
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(tp)
        return {"type": "array", "items": _json_type(item)}
    if isinstance(tp, types.UnionType):  # pragma: no cover - not used by the schema
        return {"anyOf": [_json_type(t) for t in typing.get_args(tp)]}
    # Records are flat: a record inside a record has its own record type instead.
    raise TypeError(f"no JSON Schema type for {tp!r}")


def record_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of one record type.

    :param cls: an attrs record class from :mod:`wmstats.schema`.
    """
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        prop = _json_type(hints[field.name])
        prop["description"] = field.metadata["description"]
        if "source" in field.metadata:
            prop["x-source"] = field.metadata["source"]
        elif "counter_path" in field.metadata:
            prop["x-source"] = f"{COUNTER_PREFIXES[cls]}.{field.metadata['counter_path']}"
        if field.default is attrs.NOTHING:
            required.append(field.name)
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            prop["default"] = []
        else:
            prop["default"] = field.default
        properties[field.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "title": cls.__name__,
        "description": " ".join((cls.__doc__ or "").split("\n\n")[0].split()),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if cls in RECORD_TYPES.values():
        schema["x-key"] = list(record_key(cls))
    return schema


@functools.cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema document describing every record type (cached; do not mutate)."""
    defs = {name: record_schema(cls) for name, cls in RECORD_TYPES.items()}
    return {
        "$schema": _DIALECT,
        "$id": f"urn:wmstats:schema:{SCHEMA_VERSION}",
        "title": "wmstats static schema",
        "description": (
            "Flat records served by the wmstats cache server; each value in a JSON "
            "response or NDJSON line is one of the record types in $defs."),
        "x-schema-version": SCHEMA_VERSION,
        "x-dropped": dict(DROPPED_KEYS),
        "$defs": defs,
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in RECORD_TYPES],
    }


def _type_label(prop: dict[str, Any]) -> str:
    if prop["type"] == "array":
        return f"array of {_type_label(prop['items'])}"
    return str(prop["type"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """The human-readable schema reference (the content of ``docs/schema.md``)."""
    schema = json_schema()
    lines = [
        "# Static schema reference",
        "",
        "<!-- Generated by `wmstats schema --markdown`; do not edit by hand. -->",
        "",
        f"Schema version **{SCHEMA_VERSION}**. The machine-readable form is "
        "`wmstats schema` (JSON Schema draft 2020-12); the *source* column is its "
        "`x-source` annotation: the key path in the WMCore document the value comes "
        "from (`status.submitted.running` is read from the `status` "
        "dictionary of the `agent_request` documents, summed over agents for a "
        "Workflow).",
        "",
        "Job counters: every record that counts jobs has the same counter fields. A "
        "counter under a status name the schema does not know is added to `OtherJobs` "
        "and reported as a conversion problem, so the sum of the counter fields always "
        "equals the sum of the counters in the source document.",
        "",
    ]
    for name, definition in schema["$defs"].items():
        lines += [f"## {name}", "", definition["description"], ""]
        if "x-key" in definition:
            lines += ["Key: " + ", ".join(f"`{k}`" for k in definition["x-key"]), ""]
        lines += ["| field | type | source | description |", "|---|---|---|---|"]
        for field, prop in definition["properties"].items():
            source = f"`{prop['x-source']}`" if "x-source" in prop else ""
            lines.append(f"| `{field}` | {_type_label(prop)} | {_cell(source)} | "
                         f"{_cell(prop['description'])} |")
        lines.append("")
    lines += ["## Dropped on purpose", "",
              "| WMCore keys | why |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in DROPPED_KEYS.items()]
    lines.append("")
    return "\n".join(lines)
