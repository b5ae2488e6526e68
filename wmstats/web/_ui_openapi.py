"""The OpenAPI 3.1 description of the UI server's ``/api/*`` endpoints, derived
from the code.

Endpoints come from :data:`wmstats.web._ui_model.API_ROUTES` (which the
dispatcher reads too), their parameters from the same module's whitelist
(:data:`~wmstats.web._ui_model.FILTERS`, :data:`~wmstats.web._ui_model.SORTS`,
:data:`~wmstats.web._ui_model.GROUPS` and the limits :func:`parse_view` and
:func:`parse_names` check), the error document from
:func:`wmstats.web._openapi.error_schema`: nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from wmstats._version import __version__
from wmstats.web._negotiate import JSON
from wmstats.web._openapi import error_schema
from wmstats.web._ui_model import (
    ALERT_CHOICES,
    ALERT_FILTERS,
    ALERTS_SHOWN,
    CONTROL_CLASS,
    DEFAULT_LIMIT,
    DRILL_TEXT,
    EXIT_CODE,
    FILTERS,
    JOB_FILTERS,
    MAX_DRILL_VALUES,
    TEXT_FILTERS,
    GROUPS,
    JOB_STATES,
    MAX_IDX,
    MAX_LIMIT,
    MAX_NAMES,
    MAX_TEXT,
    MAX_VALUES,
    SORTS,
    ApiParams,
    ApiRoute,
)

__all__ = ["ui_openapi_document"]

_REF: Final = "#/components/schemas/"
#: A filter value or name search: at most MAX_TEXT characters, no control character.
_TEXT: Final[dict[str, Any]] = {"type": "string",
                                "pattern": f"^[^{CONTROL_CLASS}]{{0,{MAX_TEXT}}}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), **extra}


def _view_parameters(paged: bool) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "query", "required": False, "style": "form", "explode": True,
         "description": f"Filter on {field}: exact values, repeated (OR); empty ones ignored.",
         "schema": {"type": "array", "items": _TEXT, "maxItems": MAX_VALUES}}
        for name, field in FILTERS.items()]
    params.append({"name": "q", "in": "query", "required": False,
                   "description": ("Name search: `*`/`?` wildcards, plain text matches "
                                   "anywhere in the name (surrounding spaces ignored)."),
                   "schema": _TEXT})
    params += [{"name": name, "in": "query", "required": False,
                "description": (f"{label} search on {field}: like `q` (empty: ignored)."),
                "schema": _TEXT} for name, (field, label) in TEXT_FILTERS.items()]
    if paged:
        keys = [*SORTS, *(f"-{key}" for key in SORTS)]
        params += [
            {"name": "sort", "in": "query", "required": False,
             "description": "Sort key, `-` prefixed for descending.",
             "schema": {"type": "string", "enum": keys}},
            {"name": "idx", "in": "query", "required": False,
             "description": "Offset of the first row.",
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_IDX, "default": 0}},
            {"name": "limit", "in": "query", "required": False, "description": "Rows per page.",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT}},
        ]
    return params


def _parameters(route: ApiRoute) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if route.item is not None:
        schema: dict[str, Any] = ({"type": "string", "enum": list(GROUPS)}
                                  if route.name == "groups" else
                                  {"type": "string", "minLength": 1})
        params.append({"name": route.item, "in": "path", "required": True,
                       "description": f"The {route.item}.", "schema": schema})
    if route.params is ApiParams.NAMES:
        params.append({"name": "name", "in": "query", "required": False, "style": "form",
                       "explode": True, "description": "Workflow names (empty ones ignored).",
                       "schema": {"type": "array", "items": {"type": "string"},
                                  "maxItems": MAX_NAMES}})
    elif route.params is ApiParams.JOBS:
        params += _drill_parameters(JOB_FILTERS)
    elif route.params is ApiParams.ALERTS:
        params += _drill_parameters(ALERT_FILTERS)
        params.append({"name": "limit", "in": "query", "required": False,
                       "description": "0: the counts alone (the tab's badge).",
                       "schema": {"type": "integer", "enum": [0, ALERTS_SHOWN],
                                  "default": ALERTS_SHOWN}})
    elif route.params is not ApiParams.NONE:
        params += _view_parameters(route.params is ApiParams.PAGED)
    return params


def _drill_parameters(names: Sequence[str]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in names:
        item: dict[str, Any] = (
            {"type": "string", "enum": ["", *ALERT_CHOICES[name]]} if name in ALERT_CHOICES
            else {"type": "string", "pattern": f"^{EXIT_CODE}$"} if name == "exitcode"
            else {"type": "string", "pattern": f"^{DRILL_TEXT}$"})
        params.append({"name": name, "in": "query", "required": False, "style": "form",
                       "explode": True,
                       "description": (f"Filter on {name}, repeated (OR); `*` and `?` are "
                                       "wildcards where the cache server allows them; empty "
                                       "ones ignored."),
                       "schema": {"type": "array", "items": item,
                                  "maxItems": MAX_DRILL_VALUES}})
    return params


def _schemas() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    ratio = _nullable({"type": "number", "minimum": 0, "maximum": 1})
    jobs = _object({name: count for name in (*JOB_STATES, "created")},
                   additionalProperties=False)
    figures = {"jobs": _ref("Jobs"), "jobProgress": ratio, "failureRate": ratio}
    # [value, workflows] pairs
    statuses = {"type": "array", "items": {
        "type": "array", "items": {"oneOf": [{"type": "string"}, count]},
        "minItems": 2, "maxItems": 2}}
    # [exit code, jobs] pairs
    pairs = {"type": "array", "items": {
        "type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}}
    row = _object({"name": {"type": "string"}, "status": {"type": "string"},
                   "type": {"type": "string"}, "campaign": {"type": "string"},
                   "teams": {"type": "array", "items": {"type": "string"}},
                   "agents": count, "priority": {"type": "integer"},
                   "statusTime": {"type": "integer"}, "agentUpdate": {"type": "integer"},
                   "estimated": {"type": "integer"}, **figures},
                  additionalProperties=False)
    item = _object({"value": {"type": "string"}, "workflows": count,
                    "statuses": statuses, **figures})
    merged = _object({"value": {"type": "string"},
                      "agents": {"type": "array", "items": {"type": "string"}}, **figures})
    return {
        "Error": error_schema(),
        "Jobs": jobs,
        "Row": row,
        "GroupItem": item,
        "RowsPage": _object({"total": count, "idx": count, "limit": count,
                             "snapshot": {"type": "string"},
                             "rows": {"type": "array", "items": _ref("Row")}},
                            additionalProperties=False),
        "Summary": _object({"snapshot": {"type": "string"}, "workflows": count,
                            "jobs": _ref("Jobs"), "statuses": statuses},
                           additionalProperties=False),
        "FilterValues": _object({
            "snapshot": {"type": "string"}, "workflows": count,
            "filters": _object({name: statuses for name in FILTERS},
                               additionalProperties=False)}, additionalProperties=False),
        "Groups": _object({"by": {"type": "string", "enum": list(GROUPS)},
                           "items": {"type": "array", "items": _ref("GroupItem")}},
                          additionalProperties=False),
        "WorkflowDetail": _object({
            "snapshot": {"type": "string"}, "name": {"type": "string"},
            "meta": {"type": "object"}, **figures, "eventProgress": ratio,
            "transitions": {"type": "array", "items": {"type": "object"}},
            "tasks": {"type": "array", "items": merged},
            "sites": {"type": "array", "items": merged},
            "datasets": {"type": "array", "items": _object({
                "dataset": {"type": "string"}, "events": {"type": "integer"},
                "size": {"type": "integer"}, "lumis": {"type": "integer"},
                "progress": ratio}, additionalProperties=False)}},
            additionalProperties=False),
        "EventProgress": _object({
            "snapshot": {"type": "string"},
            "progress": {"type": "object", "additionalProperties": ratio}},
            additionalProperties=False),
        "Agents": _object({"items": {"type": "array", "items": {
            "allOf": [_ref("GroupItem")],
            "properties": {"agent": _nullable({"type": "object"})},
            "required": ["agent"]}}}, additionalProperties=False),
        "JobView": _object({
            "name": {"type": "string"}, "snapshot": {"type": "string"}, "total": count,
            "tasks": {"type": "array", "items": _object({
                "task": {"type": "string"}, "short": {"type": "string"}, "jobs": count,
                "groups": {"type": "array", "items": _object({
                    "state": {"type": "string"}, "exitCode": {"type": "integer"},
                    "site": {"type": "string"}, "jobs": count,
                    "agents": {"type": "array", "items": {"type": "string"}},
                    "samples": {"type": "array", "items": {"type": "object"}}},
                    additionalProperties=False)}}, additionalProperties=False)},
            "states": statuses, "exitCodes": pairs, "sites": statuses},
            additionalProperties=False),
        "AlertView": _object({
            "total": count, "shown": count, "truncated": {"type": "boolean"},
            "counts": {"type": "object", "additionalProperties": count}, "errors": count,
            "now": {"type": "integer"},
            "alerts": {"type": "array", "items": _object({
                **{name: {"type": "string"} for name in (
                    "kind", "severity", "workflow", "agent", "status", "message")},
                "agents": {"type": "array", "items": {"type": "string"}},
                "sites": {"type": "array", "items": {"type": "string"}},
                **{name: {"type": "integer"} for name in (
                    "since", "failed", "success", "running", "pending")}},
                additionalProperties=False)}},
            additionalProperties=False),
        "Status": _object({
            "ready": {"type": "boolean"}, "stale": {"type": "boolean"},
            "staleAfter": {"type": "number", "minimum": 0},
            "snapshot": _nullable({"type": "string"}),
            "snapshotAge": _nullable({"type": "number"}),
            "workflows": _nullable({"type": "integer"}),
            "agents": _nullable({"type": "integer"}),
            "backend": _nullable({"type": "string"}),
            "version": {"type": "string"}, "detail": _nullable({"type": "string"})},
            additionalProperties=False),
    }


#: The schema of each endpoint's answer.
_RETURNS: Final[dict[str, str]] = {
    "workflows": "RowsPage", "summary": "Summary", "filters": "FilterValues",
    "groups": "Groups", "workflow": "WorkflowDetail", "events": "EventProgress",
    "agents": "Agents", "jobs": "JobView", "alerts": "AlertView", "status": "Status",
}


def _error(text: str) -> dict[str, Any]:
    return {"description": text, "content": {JSON: {"schema": _ref("Error")}}}


def _operation(route: ApiRoute, auth: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": route.summary,
                "content": {JSON: {"schema": _ref(_RETURNS[route.name])}}},
        "400": _error("A bad or unknown parameter (or one the cache server refused)."),
    }
    if auth:
        responses["403"] = _error("The request lacks valid CMSWEB authentication headers.")
    responses["404"] = _error("No such endpoint, or an unknown workflow.")
    responses["414"] = _error("Query string too long.")
    if route.params in (ApiParams.PAGED, ApiParams.VIEW):
        responses["422"] = _error("The cache server's time budget ran out on the filters.")
    responses["503"] = _error("The cache server does not answer (or gave an unusable answer).")
    return {"operationId": "api_" + route.name, "summary": route.summary,
            "parameters": _parameters(route), "responses": responses}


def ui_openapi_document(server_url: str, routes: Sequence[ApiRoute], *,
                        auth_open: frozenset[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a UI server's JSON endpoints.

    :param server_url: where the app is mounted (the script name, ``/`` at the root).
    :param routes: the ``/api`` endpoints (:data:`~wmstats.web._ui_model.API_ROUTES`).
    :param auth_open: with CMSWEB authentication, the first path segments open
        without it; ``None`` without authentication.
    """
    auth = auth_open is not None and "api" not in auth_open
    paths: dict[str, Any] = {route.path: {"get": _operation(route, auth)} for route in routes}
    paths["/openapi.json"] = {"get": {
        "operationId": "openapi", "summary": "This document.", "parameters": [],
        "responses": {"200": {"description": "This document.",
                              "content": {JSON: {"schema": {"type": "object"}}}},
                      "400": _error("A parameter (this path takes none)."),
                      **({"403": _error("No valid CMSWEB authentication headers.")}
                         if auth_open is not None and "openapi.json" not in auth_open
                         else {}),
                      "414": _error("Query string too long.")}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "wmstats UI server", "version": __version__,
                 "description": (
                     "The JSON endpoints the monitoring page calls. Each reads the cache "
                     "server; every parameter is checked by whitelist (unknown ones are "
                     "refused). Errors are JSON {error, detail[, parameter]}.")},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
