"""Shared fixtures: the real WMCore documents in ``tests/data/wmcore/``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WMCORE_DATA = Path(__file__).parent / "data" / "wmcore"
#: Every anchor document file (``tests/data/wmcore/SOURCES.md`` describes each one).
WMCORE_FILES = sorted(p.name for p in WMCORE_DATA.glob("*.json"))


def _load(name: str) -> Any:
    with open(WMCORE_DATA / name, encoding="utf-8") as handle:
        return json.load(handle)


def pytest_configure(config: pytest.Config) -> None:
    # On a failing example hypothesis imports libcst, whose import warns through
    # mypy_extensions; under ``filterwarnings = error`` that turns the failure report
    # into an INTERNALERROR that hides the falsifying example.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


@pytest.fixture(scope="session")
def wmcore_doc() -> Callable[[str], Any]:
    """Load one anchor file by name (a fresh copy on every call)."""
    return _load


@pytest.fixture(scope="session")
def wmcore_docs() -> Callable[[str], list[Any]]:
    """The documents of one anchor file, as a list.

    ``reqmgr_requests_20.json`` is a ``{RequestName: document}`` map: its values.
    """
    def docs(name: str) -> list[Any]:
        data = _load(name)
        return list(data.values()) if name == "reqmgr_requests_20.json" else [data]
    return docs


@pytest.fixture(scope="session")
def wmcore_files() -> list[str]:
    """The names of all anchor files."""
    return list(WMCORE_FILES)


@pytest.fixture(params=WMCORE_FILES)
def wmcore_file(request: pytest.FixtureRequest) -> str:
    """Each anchor file name in turn."""
    return str(request.param)


@pytest.fixture(scope="module")
def quiet_cherrypy() -> Iterator[None]:
    """CherryPy's log off the screen for a module's servers (errors the tests
    provoke on purpose would fill the output); restored afterwards.

    A module asks for it with ``pytestmark = pytest.mark.usefixtures("quiet_cherrypy")``.
    """
    import cherrypy

    screen = cherrypy.log.screen
    cherrypy.log.screen = False
    yield
    cherrypy.log.screen = screen


@pytest.fixture(scope="session")
def reqmon_python() -> Path:
    """The python of the reqmon 2.4.5.9 venv (``ci/install-reqmon.sh``); with ``CI``
    set a missing one fails the test, else it skips."""
    from wmstats.testing.fixtures import unavailable
    from wmstats.testing.reqmon import INSTALL_COMMAND, ReqmonError, find_reqmon_python

    try:
        return find_reqmon_python()
    except ReqmonError as exc:
        unavailable("reqmon", f"{exc} ({INSTALL_COMMAND} installs it)")
