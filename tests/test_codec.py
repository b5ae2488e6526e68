"""The positional encoding of bundles (:mod:`wmstats.backends.codec`) with and
without a dictionary."""

from __future__ import annotations

import importlib.util

import pytest

from wmstats.backends.codec import (
    PartsDictionary,
    decode_bundle,
    decode_parts,
    encode_parts,
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
