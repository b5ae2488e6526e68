"""Shared fixtures: the real WMCore documents in ``tests/data/wmcore/``."""

from __future__ import annotations

import json
import os
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


# --------------------------------------------------------------------------- schemathesis

#: Examples per operation and generation mode in the schemathesis runs of both
#: servers, over what each test asks (``WMSTATS_SCHEMATHESIS_EXAMPLES`` for a
#: longer run by hand).
SCHEMATHESIS_EXAMPLES = int(os.environ.get("WMSTATS_SCHEMATHESIS_EXAMPLES", "0"))
#: Every operation even where a test names a representative subset
#: (``WMSTATS_SCHEMATHESIS_FULL=1``, for a longer run by hand).
SCHEMATHESIS_FULL = os.environ.get("WMSTATS_SCHEMATHESIS_FULL", "") not in ("", "0")


def _re2_patterns() -> Any:
    """Hypothesis strategy: text RE2 compiles (the ``re2`` format of ``.re`` filters)."""
    from hypothesis import strategies as st

    from wmstats.query import grammar
    from wmstats.query.match import compile_regex

    def compiles(text: str) -> bool:
        try:
            compile_regex(text)
        except Exception:
            return False
        return True

    return st.text(max_size=40).filter(compiles).filter(lambda t: len(t) <= grammar.MAX_TEXT)


@pytest.fixture(scope="session")
def schemathesis_run() -> Callable[..., list[str]]:
    """``run(openapi_url, session)``: every operation of the document, positive
    and negative cases, each checked with every schemathesis check
    (``schemathesis.checks.CHECKS``); returns the checks run."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import CHECKS

    import schemathesis.specs.openapi.checks  # noqa: F401  (registers its checks)

    schemathesis.openapi.format("re2", _re2_patterns())
    checks = CHECKS.get_all()

    def run(url: str, session: Any, examples: int = 8,
            skip: Callable[[str], bool] | None = None) -> list[str]:
        """:param skip: paths left out unless ``WMSTATS_SCHEMATHESIS_FULL`` is set."""
        examples = SCHEMATHESIS_EXAMPLES or examples
        schema = schemathesis.openapi.from_url(url)
        # A refused request is any documented 4xx, also "too large" (413, 414, 431).
        rejection = schema.config.checks.negative_data_rejection
        rejection.expected_statuses = [*rejection.expected_statuses, "413", "414", "431"]
        for result in schema.get_all_operations():
            operation = result.ok()
            if skip is not None and not SCHEMATHESIS_FULL and skip(operation.path):
                continue
            for mode in (schemathesis.GenerationMode.POSITIVE,
                         schemathesis.GenerationMode.NEGATIVE):

                @settings(max_examples=examples, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck), derandomize=True)
                @given(case=operation.as_strategy(generation_mode=mode))
                def one(case: Any) -> None:
                    case.call_and_validate(session=session, checks=checks)

                try:
                    one()
                except Unsatisfiable:
                    # No schema-invalid request exists (an endpoint without parameters).
                    assert mode is schemathesis.GenerationMode.NEGATIVE
        return sorted(check.__name__ for check in checks)

    return run
