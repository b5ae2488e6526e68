"""The positional encoding of bundles (:mod:`wmstats.backends.codec`) with and
without a dictionary."""

from __future__ import annotations

import importlib.util
import json
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmstats.backends.codec import (
    LineFields,
    PartsDictionary,
    decode_bundle,
    decode_parts,
    encode_line,
    encode_parts,
    field_names,
)
from wmstats.mock import MockGenerator
from wmstats.schema import Workflow, WorkflowBundle

DICTIONARY_KINDS = ("zlib", "zstd") if importlib.util.find_spec("zstandard") else ("zlib",)



@pytest.mark.parametrize("kind", DICTIONARY_KINDS)
def test_parts_dictionary_round_trip_and_needs_its_dictionary(kind: str) -> None:
    """Bundle blobs made with a :class:`PartsDictionary` read back to their parts
    (all, or only some), an empty bundle stays the shared plain blob, and a
    dictionary blob does not read without its dictionary."""
    bundles = list(MockGenerator.production_sized(4, now=1_700_000_000).bundles(30))
    dictionary = PartsDictionary.train(bundles[:20], kind=kind)
    assert dictionary.kind == kind
    for bundle in bundles:
        blob = encode_parts(bundle, dictionary=dictionary)
        assert blob[:1] in (b"\x01", b"\x02")
        assert decode_bundle(bundle.workflow, blob, None, dictionary) == bundle
        name = bundle.workflow.RequestName
        assert decode_parts(name, blob, ["sites"], dictionary) == {"sites": bundle.sites}
        with pytest.raises(ValueError, match="without it"):
            decode_parts(name, blob)
    empty = WorkflowBundle(workflow=Workflow(RequestName="x"))
    assert encode_parts(empty, dictionary=dictionary) == encode_parts(empty)


# --------------------------------------------------------------------------- LineFields

_HOSTILE = st.lists(st.sampled_from(
    ['a', '/', '"', '\\', ',', ':', '[', ']', '{', '}', ' ', 'é', '\u2028', '\x00', 'Ⅱ',
     ',"MCPileup":', ',"OutputModulesLFNBases":', '"]', '\\"']), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(outputs=st.lists(_HOSTILE, max_size=4), bases=st.lists(_HOSTILE, max_size=4),
       name=_HOSTILE)
def test_line_fields_read_the_values_of_any_line(outputs: list[str], bases: list[str],
                                                 name: str) -> None:
    """The values between a key and the next one are the field's, whatever the strings
    hold (quotes, backslashes, other keys' text, brackets)."""
    workflow = Workflow(RequestName=name or "w", OutputDatasets=tuple(outputs),
                        OutputModulesLFNBases=tuple(bases), PrepID=",\"OutputDatasets\":[")
    read = LineFields(("OutputDatasets", "OutputModulesLFNBases"))
    assert read(encode_line(workflow)) == (tuple(outputs), tuple(bases))


def test_line_fields_read_the_first_and_the_last_field_and_any_line() -> None:
    names = field_names(Workflow)
    tuples = [n for n in names if typing.get_origin(typing.get_type_hints(Workflow)[n])
              is tuple]
    first, last = tuples[0], tuples[-1]
    workflow = Workflow(RequestName="w", **{first: ("x}", "]"), last: ('"}', "}")})
    assert LineFields((last, first))(encode_line(workflow)) == (('"}', "}"), ("x}", "]"))
    # Text of another encoder (spaces after the separators, the keys in another
    # order): decoded whole.
    other = json.dumps({last: ["b"], first: ["a"]}, indent=1).encode()
    assert LineFields((first, last))(other) == (("a",), ("b",))
    with pytest.raises(ValueError, match="not tuple fields"):
        LineFields(("RequestName",))
