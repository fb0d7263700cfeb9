"""Typed archive events and a small synchronous in-process bus.

Subscribers (imaging link, forwarding rules, AI plug-ins) get events after
the index transaction committed. A failing subscriber is logged and never
undoes or blocks storage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


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
Subscriber = Callable[[ArchiveEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Register ``subscriber``; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: ArchiveEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("archive event subscriber failed for %s", type(event).__name__)
