"""The JSON Schema and the Markdown reference derived from the record classes."""

from __future__ import annotations

from pathlib import Path

import attrs
import jsonschema

from wmstats.jsonschema import DROPPED_KEYS, json_schema, render_markdown
from wmstats.schema import COUNTER_FIELDS, RECORD_TYPES, SCHEMA_VERSION, Workflow, record_key
from wmstats.serialize import unstructure

DOCS = Path(__file__).parent.parent / "docs" / "schema.md"


def test_schema_is_valid_draft_2020_12_and_covers_every_field() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-schema-version"] == SCHEMA_VERSION
    for name, cls in RECORD_TYPES.items():
        definition = schema["$defs"][name]
        assert list(definition["properties"]) == [f.name for f in attrs.fields(cls)]
        assert definition["x-key"] == list(record_key(cls))
        for field, prop in definition["properties"].items():
            assert prop["description"].strip(), (name, field)
            assert "type" in prop or "$ref" in prop


def test_counter_sources_name_the_dynamic_key_path_per_grain() -> None:
    defs = json_schema()["$defs"]
    assert defs["Workflow"]["properties"]["SubmittedRunning"]["x-source"] == (
        "agent_request.status.submitted.running")
    assert defs["WorkflowSite"]["properties"]["CooloffJob"]["x-source"] == (
        "agent_request.sites.<site>.cooloff.job")
    assert defs["TaskSite"]["properties"]["Success"]["x-source"] == (
        "agent_request.tasks.<task>.sites.<site>.success")
    for name in ("Workflow", "WorkflowSite", "WorkflowTask", "TaskSite"):
        props = defs[name]["properties"]
        assert all("x-source" in props[f] for f in COUNTER_FIELDS)


def test_records_validate_against_their_definition() -> None:
    schema = json_schema()
    record = Workflow(RequestName="wf", Campaigns=("A", "B"), SubmittedRunning=3)
    validator = jsonschema.Draft202012Validator(
        {**schema, "oneOf": None, "$ref": "#/$defs/Workflow"} | {"oneOf": [
            {"$ref": "#/$defs/Workflow"}]})
    validator.validate(unstructure(record))
    bad = unstructure(record) | {"SubmittedRunning": "three"}
    assert list(validator.iter_errors(bad))
    extra = unstructure(record) | {"Surprise": 1}
    assert list(validator.iter_errors(extra))


def test_docs_schema_reference_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/schema.md is stale: run 'wmstats schema --markdown -o docs/schema.md'")


def test_markdown_lists_every_record_field_and_dropped_key() -> None:
    text = render_markdown()
    for name, cls in RECORD_TYPES.items():
        assert f"## {name}" in text
        for field in attrs.fields(cls):
            assert f"| `{field.name}` |" in text
    for key in DROPPED_KEYS:
        assert key.replace("|", "\\|") in text
