"""zlib-format compression of the blobs wmstats keeps (records, job samples, packed
documents): level 1, through ISA-L when the ``isal`` package is installed.

ISA-L writes the same format (``zlib.decompress`` reads it) 3-5x faster than
zlib at level 1, at the same size (measured on mock ``agent_request``
documents, 4.6 kB each: 16-30 µs against 88 µs, 0.233 against 0.238 of the
JSON).  Every full load compresses each workflow's records, each packed
``agent_request`` document and each group of job samples, so this is part of
the fill time.  Without ``isal`` (an optional dependency, the ``compress``
extra) zlib does it.  Reading stays with ``zlib.decompress``, which is as fast.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Final

__all__ = ["compress"]


def _fastest() -> Callable[[bytes], bytes]:
    try:
        from isal import isal_zlib
    except ImportError:  # the optional 'compress' extra is not installed
        return lambda data: zlib.compress(data, 1)

    def compress(data: bytes) -> bytes:
        out: bytes = isal_zlib.compress(data, 1)
        return out

    return compress


#: ``compress(data)``: ``data`` in the zlib format at level 1 (fastest).
compress: Final = _fastest()
