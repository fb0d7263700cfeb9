"""Pure access decisions. Services ask; edges never decide.

Only the DIMSE decision exists so far; user/role/consent policies arrive with the
security issue and live here too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class DimseCaller:
    """Who is on the other end of an association."""

    ae_title: str
    address: str
    #: Permissions from the AE registry when the title is registered *and* the
    #: connection comes from the registered host; None for unknown callers.
    registered_permissions: frozenset[str] | None


def may_dimse(caller: DimseCaller, action: str, unknown_permissions: Collection[str]) -> bool:
    """Whether ``caller`` may perform ``action`` (echo, store, find, move, get, commit, mwl).

    Echo is always allowed (it discloses nothing). Storage commitment follows the
    store permission. Worklist queries and MPPS follow find: MPPS changes the
    worklist, so only a modality trusted to read it may report on it (unknown
    callers, who may store by default, may not complete scheduled steps).
    """
    needed = {"echo": None, "commit": "store", "mwl": "find", "mpps": "find"}.get(action, action)
    if needed is None:
        return True
    granted = (caller.registered_permissions if caller.registered_permissions is not None
               else frozenset(unknown_permissions))
    return needed in granted
