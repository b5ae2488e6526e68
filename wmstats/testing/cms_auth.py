"""CMSWEB authentication headers signed and verified by WMCore's own code.

The CMSWEB front-ends authenticate users and pass ``cms-auth*`` headers to the
back-ends, signed with an HMAC key the back-ends share; WMCore's REST servers
check them with ``WMCore.REST.Auth`` (the ``cms_auth`` tool).  The tests of
wmstats' own check (``--auth cms-headers``) sign with WMCore's helper and compare
verdicts with WMCore's verifier, both run in the reqmon venv by a subprocess
(``_wmcore_auth.py``), as :mod:`wmstats.testing.reqmon` runs WMCore's client::

    (headers,) = wmcore_sign(key, [{"login": "jdoe", "roles": {"admin": {"group": ["ops"]}}}])
    requests.get(url, headers=headers)

Needs reqmon installed (``ci/install-reqmon.sh``; see
:func:`wmstats.testing.reqmon.find_reqmon_python`); tests using it carry the
``reqmon`` marker.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from wmstats.testing.reqmon import _FOREIGN_ENV, ReqmonError, find_reqmon_python

__all__ = ["wmcore_sign", "wmcore_verify"]

_SCRIPT: Final = Path(__file__).with_name("_wmcore_auth.py")


def _run(request: Mapping[str, Any], python: str | Path | None) -> dict[str, Any]:
    exe = Path(python) if python is not None else find_reqmon_python()
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    try:
        done = subprocess.run([str(exe), str(_SCRIPT)], input=json.dumps(request),
                              capture_output=True, text=True, env=env, timeout=120,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReqmonError(f"WMCore auth helper ({exe}) failed: {exc}") from exc
    if done.returncode != 0:
        raise ReqmonError(f"WMCore auth helper ({exe}) exited with status "
                          f"{done.returncode}:\n{done.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def wmcore_sign(key: bytes, users: Sequence[Mapping[str, Any]], *,
                python: str | Path | None = None) -> list[dict[str, str]]:
    """The headers the front-end would send for each user, from
    ``WMCore.REST.Test.fake_authz_headers``.

    :param users: keyword arguments of ``fake_authz_headers`` each (``login``,
        ``name``, ``dn``, ``method``, ``roles``: role -> ``{"site": [...],
        "group": [...]}``).
    """
    answer = _run({"key": key.hex(), "sign": list(users)}, python)
    return [dict(pairs) for pairs in answer["signed"]]


def wmcore_verify(key: bytes, header_sets: Sequence[Mapping[str, str]], *,
                  python: str | Path | None = None) -> list[dict[str, Any]]:
    """What ``WMCore.REST.Auth.user_info_from_headers`` makes of each set of headers:
    ``{"user": {...}}`` (accepted; ``None`` for an unauthenticated request it lets
    through), ``{"denied": "403"}``, or ``{"error": "..."}`` (it raised)."""
    answer = _run({"key": key.hex(), "verify": [list(h.items()) for h in header_sets]},
                  python)
    verified: list[dict[str, Any]] = answer["verified"]
    return verified
