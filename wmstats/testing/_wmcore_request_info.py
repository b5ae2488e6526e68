"""Apply reqmon's own request rules to documents; run by the reqmon venv's python.

Not imported by wmstats: :func:`wmstats.testing.reqmon.wmcore_request_rules` runs
this file as a script with the python of the separate reqmon virtualenv, where
the ``WMCore`` package lives.  It reads one JSON request on stdin and writes one
JSON answer on stdout::

    {"documents": {"<name>": {request document, maybe with AgentJobInfo}, ...},
     "keys": ["Campaign", ...],
     "conditions": [{"RequestType": "StepChain", "ParentageResolved": "false"}, ...]}

    {"get": {"<name>": {"Campaign": ..., ...}},          # RequestInfo(doc).get(key)
     "matches": {"<name>": [true, false, ...]},          # andFilterCheck per condition
     "protected_lfns": {"<name>": [...]},                # Request.protectedLFNs(doc)
     "global_locks": {"<name>": [...]},                  # DataCache.filterData's values
     "lfn_bases": {"<name>": [...]},                     # ... for protectedlfns
     "errors": {"<name>": "<what raised>"}}

``RequestInfo.get`` merges a chain's values from a Python ``set``: the lists come
back in an arbitrary order (compare them as multisets).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

__all__ = ["main"]

_LOCK_KEYS = ("InputDataset", "OutputDatasets", "MCPileup", "DataPileup")


def _flat(value: Any) -> list[Any]:
    """``DataCache.filterData``'s rule for one value."""
    if isinstance(value, list):
        return list(value)
    if value is not None and value != "":
        return [value]
    return []


def main() -> int:
    """Read the request on stdin, answer on stdout."""
    request = json.load(sys.stdin)
    module = importlib.import_module("WMCore.ReqMgr.DataStructs.Request")
    statuses = importlib.import_module("WMCore.ReqMgr.DataStructs.RequestStatus")
    info_class, protected = module.RequestInfo, module.protectedLFNs
    active = statuses.ACTIVE_STATUS_FILTER
    answer: dict[str, Any] = {"get": {}, "matches": {}, "protected_lfns": {},
                              "global_locks": {}, "lfn_bases": {}, "errors": {}}
    keys = request.get("keys") or []
    conditions = request.get("conditions") or []
    for name, doc in request["documents"].items():
        try:
            info = info_class(doc)
            answer["get"][name] = {key: info.get(key) for key in keys}
            answer["matches"][name] = [info.andFilterCheck(c) for c in conditions]
            locked = info.andFilterCheck(active)
            answer["global_locks"][name] = [
                v for key in _LOCK_KEYS for v in _flat(info.get(key, []))] if locked else []
            answer["lfn_bases"][name] = _flat(
                info.get("OutputModulesLFNBases", [])) if locked else []
            answer["protected_lfns"][name] = protected(doc)
        except Exception as exc:  # noqa: BLE001 -- reported: reqmon fails on this one
            answer["errors"][name] = f"{type(exc).__name__}: {exc}"
    sys.stdout.write(json.dumps(answer, default=list) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
