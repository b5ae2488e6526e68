"""The OpenAPI 3.1 description of the cache server, derived from the code.

Record schemas come from :func:`wmstats.jsonschema.json_schema` (itself derived
from the attrs classes), filter parameters from
:func:`wmstats.query.field_specs`, aggregates from
:data:`wmstats.aggregates.AGGREGATES`, the parts of a workflow from
:data:`wmstats.schema.BUNDLE_PARTS`, endpoints from the routing table
(:data:`wmstats.web.cache.ROUTES`): nothing is written twice, so the description
cannot drift from what the server does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any, Final

from wmstats._version import __version__
from wmstats.aggregates import AGGREGATES
from wmstats.jsonschema import json_schema
from wmstats.query import FieldSpec, field_specs, grammar
from wmstats.query.model import INT_MAX, INT_MIN
from wmstats.schema import BUNDLE_PARTS, COUNTER_FIELDS, SCHEMA_VERSION
from wmstats.web._errors import ERROR_CODES
from wmstats.web._negotiate import JSON
from wmstats.web._routes import (
    METRICS_TYPE,
    OPTION_MAX_TEXT,
    OPTION_MAX_VALUES,
    Option,
    Params,
    Route,
)

__all__ = ["openapi_document", "filter_parameters", "english_list", "error_schema",
           "REGEX_FORMAT"]

#: The ``format`` of regular expression parameters: a pattern RE2 accepts (see
#: :func:`wmstats.query.compile_regex`).
REGEX_FORMAT: Final = "re2"

_REF: Final = "#/components/schemas/"
_PARAM_REF: Final = "#/components/parameters/"
_HEADER_REF: Final = "#/components/headers/"

#: Explicit operators accepted per field kind (see :func:`wmstats.query.parse_query`).
_OPS: Final[dict[str, tuple[str, ...]]] = {
    "str": ("eq", "glob", "re"),
    "int": ("eq", "gt", "ge", "lt", "le"),
    "bool": ("eq",),
}
_OP_TEXT: Final[dict[str, str]] = {
    "eq": "exact value; repeated values are alternatives (OR)",
    "glob": "wildcard (`*` any run, `?` one character), anchored; repeated: OR",
    "re": "RE2 regular expression (Python's syntax without backreferences or "
          "look-around), unanchored; repeated: OR",
    "gt": "greater than; each repeated value is one more condition",
    "ge": "greater than or equal",
    "lt": "less than",
    "le": "less than or equal",
}


def english_list(words: Iterable[str]) -> str:
    """``a, b and c``."""
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _part_types() -> list[str]:
    """The record type of each part of a workflow bundle, in order."""
    return [cls.__name__ for cls in BUNDLE_PARTS.values()]


def _rewrite_refs(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#/$defs/"):
                out[key] = _REF + item[len("#/$defs/"):]
            else:
                out[key] = _rewrite_refs(item)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(v) for v in value]
    return value


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _record_schemas() -> dict[str, Any]:
    defs: dict[str, Any] = _rewrite_refs(copy.deepcopy(json_schema()["$defs"]))
    workflow = defs["Workflow"]
    partial = copy.deepcopy(workflow)
    partial["title"] = "WorkflowFields"
    partial["description"] = ("A Workflow record, reduced to the keys of the `fields` mask "
                              "when one is given.")
    partial["required"] = []
    defs["WorkflowFields"] = partial
    counters = {name: {k: v for k, v in workflow["properties"][name].items() if k != "x-source"}
                for name in COUNTER_FIELDS}
    defs["StatusCount"] = {
        "type": "object", "title": "StatusCount",
        "description": "How many workflows are in one status.",
        "properties": {"RequestStatus": {"type": "string"},
                       "Workflows": {"type": "integer", "minimum": 0}},
        "required": ["RequestStatus", "Workflows"], "additionalProperties": False,
    }
    summary_props: dict[str, Any] = dict(counters)
    summary_props.update({
        "By": {"type": "string", "enum": sorted(a.key for a in AGGREGATES),
               "description": "What the summary is of."},
        "Value": {"type": "string", "description": (
            f"The {english_list(a.noun for a in AGGREGATES)} (may be empty for a scalar "
            f"field such as the request status or type: workflows without one are counted "
            f"under \"\")")},
        "Workflows": {"type": "integer", "minimum": 0,
                      "description": "Workflows holding the value (and matching the filters)."},
        "WorkflowsByStatus": {"type": "array", "items": _ref("StatusCount"),
                              "description": "Those workflows counted by RequestStatus."},
    })
    defs["Summary"] = {
        "type": "object", "title": "Summary",
        "description": ("Job counters summed over the workflows holding one value, and how "
                        "many they are by status (see wmstats.query.summarize)."),
        "properties": summary_props,
        "required": list(summary_props), "additionalProperties": False,
    }
    agent_summary = copy.deepcopy(defs["Summary"])
    agent_summary["title"] = "AgentSummary"
    agent_summary["description"] += " For an agent, its heartbeat record too."
    agent_summary["properties"]["Agent"] = _nullable(_ref("Agent"))
    agent_summary["required"] = [*agent_summary["required"], "Agent"]
    defs["AgentSummary"] = agent_summary
    return defs


#: The ``sources`` field of data bodies (and ``sequences`` of the source status).
_SEQUENCES: Final[dict[str, Any]] = {
    "type": "object", "additionalProperties": {"type": "string"},
    "description": "Upstream database -> the last change sequence applied (opaque)."}
_SOURCES: Final[dict[str, Any]] = {
    "oneOf": [_SEQUENCES, {"type": "null"}],
    "description": ("The source sequences the snapshot reflects (database -> opaque "
                    "sequence); null when the server has no source or did not note them.")}


def _source_status() -> dict[str, Any]:
    number = {"oneOf": [{"type": "number", "minimum": 0}, {"type": "null"}]}
    props: dict[str, Any] = {
        "ready": {"type": "boolean", "description": "The first full load has finished."},
        "connected": {"type": "boolean",
                      "description": "The last request to the upstream server succeeded."},
        "last_contact": {**number, "description": "When the upstream server last answered "
                                                  "(epoch s); null if it never did."},
        "sequences": _SEQUENCES,
        "last_load_seconds": {**number, "description": "Duration of the last full load."},
        "loaded_at": {**number, "description": "When the last full load ended (epoch s)."},
        "loads": {"type": "integer", "minimum": 0},
        "resumes": {"type": "integer", "minimum": 0,
                    "description": ("Warm starts: resumed from the sequences kept with a "
                                    "persistent store's snapshot instead of a full load.")},
        "updates_applied": {"type": "integer", "minimum": 0,
                            "description": "Changed documents applied since the loads."},
        "problems": {"type": "integer", "minimum": 0,
                     "description": "Problems found in upstream documents."},
        "errors": {"type": "integer", "minimum": 0,
                   "description": "Failed requests or loads (each retried)."},
        "last_error": {"oneOf": [{"type": "string"}, {"type": "null"}]},
        "url": {"type": "string", "description": "The upstream server (no password)."},
    }
    # url and last_error only with full health detail (see CacheConfig.health_detail).
    required = [key for key in props if key not in ("url", "last_error")]
    return {"type": "object", "title": "SourceStatus", "properties": props,
            "required": required, "additionalProperties": False}


def _envelopes(limits: dict[str, int]) -> dict[str, Any]:
    page_props: dict[str, Any] = {
        "total": {"type": "integer", "minimum": 0,
                  "description": "Workflows matching the query (all pages)."},
        "idx": {"type": "integer", "minimum": 0, "description": "Offset of this page."},
        "limit": {"type": "integer", "minimum": 0, "description": "Page size."},
        "snapshot": {"type": "string", "description": "Store snapshot the page was read from."},
        "sources": _SOURCES,
        "next": {"oneOf": [{"type": "string"}, {"type": "null"}],
                 "description": "URL of the next page; null on the last page."},
        "workflows": {"type": "array", "items": _ref("WorkflowFields")},
    }
    detail_props: dict[str, Any] = {
        "snapshot": {"type": "string"}, "sources": _SOURCES, "workflow": _ref("Workflow"),
        **{name: {"type": "array", "items": _ref(cls.__name__)}
           for name, cls in BUNDLE_PARTS.items()}}
    schemas: dict[str, Any] = {
        "Error": error_schema(),
        "WorkflowPage": {
            "type": "object", "title": "WorkflowPage", "properties": page_props,
            "required": list(page_props), "additionalProperties": False,
        },
        "SummaryPage": {
            "type": "object", "title": "SummaryPage",
            "properties": {"summary": _ref("Summary"), **page_props},
            "required": ["summary", *page_props], "additionalProperties": False,
        },
        "AgentPage": {
            "type": "object", "title": "AgentPage",
            "properties": {"summary": _ref("Summary"), "agent": _nullable(_ref("Agent")),
                           **page_props},
            "required": ["summary", "agent", *page_props], "additionalProperties": False,
        },
        "WorkflowDetail": {
            "type": "object", "title": "WorkflowDetail",
            "properties": detail_props,
            "required": list(detail_props),
            "additionalProperties": False,
        },
        "Health": {
            "type": "object", "title": "Health",
            "properties": {
                "ready": {"type": "boolean"},
                "snapshot": {"oneOf": [{"type": "string"}, {"type": "null"}]},
                "snapshot_age_seconds": {
                    "oneOf": [{"type": "number", "minimum": 0}, {"type": "null"}],
                    "description": "Seconds since this server first saw the snapshot."},
                "workflows": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
                "agents": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
                "backend": {"type": "string"},
                "source": {"oneOf": [_ref("SourceStatus"), {"type": "null"}],
                           "description": ("The data source (null without one); the server "
                                           "is ready once its first full load is done.")},
                "detail": {"type": "string"},
            },
            "required": ["ready", "snapshot", "snapshot_age_seconds", "workflows", "agents",
                         "backend", "source"],
            "additionalProperties": False,
        },
        "SourceStatus": _source_status(),
        "WorkflowJobs": {
            "type": "object", "title": "WorkflowJobs",
            "description": "One workflow's job records (filtered as asked).",
            "properties": {
                "workflow": {"type": "string"},
                "snapshot": {"type": "string",
                             "description": "The job records' snapshot id."},
                "jobs": {"type": "integer", "minimum": 0,
                         "description": "Jobs counted by the groups."},
                "samples": {"type": "array", "items": _ref("JobSample")},
                "groups": {"type": "array", "items": _ref("JobGroup")},
            },
            "required": ["workflow", "snapshot", "jobs", "samples", "groups"],
            "additionalProperties": False,
        },
        "AlertList": {
            "type": "object", "title": "AlertList",
            "description": "Every alert now (filtered as asked), errors first.",
            "properties": {
                "now": {"type": "integer", "description": "When (epoch seconds)."},
                "snapshot": {"oneOf": [{"type": "string"}, {"type": "null"}],
                             "description": "The store snapshot the alerts reflect."},
                "total": {"type": "integer", "minimum": 0},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                           "description": "Alerts per kind."},
                "agents": {"type": "object", "properties": {
                    "total": {"type": "integer"}, "alerting": {"type": "integer"}},
                    "required": ["total", "alerting"], "additionalProperties": False,
                    "description": "Agents known, and how many have an alert."},
                "alerts": {"type": "array", "items": _ref("Alert")},
            },
            "required": ["now", "snapshot", "total", "counts", "agents", "alerts"],
            "additionalProperties": False,
        },
        "Info": {
            "type": "object", "title": "Info",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "schema_version": {"type": "string"},
                "backend": {"type": "string"},
                "limits": {
                    "type": "object",
                    "properties": {k: {"type": "integer", "const": v}
                                   for k, v in limits.items()},
                    "required": list(limits), "additionalProperties": False,
                },
                "formats": {"type": "array", "items": {"type": "string"}},
                "endpoints": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "schema_version", "backend", "limits", "formats",
                         "endpoints"],
            "additionalProperties": False,
        },
    }
    for name, item in (("ValueList", "Summary"), ("AgentValueList", "AgentSummary")):
        schemas[name] = {
            "type": "object", "title": name,
            "properties": {
                "by": {"type": "string"},
                "snapshot": {"type": "string"},
                "sources": _SOURCES,
                "total": {"type": "integer", "minimum": 0, "description": "Number of values."},
                "values": {"type": "array", "items": _ref(item)},
            },
            "required": ["by", "snapshot", "sources", "total", "values"],
            "additionalProperties": False,
        }
    return schemas


def error_schema() -> dict[str, Any]:
    """The schema of a JSON error document (both servers)."""
    return {
        "type": "object", "title": "Error",
        "properties": {
            "error": {"type": "string", "enum": sorted(set(ERROR_CODES.values()))},
            "detail": {"type": "string", "description": "What was wrong."},
            "parameter": {"type": "string",
                          "description": "The parameter at fault, when there is one."},
        },
        "required": ["error", "detail"], "additionalProperties": False,
    }


def _value_schema(spec: FieldSpec, op: str | None) -> dict[str, Any]:
    """The schema of one value of a filter parameter: exactly what the parser
    takes (:mod:`wmstats.query.grammar`)."""
    if op is None:  # a plain value: comma-separated items, bounded in length
        if spec.kind == "bool":
            value = f"{grammar.BOOLEAN}(?:,{grammar.BOOLEAN})*"
        elif spec.kind == "int":
            value = grammar.number_items(grammar.TIME if spec.time else grammar.INTEGER)
        else:
            value = grammar.text_items()
        return {"type": "string", "pattern": grammar.anchored(value),
                "maxLength": grammar.MAX_VALUE}
    if spec.kind == "bool":
        return {"type": "string", "pattern": grammar.anchored(grammar.BOOLEAN)}
    if spec.kind == "int":
        if spec.time:
            return {"type": "string", "pattern": grammar.anchored(grammar.TIME)}
        return {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}
    schema: dict[str, Any] = {"type": "string", "maxLength": grammar.MAX_TEXT}
    if op == "re":
        schema["format"] = REGEX_FORMAT
    return schema


def _filter_schema(spec: FieldSpec, op: str | None) -> dict[str, Any]:
    return {"type": "array", "items": _value_schema(spec, op)}


def _filter_description(spec: FieldSpec, op: str | None) -> str:
    many = " (any element of the list)" if spec.many else ""
    if op is not None:
        extra = " Epoch seconds or ISO 8601." if spec.time else ""
        return f"Filter: {spec.name}{many} {_OP_TEXT[op]}.{extra}"
    if spec.kind == "str":
        return (f"Filter on {spec.name}{many}: exact values, comma-separated or repeated "
                f"(OR); a value with `*` or `?` makes it a wildcard filter.")
    if spec.kind == "bool":
        return f"Filter on {spec.name}: true or false (also 1/0, yes/no)."
    when = " Epoch seconds or ISO 8601 dates." if spec.time else ""
    return (f"Filter on {spec.name}: exact integers (comma-separated or repeated: OR), "
            f"or one comparison `>=N`, `>N`, `<=N`, `<N`, or a range `N..M`.{when}")


def filter_parameters() -> dict[str, dict[str, Any]]:
    """Every filter query parameter (``Field`` and ``Field.op``) as an OpenAPI parameter."""
    params: dict[str, dict[str, Any]] = {}
    for spec in field_specs().values():
        for op in (None, *_OPS[spec.kind]):
            name = spec.name if op is None else f"{spec.name}.{op}"
            params[name] = {
                "name": name, "in": "query", "required": False,
                "description": _filter_description(spec, op),
                "schema": _filter_schema(spec, op),
                "style": "form", "explode": True,
            }
    return params


def _names_pattern(names: list[str], signed: bool) -> str:
    alt = "|".join(names)
    sign = "[+-]?" if signed else ""
    return f"^{sign}({alt})(,{sign}({alt}))*$"


def _paging_parameters(limits: dict[str, int]) -> dict[str, dict[str, Any]]:
    sortable = list(field_specs())
    every = list(field_specs())
    return {
        "idx": {"name": "idx", "in": "query", "required": False,
                "description": "Zero-based offset of the first workflow of the page.",
                "schema": {"type": "integer", "minimum": 0, "maximum": INT_MAX,
                           "default": 0}},
        "limit": {"name": "limit", "in": "query", "required": False,
                  "description": (
                      f"Page size (default {limits['default_limit']}), at most "
                      f"{limits['max_stream_limit']} (413 above). An application/json page "
                      f"holds at most {limits['max_limit']} workflows: a larger limit is "
                      f"capped (the body's limit and the next link say so); NDJSON pages "
                      f"hold the whole limit. 0 returns only the count."),
                  "schema": {"type": "integer", "minimum": 0,
                             "maximum": limits["max_stream_limit"],
                             "default": limits["default_limit"]}},
        "sort": {"name": "sort", "in": "query", "required": False,
                 "description": ("Comma-separated fields, `-Field` for descending; ties are "
                                 "broken by RequestName ascending."),
                 "schema": {"type": "string", "pattern": _names_pattern(sortable, True)}},
        "fields": {"name": "fields", "in": "query", "required": False,
                   "description": "Comma-separated field mask of the returned workflows.",
                   "schema": {"type": "string", "pattern": _names_pattern(every, False)}},
    }


def _format_parameter(json_only: bool) -> dict[str, Any]:
    if json_only:
        return {"name": "format", "in": "query", "required": False,
                "description": "`json` (the only format of this endpoint).",
                "schema": {"type": "string", "enum": ["json"]}}
    return {"name": "format", "in": "query", "required": False,
            "description": ("`json` or `ndjson`: overrides the Accept header (for browsers "
                            "and curl)."),
            "schema": {"type": "string", "enum": ["json", "ndjson"]}}


def _headers() -> dict[str, Any]:
    return {
        "X-Total-Count": {"description": ("Workflows matching the query, over all pages "
                                          "(/jobs: jobs counted; /alerts: alerts)."),
                          "schema": {"type": "integer", "minimum": 0}},
        "X-Jobs-Snapshot-Id": {"description": "The job records' snapshot id (it changes with "
                                              "every job write).",
                               "schema": {"type": "string"}},
        "Link": {"description": 'The next page: `<URL>; rel="next"` (absent on the last page).',
                 "schema": {"type": "string"}},
        "X-Snapshot-Id": {"description": "The store snapshot the response was read from.",
                          "schema": {"type": "string"}},
        "ETag": {"description": ("Entity tag from the snapshot id (or the content); send it in "
                                 "If-None-Match to get 304 while nothing changed."),
                 "schema": {"type": "string"}},
        "X-Source-Sequences": {
            "description": ("JSON object: upstream database -> the change sequence (opaque) "
                            "the snapshot reflects; only on servers fed by a source."),
            "schema": {"type": "string"}},
        "Retry-After": {"description": "Seconds to wait before asking again.",
                        "schema": {"type": "integer", "minimum": 0}},
    }


def _error_response(text: str) -> dict[str, Any]:
    return {"description": text, "content": {JSON: {"schema": _ref("Error")}}}


def _ndjson_content(item: str, tagged: bool) -> dict[str, Any]:
    text = (f"One JSON object per line: {item}"
            + (", each with a `RecordType` key naming its record type." if tagged else "."))
    schema = {"type": "string", "description": text}
    return {"application/x-ndjson": {"schema": schema},
            "application/ndjson": {"schema": schema}}


def _success(route: Route) -> tuple[str, dict[str, Any]]:
    """The 200 response of a route: its description and content."""
    seg, item = route.segment, route.item
    if seg == "fetch" and item is None:
        return "One page of workflows.", {
            JSON: {"schema": _ref("WorkflowPage")},
            **_ndjson_content("the page's workflows (WorkflowFields)", False)}
    if seg == "fetch":
        return "The workflow and its records.", {
            JSON: {"schema": _ref("WorkflowDetail")},
            **_ndjson_content(f"the Workflow first, then its {english_list(_part_types())} "
                              f"records", True)}
    agent = route.carries_agent
    if route.aggregate is not None and item is None:
        listing = "AgentValueList" if agent else "ValueList"
        return "Every known value with its summary.", {
            JSON: {"schema": _ref(listing)},
            **_ndjson_content("one Summary per value" + (
                " (with its Agent record)" if agent else ""), False)}
    if route.aggregate is not None:
        page = "AgentPage" if agent else "SummaryPage"
        return "The summary and one page of its workflows.", {
            JSON: {"schema": _ref(page)},
            **_ndjson_content("the Summary, " + ("the Agent record (if any), "
                                                 if agent else "")
                              + "then the page's workflows", True)}
    if seg == "jobs":
        return "The workflow's job records.", {
            JSON: {"schema": _ref("WorkflowJobs")},
            **_ndjson_content("the JobGroup records, then the JobSample records", True)}
    if seg == "alerts":
        return "Every alert now.", {
            JSON: {"schema": _ref("AlertList")},
            **_ndjson_content("one Alert per line", False)}
    if seg == "healthz":
        return "The store answers.", {JSON: {"schema": _ref("Health")}}
    if seg == "metrics":
        return "Prometheus text exposition format 0.0.4.", {
            METRICS_TYPE: {"schema": {"type": "string"}}}
    if seg == "openapi.json":
        return "This document.", {JSON: {"schema": {"type": "object"}}}
    if seg == "schema":
        return "JSON Schema (draft 2020-12) of every record type.", {
            JSON: {"schema": {"type": "object"}}}
    return "Server identity.", {JSON: {"schema": _ref("Info")}}


def _option_parameter(option: Option) -> dict[str, Any]:
    item: dict[str, Any] = {"type": {"int": "integer", "bool": "boolean"}.get(option.kind,
                                                                             "string")}
    if option.choices:
        item["enum"] = list(option.choices)
    elif option.kind == "str":
        item["maxLength"] = OPTION_MAX_TEXT
    if option.kind == "int" and not option.many:
        item["minimum"] = 0  # a count
    schema: dict[str, Any] = item if not option.many else {
        "type": "array", "items": item, "maxItems": OPTION_MAX_VALUES}
    text = option.description + (" Repeated or comma-separated values are alternatives "
                                 "(OR)." if option.many else "")
    param: dict[str, Any] = {"name": option.name, "in": "query", "required": False,
                             "description": text, "schema": schema}
    if option.many:
        param.update(style="form", explode=True)
    return param


def _operation(route: Route, auth_open: frozenset[str] | None = None) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    if route.item is not None:
        params.append({"name": route.item, "in": "path", "required": True,
                       "description": f"The {route.item} name.",
                       "schema": {"type": "string", "minLength": 1}})
    if route.params is not Params.NONE:
        json_only = route.types == (JSON,)
        params.append({"$ref": _PARAM_REF + ("format_json" if json_only else "format")})
    if route.params is Params.PAGED:
        params += [{"$ref": _PARAM_REF + name} for name in ("idx", "limit", "sort", "fields")]
    if route.params in (Params.PAGED, Params.FILTERS):
        params += [{"$ref": _PARAM_REF + name} for name in filter_parameters()]
    if route.params is Params.OPTIONS:
        params += [_option_parameter(option) for option in route.options]
    description, content = _success(route)
    ok: dict[str, Any] = {"description": description, "content": content}
    data = route.segment not in ("healthz", "metrics")
    tagged = data and route.segment != "alerts"  # alerts change with the clock: no ETag
    if data:
        headers: dict[str, Any] = {}
        if tagged:
            headers["ETag"] = {"$ref": _HEADER_REF + "ETag"}
        if route.segment == "jobs":
            headers["X-Jobs-Snapshot-Id"] = {"$ref": _HEADER_REF + "X-Jobs-Snapshot-Id"}
        elif route.data and route.params is not Params.OPTIONS:
            headers["X-Snapshot-Id"] = {"$ref": _HEADER_REF + "X-Snapshot-Id"}
            headers["X-Source-Sequences"] = {"$ref": _HEADER_REF + "X-Source-Sequences"}
        if route.params is Params.PAGED:
            headers["X-Total-Count"] = {"$ref": _HEADER_REF + "X-Total-Count"}
            headers["Link"] = {"$ref": _HEADER_REF + "Link"}
        elif route.params is Params.OPTIONS:
            headers["X-Total-Count"] = {"$ref": _HEADER_REF + "X-Total-Count"}
        ok["headers"] = headers
    responses: dict[str, Any] = {"200": ok}
    if tagged:
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)."}
    responses["400"] = _error_response("A bad or unknown parameter.")
    if auth_open is not None and route.segment not in auth_open:
        responses["403"] = _error_response(
            "The request lacks valid CMSWEB authentication headers (cms-auth*, signed by "
            "the front-end).")
    responses["404"] = _error_response("Unknown workflow or value." if route.item
                                       else "No such endpoint.")
    responses["406"] = _error_response("None of the media types it produces is acceptable.")
    if route.params is Params.PAGED:
        responses["413"] = _error_response("`limit` above the maximum.")
    responses["414"] = _error_response("Query string too long.")
    if route.params in (Params.PAGED, Params.FILTERS):
        responses["422"] = _error_response(
            "The filters took longer than the server's time budget; the work was stopped.")
    if route.segment == "healthz":
        responses["503"] = {"description": ("The store does not answer, or the data source "
                                            "has not finished its first load."),
                            "content": {JSON: {"schema": _ref("Health")}}}
    elif route.data:
        responses["503"] = {**_error_response(
            "The store does not answer, or the data source has not finished its first load "
            "(then with Retry-After)."),
            "headers": {"Retry-After": {"$ref": _HEADER_REF + "Retry-After"}}}
    else:
        responses["503"] = _error_response("The store does not answer.")
    return {"operationId": route.operation_id, "summary": route.summary,
            "parameters": params, "responses": responses}


def openapi_document(server_url: str, limits: dict[str, int],
                     routes: Sequence[Route], *,
                     auth_open: frozenset[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a cache server.

    :param server_url: where the API is mounted (the script name, ``/`` at the root).
    :param limits: ``default_limit``, ``max_limit``, ``max_stream_limit``.
    :param routes: the server's routing table.
    :param auth_open: with CMSWEB authentication, the first path segments open
        without it (the others answer 403 without valid headers); ``None``
        without authentication.
    """
    parameters: dict[str, Any] = {"format": _format_parameter(False),
                                  "format_json": _format_parameter(True)}
    parameters.update(_paging_parameters(limits))
    parameters.update(filter_parameters())
    schemas = _record_schemas()
    schemas.update(_envelopes(limits))
    paths: dict[str, Any] = {}
    for route in routes:
        paths[route.path] = {"get": _operation(route, auth_open)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wmstats cache server",
            "version": __version__,
            "description": (
                "Read-only REST API over the wmstats static-schema records (schema version "
                f"{SCHEMA_VERSION}). Every response is JSON by default; data endpoints also "
                "stream NDJSON (Accept: application/x-ndjson or application/ndjson, or "
                "?format=ndjson), gzip-compressed when Accept-Encoding allows. Errors are "
                "JSON {error, detail[, parameter]}. Unknown parameters are refused."),
            "x-schema-version": SCHEMA_VERSION,
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": parameters, "headers": _headers()},
    }
