"""Typed archive events, published on an in-process bus after the index transaction committed.

Subscribers: the imaging link, later forwarding rules and AI plug-ins.
"""

from __future__ import annotations

from dataclasses import dataclass

from vesalius.core.events import EventBus as _Bus


@dataclass(frozen=True)
class InstanceStored:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    new_study: bool
    new_series: bool
    replaced: bool = False


@dataclass(frozen=True)
class InstancesDeleted:
    study_uid: str
    series_uid: str | None
    sop_uid: str | None


ArchiveEvent = InstanceStored | InstancesDeleted
EventBus = _Bus[ArchiveEvent]
