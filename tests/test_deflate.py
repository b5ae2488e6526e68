"""wmstats._deflate: the blobs' compression, with ISA-L and without."""

from __future__ import annotations

import importlib
import sys
import zlib

import pytest

from wmstats import _deflate

DATA = [b"", b"[]", b'[["a",1]]' * 500, bytes(range(256)) * 64]


@pytest.mark.parametrize("data", DATA)
def test_blobs_are_zlib_streams_that_zlib_reads(data: bytes) -> None:
    blob = _deflate.compress(data)
    # The stores tell compressed blobs from JSON by this first byte.
    assert blob[:1] == b"\x78"
    assert zlib.decompress(blob) == data
    if len(data) > 1000:
        assert len(blob) < len(data) // 3


def test_isal_is_used_when_installed_and_zlib_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    isal = importlib.import_module("isal.isal_zlib")  # the test extra installs it
    data = DATA[2]
    assert _deflate.compress(data) == isal.compress(data, 1)
    monkeypatch.setitem(sys.modules, "isal", None)  # import isal -> ImportError
    fallback = _deflate._fastest()
    assert fallback(data) == zlib.compress(data, 1)
