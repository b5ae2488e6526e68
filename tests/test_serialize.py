"""One cattrs converter, ujson text: round trips for every record type."""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats import serialize
from wmstats.convert import convert_documents
from wmstats.schema import RECORD_TYPES, RequestTransition, Workflow, WorkflowSite
from wmstats.serialize import (
    StructureError,
    converter,
    dumps,
    loads,
    make_converter,
    structure,
    to_ndjson,
    unstructure,
)

CAMEL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")
RECORD_PARAMS = [pytest.param(cls, id=name) for name, cls in RECORD_TYPES.items()]


def field_values(tp: Any) -> st.SearchStrategy[Any]:
    """Any value of a record field's type (a new type in the schema must be added here)."""
    if tp is str:
        return st.text(max_size=12)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers()
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if typing.get_origin(tp) is tuple:
        item, ellipsis = typing.get_args(tp)
        assert ellipsis is Ellipsis, tp
        return st.lists(field_values(item), max_size=3).map(tuple)
    if attrs.has(tp):
        return records(tp)
    raise TypeError(f"no strategy for field type {tp!r}")


def records(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Records of ``cls`` with every field drawn, not only the required ones."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: field_values(hints[f.name]) for f in attrs.fields(cls)})


def anchor_records(wmcore_files: list[str], wmcore_docs: Any) -> Iterator[Any]:
    """Every record converted from the anchor files, each file on its own."""
    for name in wmcore_files:
        result = convert_documents(wmcore_docs(name))
        for bundle in result.bundles:
            yield from bundle.records()
        yield from result.agents


def no_tuples(value: Any) -> bool:
    """True when a value holds only JSON types (dict, list, str, int, float, bool, None)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and no_tuples(v) for k, v in value.items())
    if isinstance(value, list):
        return all(no_tuples(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("cls", RECORD_PARAMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_unstructure_structure_round_trip(cls: type[Any], data: st.DataObject) -> None:
    record = data.draw(records(cls))
    plain = unstructure(record)
    assert structure(plain, cls) == record
    assert no_tuples(plain)
    # Keys are exactly the attrs field names, all CamelCase.
    assert list(plain) == [f.name for f in attrs.fields(cls)]
    assert all(CAMEL_CASE.fullmatch(key) for key in plain)


@pytest.mark.parametrize("cls", RECORD_PARAMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_dumps_loads_round_trip(cls: type[Any], data: st.DataObject) -> None:
    record = data.draw(records(cls))
    text = dumps(record)
    assert isinstance(text, str)
    assert loads(text, cls) == record
    assert loads(text.encode("utf-8"), cls) == record
    # Plain JSON: any JSON reader gets the unstructured dict, tuples as arrays.
    assert json.loads(text) == unstructure(record)


def tuple_fields(cls: type[Any]) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in attrs.fields(cls) if typing.get_origin(hints[f.name]) is tuple]


WITH_TUPLES = [name for name, cls in RECORD_TYPES.items() if tuple_fields(cls)]


def test_record_types_with_tuples() -> None:
    assert set(WITH_TUPLES) >= {"Workflow", "ChainParentage", "Agent"}


@pytest.mark.parametrize("name", list(RECORD_TYPES))
def test_every_record_is_flat(name: str) -> None:
    # Every field holds a scalar or a tuple of scalars: no record inside a record
    # (the status history is its own record type, RequestTransition).
    scalars = (str, int, float, bool)
    for field, hint in typing.get_type_hints(RECORD_TYPES[name]).items():
        if typing.get_origin(hint) is tuple:
            item, ellipsis = typing.get_args(hint)
            assert item in scalars and ellipsis is Ellipsis, (name, field)
        else:
            assert hint in scalars, (name, field)


@pytest.mark.parametrize("name", WITH_TUPLES)
def test_tuples_become_json_arrays(name: str) -> None:
    cls = RECORD_TYPES[name]
    values: dict[str, Any] = {}
    for f in attrs.fields(cls):
        if f.default is attrs.NOTHING:
            values[f.name] = "key"
        elif f.name in tuple_fields(cls):
            values[f.name] = ("a", "b")
    record = cls(**values)
    parsed = json.loads(dumps(record))
    plain = unstructure(record)
    for field_name in tuple_fields(cls):
        assert isinstance(parsed[field_name], list) and parsed[field_name], field_name
        assert isinstance(plain[field_name], list), field_name
    assert structure(plain, cls) == record
    if cls is Workflow:
        assert parsed["Teams"] == ["a", "b"]
        assert type(structure(plain, cls).Teams) is tuple


def test_converted_anchor_records_round_trip(wmcore_files: list[str], wmcore_docs: Any) -> None:
    records_ = list(anchor_records(wmcore_files, wmcore_docs))
    seen = {type(r).__name__ for r in records_}
    assert seen >= {"Workflow", "WorkflowSite", "WorkflowTask", "TaskSite", "DatasetStats",
                    "ChainParentage"}
    for record in records_:
        cls = type(record)
        assert structure(unstructure(record), cls) == record
        text = dumps(record)
        assert loads(text, cls) == record
        assert json.loads(text) == unstructure(record)
        assert set(json.loads(text)) == {f.name for f in attrs.fields(cls)}


def test_dumps_is_compact_and_keeps_slashes_and_unicode() -> None:
    record = WorkflowSite(RequestName="wf_é", Site="T2_CH_CERN", Agent="vocms0250.cern.ch",
                          Success=3)
    text = dumps(record)
    assert "\n" not in text and ": " not in text and ", " not in text
    assert '"RequestName":"wf_é"' in text
    dataset = "/RelValProdMinBias/DMWM_Test-v11/GEN-SIM"
    assert dataset in dumps(attrs.evolve(record, Site=dataset))  # "/" not escaped


def test_ndjson(wmcore_files: list[str], wmcore_docs: Any) -> None:
    records_ = list(anchor_records(wmcore_files, wmcore_docs))
    records_.append(WorkflowSite(RequestName="line\nbreak\r", Site="", Agent="a"))
    lines = list(to_ndjson(records_))
    assert len(lines) == len(records_)
    for line, record in zip(lines, records_):
        assert line == dumps(record) + "\n"
        assert "\n" not in line[:-1] and "\r" not in line
        assert loads(line, type(record)) == record
    assert list(to_ndjson([])) == []


# --------------------------------------------------------------------------- the converter


def test_converter_is_built_once() -> None:
    first = converter()
    assert converter() is first
    assert isinstance(first, cattrs.Converter)
    fresh = make_converter()
    assert fresh is not first and make_converter() is not fresh
    record = Workflow(RequestName="wf", Teams=("t1",), Success=2)
    assert fresh.unstructure(record) == first.unstructure(record) == unstructure(record)


# --------------------------------------------------------------------------- bad data


GOOD_WORKFLOW = {"RequestName": "wf", "Teams": ["t1"], "Success": 3, "StatusTime": 1}


@pytest.mark.parametrize(("data", "cls", "where"), [
    pytest.param({}, Workflow, "$.RequestName", id="missing-required-field"),
    pytest.param({"RequestName": "wf", "Site": "T1_US_FNAL"}, WorkflowSite, "$.Agent",
                 id="missing-key-field"),
    pytest.param({**GOOD_WORKFLOW, "Success": "lots"}, Workflow, "$.Success",
                 id="not-a-number"),
    pytest.param({**GOOD_WORKFLOW, "Teams": 5}, Workflow, "$.Teams", id="number-for-list"),
    pytest.param({"RequestName": "wf", "Index": "first"}, RequestTransition, "$.Index",
                 id="string-for-int-key"),
    pytest.param({"RequestName": "wf", "Index": 0, "UpdateTime": "soon"}, RequestTransition,
                 "$.UpdateTime", id="string-for-time"),
    pytest.param({"RequestName": "wf", "Status": "new"}, RequestTransition, "$.Index",
                 id="missing-index"),
    pytest.param({**GOOD_WORKFLOW, "RequestDate": [2018, 12, 3]}, Workflow, "$.RequestDate",
                 id="list-for-int"),
    pytest.param([], Workflow, None, id="list-for-record"),
])
def test_structure_bad_data_raises(data: Any, cls: type[Any], where: str | None) -> None:
    assert structure(GOOD_WORKFLOW, Workflow).Success == 3  # the good base is good
    with pytest.raises(StructureError) as info:
        structure(data, cls)
    if where is not None:
        # cattrs can say where: the error names the field's path.
        messages = cattrs.transform_error(info.value)
        assert any(m.endswith(f"@ {where}") for m in messages), messages
    with pytest.raises(StructureError):
        loads(json.dumps(data), cls)


def test_structure_error_is_a_cattrs_validation_error() -> None:
    assert StructureError is serialize.StructureError
    assert issubclass(StructureError, Exception)
    with pytest.raises(cattrs.BaseValidationError):
        structure({"RequestName": "wf", "Success": "x"}, Workflow)


def test_loads_rejects_text_that_is_not_json() -> None:
    with pytest.raises(ValueError):
        loads("{not json", Workflow)


@pytest.mark.parametrize("data", [
    pytest.param({"RequestName": "wf", "Teams": "t1"}, id="string-for-list-splits-chars"),
    pytest.param({"RequestName": "wf", "HasRequest": "no"}, id="string-for-bool-is-true"),
    pytest.param({"RequestName": 5}, id="number-for-string"),
    pytest.param({"RequestName": None}, id="null-for-string"),
])
def test_structure_lax_values_should_raise(data: Any) -> None:
    with pytest.raises(StructureError):
        structure(data, Workflow)


def test_structure_null_document_should_raise_structure_error() -> None:
    with pytest.raises(StructureError):
        loads("null", Workflow)
