"""How records are laid out as CouchDB documents, and the design document.

One document per workflow, ``_id`` = ``"wf:" + RequestName``:

* the :class:`~wmstats.schema.Workflow` fields, keyed (readable in Fauxton, and
  what ``_find`` selectors and the view read);
* ``"wmstats": 2`` marks the document as a workflow of this format (1: the
  status history was a list of objects under ``Transitions``; such documents,
  written by an older wmstats, are still read);
* ``"S"``: the workflow's :class:`~wmstats.schema.WorkflowSite` records as compact
  rows ``[Site, Agent, <counters in COUNTER_FIELDS order>]`` (:data:`SITE_COLUMNS`;
  the aggregate view sums them per value of the column an aggregate groups by);
* an attachment ``parts``: the other records (every part of
  :data:`~wmstats.schema.BUNDLE_PARTS` but the sites: tasks, task-sites,
  datasets, parentage, status history, chain arguments, agent reports) as
  zlib-compressed JSON rows; a document written before a part existed has
  none of it.
  Attachments are not read by view builds or ``_find`` scans, which keeps both
  cheap.

Agents live in one meta document (``wmstats-meta``) of the snapshot database,
with a ``generation`` counter that every write bumps.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

import ujson

from wmstats._deflate import compress
from wmstats.aggregates import AGGREGATES
from wmstats.backends.codec import field_names, record_from_values, record_values
from wmstats.schema import (
    BUNDLE_PARTS,
    COUNTER_FIELDS,
    Agent,
    RequestTransition,
    Workflow,
    WorkflowBundle,
    WorkflowSite,
)
from wmstats.serialize import json_bytes, structure, unstructure

__all__ = [
    "DOC_PREFIX",
    "DOC_END",
    "META_ID",
    "POINTER_ID",
    "DESIGN_ID",
    "VIEW",
    "VIEW_PATH",
    "VIEW_VERSION",
    "FIXED_DOCS",
    "FORMATS",
    "SITE_COLUMNS",
    "indexed_fields",
    "view_keys",
    "design_is_current",
    "doc_id",
    "workflow_doc",
    "workflow_from_doc",
    "bundle_from_doc",
    "design_doc",
    "meta_doc",
    "agents_from_meta",
    "agg_rows",
]

#: Prefix of workflow document ids; ``DOC_END`` is the first id after them all.
DOC_PREFIX: Final = "wf:"
DOC_END: Final = "wf;"
#: The snapshot's meta document (agents, write generation).
META_ID: Final = "wmstats-meta"
#: The pointer document in the base database: which snapshot database is current.
POINTER_ID: Final = "wmstats-snapshot"
DESIGN_ID: Final = "_design/wmstats"
VIEW: Final = "agg"
VIEW_PATH: Final = f"/{DESIGN_ID}/_view/{VIEW}"
#: Documents in a snapshot database that are not workflows (design + meta).
FIXED_DOCS: Final = 2
_FORMAT: Final = 2
#: The workflow document formats this code reads (the view and queries select them).
FORMATS: Final = (1, 2)
#: The WorkflowSite fields at the head of each ``S`` row (the counters follow): every
#: field but the counters and ``RequestName``.
SITE_COLUMNS: Final[tuple[str, ...]] = tuple(
    name for name in field_names(WorkflowSite)
    if name not in COUNTER_FIELDS and name != "RequestName")
#: Bundle attributes stored in the ``parts`` attachment, in order (the sites are
#: the ``S`` rows).  Format 1 had the first four.
_PARTS: Final[tuple[tuple[str, type[Any]], ...]] = tuple(
    (attr, cls) for attr, cls in BUNDLE_PARTS.items() if attr != "sites")


def doc_id(name: str) -> str:
    """The document id of a workflow."""
    return DOC_PREFIX + name


#: Where ``RequestName`` sits in each part record's values (left out when stored).
_NAME_AT: Final[dict[str, int]] = {
    attr: field_names(cls).index("RequestName") for attr, cls in _PARTS}


def _encode_parts(bundle: WorkflowBundle) -> bytes | None:
    parts = []
    for attr, _cls in _PARTS:
        skip = _NAME_AT[attr]
        parts.append([[v for i, v in enumerate(record_values(r)) if i != skip]
                      for r in getattr(bundle, attr)])
    if not any(parts):
        return None
    return compress(json_bytes(parts))


def _decode_parts(name: str, data: str) -> dict[str, tuple[Any, ...]]:
    parts = ujson.loads(zlib.decompress(base64.b64decode(data)))
    out: dict[str, tuple[Any, ...]] = {}
    for (attr, cls), rows in zip(_PARTS, parts):
        at = _NAME_AT[attr]
        out[attr] = tuple(record_from_values(cls, [*row[:at], name, *row[at:]]) for row in rows)
    return out


def workflow_doc(bundle: WorkflowBundle) -> dict[str, Any]:
    """The CouchDB document of one workflow (without ``_rev``)."""
    workflow = bundle.workflow
    doc: dict[str, Any] = {"_id": doc_id(workflow.RequestName), "wmstats": _FORMAT}
    doc.update(_workflow_fields(workflow))
    doc["S"] = [[*(getattr(s, c) for c in SITE_COLUMNS), *(getattr(s, c) for c in COUNTER_FIELDS)]
                for s in bundle.sites]
    parts = _encode_parts(bundle)
    if parts is not None:
        doc["_attachments"] = {"parts": {"content_type": "application/octet-stream",
                                         "data": base64.b64encode(parts).decode()}}
    return doc


def _workflow_fields(workflow: Workflow) -> dict[str, Any]:
    """The keyed fields of a workflow (as :func:`wmstats.serialize.unstructure`, faster)."""
    return dict(zip(field_names(Workflow), record_values(workflow)))


def workflow_from_doc(doc: Mapping[str, Any]) -> Workflow:
    """The :class:`Workflow` of a workflow document (written by :func:`workflow_doc`)."""
    workflow: Workflow = record_from_values(Workflow, [doc[name] for name in field_names(Workflow)])
    return workflow


def _format1_transitions(name: str, doc: Mapping[str, Any]) -> tuple[RequestTransition, ...]:
    """The status history of a format 1 document (keyed objects under ``Transitions``)."""
    return tuple(RequestTransition(RequestName=name, Index=i, Status=t["Status"],
                                   UpdateTime=t["UpdateTime"], DN=t["DN"])
                 for i, t in enumerate(doc.get("Transitions", ())))


def bundle_from_doc(doc: Mapping[str, Any]) -> WorkflowBundle:
    """The whole bundle of a workflow document read with ``attachments=true``."""
    workflow = workflow_from_doc(doc)
    name = workflow.RequestName
    width = len(SITE_COLUMNS)
    sites = tuple(WorkflowSite(RequestName=name, **dict(zip(SITE_COLUMNS, row)),
                               **dict(zip(COUNTER_FIELDS, row[width:])))
                  for row in doc.get("S", ()))
    attachment = doc.get("_attachments", {}).get("parts")
    parts = _decode_parts(name, attachment["data"]) if attachment else {}
    if doc.get("wmstats") == 1:
        parts["transitions"] = _format1_transitions(name, doc)
    return WorkflowBundle(workflow=workflow, sites=sites, **parts)


def meta_doc(agents: Iterable[Agent], generation: int) -> dict[str, Any]:
    """The meta document holding every agent (without ``_rev``)."""
    return {"_id": META_ID, "generation": generation,
            "agents": [unstructure(a) for a in sorted(agents, key=lambda a: a.AgentURL)]}


def agents_from_meta(doc: Mapping[str, Any] | None) -> list[Agent]:
    """The agents of a meta document, sorted by URL."""
    if doc is None:
        return []
    return [structure(a, Agent) for a in doc.get("agents", ())]


def view_keys() -> list[tuple[str, str, int]]:
    """What the view emits: ``(aggregate key, Workflow field, S column)`` per
    aggregate of :data:`wmstats.aggregates.AGGREGATES`; the column is ``-1`` for
    an aggregate of workflow-level counters, else the index in :data:`SITE_COLUMNS`
    of the WorkflowSite field it sums by."""
    return [(a.key, a.field, -1 if a.site_field is None else SITE_COLUMNS.index(a.site_field))
            for a in AGGREGATES]


def indexed_fields() -> dict[str, str]:
    """Workflow field -> an aggregate key whose view rows list the workflows holding
    each value of that field (what equality filters on the field read)."""
    return {field: by for by, field, _col in reversed(view_keys())}


def agg_rows(doc: Mapping[str, Any], by: str) -> list[tuple[str, str, list[int]]]:
    """``(value, status, [1, counters...])`` of one workflow document for ``by``.

    The Python twin of the view's map function (:func:`design_doc`): what the
    view emits as ``[by, value, status, name] -> [1, counters...]``.  A scalar
    field counts as a one-value list.
    """
    status = doc["RequestStatus"]
    _by, name, col = next(key for key in view_keys() if key[0] == by)
    field = doc[name]
    values = list(dict.fromkeys(field if isinstance(field, list) else [field]))
    if col >= 0:
        width = len(SITE_COLUMNS)
        out = []
        for value in values:
            acc = [1] + [0] * len(COUNTER_FIELDS)
            for row in doc.get("S", ()):
                if row[col] == value:
                    for i, n in enumerate(row[width:], 1):
                        acc[i] += n
            out.append((value, status, acc))
        return out
    own = [1, *(doc[c] for c in COUNTER_FIELDS)]
    return [(value, status, own) for value in values]


_MAP: Final = """function (doc) {
  if (%(formats)s.indexOf(doc.wmstats) < 0) return;
  var C = %(counters)s, N = C.length, W = %(width)d, name = doc.RequestName;
  var st = doc.RequestStatus;
  var KEYS = %(keys)s, own = [1], k;
  for (k = 0; k < N; k++) own.push(doc[C[k]]);
  function sites(col, value) {
    var acc = [1], r, n, row;
    for (n = 0; n < N; n++) acc.push(0);
    for (r = 0; r < doc.S.length; r++) {
      row = doc.S[r];
      if (row[col] === value) for (n = 0; n < N; n++) acc[n + 1] += row[n + W];
    }
    return acc;
  }
  function each(by, values, col) {
    var seen = [], i, x;
    if (!Array.isArray(values)) values = [values];
    for (i = 0; i < values.length; i++) {
      x = values[i];
      if (seen.indexOf(x) >= 0) continue;
      seen.push(x);
      emit([by, x, st, name], col < 0 ? own : sites(col, x));
    }
  }
  for (k = 0; k < KEYS.length; k++) each(KEYS[k][0], doc[KEYS[k][1]], KEYS[k][2]);
}"""


def _map_source(keys: list[tuple[str, str, int]]) -> str:
    return _MAP % {"formats": ujson.dumps(list(FORMATS)),
                   "counters": ujson.dumps(list(COUNTER_FIELDS)),
                   "width": len(SITE_COLUMNS), "keys": ujson.dumps(keys)}


#: Version of the design document's code (its ``wmstats_view``; absent means 1).
#: Bump it whenever the map function changes other than by the aggregate table (a
#: new counter, a new document layout); the aggregates it emits are recorded in
#: ``wmstats_keys`` (see :func:`design_is_current`).  A
#: :class:`~wmstats_couchdb.store.CouchStore` rewrites an older design document
#: found in an existing snapshot database.  2: ``type`` and ``team`` added.  3:
#: the aggregates come from the aggregate table and are recorded.  4: documents of
#: format 2 (and 1).
VIEW_VERSION: Final = 4


def design_doc() -> dict[str, Any]:
    """The design document of a snapshot database: one view, ``agg``.

    Keys ``[by, value, RequestStatus, RequestName]`` (``by`` the key of one of
    :data:`wmstats.aggregates.AGGREGATES`), values ``[1, counters...]``, reduced
    with the built-in ``_sum``: ``group_level=2`` counts workflows per value,
    ``group_level=3`` adds the counters per status, ``reduce=false`` lists the
    workflows holding a value.  Raw collation: keys order by code point, like
    Python strings.  ``wmstats_view`` holds :data:`VIEW_VERSION`, ``wmstats_keys``
    the :func:`view_keys`.
    """
    keys = view_keys()
    return {"_id": DESIGN_ID, "language": "javascript", "options": {"collation": "raw"},
            "wmstats_view": VIEW_VERSION, "wmstats_keys": [list(k) for k in keys],
            "views": {VIEW: {"map": _map_source(keys), "reduce": "_sum"}}}


def design_is_current(doc: Mapping[str, Any] | None) -> bool:
    """Whether a stored design document serves this code: a newer version, or this
    version emitting every aggregate of the table (an older document, or one
    missing an aggregate, is to be rewritten with :func:`design_doc`)."""
    if doc is None:
        return False
    version = int(doc.get("wmstats_view", 1))
    if version != VIEW_VERSION:
        return version > VIEW_VERSION
    stored = {tuple(k) for k in doc.get("wmstats_keys", ())}
    return all(tuple(k) in stored for k in view_keys())
