"""Read the agent database of a full load in a second process (the second core).

A full load spends its time decoding JSON and converting documents, all of it
holding the GIL: threads do not help.  :class:`ProcessReader` runs the reading
of one database (``_all_docs``, decoding each page, packing each well-formed
``agent_request`` document as :func:`~wmstats_couchdb._state.pack_report` does)
in a process of its own, while the source's own process reads and converts the
request database.  What crosses the process boundary is compact: per packed
report its workflow, agent, timestamp and compressed JSON (about a quarter of
the document's text), pickled; any other row (``agent_info``, ``jobsummary``,
design documents, malformed ones) is passed on decoded, to be applied by the
source as if it had read it itself.  Converted records never cross: pickling
and unpickling them costs more than converting.

Failures are raised in the source's process: a :class:`~wmstats_couchdb._http.CouchError`
of the reader as the same error, anything else (or a reader that dies) as
:class:`ReaderError`.  :meth:`ProcessReader.close` ends the process; a reader
whose source's process is gone fails on its next page (its pipe is broken) and
ends.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, Final, Union

from wmstats_couchdb._http import CouchClient, CouchError, quote
from wmstats_couchdb._state import PackedReport, pack_report

__all__ = ["ProcessReader", "ReaderError", "Page"]

#: One row as the reader hands it over: ``(document id, packed report)`` for a
#: well-formed ``agent_request``, else ``(None, the _all_docs row)``.
Item = Union[tuple[str, PackedReport], tuple[None, Any]]
#: The items of one ``_all_docs`` page.
Page = list[Item]

#: Seconds :meth:`ProcessReader.close` waits for the process after asking it to end.
_JOIN: Final = 5.0


class ReaderError(Exception):
    """The reader process failed (other than by a CouchDB error) or died."""


def _serve(conn: Connection, base_url: str, auth: tuple[str, str] | None, timeout: float,
           gzip: bool, db: str, limit: int) -> None:
    """The reader process: send ``("page", items)`` per page, then ``("end",)``; or
    ``("couch", status, error, reason)`` / ``("error", text)``."""
    client = CouchClient(base_url, auth=auth, timeout=timeout, gzip=gzip)
    try:
        for rows in client.all_docs(db, limit):
            page: Page = []
            for row in rows:
                doc_id = row.get("id") if isinstance(row, dict) else None
                packed = (pack_report(doc_id, row.get("doc"))
                          if isinstance(doc_id, str) else None)
                if packed is not None:
                    assert isinstance(doc_id, str)
                    page.append((doc_id, packed))
                else:
                    page.append((None, row))
            del rows
            conn.send(("page", page))
        conn.send(("end",))
    except CouchError as exc:
        with contextlib.suppress(OSError):  # the source is gone
            conn.send(("couch", exc.status, exc.error, exc.reason))
    except OSError:
        return  # the pipe broke: the source is gone, or closed the reader
    except BaseException:  # noqa: BLE001 - handed to the source
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        client.close()
        conn.close()


class ProcessReader:
    """Read ``_all_docs`` of one database in a process of its own (see the module doc).

    The process starts at once; :meth:`pages` yields its pages in order.

    :param client: the source's client (its server, credentials, timeout and gzip
        choice are handed to the reader's own).
    """

    def __init__(self, client: CouchClient, db: str, limit: int) -> None:
        self.db = db
        # A plain ``python -c`` calling :func:`main`, not multiprocessing's spawn:
        # that imports the parent's main module again (the whole web server, a
        # second of CPU); this imports the HTTP client and the packing alone.
        # The arguments (credentials among them) go through stdin, the pages come
        # back through a pipe of their own (pickled, multiprocessing's framing).
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", f"import sys; from {__name__} import main; "
                 f"main(sys.argv[1:])", str(write_fd)], stdin=subprocess.PIPE,
                pass_fds=(write_fd,), close_fds=True)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._conn = Connection(read_fd, writable=False)
        self._closed = False
        assert self._proc.stdin is not None
        try:
            with self._proc.stdin as stdin:
                pickle.dump((client.base_url, client.auth, client.timeout, client.gzip, db,
                             limit), stdin)
        except OSError:
            pass  # the process ended already: pages() says so

    def pages(self) -> Iterator[Page]:
        """The reader's pages, in order.

        :raises CouchError: as the reader got it.
        :raises ReaderError: the reader failed otherwise, or died.
        """
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError) as exc:
                if self._closed:
                    return
                try:
                    code: int | None = self._proc.wait(_JOIN)
                except subprocess.TimeoutExpired:
                    code = None
                raise ReaderError(f"the reader process of {self.db} ended without an answer "
                                  f"(exit code {code})") from exc
            kind = message[0]
            if kind == "page":
                yield message[1]
            elif kind == "end":
                return
            elif kind == "couch":
                _kind, status, error, reason = message
                raise CouchError(status, error, reason, "GET", f"/{quote(self.db)}/_all_docs")
            else:
                raise ReaderError(f"the reader process of {self.db} failed:\n{message[1]}")

    def close(self) -> None:
        """End the process (at once if it is still reading) and wait for it."""
        if self._closed:
            return
        self._closed = True
        # The process first: its end of the pipe closes with it, which ends a
        # recv() waiting in another thread (closing ours would not wake it).
        if self._proc.poll() is None:
            self._proc.terminate()
        try:
            self._proc.wait(_JOIN)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(_JOIN)
        self._conn.close()


def main(argv: list[str]) -> None:
    """The reader process (``argv``: the file descriptor to write the pages to): the
    arguments of :func:`_serve` but the connection are read pickled from stdin."""
    conn = Connection(int(argv[0]), readable=False)
    args = pickle.load(sys.stdin.buffer)
    _serve(conn, *args)

