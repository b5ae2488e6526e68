"""A CouchDB-compatible server for tests: start, stop and restart ``pouchdb-server``.

Apache CouchDB is not packaged for the test machines; ``pouchdb-server`` (npm,
pinned in ``ci/pouchdb/``, installed by ``ci/install-pouchdb.sh``) speaks the
CouchDB HTTP API.  :class:`PouchServer` runs one on 127.0.0.1 on a free port, from
a fresh temporary folder, and stops it by its PID::

    with PouchServer() as server:
        requests.put(server.url + "/mydb")

Where the bin script is looked up: ``$WMSTATS_POUCHDB_BIN``, else the default
install folder ``.cache/pouchdb`` of the checkout (see :func:`find_pouchdb_bin`).
When ``$WMSTATS_COUCHDB_URL`` is set :func:`server_from_environment` uses that
server (Apache CouchDB or any other) instead of starting one.

This module needs nothing a plain install of wmstats lacks (the benchmarks use
it): the standard library and attrs.  The pytest fixtures built on it,
``couchdb_server`` and ``couchdb_database``, are in
:mod:`wmstats.testing.fixtures`, which the wmstats pytest plugin registers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

import attrs

from wmstats.redact import redact_url

__all__ = [
    "BIN_ENV",
    "URL_ENV",
    "INSTALL_COMMAND",
    "CouchServerError",
    "CouchServer",
    "PouchServer",
    "ExternalCouchServer",
    "CouchDatabase",
    "find_pouchdb_bin",
    "free_port",
    "in_ci",
    "server_from_environment",
]

#: Environment variable naming the ``pouchdb-server`` bin script.
BIN_ENV: Final = "WMSTATS_POUCHDB_BIN"
#: Environment variable naming an already running CouchDB to use instead.
URL_ENV: Final = "WMSTATS_COUCHDB_URL"
#: The command that installs the pinned pouchdb-server into the default folder.
INSTALL_COMMAND: Final = "ci/install-pouchdb.sh"
_BIN_RELPATH: Final = Path(".cache", "pouchdb", "node_modules", "pouchdb-server", "bin",
                           "pouchdb-server")
_LOG_NAME: Final = "server.out"
#: How many free ports to try when the chosen one is taken before the server binds it.
_PORT_ATTEMPTS: Final = 5


class CouchServerError(RuntimeError):
    """The server could not be found, started or stopped."""


class CouchServer(Protocol):
    """What tests need from a CouchDB server, started here or elsewhere."""

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash (may hold credentials)."""


def in_ci() -> bool:
    """Whether the ``CI`` environment variable says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (another process may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _candidate_bins() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path.cwd(), here.parents[2]]
    return list(dict.fromkeys(root / _BIN_RELPATH for root in roots))


def find_pouchdb_bin() -> Path:
    """The ``pouchdb-server`` bin script.

    ``$WMSTATS_POUCHDB_BIN`` if set, else ``.cache/pouchdb/...`` under the current
    folder or under the checkout this module lives in.

    :raises CouchServerError: when none exists; the message says how to install it.
    """
    env = os.environ.get(BIN_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise CouchServerError(f"${BIN_ENV}={env} is not a file; run "
                                   f"{INSTALL_COMMAND} and point ${BIN_ENV} at what it "
                                   f"prints")
        return path
    candidates = _candidate_bins()
    for path in candidates:
        if path.is_file():
            return path
    raise CouchServerError(
        "pouchdb-server is not installed (looked for "
        + ", ".join(str(p) for p in candidates)
        + f"); run {INSTALL_COMMAND} from the repository root, or set ${BIN_ENV} to its "
          f"bin script, or ${URL_ENV} to a running CouchDB")


def _request(url: str, method: str = "GET") -> urllib.request.Request:
    """A request for ``url``, its ``user:password@`` moved into a Basic auth header."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Accept": "application/json"}
    if parts.username is not None:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        token = (f"{urllib.parse.unquote(parts.username)}:"
                 f"{urllib.parse.unquote(parts.password or '')}")
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    return urllib.request.Request(url, method=method, headers=headers)


