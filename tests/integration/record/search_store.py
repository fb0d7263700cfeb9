"""A real record database with the official examples indexed, for the search tests.

Resources are written straight into ``fhir_resources`` and indexed with ``SearchIndexer`` (the
record service is not involved, so the search tests need nothing else).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from vesalius.config import Settings
from vesalius.database.engine import make_engine
from vesalius.record.definitions import load
from vesalius.record.schema import metadata, resources
from vesalius.record.search import SearchEngine, SearchIndexer, SearchResult

TYPES = ("Patient", "Observation", "Encounter", "Condition", "Practitioner", "Organization",
         "Procedure", "Location", "Group", "Device")
BASE = "http://vesalius.test/fhir"


class Store:
    def __init__(self, settings: Settings) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.resolved_database_url)
        metadata.drop_all(self.engine)
        metadata.create_all(self.engine)
        self.defs = load()
        self.indexer = SearchIndexer(self.defs, base_url=BASE)
        self.search_engine = SearchEngine(self.defs, base_url=BASE)
        self.by_type: dict[str, dict[str, dict[str, Any]]] = {}
        self.pks: dict[tuple[str, str], int] = {}

    def add(self, items: Iterable[dict[str, Any]], *,
            last_updated: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            for resource in items:
                key = (resource["resourceType"], resource["id"])
                pk = conn.execute(insert(resources).values(
                    resource_type=key[0], id=key[1], version=1,
                    last_updated=last_updated or datetime(2020, 1, 1, tzinfo=UTC),
                    deleted=False, content=json.dumps(resource))).inserted_primary_key[0]
                self.indexer.index(conn, pk, resource)
                self.pks[key] = pk
                self.by_type.setdefault(key[0], {})[key[1]] = resource

    def delete(self, resource_type: str, id_: str) -> None:
        pk = self.pks[(resource_type, id_)]
        with self.engine.begin() as conn:
            conn.execute(update(resources).where(resources.c.pk == pk)
                         .values(deleted=True, content=None))
            self.indexer.unindex(conn, pk)
        del self.by_type[resource_type][id_]

    def search(self, resource_type: str | None, params: Sequence[tuple[str, str]],
               **kwargs: Any) -> SearchResult:
        with self.engine.connect() as conn:
            return self.search_engine.search(conn, resource_type, params, **kwargs)

    def ids(self, resource_type: str | None, params: Sequence[tuple[str, str]],
            **kwargs: Any) -> set[str]:
        """Every matching id (all pages)."""
        result = self.search(resource_type, [*params, ("_count", "1000")], **kwargs)
        assert result.next_offset is None
        return {r["id"] for r in result.matches}


def examples(folder: Path, types: Sequence[str] = TYPES) -> list[dict[str, Any]]:
    """The official examples of ``types``, one per (type, id)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for resource_type in types:
        for path in sorted(folder.glob(f"{resource_type}-*.json")):
            resource = json.loads(path.read_text())
            if resource.get("resourceType") == resource_type and "id" in resource:
                found.setdefault((resource_type, resource["id"]), resource)
    return list(found.values())


def fold(text: str) -> str:
    """Accent- and case-insensitive form, computed independently of the engine's own."""
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).casefold()
