"""Compression of many small blobs that share most of their text, with one
dictionary made from a few of them (:class:`BlobDictionary`).

A store that keeps one blob per workflow (the memory store's records and job
records) holds blobs that repeat each other's keys, names and paths, which one blob
compressed alone cannot use.  A dictionary learnt from the first few blobs lets
each blob refer to that shared text: zstd (``zstandard``, when installed) with a
trained dictionary, else zlib with a preset one (its window).

A compressed blob starts with a byte that says which (1: zlib, 2: zstd), never
the first byte of JSON text (``[``, ``{``) or of a zlib stream (``0x78``), so a
reader tells them apart from plain or zlib blobs (:meth:`BlobDictionary.made`).
"""

from __future__ import annotations

import importlib
import threading
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar, Final, TypeVar

__all__ = ["BlobDictionary"]

_D = TypeVar("_D", bound="BlobDictionary")

#: First byte of a blob compressed with a :class:`BlobDictionary`: zlib, zstd.
_DICT_ZLIB: Final = 1
_DICT_ZSTD: Final = 2
_MARKS: Final = (bytes((_DICT_ZLIB,)), bytes((_DICT_ZSTD,)))

def _zstandard() -> Any:
    """The ``zstandard`` module, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


class BlobDictionary:
    """A compression dictionary for many blobs alike (one per store and kind of blob).

    Made by :meth:`from_samples` from a few blobs' text; then :meth:`compress` and
    :meth:`decompress` (safe from several threads at once).  Subclasses set the
    levels (a blob kind read often and written rarely affords a higher one).

    :param kind: ``"zstd"`` or ``"zlib"``.
    :param content: the dictionary (a zstd dictionary, or zlib's preset window).
    """

    #: zstd level of :meth:`compress`.
    ZSTD_LEVEL: ClassVar[int] = 3
    #: zlib's level 6 is the best it does at a usable speed (levels 7-9 gain 1 %).
    ZLIB_LEVEL: ClassVar[int] = 6
    #: bytes of a trained zstd dictionary
    ZSTD_SIZE: ClassVar[int] = 64 * 1024
    #: zlib's preset dictionary is its window: at most 32 KiB count.
    ZLIB_SIZE: ClassVar[int] = 32 * 1024

    def __init__(self, kind: str, content: bytes) -> None:
        if kind not in ("zstd", "zlib"):
            raise ValueError(f"unknown dictionary kind {kind!r}")
        self.kind = kind
        self.content = content
        self._local = threading.local()
        self._zstd: Any = None
        if kind == "zstd":
            module = _zstandard()
            if module is None:
                raise ValueError("a zstd dictionary needs the zstandard package")
            self._zstd = module.ZstdCompressionDict(content)
            self._zstd.precompute_compress(level=self.ZSTD_LEVEL)

    @classmethod
    def from_samples(cls: type[_D], samples: Sequence[bytes], *,
                     kind: str | None = None) -> _D:
        """A dictionary for blobs like ``samples`` (the text before compression;
        zstd when ``zstandard`` is installed, unless ``kind`` says otherwise)."""
        packed = [sample for sample in samples if sample]
        if kind is None:
            kind = "zstd" if _zstandard() is not None else "zlib"
        if kind == "zstd":
            module = _zstandard()
            content = b""
            if module is not None and len(packed) >= 8:
                try:
                    content = module.train_dictionary(cls.ZSTD_SIZE, packed).as_bytes()
                except module.ZstdError:  # too little to learn from
                    content = b""
            if content:
                return cls("zstd", content)
            kind = "zlib"
        # zlib: the beginnings of several samples, the part each blob starts with
        # and zlib's window still holds when it reads the rest.
        share = cls.ZLIB_SIZE // max(1, min(len(packed), 8))
        return cls(kind, b"".join(p[:share] for p in packed[:8])[-cls.ZLIB_SIZE:])

    @staticmethod
    def made(blob: bytes) -> bool:
        """Whether ``blob`` was made by :meth:`compress` (of some dictionary)."""
        return blob[:1] in _MARKS

    def _codec(self) -> tuple[Any, Any]:
        local = self._local
        made: tuple[Any, Any] | None = getattr(local, "codec", None)
        if made is None:
            module = _zstandard()
            made = local.codec = (
                module.ZstdCompressor(level=self.ZSTD_LEVEL, dict_data=self._zstd),
                module.ZstdDecompressor(dict_data=self._zstd))
        return made

    def compress(self, data: bytes) -> bytes:
        """``data`` as one blob (its first byte says how it was compressed)."""
        if self.kind == "zstd":
            packed: bytes = self._codec()[0].compress(data)
            return bytes((_DICT_ZSTD,)) + packed
        packer = zlib.compressobj(self.ZLIB_LEVEL, zdict=self.content)
        return bytes((_DICT_ZLIB,)) + packer.compress(data) + packer.flush()

    def decompress(self, blob: bytes) -> bytes:
        """The text of a blob that :meth:`compress` made.

        :raises ValueError: for a blob this kind of dictionary did not make.
        """
        if blob[0] == _DICT_ZSTD and self.kind == "zstd":
            data: bytes = self._codec()[1].decompress(blob[1:])
            return data
        if blob[0] == _DICT_ZLIB and self.kind == "zlib":
            reader = zlib.decompressobj(zdict=self.content)
            return reader.decompress(blob[1:]) + reader.flush()
        raise ValueError("a blob made with another dictionary")