def _get_json(url: str, timeout: float, method: str = "GET") -> Any:
    with urllib.request.urlopen(_request(url, method), timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


class PouchServer:
    """One ``pouchdb-server`` process on 127.0.0.1, in its own temporary folder.

    :param bin: the bin script (default :func:`find_pouchdb_bin`).
    :param port: the port; default a free one (and another if it gets taken).
    :param in_memory: keep data in memory (lost on restart); with ``False`` data
        is kept in LevelDB files in the temporary folder and survives
        :meth:`restart`.
    :param startup_timeout: seconds to wait for the server to answer.
    :param stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    :param node: the Node.js executable.
    """

    def __init__(self, bin: str | Path | None = None, *, port: int | None = None,
                 in_memory: bool = True, startup_timeout: float = 30.0,
                 stop_timeout: float = 10.0, node: str = "node") -> None:
        self.bin = Path(bin) if bin is not None else find_pouchdb_bin()
        self.host = "127.0.0.1"
        self.in_memory = in_memory
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.node = node
        self._fixed_port = port
        self._port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    # ------------------------------------------------------------------ state

    @property
    def port(self) -> int:
        """The port (known once started)."""
        if self._port is None:
            raise CouchServerError("the server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:5984``."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running process, or ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def workdir(self) -> Path | None:
        """The temporary folder the server runs in (its ``log.txt``, data)."""
        return self._workdir

    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """What the server printed (stdout and stderr) since its last start."""
        if self._workdir is None:
            return ""
        try:
            return (self._workdir / _LOG_NAME).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------- lifecycle

    def start(self) -> PouchServer:
        """Start the server and wait until ``GET /`` answers; returns ``self``.

        On a port taken by someone else: retry on another free port (unless the
        port was given explicitly).

        :raises CouchServerError: when it does not start in time or dies.
        """
        if self.is_running():
            return self
        if not self.bin.is_file():
            raise CouchServerError(f"pouchdb-server bin script {self.bin} does not exist; "
                                   f"run {INSTALL_COMMAND}")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="wmstats-pouchdb-"))
        attempts = 1 if self._fixed_port is not None else _PORT_ATTEMPTS
        for attempt in range(attempts):
            if self._fixed_port is None and (self._port is None or attempt > 0):
                self._port = free_port(self.host)
            if self._launch():
                return self
        raise CouchServerError(f"pouchdb-server: port {self._port} is in use; gave up after "
                               f"{attempts} attempt(s)\n--- server output ---\n{self.log()}")

    def _command(self) -> list[str]:
        assert self._workdir is not None
        storage = (["--in-memory"] if self.in_memory
                   else ["--dir", str(self._workdir / "data")])
        return [self.node, "--unhandled-rejections=warn", str(self.bin), *storage,
                "--host", self.host, "--port", str(self.port),
                "--no-stdout-logs", "--no-color"]

    def _launch(self) -> bool:
        """Start one process; ``True`` once it answers, ``False`` if its port is taken."""
        assert self._workdir is not None
        if not self.in_memory:
            (self._workdir / "data").mkdir(exist_ok=True)
        with open(self._workdir / _LOG_NAME, "wb") as out:
            # The child gets its own copy of the file; no pipes to drain or close.
            try:
                self._proc = subprocess.Popen(
                    self._command(), cwd=self._workdir, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise CouchServerError(f"cannot run {self.node!r} (Node.js >= 18 is needed "
                                       f"for pouchdb-server): {exc}") from exc
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.02
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                output = self.log()
                if "already in use" in output:
                    return False
                raise CouchServerError(f"pouchdb-server exited with status {code} before "
                                       f"answering\ncommand: {' '.join(self._command())}\n"
                                       f"--- server output ---\n{output}")
            if self._answers():
                return True
            if time.monotonic() > deadline:
                output = self.log()
                self._terminate()
                raise CouchServerError(f"pouchdb-server did not answer on {self.url} within "
                                       f"{self.startup_timeout:.0f} s\n--- server output ---\n"
                                       f"{output}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _answers(self) -> bool:
        """Whether *our* server answers ``GET /`` (not another one on the same port)."""
        try:
            welcome = _get_json(self.url + "/", timeout=2.0)
        except (OSError, ValueError):
            return False
        if "already in use" in self.log():
            return False  # someone else answered; ours is exiting
        assert self._workdir is not None
        try:
            config = json.loads((self._workdir / "config.json").read_text())
            ours = config["couchdb"]["uuid"]
        except (OSError, ValueError, KeyError, TypeError):
            return False  # ours writes its config before it listens
        return isinstance(welcome, dict) and welcome.get("uuid") == ours

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``stop_timeout``); keep its folder."""
        self._terminate()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        self._terminate(sig=signal.SIGKILL)

    def _terminate(self, sig: signal.Signals = signal.SIGTERM) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self) -> PouchServer:
        """Stop and start again on the same port (and folder)."""
        port = self._port
        self._terminate()
        fixed, self._fixed_port = self._fixed_port, port
        try:
            return self.start()
        finally:
            self._fixed_port = fixed

    def close(self) -> None:
        """Stop the server and remove its temporary folder."""
        self._terminate()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> PouchServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PouchServer(url={self._port and self.url!r}, pid={self.pid})"


@attrs.frozen
class ExternalCouchServer:
    """A CouchDB started by someone else (``$WMSTATS_COUCHDB_URL``)."""

    url: str

    def check(self, timeout: float = 10.0) -> ExternalCouchServer:
        """Fail unless ``GET /`` answers with a JSON object.

        :raises CouchServerError: otherwise.
        """
        try:
            welcome = _get_json(self.url + "/", timeout=timeout)
        except (OSError, ValueError) as exc:
            raise CouchServerError(f"${URL_ENV}: no CouchDB answers at "
                                   f"{redact_url(self.url)}: {exc}") from exc
        if not isinstance(welcome, dict):
            raise CouchServerError(f"${URL_ENV}: {redact_url(self.url)} is not a CouchDB")
        return self


@contextlib.contextmanager
def server_from_environment() -> Iterator[CouchServer]:
    """The server named by ``$WMSTATS_COUCHDB_URL``, else a new :class:`PouchServer`.

    :raises CouchServerError: when neither is available.
    """
    url = os.environ.get(URL_ENV)
    if url:
        yield ExternalCouchServer(url.rstrip("/")).check()
        return
    with PouchServer() as server:
        yield server


@attrs.frozen
class CouchDatabase:
    """A fresh database name on a test server (the database is not created)."""

    server: CouchServer
    name: str

    @property
    def url(self) -> str:
        """``http://host:port/name`` (credentials kept)."""
        return f"{self.server.url}/{self.name}"

    def delete_all(self) -> None:
        """Delete every database whose name starts with :attr:`name`."""
        with contextlib.suppress(OSError, ValueError):
            names = _get_json(self.server.url + "/_all_dbs", timeout=30.0)
            for name in names:
                if isinstance(name, str) and name.startswith(self.name):
                    with contextlib.suppress(OSError, ValueError):
                        _get_json(f"{self.server.url}/{urllib.parse.quote(name, safe='')}",
                                  timeout=30.0, method="DELETE")
