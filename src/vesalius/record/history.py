"""Pages of resource history (https://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class HistoryEntry:
    resource_type: str
    id: str
    version: int
    method: str
    last_updated: datetime
    resource: dict[str, Any] | None


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    total: int
    offset: int
    count: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.count if self.offset + self.count < self.total else None
