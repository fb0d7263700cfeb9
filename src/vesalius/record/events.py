"""Typed record events (the imaging link turns imaging ServiceRequests into worklist items)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vesalius.core.events import EventBus as _Bus


@dataclass(frozen=True)
class ResourceWritten:
    """A resource version was created, updated, patched or deleted (``resource`` None)."""

    resource_type: str
    id: str
    version: int
    method: str  # POST, PUT, PATCH, DELETE
    resource: dict[str, Any] | None


RecordEvent = ResourceWritten
RecordEventBus = _Bus[RecordEvent]
