"""One thing that was wrong in one document: what every converter reports.

:mod:`wmstats.convert` re-exports it; it lives here so that the converters of
every document kind (:mod:`wmstats.convert`, :mod:`wmstats.jobs`) share it.
"""

from __future__ import annotations

import attrs

__all__ = ["Problem"]


@attrs.frozen
class Problem:
    """One thing that was wrong in one document.

    :param doc_id: the document's ``_id`` (or its workflow / agent name).
    :param path: dotted key path inside the document (empty: the whole document).
    :param message: what was wrong and what was done about it.
    """

    doc_id: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.doc_id}: {self.path}" if self.path else self.doc_id
        return f"{where}: {self.message}"
