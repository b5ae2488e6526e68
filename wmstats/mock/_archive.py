"""Archived requests: what ReqMgr2 holds besides the active ones.

WMCore moves a request that is done with to an *archived* status
(``normal-archived`` after ``announced``, ``aborted-archived`` after
``aborted-completed``, ``rejected-archived`` after ``rejected``); most requests
ever made are archived, and their agents stopped reporting them long ago.
:func:`archive` turns a workflow's truth into such a request: the status history
goes on to the archived status, and the agent reports are gone.  Which workflows
are archived is decided by a random generator of its own, seeded by ``(seed,
index)``, so the other workflows stay exactly as without archiving.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Final

from wmstats.mock._catalog import (
    ARCHIVED_STATUSES,
    DN_BY_STATUS,
    DN_UNIFIED,
    STATUS_PATH,
    Choice,
)
from wmstats.mock._truth import Truth

__all__ = ["ARCHIVED_FROM", "archived", "archive"]

#: WMCore's archived request statuses, each with the status it follows
#: (:data:`~wmstats.mock._catalog.ARCHIVED_STATUSES` the other way round).
ARCHIVED_FROM: Final = {status: before for before, (status, _) in ARCHIVED_STATUSES.items()}
#: Archived statuses and their weight among archived requests.
_CHOICE: Final = Choice([("normal-archived", 85.0), ("aborted-archived", 10.0),
                         ("rejected-archived", 5.0)])


def archived(seed: int, i: int, fraction: float) -> random.Random | None:
    """The generator that archives workflow ``i``, or ``None`` if it stays active.

    :param fraction: the share of workflows archived (0 to 1).
    """
    if fraction <= 0:
        return None
    rng = random.Random(f"{seed}:archived:{i}")
    return rng if rng.random() < fraction else None


def archive(truth: Truth, rng: random.Random, now: int) -> Truth:
    """``truth`` as an archived request: a history that ends in an archived status
    (dates spread between its creation and ``now``), no agent reports."""
    rnd = rng.random
    status = _CHOICE(rnd)
    before = ARCHIVED_FROM[status]
    if before == "announced":
        path = [*STATUS_PATH, status]
    elif before == "aborted-completed":
        stop = 2 + int(rnd() * 6)
        path = [*STATUS_PATH[:stop + 1], "aborted", before, status]
    else:
        path = [*["new", "assignment-approved"][: 1 + int(rnd() < 0.5)], before, status]
    created = truth.transitions[0][1]
    span = (now - 60 - created) * (0.5 + 0.5 * rnd())
    gaps = [rnd() for _ in path]
    scale = span / sum(gaps)
    history: list[tuple[str, int, str]] = []
    when = float(created)
    for k, step in enumerate(path):
        if k:
            when += gaps[k] * scale
        history.append((step, int(when), DN_BY_STATUS.get(step, DN_UNIFIED) or truth.requestor_dn))
    return dataclasses.replace(truth, status=status, transitions=history, agents=[])
