"""A small synchronous in-process event bus, typed by the events it carries.

Subscribers get events after the transaction that caused them committed. A failing
subscriber is logged and never undoes or blocks the write that emitted the event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")


class EventBus(Generic[E]):
    def __init__(self) -> None:
        self._subscribers: list[Callable[[E], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Callable[[E], None]) -> Callable[[], None]:
        """Register ``subscriber``; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: E) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed for %s", type(event).__name__)
